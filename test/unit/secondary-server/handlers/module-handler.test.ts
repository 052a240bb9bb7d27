import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { BUILD_DAEMONS, until } from '../../../helpers/index.js';
import { checkModule, ModuleHandler } from '../../../../daemons/secondary-server/handlers/module-handler.js';
import { capturingLogger, runContext, typeOf } from './lib.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}.mjs`, import.meta.url));

function handler(name: string, extra: { max_heap_mb?: number; max_result_bytes?: number; concurrency?: number } = {}) {
  const { logger, lines } = capturingLogger();
  const h = new ModuleHandler(typeOf(name, { handler: 'module', module: fixture(name), ...extra }), logger);
  return { h, lines };
}

async function run(h: ModuleHandler, data: string, deadlineMs = 10_000): Promise<{ value: unknown; ms: number }> {
  const ctx = runContext(deadlineMs);
  const started = Date.now();
  try {
    return { value: (await h.run(Buffer.from(data), ctx)).toString(), ms: Date.now() - started };
  } catch (err) {
    return { value: err, ms: Date.now() - started };
  } finally {
    ctx.dispose();
  }
}

t.test('the default export runs in a worker thread: data in, bytes out; ctx.log reaches the journal with the type, lease and secondary', async (t) => {
  const { h, lines } = handler('echo');
  t.teardown(() => h.close());
  t.equal((await run(h, 'hello')).value, 'hello');
  // The log line crosses threads asynchronously: wait for it rather than for a fixed time.
  const line = await until('the ctx.log line', 5000, () => lines.find((l) => /\[echo\] echoing/.test(l)));
  t.ok(/type=echo/.test(line) && /lease=(ab){16}/.test(line) && /secondary=secondary-1/.test(line) && /bytes=5/.test(line), line);
});

t.test('ctx gives the type, the lease, the secondary, the deadline and an AbortSignal; DATA is a Buffer', async (t) => {
  const { h } = handler('context');
  t.teardown(() => h.close());
  t.same(JSON.parse(String((await run(h, 'x', 4321)).value)), { type: 'context', lease: 'ab'.repeat(16), secondary: 'secondary-1', deadlineMs: 4321, signal: true, isBuffer: true });
});

t.test('a throw is HANDLER_FAILED with its message', async (t) => {
  const { h } = handler('throws');
  t.teardown(() => h.close());
  t.match((await run(h, '')).value, { code: 'HANDLER_FAILED', message: /the 'throws' handler failed: the database is down/ });
});

t.test('a throw of null is HANDLER_FAILED too, not an empty result', async (t) => {
  const { h } = handler('throws-null');
  t.teardown(() => h.close());
  t.match((await run(h, '')).value, { code: 'HANDLER_FAILED', message: /the 'throws-null' handler failed: the handler threw null/ });
});

t.test('a handler that returns something else than bytes or a string is HANDLER_FAILED', async (t) => {
  const { h } = handler('number');
  t.teardown(() => h.close());
  t.match((await run(h, '')).value, { code: 'HANDLER_FAILED', message: /must return a Buffer, a Uint8Array or a string/ });
});

t.test('a busy loop is terminated at the deadline without blocking the event loop, and the pool serves again', async (t) => {
  const { h } = handler('busy', { concurrency: 1 });
  t.teardown(() => h.close());
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 10);
  const o = await run(h, '', 300);
  clearInterval(ticker);
  t.equal(o.value, 'deadline', 'rejected with the deadline reason');
  t.ok(o.ms < 2000, `at the deadline (${o.ms} ms)`);
  t.ok(ticks >= 10, `the secondary's event loop kept turning meanwhile (${ticks} ticks of 10 ms)`);
  const { h: echo } = handler('echo', { concurrency: 1 });
  t.teardown(() => echo.close());
  t.equal((await run(echo, 'after')).value, 'after');
});

t.test('a handler that gives up on ctx.signal at the deadline ends the run at the deadline', async (t) => {
  const { h } = handler('cooperative');
  t.teardown(() => h.close());
  const o = await run(h, '', 200);
  t.equal(o.value, 'deadline');
});

