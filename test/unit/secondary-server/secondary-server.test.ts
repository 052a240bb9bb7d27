/**
 * A secondary built with fakes (slot, mailboxes, client side): reservations over its mailbox,
 * the cap on an unclaimed reservation, a request run on a claimed lease with `running`
 * published while it runs, and stop. No files, FIFOs or sockets.
 */
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { loadTypeRegistry, typeDefaultsOf } from '../../../daemons/common/type-registry.js';
import type { FrameConnection } from '../../../daemons/common/frame-connection.js';
import type { ClientServer, FramedServerOptions } from '../../../daemons/common/framed-server.js';
import type { Frame, FrameHeader } from '../../../daemons/common/frame.js';
import { MAX_LEASE_TTL_MS } from '../../../daemons/common/timing.js';
import { SecondaryServer } from '../../../daemons/secondary-server/secondary-server.js';
import { fakeParts, settle } from '../lib/fake-daemon.js';

const BUILTIN_TYPES = fileURLToPath(new URL('../../../packaging/types.d', import.meta.url));

const GEN = 31;
const lease = (n: number) => n.toString(16).padStart(32, '0');

/** A client connection that keeps what the secondary answers. */
function fakeConnection() {
  const replies: Array<{ header: FrameHeader; body: Buffer | undefined }> = [];
  const conn = {
    isClosed: false,
    busy: () => {},
    idle: () => {},
    send: (header: FrameHeader, body?: Buffer) => {
      replies.push({ header, body });
      return true;
    },
  } as unknown as FrameConnection;
  return { conn, replies };
}

/** A secondary on fakes, stopped when `t` ends (its lease timers would keep the test process alive). */
async function build(t: Test, maxLeases = 2) {
  const parts = fakeParts();
  parts.config.secondary.max_leases = maxLeases;
  let client: FramedServerOptions | undefined;
  const clientServer = (o: FramedServerOptions): ClientServer => {
    client = o;
    return { listen: async () => {}, address: () => null, close: () => {}, endAll: () => {} };
  };
  const s = await SecondaryServer.start(
    { config: parts.config, logger: parts.logger, notifier: parts.notifier, instance: 3, listen: { path: '/nonexistent' }, mailboxFd: -1, generation: GEN, pid: 999 },
    // The package's built-in types, as the secondary would load them; the served-types file is not written.
    { ports: parts.ports, clientServer, types: loadTypeRegistry({ dirs: [BUILTIN_TYPES], defaults: typeDefaultsOf(parts.config) }), publishTypes: () => undefined },
  );
  t.teardown(() => s.stop('test over'));
  /** Opens a fake client connection and sends it one frame. */
  const connect = () => {
    const { conn, replies } = fakeConnection();
    const handlers = client!.accept('client#1');
    return { replies, frame: (f: Frame) => handlers.onFrame(conn, f), close: () => handlers.onClose?.() };
  };
  return { s, parts, connect };
}

t.test('started: the slot is ready with its capacity, READY=1 sent, main told', async (t) => {
  const { parts } = await build(t);
  await settle();
  t.match(parts.slot(), { state: 'ready', active: 0, capacity: 2, running: 0 });
  t.match(parts.notifier.sent[0], /^READY=1 ready: 0\/2 leases, 0 running, 0 served, 0 failed$/);
  t.same(parts.sent, [{ to: 'main', m: { v: 1, t: 'ready', from: 'secondary-3', gen: GEN } }]);
});

t.test('reservations are held up to max_leases, then refused as full; the slot says busy, then full', async (t) => {
  const { parts } = await build(t);
  const exp = Date.now() + 60_000;
  parts.inbox.deliver({ v: 1, t: 'reserve', id: 'm-1', lease: lease(1), gen: GEN, exp });
  t.match(parts.slot(), { state: 'busy', active: 1 }, 'published before the answer');
  parts.inbox.deliver({ v: 1, t: 'reserve', id: 'm-2', lease: lease(2), gen: GEN, exp });
  t.match(parts.slot(), { state: 'full', active: 2 });
  parts.inbox.deliver({ v: 1, t: 'reserve', id: 'm-3', lease: lease(3), gen: GEN, exp });
  parts.inbox.deliver({ v: 1, t: 'reserve', id: 'm-4', lease: lease(4), gen: GEN + 1, exp });
  parts.inbox.deliver({ v: 1, t: 'reserve', id: 'm-5', lease: lease(5), gen: GEN, exp: Date.now() - 1 });
  await settle();
  t.same(
    parts.sent.filter((x) => x.m.t !== 'ready').map((x) => (x.m.t === 'refused' ? `${x.m.id} refused ${x.m.reason}` : `${x.m.t} ${'id' in x.m ? x.m.id : ''}`)),
    ['reserved m-1', 'reserved m-2', 'm-3 refused full', 'm-4 refused stale-generation', 'm-5 refused expired'],
  );
});

