import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import {
  checkHeader,
  createScoreboard,
  daemonName,
  decodeSlot,
  encodeHeader,
  encodeSlot,
  HEADER_BYTES,
  MAX_SECONDARIES,
  removeScoreboard,
  SCOREBOARD_BYTES,
  ScoreboardReader,
  SLOT,
  SLOT_BYTES,
  SLOT_COUNT,
  slotIndex,
  SlotWriter,
  type SlotData,
} from '../../../daemons/common/scoreboard.js';
import { collect, firstLine, spawnTs } from '../lib/child.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
// A tmpfs like the real /dev/shm when there is one.
const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
const dir = fs.mkdtempSync(path.join(base, 'dispatchd-scoreboard-test-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
const newFile = () => path.join(dir, `sb${++n}`);

/** The raw seq of slot `index`. */
function rawSeq(file: string, index: number): number {
  const b = Buffer.alloc(4);
  const fd = fs.openSync(file, 'r');
  fs.readSync(fd, b, 0, 4, HEADER_BYTES + index * SLOT_BYTES);
  fs.closeSync(fd);
  return b.readUInt32LE(0);
}

function writeRaw(file: string, at: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, bytes, 0, bytes.length, at);
  fs.closeSync(fd);
}

function snapshot(file: string) {
  const r = new ScoreboardReader(file);
  try {
    return r.read();
  } finally {
    r.close();
  }
}

const sample = (o: Partial<SlotData> = {}): SlotData => ({
  kind: 'secondary',
  instance: 3,
  pid: 4321,
  state: 'busy',
  generation: 0xdeadbeef,
  starts: 2,
  active: 5,
  capacity: 32,
  queued: 0,
  requests: 2 ** 40 + 1,
  failures: 7,
  startedMs: 1_700_000_000_000,
  heartbeatMs: 1_700_000_000_500,
  incidents: 1,
  name: 'secondary-3',
  latencySumUs: 2 ** 40 + 3,
  latencyMaxUs: 123_456,
  running: 3,
  ...o,
});

t.test('layout constants match docs/SCOREBOARD.md', async (t) => {
  t.equal(HEADER_BYTES, 64);
  t.equal(SLOT_BYTES, 128);
  t.equal(SLOT_COUNT, 64);
  t.equal(SCOREBOARD_BYTES, 8256);
  t.same(SLOT, { seq: 0, kind: 4, instance: 8, pid: 12, state: 16, generation: 20, starts: 24, active: 28, capacity: 32, queued: 36, requests: 40, failures: 48, startedMs: 56, heartbeatMs: 64, incidents: 72, name: 80, latencySumUs: 112, latencyMaxUs: 120, running: 124 });
});

t.test('slotIndex and daemonName', async (t) => {
  t.equal(slotIndex('main'), 0);
  t.equal(slotIndex('watchdog'), 1);
  t.equal(slotIndex('secondary', 1), 2);
  t.equal(slotIndex('secondary', MAX_SECONDARIES), SLOT_COUNT - 1);
  for (const bad of [0, MAX_SECONDARIES + 1, 1.5, -1]) t.throws(() => slotIndex('secondary', bad), { code: 'SCOREBOARD_BAD_LAYOUT' }, `secondary ${bad}`);
  t.equal(daemonName('main'), 'main');
  t.equal(daemonName('watchdog'), 'watchdog');
  t.equal(daemonName('secondary', 7), 'secondary-7');
});

t.test('encodeSlot / decodeSlot', async (t) => {
  const d = sample();
  const b = encodeSlot(d);
  t.equal(b.length, SLOT_BYTES);
  t.equal(b.readUInt32LE(SLOT.seq), 0, 'seq is left to the writer');
  t.same(decodeSlot(b), d);
  t.equal(b.readUInt32LE(SLOT.kind), 2, 'kind secondary = 2');
  t.equal(b.readUInt32LE(SLOT.state), 3, 'state busy = 3');
  t.equal(b.readBigUInt64LE(112), 2n ** 40n + 3n, 'latency_sum_us at offset 112');
  t.equal(b.readUInt32LE(120), 123_456, 'latency_max_us at offset 120');
  t.equal(b.readUInt32LE(124), 3, 'running at offset 124');
  const v1 = encodeSlot(d);
  v1.fill(0, 112); // a slot written before the latency fields existed (they were reserved, zero)
  t.same(decodeSlot(v1), { ...d, latencySumUs: 0, latencyMaxUs: 0, running: 0 }, 'an older writer\'s slot reads with latencies 0');
  const v2 = encodeSlot(d);
  v2.fill(0, 124); // a slot written before `running` existed (reserved, zero)
  t.same(decodeSlot(v2), { ...d, running: 0 }, 'an older writer\'s slot reads with running 0');

  const long = decodeSlot(encodeSlot(sample({ name: 'n'.repeat(40) })));
  t.equal(long?.name, 'n'.repeat(31), 'the name is cut to 31 bytes, NUL-terminated');
  t.equal(decodeSlot(Buffer.alloc(SLOT_BYTES)), undefined, 'a free slot');
  const odd = encodeSlot(d);
  odd.writeUInt32LE(99, SLOT.state);
  t.equal(decodeSlot(odd)?.state, 'unknown', 'an unknown state number reads as unknown');
  for (const [kind, num] of [['main', 1], ['secondary', 2], ['watchdog', 3]] as const) {
    t.equal(encodeSlot(sample({ kind })).readUInt32LE(SLOT.kind), num, `kind ${kind} = ${num}`);
  }
  const states = ['unknown', 'starting', 'ready', 'busy', 'full', 'stopping', 'stopped'] as const;
  states.forEach((state, i) => t.equal(encodeSlot(sample({ state })).readUInt32LE(SLOT.state), i, `state ${state} = ${i}`));
});

t.test('header: encode and check', async (t) => {
  const h = encodeHeader(1234);
  t.equal(h.toString('latin1', 0, 8), 'DSPSCORE');
  t.same(checkHeader(h, 'x'), { createdMs: 1234 });
  const bad = (mutate: (b: Buffer) => void, re: RegExp, what: string) => {
    const b = encodeHeader(1);
    mutate(b);
    t.throws(() => checkHeader(b, '/dev/shm/x'), { code: 'SCOREBOARD_BAD_LAYOUT', message: re }, what);
  };
  bad((b) => b.write('XXXXXXXX', 0, 'latin1'), /bad magic/, 'magic');
  bad((b) => b.writeUInt32LE(2, 8), /layout version 2/, 'version');
  bad((b) => b.writeUInt32LE(32, 12), /differ/, 'header size');
  bad((b) => b.writeUInt32LE(256, 16), /differ/, 'slot size');
  bad((b) => b.writeUInt32LE(16, 20), /differ/, 'slot count');
  t.throws(() => checkHeader(Buffer.alloc(10), 'x'), { code: 'SCOREBOARD_BAD_LAYOUT', message: /only 10 bytes/ });
  t.throws(() => checkHeader(encodeHeader(1).fill(0, 8, 12), '/dev/shm/x'), { message: /\/dev\/shm\/x.*restart the suite/ }, 'names the file and says what to do');
});

t.test('createScoreboard: exact size, mode 0644 whatever the umask, no temporary left', async (t) => {
  const file = newFile();
  const old = process.umask(0o077);
  let created: boolean;
  try {
    created = createScoreboard(file, { now: 1_700_000_000_000 });
  } finally {
    process.umask(old);
  }
  t.equal(created, true);
  const st = fs.statSync(file);
  t.equal(st.size, 64 + 64 * 128, 'exactly 8256 bytes');
  t.equal(st.mode & 0o777, 0o644, 'mode 0644 despite umask 077');
  const content = fs.readFileSync(file);
  t.same(checkHeader(content, file), { createdMs: 1_700_000_000_000 });
  t.ok(content.subarray(32).equals(Buffer.alloc(SCOREBOARD_BYTES - 32)), 'everything after the header fields is zero');
  t.same(fs.readdirSync(dir).filter((f) => f.includes(path.basename(file))), [path.basename(file)], 'no temporary file left behind');
  t.same(snapshot(file), { createdMs: 1_700_000_000_000, slots: [] });

  const custom = newFile();
  createScoreboard(custom, { mode: 0o640 });
  t.equal(fs.statSync(custom).mode & 0o777, 0o640, 'mode option');
});

t.test('createScoreboard keeps a valid scoreboard', async (t) => {
  const file = newFile();
  t.equal(createScoreboard(file, { now: 1 }), true);
  const w = new SlotWriter(file, 'main', 0, { pid: 10, generation: 20 });
  w.update({ requests: 99 });
  w.close();
  t.equal(createScoreboard(file, { now: 2 }), false, 'not created again');
  t.equal(createScoreboard(file, { now: 3, replaceInvalid: true }), false, 'not replaced either');
  const snap = snapshot(file);
  t.equal(snap.createdMs, 1, 'the original header');
  t.equal(snap.slots[0]?.requests, 99, 'the slot written before survives');
});

t.test('createScoreboard refuses another layout, or replaces it when asked', async (t) => {
  const cases: Array<[string, Buffer, RegExp]> = [
    ['version 2', (() => {
      const b = Buffer.alloc(SCOREBOARD_BYTES);
      encodeHeader(5).copy(b);
      b.writeUInt32LE(2, 8);
      return b;
    })(), /layout version 2/],
    ['not a scoreboard', Buffer.alloc(SCOREBOARD_BYTES, 'garbage'), /bad magic/],
    ['empty', Buffer.alloc(0), /bad magic|only 0 bytes/],
  ];
  for (const [what, bytes, re] of cases) {
    const file = newFile();
    fs.writeFileSync(file, bytes, { mode: 0o600 });
    t.throws(() => createScoreboard(file), { code: 'SCOREBOARD_BAD_LAYOUT', message: re }, `${what}: refused`);
    t.ok(fs.readFileSync(file).equals(bytes), `${what}: left untouched`);
    t.equal(createScoreboard(file, { replaceInvalid: true, now: 7 }), true, `${what}: replaced with replaceInvalid`);
    t.same(snapshot(file), { createdMs: 7, slots: [] }, `${what}: now a valid, empty scoreboard`);
    t.equal(fs.statSync(file).mode & 0o777, 0o644, `${what}: with mode 0644`);
  }
});

t.test('createScoreboard refuses a truncated scoreboard unless replaceInvalid is set', async (t) => {
  const file = newFile();
  const short = Buffer.alloc(1000);
  encodeHeader(5).copy(short);
  fs.writeFileSync(file, short);
  const r = (() => {
    try {
      return createScoreboard(file);
    } catch (e) {
      return e as Error & { code: string };
    }
  })();
  t.equal(typeof r === 'object' ? r.code : `returned ${String(r)}`, 'SCOREBOARD_BAD_LAYOUT', 'refused like any other invalid object');
  createScoreboard(file, { replaceInvalid: true });
  t.equal(fs.statSync(file).size, SCOREBOARD_BYTES, 'with replaceInvalid it is replaced by a full-size scoreboard');
  t.same(snapshot(file).slots, []);
});

t.test('concurrent creators end with one valid file and no clobbered slot', async (t) => {
  const CREATORS = 5;
  for (let round = 0; round < 1; round++) {
    const file = newFile();
    const children = Array.from({ length: CREATORS }, (_, k) => spawnTs(path.join(FIXTURES, 'scoreboard-create.ts'), [file, String(k + 1)]));
    await Promise.all(children.map((c) => firstLine(c)));
    const results = children.map((c) => collect(c));
    for (const c of children) c.stdin!.end('go\n');
    const outs = await Promise.all(results);
    for (const o of outs) t.equal(o.code, 0, `creator exited 0 ${o.stderr.trim()}`);
    t.equal(outs.filter((o) => o.stdout.includes('created true')).length, 1, `round ${round}: exactly one creator created it`);
    t.equal(fs.statSync(file).size, SCOREBOARD_BYTES);
    const snap = snapshot(file);
    t.same(
      snap.slots.map((s) => [s.name, s.requests, s.generation]),
      Array.from({ length: CREATORS }, (_, k) => [`secondary-${k + 1}`, k + 1, 1001 + k]),
      `round ${round}: every creator's slot is there`,
    );
    t.same(fs.readdirSync(dir).filter((f) => f.includes(`${path.basename(file)}.`)), [], `round ${round}: no temporary files left`);
  }
});

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
  writeRaw(file, HEADER_BYTES + slotIndex('watchdog') * SLOT_BYTES, seqBuf);
  const w = new SlotWriter(file, 'watchdog', 0, { pid: 5, generation: 6 });
  w.update({ requests: 1 });
  t.equal(rawSeq(file, 1), 0, 'wrapped to 0');
  t.equal(snapshot(file).slots[0]?.requests, 1, 'a slot with seq 0 but a kind is read');
  w.update({ requests: 2 });
  t.equal(rawSeq(file, 1), 2);
  t.equal(snapshot(file).slots[0]?.requests, 2);
  w.close();
});

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
  const off = HEADER_BYTES + slotIndex('secondary', 5) * SLOT_BYTES;
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
  const seq0 = rawSeq(file, slotIndex('secondary', 5));
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

