/** The one wait-for-a-condition of the test harnesses. */
import { setTimeout as sleep } from 'node:timers/promises';

export interface UntilOptions {
  /** The least pause between two checks, in ms (default 20). A check that took longer than this is followed by a pause as long as it took, so a slow check (a command in a sandbox) is not run back to back. */
  everyMs?: number;
}

/**
 * Runs `check` until it returns something other than undefined, null or false, and resolves
 * with that. An error thrown by `check` counts as "not yet" (the state being waited for may
 * not be there to read yet) and is reported if the time runs out.
 * @param what what is awaited, for the error message ("secondary-1 to restart").
 * @throws Error `timed out after <timeoutMs> ms waiting for <what>`, with the last error seen.
 */
export async function until<T>(what: string, timeoutMs: number, check: () => T | Promise<T>, o: UntilOptions = {}): Promise<Exclude<T, undefined | null | false>> {
  const everyMs = o.everyMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const started = Date.now();
    try {
      const v = await check();
      if (v !== undefined && v !== null && v !== false) return v as Exclude<T, undefined | null | false>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `; last error: ${last instanceof Error ? last.message : String(last)}` : ''}`);
    }
    await sleep(Math.max(everyMs, Date.now() - started));
  }
}
