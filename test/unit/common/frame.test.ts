import fc from 'fast-check';
import t from 'tap';
import { DispatchError } from '../../../daemons/common/errors.js';
import {
  encodeFrame,
  FRAME_MAGIC,
  FRAME_PREFIX_BYTES,
  FRAME_VERSION,
  FrameDecoder,
  MAX_BODY_BYTES_CEILING,
  MAX_HEADER_BYTES,
  type DecodeResult,
  type Frame,
  type FrameHeader,
} from '../../../daemons/common/frame.js';

/** One frame as the bytes on the wire. */
function wire(header: FrameHeader, body: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat(encodeFrame(header, body));
}

/** A frame prefix with chosen fields, for damaged input. */
function prefix(o: { magic?: number; version?: number; flags?: number; headerLen: number; bodyLen: number }): Buffer {
  const b = Buffer.alloc(FRAME_PREFIX_BYTES);
  b.writeUInt16BE(o.magic ?? FRAME_MAGIC, 0);
  b.writeUInt8(o.version ?? FRAME_VERSION, 2);
  b.writeUInt8(o.flags ?? 0, 3);
  b.writeUInt32BE(o.headerLen, 4);
  b.writeUInt32BE(o.bodyLen, 8);
  return b;
}

/** Takes every available frame; stops at need-more or error. */
function drain(d: FrameDecoder): { frames: Frame[]; last: DecodeResult } {
  const frames: Frame[] = [];
  for (;;) {
    const r = d.next();
    if (r.kind !== 'frame') return { frames, last: r };
    frames.push(r.frame);
  }
}

/** Feeds chunks one by one, draining after each, as a socket's data handler does. */
function feed(d: FrameDecoder, chunks: Buffer[]): { frames: Frame[]; last: DecodeResult } {
  const frames: Frame[] = [];
  let last: DecodeResult = { kind: 'need-more' };
  for (const c of chunks) {
    d.push(c);
    const r = drain(d);
    frames.push(...r.frames);
    last = r.last;
    if (last.kind === 'error') break;
  }
  return { frames, last };
}

function errorOf(r: DecodeResult): DispatchError {
  if (r.kind !== 'error') throw new Error(`expected an error, got ${r.kind}`);
  return r.error;
}

const SAMPLE: Array<[FrameHeader, Buffer]> = [
  [{ op: 'lease', type: 'echo' }, Buffer.alloc(0)],
  [{ op: 'run', lease: 'ab'.repeat(16), generation: 4294967295, type: 'sha256', note: 'ünïcødé ✓ 🚀' }, Buffer.from([0, 1, 2, 255, 10, 13, 0x44, 0x51])],
  [{}, Buffer.from('hello world')],
  [{ nested: { a: [1, 2, { b: null }] }, t: true }, Buffer.alloc(1000, 7)],
];

t.test('encodeFrame writes the documented prefix', async (t) => {
  const [head, body] = encodeFrame({ op: 'lease' }, Buffer.from('xyz'));
  const json = JSON.stringify({ op: 'lease' });
  t.equal(head.length, FRAME_PREFIX_BYTES + json.length);
  t.same([...head.subarray(0, 4)], [0x44, 0x51, 0x01, 0x00], 'magic "DQ", version 1, flags 0');
  t.equal(head.readUInt32BE(4), json.length, 'header length, big-endian');
  t.equal(head.readUInt32BE(8), 3, 'body length, big-endian');
  t.equal(head.toString('utf8', FRAME_PREFIX_BYTES), json);
  t.equal(body.toString(), 'xyz', 'the body is returned as is');
  const b = Buffer.from('same buffer');
  t.equal(encodeFrame({}, b)[1], b, 'the body is never copied');
});

t.test('round trips', async (t) => {
  for (const [header, body] of SAMPLE) {
    const d = new FrameDecoder(1 << 20);
    d.push(wire(header, body));
    const r = d.next();
    t.equal(r.kind, 'frame');
    if (r.kind !== 'frame') continue;
    t.same(r.frame.header, header);
    t.ok(r.frame.body.equals(body));
    t.equal(d.next().kind, 'need-more', 'nothing else buffered');
    t.equal(d.bufferedBytes, 0);
  }
});