/** What Node writes for the cross-language readers, and what they must read (numbers per docs/SCOREBOARD.md). */
function writeForeignReaderFixture(file: string) {
  createScoreboard(file, { now: 1_700_000_000_123 });
  const main = new SlotWriter(file, 'main', 0, { pid: 1234, generation: 0xfffffffe, now: 1_700_000_000_200 });
  main.addLatency(1500);
  main.addLatency(2 ** 33 + 7); // a max past 2^32 − 1 µs saturates
  main.update({ state: 'ready', active: 3, queued: 7, requests: 2 ** 40 + 5, failures: 9, heartbeatMs: 1_700_000_001_234, incidents: 2 });
  const wd = new SlotWriter(file, 'watchdog', 0, { pid: 99, generation: 1, now: 1_700_000_000_300 });
  wd.update({ state: 'busy', requests: 123, incidents: 5, heartbeatMs: 1_700_000_000_301 });
  const s1 = new SlotWriter(file, 'secondary', 1, { pid: 4000, generation: 31337, capacity: 32, now: 1_700_000_000_400 });
  s1.addLatency(250);
  s1.addLatency(40);
  s1.update({ state: 'full', active: 32, requests: 1000, failures: 1, heartbeatMs: 1_700_000_000_401 });
  const s62 = new SlotWriter(file, 'secondary', 62, { pid: 4062, generation: 62, capacity: 4, now: 1_700_000_000_500 });
  s62.update({ state: 'stopping', heartbeatMs: 1_700_000_000_501 });
  for (const w of [main, wd, s1, s62]) w.close();
  const slot = (index: number, o: Record<string, number | string>) => ({
    index, seq: 2, kind: 0, instance: 0, pid: 0, state: 0, generation: 0, starts: 1, active: 0, capacity: 0, queued: 0,
    requests: 0, failures: 0, started_ms: 0, heartbeat_ms: 0, incidents: 0, name: '', latency_sum_us: 0, latency_max_us: 0, ...o,
  });
  return {
    header: { magic: 'DSPSCORE', version: 1, header_size: 64, slot_size: 128, slot_count: 64, created_ms: 1_700_000_000_123 },
    slots: [
      slot(0, { kind: 1, pid: 1234, state: 2, generation: 0xfffffffe, active: 3, queued: 7, requests: 2 ** 40 + 5, failures: 9, started_ms: 1_700_000_000_200, heartbeat_ms: 1_700_000_001_234, incidents: 2, name: 'main', latency_sum_us: 2 ** 33 + 1507, latency_max_us: 0xffffffff }),
      slot(1, { kind: 3, pid: 99, state: 3, generation: 1, requests: 123, incidents: 5, started_ms: 1_700_000_000_300, heartbeat_ms: 1_700_000_000_301, name: 'watchdog' }),
      slot(2, { kind: 2, instance: 1, pid: 4000, state: 4, generation: 31337, active: 32, capacity: 32, requests: 1000, failures: 1, started_ms: 1_700_000_000_400, heartbeat_ms: 1_700_000_000_401, name: 'secondary-1', latency_sum_us: 290, latency_max_us: 250 }),
      slot(63, { kind: 2, instance: 62, pid: 4062, state: 5, generation: 62, capacity: 4, started_ms: 1_700_000_000_500, heartbeat_ms: 1_700_000_000_501, name: 'secondary-62' }),
    ],
  };
}

