/**
 * Choosing a secondary for a new lease, from a scoreboard snapshot. Pure: no I/O.
 *
 * A secondary is alive when its slot says ready, busy or full, its heartbeat is fresh and its
 * process exists (a /proc look-up, so a killed secondary is skipped at once rather than
 * after its heartbeat goes stale). It is a candidate when it also has room
 * (active < capacity). Candidates are ordered least-loaded
 * first (active / capacity); ties rotate so that equal secondaries share the work.
 */
import type { SlotData } from '../common/scoreboard-layout.js';

export interface Candidate {
  instance: number;
  generation: number;
  /** Its process, as its slot says. */
  pid: number;
  load: number;
}

export interface PickResult {
  candidates: Candidate[];
  /** Secondaries that are alive (fresh heartbeat, process exists, not stopping) whatever their load. */
  alive: number;
  /** Alive secondaries with no room left (active ≥ capacity). */
  full: number;
}

export interface PickOptions {
  now: number;
  /** A heartbeat older than this (ms) means the secondary is not running. */
  staleMs: number;
  /** Rotates the order among equally loaded secondaries. */
  rotation: number;
  /** Tells whether a process exists (default: always). */
  processExists?: (pid: number) => boolean;
}

/** Whether a slot is a live secondary: ready, busy or full, heartbeat fresh, process there. */
export function isLiveSecondary(s: SlotData, o: Pick<PickOptions, 'now' | 'staleMs' | 'processExists'>): boolean {
  return (
    s.kind === 'secondary' &&
    o.now - s.heartbeatMs <= o.staleMs &&
    (s.state === 'ready' || s.state === 'busy' || s.state === 'full') &&
    (!o.processExists || o.processExists(s.pid))
  );
}

export function pickSecondaries(slots: readonly SlotData[], o: PickOptions): PickResult {
  const candidates: Candidate[] = [];
  let alive = 0;
  let full = 0;
  for (const s of slots) {
    if (!isLiveSecondary(s, o)) continue;
    alive++;
    if (s.state === 'full' || s.active >= s.capacity || s.capacity === 0) {
      full++;
      continue;
    }
    candidates.push({ instance: s.instance, generation: s.generation, pid: s.pid, load: s.active / s.capacity });
  }
  candidates.sort((a, b) => a.load - b.load || a.instance - b.instance);
  // Rotate each run of equally loaded candidates by `rotation` positions, so that over
  // successive picks each of them comes first in turn, whatever their instance numbers.
  for (let start = 0; start < candidates.length; ) {
    let end = start + 1;
    while (end < candidates.length && candidates[end]!.load === candidates[start]!.load) end++;
    const run = candidates.slice(start, end);
    const k = o.rotation % run.length;
    candidates.splice(start, run.length, ...run.slice(k), ...run.slice(0, k));
    start = end;
  }
  return { candidates, alive, full };
}
