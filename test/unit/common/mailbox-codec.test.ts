import fc from 'fast-check';
import t from 'tap';
import { encodeMessage, MailboxDecoder, previewOf, type MailboxDecoded } from '../../../daemons/common/mailbox-codec.js';
import { PIPE_BUF, type MailboxMessage } from '../../../daemons/common/messages.js';
import { LEASE, SAMPLES } from '../lib/sample-messages.js';

const line = (m: MailboxMessage) => encodeMessage(m);
const messages = (out: MailboxDecoded[]) => out.filter((d) => d.kind === 'message').map((d) => (d as { message: MailboxMessage }).message);
const invalids = (out: MailboxDecoded[]) => out.filter((d) => d.kind === 'invalid') as Array<Extract<MailboxDecoded, { kind: 'invalid' }>>;

/** A valid message whose line (with padding whitespace inside the JSON) is exactly `size` bytes. */
function paddedLine(size: number, seq = 1): Buffer {
  const core = `{"v":1,"t":"ping","from":"watchdog","seq":${seq}`;
  const pad = size - core.length - 2; // "}" and "\n"
  if (pad < 0) throw new Error('too small');
  return Buffer.from(core + ' '.repeat(pad) + '}\n');
}

t.test('encodeMessage writes one line of JSON', async (t) => {
  for (const m of SAMPLES) {
    const b = encodeMessage(m);
    t.equal(b[b.length - 1], 0x0a, 'ends in a newline');
    t.equal(b.indexOf(0x0a), b.length - 1, 'exactly one newline');
    t.same(JSON.parse(b.toString()), m);
  }
});

t.test('encodeMessage refuses a line over PIPE_BUF', async (t) => {
  const base = { v: 1, t: 'reserve', lease: LEASE, gen: 1, exp: 1 } as const;
  const overhead = encodeMessage({ ...base, id: '' } as MailboxMessage).length;
  const exact = { ...base, id: 'x'.repeat(PIPE_BUF - overhead) } as MailboxMessage;
  t.equal(encodeMessage(exact).length, PIPE_BUF, 'a line of exactly PIPE_BUF bytes is encoded');
  const over = { ...base, id: 'x'.repeat(PIPE_BUF - overhead + 1) } as MailboxMessage;
  t.throws(() => encodeMessage(over), { code: 'MESSAGE_TOO_LARGE', message: /4097 bytes exceed PIPE_BUF/ });
  // Multi-byte characters count as bytes, not characters.
  const utf8 = { ...base, id: '€'.repeat(Math.ceil(PIPE_BUF / 3)) } as MailboxMessage;
  t.throws(() => encodeMessage(utf8), { code: 'MESSAGE_TOO_LARGE' });
});

t.test('every message type round-trips', async (t) => {
  const d = new MailboxDecoder();
  for (const m of SAMPLES) {
    const out = d.push(line(m));
    t.same(out, [{ kind: 'message', message: m }], m.t);
  }
  t.equal(d.pendingLength, 0);
});

t.test('split at every byte and merged into one chunk', async (t) => {
  const all = Buffer.concat(SAMPLES.map(line));
  const merged = new MailboxDecoder().push(all);
  t.same(messages(merged), SAMPLES, 'all lines in one chunk');
  let bad = 0;
  for (let i = 0; i <= all.length; i++) {
    const d = new MailboxDecoder();
    const out = [...d.push(all.subarray(0, i)), ...d.push(all.subarray(i))];
    if (out.length !== SAMPLES.length || JSON.stringify(messages(out)) !== JSON.stringify(SAMPLES)) bad++;
  }
  t.equal(bad, 0, `all ${all.length + 1} two-way splits decode every message`);
  const d = new MailboxDecoder();
  const out: MailboxDecoded[] = [];
  for (const byte of all) out.push(...d.push(Buffer.from([byte])));
  t.same(messages(out), SAMPLES, 'one byte at a time');
  t.equal(invalids(out).length, 0);
});