t.test('an unclaimed lease is held until its exp, never more than MAX_LEASE_TTL_MS', async (t) => {
  const realSetTimeout = globalThis.setTimeout;
  const delays: number[] = [];
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    delays.push(ms ?? 0);
    return realSetTimeout(fn, 2_000_000_000);
  }) as typeof setTimeout;
  t.teardown(() => {
    globalThis.setTimeout = realSetTimeout;
  });
  const { parts, s } = await build(t);
  delays.length = 0;
  parts.inbox.deliver({ v: 1, t: 'reserve', id: 'f-1', lease: lease(9), gen: GEN, exp: Date.now() + 365 * 24 * 3600_000 });
  parts.inbox.deliver({ v: 1, t: 'reserve', id: 'f-2', lease: lease(10), gen: GEN, exp: Date.now() + 3000 });
  globalThis.setTimeout = realSetTimeout;
  t.ok(delays[0]! <= MAX_LEASE_TTL_MS && delays[0]! > MAX_LEASE_TTL_MS - 1000, `a forged exp a year ahead is capped (${delays[0]} ms)`);
  t.ok(delays[1]! <= 3000 && delays[1]! > 2000, `a normal exp is kept (${delays[1]} ms)`);
  await s.stop('test over');
});

t.test('a request on a claimed lease runs, is published as running, and answers; the lease ends with its connection', async (t) => {
  const { parts, connect } = await build(t);
  parts.inbox.deliver({ v: 1, t: 'reserve', id: 'm-1', lease: lease(1), gen: GEN, exp: Date.now() + 60_000 });
  const c = connect();
  const running = c.frame({ header: { op: 'run', lease: lease(1), generation: GEN, type: 'sleep' }, body: Buffer.from('30') });
  while (parts.slot().running !== 1) await settle();
  t.match(parts.slot(), { running: 1, active: 1 }, 'running reaches the slot while the request runs');
  await running;
  t.match(c.replies, [{ header: { ok: true, op: 'result', type: 'sleep', secondary: 3, generation: GEN } }]);
  t.equal(String(c.replies[0]!.body), 'slept 30');
  // A lease is for one type: this reservation named none (a dispatchd 0.1 main), so its first run bound it to sleep.
  await c.frame({ header: { op: 'run', lease: lease(1), generation: GEN, type: 'echo' }, body: Buffer.from('x') });
  t.match(c.replies.at(-1), { header: { ok: false, code: 'LEASE_WRONG_TYPE' } }, 'another type on it is refused');
  await c.frame({ header: { op: 'run', lease: lease(1), generation: GEN, type: 'sleep' }, body: Buffer.from('0') });
  while (parts.slot().running !== 0) await settle();
  t.match(parts.slot(), { running: 0, requests: 2, failures: 1 });
  c.close();
  await settle();
  t.match(parts.sent.at(-1), { to: 'main', m: { t: 'done', lease: lease(1), claimed: true, requests: 2, failed: 0 } }, 'the refused run did not run on the lease');
  t.match(parts.slot(), { state: 'ready', active: 0 });
});

t.test('an unknown or expired lease is refused with its code', async (t) => {
  const { connect } = await build(t);
  const c = connect();
  await c.frame({ header: { op: 'run', lease: lease(1), generation: GEN, type: 'echo' }, body: Buffer.alloc(0) });
  await c.frame({ header: { op: 'run', lease: lease(1), generation: GEN + 1, type: 'echo' }, body: Buffer.alloc(0) });
  t.match(c.replies.map((r) => r.header), [{ ok: false, code: 'LEASE_UNKNOWN' }, { ok: false, code: 'LEASE_STALE' }]);
});

t.test('stop ends every lease, reports it to main and publishes stopped', async (t) => {
  const { s, parts } = await build(t);
  parts.inbox.deliver({ v: 1, t: 'reserve', id: 'm-1', lease: lease(1), gen: GEN, exp: Date.now() + 60_000 });
  await s.stop('SIGTERM');
  await settle();
  t.match(parts.notifier.sent, [/^READY=1/, /^STOPPING=1 stopping \(SIGTERM\): 0 requests running$/]);
  t.ok(parts.sent.some((x) => x.m.t === 'done' && x.m.lease === lease(1) && !x.m.claimed), 'the unclaimed lease is reported ended');
  t.match(parts.slot(), { state: 'stopped', active: 0, running: 0 });
  t.ok(parts.slotClosed());
  t.ok(parts.inbox.closed);
});
