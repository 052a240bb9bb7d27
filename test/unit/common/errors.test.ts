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

t.test('instanceof DispatchError holds across copies of the module (the dispatchctl bundle and the ES modules beside it)', async (t) => {
  // A second copy of errors.ts, as the bundle has: the same file under another URL is another module.
  const copy = (await import(`../../../daemons/common/errors.js?copy=${Date.now()}`)) as typeof import('../../../daemons/common/errors.js');
  t.not(copy.DispatchError, DispatchError, 'a distinct class');
  const theirs = new copy.DispatchError('CONFIG_UNREADABLE', 'x');
  t.ok(theirs instanceof DispatchError, "the other copy's error is a DispatchError here");
  t.ok(new DispatchError('BUSY', 'y') instanceof copy.DispatchError, 'and the other way round');
  t.notOk(new Error('z') instanceof DispatchError, 'a plain Error is not');
  t.notOk(Object.assign(new Error('w'), { code: 'BUSY' }) instanceof DispatchError, 'nor one that only has a code');
  t.notOk((null as unknown) instanceof DispatchError, 'nor null');
  t.strictSame(Object.keys(theirs).sort(), ['code', 'fields', 'mayHaveRun', 'name', 'retryAfterMs', 'retryable'], 'the mark is not an enumerable property (JSON, logs)');
});