const probe = spawnSync('python3', ['-c', 'import mmap, struct, json'], { encoding: 'utf8' });
const noPython = probe.error || probe.status !== 0 ? `python3 with mmap and struct is not available: ${probe.error?.message ?? probe.stderr}` : false;

t.test('read back from Python (mmap + struct, docs/SCOREBOARD.md §4)', { skip: noPython }, async (t) => {
  const file = newFile();
  const expected = writeForeignReaderFixture(file);
  const r = spawnSync('python3', [path.join(FIXTURES, 'scoreboard_reader.py'), file], { encoding: 'utf8' });
  t.equal(r.status, 0, `python reader exited 0 ${r.stderr}`);
  const got = JSON.parse(r.stdout) as Record<string, unknown> & { slots: Array<Record<string, unknown>> };
  const { slots, header_reserved, ...header } = got;
  t.same(header, expected.header, 'header');
  t.equal(header_reserved, '00'.repeat(32), 'reserved header bytes are zero');
  t.same(slots.map(({ reserved, ...s }) => s), expected.slots, 'every slot, field by field');
  t.ok(slots.every((s) => s.reserved === '00'.repeat(4)), 'reserved slot bytes are zero');
});

const cc = ['cc', 'gcc', 'clang'].find((c) => !spawnSync(c, ['--version']).error);