t.test('a thread past max_heap_mb is terminated: HANDLER_FAILED saying so; the next run gets a fresh thread', async (t) => {
  const { h } = handler('hog', { max_heap_mb: 16, concurrency: 1 });
  t.teardown(() => h.close());
  const o = await run(h, '', 20_000);
  t.match(o.value, { code: 'HANDLER_FAILED', message: /ran out of memory: its worker thread passed max_heap_mb \(16 MiB\) and was terminated/ });
});

t.test('process.exit() in a handler ends its thread only: HANDLER_FAILED', async (t) => {
  const { h } = handler('exits');
  t.teardown(() => h.close());
  t.match((await run(h, '')).value, { code: 'HANDLER_FAILED' });
});

t.test('a result over max_result_bytes is RESULT_TOO_LARGE', async (t) => {
  const { h } = handler('big', { max_result_bytes: 1000 });
  t.teardown(() => h.close());
  t.equal((await run(h, '1000')).value, '\0'.repeat(1000));
  t.match((await run(h, '1001')).value, { code: 'RESULT_TOO_LARGE', message: /1001 bytes, more than max_result_bytes \(1000 bytes\)/ });
});

t.test('checkModule refuses what cannot serve: missing, failing import, no function; accepts a good one', async (t) => {
  await t.resolves(checkModule(fixture('echo'), 'echo'));
  await t.rejects(checkModule('/nonexistent/x.mjs', 'x'), { code: 'CONFIG_INVALID', message: /type 'x': module '\/nonexistent\/x.mjs' cannot serve requests: importing it failed/ });
  await t.rejects(checkModule(fixture('import-fails'), 'y'), { code: 'CONFIG_INVALID', message: /importing it failed: cannot initialise/ });
  await t.rejects(checkModule(fixture('not-a-function'), 'z'), { code: 'CONFIG_INVALID', message: /default export is a string, not a function/ });
  // A caught SyntaxError carries no position: the line comes from `node --check`.
  await t.rejects(checkModule(fixture('syntax-error'), 's'), { code: 'CONFIG_INVALID', message: /importing it failed: Unexpected end of input \(line 5 of the module\)$/ });
});

t.test('piscina is loaded with the first module handler: a secondary serving only built-in types never loads it', async (t) => {
  // A fresh process with the compiled handlers, as a secondary loads them: which of piscina's files are loaded when.
  const script = `
    import { createRequire } from 'node:module';
    import { PassThrough } from 'node:stream';
    const B = process.env.BUILD_DAEMONS;
    const { createHandler } = await import(B + '/secondary-server/handlers/handler.js');
    const { resolveType } = await import(B + '/common/request-type.js');
    const { createLogger } = await import(B + '/common/logger.js');
    const cache = createRequire(B + '/').cache;
    const piscinaLoaded = () => Object.keys(cache).some((f) => f.includes('/node_modules/piscina/'));
    const logger = createLogger({ identifier: 'test', journal: false, stream: new PassThrough() });
    const defaults = { deadline_ms: 30000, max_payload_bytes: 1 << 20, max_result_bytes: 1 << 20, concurrency: 1 };
    const ctx = { signal: new AbortController().signal, deadlineMs: 30000, lease: 'ab'.repeat(16), secondary: 'secondary-1' };
    const echo = createHandler(resolveType('echo', { handler: 'builtin', builtin: 'echo' }, defaults, { file: 't.toml' }), logger);
    const out = { builtin: (await echo.run(Buffer.from('a'), ctx)).toString(), afterBuiltin: piscinaLoaded() };
    const mod = createHandler(resolveType('m', { handler: 'module', module: process.env.FIXTURE }, defaults, { file: 't.toml' }), logger);
    out.module = (await mod.run(Buffer.from('b'), ctx)).toString();
    out.afterModule = piscinaLoaded();
    await mod.close();
    console.log(JSON.stringify(out));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, BUILD_DAEMONS, FIXTURE: fixture('echo') }, cwd: path.dirname(BUILD_DAEMONS) });
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout), { builtin: 'a', afterBuiltin: false, module: 'b', afterModule: true }, 'not loaded by the handler modules or a built-in handler; loaded by the module handler, which serves');
});
