/**
 * Tools that run inside a system test's sandbox next to the installed suite: the load
 * generator (test/chaos/lib/load.ts, compiled and copied in) and small client scripts that
 * import the installed client library.
 */
import { SandboxTarget } from '../../chaos/lib/sandbox-target.js';
import type { LoadReport } from '../../chaos/lib/load.js';
import type { Sandbox } from './sandbox.js';

export { SandboxTarget };

/** The installed client library, as a script inside imports it. */
export const CLIENT_INSIDE = '/usr/lib/dispatchd/build/daemons/client/client.js';

/** Copies the compiled test tools in (once per sandbox) and returns a handle for them. */
export async function tools(sb: Sandbox): Promise<SandboxTarget> {
  const target = new SandboxTarget(sb.name);
  await target.installTools();
  return target;
}

export interface RunningLoad {
  /** Resolves with the report once the load is over. */
  done: Promise<LoadReport>;
  stop: () => void;
}

/**
 * Starts the load generator (test/chaos/lib/load.ts) inside; resolves once its clients run
 * or, with `readyAfter`, once that many requests have succeeded (within 30 s, else throws).
 * `pauseMs`: each client's pause between two requests.
 */
export async function startLoadInside(
  target: SandboxTarget,
  o: { clients: number; durationMs?: number; requests?: number; timeoutMs?: number; types?: string; seed?: number; pauseMs?: number; readyAfter?: number },
): Promise<RunningLoad> {
  const args = ['--clients', String(o.clients), '--seed', String(o.seed ?? 1)];
  if (o.durationMs !== undefined) args.push('--duration-ms', String(o.durationMs));
  if (o.requests !== undefined) args.push('--requests', String(o.requests));
  if (o.timeoutMs !== undefined) args.push('--timeout-ms', String(o.timeoutMs));
  if (o.types !== undefined) args.push('--types', o.types);
  if (o.pauseMs !== undefined) args.push('--pause-ms', String(o.pauseMs));
  if (o.readyAfter !== undefined) args.push('--ready-after', String(o.readyAfter));
  const tool = target.tool<LoadReport & { event: string }>('chaos/lib/load.js', args, 'report');
  await tool.started;
  const load: RunningLoad = { done: tool.result.then(({ event: _e, ...r }) => r as LoadReport), stop: tool.stop };
  if (o.readyAfter !== undefined) {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), 30_000)));
    const r = await Promise.race([tool.ready.then(() => 'ready' as const), late]);
    clearTimeout(timer);
    if (r === 'late') {
      load.stop();
      throw new Error(`the load inside did not get ${o.readyAfter} requests served within 30 s: ${describeLoad(await load.done)}`);
    }
  }
  return load;
}

/** Stops a load and returns its report. */
export async function stopLoadInside(load: RunningLoad): Promise<LoadReport> {
  load.stop();
  return load.done;
}

/** One line for a test message: what the clients saw. */
export function describeLoad(r: LoadReport): string {
  const failures = Object.entries(r.failures).map(([c, n]) => `${c} ${n}`).join(', ') || 'none';
  const retries = Object.entries(r.retries).map(([c, n]) => `${c} ${n}`).join(', ') || 'none';
  return `${r.sent} sent, ${r.succeeded} succeeded, ${r.failed} failed (${failures}); retries: ${retries}; longest outage ${r.longestOutageMs} ms, longest request ${r.longestRequestMs} ms${r.examples.length ? `; e.g. ${r.examples.slice(0, 2).join(' | ')}` : ''}`;
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
