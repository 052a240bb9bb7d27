import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import t from 'tap';
import { DispatchError, ERROR_CODES } from '../../../daemons/common/errors.js';
import { describeIssue, ErrorReply, errorReply, isRunResult, LeaseGranted, LeaseRequest, parseLeaseRequest, parseRunRequest, RunRequest, RunResult } from '../../../daemons/common/protocol.js';
import * as replies from '../../../daemons/common/protocol-replies.js';
import { MAX_SECONDARIES } from '../../../daemons/common/topology.js';

const LEASE = '9f0c'.repeat(8);

t.test('the examples of docs/PROTOCOL.md §1.2 and §1.3 are valid', async (t) => {
  t.ok(LeaseRequest.safeParse({ op: 'lease', type: 'echo' }).success);
  t.ok(LeaseGranted.safeParse({ ok: true, op: 'lease', secondary: 2, socket: '/run/dispatchd/secondary-2.sock', lease: LEASE, generation: 3471550430, expires_in_ms: 3000, type: 'echo', idempotent: true }).success);
  const granted = { ok: true, op: 'lease', secondary: 2, socket: '/run/dispatchd/secondary-2.sock', lease: LEASE, generation: 3471550430, expires_in_ms: 3000, type: 'echo', idempotent: true };
  t.notOk(LeaseGranted.safeParse({ ...granted, idempotent: undefined }).success, 'idempotent is required (a client decides how to retry by it)');
  t.notOk(LeaseGranted.safeParse({ ...granted, idempotent: 'yes' }).success, 'idempotent is a boolean');
  t.notOk(LeaseGranted.safeParse({ ...granted, type: undefined }).success, 'type is required');
  t.ok(LeaseGranted.safeParse({ ...granted, lease: 'ab'.repeat(41) }).success, 'a lease token is opaque hex of up to 256 digits');
  t.notOk(LeaseGranted.safeParse({ ...granted, lease: 'ab'.repeat(129) }).success);
  t.ok(RunRequest.safeParse({ op: 'run', lease: LEASE, generation: 3471550430, type: 'echo', deadline_ms: 1000 }).success);
  t.ok(RunResult.safeParse({ ok: true, op: 'result', type: 'echo', elapsed_ms: 0.213 }).success);
  t.ok(ErrorReply.safeParse({ ok: false, code: 'BUSY', message: 'every secondary is busy; retry after 250 ms', retry_after_ms: 250, retryable: true }).success);
});

t.test('invalid requests are refused', async (t) => {
  const cases: Array<[string, { safeParse(v: unknown): { success: boolean } }, unknown]> = [
    ['lease without type', LeaseRequest, { op: 'lease' }],
    ['lease with an empty type', LeaseRequest, { op: 'lease', type: '' }],
    ['lease with a 65-character type', LeaseRequest, { op: 'lease', type: 'x'.repeat(65) }],
    ['lease with another op', LeaseRequest, { op: 'run', type: 'echo' }],
    ['run with a bad lease', RunRequest, { op: 'run', lease: 'nope', generation: 1, type: 'echo' }],
    ['run without a generation', RunRequest, { op: 'run', lease: LEASE, type: 'echo' }],
    ['run with a negative generation', RunRequest, { op: 'run', lease: LEASE, generation: -1, type: 'echo' }],
    ['run with a 33-bit generation', RunRequest, { op: 'run', lease: LEASE, generation: 2 ** 32, type: 'echo' }],
    ['run with deadline 0', RunRequest, { op: 'run', lease: LEASE, generation: 1, type: 'echo', deadline_ms: 0 }],
    ['run with a deadline over an hour', RunRequest, { op: 'run', lease: LEASE, generation: 1, type: 'echo', deadline_ms: 3_600_001 }],
    ['error with an unknown code', ErrorReply, { ok: false, code: 'OOPS', message: 'x' }],
  ];
  for (const [what, schema, value] of cases) t.notOk(schema.safeParse(value).success, what);
});

t.test('errorReply: the error frame header for a DispatchError', async (t) => {
  t.same(errorReply(new DispatchError('LEASE_STALE', 'lease was issued by an earlier process')), { ok: false, code: 'LEASE_STALE', message: 'lease was issued by an earlier process' });
  const busy = errorReply(new DispatchError('BUSY', 'busy', { retryAfterMs: 250, retryable: true }));
  t.same(busy, { ok: false, code: 'BUSY', message: 'busy', retry_after_ms: 250, retryable: true });
  t.ok(ErrorReply.safeParse(busy).success, 'a valid ErrorReply');
  t.notOk('retryable' in errorReply(new DispatchError('INTERNAL', 'x')), 'retryable only when true');
});

