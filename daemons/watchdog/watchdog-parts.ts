/**
 * What a Watchdog is built from besides its options: the daemon core's ports (its scoreboard
 * slot, its mailbox, where the pongs arrive, and writers to the daemons' mailbox FIFOs) and
 * a clock. {@link openWatchdogParts} opens the real ones; unit tests pass fakes instead.
 */
import { systemClock, type Clock } from '../common/clock.js';
import type { Config } from '../common/config.js';
import { openDaemonPorts, type DaemonPorts } from '../common/daemon-ports.js';
import { WATCHDOG } from '../common/topology.js';

export interface WatchdogParts {
  ports: DaemonPorts;
  /** The D-Bus calls' time limits (follow-call.ts) and the probe rounds' `now`. */
  clock: Clock;
}

/**
 * Claims the watchdog's scoreboard slot and reads its mailbox fd; a ping waits at most one
 * probe period for room in a full mailbox pipe.
 *
 * @param o.mailboxFd the FIFO fd of dispatchd-watchdog.socket, owned and closed by the watchdog.
 * @throws DispatchError SCOREBOARD_MISSING, SCOREBOARD_OPEN_FAILED, SCOREBOARD_BAD_LAYOUT.
 */
export function openWatchdogParts(config: Config, o: { mailboxFd: number; generation: number; pid: number }): WatchdogParts {
  const ports = openDaemonPorts(config, WATCHDOG, { ...o, backpressureTimeoutMs: config.watchdog.probe_interval_ms });
  return { ports, clock: systemClock };
}
