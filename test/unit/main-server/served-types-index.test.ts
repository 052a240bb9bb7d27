import t from 'tap';
import type { SlotData } from '../../../daemons/common/scoreboard-layout.js';
import type { ServedType, ServedTypesFile } from '../../../daemons/common/served-types.js';
import { FORCED_SYNC_MS, ServedTypesIndex } from '../../../daemons/main-server/served-types-index.js';

const type = (name: string, idempotent = false): ServedType => ({ name, handler: 'exec', idempotent, concurrency: 1, deadline_ms: 1000, max_payload_bytes: 1, max_result_bytes: 1, leases: 0, requests: 0, failures: 0, latency_sum_us: 0, latency_max_us: 0 });
const slot = (instance: number, generation: number): SlotData => ({ kind: 'secondary', instance, generation } as SlotData);

/** A fake file system of served-types files, counting reads. */
function files() {
  const map = new Map<string, ServedTypesFile>();
  const reads: string[] = [];
  return {
    set(n: number, generation: number, types: ServedType[]) {
      map.set(`/sb.secondary-${n}.types`, { version: 1, secondary: n, generation, pid: 1, updated_ms: 0, types });
    },
    read: (f: string) => {
      reads.push(f);
      return map.get(f);
    },
    reads,
  };
}

t.test('routes a type to the secondaries that publish it; idempotent only when all agree', async (t) => {
  const fs = files();
  fs.set(1, 11, [type('echo', true), type('upper')]);
  fs.set(2, 22, [type('echo', true), type('heavy')]);
  const idx = new ServedTypesIndex('/sb', fs.read);
  idx.sync([slot(1, 11), slot(2, 22)]);
  t.same([...idx.lookup('echo')!.instances].sort(), [1, 2]);
  t.equal(idx.lookup('echo')!.idempotent, true);
  t.same([...idx.lookup('heavy')!.instances], [2]);
  t.equal(idx.lookup('upper')!.idempotent, false);
  t.equal(idx.lookup('nope'), undefined);
  t.same(idx.known(), ['echo', 'heavy', 'upper']);
  t.ok(idx.knows(1, 11), 'what secondary 1 of generation 11 serves is known');
  t.notOk(idx.knows(1, 12), 'not that of another generation');
  t.notOk(idx.knows(3, 11), 'nor of a secondary that published nothing');
  fs.set(2, 22, [type('echo', false)]);
  idx.refresh(2, 22);
  t.equal(idx.lookup('echo')!.idempotent, false, 'a secondary that says otherwise (a reload under way) makes it not idempotent');
  t.equal(idx.lookup('heavy'), undefined, 'a type a secondary stopped serving is gone after its ready');
});

t.test('a file is read again only when the generation changes, and one of another generation is not taken', async (t) => {
  const fs = files();
  fs.set(1, 11, [type('a')]);
  const idx = new ServedTypesIndex('/sb', fs.read);
  idx.sync([slot(1, 11)]);
  idx.sync([slot(1, 11)]);
  t.equal(fs.reads.length, 1, 'same generation: no read');
  idx.sync([slot(1, 12)]);
  t.equal(fs.reads.length, 2, 'new generation: read');
  t.ok(idx.lookup('a'), "the earlier generation's types stand until the new one publishes");
  fs.set(1, 12, [type('b')]);
  idx.refresh(1, 12);
  t.equal(idx.lookup('a'), undefined);
  t.ok(idx.lookup('b'));
  idx.sync([]);
  t.equal(idx.lookup('b'), undefined, 'a secondary gone from the scoreboard serves nothing');
});

t.test('an unknown type forces a re-read of every file at most every FORCED_SYNC_MS', async (t) => {
  const fs = files();
  let now = 1000;
  const idx = new ServedTypesIndex('/sb', fs.read, () => now);
  fs.set(1, 11, []);
  idx.sync([slot(1, 11)]);
  const before = fs.reads.length;
  fs.set(1, 11, [type('late')]);
  idx.syncForUnknown([slot(1, 11)]);
  t.ok(idx.lookup('late'), 'found after the forced read');
  for (let i = 0; i < 100; i++) idx.syncForUnknown([slot(1, 11)]);
  t.equal(fs.reads.length, before + 1, 'a hundred more unknown names cost no read');
  now += FORCED_SYNC_MS;
  idx.syncForUnknown([slot(1, 11)]);
  t.equal(fs.reads.length, before + 2);
});

t.test('a file that cannot be read or parsed counts as nothing served', async (t) => {
  const idx = new ServedTypesIndex('/sb', () => {
    throw new Error('EIO');
  });
  idx.sync([slot(1, 1)]);
  t.same(idx.known(), []);
});