t.test('input split at every byte boundary decodes to the same frames', async (t) => {
  const all = Buffer.concat(SAMPLE.map(([h, b]) => wire(h, b)));
  for (let i = 0; i <= all.length; i++) {
    const d = new FrameDecoder(1 << 20);
    const { frames, last } = feed(d, [all.subarray(0, i), all.subarray(i)]);
    if (frames.length !== SAMPLE.length || last.kind !== 'need-more') {
      t.fail(`split at ${i}: ${frames.length} frames, last ${last.kind}`);
      return;
    }
    for (let k = 0; k < SAMPLE.length; k++) {
      if (JSON.stringify(frames[k]!.header) !== JSON.stringify(SAMPLE[k]![0]) || !frames[k]!.body.equals(SAMPLE[k]![1])) {
        t.fail(`split at ${i}: frame ${k} differs`);
        return;
      }
    }
  }
  t.pass(`all ${all.length + 1} splits decode`);
});

t.test('input fed one byte at a time', async (t) => {
  const all = Buffer.concat(SAMPLE.map(([h, b]) => wire(h, b)));
  const d = new FrameDecoder(1 << 20);
  const chunks = [...all].map((x) => Buffer.from([x]));
  const { frames, last } = feed(d, chunks);
  t.equal(last.kind, 'need-more');
  t.same(frames.map((f) => f.header), SAMPLE.map(([h]) => h));
  t.same(frames.map((f) => f.body.toString('hex')), SAMPLE.map(([, b]) => b.toString('hex')));
});

t.test('several frames merged in one chunk come out one by one', async (t) => {
  const all = Buffer.concat([...SAMPLE, ...SAMPLE].map(([h, b]) => wire(h, b)));
  const d = new FrameDecoder(1 << 20);
  d.push(all.subarray(0, all.length - 3)); // the last frame is incomplete
  const { frames, last } = drain(d);
  t.equal(frames.length, SAMPLE.length * 2 - 1);
  t.equal(last.kind, 'need-more');
  t.equal(d.bufferedBytes, wire(...SAMPLE[SAMPLE.length - 1]!).length - 3, 'the incomplete frame stays buffered');
  d.push(all.subarray(all.length - 3));
  const r = d.next();
  t.equal(r.kind, 'frame');
  t.equal(d.bufferedBytes, 0);
});

