import fc from 'fast-check';
import t from 'tap';
import { MAX_SECONDARIES } from '../../../daemons/common/topology.js';
import {
  Credit,
  CREDIT_LIST_MAX,
  Done,
  isCredit,
  isPing,
  isPong,
  LEASE_TOKEN,
  MAILBOX_VERSION,
  MailboxMessage,
  PIPE_BUF,
  Ping,
  Pong,
  Ready,
  Refused,
  Reserve,
  Reserved,
  Want,
} from '../../../daemons/common/messages.js';
import { LEASE, SAMPLES, TYPES } from '../lib/sample-messages.js';

const BY_TYPE = { credit: Credit, want: Want, reserve: Reserve, reserved: Reserved, refused: Refused, done: Done, ready: Ready, ping: Ping, pong: Pong };

t.test('constants', async (t) => {
  t.equal(PIPE_BUF, 4096, 'Linux PIPE_BUF');
  t.equal(MAILBOX_VERSION, 1);
});

t.test('every message type has a valid example that parses', async (t) => {
  t.same([...new Set(SAMPLES.map((m) => m.t))].sort(), [...TYPES].sort(), 'the samples cover every type');
  for (const m of SAMPLES) {
    const r = MailboxMessage.safeParse(m);
    t.ok(r.success, `${m.t} ${JSON.stringify(m)}`);
    t.same(r.data, m);
    t.ok(BY_TYPE[m.t].safeParse(m).success, `its own schema accepts ${m.t}`);
  }
});

/** A sample of type `t` with some fields changed (undefined removes a field). */
function variant(type: string, change: Record<string, unknown>): Record<string, unknown> {
  const base = { ...SAMPLES.find((m) => m.t === type)! } as Record<string, unknown>;
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base;
}

t.test('invalid messages are refused', async (t) => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['extra key', variant('ping', { extra: 1 })],
    ['extra key on done', variant('done', { note: 'x' })],
    ['v 2', variant('ping', { v: 2 })],
    ['v 0', variant('pong', { v: 0 })],
    ['v as a string', variant('ping', { v: '1' })],
    ['no v', variant('ping', { v: undefined })],
    ['unknown t', variant('ping', { t: 'pang' })],
    ['no t', variant('ping', { t: undefined })],
    ['lease upper case', variant('reserve', { lease: LEASE.toUpperCase() })],
    ['lease 31 hex', variant('reserve', { lease: LEASE.slice(1) })],
    ['lease 33 hex', variant('reserved', { lease: LEASE + 'a' })],
    ['lease not hex', variant('done', { lease: 'g'.repeat(32) })],
    ['from secondary-0', variant('ready', { from: 'secondary-0' })],
    ['from secondary-01', variant('ready', { from: 'secondary-01' })],
    ['from secondary-63 (past the bound)', variant('ready', { from: 'secondary-63' })],
    ['from secondary-999', variant('ready', { from: 'secondary-999' })],
    ['from client', variant('pong', { from: 'client' })],
    ['ping not from the watchdog', variant('ping', { from: 'main' })],
    ['gen negative', variant('ready', { gen: -1 })],
    ['gen over 32 bits', variant('ready', { gen: 2 ** 32 })],
    ['gen fractional', variant('ready', { gen: 1.5 })],
    ['seq negative', variant('ping', { seq: -1 })],
    ['seq unsafe', variant('ping', { seq: 2 ** 53 })],
    ['id empty', variant('reserve', { id: '' })],
    ['id of 65 characters', variant('reserve', { id: 'x'.repeat(65) })],
    ['unknown refusal reason', variant('refused', { reason: 'tired' })],
    ['claimed not boolean', variant('done', { claimed: 'yes' })],
    ['exp missing', variant('reserve', { exp: undefined })],
    ['credit sequence 0', variant('credit', { seq: 0 })],
    ['credit sequence over 48 bits', variant('credit', { seq: 2 ** 48 })],
    ['credit n negative', variant('credit', { n: -1 })],
    ['credit n over 100000', variant('credit', { n: 100_001 })],
    ['credit claimed too many', variant('credit', { claimed: Array.from({ length: CREDIT_LIST_MAX + 1 }, (_, i) => i + 1) })],
    ['credit ended not a triple', variant('credit', { ended: [[1, 2]] })],
    ['credit ended sequence 0', variant('credit', { ended: [[0, 1, 0]] })],
    ['credit claimed missing', variant('credit', { claimed: undefined })],
    ['want not from main', variant('want', { from: 'watchdog' })],
    ['want without to', variant('want', { to: undefined })],
  ];
  for (const [what, m] of cases) t.notOk(MailboxMessage.safeParse(m).success, what);
  t.notOk(MailboxMessage.safeParse(null).success, 'null');
  t.notOk(MailboxMessage.safeParse([]).success, 'an array');
  t.ok(MailboxMessage.safeParse(variant('reserve', { id: 'x'.repeat(64) })).success, 'id of 64 characters is fine');
});

