import t from 'tap';
import { defaultConfig } from '../../../daemons/common/config.js';
import { DispatchError } from '../../../daemons/common/errors.js';
import { LeaseSigner } from '../../../daemons/common/lease-token.js';
import type { SlotData } from '../../../daemons/common/scoreboard-layout.js';
import { AdmissionQueue } from '../../../daemons/main-server/admission-queue.js';
import { Admission } from '../../../daemons/main-server/admission.js';
import { CreditPool } from '../../../daemons/main-server/credit-pool.js';
import { LeaseLedger } from '../../../daemons/main-server/lease-ledger.js';
import { SCOREBOARD_REUSE_MS } from '../../../daemons/common/timing.js';
import { fakeLogger } from '../lib/fake-daemon.js';
import { secondary } from '../lib/slots.js';

const KEY = Buffer.alloc(32, 9);

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

/**
 * Admission with a real credit pool and ledger; `credits[N]` is how many credits secondary N
 * granted before the request (undefined: none, it never answered).
 */
function build(slots: SlotData[], credits: Record<number, number>, o: { queueMs?: number; queueMax?: number; serves?: Record<string, { instances: number[]; idempotent: boolean }>; published?: boolean } = {}) {
  const config = defaultConfig();
  config.main.queue_timeout_ms = o.queueMs ?? 50;
  const wants: Array<[number, number]> = [];
  const { logger } = fakeLogger();
  const ledger = new LeaseLedger(logger);
  const pool = new CreditPool(KEY);
  const queue = new AdmissionQueue(o.queueMax ?? 100);
  const state = { stopping: false, slots, unreadable: false, queueChanges: 0, reads: 0, now: 1_000_000, dead: new Set<number>(), lookups: [] as number[] };
  const types = fakeTypes(slots, o.serves, o.published ?? true);
  const grant = (n: number, count: number) => {
    const gen = state.slots.find((x) => x.instance === n)!.generation;
    pool.add(n, { v: 1, t: 'credit', from: `secondary-${n}`, gen, seq: 1, n: count, exp: Date.now() + 2 * config.main.lease_ttl_ms, claimed: [], ended: [] });
  };
  for (const [n, count] of Object.entries(credits)) grant(Number(n), count);
  const admission = new Admission({
    config: () => config,
    types,
    scoreboard: {
      read: () => {
        state.reads++;
        if (state.unreadable) throw new DispatchError('SCOREBOARD_IO', 'EIO');
        return { createdMs: 0, slots: state.slots.map((s) => ({ ...s, heartbeatMs: Date.now() })) };
      },
      close: () => {},
    },
    pool,
    want: (n, gen) => void wants.push([n, gen]),
    ledger,
    queue,
    stopping: () => state.stopping,
    incident: () => undefined,
    queueChanged: () => void state.queueChanges++,
    processExists: (pid) => {
      state.lookups.push(pid);
      return !state.dead.has(pid);
    },
    now: () => state.now,
  });
  return { admission, wants, ledger, queue, state, config, types, grant, pool };
}

t.test('an unknown type is refused before any lease is minted', async (t) => {
  const { admission, ledger } = build([secondary(1)], { 1: 4 });
  await t.rejects(admission.lease('nope'), { code: 'UNKNOWN_TYPE' });
  t.equal(ledger.out, 0);
});

t.test('the least-loaded secondary with a credit gets the lease, which its own signer verifies; no message is sent', async (t) => {
  const { admission, ledger, config, wants } = build([secondary(1, { active: 3 }), secondary(2, { active: 1, generation: 42 })], { 1: 4, 2: 4 });
  const grant = await admission.lease('echo');
  t.match(grant, { ok: true, op: 'lease', secondary: 2, socket: `${config.paths.runtime_dir}/secondary-2.sock`, generation: 42, expires_in_ms: config.main.lease_ttl_ms });
  const v = new LeaseSigner(KEY, 2, 42).verify(grant.lease, 'echo', Date.now());
  t.ok(v.ok, 'secondary-2 of generation 42 accepts it');
  t.notOk(new LeaseSigner(KEY, 1, secondary(1).generation).verify(grant.lease, 'echo', Date.now()).ok, 'secondary-1 does not');
  t.notOk(new LeaseSigner(KEY, 2, 42).verify(grant.lease, 'sha256', Date.now()).ok, 'nor for another type');
  t.equal(ledger.out, 1, 'the ledger waits for its end');
  t.same(wants, [], 'nothing asked: main holds credits');
  admission.refresh(Date.now());
  t.equal(admission.secondariesAlive, 2, 'both alive at the tick');
  const second = await admission.lease('echo');
  t.not(second.lease, grant.lease, 'each lease its own sequence');
});

