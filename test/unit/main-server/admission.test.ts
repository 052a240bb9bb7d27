import t from 'tap';
import { defaultConfig } from '../../../daemons/common/config.js';
import { DispatchError } from '../../../daemons/common/errors.js';
import type { SlotData } from '../../../daemons/common/scoreboard-layout.js';
import { formatDaemonId, type DaemonId } from '../../../daemons/common/topology.js';
import { AdmissionQueue } from '../../../daemons/main-server/admission-queue.js';
import { Admission } from '../../../daemons/main-server/admission.js';
import { LeaseLedger } from '../../../daemons/main-server/lease-ledger.js';
import type { RpcAnswer, RpcRequest } from '../../../daemons/main-server/mailbox-rpc.js';
import { fakeLogger } from '../lib/fake-daemon.js';
import { secondary } from '../lib/slots.js';

/** How a fake secondary answers a reservation. */
type Behaviour = 'reserve' | 'full' | 'stopping' | 'silent' | 'unwritable' | 'unknown-type';

/** A fake served-types index: `serves[type]` lists the instances that serve it (default: every slot serves echo, sha256, sleep). */
function fakeTypes(slots: SlotData[], serves?: Record<string, { instances: number[]; idempotent: boolean }>, published = true) {
  const all = slots.filter((s) => s.kind === 'secondary').map((s) => s.instance);
  const table = serves ?? Object.fromEntries(['echo', 'sha256', 'sleep'].map((n) => [n, { instances: all, idempotent: true }]));
  const refreshed: Array<[number, number]> = [];
  return {
    refreshed,
    lookup: (type: string) => (table[type] ? { instances: new Set(table[type]!.instances), idempotent: table[type]!.idempotent } : undefined),
    known: () => Object.keys(table).sort(),
    sync: () => undefined,
    syncForUnknown: () => undefined,
    refresh: (n: number, gen: number) => void refreshed.push([n, gen]),
    knows: () => published,
  };
}

function build(slots: SlotData[], behaviour: Record<number, Behaviour>, o: { queueMs?: number; queueMax?: number; serves?: Record<string, { instances: number[]; idempotent: boolean }>; published?: boolean } = {}) {
  const config = defaultConfig();
  config.main.queue_timeout_ms = o.queueMs ?? 50;
  const calls: Array<{ to: string; req: RpcRequest }> = [];
  const incidents: Array<{ key: string; message: string; level: string | undefined }> = [];
  const { logger } = fakeLogger();
  const ledger = new LeaseLedger(logger);
  const queue = new AdmissionQueue(o.queueMax ?? 100);
  const state = { stopping: false, slots, unreadable: false, queueChanges: 0 };
  const types = fakeTypes(slots, o.serves, o.published ?? true);
  const admission = new Admission({
    config: () => config,
    types,
    scoreboard: {
      read: () => {
        if (state.unreadable) throw new DispatchError('SCOREBOARD_IO', 'EIO');
        return { createdMs: 0, slots: state.slots.map((s) => ({ ...s, heartbeatMs: Date.now() })) };
      },
      close: () => {},
    },
    rpc: {
      call: async (target: DaemonId, req: RpcRequest): Promise<RpcAnswer | undefined> => {
        const to = formatDaemonId(target);
        calls.push({ to, req });
        const how = target.kind === 'secondary' ? behaviour[target.instance] : undefined;
        if (how === 'unwritable') throw new DispatchError('MAILBOX_NO_READER', 'no reader');
        if (how === 'silent') return undefined;
        if (how === 'reserve') return { v: 1, t: 'reserved', id: 'x-1', from: to, gen: req.gen, lease: req.lease };
        return { v: 1, t: 'refused', id: 'x-1', from: to, gen: req.gen, reason: how === 'stopping' ? 'stopping' : how === 'unknown-type' ? 'unknown-type' : 'full' };
      },
    },
    ledger,
    queue,
    stopping: () => state.stopping,
    incident: (key, message, _fields, level) => void incidents.push({ key, message, level }),
    queueChanged: () => void state.queueChanges++,
    processExists: () => true,
  });
  return { admission, calls, incidents, ledger, queue, state, config, types };
}

