/**
 * Checks, in a throw-away worker thread, that a module handler can be loaded: it imports
 * and its default export is a function. Used by `dispatchctl check-config` (and so by each
 * unit's ExecReload=) so that a module that is missing, throws on import or exports no
 * function is refused before a secondary ever runs it. Posts `{ ok: true }` or
 * `{ ok: false, error }`.
 */
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';

const { module } = workerData as { module: string };
try {
  const mod = (await import(pathToFileURL(module).href)) as { default?: unknown };
  if (typeof mod.default !== 'function') parentPort!.postMessage({ ok: false, error: `its default export is ${mod.default === undefined ? 'missing' : `a ${typeof mod.default}`}, not a function (export default async (data, ctx) => result)` });
  else parentPort!.postMessage({ ok: true });
} catch (err) {
  parentPort!.postMessage({ ok: false, error: `importing it failed: ${err instanceof Error ? err.message : String(err)}` });
}
