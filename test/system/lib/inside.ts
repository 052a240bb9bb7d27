/**
 * Tools that run inside a system test's sandbox next to the installed suite: the load
 * generator (test/chaos/lib/load.ts, compiled and copied in by Sandbox.installTools) and small
 * client scripts that import the installed client library.
 */
import { describeLoad, type LoadReport } from '../../chaos/lib/load.js';
import type { RunningLoad, Sandbox } from '../../helpers/index.js';

export { describeLoad, type RunningLoad };

/** The installed client library, as a script inside imports it. */
export const CLIENT_INSIDE = '/usr/lib/dispatchd/build/daemons/client/client.js';

/** Copies the compiled test tools in (once per sandbox) and returns the sandbox to run them in. */
export async function tools(sb: Sandbox): Promise<Sandbox> {
  await sb.installTools();
  return sb;
}

/** Starts the load generator (test/chaos/lib/load.ts) inside: Sandbox.startLoad. */
export function startLoadInside(sb: Sandbox, o: Parameters<Sandbox['startLoad']>[0]): Promise<RunningLoad> {
  return sb.startLoad(o);
}

/** Stops a load and returns its report. */
export async function stopLoadInside(load: RunningLoad): Promise<LoadReport> {
  load.stop();
  return load.done;
}

/**
 * Runs an ES module script inside with the installed client library imported as `lib`
 * (`const { DispatchClient } = lib`), and returns what it prints as JSON.
 */
export async function clientScript<T>(sb: Sandbox, body: string, timeoutMs = 60_000): Promise<T> {
  const script = `import * as lib from '${CLIENT_INSIDE}';\nimport { execSync } from 'node:child_process';\n${body}`;
  const r = await sb.exec(['node', '--input-type=module', '-e', script], { timeoutMs });
  if (r.code !== 0) throw new Error(`client script failed (exit ${r.code}): ${r.stderr.trim().slice(-2000)}`);
  return JSON.parse(r.stdout.toString()) as T;
}
