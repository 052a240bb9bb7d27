/**
 * Main built with fakes (slot, mailboxes, scoreboard, client side): it asks the live
 * secondaries for credits, a lease request is minted from one with no message, `credit`
 * messages are accounted for; stop reports the leases still out. No files, FIFOs or sockets.
 */
import t from 'tap';
import type { FrameConnection } from '../../../daemons/common/frame-connection.js';
import type { ClientServer, FramedServerOptions } from '../../../daemons/common/framed-server.js';
import type { FrameHeader } from '../../../daemons/common/frame.js';
import { LeaseSigner } from '../../../daemons/common/lease-token.js';
import type { SlotData } from '../../../daemons/common/scoreboard-layout.js';
import { MainServer } from '../../../daemons/main-server/main-server.js';
import { fakeParts } from '../lib/fake-daemon.js';
import { secondary } from '../lib/slots.js';

/** Every secondary serves echo, idempotent (what the served-types files would say). */
function everyTypeEverywhere(slots: SlotData[]) {
  const route = { instances: new Set(slots.map((s) => s.instance)), idempotent: true };
  return { lookup: (type: string) => (type === 'echo' ? route : undefined), known: () => ['echo'], sync: () => {}, syncForUnknown: () => {}, refresh: () => {}, knows: () => true };
}

const KEY = Buffer.alloc(32, 3);

async function build(slots: SlotData[]) {
  const parts = fakeParts(2);
  let client: FramedServerOptions | undefined;
  const clientServer = (o: FramedServerOptions): ClientServer => {
    client = o;
    return { listen: async () => {}, address: () => null, close: () => {}, endAll: () => {} };
  };
  const scoreboard = { read: () => ({ createdMs: 0, slots: slots.map((s) => ({ ...s, pid: process.pid, heartbeatMs: Date.now() })) }), close: () => {} };
  const m = await MainServer.start(
    { config: parts.config, logger: parts.logger, notifier: parts.notifier, listen: { path: '/nonexistent' }, mailboxFd: -1, generation: 0x10, pid: 77 },
    { ports: parts.ports, scoreboard, clientServer, types: everyTypeEverywhere(slots), leaseKey: KEY },
  );
  const request = (header: FrameHeader) => {
    const replies: FrameHeader[] = [];
    const conn = { isClosed: false, busy: () => {}, idle: () => {}, send: (h: FrameHeader) => void replies.push(h) } as unknown as FrameConnection;
    const done = client!.accept('client#1').onFrame(conn, { header, body: Buffer.alloc(0) });
    return { replies, done };
  };
  return { m, parts, request };
}

t.test('a restarted main says what it re-adopted', async (t) => {
  const { parts } = await build([secondary(1, { active: 2, generation: 5 })]);
  t.match(parts.lines.find((l) => l.message.startsWith('main server ready')), {
    message: 'main server ready; re-adopted the scoreboard (start 2 of this slot): 1 secondaries running (secondary-1 generation 5), 2 leases held, which stay valid',
  });
  t.match(parts.slot(), { state: 'ready' });
});

t.test('main asks each live secondary for credits at start, and mints a lease from one with no message', async (t) => {
  const { parts, request } = await build([secondary(1, { generation: 5 })]);
  t.match(parts.sent.filter((x) => x.m.t === 'want'), [{ to: 'secondary-1', m: { v: 1, t: 'want', from: 'main', gen: 0x10, to: 5 } }], 'asked at start');
  const early = request({ op: 'lease', type: 'echo', wait_ms: 0 });
  await early.done;
  t.match(early.replies, [{ ok: false, code: 'UNAVAILABLE' }], 'no credit yet, and it never answered');
  parts.inbox.deliver({ v: 1, t: 'credit', from: 'secondary-1', gen: 5, seq: 1, n: 2, exp: Date.now() + 6000, claimed: [], ended: [] });
  const sentBefore = parts.sent.length;
  const r = request({ op: 'lease', type: 'echo' });
  await r.done;
  t.match(r.replies, [{ ok: true, op: 'lease', secondary: 1, generation: 5 }]);
  t.equal(parts.sent.length, sentBefore, 'no message for the lease');
  const lease = String(r.replies[0]!.lease);
  t.match(new LeaseSigner(KEY, 1, 5).verify(lease, 'echo', Date.now()), { ok: true, claims: { seq: 1 } }, 'the secondary verifies it by itself');
  parts.notifier.tick!(Date.now());
  t.match(parts.slot(), { requests: 1, failures: 1, active: 0 });
  t.match(parts.notifier.sent.at(-1), /^STATUS=ready: 1 leases granted, 1 refused, 0 in progress, 0 queued; 1 secondaries alive$/);
});

t.test("stop reports the leases still out, and an earlier main's leases are accounted for", async (t) => {
  const { m, parts, request } = await build([secondary(1, { generation: 5 })]);
  parts.inbox.deliver({ v: 1, t: 'credit', from: 'secondary-1', gen: 5, seq: 1, n: 4, exp: Date.now() + 6000, claimed: [], ended: [] });
  const r = request({ op: 'lease', type: 'echo' });
  await r.done;
  t.match(r.replies, [{ ok: true }]);
  parts.inbox.deliver({ v: 1, t: 'credit', from: 'secondary-1', gen: 5, seq: 5, n: 0, exp: 0, claimed: [1], ended: [[900, 4, 0]] });
  await m.stop('SIGTERM');
  t.match(parts.notifier.sent.find((s) => s.startsWith('STOPPING=1')), 'STOPPING=1 stopping (SIGTERM): draining 0 requests');
  const messages = parts.lines.map((l) => l.message);
  t.ok(messages.includes('accounted for 1 leases granted by an earlier main process, ended on secondary-1: 1 used, 4 requests served, 0 failed'), messages.join('\n'));
  t.ok(messages.includes("1 of this process's leases not yet ended: the next main process accounts for them as their secondaries report; 0 ended, 0 expired unused, 1 of an earlier process accounted for"));
  t.match(parts.slot(), { state: 'stopped', active: 0, queued: 0 });
  t.ok(parts.slotClosed());
});

t.test('a bad lease request is answered BAD_REQUEST and counted as refused', async (t) => {
  const { parts, request } = await build([]);
  const r = request({ op: 'lease' });
  await r.done;
  t.match(r.replies, [{ ok: false, code: 'BAD_REQUEST' }]);
  parts.notifier.tick!(Date.now());
  t.match(parts.slot(), { failures: 1 });
});