t.test('a message names its sender as topology.ts does, within the one instance bound', async (t) => {
  const from = (name: string) => Ready.safeParse({ v: 1, t: 'ready', from: name, gen: 1 }).success;
  for (const ok of ['main', 'watchdog', 'secondary-1', `secondary-${MAX_SECONDARIES}`]) t.ok(from(ok), ok);
  for (const bad of ['', 'Main', 'main ', 'secondary', 'secondary-', 'secondary-0', 'secondary-01', `secondary-${MAX_SECONDARIES + 1}`, 'secondary-999', 'secondary-1a', 'watchdog2']) {
    t.notOk(from(bad), JSON.stringify(bad));
  }
});

t.test('a credit message at its largest fits PIPE_BUF', async (t) => {
  const big = 2 ** 48 - 1;
  const m = { v: 1, t: 'credit', from: 'secondary-62', gen: 0xffffffff, seq: big, n: 100_000, exp: Number.MAX_SAFE_INTEGER, claimed: Array(CREDIT_LIST_MAX).fill(big), ended: Array(CREDIT_LIST_MAX).fill([big, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]) };
  t.ok(MailboxMessage.safeParse(m).success);
  t.ok(JSON.stringify(m).length + 1 <= PIPE_BUF, `${JSON.stringify(m).length + 1} bytes with its newline`);
});

t.test('LEASE_TOKEN', async (t) => {
  t.match(LEASE, LEASE_TOKEN);
  t.notMatch(LEASE + '\n', LEASE_TOKEN, 'anchored');
  t.notMatch(' ' + LEASE, LEASE_TOKEN, 'anchored at the start');
});

t.test("isCredit, the mailbox decoder's check of a `credit` by hand, accepts exactly what the Credit schema accepts", async (t) => {
  const anyValue = fc.oneof(fc.constant(undefined), fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.string({ maxLength: 12 }), fc.constant(2 ** 48), fc.constant(2 ** 32), fc.constant(-1), fc.constant(0), fc.constant(1.5), fc.constant(Number.MAX_SAFE_INTEGER + 2), fc.constant([]), fc.constant({}));
  // Mostly good fields, so that about a third of the messages are valid and take the whole check.
  const w = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>) => fc.oneof({ arbitrary: good, weight: 12 }, { arbitrary: bad, weight: 1 });
  const seq = w(fc.oneof(fc.integer({ min: 1, max: 2 ** 48 - 1 }), fc.constant(2 ** 48 - 1)), anyValue);
  const uint = w(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), anyValue);
  const credit = fc.record(
    {
      v: w(fc.constant(1), anyValue),
      t: w(fc.constant('credit'), fc.oneof(fc.constant('ready'), anyValue)),
      from: w(fc.constantFrom('secondary-1', `secondary-${MAX_SECONDARIES}`, 'main'), fc.oneof(fc.constantFrom('secondary-0', 'secondary-01', `secondary-${MAX_SECONDARIES + 1}`), anyValue)),
      gen: w(fc.integer({ min: 0, max: 0xffffffff }), anyValue),
      seq,
      n: w(fc.integer({ min: 0, max: 100_000 }), fc.oneof(fc.constant(100_001), anyValue)),
      exp: uint,
      claimed: w(fc.array(seq, { maxLength: 3 }), fc.oneof(fc.constant(Array(CREDIT_LIST_MAX).fill(1)), fc.constant(Array(CREDIT_LIST_MAX + 1).fill(1)), anyValue)),
      ended: w(fc.array(w(fc.tuple(seq, uint, uint), fc.oneof(fc.array(fc.integer({ min: 1, max: 9 }), { maxLength: 4 }), anyValue)), { maxLength: 3 }), fc.oneof(fc.constant(Array(CREDIT_LIST_MAX).fill([1, 0, 0])), fc.constant(Array(CREDIT_LIST_MAX + 1).fill([1, 0, 0])), anyValue)),
      extra: anyValue,
    },
    { requiredKeys: ['v', 't', 'from', 'gen', 'seq', 'n', 'exp', 'claimed', 'ended'] },
  );
  let valid = 0;
  fc.assert(
    fc.property(fc.oneof({ arbitrary: credit, weight: 6 }, fc.record({ v: fc.constant(1), t: fc.constant('credit') }, { requiredKeys: [] }), anyValue), (m) => {
      // What reaches the check is JSON (the decoder parses a line): undefined fields are absent.
      const json = JSON.parse(JSON.stringify(m) ?? 'null') as unknown;
      const fast = isCredit(json);
      t.equal(fast, Credit.safeParse(json).success, JSON.stringify(json));
      if (fast) valid++;
    }),
    { numRuns: 3000 },
  );
  t.ok(valid > 100, `the hand check took ${valid} of 3000 valid messages whole`);
  for (const m of SAMPLES.filter((x) => x.t === 'credit')) t.ok(isCredit(m), 'the sample credit takes the hand check');
  t.notOk(isCredit({ ...SAMPLES.find((x) => x.t === 'credit'), extra: 1 }), 'an extra key is refused, as by the strict schema');
});

