/**
 * Daemon names (as on the scoreboard: main, watchdog, secondary-N) and the systemd units that
 * run them (units/): dispatchd-main.service, dispatchd-watchdog.service,
 * dispatchd-secondary@N.service.
 */

/** The service unit of a daemon: main → dispatchd-main.service, secondary-2 → dispatchd-secondary@2.service. */
export function unitOf(name: string): string {
  return name.startsWith('secondary-') ? `dispatchd-secondary@${name.slice('secondary-'.length)}.service` : `dispatchd-${name}.service`;
}

/**
 * The daemon the watchdog supervises in a unit: dispatchd-main.service → main (instance 0),
 * dispatchd-secondary@2.service → secondary-2; undefined for any other unit (the watchdog's
 * own included).
 */
export function daemonOfUnit(unit: string): { name: string; instance: number } | undefined {
  if (unit === 'dispatchd-main.service') return { name: 'main', instance: 0 };
  const m = /^dispatchd-secondary@([1-9][0-9]{0,2})\.service$/.exec(unit);
  return m ? { name: `secondary-${m[1]}`, instance: Number(m[1]) } : undefined;
}
