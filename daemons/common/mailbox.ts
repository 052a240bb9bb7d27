/**
 * Mailbox FIFOs: each daemon reads exactly one FIFO (its mailbox); any daemon may write to
 * any other's. See docs/PROTOCOL.md §2 and docs/ARCHITECTURE.md.
 *
 * - Reading never touches libuv's threadpool and never waits for end-of-file: the fd (from
 *   systemd's ListenFIFO=, or opened O_RDWR|O_NONBLOCK by {@link openMailboxFd}) is driven
 *   by a net.Socket, and messages are framed by newlines.
 * - Writing is one synchronous, non-blocking write(2) per message of at most PIPE_BUF bytes
 *   (atomic: never interleaved with other writers). A full pipe (EAGAIN) is backpressure:
 *   the writer retries with a growing delay until its deadline, then fails with
 *   MAILBOX_FULL. net.Socket is deliberately not used for writing: it merges queued writes
 *   into one larger write(2), which can exceed PIPE_BUF and interleave.
 */
import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { DispatchError, errnoCode, reason } from './errors.js';
import { encodeMessage, MailboxDecoder, type MailboxDecoded } from './mailbox-codec.js';
import type { MailboxMessage } from './messages.js';

const { O_RDWR, O_WRONLY, O_NONBLOCK } = fs.constants;

/**
 * Opens (creating it if needed, mode 0600) a FIFO for reading without blocking and without
 * ever seeing EOF: O_RDWR keeps a writer open on it. For tests and for running outside
 * systemd; under systemd the fd comes from ListenFIFO=.
 *
 * @throws DispatchError MAILBOX_OPEN_FAILED (mkfifo or open failed; the message says why).
 */
export function openMailboxFd(path: string, mkfifo: (p: string) => void = mkfifoCommand): number {
  try {
    if (!fs.existsSync(path)) mkfifo(path);
    const st = fs.statSync(path);
    if (!st.isFIFO()) throw new Error('exists and is not a FIFO; remove it');
    return fs.openSync(path, O_RDWR | O_NONBLOCK);
  } catch (cause) {
    throw new DispatchError('MAILBOX_OPEN_FAILED', `failed to open mailbox '${path}': ${reason(cause)}`, { cause });
  }
}

/** mkfifo(1) with mode 0600 (Node has no mkfifo(3)). */
export function mkfifoCommand(path: string): void {
  execFileSync('mkfifo', ['-m', '600', path], { stdio: ['ignore', 'ignore', 'pipe'] });
}

export interface MailboxReaderEvents {
  message: [MailboxMessage];
  invalid: [DispatchError, string];
  error: [DispatchError];
}

/**
 * Reads framed messages from a mailbox fd. Emits `message` for each valid message and
 * `invalid` (error, preview) for each damaged line; never ends on EOF.
 */
export class MailboxReader extends EventEmitter<MailboxReaderEvents> {
  private readonly socket: net.Socket;
  private readonly decoder = new MailboxDecoder();

  /** @param fd a FIFO fd open for reading (O_RDWR or held open by systemd). */
  constructor(fd: number, readonly label: string) {
    super();
    this.socket = new net.Socket({ fd, readable: true, writable: false });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => {
      this.emit('error', new DispatchError('MAILBOX_OPEN_FAILED', `failed to read mailbox '${label}': ${reason(err)}`, { cause: err }));
    });
  }

  private onData(chunk: Buffer): void {
    for (const d of this.decoder.push(chunk) as MailboxDecoded[]) {
      if (d.kind === 'message') this.emit('message', d.message);
      else this.emit('invalid', d.error, d.preview);
    }
  }

  /** Stops reading and closes the fd (systemd keeps its own copy of an activated FIFO). */
  close(): void {
    this.socket.destroy();
  }
}

export interface MailboxWriterOptions {
  /** How long one message may wait for room in a full pipe, in ms (default 1000). */
  backpressureTimeoutMs?: number;
}

/**
 * Writes messages to one peer's mailbox FIFO, in order. Opens lazily and reopens after an
 * error, so a peer that appears later, or restarts, is reached.
 */
