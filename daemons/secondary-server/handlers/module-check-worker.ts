/**
 * Checks, in a throw-away worker thread, that a module handler can be loaded: it imports
 * and its default export is a function. Used by `dispatchctl check-config` (and so by each
 * unit's ExecReload=) so that a module that is missing, throws on import or exports no
 * function is refused before a secondary ever runs it. Posts `{ ok: true }` or
 * `{ ok: false, error }`.
 */
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * The line of a syntax error in `file`, from `node --check` (a caught SyntaxError of import()
 * carries no position: Node.js prints it only for an uncaught one); undefined when the check
 * finds none in that file (the error is in a module it imports) or cannot run.
 */
function syntaxErrorLine(file: string): number | undefined {
  const r = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10_000 });
  // Its first line on stderr is `FILE:LINE` (a `file://` URL for some loaders).
  const at = /^(?:file:\/\/)?(.*):(\d+)$/m.exec(r.stderr ?? '');
  return at && at.index === 0 && at[1] === file ? Number(at[2]) : undefined;
}

const { module } = workerData as { module: string };
try {
  const mod = (await import(pathToFileURL(module).href)) as { default?: unknown };
  if (typeof mod.default !== 'function') parentPort!.postMessage({ ok: false, error: `its default export is ${mod.default === undefined ? 'missing' : `a ${typeof mod.default}`}, not a function (export default async (data, ctx) => result)` });
  else parentPort!.postMessage({ ok: true });
} catch (err) {
  const line = err instanceof SyntaxError ? syntaxErrorLine(module) : undefined;
  parentPort!.postMessage({ ok: false, error: `importing it failed: ${err instanceof Error ? err.message : String(err)}${line === undefined ? '' : ` (line ${line} of the module)`}` });
}
