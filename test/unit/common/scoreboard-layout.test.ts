/** The scoreboard layout (docs/SCOREBOARD.md §2, §3): offsets, slot and header encoding, and that any bytes decode without an exception. */
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import t from 'tap';
import { checkHeader, decodeSlot, encodeHeader, encodeSlot, HEADER_BYTES, SCOREBOARD_BYTES, SLOT, SLOT_BYTES, SLOT_COUNT } from '../../../daemons/common/scoreboard-layout.js';
import { sample } from '../lib/scoreboard-files.js';
import { MAX_SECONDARIES } from '../../../daemons/common/topology.js';

t.test('layout constants match docs/SCOREBOARD.md', async (t) => {
  t.equal(HEADER_BYTES, 64);
  t.equal(SLOT_BYTES, 128);
  t.equal(SLOT_COUNT, 64);
  t.equal(SCOREBOARD_BYTES, 8256);
  t.same(SLOT, { seq: 0, kind: 4, instance: 8, pid: 12, state: 16, generation: 20, starts: 24, active: 28, capacity: 32, queued: 36, requests: 40, failures: 48, startedMs: 56, heartbeatMs: 64, incidents: 72, name: 80, latencySumUs: 112, latencyMaxUs: 120, running: 124 });
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
  t.same(decodeSlot(v2), { ...d, running: 0 }, 'an older writer\'s slot reads with 0 running');

  const long = decodeSlot(encodeSlot(sample({ name: 'n'.repeat(40) })));
  t.equal(long?.name, 'n'.repeat(31), 'the name is cut to 31 bytes, NUL-terminated');
  t.equal(decodeSlot(Buffer.alloc(SLOT_BYTES)), undefined, 'a free slot');
  const odd = encodeSlot(d);
  odd.writeUInt32LE(99, SLOT.state);
  t.equal(decodeSlot(odd)?.state, 'unknown', 'an unknown state number reads as unknown');
  for (const [kind, num] of [['main', 1], ['secondary', 2], ['watchdog', 3]] as const) {
    t.equal(encodeSlot(sample({ kind })).readUInt32LE(SLOT.kind), num, `kind ${kind} = ${num}`);
    t.equal(decodeSlot(encodeSlot(sample({ kind })))?.kind, kind, `kind ${num} reads as ${kind}`);
  }
  const unknownKind = encodeSlot(d);
  unknownKind.writeUInt32LE(4, SLOT.kind);
  t.equal(decodeSlot(unknownKind), undefined, 'a kind number no daemon has reads as a free slot');
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
  t.throws(() => checkHeader(Buffer.alloc(10), '/etc/passwd'), { message: /; if it is the suite's scoreboard, restart the suite \(systemctl restart dispatchd\.target\) to recreate it, else name the suite's \(\[paths\] scoreboard, default \/dev\/shm\/dispatchd\.scoreboard\)$/ }, 'both remedies: the suite\'s file, or the wrong file named');
  t.throws(() => checkHeader(encodeHeader(1).fill(0, 8, 12), '/dev/shm/x'), { message: /\/dev\/shm\/x.*restart the suite/ }, 'names the file and says what to do');
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
