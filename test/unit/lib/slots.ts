/** Scoreboard slots for the pure tests (picker, status). */
import type { SlotData } from '../../../daemons/common/scoreboard.js';

export const NOW = 1_700_000_000_000;

export function secondary(instance: number, o: Partial<SlotData> = {}): SlotData {
  return {
    kind: 'secondary',
    instance,
    pid: 1000 + instance,
    state: 'ready',
    generation: 100 + instance,
    starts: 1,
    active: 0,
    capacity: 4,
    queued: 0,
    requests: 0,
    failures: 0,
    startedMs: NOW - 60_000,
    heartbeatMs: NOW - 100,
    incidents: 0,
    name: `secondary-${instance}`,
    latencySumUs: 0,
    latencyMaxUs: 0,
    running: 0,
    ...o,
  };
}

export function daemon(kind: 'main' | 'watchdog', o: Partial<SlotData> = {}): SlotData {
  return { ...secondary(0), kind, instance: 0, pid: kind === 'main' ? 900 : 901, capacity: 0, name: kind, ...o };
}