t.test('an unknown type is refused before anything is reserved', async (t) => {
  const { admission, calls } = build([secondary(1)], { 1: 'reserve' });
  await t.rejects(admission.lease('nope'), { code: 'UNKNOWN_TYPE' });
  t.same(calls, []);
});

t.test('the least-loaded secondary is reserved; the grant names its socket and the lease lifetime', async (t) => {
  const { admission, calls, ledger, config } = build([secondary(1, { active: 3 }), secondary(2, { active: 1, generation: 42 })], { 1: 'reserve', 2: 'reserve' });
  const grant = await admission.lease('echo');
  t.same(calls.map((c) => c.to), ['secondary-2']);
  t.match(grant, { ok: true, op: 'lease', secondary: 2, socket: `${config.paths.runtime_dir}/secondary-2.sock`, generation: 42, expires_in_ms: config.main.lease_ttl_ms });
  t.equal(grant.lease, calls[0]!.req.lease, 'the lease reserved is the lease granted');
  t.equal(calls[0]!.req.gen, 42, 'reserved for the generation on the scoreboard');
  t.equal(ledger.out, 1, 'the ledger waits for its done');
  t.equal(admission.secondariesAlive, 2);
});

t.test('a secondary that misses a reservation is cooled down and the next one is tried', async (t) => {
  const { admission, calls, incidents, ledger } = build([secondary(1), secondary(2, { active: 1 })], { 1: 'silent', 2: 'reserve' });
  const grant = await admission.lease('echo');
  t.equal(grant.secondary, 2);
  t.match(incidents, [{ key: 'reserve-timeout:1', message: 'secondary-1 did not answer a reservation within 500 ms; not choosing it for 1000 ms, trying another secondary', level: 'warning' }]);
  calls.length = 0;
  await admission.lease('echo');
  t.same(calls.map((c) => c.to), ['secondary-2'], 'secondary-1 is not chosen while cooling down');
  admission.secondaryReady(1, 1);
  calls.length = 0;
  t.equal((await admission.lease('echo')).secondary, 2);
  t.same(calls.map((c) => c.to), ['secondary-1', 'secondary-2'], 'after its ready message secondary-1 is tried first again (and stays silent)');
  t.equal(ledger.out, 5, 'three granted, and two held by a silent secondary, whose done is awaited');
});

t.test('a reservation that cannot be written is an incident; its lease is forgotten', async (t) => {
  const { admission, incidents, ledger } = build([secondary(1), secondary(2, { active: 1 })], { 1: 'unwritable', 2: 'reserve' });
  t.equal((await admission.lease('echo')).secondary, 2);
  t.match(incidents, [{ key: 'reserve-write:1:MAILBOX_NO_READER', message: 'failed to reserve secondary-1: no reader; trying another secondary' }]);
  t.equal(ledger.out, 1, 'only the granted lease is out');
});

t.test('every secondary full: BUSY after the queue timeout, with a retry hint; refused leases forgotten', async (t) => {
  const { admission, ledger, state } = build([secondary(1), secondary(2, { state: 'full', active: 4 })], { 1: 'full' });
  await t.rejects(admission.lease('echo', 20), { code: 'BUSY', retryAfterMs: 250, message: /^every secondary is busy \(waited 20 ms in the admission queue\)/ });
  t.equal(ledger.out, 0);
  t.ok(state.queueChanges >= 2, 'waiting in the queue is published');
});

