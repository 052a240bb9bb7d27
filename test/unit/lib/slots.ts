/** Scoreboard slots for the pure tests (picker, status). */
import type { SlotData } from '../../../daemons/common/scoreboard-layout.js';
import { daemonIdOf, formatDaemonId, instanceOf, secondary as secondaryId, type DaemonId } from '../../../daemons/common/topology.js';

export const NOW = 1_700_000_000_000;

/** A ready, idle slot of `id`, with its name, kind and instance from topology.ts. */
function slotOf(id: DaemonId, o: Partial<SlotData>): SlotData {
  const n = instanceOf(id);
  return {
    kind: id.kind,
    instance: n,
    pid: id.kind === 'main' ? 900 : id.kind === 'watchdog' ? 901 : 1000 + n,
    state: 'ready',
    generation: 100 + n,
    starts: 1,
    active: 0,
    capacity: id.kind === 'secondary' ? 4 : 0,
    queued: 0,
    requests: 0,
    failures: 0,
    startedMs: NOW - 60_000,
    heartbeatMs: NOW - 100,
    incidents: 0,
    name: formatDaemonId(id),
    latencySumUs: 0,
    latencyMaxUs: 0,
    running: 0,
    ...o,
  };
}

export function secondary(instance: number, o: Partial<SlotData> = {}): SlotData {
  return slotOf(secondaryId(instance), o);
}

export function daemon(kind: 'main' | 'watchdog', o: Partial<SlotData> = {}): SlotData {
  return slotOf(daemonIdOf(kind), o);
}