t.test('bad magic is detected after 2 bytes', async (t) => {
  const d = new FrameDecoder(100);
  d.push(Buffer.from('G'));
  t.equal(d.next().kind, 'need-more', 'one byte cannot tell');
  d.push(Buffer.from('E'));
  const err = errorOf(d.next());
  t.equal(err.code, 'FRAME_BAD_MAGIC');
  t.match(err.message, /0x4745/);
  t.equal(d.bufferedBytes, 0, 'buffered bytes are released');

  const d2 = new FrameDecoder(100);
  d2.push(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
  t.equal(errorOf(d2.next()).code, 'FRAME_BAD_MAGIC', 'an HTTP request is refused');

  const d3 = new FrameDecoder(100);
  d3.push(Buffer.from([0x44]));
  d3.push(Buffer.from([0x52]));
  t.equal(errorOf(d3.next()).code, 'FRAME_BAD_MAGIC', 'magic split over two chunks');
});

t.test('bad version', async (t) => {
  for (const version of [0, 2, 255]) {
    const d = new FrameDecoder(100);
    d.push(prefix({ version, headerLen: 2, bodyLen: 0 }));
    d.push(Buffer.from('{}'));
    const err = errorOf(d.next());
    t.equal(err.code, 'FRAME_BAD_VERSION', `version ${version}`);
    t.match(err.message, String(version));
  }
});

t.test('non-zero flags', async (t) => {
  for (const flags of [1, 0x80, 0xff]) {
    const d = new FrameDecoder(100);
    d.push(Buffer.concat([prefix({ flags, headerLen: 2, bodyLen: 0 }), Buffer.from('{}')]));
    t.equal(errorOf(d.next()).code, 'FRAME_BAD_HEADER', `flags ${flags}`);
  }
});

t.test('header length 0, 1 and over the maximum; 2 and the maximum are fine', async (t) => {
  for (const [headerLen, code] of [[0, 'FRAME_BAD_HEADER'], [1, 'FRAME_BAD_HEADER'], [MAX_HEADER_BYTES + 1, 'FRAME_TOO_LARGE'], [0xffffffff, 'FRAME_TOO_LARGE']] as const) {
    const d = new FrameDecoder(100);
    d.push(prefix({ headerLen, bodyLen: 0 }));
    const err = errorOf(d.next());
    t.equal(err.code, code, `header length ${headerLen}, decided from the prefix alone`);
    t.equal(d.bufferedBytes, 0);
  }
  const d = new FrameDecoder(0);
  d.push(prefix({ headerLen: 2, bodyLen: 0 }));
  d.push(Buffer.from('{}'));
  t.equal(d.next().kind, 'frame', 'header of 2 bytes');

  const json = JSON.stringify({ pad: 'x'.repeat(MAX_HEADER_BYTES - 10) });
  t.equal(json.length, MAX_HEADER_BYTES);
  const d2 = new FrameDecoder(0);
  d2.push(wire(JSON.parse(json)));
  t.equal(d2.next().kind, 'frame', 'header of exactly MAX_HEADER_BYTES');
});

t.test('encodeFrame refuses a header over MAX_HEADER_BYTES', async (t) => {
  t.throws(() => encodeFrame({ pad: 'x'.repeat(MAX_HEADER_BYTES) }), { code: 'FRAME_TOO_LARGE' });
  t.doesNotThrow(() => encodeFrame({ pad: 'x'.repeat(MAX_HEADER_BYTES - 10) }));
});

t.test('body over maxBodyBytes is rejected before the body arrives', async (t) => {
  const d = new FrameDecoder(1000);
  d.push(prefix({ headerLen: 2, bodyLen: 1001 }));
  const err = errorOf(d.next());
  t.equal(err.code, 'PAYLOAD_TOO_LARGE', 'a refusal of the request (exit 65), not a protocol error');
  t.match(err.message, /payload of 1001 bytes is too large \(the maximum is 1000 bytes\)/);
  t.equal(err.fields.max_bytes, 1000);
  t.equal(err.fields.size, 1001);
  // The peer keeps sending its body: nothing of it is kept.
  for (let i = 0; i < 100; i++) d.push(Buffer.alloc(64 * 1024));
  t.equal(d.bufferedBytes, 0, 'memory stays bounded after the error');
  t.equal(errorOf(d.next()).code, 'PAYLOAD_TOO_LARGE');

  const ok = new FrameDecoder(1000);
  ok.push(wire({}, Buffer.alloc(1000)));
  t.equal(ok.next().kind, 'frame', 'a body of exactly maxBodyBytes is fine');

  const zero = new FrameDecoder(0);
  zero.push(wire({ op: 'lease' }, Buffer.from('x')));
  t.equal(errorOf(zero.next()).code, 'PAYLOAD_TOO_LARGE', 'maxBodyBytes 0 refuses any body (the main server)');
  t.match(errorOf(zero.next()).message, /this receiver takes no payload/);
});

t.test('maxBodyBytes must be 0..MAX_BODY_BYTES_CEILING', async (t) => {
  t.throws(() => new FrameDecoder(-1), RangeError);
  t.throws(() => new FrameDecoder(MAX_BODY_BYTES_CEILING + 1), RangeError);
  t.throws(() => new FrameDecoder(Number.NaN), RangeError);
  t.doesNotThrow(() => new FrameDecoder(MAX_BODY_BYTES_CEILING));
});

t.test('invalid JSON header', async (t) => {
  for (const text of ['{"a":', 'xx', '{"a":1}}', '\u00ff\u00fe']) {
    const h = Buffer.from(text, 'latin1');
    const d = new FrameDecoder(10);
    d.push(Buffer.concat([prefix({ headerLen: h.length, bodyLen: 0 }), h]));
    const err = errorOf(d.next());
    t.equal(err.code, 'FRAME_BAD_HEADER', JSON.stringify(text));
    t.match(err.message, /not valid JSON/);
  }
});

t.test('JSON header that is not an object', async (t) => {
  for (const text of ['[]', '[1,2]', 'null', '"str"', '12', 'true']) {
    const h = Buffer.from(text);
    const d = new FrameDecoder(10);
    d.push(Buffer.concat([prefix({ headerLen: h.length, bodyLen: 0 }), h]));
    const err = errorOf(d.next());
    t.equal(err.code, 'FRAME_BAD_HEADER', text);
    t.match(err.message, /not a JSON object/);
  }
});

t.test('errors are final', async (t) => {
  const d = new FrameDecoder(100);
  d.push(Buffer.from('XX'));
  const first = errorOf(d.next());
  d.push(wire({ op: 'lease' }));
  const again = d.next();
  t.equal(errorOf(again), first, 'the same error again, the valid frame behind is not decoded');
  t.equal(d.bufferedBytes, 0, 'pushes after the error are dropped');

  // Bad JSON after a good frame: the good frame is delivered, then the error sticks.
  const bad = Buffer.from('{nope}');
  const d2 = new FrameDecoder(100);
  d2.push(Buffer.concat([wire({ a: 1 }), prefix({ headerLen: bad.length, bodyLen: 0 }), bad, wire({ b: 2 })]));
  t.equal(d2.next().kind, 'frame');
  t.equal(errorOf(d2.next()).code, 'FRAME_BAD_HEADER');
  t.equal(errorOf(d2.next()).code, 'FRAME_BAD_HEADER');
});

/**
 * Runs `run` counting the bytes copied through Buffer.concat (and Buffer#copy with
 * `alsoBufferCopy`), the two ways the decoder can copy; both are restored after.
 */
function copiedDuring<T>(run: () => T, o: { alsoBufferCopy?: boolean } = {}): { result: T; copied: number } {
  const realConcat = Buffer.concat;
  const realCopy = Buffer.prototype.copy;
  let copied = 0;
  Buffer.concat = function (list: readonly Uint8Array[], total?: number) {
    const out = realConcat.call(Buffer, list, total);
    copied += out.length;
    return out;
  } as typeof Buffer.concat;
  if (o.alsoBufferCopy) {
    Buffer.prototype.copy = function (this: Buffer, ...args: Parameters<Buffer['copy']>) {
      const n = realCopy.apply(this, args);
      copied += n;
      return n;
    };
  }
  try {
    return { result: run(), copied };
  } finally {
    Buffer.concat = realConcat;
    Buffer.prototype.copy = realCopy;
  }
}

t.test('a 16 MiB body in 64 KiB chunks decodes without quadratic copying', async (t) => {
  const BODY = 16 * 1024 * 1024;
  const CHUNK = 64 * 1024;
  const body = Buffer.alloc(BODY);
  for (let i = 0; i < BODY; i += 4096) body.writeUInt32BE(i, i);
  const all = wire({ op: 'run', type: 'echo' }, body);

  let calls = 0;
  const { result: frame, copied } = copiedDuring(() => {
    let last: Frame | undefined;
    const d = new FrameDecoder(BODY);
    for (let off = 0; off < all.length; off += CHUNK) {
      d.push(all.subarray(off, off + CHUNK));
      for (;;) {
        calls++;
        const r = d.next();
        if (r.kind === 'frame') last = r.frame;
        else if (r.kind === 'error') throw r.error;
        else break;
      }
    }
    return last;
  }, { alsoBufferCopy: true });
  t.ok(frame, 'the frame decoded');
  t.ok(frame!.body.equals(body), 'the body is intact');
  t.equal(calls, Math.ceil(all.length / CHUNK) + 1, 'one next() per chunk, plus the one that finds nothing more');
  t.ok(copied <= 2 * all.length, `bytes copied (${copied}) stay linear in the frame size (${all.length})`);
});

t.test('a prefix dribbled in byte by byte before a large body copies linearly', async (t) => {
  const body = Buffer.alloc(4 * 1024 * 1024, 0xab);
  const all = wire({ op: 'run' }, body);
  const { result: got, copied } = copiedDuring(() => {
    const d = new FrameDecoder(body.length);
    const headLen = all.length - body.length;
    const chunks: Buffer[] = [];
    for (let i = 0; i < headLen; i++) chunks.push(all.subarray(i, i + 1));
    for (let off = headLen; off < all.length; off += 4096) chunks.push(all.subarray(off, off + 4096));
    return feed(d, chunks).frames[0];
  });
  t.ok(got?.body.equals(body));
  t.ok(copied <= 2 * all.length, `bytes copied (${copied}) stay linear (${all.length})`);
});

t.test('property: any sequence of frames, split arbitrarily, decodes to the same frames', async (t) => {
  const frameArb = fc.record({
    header: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }),
    body: fc.uint8Array({ maxLength: 300 }),
  });
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 25 }), (frames, cutSeeds) => {
      const bytes = Buffer.concat(frames.map((f) => wire(f.header, Buffer.from(f.body))));
      const cuts = [...new Set(cutSeeds.map((c) => (bytes.length ? c % (bytes.length + 1) : 0)))].sort((a, b) => a - b);
      const chunks: Buffer[] = [];
      let prev = 0;
      for (const c of [...cuts, bytes.length]) {
        chunks.push(bytes.subarray(prev, c));
        prev = c;
      }
      const d = new FrameDecoder(300);
      const { frames: got, last } = feed(d, chunks);
      if (last.kind === 'error') throw last.error;
      if (got.length !== frames.length) throw new Error(`${got.length} frames decoded, ${frames.length} sent`);
      got.forEach((g, i) => {
        if (JSON.stringify(g.header) !== JSON.stringify(frames[i]!.header)) throw new Error(`header ${i} differs`);
        if (!g.body.equals(Buffer.from(frames[i]!.body))) throw new Error(`body ${i} differs`);
      });
      if (d.bufferedBytes !== 0) throw new Error('bytes left over');
    }),
    { numRuns: 300 },
  );
  t.pass('300 random frame sequences round-trip');
});

