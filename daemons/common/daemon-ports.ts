/**
 * The collaborators of a DaemonCore (daemon-core.ts) as interfaces, so a unit test builds a
 * daemon with fakes, and {@link openDaemonPorts}, which opens the real ones: the daemon's
 * scoreboard slot (SlotWriter), its mailbox FIFO (MailboxReader) and writers to its peers'
 * mailbox FIFOs (MailboxWriter), at the paths of common/topology.ts.
 */
import type { Config } from './config.js';
import type { DispatchError } from './errors.js';
import { MailboxReader, MailboxWriter } from './mailbox.js';
import type { MailboxMessage } from './messages.js';
import type { SlotData } from './scoreboard-layout.js';
import { SlotWriter } from './slot-writer.js';
import { instanceOf, mailboxPath, type DaemonId } from './topology.js';

/** The per-process values of a slot a daemon projects from its state (the rest is fixed at claim). */
export type SlotState = Partial<Pick<SlotData, 'state' | 'active' | 'capacity' | 'queued' | 'requests' | 'failures' | 'latencySumUs' | 'latencyMaxUs' | 'running' | 'incidents' | 'heartbeatMs'>>;

/** A daemon's scoreboard slot (SlotWriter through daemon-ports.ts). */
export interface SlotPort {
  /** How many times this daemon's slot was claimed since the scoreboard was created, this start included. */
  readonly starts: number;
  /** Writes the values under the slot's seqlock. @throws DispatchError SCOREBOARD_IO. */
  publish(values: SlotState): void;
  close(): void;
}

/** A daemon's own mailbox, open for reading (MailboxReader). */
export interface InboxPort {
  readonly label: string;
  on(event: 'message', fn: (m: MailboxMessage) => void): unknown;
  on(event: 'invalid', fn: (err: DispatchError, preview: string) => void): unknown;
  on(event: 'error', fn: (err: DispatchError) => void): unknown;
  close(): void;
}

/** A peer's mailbox, open for writing (MailboxWriter). */
export interface OutboxPort {
  /** @throws DispatchError MAILBOX_* (rejects), see MailboxWriter.send. */
  send(m: MailboxMessage): Promise<void>;
  close(): void;
}

/** The part of the Notifier (sd_notify) the core uses. */
export interface NotifierPort {
  ready(status: string): void;
  status(status: string): void;
  stopping(status: string): void;
  /**
   * Calls `tick` every `everyMs` (or sooner for WatchdogSec=) and sends WATCHDOG=1 after it;
   * `everyMs()` is read before each wait.
   */
  startTicking(tick: (now: number) => void, everyMs: () => number): void;
}

export interface DaemonPorts {
  slot: SlotPort;
  inbox: InboxPort;
  outbox: (peer: DaemonId) => OutboxPort;
}

export interface OpenPortsOptions {
  /** This daemon's mailbox FIFO, open for reading (from ListenFIFO=, or openMailboxFd). */
  mailboxFd: number;
  pid: number;
  generation: number;
  /** The slot's `capacity` (a secondary's max_leases; 0 for the others). */
  capacity?: number;
  /** How long a message to a peer may wait for room in a full pipe (ms, default 1000). */
  backpressureTimeoutMs?: number;
}

/** Wraps a claimed SlotWriter as a {@link SlotPort}. */
export function slotPort(writer: SlotWriter): SlotPort {
  return {
    starts: writer.data.starts,
    publish: (values) => writer.update(values),
    close: () => writer.close(),
  };
}

/**
 * Claims the daemon's scoreboard slot and reads its mailbox FIFO.
 * @throws DispatchError SCOREBOARD_MISSING, SCOREBOARD_OPEN_FAILED, SCOREBOARD_BAD_LAYOUT.
 */
export function openDaemonPorts(config: Config, id: DaemonId, o: OpenPortsOptions): DaemonPorts {
  const dir = config.paths.runtime_dir;
  const writer = new SlotWriter(config.paths.scoreboard, id.kind, instanceOf(id), { pid: o.pid, generation: o.generation, capacity: o.capacity });
  return {
    slot: slotPort(writer),
    inbox: new MailboxReader(o.mailboxFd, mailboxPath(dir, id)),
    outbox: (peer) => new MailboxWriter(mailboxPath(dir, peer), { backpressureTimeoutMs: o.backpressureTimeoutMs }),
  };
}
