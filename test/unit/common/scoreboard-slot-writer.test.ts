/** SlotWriter: starts counted across re-opens, the seqlock sequence recovered and wrapped. */
import t from 'tap';
import { createScoreboard } from '../../../daemons/common/scoreboard-file.js';
import { HEADER_BYTES, SLOT, SLOT_BYTES } from '../../../daemons/common/scoreboard-layout.js';
import { SlotWriter } from '../../../daemons/common/slot-writer.js';
import { newFile, rawSeq, snapshot, writeRaw } from '../lib/scoreboard-files.js';
import { slotIndexOf, WATCHDOG } from '../../../daemons/common/topology.js';

t.test('SlotWriter counts starts across re-opens and resets per-process counters', async (t) => {
  const file = newFile();
  createScoreboard(file);
  for (let start = 1; start <= 3; start++) {
    const w = new SlotWriter(file, 'secondary', 4, { pid: 100 + start, generation: start, capacity: 8, now: 1000 * start });
    t.equal(w.data.starts, start, `start ${start}`);
    t.equal(w.data.requests, 0, 'requests reset');
    t.equal(w.data.state, 'starting');
    w.update({ state: 'ready', requests: 50, failures: 5, incidents: 2 });
    w.close();
    const s = snapshot(file).slots[0]!;
    t.same(
      { starts: s.starts, pid: s.pid, generation: s.generation, requests: s.requests, name: s.name, instance: s.instance, capacity: s.capacity, startedMs: s.startedMs },
      { starts: start, pid: 100 + start, generation: start, requests: 50, name: 'secondary-4', instance: 4, capacity: 8, startedMs: 1000 * start },
    );
  }
  const other = new SlotWriter(file, 'main', 0, { pid: 1, generation: 1 });
  t.equal(other.data.starts, 1, 'each slot counts its own starts');
  t.equal(other.data.instance, 0);
  other.close();
});

t.test('SlotWriter recovers an odd seq left by a writer that died mid-update', async (t) => {
  const file = newFile();
  createScoreboard(file);
  const w = new SlotWriter(file, 'main', 0, { pid: 1, generation: 2 });
  w.update({ state: 'ready', requests: 1, failures: 1 });
  w.close();
  const seqBuf = Buffer.alloc(4);
  seqBuf.writeUInt32LE(7, 0);
  writeRaw(file, HEADER_BYTES + SLOT.seq, seqBuf); // died between its two seq writes

  // A reader still returns the slot (the best there is), in bounded time.
  const snap = snapshot(file);
  t.equal(snap.slots[0]?.name, 'main', 'a stuck odd slot is still read');

  const w2 = new SlotWriter(file, 'main', 0, { pid: 3, generation: 4 });
  t.equal(w2.data.starts, 2);
  w2.update({ state: 'ready' });
  w2.close();
  const seq = rawSeq(file, 0);
  t.equal(seq % 2, 0, `seq is even again (${seq})`);
  t.ok(seq > 7, 'and moved forward');
  t.equal(snapshot(file).slots[0]?.pid, 3);
});

t.test('SlotWriter seq wraps around 2^32 and stays readable', async (t) => {
  const file = newFile();
  createScoreboard(file);
  const seqBuf = Buffer.alloc(4);
  seqBuf.writeUInt32LE(0xfffffffe, 0);
  writeRaw(file, HEADER_BYTES + slotIndexOf(WATCHDOG) * SLOT_BYTES, seqBuf);
  const w = new SlotWriter(file, 'watchdog', 0, { pid: 5, generation: 6 });
  w.update({ requests: 1 });
  t.equal(rawSeq(file, 1), 0, 'wrapped to 0');
  t.equal(snapshot(file).slots[0]?.requests, 1, 'a slot with seq 0 but a kind is read');
  w.update({ requests: 2 });
  t.equal(rawSeq(file, 1), 2);
  t.equal(snapshot(file).slots[0]?.requests, 2);
  w.close();
});