t.test('isPing and isPong, the hand checks of the probe messages, accept exactly what the Ping and Pong schemas accept', async (t) => {
  const anyValue = fc.oneof(fc.constant(undefined), fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.string({ maxLength: 12 }), fc.constant(2 ** 32), fc.constant(-1), fc.constant(0), fc.constant(1.5), fc.constant(Number.MAX_SAFE_INTEGER + 2), fc.constant([]), fc.constant({}));
  const w = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>) => fc.oneof({ arbitrary: good, weight: 10 }, { arbitrary: bad, weight: 1 });
  const uint = w(fc.oneof(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.constant(Number.MAX_SAFE_INTEGER)), anyValue);
  const kind = fc.constantFrom('ping', 'pong', 'credit', 'ready');
  const ping = fc.record({ v: w(fc.constant(1), anyValue), t: w(fc.constant('ping'), fc.oneof(kind, anyValue)), from: w(fc.constant('watchdog'), fc.oneof(fc.constantFrom('main', 'secondary-1'), anyValue)), seq: uint, extra: anyValue }, { requiredKeys: ['v', 't', 'from', 'seq'] });
  const pong = fc.record(
    {
      v: w(fc.constant(1), anyValue),
      t: w(fc.constant('pong'), fc.oneof(kind, anyValue)),
      from: w(fc.constantFrom('main', 'watchdog', 'secondary-1', `secondary-${MAX_SECONDARIES}`), fc.oneof(fc.constantFrom('secondary-0', 'secondary-01', `secondary-${MAX_SECONDARIES + 1}`, 'Main'), anyValue)),
      seq: uint,
      pid: uint,
      gen: w(fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constant(0xffffffff)), fc.oneof(fc.constant(2 ** 32), anyValue)),
      extra: anyValue,
    },
    { requiredKeys: ['v', 't', 'from', 'seq', 'pid', 'gen'] },
  );
  const valid = { ping: 0, pong: 0 };
  fc.assert(
    fc.property(fc.oneof({ arbitrary: ping, weight: 4 }, { arbitrary: pong, weight: 4 }, anyValue), (m) => {
      const json = JSON.parse(JSON.stringify(m) ?? 'null') as unknown;
      t.equal(isPing(json), Ping.safeParse(json).success, `ping ${JSON.stringify(json)}`);
      t.equal(isPong(json), Pong.safeParse(json).success, `pong ${JSON.stringify(json)}`);
      if (isPing(json)) valid.ping++;
      if (isPong(json)) valid.pong++;
    }),
    { numRuns: 3000 },
  );
  t.ok(valid.ping > 100 && valid.pong > 100, `the hand checks took ${valid.ping} pings and ${valid.pong} pongs whole`);
  for (const m of SAMPLES.filter((x) => x.t === 'ping')) t.ok(isPing(m), 'the sample ping takes the hand check');
  for (const m of SAMPLES.filter((x) => x.t === 'pong')) t.ok(isPong(m), 'the sample pong takes the hand check');
});
