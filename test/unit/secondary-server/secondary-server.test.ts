/**
 * A secondary built with fakes (slot, mailboxes, client side): credits granted to main over
 * its mailbox, leases minted from them verified by the secondary alone, every kind of bad
 * lease refused with its code and logged once per interval, a request run on a claimed lease
 * with `running` published while it runs, and stop. No files, FIFOs or sockets.
 */
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { loadTypeRegistry, typeDefaultsOf } from '../../../daemons/common/type-registry.js';
import type { FrameConnection } from '../../../daemons/common/frame-connection.js';
import type { ClientServer, FramedServerOptions } from '../../../daemons/common/framed-server.js';
import type { Frame, FrameHeader } from '../../../daemons/common/frame.js';
import { LeaseSigner } from '../../../daemons/common/lease-token.js';
import type { Credit } from '../../../daemons/common/messages.js';
import { SecondaryServer } from '../../../daemons/secondary-server/secondary-server.js';
import { fakeParts, settle } from '../lib/fake-daemon.js';

const BUILTIN_TYPES = fileURLToPath(new URL('../../../packaging/types.d', import.meta.url));

const GEN = 31;
const KEY = Buffer.alloc(32, 5);
const signer = new LeaseSigner(KEY, 3, GEN);
/** A lease main would mint from credit `seq`. */
const lease = (seq: number, type = 'echo', exp = Date.now() + 3000) => signer.mint(seq, exp, type);
const run = (token: string, type = 'echo', generation = GEN) => ({ header: { op: 'run', lease: token, generation, type }, body: Buffer.from('x') });

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
    { ports: parts.ports, clientServer, types: loadTypeRegistry({ dirs: [BUILTIN_TYPES], defaults: typeDefaultsOf(parts.config) }), publishTypes: () => undefined, leaseKey: KEY },
  );
  t.teardown(() => s.stop('test over'));
  /** Opens a fake client connection and sends it one frame. */
  const connect = () => {
    const { conn, replies } = fakeConnection();
    const handlers = client!.accept('client#1');
    return { replies, frame: (f: Frame) => handlers.onFrame(conn, f), close: () => handlers.onClose?.() };
  };
  /** The `credit` messages sent to main so far. */
  const credits = () => parts.sent.filter((x) => x.m.t === 'credit').map((x) => x.m as Credit);
  /** The first `credit` message not yet returned, waited for if none is there yet (they come within CREDIT_BATCH_MS). */
  let seen = credits().length;
  const batch = async () => {
    while (credits().length === seen) await new Promise((r) => setTimeout(r, 1));
    return credits()[seen++]!;
  };
  return { s, parts, connect, credits, batch };
}

t.test('started: the slot is ready with its capacity, READY=1 sent, main told and given its capacity as credits', async (t) => {
  const { parts } = await build(t);
  await settle();
  t.match(parts.slot(), { state: 'ready', active: 0, capacity: 2, running: 0 });
  t.match(parts.notifier.sent[0], /^READY=1 ready: 0\/2 leases in use, 0 running, 0 served, 0 failed$/);
  t.match(parts.sent, [
    { to: 'main', m: { v: 1, t: 'ready', from: 'secondary-3', gen: GEN } },
    { to: 'main', m: { v: 1, t: 'credit', from: 'secondary-3', gen: GEN, seq: 1, n: 2, claimed: [], ended: [] } },
  ]);
  const exp = (parts.sent[1]!.m as Credit).exp - Date.now();
  t.ok(exp > 5000 && exp <= 6000, `credits valid for two lease lifetimes (${exp} ms)`);
});

t.test('a request on a minted lease runs, is published as running, and answers; the claim, the end and a new credit reach main in batches', async (t) => {
  const { parts, connect, batch } = await build(t);
  const c = connect();
  const token = lease(1, 'sleep');
  const running = c.frame({ header: { op: 'run', lease: token, generation: GEN, type: 'sleep' }, body: Buffer.from('30') });
  while (parts.slot().running !== 1) await settle();
  t.match(parts.slot(), { running: 1, active: 1 }, 'running and the lease in use reach the slot while the request runs');
  t.match(await batch(), { n: 0, claimed: [1], ended: [] }, 'the claim, batched; no credit: one is still fresh at main');
  await running;
  t.match(c.replies, [{ header: { ok: true, op: 'result', type: 'sleep', secondary: 3, generation: GEN } }]);
  t.equal(String(c.replies[0]!.body), 'slept 30');
  await c.frame({ header: { op: 'run', lease: token, generation: GEN, type: 'echo' }, body: Buffer.from('x') });
  t.match(c.replies.at(-1), { header: { ok: false, code: 'LEASE_WRONG_TYPE' } }, 'another type on it is refused');
  await c.frame({ header: { op: 'run', lease: token, generation: GEN, type: 'sleep' }, body: Buffer.from('0') });
  while (parts.slot().requests !== 2) await settle();
  t.match(parts.slot(), { running: 0, requests: 2, failures: 1 });
  c.close();
  t.match(await batch(), { seq: 3, n: 1, claimed: [], ended: [[1, 2, 0]] }, 'its end and its capacity back as a new credit; the refused run did not run on the lease');
  while (parts.slot().active !== 0) await settle(); // published within COUNTERS_PUBLISH_MS
  t.match(parts.slot(), { state: 'ready', active: 0 });
});

