/**
 * Deprecated: daemon names and their units now come from topology.ts. These two functions
 * remain only for callers not yet moved (removed once every caller moved).
 */
import { daemonOfUnit as topologyDaemonOfUnit, formatDaemonId, instanceOf, parseDaemonId, serviceUnit } from './topology.js';

/**
 * The service unit of a daemon: main → dispatchd-main.service, secondary-2 → dispatchd-secondary@2.service.
 * A name that is no daemon of the suite gives `dispatchd-NAME.service`, as before.
 * @deprecated use topology.ts; removed once every caller moved
 */
export function unitOf(name: string): string {
  const id = parseDaemonId(name);
  return id ? serviceUnit(id) : `dispatchd-${name}.service`;
}

/**
 * The daemon the watchdog supervises in a unit: dispatchd-main.service → main (instance 0),
 * dispatchd-secondary@2.service → secondary-2; undefined for any other unit (the watchdog's
 * own included).
 * @deprecated use topology.ts; removed once every caller moved
 */
export function daemonOfUnit(unit: string): { name: string; instance: number } | undefined {
  const id = topologyDaemonOfUnit(unit);
  return id && id.kind !== 'watchdog' ? { name: formatDaemonId(id), instance: instanceOf(id) } : undefined;
}
