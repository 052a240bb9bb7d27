import t from 'tap';
import { DispatchError } from '../../../daemons/common/errors.js';
import { describeIssue, ErrorReply, errorReply, LeaseGranted, LeaseRequest, REQUEST_TYPES, RunRequest, RunResult } from '../../../daemons/common/protocol.js';

const LEASE = '9f0c'.repeat(8);

t.test('the examples of docs/PROTOCOL.md §1.2 and §1.3 are valid', async (t) => {
  t.ok(LeaseRequest.safeParse({ op: 'lease', type: 'echo' }).success);
  t.ok(LeaseGranted.safeParse({ ok: true, op: 'lease', secondary: 2, socket: '/run/dispatchd/secondary-2.sock', lease: LEASE, generation: 3471550430, expires_in_ms: 3000 }).success);
  t.ok(RunRequest.safeParse({ op: 'run', lease: LEASE, generation: 3471550430, type: 'echo', deadline_ms: 1000 }).success);
  t.ok(RunResult.safeParse({ ok: true, op: 'result', type: 'echo', elapsed_ms: 0.213 }).success);
  t.ok(ErrorReply.safeParse({ ok: false, code: 'BUSY', message: 'every secondary is busy; retry after 250 ms', retry_after_ms: 250, retryable: true }).success);
  t.same([...REQUEST_TYPES], ['echo', 'sha256', 'sleep']);
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

t.test('parseRunRequest and isRunResult answer exactly as the zod schemas', async (t) => {
  const fc = (await import('fast-check')).default;
  const { parseRunRequest, isRunResult } = await import('../../../daemons/common/protocol.js');
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
  const resultHeader = fc.record(
    { ok: fc.oneof(fc.constant(true), anyValue), op: fc.oneof(fc.constant('result'), anyValue), type: fc.oneof(fc.constant('echo'), anyValue), elapsed_ms: fc.oneof(fc.double({ min: 0, max: 1e6 }), anyValue, fc.constant(Infinity)), extra: anyValue },
    { requiredKeys: [] },
  );
  fc.assert(fc.property(resultHeader, (h) => isRunResult(h as Record<string, unknown>) === RunResult.safeParse(h).success), { numRuns: 2000 });
});