t.test('property: random bytes never throw, and an error is final', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }), (chunks) => {
      const d = new FrameDecoder(1024);
      let failed: DispatchError | undefined;
      for (const c of chunks) {
        d.push(Buffer.from(c));
        const r = drain(d).last;
        if (failed && (r.kind !== 'error' || r.error !== failed)) throw new Error('error was not final');
        if (r.kind === 'error') failed = r.error;
        if (d.bufferedBytes > 12 + 64 * 1024 + 1024) throw new Error('unbounded buffering');
      }
    }),
    { numRuns: 300 },
  );
  t.pass();
});

t.test('property: lengths past the maximum are refused as soon as the prefix is in, before any of it is buffered', async (t) => {
  fc.assert(
    fc.property(fc.nat(1024), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.uint8Array({ maxLength: 512 }), (maxBody, h, b, rest) => {
      const d = new FrameDecoder(maxBody);
      d.push(prefix({ headerLen: h, bodyLen: b }));
      const r = d.next();
      const tooLong = h < 2 || h > MAX_HEADER_BYTES || b > maxBody;
      if (tooLong !== (r.kind === 'error')) throw new Error(`h=${h} b=${b} max=${maxBody}: ${r.kind}`);
      if (r.kind === 'error') {
        const want = h < 2 ? 'FRAME_BAD_HEADER' : h > MAX_HEADER_BYTES ? 'FRAME_TOO_LARGE' : 'PAYLOAD_TOO_LARGE';
        if (r.error.code !== want) throw new Error(`h=${h} b=${b}: ${r.error.code}, expected ${want}`);
        d.push(Buffer.from(rest));
        if (d.bufferedBytes !== 0 || d.next().kind !== 'error') throw new Error('bytes after the error were kept');
      }
    }),
    { numRuns: 1000 },
  );
  t.pass('1000 random prefixes');
});

