// loadgen.mjs: steady request load on the installed suite, for the system tests (upgrade,
// reload, scaling under load). Copied into the sandbox and run there as a transient unit:
//
//   systemd-run --unit=NAME node loadgen.mjs OUT.json [WORKERS] [PAUSE_MS] [MAX_S]
//
// WORKERS loops each send `echo` requests (a unique payload each, checked on return) through
// the installed client library, PAUSE_MS apart, until SIGTERM or MAX_S seconds. OUT.json is
// rewritten every 250 ms and at the end: { ok, failed, wrong, retries, errors, retry_codes,
// done }. A request fails only when the client library gives up (its retries included).
import { writeFileSync, renameSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const { DispatchClient } = await import('/usr/lib/dispatchd/build/daemons/client/client.js');
const [out, workers = '4', pauseMs = '10', maxS = '300'] = process.argv.slice(2);
const stats = { ok: 0, failed: 0, wrong: 0, retries: 0, errors: {}, retry_codes: {}, done: false };
let stop = false;
process.on('SIGTERM', () => (stop = true));
setTimeout(() => (stop = true), Number(maxS) * 1000).unref();

const save = () => {
  writeFileSync(`${out}.tmp`, JSON.stringify(stats));
  renameSync(`${out}.tmp`, out);
};
const saver = setInterval(save, 250);

const client = new DispatchClient({
  timeoutMs: 30_000,
  onRetry: ({ error }) => {
    stats.retries++;
    stats.retry_codes[error.code] = (stats.retry_codes[error.code] ?? 0) + 1;
  },
});

async function worker(w) {
  for (let i = 0; !stop; i++) {
    const payload = `loadgen-${w}-${i}`;
    try {
      const r = await client.request('echo', Buffer.from(payload));
      if (r.toString() === payload) stats.ok++;
      else stats.wrong++;
    } catch (err) {
      stats.failed++;
      const key = `${err.code ?? 'ERROR'}: ${String(err.message).slice(0, 200)}`;
      stats.errors[key] = (stats.errors[key] ?? 0) + 1;
    }
    await sleep(Number(pauseMs));
  }
}

await Promise.all(Array.from({ length: Number(workers) }, (_, w) => worker(w)));
clearInterval(saver);
stats.done = true;
save();
