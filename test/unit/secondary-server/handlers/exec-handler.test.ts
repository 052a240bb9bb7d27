import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { until } from '../../../helpers/until.js';
import { ExecHandler, KILL_GRACE_MS, STDERR_TAIL_BYTES } from '../../../../daemons/secondary-server/handlers/exec-handler.js';
import { runContext, typeOf } from './lib.js';

const exec = (command: string[], extra: { max_result_bytes?: number } = {}) => new ExecHandler(typeOf('t', { handler: 'exec', command: command as [string, ...string[]], ...extra }));
const sh = (script: string, extra: { max_result_bytes?: number } = {}) => exec(['/bin/sh', '-c', script], extra);

async function run(h: ExecHandler, data: Buffer | string, deadlineMs = 10_000): Promise<Buffer> {
  const ctx = runContext(deadlineMs);
  try {
    return await h.run(Buffer.from(data), ctx);
  } finally {
    ctx.dispose();
  }
}

/** Rejection reason or error of a run, with how long it took. */
async function outcome(p: Promise<unknown>): Promise<{ value: unknown; ms: number }> {
  const started = Date.now();
  try {
    await p;
    return { value: 'resolved', ms: Date.now() - started };
  } catch (err) {
    return { value: err, ms: Date.now() - started };
  }
}

const alive = (pid: number) => fs.existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));

t.test('DATA on standard input, the result from standard output, argv without a shell', async (t) => {
  t.equal((await run(exec(['/usr/bin/tr', 'a-z', 'A-Z']), 'hello $HOME')).toString(), 'HELLO $HOME');
  const big = randomBytes(3 << 20);
  t.ok((await run(exec(['/bin/cat']), big)).equals(big), '3 MiB, binary, byte for byte');
});

t.test('the environment names the type, the deadline and the lease, and nothing of the secondary leaks', async (t) => {
  process.env.DISPATCHD_SECRET_TEST = 'leak';
  t.teardown(() => delete process.env.DISPATCHD_SECRET_TEST);
  const out = (await run(sh('env | sort'), '', 4321)).toString();
  t.match(out, /^DISPATCHD_TYPE=t$/m);
  t.match(out, /^DISPATCHD_DEADLINE_MS=4321$/m);
  t.match(out, /^DISPATCHD_LEASE=(ab){16}$/m);
  t.match(out, /^DISPATCHD_SECONDARY=secondary-1$/m);
  t.notMatch(out, /DISPATCHD_SECRET_TEST|NOTIFY_SOCKET|LISTEN_FDS/);
});

t.test('a non-zero exit is HANDLER_FAILED with the status and the end of standard error', async (t) => {
  const o = await outcome(run(sh('echo partial; echo "it broke: $(cat)" >&2; exit 3'), 'input'));
  t.match(o.value, { code: 'HANDLER_FAILED', message: /exited with status 3; its standard error ended with: it broke: input/ });
  const long = await outcome(run(sh(`head -c 10000 /dev/zero | tr '\\0' x >&2; echo END >&2; exit 1`), ''));
  const msg = (long.value as Error).message;
  t.match(msg, /xEND$/, 'the end of standard error');
  t.ok(msg.length < STDERR_TAIL_BYTES + 300, `at most ${STDERR_TAIL_BYTES} bytes of it (${msg.length} characters in all)`);
  const quiet = await outcome(run(sh('exit 9'), ''));
  t.match(quiet.value, { code: 'HANDLER_FAILED', message: /status 9 \(nothing on its standard error\)/ });
});

t.test('a handler killed by a signal is HANDLER_FAILED naming the signal', async (t) => {
  const o = await outcome(run(sh('kill -KILL $$'), ''));
  t.match(o.value, { code: 'HANDLER_FAILED', message: /killed by signal SIGKILL/ });
});

