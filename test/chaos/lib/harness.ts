/**
 * Small pieces the process harnesses share (ProcessSuite here, Suite in
 * test/component/lib/suite.ts) and the fuzz verdict: polling for a condition, what counts
 * as a daemon being up, reading a daemon's scoreboard slot.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ScoreboardReader, type SlotData } from '../../../daemons/common/scoreboard.js';
import { STALE_HEARTBEAT_MS } from '../../../daemons/common/timing.js';

/** A daemon's slot on the scoreboard at `scoreboard`, read now (undefined when it has none). */
export function readSlot(scoreboard: string, name: string): SlotData | undefined {
  const r = new ScoreboardReader(scoreboard);
  try {
    return r.read().slots.find((s) => s.name === name);
  } finally {
    r.close();
  }
}

/** Polls `cond` every `everyMs` until it is true (resolves true) or `timeoutMs` have passed (resolves false). */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await sleep(everyMs);
  }
}

/** Polls `cond` every 20 ms until it is true, or throws after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  if (!(await until(cond, timeoutMs))) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A daemon is up: its state is ready, busy or full, and its heartbeat is fresh (younger than STALE_HEARTBEAT_MS). */
export function isUp(state: string, heartbeatAgeMs: number): boolean {
  return ['ready', 'busy', 'full'].includes(state) && heartbeatAgeMs < STALE_HEARTBEAT_MS;
}
