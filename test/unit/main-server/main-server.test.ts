/**
 * Main built with fakes (slot, mailboxes, scoreboard, client side): a lease request becomes a
 * reservation in the secondary's mailbox, its answer a grant; `done` and `ready` are handled;
 * stop reports the leases still out. No files, FIFOs or sockets.
 */
import t from 'tap';
import type { FrameConnection } from '../../../daemons/common/frame-connection.js';
import type { ClientServer, FramedServerOptions } from '../../../daemons/common/framed-server.js';
import type { FrameHeader } from '../../../daemons/common/frame.js';
import type { Reserve } from '../../../daemons/common/messages.js';
import type { SlotData } from '../../../daemons/common/scoreboard-layout.js';
import { MainServer } from '../../../daemons/main-server/main-server.js';
import { fakeParts, settle } from '../lib/fake-daemon.js';
import { secondary } from '../lib/slots.js';

/** Every secondary serves echo, idempotent (what the served-types files would say). */
function everyTypeEverywhere(slots: SlotData[]) {
  const route = { instances: new Set(slots.map((s) => s.instance)), idempotent: true };
  return { lookup: (type: string) => (type === 'echo' ? route : undefined), known: () => ['echo'], sync: () => {}, syncForUnknown: () => {}, refresh: () => {}, knows: () => true };
}

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
    { ports: parts.ports, scoreboard, clientServer, types: everyTypeEverywhere(slots) },
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

t.test('a lease request reserves the secondary over its mailbox and grants the reserved lease', async (t) => {
  const { parts, request } = await build([secondary(1, { generation: 5 })]);
  const r = request({ op: 'lease', type: 'echo' });
  while (!parts.sent.some((x) => x.m.t === 'reserve')) await settle();
  const reserve = parts.sent.find((x) => x.m.t === 'reserve')!;
  t.equal(reserve.to, 'secondary-1');
  const m = reserve.m as Reserve;
  t.match(m, { id: '10-1', gen: 5 });
  t.equal(parts.slot().active ?? 0, 0, 'active reaches the slot with the heartbeat, not per request');
  parts.inbox.deliver({ v: 1, t: 'reserved', id: m.id, from: 'secondary-1', gen: 5, lease: m.lease });
  await r.done;
  t.match(r.replies, [{ ok: true, op: 'lease', secondary: 1, lease: m.lease, generation: 5 }]);
  parts.notifier.tick!(Date.now());
  t.match(parts.slot(), { requests: 1, failures: 0, active: 0 });
  t.match(parts.notifier.sent.at(-1), /^STATUS=ready: 1 leases granted, 0 refused, 0 in progress, 0 queued; 1 secondaries alive$/);
});

t.test("stop reports the leases still out, and an earlier main's done is accounted for", async (t) => {
  const { m, parts, request } = await build([secondary(1, { generation: 5 })]);
  const r = request({ op: 'lease', type: 'echo' });
  while (!parts.sent.some((x) => x.m.t === 'reserve')) await settle();
  const reserve = parts.sent.find((x) => x.m.t === 'reserve')!.m as Reserve;
  parts.inbox.deliver({ v: 1, t: 'reserved', id: reserve.id, from: 'secondary-1', gen: 5, lease: reserve.lease });
  await r.done;
  parts.inbox.deliver({ v: 1, t: 'done', from: 'secondary-1', gen: 5, lease: 'e'.repeat(32), claimed: true, requests: 4, failed: 0 });
  await m.stop('SIGTERM');
  t.match(parts.notifier.sent.find((s) => s.startsWith('STOPPING=1')), 'STOPPING=1 stopping (SIGTERM): draining 0 requests');
  const messages = parts.lines.map((l) => l.message);
  t.ok(messages.includes('accounted for 1 leases granted by an earlier main process, ended on secondary-1: 1 used, 4 requests served, 0 failed; 0 expired unused'));
  t.ok(messages.includes("1 of this process's leases not yet ended: the next main process accounts for them as their secondaries report; 0 ended, 1 of an earlier process accounted for"));
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