t.test('every kind of bad lease is refused with its code, and logged once per interval per kind', async (t) => {
  const { parts, connect } = await build(t);
  const other = new LeaseSigner(Buffer.alloc(32, 6), 3, GEN).mint(1, Date.now() + 3000, 'echo');
  const good = lease(1);
  const flipped = good.slice(0, 60) + (good[60] === '0' ? '1' : '0') + good.slice(61);
  const cases: Array<[string, ReturnType<typeof run>, string]> = [
    ['malformed', run('ab'.repeat(16)), 'LEASE_UNKNOWN'],
    ['old-key', run(other), 'LEASE_STALE'],
    ['wrong-generation', run(good, 'echo', GEN + 1), 'LEASE_STALE'],
    ['forged', run(flipped), 'LEASE_UNKNOWN'],
    ['wrong-type', run(good, 'sha256'), 'LEASE_WRONG_TYPE'],
    ['expired', run(lease(2, 'echo', Date.now() - 1)), 'LEASE_EXPIRED'],
    ['never-granted', run(lease(99)), 'LEASE_UNKNOWN'],
  ];
  for (const [kind, frame, code] of cases) {
    for (let i = 0; i < 2; i++) {
      const c = connect();
      await c.frame(frame);
      t.match(c.replies, [{ header: { ok: false, code, ...(code === 'LEASE_WRONG_TYPE' ? {} : { retryable: true }) } }], `${kind}: ${code}`);
    }
  }
  const c = connect();
  await c.frame(run(good));
  t.match(c.replies, [{ header: { ok: true } }], 'the good lease, refused for another type before, still works');
  const again = connect();
  await again.frame(run(good));
  t.match(again.replies, [{ header: { ok: false, code: 'LEASE_UNKNOWN', message: /already used/ } }], 'replayed on another connection');
  const logged = parts.lines.filter((l) => l.message.startsWith('refused a lease'));
  t.same(logged.map((l) => l.fields.lease_fault), [...cases.map(([k]) => k), 'replayed'], 'one line per kind, not per refusal');
  t.ok(logged.every((l) => l.level === 'warning'));
});

t.test('a secondary full when a lease is presented refuses it BUSY (nothing ran), and reports it ended', async (t) => {
  const { parts, connect, batch, credits } = await build(t, 1);
  t.match(credits(), [{ seq: 1, n: 1 }]);
  // A restarted main is granted the free capacity again while the first credit is still valid:
  // two credits for one slot, as after any restart of main.
  parts.inbox.deliver({ v: 1, t: 'want', from: 'main', gen: 77, to: GEN });
  t.match(await batch(), { seq: 2, n: 1 });
  const a = connect();
  const slow = a.frame({ header: { op: 'run', lease: lease(1, 'sleep'), generation: GEN, type: 'sleep' }, body: Buffer.from('50') });
  await settle();
  const b = connect();
  await b.frame(run(lease(2)));
  t.match(b.replies, [{ header: { ok: false, code: 'BUSY', retryable: true, retry_after_ms: 20 } }]);
  const claimed: number[] = [];
  let m: Credit;
  do {
    m = await batch();
    claimed.push(...m.claimed);
  } while (m.ended.length === 0);
  t.same(claimed, [1], 'the claim of the lease in use is reported with the end; the refused lease only as ended (its end says it was claimed)');
  t.same(m.ended, [[2, 0, 0]], 'the refused lease ended, with no request served');
  await slow;
  t.equal(String(a.replies[0]?.body), 'slept 50', 'the request in use was not disturbed');
});

t.test("a `want` from a main process new to it gets the whole free capacity; one for another generation is ignored", async (t) => {
  const { parts, credits, batch } = await build(t);
  await settle();
  t.equal(credits().length, 1);
  parts.inbox.deliver({ v: 1, t: 'want', from: 'main', gen: 77, to: GEN + 1 });
  await new Promise((r) => setTimeout(r, 10));
  t.equal(credits().length, 1, 'not for this process');
  parts.inbox.deliver({ v: 1, t: 'want', from: 'main', gen: 77, to: GEN });
  t.match(await batch(), { seq: 3, n: 2 }, 'a restarted main gets fresh credits at once');
  parts.inbox.deliver({ v: 1, t: 'want', from: 'main', gen: 77, to: GEN });
  await new Promise((r) => setTimeout(r, 10));
  t.equal(credits().length, 2, 'the same main again, with its credits fresh: nothing more');
});

t.test('stop ends every lease, reports it to main and publishes stopped', async (t) => {
  const { s, parts, connect } = await build(t);
  const c = connect();
  await c.frame(run(lease(1)));
  await s.stop('SIGTERM');
  await settle();
  t.match(parts.notifier.sent, [/^READY=1/, /^STOPPING=1 stopping \(SIGTERM\): 0 requests running$/]);
  t.match(parts.sent.filter((x) => x.m.t === 'credit').at(-1), { m: { n: 0, ended: [[1, 1, 0]] } }, 'the lease in use is reported ended; no credit granted while stopping');
  t.match(parts.slot(), { state: 'stopped', active: 0, running: 0 });
  t.ok(parts.slotClosed());
  t.ok(parts.inbox.closed);
});
