/**
 * The watchdog's real parts: its scoreboard slot, its mailbox (the socket-activated FIFO fd),
 * writers for the daemons' mailbox FIFOs and the system clock. Unit tests pass fakes instead.
 */
import type { EventEmitter } from 'node:events';
import type { Config } from '../common/config.js';
import { MailboxReader, MailboxWriter, type MailboxReaderEvents } from '../common/mailbox.js';
import type { MailboxMessage } from '../common/messages.js';
import { SlotWriter, type SlotData } from '../common/scoreboard.js';
import { mailboxPath, WATCHDOG } from '../common/topology.js';

/** The watchdog's mailbox: where the pongs arrive. */
export type Inbox = EventEmitter<MailboxReaderEvents> & { readonly label: string; close(): void };
/** A daemon's mailbox FIFO, for writing. */
export interface PingWriter {
  send(msg: MailboxMessage): Promise<void>;
  close(): void;
}
/** Time and timers: the real ones in production, a fake clock in unit tests. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}
/** The watchdog's scoreboard slot. */
export interface WatchdogSlot {
  readonly data: Pick<SlotData, 'incidents' | 'requests'>;
  update(values: Partial<SlotData>): void;
  close(): void;
}

/** The parts a Watchdog is built from, besides its configuration, logger, notifier and unit manager. */
export interface WatchdogParts {
  slot: WatchdogSlot;
  inbox: Inbox;
  /** Opens a writer for a mailbox FIFO path; `backpressureMs` as MailboxWriterOptions. */
  writer(path: string, backpressureMs: number): PingWriter;
  clock: Clock;
}

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
export function watchdogParts(o: { config: Config; mailboxFd: number; generation: number; pid: number }): WatchdogParts {
  const slot = new SlotWriter(o.config.paths.scoreboard, 'watchdog', 0, { pid: o.pid, generation: o.generation });
  slot.publish();
  return {
    slot,
    inbox: new MailboxReader(o.mailboxFd, mailboxPath(o.config.paths.runtime_dir, WATCHDOG)),
    writer: (path, backpressureTimeoutMs) => new MailboxWriter(path, { backpressureTimeoutMs }),
    clock: systemClock,
  };
}