t.test('read back from C (mmap + seqlock, docs/SCOREBOARD.md §4)', { skip: cc ? false : 'no C compiler (cc, gcc or clang) on this machine' }, async (t) => {
  const exe = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-cc-')), 'scoreboard-reader');
  t.teardown(() => fs.rmSync(path.dirname(exe), { recursive: true, force: true }));
  const build = spawnSync(cc!, ['-std=c11', '-O2', '-Wall', '-Werror', '-o', exe, path.join(FIXTURES, 'scoreboard-reader.c')], { encoding: 'utf8' });
  t.equal(build.status, 0, `compiled with ${cc} ${build.stderr}`);
  if (build.status !== 0) return;
  const file = newFile();
  const expected = writeForeignReaderFixture(file);
  const r = spawnSync(exe, [file], { encoding: 'utf8' });
  t.equal(r.status, 0, `C reader exited 0 ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  const h = expected.header;
  t.equal(lines[0], `header ${h.version} ${h.header_size} ${h.slot_size} ${h.slot_count} ${h.created_ms}`);
  const fields = ['seq', 'kind', 'instance', 'pid', 'state', 'generation', 'starts', 'active', 'capacity', 'queued', 'requests', 'failures', 'started_ms', 'heartbeat_ms', 'incidents', 'name', 'latency_sum_us', 'latency_max_us'] as const;
  t.same(
    lines.slice(1),
    expected.slots.map((s) => `slot ${s.index} ` + fields.map((f) => `${f}=${(s as Record<string, unknown>)[f]}`).join(' ')),
    'every slot, field by field',
  );
});

// ---- properties: a scoreboard is read from shared memory anyone of the group could write ----

t.test('property: any 128 bytes decode to a slot or a free one, never an exception', async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: SLOT_BYTES, maxLength: SLOT_BYTES }), (raw) => {
      const d = decodeSlot(Buffer.from(raw));
      if (d === undefined) return;
      if (!['main', 'secondary', 'watchdog'].includes(d.kind)) throw new Error(`kind ${d.kind}`);
      if (!['unknown', 'starting', 'ready', 'busy', 'full', 'stopping', 'stopped'].includes(d.state)) throw new Error(`state ${d.state}`);
      if (Buffer.byteLength(d.name) > 32 * 3) throw new Error('name unbounded');
      for (const n of [d.requests, d.failures, d.startedMs, d.heartbeatMs, d.incidents]) if (!Number.isFinite(n) || n < 0) throw new Error(`counter ${n}`);
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 random slots');
});

t.test('property: any header bytes are accepted as this layout or refused as SCOREBOARD_BAD_LAYOUT', async (t) => {
  const good = encodeHeader(1_700_000_000_000);
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), fc.tuple(fc.nat(HEADER_BYTES - 1), fc.nat(255)).map(([at, v]) => Buffer.from(good).fill(v, at, at + 1))), (raw) => {
      try {
        checkHeader(Buffer.from(raw), 'x');
      } catch (e) {
        if ((e as { code?: string }).code !== 'SCOREBOARD_BAD_LAYOUT') throw e;
      }
    }),
    { numRuns: 1000 },
  );
  t.pass('1000 random headers');
});

t.test('property: every slot a daemon can write reads back the same', async (t) => {
  const slot = fc.record({
    kind: fc.constantFrom('main' as const, 'secondary' as const, 'watchdog' as const),
    instance: fc.integer({ min: 0, max: MAX_SECONDARIES }),
    pid: fc.integer({ min: 1, max: 0xffffffff }),
    state: fc.constantFrom('unknown' as const, 'starting' as const, 'ready' as const, 'busy' as const, 'full' as const, 'stopping' as const, 'stopped' as const),
    generation: fc.integer({ min: 0, max: 0xffffffff }),
    starts: fc.integer({ min: 0, max: 0xffffffff }),
    active: fc.integer({ min: 0, max: 0xffffffff }),
    capacity: fc.integer({ min: 0, max: 0xffffffff }),
    queued: fc.integer({ min: 0, max: 0xffffffff }),
    requests: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    failures: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    startedMs: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    heartbeatMs: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    incidents: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    latencySumUs: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    latencyMaxUs: fc.integer({ min: 0, max: 0xffffffff }),
    running: fc.integer({ min: 0, max: 0xffffffff }),
    name: fc.stringMatching(/^[a-z0-9-]{0,31}$/),
  });
  fc.assert(
    fc.property(slot, (s) => {
      const back = decodeSlot(encodeSlot(s));
      if (!isDeepStrictEqual(back, { ...s })) throw new Error(`${JSON.stringify(s)} read back as ${JSON.stringify(back)}`);
    }),
    { numRuns: 1000 },
  );
  t.pass('1000 random slots round-trip');
});