t.test('a missing or non-executable program is HANDLER_FAILED, not a crash', async (t) => {
  t.match((await outcome(run(exec(['/nonexistent/handler']), ''))).value, { code: 'HANDLER_FAILED', message: /failed to start '\/nonexistent\/handler'.*ENOENT/ });
  const dir = fs.mkdtempSync('/tmp/exec-handler-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(`${dir}/plain`, 'echo hi\n', { mode: 0o644 });
  t.match((await outcome(run(exec([`${dir}/plain`]), ''))).value, { code: 'HANDLER_FAILED', message: /failed to start.*EACCES/ });
});

t.test('a handler that never reads 16 MiB of input finishes, and one that closes stdout early gives an empty result', async (t) => {
  const o = await outcome(run(sh('echo ignored-input'), Buffer.alloc(16 << 20)));
  t.equal(o.value, 'resolved');
  t.equal((await run(sh('echo ignored-input'), Buffer.alloc(16 << 20))).toString(), 'ignored-input\n');
  t.equal((await run(sh('exec >&-; sleep 0.1; exit 0'), 'x')).length, 0);
});

t.test('more than max_result_bytes on stdout kills the group: RESULT_TOO_LARGE', async (t) => {
  const o = await outcome(run(sh('cat /dev/zero', { max_result_bytes: 1 << 20 }), ''));
  t.match(o.value, { code: 'RESULT_TOO_LARGE', message: /more than max_result_bytes \(1048576 bytes\)/ });
  t.ok(o.ms < 5000, `promptly (${o.ms} ms)`);
  t.equal((await run(sh('head -c 1048576 /dev/zero', { max_result_bytes: 1 << 20 }), '')).length, 1 << 20, 'exactly max_result_bytes is fine');
});

t.test('a background child holding standard output neither hangs the run nor outlives it', async (t) => {
  const o = await run(sh('sleep 30 & echo $!; echo done'), '');
  const [pid, done] = o.toString().trim().split('\n');
  t.equal(done, 'done');
  // SIGKILL to the group is sent when the run ends; its delivery is asynchronous.
  t.ok(await until(`background child ${pid} to die`, 2000, () => !alive(Number(pid))), `the background child (pid ${pid}) was killed with the group`);
});

t.test('the deadline kills the whole group, SIGKILL after the grace when SIGTERM is ignored', async (t) => {
  const o = await outcome(run(sh('sleep 30 & echo $! > /dev/stderr; wait'), '', 150));
  t.equal(o.value, 'deadline', 'rejects with the signal\'s reason; the caller answers DEADLINE_EXCEEDED');
  t.ok(o.ms < 2000, `at the deadline (${o.ms} ms)`);

  const dir = fs.mkdtempSync('/tmp/exec-handler-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pidFile = `${dir}/pid`;
  const stubborn = sh(`trap '' TERM; echo $$ > ${pidFile}; while :; do sleep 0.05; done`);
  const s = await outcome(run(stubborn, '', 150));
  t.equal(s.value, 'deadline');
  t.ok(s.ms < 1000, `the run ends at the deadline even when SIGTERM is ignored (${s.ms} ms)`);
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  const until = Date.now() + KILL_GRACE_MS + 3000;
  while (alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.notOk(alive(pid), 'the process that ignored SIGTERM got SIGKILL after the grace');
});

t.test('a signal that already fired stops the run before it starts', async (t) => {
  const ac = new AbortController();
  ac.abort('stopping');
  const o = await outcome(exec(['/bin/cat']).run(Buffer.from('x'), { signal: ac.signal, deadlineMs: 1000, lease: 'ab'.repeat(16), secondary: 'secondary-1' }));
  t.equal(o.value, 'stopping');
});

t.test('invalid UTF-8 and binary output come back byte for byte', async (t) => {
  const out = await run(sh("printf '\\377\\376\\000abc\\300'"), '');
  t.same([...out], [0xff, 0xfe, 0x00, 0x61, 0x62, 0x63, 0xc0]);
});