t.test('a damaged line costs only that line', async (t) => {
  const next = line(SAMPLES[0]!);
  const damaged: Array<[string, string, RegExp]> = [
    ['bad JSON', '{"v":1,"t":', /not valid JSON/],
    ['not JSON at all', 'hello world', /not valid JSON/],
    ['empty line', '', /not valid JSON/],
    ['unknown t', '{"v":1,"t":"launch","from":"main"}', /./],
    ['wrong v', JSON.stringify({ ...SAMPLES.find((m) => m.t === "ping"), v: 2 }), /'v'/],
    ['extra key', JSON.stringify({ ...SAMPLES.find((m) => m.t === "ping"), x: 1 }), /./],
    ['bad lease token', JSON.stringify({ ...SAMPLES.find((m) => m.t === 'reserve'), lease: 'NOT-A-LEASE' }), /'lease'/],
    ['bad credit sequence', JSON.stringify({ ...SAMPLES[0], seq: -1 }), /'seq'/],
    ['a JSON array', '[1,2,3]', /./],
    ['a JSON string', '"ping"', /./],
    ['binary', '\u0000\u00ff\u0001', /not valid JSON/],
  ];
  for (const [what, text, reason] of damaged) {
    const d = new MailboxDecoder();
    const out = d.push(Buffer.concat([Buffer.from(text + '\n', 'latin1'), next]));
    t.equal(out.length, 2, what);
    t.equal(out[0]!.kind, 'invalid', `${what} is reported`);
    if (out[0]!.kind === 'invalid') {
      t.equal(out[0]!.error.code, 'MESSAGE_INVALID', `${what}: MESSAGE_INVALID`);
      t.match(out[0]!.error.message, reason, `${what}: says why`);
      t.ok(out[0]!.preview.length <= 64 && /^[\x20-\x7e]*(… \(\d+ bytes\))?$/.test(out[0]!.preview), `${what}: a short printable preview`);
    }
    t.same(out[1], { kind: 'message', message: SAMPLES[0] }, `${what}: the next valid line decodes`);
  }
});

t.test('a line of exactly PIPE_BUF bytes is OK, one byte more is MESSAGE_TOO_LARGE', async (t) => {
  const exact = paddedLine(PIPE_BUF, 1);
  const over = paddedLine(PIPE_BUF + 1, 2);
  const after = line(SAMPLES[11]!);
  t.equal(exact.length, PIPE_BUF);

  const d = new MailboxDecoder();
  t.same(d.push(exact), [{ kind: 'message', message: { v: 1, t: 'ping', from: 'watchdog', seq: 1 } }], 'PIPE_BUF bytes in one chunk');
  const out = d.push(Buffer.concat([over, after]));
  t.equal(out.length, 2);
  t.equal(out[0]!.kind === 'invalid' && out[0]!.error.code, 'MESSAGE_TOO_LARGE', 'PIPE_BUF + 1 bytes');
  t.same(out[1], { kind: 'message', message: SAMPLES[11] }, 'the next line decodes');

  // The same at every split point: the exact line always decodes, the long one never.
  let bad = 0;
  for (let i = 1; i < exact.length; i++) {
    const d = new MailboxDecoder();
    const o = [...d.push(exact.subarray(0, i)), ...d.push(exact.subarray(i))];
    if (o.length !== 1 || o[0]!.kind !== 'message') bad++;
    if (d.pendingLength >= PIPE_BUF) bad++;
  }
  t.equal(bad, 0, 'a PIPE_BUF line split anywhere decodes');
  for (let i = 1; i < over.length; i++) {
    const d = new MailboxDecoder();
    const o = [...d.push(over.subarray(0, i)), ...d.push(Buffer.concat([over.subarray(i), after]))];
    const inv = invalids(o);
    if (inv.length !== 1 || inv[0]!.error.code !== 'MESSAGE_TOO_LARGE' || JSON.stringify(messages(o)) !== JSON.stringify([SAMPLES[11]])) bad++;
  }
  t.equal(bad, 0, 'a PIPE_BUF + 1 line split anywhere is refused once, the next line decodes');
});