t.test('describeIssue', async (t) => {
  const r = RunRequest.safeParse({ op: 'run', lease: 'nope', generation: 1, type: 'echo' });
  t.notOk(r.success);
  if (!r.success) t.match(describeIssue(r.error), /^'lease': /, 'names the field');
  const top = LeaseRequest.safeParse('a string');
  if (!top.success) t.notMatch(describeIssue(top.error), /^'/, 'no field for a top-level problem');
});

t.test('parseRunRequest, parseLeaseRequest and isRunResult answer exactly as the zod schemas', async (t) => {
  const anyValue = fc.oneof(fc.constant(undefined), fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.string({ maxLength: 70 }), fc.constant(2 ** 32), fc.constant(-1), fc.constant(3_600_001));
  const runHeader = fc.record(
    {
      op: fc.oneof(fc.constant('run'), anyValue),
      lease: fc.oneof(fc.constant(LEASE), fc.stringMatching(/^[0-9a-f]{31,33}$/), anyValue),
      generation: fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), anyValue),
      type: fc.oneof(fc.constantFrom('echo', 'sha256', ''), fc.string({ maxLength: 70 }), anyValue),
      deadline_ms: fc.oneof(fc.integer({ min: 1, max: 3_600_000 }), anyValue),
      id: fc.oneof(fc.string({ maxLength: 70 }), anyValue),
      extra: anyValue,
    },
    { requiredKeys: [] },
  );
  fc.assert(
    fc.property(runHeader, (h) => {
      const fast = parseRunRequest(h as Record<string, unknown>);
      const slow = RunRequest.safeParse(h);
      t.equal(fast.success, slow.success, JSON.stringify(h));
      if (fast.success && slow.success) t.same(fast.data, slow.data);
      if (!fast.success && !slow.success) t.equal(describeIssue(fast.error), describeIssue(slow.error));
    }),
    { numRuns: 2000 },
  );
  const leaseHeader = fc.record(
    {
      op: fc.oneof(fc.constant('lease'), anyValue),
      type: fc.oneof(fc.constantFrom('echo', 'sha256', ''), fc.string({ maxLength: 70 }), anyValue),
      wait_ms: fc.oneof(fc.integer({ min: 0, max: 3_600_000 }), anyValue, fc.constant(1.5)),
      id: fc.oneof(fc.string({ maxLength: 70 }), anyValue),
      extra: anyValue,
    },
    { requiredKeys: [] },
  );
  fc.assert(
    fc.property(leaseHeader, (h) => {
      const fast = parseLeaseRequest(h as Record<string, unknown>);
      const slow = LeaseRequest.safeParse(h);
      t.equal(fast.success, slow.success, JSON.stringify(h));
      if (fast.success && slow.success) t.same(fast.data, slow.data);
      if (!fast.success && !slow.success) t.equal(describeIssue(fast.error), describeIssue(slow.error));
    }),
    { numRuns: 2000 },
  );
  const resultHeader = fc.record(
    {
      ok: fc.oneof(fc.constant(true), anyValue),
      op: fc.oneof(fc.constant('result'), anyValue),
      type: fc.oneof(fc.constant('echo'), anyValue),
      elapsed_ms: fc.oneof(fc.double({ min: 0, max: 1e6 }), anyValue, fc.constant(Infinity)),
      secondary: fc.oneof(fc.integer({ min: 1, max: MAX_SECONDARIES }), anyValue),
      generation: fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), anyValue),
      extra: anyValue,
    },
    { requiredKeys: [] },
  );
  fc.assert(fc.property(resultHeader, (h) => isRunResult(h as Record<string, unknown>) === RunResult.safeParse(h).success), { numRuns: 2000 });
});

t.test("the client's zod-free reply checks (protocol-replies.ts) answer exactly as the zod schemas", async (t) => {
  const anyValue = fc.oneof(fc.constant(undefined), fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.string({ maxLength: 70 }), fc.constant(2 ** 32), fc.constant(2 ** 53), fc.constant(-1), fc.constant(0), fc.constant(1.5), fc.constant(Infinity), fc.constant(NaN));
  const granted = fc.record(
    {
      ok: fc.oneof(fc.constant(true), anyValue),
      op: fc.oneof(fc.constant('lease'), anyValue),
      secondary: fc.oneof(fc.integer({ min: 1, max: MAX_SECONDARIES }), anyValue),
      socket: fc.oneof(fc.constant('/run/dispatchd/secondary-1.sock'), fc.constant(''), fc.constant('x'.repeat(4097)), fc.string({ maxLength: 20 }), anyValue),
      lease: fc.oneof(fc.constant(LEASE), fc.stringMatching(/^[0-9a-f]{31,33}$/), fc.constant(LEASE.toUpperCase()), anyValue),
      generation: fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), anyValue),
      expires_in_ms: fc.oneof(fc.nat(), anyValue),
      type: fc.oneof(fc.constantFrom('echo', '', 'x'.repeat(64), 'x'.repeat(65)), anyValue),
      idempotent: fc.oneof(fc.boolean(), anyValue),
      extra: anyValue,
    },
    { requiredKeys: [] },
  );
  const error = fc.record(
    {
      ok: fc.oneof(fc.constant(false), anyValue),
      code: fc.oneof(fc.constantFrom(...ERROR_CODES), fc.constant('OOPS'), anyValue),
      message: fc.oneof(fc.string({ maxLength: 20 }), anyValue),
      retry_after_ms: fc.oneof(fc.nat(), anyValue),
      retryable: fc.oneof(fc.boolean(), anyValue),
      may_have_run: fc.oneof(fc.boolean(), anyValue),
      extra: anyValue,
    },
    { requiredKeys: [] },
  );
  const compare = (name: string, fast: replies.ReplyParse<unknown>, slow: { success: boolean; data?: unknown }, h: unknown) => {
    if (fast.success !== slow.success) throw new Error(`${name}: ${fast.success} by hand, ${slow.success} by zod, for ${JSON.stringify(h)}`);
    if (fast.success && slow.success) t.strictSame(fast.data, slow.data, `${name}: same data`);
  };
  fc.assert(fc.property(granted, (h) => compare('LeaseGranted', replies.LeaseGranted.safeParse(h as Record<string, unknown>), LeaseGranted.safeParse(h), h)), { numRuns: 3000 });
  fc.assert(fc.property(error, (h) => compare('ErrorReply', replies.ErrorReply.safeParse(h as Record<string, unknown>), ErrorReply.safeParse(h), h)), { numRuns: 3000 });
  t.equal(replies.isRunResult, isRunResult, 'protocol.ts re-exports the one isRunResult');
});

