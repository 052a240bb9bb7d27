/**
 * The client library's retries follow the lease's idempotency flag (docs/PROTOCOL.md §4):
 * against a fake main and a fake secondary on unix sockets, each scripted per attempt.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { DispatchClient } from '../../../daemons/client/client.js';
import { FrameConnection } from '../../../daemons/common/frame-connection.js';
import type { Frame } from '../../../daemons/common/frame.js';

type SecondaryAct = 'answer' | 'drop' | 'cut-off' | 'handler-failed';

/** A fake suite: main grants leases of `idempotent`; the secondary does `acts[i]` on the i-th run frame. */
async function fakeSuite(t: Test, idempotent: boolean, acts: SecondaryAct[]) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'retries-'));
  const mainSock = path.join(dir, 'main.sock');
  const secSock = path.join(dir, 'secondary-1.sock');
  let leases = 0;
  let runs = 0;
  const serve = (sock: string, onFrame: (c: FrameConnection, f: Frame) => void) =>
    new Promise<net.Server>((resolve) => {
      const server = net.createServer((s) => {
        const c = new FrameConnection(s, { maxBodyBytes: 1 << 20, idleTimeoutMs: 0 });
        c.on('frame', (f) => onFrame(c, f));
        c.on('error', () => undefined);
      });
      server.listen(sock, () => resolve(server));
    });
  const main = await serve(mainSock, (c, f) => {
    leases++;
    c.send({ ok: true, op: 'lease', secondary: 1, socket: secSock, lease: 'ab'.repeat(16), generation: 7, expires_in_ms: 3000, type: String(f.header.type), idempotent });
  });
  const sec = await serve(secSock, (c, f) => {
    const act = acts[runs++] ?? 'answer';
    if (act === 'answer') c.send({ ok: true, op: 'result', type: f.header.type, elapsed_ms: 0.1, secondary: 1, generation: 7 }, f.body);
    else if (act === 'drop') c.destroy();
    else if (act === 'cut-off') c.send({ ok: false, code: 'SHUTTING_DOWN', message: 'secondary-1 is stopping and cut off the request', retryable: true, may_have_run: true });
    else c.send({ ok: false, code: 'HANDLER_FAILED', message: 'the handler exited with status 1' });
  });
  t.teardown(() => {
    main.close();
    sec.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { client: new DispatchClient({ socket: mainSock, timeoutMs: 10_000 }), counts: () => ({ leases, runs }) };
}

t.test('idempotent: a lost answer is retried on a fresh lease (at least once)', async (t) => {
  const s = await fakeSuite(t, true, ['drop', 'answer']);
  t.equal((await s.client.request('echo', Buffer.from('x'))).toString(), 'x');
  t.same(s.counts(), { leases: 2, runs: 2 });
});

t.test('not idempotent: a lost answer is OUTCOME_UNKNOWN, never a second run (at most once)', async (t) => {
  const s = await fakeSuite(t, false, ['drop', 'answer']);
  await t.rejects(s.client.request('charge', Buffer.from('x')), { code: 'OUTCOME_UNKNOWN', mayHaveRun: true, message: /the 'charge' request may or may not have run on secondary-1 \(CONNECTION_LOST: .*\); it was not sent again because 'charge' is not idempotent \(at most once\)/ });
  t.same(s.counts(), { leases: 1, runs: 1 });
});

t.test('a run cut off by a stopping secondary (may_have_run): retried only when idempotent', async (t) => {
  const a = await fakeSuite(t, true, ['cut-off', 'answer']);
  t.equal((await a.client.request('echo', Buffer.from('y'))).toString(), 'y');
  t.same(a.counts(), { leases: 2, runs: 2 });
  const b = await fakeSuite(t, false, ['cut-off', 'answer']);
  await t.rejects(b.client.request('charge', Buffer.from('y')), { code: 'OUTCOME_UNKNOWN', message: /SHUTTING_DOWN/ });
  t.same(b.counts(), { leases: 1, runs: 1 });
});

t.test('a handler failure is final whatever the type', async (t) => {
  const s = await fakeSuite(t, true, ['handler-failed']);
  await t.rejects(s.client.request('echo', Buffer.from('z')), { code: 'HANDLER_FAILED', retryable: false });
  t.same(s.counts(), { leases: 1, runs: 1 });
});

t.test('a failure before the run frame is retried even for a type that is not idempotent', async (t) => {
  const s = await fakeSuite(t, false, []);
  let refused = 0;
  const client = new DispatchClient({
    socket: (s.client as unknown as { socket: string }).socket,
    timeoutMs: 10_000,
    // The first lease names a socket nobody listens on: CONNECT_FAILED before any run frame.
    onLease: (g) => {
      if (refused++ === 0) g.socket = '/nonexistent/secondary.sock';
    },
  });
  t.equal((await client.request('charge', Buffer.from('w'))).toString(), 'w');
  t.same(s.counts(), { leases: 2, runs: 1 });
});

t.test('a session closed already: run sends nothing and says so (CONNECTION_LOST, not "may have run")', async (t) => {
  const s = await fakeSuite(t, false, ['answer', 'answer']);
  const grant = await s.client.lease('charge');
  const { Session } = await import('../../../daemons/client/session.js');
  const session = await Session.open(grant, 1 << 20, 1000);
  t.equal((await session.run('charge', Buffer.from('1'), 1000)).toString(), '1');
  session.close();
  await t.rejects(session.run('charge', Buffer.from('2'), 1000), { code: 'CONNECTION_LOST', mayHaveRun: false, message: /^the session on secondary-1 is closed \(its lease ended\): nothing was sent; run the 'charge' request on a new lease$/ });
  t.same(s.counts(), { leases: 1, runs: 1 }, 'the second run frame never reached the secondary');
  s.client.close();
});

t.test('options out of range are refused before anything is sent (BAD_REQUEST)', async (t) => {
  for (const [options, name] of [
    [{ timeoutMs: 0 }, 'timeoutMs'],
    [{ timeoutMs: -1 }, 'timeoutMs'],
    [{ timeoutMs: Number.NaN }, 'timeoutMs'],
    [{ timeoutMs: Number.POSITIVE_INFINITY }, 'timeoutMs'],
    [{ answerTimeoutMs: 0 }, 'answerTimeoutMs'],
    [{ attempts: 0 }, 'attempts'],
    [{ attempts: 1.5 }, 'attempts'],
    [{ deadlineMs: 0 }, 'deadlineMs'],
    [{ deadlineMs: 3_600_001 }, 'deadlineMs'],
    [{ deadlineMs: 1.5 }, 'deadlineMs'],
    [{ maxResultBytes: -1 }, 'maxResultBytes'],
  ] as const) {
    t.throws(() => new DispatchClient(options), { code: 'BAD_REQUEST', message: new RegExp(`^${name} must be .*; nothing was sent$`) }, JSON.stringify(options));
  }
  t.doesNotThrow(() => new DispatchClient({ timeoutMs: 1, answerTimeoutMs: 1, attempts: 1, deadlineMs: 3_600_000, maxResultBytes: 0 }), 'the bounds themselves are fine');
});
