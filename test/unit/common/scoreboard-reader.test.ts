/** ScoreboardReader: slot order, refusing a foreign file, retrying a slot caught mid-update, never a torn slot. */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createScoreboard, removeScoreboard } from '../../../daemons/common/scoreboard-file.js';
import { encodeHeader, HEADER_BYTES, SCOREBOARD_BYTES, SLOT, SLOT_BYTES, type SlotData } from '../../../daemons/common/scoreboard-layout.js';
import { MAX_SEQ_READS, ScoreboardReader } from '../../../daemons/common/scoreboard-reader.js';
import { SlotWriter } from '../../../daemons/common/slot-writer.js';
import { collect, firstLine, spawnTs } from '../lib/child.js';
import { dir, FIXTURES, newFile, rawSeq, writeRaw } from '../lib/scoreboard-files.js';
import { secondary, slotIndexOf } from '../../../daemons/common/topology.js';

t.test('SlotWriter and ScoreboardReader refuse a missing or foreign file', async (t) => {
  const missing = path.join(dir, 'missing');
  t.throws(() => new SlotWriter(missing, 'main', 0, { pid: 1, generation: 1 }), { code: 'SCOREBOARD_MISSING', message: /does not exist/ });
  t.throws(() => new ScoreboardReader(missing), { code: 'SCOREBOARD_MISSING' });
  const foreign = newFile();
  fs.writeFileSync(foreign, Buffer.alloc(SCOREBOARD_BYTES, 1));
  t.throws(() => new SlotWriter(foreign, 'main', 0, { pid: 1, generation: 1 }), { code: 'SCOREBOARD_BAD_LAYOUT' });
  t.throws(() => new ScoreboardReader(foreign), { code: 'SCOREBOARD_BAD_LAYOUT' });
  const short = newFile();
  const b = Buffer.alloc(2000);
  encodeHeader(1).copy(b);
  fs.writeFileSync(short, b);
  t.throws(() => new SlotWriter(short, 'main', 0, { pid: 1, generation: 1 }), { code: 'SCOREBOARD_BAD_LAYOUT', message: /2000 bytes/ });
  t.throws(() => new ScoreboardReader(short), { code: 'SCOREBOARD_BAD_LAYOUT' });
  t.throws(() => new SlotWriter(newFile(), 'secondary', 0, { pid: 1, generation: 1 }), { code: 'SCOREBOARD_BAD_LAYOUT' }, 'secondary 0 has no slot');
});

t.test('ScoreboardReader lists used slots in slot order; removeScoreboard', async (t) => {
  const file = newFile();
  createScoreboard(file, { now: 42 });
  const writers = [
    new SlotWriter(file, 'secondary', 2, { pid: 3, generation: 3, capacity: 4 }),
    new SlotWriter(file, 'watchdog', 0, { pid: 2, generation: 2 }),
    new SlotWriter(file, 'main', 0, { pid: 1, generation: 1 }),
  ];
  for (const w of writers) w.publish();
  const r = new ScoreboardReader(file);
  t.same(r.read().slots.map((s) => s.name), ['main', 'watchdog', 'secondary-2']);
  writers[0]!.update({ active: 3 });
  t.equal(r.read().slots[2]!.active, 3, 'a kept-open reader sees later updates');
  r.close();
  for (const w of writers) w.close();
  removeScoreboard(file);
  t.notOk(fs.existsSync(file));
  t.doesNotThrow(() => removeScoreboard(file), 'removing a missing scoreboard is fine');
});

