/**
 * RunFrameHandler (secondary-server/run-frame-handler.ts) on fakes: a served request is
 * claimed with the limits and run with its deadline, an unserved type is refused before any
 * claim, a refused lease is an incident and nothing runs, an unexpected error is INTERNAL and
 * logged; `running` is entered and left on every path. No sockets, leases or handlers.
 */
import t from 'tap';
import { DispatchError } from '../../../daemons/common/errors.js';
import type { FrameConnection } from '../../../daemons/common/frame-connection.js';
import type { FrameHeader } from '../../../daemons/common/frame.js';
import { LeaseSigner } from '../../../daemons/common/lease-token.js';
import type { RequestType } from '../../../daemons/common/request-type.js';
import type { Lease } from '../../../daemons/secondary-server/lease-table.js';
import { RunFrameHandler, type ConnectionLease, type RunFramePorts } from '../../../daemons/secondary-server/run-frame-handler.js';
import type { RunRequestInfo } from '../../../daemons/secondary-server/type-runner.js';
import { fakeLogger } from '../lib/fake-daemon.js';

/** A well-formed lease token (the fake lease table does not check it). */
const TOKEN = new LeaseSigner(Buffer.alloc(32, 5), 3, 31).mint(7, Date.now() + 3000, 'echo');

/** A handler on fakes; `run` is what the type runner does, `claim` what the lease table does. */
function build(o: { run?: (data: Buffer, info: RunRequestInfo) => Promise<Buffer>; claim?: () => void } = {}) {
  const calls: string[] = [];
  const claims: Array<{ type: string; limits: { maxLeases: number; concurrency: number } }> = [];
  const runs: Array<{ type: string; data: string; info: RunRequestInfo }> = [];
  const incidents: Array<{ key: string; level: string; fields: Record<string, unknown> }> = [];
  const counted = { served: 0, failed: 0 };
  const lease = { token: TOKEN, seq: 7, type: 'echo', requests: 0, failed: 0 } as Lease;
  const { logger, lines } = fakeLogger();
  const ports: RunFramePorts = {
    name: 'secondary-3',
    instance: 3,
    generation: 31,
    logger,
    runner: {
      get: (name: string) => (name === 'echo' ? ({ name: 'echo', concurrency: 4 } as RequestType) : undefined),
      run: async (type: string, data: Buffer, info: RunRequestInfo) => {
        runs.push({ type, data: data.toString(), info });
        return (o.run ?? (async (d) => d))(data, info);
      },
    },
    leases: {
      claim: (req, _conn, state, _now, limits) => {
        claims.push({ type: req.type, limits });
        o.claim?.();
        state.lease = lease;
        return lease;
      },
    },
    counters: { served: () => void counted.served++, failed: () => void counted.failed++ },
    maxLeases: () => 2,
    enter: () => void calls.push('enter'),
    leave: () => void calls.push('leave'),
    publishSoon: () => void calls.push('publish'),
    incident: (key, _message, fields, level) => void incidents.push({ key, level, fields }),
  };
  const replies: Array<{ header: FrameHeader; body: Buffer | undefined }> = [];
  const conn = {
    isClosed: false,
    busy: () => void calls.push('busy'),
    idle: () => void calls.push('idle'),
    send: (header: FrameHeader, body?: Buffer) => {
      replies.push({ header, body });
      return true;
    },
  } as unknown as FrameConnection;
  const handler = new RunFrameHandler(ports);
  const state: ConnectionLease = { lease: undefined };
  const send = (header: FrameHeader, body = 'x') => handler.handle(conn, { header, body: Buffer.from(body) }, 'client#1', state);
  return { send, conn, state, lease, calls, claims, runs, incidents, counted, replies, lines };
}

const frame = (type = 'echo', extra: Record<string, unknown> = {}) => ({ op: 'run', lease: TOKEN, generation: 31, type, ...extra });