t.test('a secondary without credits is skipped and asked for some, at most once per reserve_timeout_ms', async (t) => {
  const { admission, wants } = build([secondary(1), secondary(2, { active: 1, generation: 7 })], { 2: 3 });
  t.equal((await admission.lease('echo')).secondary, 2);
  t.same(wants, [[1, secondary(1).generation]]);
  t.equal((await admission.lease('echo')).secondary, 2);
  t.same(wants.length, 1, 'not asked again so soon');
  admission.refresh(Date.now());
  t.same(wants.length, 1, 'nor by the tick');
});

t.test('every credit in use: BUSY after the queue timeout, with a retry hint', async (t) => {
  const { admission, state, wants } = build([secondary(1), secondary(2, { state: 'full', active: 4 })], { 1: 0 });
  await t.rejects(admission.lease('echo', 20), { code: 'BUSY', retryAfterMs: 250, message: /^every secondary is busy \(waited 20 ms in the admission queue\)/ });
  t.ok(state.queueChanges >= 2, 'waiting in the queue is published');
  t.same(wants, [[1, secondary(1).generation]], 'asked for credits meanwhile');
});

t.test('no secondary running, or none ever granting credits: UNAVAILABLE saying which', async (t) => {
  const none = build([secondary(1, { state: 'stopped' })], {});
  await t.rejects(none.admission.lease('echo'), { code: 'UNAVAILABLE', message: /^no secondary server is running \(waited 50 ms\)/ });
  const silent = build([secondary(1)], {});
  await t.rejects(silent.admission.lease('echo'), { code: 'UNAVAILABLE', message: /^none of the 1 running secondaries has granted this main credits/ });
  const unreadable = build([secondary(1)], { 1: 1 });
  unreadable.state.unreadable = true;
  await t.rejects(unreadable.admission.lease('echo'), { code: 'UNAVAILABLE', message: 'failed to read the scoreboard: EIO' });
  t.throws(() => unreadable.admission.refresh(Date.now()), { code: 'SCOREBOARD_IO' });
});

t.test('credits of an earlier generation are not used; a restarted secondary is asked for its own', async (t) => {
  const { admission, state, wants } = build([secondary(1, { generation: 5 })], { 1: 4 });
  state.slots = [secondary(1, { generation: 6 })];
  admission.refresh(Date.now());
  t.same(wants, [[1, 6]]);
  await t.rejects(admission.lease('echo', 10), { code: 'UNAVAILABLE' });
});

t.test('a full queue refuses at once; a stopping main answers SHUTTING_DOWN', async (t) => {
  const full = build([secondary(1, { state: 'full', active: 4 })], { 1: 0 }, { queueMax: 0, queueMs: 60_000 });
  await t.rejects(full.admission.lease('echo'), { code: 'BUSY' });
  const stopping = build([secondary(1)], { 1: 4 });
  stopping.state.stopping = true;
  await t.rejects(stopping.admission.lease('echo'), { code: 'SHUTTING_DOWN' });
});

t.test('a queued request is served when credits arrive and wake the queue', async (t) => {
  const { admission, queue, grant } = build([secondary(1, { state: 'busy', active: 3 })], { 1: 0 }, { queueMs: 60_000 });
  const pending = admission.lease('echo');
  while (queue.length === 0) await new Promise((r) => setImmediate(r));
  grant(1, 1);
  queue.wake(1);
  t.equal((await pending).secondary, 1);
});

t.test('a type goes only to the secondaries that serve it; the grant names the type and its idempotency', async (t) => {
  const { admission, ledger } = build([secondary(1), secondary(2)], { 1: 10, 2: 10 }, { serves: { heavy: { instances: [2], idempotent: false }, echo: { instances: [1, 2], idempotent: true } } });
  for (let i = 0; i < 4; i++) {
    const g = await admission.lease('heavy');
    t.equal(g.secondary, 2, 'heavy on secondary 2 only');
    t.equal(g.type, 'heavy');
    t.equal(g.idempotent, false);
  }
  t.equal(ledger.out, 4);
  t.equal((await admission.lease('echo')).idempotent, true);
  await t.rejects(admission.lease('nope'), { code: 'UNKNOWN_TYPE', message: /no secondary serves request type 'nope'; the types served: echo, heavy/ });
});

