import t from 'tap';
import type { RequestType } from '../../../daemons/common/request-type.js';
import { TypeRegistry } from '../../../daemons/common/type-registry.js';
import type { Handler, RunContext } from '../../../daemons/secondary-server/handlers/handler.js';
import { TypeRunner } from '../../../daemons/secondary-server/type-runner.js';
import { capturingLogger, typeOf } from './handlers/lib.js';

/** A fake handler: run() does what `behave` says; close() is recorded. */
function fake(behave: (data: Buffer, ctx: RunContext) => Promise<Buffer>, waits = true) {
  const h = { waits, closed: 0, run: behave, close: async () => void h.closed++ };
  return h;
}

function runner(types: RequestType[], handlers: Record<string, Handler>) {
  const { logger, lines } = capturingLogger();
  const made: string[] = [];
  const r = new TypeRunner(new TypeRegistry(types), 'secondary-1', logger, (ty) => {
    made.push(ty.name);
    return handlers[ty.name]!;
  });
  return { r, lines, made };
}
const req = { lease: 'ab'.repeat(16), peer: 'client#1' };
const until = (abort: AbortSignal) => new Promise<Buffer>((_, reject) => abort.addEventListener('abort', () => reject(abort.reason)));

t.test('runs a served type; an unknown one is UNKNOWN_TYPE naming what is served', async (t) => {
  const { r } = runner([typeOf('up', { handler: 'exec', command: ['/bin/cat'] })], { up: fake(async (d) => Buffer.from(d.toString().toUpperCase())) });
  t.equal((await r.run('up', Buffer.from('abc'), req)).toString(), 'ABC');
  await t.rejects(r.run('down', Buffer.alloc(0), req), { code: 'UNKNOWN_TYPE', message: /secondary-1 does not serve request type 'down'; it serves: up/ });
});

