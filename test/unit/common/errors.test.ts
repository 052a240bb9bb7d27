import t from 'tap';
import { DispatchError, ERROR_CODES, errnoCode, isErrorCode, reason } from '../../../daemons/common/errors.js';

t.test('error codes are unique, stable-looking names', async (t) => {
  t.equal(new Set(ERROR_CODES).size, ERROR_CODES.length, 'no duplicate code');
  for (const c of ERROR_CODES) t.match(c, /^[A-Z][A-Z0-9_]*$/, c);
});

t.test('isErrorCode', async (t) => {
  for (const c of ERROR_CODES) t.ok(isErrorCode(c), c);
  for (const x of ['', 'busy', 'ENOENT', 'BUSY ', 42, null, undefined, {}]) t.notOk(isErrorCode(x), JSON.stringify(x));
});

t.test('DispatchError carries code, message, cause and options', async (t) => {
  const cause = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
  const e = new DispatchError('CONFIG_UNREADABLE', "failed to read configuration '/x': nope", { cause, fields: { config: '/x' } });
  t.ok(e instanceof Error);
  t.ok(e instanceof DispatchError);
  t.equal(e.name, 'DispatchError');
  t.equal(e.code, 'CONFIG_UNREADABLE');
  t.equal(e.message, "failed to read configuration '/x': nope");
  t.equal(e.cause, cause);
  t.same(e.fields, { config: '/x' });
  t.equal(e.retryable, false, 'not retryable unless said');
  t.equal(e.retryAfterMs, undefined);
  t.match(e.stack, /DispatchError/);

  const busy = new DispatchError('BUSY', 'every secondary is busy', { retryAfterMs: 250, retryable: true });
  t.equal(busy.retryAfterMs, 250);
  t.equal(busy.retryable, true);
  t.same(busy.fields, {});
  t.notOk('cause' in busy, 'no cause property when there is none');
});

t.test('errnoCode and reason', async (t) => {
  t.equal(errnoCode(Object.assign(new Error('x'), { code: 'EAGAIN' })), 'EAGAIN');
  t.equal(errnoCode({ code: 'EPIPE' }), 'EPIPE');
  t.equal(errnoCode({ code: 5 }), undefined);
  t.equal(errnoCode(new Error('x')), undefined);
  t.equal(errnoCode(null), undefined);
  t.equal(errnoCode('ENOENT'), undefined);
  t.equal(reason(new Error('it broke')), 'it broke');
  t.equal(reason(new DispatchError('BUSY', 'busy')), 'busy');
  t.equal(reason('text'), 'text');
  t.equal(reason(42), '42');
  t.equal(reason(undefined), 'undefined');
});
