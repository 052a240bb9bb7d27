/**
 * Hostile input against the daemons as processes (systemd imitated, the watchdog probing):
 * a short run of the system-level fuzzer (`npm run fuzz` runs 100,000 cases), a flood of
 * garbage lines into every mailbox, and 1,000 idle or half-frame clients at once.
 */
import fs from 'node:fs';
import t from 'tap';
import { DispatchClient } from '../../daemons/client/client.js';
import { defaultConfig } from '../../daemons/common/config.js';
import { closeAfter, ProcessSuite, until } from '../helpers/index.js';
import { formatFuzz, ProcessFuzzTarget, runFuzz } from '../fuzz/lib/fuzz.js';
import { measureIdle } from '../fuzz/lib/idle.js';

const IDLE_MS = 1000;
/** README "Limits": idle clients delay a normal request by at most this much. */
const IDLE_DELAY_BOUND_MS = 1000;

let target: ProcessFuzzTarget | undefined;
const suite = new ProcessSuite({
  config: `[main]\nclient_idle_timeout_ms = ${IDLE_MS}\n[secondary]\nclient_idle_timeout_ms = ${IDLE_MS}\n`,
  onLog: (d, l) => target?.onLog(d, l),
});
target = new ProcessFuzzTarget(suite, IDLE_MS);
closeAfter(t, suite);
t.before(() => suite.startAll());

t.test('fuzzing every socket and FIFO: no crash, no stuck peer, others served, incidents logged once per interval', async (t) => {
  const v = await runFuzz(target!, { cases: 3000, seed: 20_251_130 });
  t.comment(formatFuzz(v));
  t.same(v.problems, [], 'no problem found');
  t.ok(v.send.cases === 3000 && v.send.fifoCases > 500 && v.send.socketCases > 1500, `${v.send.socketCases} socket and ${v.send.fifoCases} FIFO cases`);
  t.ok(v.load.succeeded > 0, `${v.load.succeeded} normal requests served meanwhile`);
});

t.test('a flood of blank and broken lines in every mailbox stalls no daemon', async (t) => {
  // 64 KiB of blank lines took a reader 1.6 s, long enough for the watchdog (3 missed pings
  // at 300 ms) to restart the daemon. Twenty pipes full, into every mailbox, in a burst.
  const pids = suite.names.map((n) => suite.pid(n));
  const flood = Buffer.concat([Buffer.alloc(32 * 1024, '\n'), Buffer.from('{\n'.repeat(16 * 1024))]);
  for (let i = 0; i < 20; i++) {
    for (const n of [...suite.names, 'watchdog']) {
      const fd = fs.openSync(suite.fifo(n), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      try {
        fs.writeSync(fd, flood);
      } catch {
        // the pipe is full: the reader is behind, which is what this measures
      } finally {
        fs.closeSync(fd);
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const c = new DispatchClient({ socket: suite.mainSocket, timeoutMs: 10_000 });
  const out = await Promise.all(Array.from({ length: 20 }, (_, i) => c.request('echo', Buffer.from(`f${i}`))));
  t.same(out.map(String), Array.from({ length: 20 }, (_, i) => `f${i}`), 'requests are served');
  // The watchdog's whole detection window after the flood: max_missed + 1 more rounds of pings
  // to every daemon (its slot counts the pings it sent).
  const pinged = suite.slot('watchdog')!.requests;
  const rounds = defaultConfig().watchdog.max_missed + 1;
  await until(`${rounds} probe rounds of the watchdog`, 10_000, () => suite.slot('watchdog')!.requests >= pinged + rounds * suite.names.length);
  t.same(suite.names.map((n) => suite.pid(n)), pids, 'no daemon was restarted');
  t.same([...suite.watchdogRestarts], [], 'the watchdog restarted nothing');
});

t.test('1,000 idle and half-frame clients at once: cut off after the idle timeout, nobody else waits', async (t) => {
  const r = await measureIdle({ socket: suite.mainSocket, connections: 1000, idleTimeoutMs: IDLE_MS });
  t.comment(JSON.stringify(r));
  console.log(`# 1000 idle clients: cut off after ${r.cutOffMinMs}-${r.cutOffMaxMs} ms (idle timeout ${IDLE_MS} ms); normal requests p50 ${r.baseline.p50Ms.toFixed(1)} -> ${r.during.p50Ms.toFixed(1)} ms, worst ${r.during.maxMs.toFixed(1)} ms (+${r.addedMaxMs} ms)`);
  t.equal(r.cutOff, 1000, `every one got IDLE_TIMEOUT and was closed (otherwise: ${JSON.stringify(r.otherwiseHow)})`);
  t.ok(r.cutOffMinMs >= IDLE_MS - 50, `not before the idle timeout (${r.cutOffMinMs} ms)`);
  t.ok(r.cutOffMaxMs < IDLE_MS + 2000, `all within 2 s after it (${r.cutOffMaxMs} ms)`);
  t.equal(r.during.failed, 0, `every normal request meanwhile succeeded (${r.during.requests})`);
  t.ok(r.addedMaxMs < IDLE_DELAY_BOUND_MS, `a normal request was delayed by at most ${r.addedMaxMs} ms (bound ${IDLE_DELAY_BOUND_MS} ms)`);
});