t.test('an endless line without newline keeps memory bounded and resynchronises', async (t) => {
  const d = new MailboxDecoder();
  const out: MailboxDecoded[] = [];
  let maxPending = 0;
  const chunk = Buffer.alloc(1000, 'a');
  for (let i = 0; i < 1000; i++) {
    out.push(...d.push(chunk)); // 1 MB without a newline
    maxPending = Math.max(maxPending, d.pendingLength);
  }
  t.ok(maxPending < PIPE_BUF, `pendingLength stays under PIPE_BUF (max ${maxPending})`);
  t.equal(out.length, 1, 'reported once, not once per chunk');
  t.equal(out[0]!.kind === 'invalid' && out[0]!.error.code, 'MESSAGE_TOO_LARGE');
  t.match(out[0]!.kind === 'invalid' && out[0]!.preview, /^a+… \(\d+ bytes\)$/, 'the preview is short and says the size');
  // The rest of the long line, its newline, then a valid message.
  const tail = d.push(Buffer.concat([Buffer.from('aaaa\n'), line(SAMPLES[1]!)]));
  t.same(tail, [{ kind: 'message', message: SAMPLES[1] }], 'resynchronised at the next newline');
  t.equal(d.pendingLength, 0);

  // Same when the newline arrives in its own chunk, and in a chunk of its own with the next line split.
  const d2 = new MailboxDecoder();
  d2.push(Buffer.alloc(PIPE_BUF * 3, 'b'));
  t.same(d2.push(Buffer.from('\n')), []);
  const l = line(SAMPLES[2]!);
  t.same([...d2.push(l.subarray(0, 5)), ...d2.push(l.subarray(5))], [{ kind: 'message', message: SAMPLES[2] }]);
});

t.test('a valid message glued behind garbage (a bad writer left no newline) is recovered', async (t) => {
  // Well-behaved writers write whole lines atomically, so a valid message is only ever damaged
  // by bytes in front of it: a truncated write of another writer, or a write over PIPE_BUF.
  const glued: Array<[string, Buffer]> = [
    ['a truncated message', Buffer.from('{"v":1,"t":"res')],
    ['random bytes', Buffer.from([0xff, 0x00, 0x7b, 0x22, 0x76, 0x0d])],
    ['a prefix of the start marker', Buffer.from('{"v')],
    ['the start marker itself', Buffer.from('{"v":')],
    ['garbage of exactly PIPE_BUF bytes', Buffer.alloc(PIPE_BUF, 'g')],
    ['garbage of ten times PIPE_BUF', Buffer.alloc(PIPE_BUF * 10, 'g')],
  ];
  for (const [what, garbage] of glued) {
    for (const m of [SAMPLES[1]!, SAMPLES[6]!, SAMPLES[11]!]) {
      const bytes = Buffer.concat([garbage, line(m), line(SAMPLES[0]!)]);
      // In one chunk, and split at a few points (the FIFO splits reads anywhere).
      for (const cut of [0, 1, garbage.length, garbage.length + 3, bytes.length - 1]) {
        const d = new MailboxDecoder();
        const out = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))];
        t.same(messages(out), [m, SAMPLES[0]], `${what} before '${m.t}', cut at ${cut}: the message is recovered`);
        t.equal(invalids(out).length, 1, `${what}: the damage is still reported once`);
      }
    }
  }
  // What is not a whole message is not invented: a damaged line with no valid suffix stays lost.
  const d = new MailboxDecoder();
  t.same(messages(d.push(Buffer.from('xx{"v":1,"t":"ping"}\n{"v":1,"t":"pi{"v":2}\n'))), [], 'no message from invalid suffixes');
});