// ---- properties: the header schemas are the decoders of whatever a client sends ----------

const hex32 = fc.stringMatching(/^[0-9a-f]{32}$/);
const schemas = { LeaseRequest, LeaseGranted, RunRequest, RunResult, ErrorReply };

t.test('property: any JSON header is accepted or refused, never thrown on, and a refusal is described', async (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.jsonValue(), fc.object(), fc.record({ op: fc.constantFrom('lease', 'run', 'result'), type: fc.jsonValue(), lease: fc.jsonValue(), generation: fc.jsonValue() })), (value) => {
      for (const [name, schema] of Object.entries(schemas)) {
        const r = (schema as typeof LeaseRequest).safeParse(value);
        if (!r.success) {
          const d = describeIssue(r.error);
          if (typeof d !== 'string' || d.length === 0) throw new Error(`${name}: no description`);
        }
      }
    }),
    { numRuns: 1000 },
  );
  t.pass('1000 random headers');
});

t.test('property: valid requests are accepted as they are; one field made wrong refuses them', async (t) => {
  const lease = fc.record({ op: fc.constant('lease' as const), type: fc.string({ minLength: 1, maxLength: 64 }), wait_ms: fc.option(fc.integer({ min: 0, max: 3_600_000 }), { nil: undefined }) });
  const run = fc.record({
    op: fc.constant('run' as const),
    lease: hex32,
    generation: fc.integer({ min: 0, max: 0xffffffff }),
    type: fc.string({ minLength: 1, maxLength: 64 }),
    deadline_ms: fc.option(fc.integer({ min: 1, max: 3_600_000 }), { nil: undefined }),
  });
  const bad = fc.oneof(fc.constant(null), fc.constant(-1), fc.constant(1.5), fc.constant(2 ** 53), fc.constant(''), fc.constant('NOT-HEX'), fc.constant([]), fc.constant({}));
  fc.assert(
    fc.property(lease, run, bad, fc.nat(), (l, r, wrong, which) => {
      const clean = <T extends object>(o: T) => JSON.parse(JSON.stringify(o)) as T; // as it arrives: no undefined keys
      // The same members and values (a JSON object's members have no order, RFC 8259 §4).
      const pl = LeaseRequest.safeParse(clean(l));
      if (!pl.success || !isDeepStrictEqual(pl.data, clean(l))) throw new Error(`lease request refused or changed: ${JSON.stringify(l)}`);
      const pr = RunRequest.safeParse(clean(r));
      if (!pr.success || !isDeepStrictEqual(pr.data, clean(r))) throw new Error(`run request refused or changed: ${JSON.stringify(r)}`);
      // Break one required field with a value of the wrong kind or out of range.
      const keys = ['lease', 'generation'] as const;
      const key = keys[which % keys.length]!;
      if (key === 'generation' && typeof wrong === 'number' && Number.isInteger(wrong) && wrong >= 0 && wrong <= 0xffffffff) return;
      if (RunRequest.safeParse({ ...clean(r), [key]: wrong }).success) throw new Error(`accepted ${key}=${JSON.stringify(wrong)}`);
    }),
    { numRuns: 500 },
  );
  t.pass('500 random requests');
});

t.test('property: every error a server can send is a valid ErrorReply', async (t) => {
  fc.assert(
    fc.property(fc.constantFrom(...ERROR_CODES), fc.string(), fc.option(fc.nat(), { nil: undefined }), fc.boolean(), (code, message, retryAfterMs, retryable) => {
      const r = errorReply(new DispatchError(code, message, { retryAfterMs, retryable }));
      if (!ErrorReply.safeParse(JSON.parse(JSON.stringify(r))).success) throw new Error(`invalid reply for ${code}`);
    }),
    { numRuns: 300 },
  );
  t.pass();
});