t.test('a known type whose secondaries are all down is UNAVAILABLE, not UNKNOWN_TYPE', async (t) => {
  const { admission } = build([secondary(1)], { 1: 4 }, { serves: { heavy: { instances: [9], idempotent: false } } });
  await t.rejects(admission.lease('heavy', 10), { code: 'UNAVAILABLE' });
});

t.test('while a running secondary has not published its types yet (the suite starting), an unknown type waits and is UNAVAILABLE, not UNKNOWN_TYPE', async (t) => {
  const { admission, ledger } = build([secondary(1)], { 1: 4 }, { serves: {}, published: false });
  await t.rejects(admission.lease('echo', 10), { code: 'UNAVAILABLE', retryable: true });
  t.equal(ledger.out, 0, 'nothing minted');
  const none = build([], {}, { serves: {} });
  await t.rejects(none.admission.lease('echo', 10), { code: 'UNAVAILABLE' }, 'no secondary running at all: unavailable, not unknown');
});

t.test(`leases within SCOREBOARD_REUSE_MS (${SCOREBOARD_REUSE_MS} ms) share one read of the scoreboard; a killed secondary is skipped at once all the same`, async (t) => {
  const { admission, state } = build([secondary(1), secondary(2)], { 1: 10, 2: 10 });
  const first = await admission.lease('echo');
  await admission.lease('echo');
  t.equal(state.reads, 1, 'one read for both');
  const pid = state.slots.find((x) => x.instance === first.secondary)!.pid;
  state.dead.add(pid);
  for (let i = 0; i < 3; i++) t.not((await admission.lease('echo')).secondary, first.secondary, 'its pid is gone: not chosen, though the snapshot still shows it');
  t.equal(state.reads, 1);
  state.now += SCOREBOARD_REUSE_MS;
  await admission.lease('echo');
  t.equal(state.reads, 2, 'read again once the snapshot is SCOREBOARD_REUSE_MS old');
});

t.test('a lease looks up the process of the secondary it mints for, not of every slot; a killed one costs one look-up more', async (t) => {
  const { admission, state } = build([secondary(1), secondary(2), secondary(3, { state: 'full', active: 4 })], { 1: 10, 2: 10 });
  const g = await admission.lease('echo');
  const pidOf = (n: number) => state.slots.find((x) => x.instance === n)!.pid;
  t.same(state.lookups, [pidOf(g.secondary)], 'one /proc look-up: the chosen secondary');
  state.lookups.length = 0;
  const other = g.secondary === 1 ? 2 : 1;
  state.dead.add(pidOf(other));
  for (let i = 0; i < 4; i++) t.equal((await admission.lease('echo')).secondary, g.secondary, 'the killed one is never chosen');
  t.ok(state.lookups.length >= 4 && state.lookups.length <= 6, `at most one look-up more per lease it came first in: ${state.lookups.length} for 4 leases`);
  admission.refresh(Date.now());
  t.equal(admission.secondariesAlive, 2, 'the tick does not count it alive (every process looked up)');
});

t.test("a secondary's ready, or a credit of a generation the snapshot does not show, makes the next lease read the scoreboard afresh", async (t) => {
  const { admission, state, pool } = build([secondary(1, { generation: 5 })], { 1: 4 });
  t.equal((await admission.lease('echo')).generation, 5);
  state.slots = [secondary(1, { generation: 6 })];
  admission.creditFrom(1, 5);
  await admission.lease('echo');
  t.equal(state.reads, 1, 'a credit of the generation it shows: the snapshot stays');
  // Secondary 1 restarted: its slot shows generation 6 and its first credit arrives.
  const credit = { v: 1, t: 'credit', from: 'secondary-1', gen: 6, seq: 1, n: 2, exp: Date.now() + 60_000, claimed: [], ended: [] } as const;
  admission.creditFrom(1, 6);
  pool.add(1, { ...credit, claimed: [], ended: [] });
  const g = await admission.lease('echo');
  t.equal(g.generation, 6, "the new process's lease, from its credit");
  t.equal(state.reads, 2);
  admission.secondaryReady(1, 6);
  await admission.lease('echo');
  t.equal(state.reads, 3, 'ready: read afresh');
});
