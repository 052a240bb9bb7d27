import { createHash, randomBytes } from 'node:crypto';
import t from 'tap';
import { BUILTIN_HANDLERS, type BuiltinHandler as BuiltinName } from '../../../../daemons/common/request-type.js';
import { BuiltinHandler, parseSleepMs } from '../../../../daemons/secondary-server/handlers/builtin-handler.js';

const never = () => new AbortController().signal;
const run = (name: BuiltinName, data: Buffer, signal: AbortSignal) => new BuiltinHandler(name).run(data, { signal, deadlineMs: 60_000, lease: '0'.repeat(32), secondary: 'secondary-1' });

t.test('the built-in handlers: echo, sha256, sleep; only sleep waits (and so needs a deadline timer)', async (t) => {
  t.same([...BUILTIN_HANDLERS].sort(), ['echo', 'sha256', 'sleep']);
  t.same(BUILTIN_HANDLERS.filter((n) => new BuiltinHandler(n).waits), ['sleep']);
});

t.test('echo returns DATA byte for byte', async (t) => {
  for (const data of [Buffer.alloc(0), Buffer.from([0, 255, 10, 13]), randomBytes(1 << 20)]) {
    const out = await run('echo', data, never());
    t.ok(out.equals(data), `${data.length} bytes`);
  }
});

t.test('sha256 matches node:crypto, as lowercase hex', async (t) => {
  for (const data of [Buffer.alloc(0), Buffer.from('abc'), randomBytes(3 * 1024 * 1024 + 7)]) {
    const out = await run('sha256', data, never());
    t.equal(out.toString('latin1'), createHash('sha256').update(data).digest('hex'), `${data.length} bytes`);
    t.equal(out.length, 64);
    t.match(out.toString('latin1'), /^[0-9a-f]{64}$/);
  }
  t.equal((await run('sha256', Buffer.from('abc'), never())).toString(), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'FIPS 180-2 test vector');
});

t.test('parseSleepMs: a whole number of ms in ASCII decimal', async (t) => {
  t.equal(parseSleepMs(Buffer.from('0')), 0);
  t.equal(parseSleepMs(Buffer.from('250')), 250);
  t.equal(parseSleepMs(Buffer.from(' 250\n')), 250, 'surrounding whitespace (echo adds a newline)');
  t.equal(parseSleepMs(Buffer.from('007')), 7);
  for (const bad of ['', ' ', 'abc', '-1', '1.5', '1e3', '0x10', '+5', '5 ms', '12345678901', '１２']) {
    t.throws(() => parseSleepMs(Buffer.from(bad)), { code: 'BAD_REQUEST', message: /whole number of milliseconds/ }, JSON.stringify(bad));
  }
  t.throws(() => parseSleepMs(Buffer.from('x'.repeat(1000))), { message: new RegExp(`got '${'x'.repeat(32)}'$`) }, 'the echoed DATA is cut to 32 characters');
});

t.test('sleep with bad DATA is BAD_REQUEST', async (t) => {
  await t.rejects(run('sleep', Buffer.from('soon'), never()), { code: 'BAD_REQUEST' });
});

t.test('sleep sleeps, then answers "slept N"', async (t) => {
  const start = Date.now();
  const out = await run('sleep', Buffer.from('30'), never());
  t.equal(out.toString(), 'slept 30');
  t.ok(Date.now() - start >= 25, 'it waited');
  t.equal((await run('sleep', Buffer.from('0'), never())).toString(), 'slept 0');
});

t.test('sleep aborts on its signal', async (t) => {
  const ac = new AbortController();
  const start = Date.now();
  const p = run('sleep', Buffer.from('60000'), ac.signal);
  setImmediate(() => ac.abort());
  await t.rejects(p, { name: 'AbortError' });
  t.ok(Date.now() - start < 5000, 'promptly, not after 60 s');
  const done = new AbortController();
  done.abort();
  await t.rejects(run('sleep', Buffer.from('60000'), done.signal), { name: 'AbortError' }, 'an already aborted signal');
});

t.test('a sleep longer than a timer can hold is still cut off at the deadline, not answered at once', async (t) => {
  const ac = new AbortController();
  const deadline = setTimeout(() => ac.abort(), 100);
  const outcome = await run('sleep', Buffer.from('3000000000'), ac.signal).then(
    (b) => `answered '${b.toString()}'`,
    (e: Error) => e.name,
  );
  clearTimeout(deadline);
  t.equal(outcome, 'AbortError', 'cut off by its signal');
});