t.test('no secondary running, or none answering: UNAVAILABLE saying which', async (t) => {
  const none = build([secondary(1, { state: 'stopped' })], {});
  await t.rejects(none.admission.lease('echo'), { code: 'UNAVAILABLE', message: /^no secondary server is running \(waited 50 ms\)/ });
  const stopping = build([secondary(1)], { 1: 'stopping' });
  await t.rejects(stopping.admission.lease('echo'), { code: 'UNAVAILABLE', message: /^none of the 1 running secondaries answered/ });
  const unreadable = build([secondary(1)], { 1: 'reserve' });
  unreadable.state.unreadable = true;
  await t.rejects(unreadable.admission.lease('echo'), { code: 'UNAVAILABLE', message: 'failed to read the scoreboard: EIO' });
  t.throws(() => unreadable.admission.refresh(Date.now()), { code: 'SCOREBOARD_IO' });
});

t.test('a full queue refuses at once; a stopping main answers SHUTTING_DOWN', async (t) => {
  const full = build([secondary(1, { state: 'full', active: 4 })], {}, { queueMax: 0, queueMs: 60_000 });
  await t.rejects(full.admission.lease('echo'), { code: 'BUSY' });
  const stopping = build([secondary(1)], { 1: 'reserve' });
  stopping.state.stopping = true;
  await t.rejects(stopping.admission.lease('echo'), { code: 'SHUTTING_DOWN' });
});

t.test('a queued request is served when a secondary frees a lease and wakes the queue', async (t) => {
  const { admission, queue, state } = build([secondary(1, { state: 'full', active: 4 })], { 1: 'reserve' }, { queueMs: 60_000 });
  const pending = admission.lease('echo');
  while (queue.length === 0) await new Promise((r) => setImmediate(r));
  state.slots = [secondary(1, { state: 'busy', active: 3 })];
  queue.wake(1);
  t.equal((await pending).secondary, 1);
});

t.test('a type goes only to the secondaries that serve it; the grant names the type and its idempotency', async (t) => {
  const { admission, calls } = build([secondary(1), secondary(2)], { 1: 'reserve', 2: 'reserve' }, { serves: { heavy: { instances: [2], idempotent: false }, echo: { instances: [1, 2], idempotent: true } } });
  for (let i = 0; i < 4; i++) {
    const g = await admission.lease('heavy');
    t.equal(g.secondary, 2, 'heavy on secondary 2 only');
    t.equal(g.type, 'heavy');
    t.equal(g.idempotent, false);
  }
  t.same([...new Set(calls.map((c) => c.to))], ['secondary-2'], 'secondary 1 was never asked for heavy');
  t.same(calls.map((c) => c.req.type), ['heavy', 'heavy', 'heavy', 'heavy'], 'each reservation names its type');
  t.equal((await admission.lease('echo')).idempotent, true);
  await t.rejects(admission.lease('nope'), { code: 'UNKNOWN_TYPE', message: /no secondary serves request type 'nope'; the types served: echo, heavy/ });
});

t.test('a known type whose secondaries are all down is UNAVAILABLE, not UNKNOWN_TYPE', async (t) => {
  const { admission } = build([secondary(1)], { 1: 'reserve' }, { serves: { heavy: { instances: [9], idempotent: false } } });
  await t.rejects(admission.lease('heavy', 10), { code: 'UNAVAILABLE' });
});

t.test("a secondary that refuses a type it does not serve (a reload under way) has its types read again", async (t) => {
  const { admission, types, calls } = build([secondary(1), secondary(2)], { 1: 'unknown-type', 2: 'reserve' });
  t.equal((await admission.lease('echo')).secondary, 2);
  t.same(types.refreshed, [[1, secondary(1).generation]]);
  t.same(calls.map((c) => c.to), ['secondary-1', 'secondary-2']);
});

t.test('while a running secondary has not published its types yet (the suite starting), an unknown type waits and is UNAVAILABLE, not UNKNOWN_TYPE', async (t) => {
  const { admission, calls } = build([secondary(1)], { 1: 'reserve' }, { serves: {}, published: false });
  await t.rejects(admission.lease('echo', 10), { code: 'UNAVAILABLE', retryable: true });
  t.same(calls, [], 'nothing reserved');
  const none = build([], {}, { serves: {} });
  await t.rejects(none.admission.lease('echo', 10), { code: 'UNAVAILABLE' }, 'no secondary running at all: unavailable, not unknown');
});
