import fc from 'fast-check';
import t from 'tap';
import { pickSecondaries, type PickOptions } from '../../../daemons/main-server/secondary-picker.js';
import { daemon, NOW, secondary } from '../lib/slots.js';

const opts = (o: Partial<PickOptions> = {}): PickOptions => ({ now: NOW, staleMs: 3000, rotation: 0, ...o });
const order = (r: ReturnType<typeof pickSecondaries>) => r.candidates.map((c) => c.instance);

t.test('a ready secondary with room is a candidate, with its generation, process and load', async (t) => {
  const r = pickSecondaries([secondary(1, { active: 1, capacity: 4, generation: 77 })], opts());
  t.same(r.candidates, [{ instance: 1, generation: 77, pid: 1001, load: 0.25 }]);
  t.equal(r.alive, 1);
  t.equal(r.full, 0);
});

t.test('only secondaries are chosen', async (t) => {
  const r = pickSecondaries([daemon('main'), daemon('watchdog'), secondary(2)], opts());
  t.same(order(r), [2]);
  t.equal(r.alive, 1, 'main and watchdog are not counted');
});

t.test('states: ready and busy are candidates; full is alive but not chosen; the rest are not alive', async (t) => {
  const states = ['unknown', 'starting', 'ready', 'busy', 'full', 'stopping', 'stopped'] as const;
  const slots = states.map((state, i) => secondary(i + 1, { state }));
  const r = pickSecondaries(slots, opts());
  t.same(order(r).sort(), [3, 4], 'ready (3) and busy (4)');
  t.equal(r.alive, 3, 'ready, busy and full are alive');
  t.equal(r.full, 1, 'the one whose state is full');
});

t.test('no room: active ≥ capacity, or capacity 0, is alive and full', async (t) => {
  const r = pickSecondaries([secondary(1, { active: 4, capacity: 4 }), secondary(2, { active: 9, capacity: 4 }), secondary(3, { capacity: 0 }), secondary(4, { active: 3, capacity: 4 })], opts());
  t.same(order(r), [4]);
  t.equal(r.alive, 4);
  t.equal(r.full, 3);
});

t.test('a stale heartbeat means not running', async (t) => {
  const r = pickSecondaries([secondary(1, { heartbeatMs: NOW - 3000 }), secondary(2, { heartbeatMs: NOW - 3001 }), secondary(3, { heartbeatMs: NOW + 50 })], opts());
  t.same(order(r).sort(), [1, 3], 'exactly staleMs old is still fresh; a clock a little ahead is fine');
  t.equal(r.alive, 2);
});

t.test('a secondary whose process is gone is skipped at once', async (t) => {
  const gone = new Set([1002]);
  const r = pickSecondaries([secondary(1), secondary(2), secondary(3, { state: 'full' })], opts({ processExists: (pid) => !gone.has(pid) }));
  t.same(order(r).sort(), [1], 'secondary-2 (pid 1002) is dead');
  t.equal(r.alive, 2);
  t.equal(r.full, 1);
  t.same(order(pickSecondaries([secondary(2)], opts())), [2], 'without processExists every process is assumed to exist');
});

t.test('least-loaded first', async (t) => {
  const r = pickSecondaries(
    [secondary(1, { active: 3, capacity: 4 }), secondary(2, { active: 1, capacity: 8 }), secondary(3, { active: 0, capacity: 2 }), secondary(4, { active: 2, capacity: 4 })],
    opts(),
  );
  t.same(order(r), [3, 2, 4, 1]);
  t.same(r.candidates.map((c) => c.load), [0, 0.125, 0.5, 0.75]);
});

t.test('ties rotate: over n rotations each of n equal secondaries (1..n) comes first once', async (t) => {
  for (const n of [2, 3, 5]) {
    const slots = Array.from({ length: n }, (_, i) => secondary(i + 1));
    const firsts = Array.from({ length: n }, (_, rotation) => order(pickSecondaries(slots, opts({ rotation })))[0]);
    t.same([...firsts].sort(), Array.from({ length: n }, (_, i) => i + 1), `${n} secondaries: firsts ${firsts}`);
  }
  const loaded = [secondary(1, { active: 1 }), secondary(2), secondary(3)];
  for (let rotation = 0; rotation < 6; rotation++) t.not(order(pickSecondaries(loaded, opts({ rotation })))[0], 1, 'rotation never beats load');
});

t.test('ties rotate whatever the instance numbers of the equal secondaries', async (t) => {
  // Secondary 2 is down (or full): 1 and 3 are equal and should share the work.
  for (const set of [[1, 3], [2, 4], [1, 2, 4]]) {
    const slots = set.map((i) => secondary(i));
    const firsts = new Set(Array.from({ length: 2 * set.length }, (_, rotation) => order(pickSecondaries(slots, opts({ rotation })))[0]));
    t.same([...firsts].sort(), set, `each of ${set} comes first for some rotation`);
  }
});

t.test('property: candidates are exactly the alive ones with room, sorted by load', async (t) => {
  const slotArb = fc.record({
    instance: fc.integer({ min: 1, max: 62 }),
    state: fc.constantFrom('unknown', 'starting', 'ready', 'busy', 'full', 'stopping', 'stopped' as const),
    active: fc.integer({ min: 0, max: 10 }),
    capacity: fc.integer({ min: 0, max: 10 }),
    age: fc.integer({ min: -100, max: 6000 }),
  });
  fc.assert(
    fc.property(fc.uniqueArray(slotArb, { selector: (s) => s.instance, maxLength: 12 }), fc.nat(100), (specs, rotation) => {
      const slots = specs.map((s) => secondary(s.instance, { state: s.state, active: s.active, capacity: s.capacity, heartbeatMs: NOW - s.age }));
      const r = pickSecondaries(slots, opts({ rotation }));
      const alive = specs.filter((s) => s.age <= 3000 && ['ready', 'busy', 'full'].includes(s.state));
      const room = alive.filter((s) => s.state !== 'full' && s.capacity > 0 && s.active < s.capacity);
      const expected = room.map((s) => s.instance).sort((a, b) => a - b);
      if (r.alive !== alive.length) throw new Error(`alive ${r.alive} ≠ ${alive.length}`);
      if (r.full !== alive.length - room.length) throw new Error(`full ${r.full} ≠ ${alive.length - room.length}`);
      if (JSON.stringify(order(r).sort((a, b) => a - b)) !== JSON.stringify(expected)) throw new Error('wrong candidates');
      for (let i = 1; i < r.candidates.length; i++) if (r.candidates[i]!.load < r.candidates[i - 1]!.load) throw new Error('not sorted by load');
    }),
    { numRuns: 500 },
  );
  t.pass();
});