t.test('the reader retries a slot caught mid-update (seqlock, simulated writer)', async (t) => {
  const file = newFile();
  createScoreboard(file);
  const w = new SlotWriter(file, 'secondary', 5, { pid: 1, generation: 1, capacity: 4 });
  w.update({ state: 'busy', requests: 1, failures: 1 });
  w.close();
  const off = HEADER_BYTES + slotIndexOf(secondary(5)) * SLOT_BYTES;
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v, 0);
    return b;
  };
  const u64 = (v: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v), 0);
    return b;
  };
  const seq0 = rawSeq(file, slotIndexOf(secondary(5)));
  const reader = new ScoreboardReader(file);
  // A writer in another process, interleaved with the reader's reads of the object:
  const steps: Array<() => void> = [
    // before the reader's first copy: seq made odd, requests written, failures not yet
    () => {
      writeRaw(file, off + SLOT.seq, u32(seq0 + 1));
      writeRaw(file, off + SLOT.requests, u64(2));
    },
    () => {}, // second copy: still mid-update
    // before the reader's retry: the writer finishes
    () => {
      writeRaw(file, off + SLOT.failures, u64(2));
      writeRaw(file, off + SLOT.seq, u32(seq0 + 2));
    },
  ];
  const realRead = fs.readSync;
  let calls = 0;
  fs.readSync = function (this: unknown, ...args: unknown[]) {
    steps[calls++]?.();
    return (realRead as (...a: unknown[]) => number).apply(fs, args);
  } as typeof fs.readSync;
  let s: SlotData | undefined;
  try {
    s = reader.read().slots[0];
  } finally {
    fs.readSync = realRead;
    reader.close();
  }
  t.ok(calls >= 3, `the reader read again (${calls} reads)`);
  t.same([s?.requests, s?.failures], [2, 2], 'the half-written copy was not returned');
});

t.test('a slot whose seq stays odd (a writer died mid-update) is given as last read, named inconsistent, after a bounded number of reads', async (t) => {
  const file = newFile();
  createScoreboard(file);
  const w = new SlotWriter(file, 'secondary', 2, { pid: 1, generation: 1, capacity: 4 });
  w.update({ state: 'busy', requests: 4 });
  w.close();
  const off = HEADER_BYTES + slotIndexOf(secondary(2)) * SLOT_BYTES;
  const odd = Buffer.alloc(4);
  odd.writeUInt32LE(rawSeq(file, slotIndexOf(secondary(2))) + 1, 0);
  writeRaw(file, off + SLOT.seq, odd);
  const reader = new ScoreboardReader(file);
  const realRead = fs.readSync;
  let calls = 0;
  fs.readSync = function (this: unknown, ...args: unknown[]) {
    calls++;
    return (realRead as (...a: unknown[]) => number).apply(fs, args);
  } as typeof fs.readSync;
  let snap;
  try {
    snap = reader.read();
  } finally {
    fs.readSync = realRead;
    reader.close();
  }
  t.same(snap.inconsistent, ['secondary-2']);
  t.equal(snap.slots.find((s) => s.name === 'secondary-2')?.requests, 4, 'the last copy, as it is');
  t.ok(calls <= 2 * MAX_SEQ_READS + 2, `bounded: ${calls} reads`);
  const ok = new ScoreboardReader(file);
  writeRaw(file, off + SLOT.seq, Buffer.alloc(4)); // even again: the writer's next start repairs it
  t.equal(ok.read().inconsistent, undefined, 'absent when every slot reads consistent');
  ok.close();
});

t.test('a reader never returns a torn slot while a writer process hammers it', async (t) => {
  const file = newFile();
  createScoreboard(file);
  const child = spawnTs(path.join(FIXTURES, 'scoreboard-hammer.ts'), [file, '5', '1000']);
  await firstLine(child);
  const result = collect(child);
  let exited = false;
  void result.then(() => (exited = true));
  const reader = new ScoreboardReader(file);
  let reads = 0;
  let torn = 0;
  const values = new Set<number>();
  child.stdin!.end('go\n');
  while (!exited) {
    for (let k = 0; k < 200; k++) {
      const s = reader.read().slots.find((x) => x.name === 'secondary-5');
      reads++;
      if (!s) {
        torn++;
        continue;
      }
      values.add(s.requests);
      if (s.requests !== s.failures || s.heartbeatMs !== s.requests || s.active !== s.requests % 1000 || s.pid !== child.pid || s.generation !== 77) {
        if (torn++ === 0) t.comment(`first torn read: ${JSON.stringify(s)}`);
      }
    }
    await new Promise((resolve) => setImmediate(resolve)); // let the child's exit be noticed
  }
  reader.close();
  const out = await result;
  t.equal(out.code, 0, `hammer exited 0 (${out.stdout.trim()})`);
  t.ok(values.size > 10, `the reads overlapped the writes (${values.size} distinct values in ${reads} reads)`);
  t.equal(torn, 0, `no torn slot in ${reads} seqlock reads`);
});