t.test('property: valid frames then garbage: every frame is delivered, then one final error', async (t) => {
  const frameArb = fc.record({ header: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }), body: fc.uint8Array({ maxLength: 64 }) });
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 5 }), fc.uint8Array({ minLength: 2, maxLength: 200 }), fc.array(fc.nat(), { maxLength: 8 }), (frames, garbage, cutSeeds) => {
      if (garbage[0] === 0x44) garbage[0] = 0x45; // not "D": the garbage cannot start a frame
      const bytes = Buffer.concat([...frames.map((f) => wire(f.header, Buffer.from(f.body))), Buffer.from(garbage)]);
      const cuts = [...new Set(cutSeeds.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      const chunks: Buffer[] = [];
      let prev = 0;
      for (const c of [...cuts, bytes.length]) {
        chunks.push(bytes.subarray(prev, c));
        prev = c;
      }
      const { frames: got, last } = feed(new FrameDecoder(64), chunks);
      if (got.length !== frames.length) throw new Error(`${got.length} of ${frames.length} frames before the garbage`);
      if (last.kind !== 'error' || last.error.code !== 'FRAME_BAD_MAGIC') throw new Error(`ended with ${last.kind}`);
    }),
    { numRuns: 500 },
  );
  t.pass('500 random streams');
});