export class MailboxWriter {
  private fd: number | undefined;
  private queue: Array<{ line: Buffer; deadline: number; resolve: () => void; reject: (e: DispatchError) => void }> = [];
  private timer: NodeJS.Timeout | undefined;
  private retryDelayMs = 1;
  private closed = false;
  private readonly backpressureTimeoutMs: number;

  constructor(readonly path: string, options: MailboxWriterOptions = {}) {
    this.backpressureTimeoutMs = options.backpressureTimeoutMs ?? 1000;
  }

  /**
   * Sends one message. Resolves once it is in the pipe.
   *
   * @throws DispatchError MESSAGE_TOO_LARGE (over PIPE_BUF), MAILBOX_NO_READER (nobody has
   *   the FIFO open: its socket unit is stopped), MAILBOX_OPEN_FAILED (missing, permission),
   *   MAILBOX_FULL (still full after the backpressure timeout), MAILBOX_WRITE_FAILED.
   */
  send(msg: MailboxMessage): Promise<void> {
    let line: Buffer;
    try {
      line = encodeMessage(msg);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ line, deadline: Date.now() + this.backpressureTimeoutMs, resolve, reject });
      if (this.queue.length === 1 && !this.timer) this.flush();
    });
  }

  /** Messages waiting for room in the pipe. */
  get queued(): number {
    return this.queue.length;
  }

  private flush(): void {
    this.timer = undefined;
    while (this.queue.length > 0) {
      const item = this.queue[0]!;
      const outcome = this.tryWrite(item.line);
      if (outcome === 'again') {
        if (Date.now() >= item.deadline) {
          this.queue.shift();
          item.reject(new DispatchError('MAILBOX_FULL', `failed to write to mailbox '${this.path}': the pipe stayed full for ${this.backpressureTimeoutMs} ms; its reader is stuck or gone`, { fields: { mailbox: this.path } }));
          continue;
        }
        this.timer = setTimeout(() => this.flush(), this.retryDelayMs);
        this.retryDelayMs = Math.min(this.retryDelayMs * 2, 50);
        return;
      }
      this.retryDelayMs = 1;
      this.queue.shift();
      if (outcome === 'ok') item.resolve();
      else item.reject(outcome);
    }
  }

  private tryWrite(line: Buffer): 'ok' | 'again' | DispatchError {
    if (this.closed) return new DispatchError('MAILBOX_WRITE_FAILED', `failed to write to mailbox '${this.path}': writer is closed`);
    if (this.fd === undefined) {
      try {
        this.fd = fs.openSync(this.path, O_WRONLY | O_NONBLOCK);
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENXIO') {
          return new DispatchError('MAILBOX_NO_READER', `failed to open mailbox '${this.path}': no reader (is its socket unit running?)`, { cause: err, fields: { mailbox: this.path } });
        }
        return new DispatchError('MAILBOX_OPEN_FAILED', `failed to open mailbox '${this.path}': ${reason(err)}`, { cause: err, fields: { mailbox: this.path } });
      }
    }
    try {
      const n = fs.writeSync(this.fd, line);
      if (n !== line.length) {
        // Cannot happen for writes of at most PIPE_BUF bytes to a pipe; guard anyway.
        return new DispatchError('MAILBOX_WRITE_FAILED', `failed to write to mailbox '${this.path}': short write of ${n} of ${line.length} bytes`);
      }
      return 'ok';
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return 'again';
      // EPIPE (reader gone) or worse: drop the fd, the next message reopens.
      this.closeFd();
      if (code === 'EPIPE') {
        return new DispatchError('MAILBOX_NO_READER', `failed to write to mailbox '${this.path}': its reader closed it`, { cause: err, fields: { mailbox: this.path } });
      }
      return new DispatchError('MAILBOX_WRITE_FAILED', `failed to write to mailbox '${this.path}': ${reason(err)}`, { cause: err, fields: { mailbox: this.path } });
    }
  }

  private closeFd(): void {
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // Already closed or invalid: nothing left to release.
      }
      this.fd = undefined;
    }
  }

  /** Fails what is still queued and releases the fd. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const item of this.queue.splice(0)) {
      item.reject(new DispatchError('MAILBOX_WRITE_FAILED', `failed to write to mailbox '${this.path}': writer closed before the pipe had room`));
    }
    this.closeFd();
  }
}