t.test('lines that cannot be a message are rejected without parsing them (a flood of garbage stays cheap)', async (t) => {
  // 64 KiB of newlines once took the reader 1.6 s: one JSON.parse exception, error and stack
  // trace per blank line. A pipe full of them froze the daemon past the watchdog's probes.
  const parse = JSON.parse;
  let parses = 0;
  JSON.parse = ((text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) => {
    parses++;
    return parse(text, reviver);
  }) as typeof JSON.parse;
  try {
    const d = new MailboxDecoder();
    const garbage = Buffer.concat([Buffer.alloc(1000, '\n'), Buffer.from('{\n{"v":1\n[1,2]\n"ping"\nhello\n\u0000\u00ff\n')]);
    const out = d.push(garbage);
    t.equal(invalids(out).length, 1006, 'every damaged line is still reported');
    t.ok(invalids(out).every((o) => o.error.code === 'MESSAGE_INVALID' && /not valid JSON/.test(o.error.message)), 'as not valid JSON');
    t.equal(parses, 0, 'none of them was parsed');
    t.same(messages(d.push(line(SAMPLES[9]!))), [SAMPLES[9]], 'a valid line after them decodes');
  } finally {
    JSON.parse = parse;
  }
});

t.test('previewOf', async (t) => {
  t.equal(previewOf(Buffer.from('abc')), 'abc');
  t.equal(previewOf(Buffer.from([0, 0x41, 0x0a, 0xff])), '.A..', 'non-printable bytes become dots');
  const long = previewOf(Buffer.alloc(1000, 'z'));
  t.equal(long, 'z'.repeat(48) + '… (1000 bytes)');
  t.ok(long.length <= 64);
});

t.test('property: garbage interleaved with valid lines never throws; every valid line is recovered', async (t) => {
  const segment = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...SAMPLES).map((m) => ({ valid: true as const, m, bytes: encodeMessage(m) })) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 80 }).map((a) => ({ valid: false as const, bytes: Buffer.from(a) })) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 40 }).map((a) => ({ valid: false as const, bytes: Buffer.concat([Buffer.from(a), Buffer.from('\n')]) })) },
    { weight: 1, arbitrary: fc.integer({ min: PIPE_BUF - 4, max: PIPE_BUF * 2 }).map((n) => ({ valid: false as const, bytes: Buffer.alloc(n, 'x') })) },
  );
  fc.assert(
    fc.property(fc.array(segment, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 20 }), (segments, cutSeeds) => {
      const bytes = Buffer.concat(segments.map((s) => s.bytes));
      // Every valid line is recovered, even with garbage glued in front of it (random bytes
      // never contain the start marker '{"v":' by chance at these lengths).
      const expected: MailboxMessage[] = segments.filter((s) => s.valid).map((s) => (s as { m: MailboxMessage }).m);
      const allValid = expected.map((m) => JSON.stringify(m));
      const cuts = [...new Set(cutSeeds.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      const d = new MailboxDecoder();
      const got: MailboxMessage[] = [];
      let prev = 0;
      for (const c of [...cuts, bytes.length]) {
        for (const o of d.push(bytes.subarray(prev, c))) if (o.kind === 'message') got.push(o.message);
        if (d.pendingLength >= PIPE_BUF) throw new Error(`pendingLength ${d.pendingLength}`);
        prev = c;
      }
      // Exactly the valid lines, in order: none lost, none invented.
      if (JSON.stringify(got) !== JSON.stringify(expected)) {
        throw new Error(`decoded ${got.length} messages, ${expected.length} valid lines were sent: ${JSON.stringify(got.map((g) => g.t))} vs ${JSON.stringify(expected.map((m) => m.t))}`);
      }
      for (const g of got) if (!allValid.includes(JSON.stringify(g))) throw new Error(`decoded a message never sent: ${JSON.stringify(g)}`);
    }),
    { numRuns: 1000 },
  );
  t.pass('1000 random streams');
});
