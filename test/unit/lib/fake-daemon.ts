/**
 * Fakes of a daemon core's collaborators (daemons/common/daemon-ports.ts): a slot that keeps
 * what was published, an inbox the test writes to, outboxes that record what was sent (or
 * fail), a notifier whose tick the test drives, and a logger that keeps its lines. No files,
 * FIFOs or sockets.
 */
import { EventEmitter } from 'node:events';
import { defaultConfig, type Config } from '../../../daemons/common/config.js';
import type { DaemonPorts, NotifierPort, SlotState } from '../../../daemons/common/daemon-ports.js';
import type { DispatchError } from '../../../daemons/common/errors.js';
import type { Logger } from '../../../daemons/common/logger.js';
import type { MailboxMessage } from '../../../daemons/common/messages.js';
import { formatDaemonId, type DaemonId } from '../../../daemons/common/topology.js';

export interface LogLine {
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps its lines; `onLine` is called after each (to await a line). */
export function fakeLogger(onLine?: (line: LogLine) => void): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const push = (line: LogLine) => {
    lines.push(line);
    onLine?.(line);
  };
  const log = (level: string) => (message: string, fields: Record<string, unknown> = {}) => push({ level, message, fields });
  const logger = {
    log: (level: string, message: string, fields: Record<string, unknown> = {}) => push({ level, message, fields }),
    debug: log('debug'),
    info: log('info'),
    notice: log('notice'),
    warning: log('warning'),
    error: log('error'),
  } as unknown as Logger;
  return { logger, lines };
}

export class FakeInbox extends EventEmitter {
  readonly label = '/run/dispatchd/fake.fifo';
  closed = false;
  close(): void {
    this.closed = true;
  }
  deliver(m: MailboxMessage): void {
    this.emit('message', m);
  }
}

export class FakeNotifier implements NotifierPort {
  readonly sent: string[] = [];
  tick: ((now: number) => void) | undefined;
  /** The tick's period as the core gave it (read before each wait). */
  everyMs: (() => number) | undefined;
  ready(status: string): void {
    this.sent.push(`READY=1 ${status}`);
  }
  status(status: string): void {
    this.sent.push(`STATUS=${status}`);
  }
  stopping(status: string): void {
    this.tick = undefined;
    this.sent.push(`STOPPING=1 ${status}`);
  }
  startTicking(tick: (now: number) => void, everyMs: () => number): void {
    this.tick = tick;
    this.everyMs = everyMs;
  }
}

export interface FakeParts {
  ports: DaemonPorts;
  /** Every publish, in order. */
  published: SlotState[];
  /** The slot as readers see it: every publish merged. */
  slot: () => SlotState;
  slotClosed: () => boolean;
  inbox: FakeInbox;
  /** Messages sent, with their peer's name. */
  sent: Array<{ to: string; m: MailboxMessage }>;
  /** Makes sends to a peer fail with this error (or succeed again with undefined). */
  failSends: (peer: string, err: DispatchError | undefined) => void;
  outboxesClosed: () => string[];
  notifier: FakeNotifier;
  logger: Logger;
  lines: LogLine[];
  config: Config;
}

export function fakeParts(starts = 1): FakeParts {
  const published: SlotState[] = [];
  let closed = false;
  const inbox = new FakeInbox();
  const sent: Array<{ to: string; m: MailboxMessage }> = [];
  const failing = new Map<string, DispatchError>();
  const outboxesClosed: string[] = [];
  const { logger, lines } = fakeLogger();
  return {
    ports: {
      slot: {
        starts,
        publish: (v) => void published.push({ ...v }),
        close: () => void (closed = true),
      },
      inbox,
      outbox: (peer: DaemonId) => {
        const to = formatDaemonId(peer);
        return {
          send: async (m: MailboxMessage) => {
            const err = failing.get(to);
            if (err) throw err;
            sent.push({ to, m });
          },
          close: () => void outboxesClosed.push(to),
        };
      },
    },
    published,
    slot: () => Object.assign({}, ...published) as SlotState,
    slotClosed: () => closed,
    inbox,
    sent,
    failSends: (peer, err) => (err ? failing.set(peer, err) : failing.delete(peer)),
    outboxesClosed: () => outboxesClosed,
    notifier: new FakeNotifier(),
    logger,
    lines,
    config: defaultConfig(),
  };
}

/** Lets queued promise callbacks and immediates run. */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