t.test('a served request is claimed with max_leases and its concurrency, run with its deadline and lease, and answered', async (t) => {
  const h = build();
  await h.send(frame('echo', { deadline_ms: 1500 }), 'hello');
  t.same(h.claims, [{ type: 'echo', limits: { maxLeases: 2, concurrency: 4 } }]);
  t.same(h.runs, [{ type: 'echo', data: 'hello', info: { deadlineMs: 1500, lease: TOKEN, peer: 'client#1' } }]);
  t.equal(h.replies.length, 1);
  t.match(h.replies[0]!.header, { ok: true, op: 'result', type: 'echo', secondary: 3, generation: 31 });
  t.equal(h.replies[0]!.body?.toString(), 'hello');
  t.equal(h.state.lease, h.lease, "the connection holds the claimed lease");
  t.same({ requests: h.lease.requests, failed: h.lease.failed }, { requests: 1, failed: 0 });
  t.same(h.counted, { served: 1, failed: 0 });
  t.same(h.calls, ['busy', 'enter', 'publish', 'leave', 'publish', 'idle']);
});

t.test('a type this secondary does not serve is refused UNKNOWN_TYPE before its lease is claimed', async (t) => {
  const h = build();
  await h.send(frame('resize'));
  t.same(h.claims, [], 'no claim');
  t.same(h.runs, [], 'nothing ran');
  t.match(h.replies[0]!.header, { ok: false, code: 'UNKNOWN_TYPE', message: /secondary-3 does not serve request type 'resize'/ });
  t.same(h.counted, { served: 0, failed: 1 });
  t.same(h.calls, ['busy', 'enter', 'publish', 'leave', 'publish', 'idle']);
});

t.test('a bad run header is BAD_REQUEST', async (t) => {
  const h = build();
  await h.send({ op: 'run', type: 42 });
  t.match(h.replies[0]!.header, { ok: false, code: 'BAD_REQUEST' });
  t.same(h.claims, []);
});

t.test('a refused lease answers its code, is a warning incident of its fault, and runs nothing', async (t) => {
  const h = build({ claim: () => { throw new DispatchError('LEASE_UNKNOWN', 'forged', { fields: { lease_fault: 'forged' } }); } });
  await h.send(frame());
  t.same(h.runs, []);
  t.match(h.replies[0]!.header, { ok: false, code: 'LEASE_UNKNOWN' });
  t.same(h.incidents, [{ key: 'lease:forged', level: 'warning', fields: { peer: 'client#1', code: 'LEASE_UNKNOWN', lease_fault: 'forged' } }]);
  t.same(h.counted, { served: 0, failed: 1 });
});

t.test("a handler's DispatchError is answered as is; an unexpected error is INTERNAL, logged with its stack, and counted on the lease", async (t) => {
  const h = build({ run: async () => { throw new DispatchError('HANDLER_FAILED', "the 'echo' handler failed: boom"); } });
  await h.send(frame());
  t.match(h.replies[0]!.header, { ok: false, code: 'HANDLER_FAILED' });
  t.same(h.lines.filter((l) => l.level === 'error'), [], 'an expected failure is not logged as an error');

  const i = build({ run: async () => { throw new TypeError('oops'); } });
  await i.send(frame());
  t.match(i.replies[0]!.header, { ok: false, code: 'INTERNAL', message: "failed to run a 'echo' request: oops" });
  const logged = i.lines.filter((l) => l.level === 'error');
  t.equal(logged.length, 1);
  t.match(logged[0]!.fields, { peer: 'client#1', code: 'INTERNAL', type: 'echo', stack: /TypeError: oops/ });
  t.same({ requests: i.lease.requests, failed: i.lease.failed }, { requests: 0, failed: 1 });
  t.same(i.calls, ['busy', 'enter', 'publish', 'leave', 'publish', 'idle']);
});

t.test('a frame on a connection already closed is ignored', async (t) => {
  const h = build();
  (h.conn as { isClosed: boolean }).isClosed = true;
  await h.send(frame());
  t.same(h.calls, []);
  t.same(h.replies, []);
});