t.test("DATA over the type's max_payload_bytes is refused before the handler runs", async (t) => {
  let ran = 0;
  const { r } = runner([typeOf('small', { handler: 'exec', command: ['/bin/cat'], max_payload_bytes: 4 })], { small: fake(async (d) => (ran++, d)) });
  await t.rejects(r.run('small', Buffer.from('12345'), req), { code: 'PAYLOAD_TOO_LARGE', message: /5 bytes, more than its type's max_payload_bytes \(4 bytes\)/ });
  t.equal(ran, 0);
});

t.test('the deadline is the request\'s, capped by the type\'s; passing it is DEADLINE_EXCEEDED, logged with type, lease and secondary', async (t) => {
  const seen: number[] = [];
  const { r, lines } = runner([typeOf('slow', { handler: 'exec', command: ['/bin/cat'], deadline_ms: 100 })], { slow: fake((_d, ctx) => (seen.push(ctx.deadlineMs), until(ctx.signal))) });
  await t.rejects(r.run('slow', Buffer.alloc(0), { ...req, deadlineMs: 50 }), { code: 'DEADLINE_EXCEEDED', message: /deadline of 50 ms/ });
  await t.rejects(r.run('slow', Buffer.alloc(0), { ...req, deadlineMs: 60_000 }), { code: 'DEADLINE_EXCEEDED', message: /deadline of 100 ms.*that is the type's deadline_ms: raise it in its types\.d file \(test\.toml\)/ });
  t.same(seen, [50, 100]);
  // A built-in type's file is the package's: the advice is a type of one's own in /etc.
  const builtin = { ...typeOf('nap', { handler: 'exec', command: ['/bin/cat'], deadline_ms: 100 }), source: { file: '/usr/share/dispatchd/types.d/00-builtin.toml' } } as RequestType;
  const pkg = runner([builtin], { nap: fake((_d, ctx) => until(ctx.signal)) });
  await t.rejects(pkg.r.run('nap', Buffer.alloc(0), req), { code: 'DEADLINE_EXCEEDED', message: /that is the deadline_ms of the package's built-in type 'nap' \(\/usr\/share\/dispatchd\/types\.d\/00-builtin\.toml, the package's file\): declare a type of your own with a longer deadline_ms in \/etc\/dispatchd\/types\.d/ });
  await new Promise((res) => setImmediate(res));
  t.ok(lines.some((l) => /warning: cut off a 'slow' request at its deadline of \d+ ms/.test(l) && /code=DEADLINE_EXCEEDED/.test(l) && /type=slow/.test(l) && /secondary=secondary-1/.test(l)), lines.join('\n'));
});

t.test('cutOff() ends every run in progress with a retryable SHUTTING_DOWN that may have run', async (t) => {
  const { r } = runner([typeOf('w', { handler: 'exec', command: ['/bin/cat'] })], { w: fake((_d, ctx) => until(ctx.signal)) });
  const p = r.run('w', Buffer.alloc(0), req);
  t.equal(r.running, 1);
  r.cutOff();
  await t.rejects(p, { code: 'SHUTTING_DOWN', retryable: true, mayHaveRun: true });
  t.equal(r.running, 0);
});

t.test('a handler error that is not a DispatchError is HANDLER_FAILED; counters per type go to the snapshot', async (t) => {
  const { r } = runner([typeOf('bad', { handler: 'exec', command: ['/bin/cat'] }), typeOf('good', { handler: 'exec', command: ['/bin/cat'], idempotent: true })], {
    bad: fake(async () => {
      throw new Error('boom');
    }),
    good: fake(async (d) => d),
  });
  await t.rejects(r.run('bad', Buffer.alloc(0), req), { code: 'HANDLER_FAILED', message: /boom/ });
  await r.run('good', Buffer.alloc(0), req);
  await r.run('good', Buffer.alloc(0), req);
  const snap = r.snapshot((ty) => (ty === 'good' ? 3 : 0))!;
  t.match(snap.find((s) => s.name === 'good'), { requests: 2, failures: 0, leases: 3, idempotent: true });
  t.match(snap.find((s) => s.name === 'bad'), { requests: 0, failures: 1, idempotent: false });
  t.equal(r.snapshot(() => 0), undefined, 'nothing changed since: no snapshot');
  t.ok(r.snapshot(() => 0, true), 'unless forced');
});

t.test('reload keeps unchanged handlers, replaces changed ones once idle, closes removed ones', async (t) => {
  const a = fake((_d, ctx) => until(ctx.signal));
  const b = fake(async (d) => d);
  const b2 = fake(async (d) => d);
  const c = fake(async (d) => d);
  const handlers: Record<string, Handler> = { a, b, c };
  const { r, made } = runner([typeOf('a', { handler: 'exec', command: ['/bin/cat'] }), typeOf('b', { handler: 'exec', command: ['/bin/cat'] })], handlers);
  const running = r.run('a', Buffer.alloc(0), req);
  handlers.a = fake(async (d) => d);
  handlers.b = b2;
  const diff = r.reload(new TypeRegistry([typeOf('a', { handler: 'exec', command: ['/bin/cat'], deadline_ms: 5 }), typeOf('c', { handler: 'exec', command: ['/bin/cat'] })]));
  t.same(diff, { added: ['c'], changed: ['a'], removed: ['b'] });
  t.equal(b.closed, 1, 'the removed, idle handler is closed at once');
  t.equal(a.closed, 0, 'the changed handler is still running a request: not closed yet');
  r.cutOff();
  await t.rejects(running);
  await new Promise((res) => setImmediate(res));
  t.equal(a.closed, 1, 'closed once its run ended');
  t.same(made, ['a', 'b', 'a', 'c']);
  t.same(r.names(), ['a', 'c']);
  const same = r.reload(new TypeRegistry([typeOf('a', { handler: 'exec', command: ['/bin/cat'], deadline_ms: 5 }), typeOf('c', { handler: 'exec', command: ['/bin/cat'] })]));
  t.same(same, { added: [], changed: [], removed: [] });
  t.same(made, ['a', 'b', 'a', 'c'], 'an unchanged type keeps its handler');
});
