/**
 * The TypeScript worker library: a persistent worker of `mode = "persistent"` types
 * (docs/WORKERS.md) in a few lines.
 *
 *   import { createWorker } from '/usr/lib/dispatchd/build/daemons/worker/worker.js';
 *   const worker = createWorker({ concurrency: 4 });
 *   worker.handle('upper', async (data, ctx) => data.toString().toUpperCase());
 *   await worker.run();
 *
 * `run()` takes the listening socket systemd passes (LISTEN_FDS, fd name "worker", from
 * dispatchd-worker@.socket; sd_listen_fds(3)) and serves every secondary that connects:
 * hello first (the registered types and `concurrency`), then each `run` frame calls the
 * type's function and answers `result` (its bytes) or `error` (its message). A `cancel` (the
 * deadline passed) aborts `ctx.signal`; the answer is sent when the function settles, and a
 * function that ignores the signal longer than the type's cancel_grace_ms gets its unit
 * restarted. At SIGTERM (`systemctl stop`, a restart) it stops accepting, lets the requests
 * running finish, closes each connection once idle, and so exits. Standard output is never used by the protocol: print freely, it goes to the
 * journal. Protocol: common/worker-protocol.ts.
 */
import net from 'node:net';
import { DispatchError, reason } from '../common/errors.js';
import { FrameConnection } from '../common/frame-connection.js';
import { parseListenFds, requireFd } from '../common/listen-fds.js';
import { TYPE_NAME } from '../common/request-type.js';
import { WORKER_FD_NAME } from '../common/topology.js';
import { MAX_WORKER_CONCURRENCY, parseSecondaryMessage, WORKER_PROTOCOL_VERSION } from '../common/worker-protocol.js';

/** What a type's function gets besides its DATA. */
export interface WorkerContext {
  /** The request's type. */
  type: string;
  /** The run's deadline, ms from when the secondary sent it. */
  deadlineMs: number;
  /** Aborted when the secondary cancels the run (its deadline passed) or the connection ends. */
  signal: AbortSignal;
}

/** A type's function: DATA in, the result out (bytes, or a string sent as UTF-8); a throw is HANDLER_FAILED with its message. */
export type WorkerFunction = (data: Buffer, ctx: WorkerContext) => Promise<Buffer | Uint8Array | string> | Buffer | Uint8Array | string;

export interface WorkerOptions {
  /** Requests this worker runs at once on each connection (each secondary connects once); 1 … 1024, default 1. */
  concurrency?: number;
  /** The largest DATA accepted, bytes (default 64 MiB). */
  maxPayloadBytes?: number;
}

/** A worker: register a function per type with {@link handle}, then {@link run}. */
export class Worker {
  private readonly fns = new Map<string, WorkerFunction>();
  readonly concurrency: number;
  private readonly maxPayloadBytes: number;
  /** Each open connection's closer: ends it once no request runs on it (see {@link stop}). */
  private readonly open = new Set<() => void>();
  private stopping = false;

  constructor(o: WorkerOptions = {}) {
    this.concurrency = o.concurrency ?? 1;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1 || this.concurrency > MAX_WORKER_CONCURRENCY) {
      throw new RangeError(`concurrency must be a whole number 1 … ${MAX_WORKER_CONCURRENCY}, got ${this.concurrency}`);
    }
    this.maxPayloadBytes = o.maxPayloadBytes ?? 64 * 1024 * 1024;
  }

  /** Registers the function of a type. @throws RangeError for a name that is no type name. */
  handle(type: string, fn: WorkerFunction): this {
    if (!TYPE_NAME.test(type)) throw new RangeError(`'${type}' is not a type name ([a-z][a-z0-9-]{0,62})`);
    this.fns.set(type, fn);
    return this;
  }

  /**
   * Serves the socket systemd passed (fd name "worker") until the process is stopped.
   * @throws DispatchError LISTEN_FDS_MISSING when not started by dispatchd-worker@.socket.
   */
  async run(): Promise<void> {
    if (this.fns.size === 0) throw new RangeError('register at least one type with handle() before run()');
    const fd = requireFd(parseListenFds(process.env, process.pid), WORKER_FD_NAME, 'dispatchd-worker@TYPE-K.socket');
    const server = net.createServer((s) => this.serve(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd }, () => resolve());
    });
    await new Promise<void>((resolve) => {
      const stop = () => {
        server.close();
        this.stop();
        resolve();
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
  }

  /**
   * Stops serving (run() calls it at SIGTERM or SIGINT): each connection is closed as soon as
   * no request runs on it, so that the process exits once its running requests are answered
   * (systemd sends SIGKILL after the unit's TimeoutStopSec=, 5 s).
   */
  stop(): void {
    this.stopping = true;
    for (const close of [...this.open]) close();
  }

  /** Serves one connection of a secondary (run() calls it for each; tests hand it a socket). */
  serve(socket: net.Socket): void {
    const conn = new FrameConnection(socket, { maxBodyBytes: this.maxPayloadBytes, idleTimeoutMs: 0 });
    const running = new Map<number, AbortController>();
    conn.send({ op: 'hello', protocol: WORKER_PROTOCOL_VERSION, types: [...this.fns.keys()], concurrency: this.concurrency });
    const broke = (why: string) => {
      process.stderr.write(`dispatchd worker: closed a secondary's connection: ${why}\n`);
      socket.destroy();
    };
    /** Ends the connection once nothing runs on it (after stop()). */
    const closeIfIdle = () => {
      if (running.size === 0) socket.end(() => socket.destroy());
    };
    this.open.add(closeIfIdle);
    conn.on('protocol-error', (err) => broke(err.message));
    conn.on('error', () => undefined);
    conn.on('close', () => {
      this.open.delete(closeIfIdle);
      for (const ac of running.values()) ac.abort('connection closed');
      running.clear();
    });
    conn.on('frame', (f) => {
      let m;
      try {
        m = parseSecondaryMessage(f.header);
      } catch (err) {
        broke(reason(err));
        return;
      }
      if (m.op === 'cancel') {
        running.get(m.id)?.abort('cancelled');
        return;
      }
      if (running.has(m.id) || running.size >= this.concurrency) {
        broke(running.has(m.id) ? `request id ${m.id} is already running` : `more than concurrency (${this.concurrency}) requests at once`);
        return;
      }
      const id = m.id;
      const ac = new AbortController();
      running.set(id, ac);
      const fn = this.fns.get(m.type);
      const answer = (header: Record<string, unknown>, body?: Buffer) => {
        if (running.get(id) !== ac) return;
        running.delete(id);
        conn.send(header, body);
        if (this.stopping) closeIfIdle();
      };
      let started: ReturnType<WorkerFunction> | Promise<never>;
      try {
        // Called at once, so that a cancel in the same read finds its listener registered.
        if (!fn) throw new DispatchError('UNKNOWN_TYPE', `this worker does not serve '${m.type}'`);
        started = fn(f.body, { type: m.type, deadlineMs: m.deadline_ms, signal: ac.signal });
      } catch (err) {
        started = Promise.reject(err);
      }
      Promise.resolve(started)
        .then((out) => {
          if (typeof out === 'string') return Buffer.from(out, 'utf8');
          if (out instanceof Uint8Array) return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
          throw new TypeError(`the '${m.type}' function must return a Buffer, a Uint8Array or a string`);
        })
        .then(
          (out) => answer({ op: 'result', id }, out),
          (err: unknown) => answer({ op: 'error', id, message: reason(err) }),
        );
    });
  }
}

/** A new worker (see {@link Worker}). */
export function createWorker(o: WorkerOptions = {}): Worker {
  return new Worker(o);
}
