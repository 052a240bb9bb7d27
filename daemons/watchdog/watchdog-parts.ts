/**
 * The watchdog's real parts: its scoreboard slot, its mailbox (the socket-activated FIFO fd),
 * writers for the daemons' mailbox FIFOs and the system clock. Unit tests pass fakes instead.
 */
import type { Config } from '../common/config.js';
import { MailboxReader, MailboxWriter } from '../common/mailbox.js';
import { SlotWriter } from '../common/scoreboard.js';
import { mailboxPath, WATCHDOG } from '../common/topology.js';
import type { Clock, WatchdogOptions } from './watchdog.js';

/** Date.now and Node's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout | undefined),
};

/**
 * Claims the watchdog's scoreboard slot (published at once) and reads its mailbox fd.
 *
 * @param o.mailboxFd the FIFO fd of dispatchd-watchdog.socket, owned and closed by the watchdog.
 * @throws DispatchError SCOREBOARD_MISSING, SCOREBOARD_OPEN_FAILED, SCOREBOARD_BAD_LAYOUT, SCOREBOARD_IO.
 */
export function watchdogParts(o: { config: Config; mailboxFd: number; generation: number; pid: number }): Pick<WatchdogOptions, 'slot' | 'inbox' | 'writer' | 'clock'> {
  const slot = new SlotWriter(o.config.paths.scoreboard, 'watchdog', 0, { pid: o.pid, generation: o.generation });
  slot.publish();
  return {
    slot,
    inbox: new MailboxReader(o.mailboxFd, mailboxPath(o.config.paths.runtime_dir, WATCHDOG)),
    writer: (path, backpressureTimeoutMs) => new MailboxWriter(path, { backpressureTimeoutMs }),
    clock: systemClock,
  };
}
