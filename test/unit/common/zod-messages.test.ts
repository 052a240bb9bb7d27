/** zod's range errors worded as dispatchd's messages, in the configuration, the types files and the protocol. */
import t from 'tap';
import { parseConfig } from '../../../daemons/common/config.js';
import { describeIssue, parseRunRequest } from '../../../daemons/common/protocol.js';
import { rangeMessage } from '../../../daemons/common/zod-messages.js';

t.test('each kind of range, inclusive or not', async (t) => {
  t.equal(rangeMessage({ code: 'too_small', origin: 'number', minimum: 1, inclusive: true }), 'must be at least 1');
  t.equal(rangeMessage({ code: 'too_small', origin: 'number', minimum: 0, inclusive: false }), 'must be more than 0');
  t.equal(rangeMessage({ code: 'too_big', origin: 'number', maximum: 10, inclusive: true }), 'must be at most 10');
  t.equal(rangeMessage({ code: 'too_big', origin: 'number', maximum: 10, inclusive: false }), 'must be less than 10');
  t.equal(rangeMessage({ code: 'too_small', origin: 'string', minimum: 1, inclusive: true }), 'must have at least 1 character');
  t.equal(rangeMessage({ code: 'too_big', origin: 'string', maximum: 64, inclusive: true }), 'must have at most 64 characters');
  t.equal(rangeMessage({ code: 'too_big', origin: 'array', maximum: 50, inclusive: true }), 'must have at most 50 items');
  t.equal(rangeMessage({ code: 'invalid_type' }), undefined, "another issue keeps zod's message");
});

t.test('a configuration value out of range says the bound as the other messages do', async (t) => {
  t.throws(() => parseConfig('[secondary]\nmax_leases = 0\n', 'test.conf'), { code: 'CONFIG_INVALID', message: /key 'secondary\.max_leases'.*must be at least 1/ });
  t.throws(() => parseConfig('[secondary]\nmax_leases = 0\n', 'test.conf'), { message: /^(?!.*Too small)/ }, "not zod's own wording");
});

t.test('a run frame with deadline_ms 0 is refused with the bound, as a client reads it', async (t) => {
  const r = parseRunRequest({ op: 'run', lease: 'ab'.repeat(41), generation: 1, type: 'echo', deadline_ms: 0 });
  t.notOk(r.success);
  if (!r.success) t.equal(describeIssue(r.error), "'deadline_ms': must be more than 0");
});
