/** The one constraint between the watchdog's probe period and its unit's WatchdogSec=. */
import type { Config } from '../common/config.js';
import { DispatchError } from '../common/errors.js';

/**
 * The watchdog sends WATCHDOG=1 only from its probe loop, so a probe period longer than half
 * of the unit's WatchdogSec= (WATCHDOG_USEC, sd_watchdog_enabled(3)) would have systemd kill
 * it between two rounds, again and again.
 *
 * @param watchdogMs the systemd watchdog period in ms (0: not enabled, nothing to check)
 * @throws DispatchError CONFIG_INVALID naming the key, the value and the bound.
 */
export function checkProbeInterval(config: Config, watchdogMs: number): void {
  const probe = config.watchdog.probe_interval_ms;
  if (watchdogMs > 0 && probe > watchdogMs / 2) {
    throw new DispatchError(
      'CONFIG_INVALID',
      `watchdog.probe_interval_ms = ${probe} is longer than half of the unit's WatchdogSec= (${watchdogMs} ms), so systemd would kill the watchdog between two probe rounds; set it to at most ${Math.floor(watchdogMs / 2)} in /etc/dispatchd/dispatchd.conf`,
    );
  }
}
