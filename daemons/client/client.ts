/**
 * The dispatchd client library: `import { DispatchClient, request } from 'dispatchd/client'`.
 *
 * One request is: ask the main server for a lease (client → main.sock), follow the redirect
 * to the secondary it names, present the lease with the payload, read the result. A failure
 * that leaves the request un-run (a refused lease, BUSY, UNAVAILABLE, a connection that failed
 * before the run frame was sent) is retried on a fresh lease, so on another secondary when the
 * chosen one is gone, within a bounded number of attempts and a total time budget. Once the run
 * frame was sent the request may have run: a lost answer is retried only when the lease says
 * the type is idempotent (at least once); otherwise it is OUTCOME_UNKNOWN and never sent again
 * (at most once). docs/PROTOCOL.md §4 has the table.
 *
 * A client keeps its connections to main open between requests (several lease requests on one
 * connection, one after the other, as §1.2 allows): idle ones do not keep the process alive,
 * are dropped after {@link KEPT_MAIN_IDLE_MS}, and {@link DispatchClient.close} closes them.
 */
import fs from 'node:fs';
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { DispatchError, errnoCode, reason, type ErrorCode } from '../common/errors.js';
import { FrameConnection } from '../common/frame-connection.js';
import { MAX_BODY_BYTES_CEILING, type Frame, type FrameHeader } from '../common/frame.js';
import { ErrorReply, isRunResult, LeaseGranted } from '../common/protocol-replies.js';

export { DispatchError } from '../common/errors.js';
export type { ErrorCode } from '../common/errors.js';
export { EXIT, exitCodeFor } from '../common/exit-codes.js';

export const DEFAULT_SOCKET = '/run/dispatchd/main.sock';

export interface ClientOptions {
  /** The main server's socket (default /run/dispatchd/main.sock). */
  socket?: string;
  /** Total time budget for one request, retries included, in ms (default 60000). */
  timeoutMs?: number;
  /** Most attempts for one request (default 10). */
  attempts?: number;
  /** How long to wait for the main server's answer to a lease request, in ms (default 5000). */
  answerTimeoutMs?: number;
  /** Per-request deadline sent to the secondary, in ms (default: the server's). */
  deadlineMs?: number;
  /** Largest result accepted, in bytes (default 1 GiB). */
  maxResultBytes?: number;
  /** Called before each retry, with what failed and how long the client waits. */
  onRetry?: (info: { attempt: number; error: DispatchError; waitMs: number }) => void;
  /** Called with each lease granted, before it is presented (tracing; tests use it to inject faults). */
  onLease?: (grant: LeaseGranted) => void | Promise<void>;
}

/** A result with where it came from. */
export interface RequestInfo {
  result: Buffer;
  /** The secondary that ran the request, and its generation (the lease's). */
  secondary: number;
  generation: number;
  /** Attempts it took (1 when nothing was retried). */
  attempts: number;
}

/** Codes after which a fresh lease may be asked for. */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'CONNECT_FAILED',
  'CONNECTION_LOST',
  'TIMEOUT',
  'UNAVAILABLE',
  'BUSY',
  'SHUTTING_DOWN',
  'LEASE_UNKNOWN',
  'LEASE_EXPIRED',
  'LEASE_STALE',
  'IDLE_TIMEOUT',
]);

/** How much sooner than the client's own timeout main is asked to answer a queued lease request, ms. */
const LEASE_ANSWER_MARGIN_MS = 250;

/**
 * How long an idle connection to main is kept, in ms: well under main's default
 * client_idle_timeout_ms (5000), so a kept connection is rarely one main is cutting off.
 */
export const KEPT_MAIN_IDLE_MS = 2000;
/** Most idle connections to main one client keeps (a client shared by concurrent requests opens more, and closes the surplus). */
export const KEPT_MAIN_MAX = 16;

/** An idle connection to main, kept for the next lease request. */
interface KeptConnection {
  conn: FrameConnection;
  timer: NodeJS.Timeout;
  /** Drops it when it closes, fails or gets an unasked frame (main's IDLE_TIMEOUT) while idle. */
  drop: () => void;
}

/** Converts an error frame into a DispatchError. */
function fromReply(header: FrameHeader, peer: string): DispatchError {
  const e = ErrorReply.safeParse(header);
  if (!e.success) return new DispatchError('PROTOCOL_ERROR', `failed to understand the answer of ${peer}: not a dispatchd reply`);
  return new DispatchError(e.data.code, e.data.message, { retryAfterMs: e.data.retry_after_ms, retryable: e.data.retryable ?? false, mayHaveRun: e.data.may_have_run ?? false, fields: { peer } });
}

/**
 * Opens a framed connection to a unix stream socket.
 * @throws DispatchError CONNECT_FAILED (missing socket, refused, permission).
 */
export function connectFramed(path: string, maxBodyBytes: number, timeoutMs: number): Promise<FrameConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new DispatchError('CONNECT_FAILED', `failed to connect to '${path}': no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(new FrameConnection(socket, { maxBodyBytes, idleTimeoutMs: 0 }));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      const code = errnoCode(err);
      const notSocket = code === 'ECONNREFUSED' || code === 'ENOTSOCK' ? isNotSocket(path) : false;
      const hint =
        code === 'ENOENT' ? "no such socket: dispatchd is not running; see 'systemctl status dispatchd.target' (start it with systemctl start dispatchd.target)"
        : code === 'EACCES' ? 'permission denied: run as root or as a member of the dispatchd-clients group'
        : notSocket ? 'it is not a socket; pass the main server\'s socket with --socket (default /run/dispatchd/main.sock)'
        : code === 'ECONNREFUSED' ? "connection refused: nobody listens there; see 'systemctl status dispatchd.target'"
        : reason(err);
      reject(new DispatchError('CONNECT_FAILED', `failed to connect to '${path}': ${hint}`, { cause: err, retryable: true }));
    });
  });
}

/** True when `path` exists and is not a socket (a refused connect then means a wrong path). */
function isNotSocket(path: string): boolean {
  try {
    return !fs.statSync(path).isSocket();
  } catch {
    return false;
  }
}

/**
 * Sends one frame and waits for one frame back.
 * @throws DispatchError TIMEOUT, CONNECTION_LOST, or the framing errors.
 */
export function exchange(conn: FrameConnection, header: FrameHeader, body: Buffer | undefined, timeoutMs: number, peer: string): Promise<Frame> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      conn.off('frame', onFrame);
      conn.off('close', onClose);
      conn.off('protocol-error', onBad);
      conn.off('error', onError);
    };
    const onFrame = (f: Frame) => {
      cleanup();
      resolve(f);
    };
    const onClose = () => {
      cleanup();
      reject(new DispatchError('CONNECTION_LOST', `failed to get an answer from ${peer}: the connection closed`, { retryable: true }));
    };
    const onError = (err: Error) => {
      cleanup();
      conn.destroy();
      reject(new DispatchError('CONNECTION_LOST', `failed to get an answer from ${peer}: ${reason(err)}`, { cause: err, retryable: true }));
    };
    const onBad = (err: DispatchError) => {
      cleanup();
      conn.destroy();
      reject(new DispatchError('PROTOCOL_ERROR', `failed to read the answer of ${peer}: ${err.message}`, { cause: err }));
    };
    const timer = setTimeout(() => {
      cleanup();
      conn.destroy();
      reject(new DispatchError('TIMEOUT', `failed to get an answer from ${peer} within ${timeoutMs} ms`, { retryable: true }));
    }, timeoutMs);
    conn.on('frame', onFrame);
    conn.on('close', onClose);
    conn.on('protocol-error', onBad);
    conn.on('error', onError);
    conn.send(header, body);
  });
}

/**
 * A client of one dispatchd suite. Safe to share between concurrent requests; between
 * requests it holds only idle connections to main (see the module comment).
 */
export class DispatchClient {
  readonly socket: string;
  private readonly kept: KeptConnection[] = [];
  private readonly o: Required<Omit<ClientOptions, 'deadlineMs' | 'onRetry' | 'onLease'>> & Pick<ClientOptions, 'deadlineMs' | 'onRetry' | 'onLease'>;

  constructor(options: ClientOptions = {}) {
    this.socket = options.socket ?? DEFAULT_SOCKET;
    this.o = {
      socket: this.socket,
      timeoutMs: options.timeoutMs ?? 60_000,
      attempts: options.attempts ?? 10,
      answerTimeoutMs: options.answerTimeoutMs ?? 5000,
      maxResultBytes: options.maxResultBytes ?? MAX_BODY_BYTES_CEILING,
      deadlineMs: options.deadlineMs,
      onRetry: options.onRetry,
      onLease: options.onLease,
    };
  }

  /**
   * Asks the main server for a lease for one request of `type`.
   * @throws DispatchError CONNECT_FAILED, TIMEOUT, CONNECTION_LOST, BUSY, UNAVAILABLE, UNKNOWN_TYPE, …
   */
  async lease(type: string, timeoutMs = this.o.answerTimeoutMs): Promise<LeaseGranted> {
    const started = Date.now();
    const kept = this.takeKept();
    if (kept) {
      try {
        return await this.leaseOn(kept, type, timeoutMs, started);
      } catch (err) {
        // Main closed or cut off the kept connection before this request reached it: nothing
        // was asked, so ask again on a new connection (a lease request carries no payload).
        if (!(err instanceof DispatchError) || (err.code !== 'CONNECTION_LOST' && err.code !== 'IDLE_TIMEOUT')) throw err;
      }
    }
    const left = Math.max(1, timeoutMs - (Date.now() - started));
    return this.leaseOn(await connectFramed(this.socket, 0, left), type, timeoutMs, started);
  }

  /** Asks for a lease on `conn`, keeps `conn` for the next request when main answered, closes it otherwise. */
  private async leaseOn(conn: FrameConnection, type: string, timeoutMs: number, started: number): Promise<LeaseGranted> {
    let answered = false;
    try {
      // Main may queue the request while every secondary is busy: ask it to answer (BUSY) while
      // this client still listens, rather than time out with no answer.
      const left = Math.max(1, timeoutMs - (Date.now() - started));
      const waitMs = Math.max(0, left - Math.min(LEASE_ANSWER_MARGIN_MS, Math.floor(left / 4)));
      const f = await exchange(conn, { op: 'lease', type, wait_ms: waitMs }, undefined, left, 'the main server');
      if (f.header.ok !== true) {
        const e = fromReply(f.header, 'the main server');
        // After these main keeps the connection open for the next lease request (§1.4).
        answered = e.code === 'BUSY' || e.code === 'UNAVAILABLE' || e.code === 'UNKNOWN_TYPE';
        throw e;
      }
      const grant = parseLeaseAnswer(f.header, type);
      answered = true;
      return grant;
    } finally {
      if (answered) this.keep(conn);
      else conn.end(100);
    }
  }

  /** An idle kept connection to main that is still open, taken out of the pool. */
  private takeKept(): FrameConnection | undefined {
    for (let k = this.kept.pop(); k; k = this.kept.pop()) {
      this.release(k);
      if (!k.conn.isClosed) {
        k.conn.socket.ref();
        return k.conn;
      }
    }
    return undefined;
  }

  private release(k: KeptConnection): void {
    clearTimeout(k.timer);
    k.conn.off('close', k.drop);
    k.conn.off('error', k.drop);
    k.conn.off('frame', k.drop);
    k.conn.off('protocol-error', k.drop);
  }

  /** Keeps `conn` idle for the next lease request, for at most KEPT_MAIN_IDLE_MS, without keeping the process alive. */
  private keep(conn: FrameConnection): void {
    if (conn.isClosed) return;
    if (this.kept.length >= KEPT_MAIN_MAX) {
      conn.end(100);
      return;
    }
    const k: KeptConnection = {
      conn,
      timer: setTimeout(() => k.drop(), KEPT_MAIN_IDLE_MS),
      drop: () => {
        const i = this.kept.indexOf(k);
        if (i >= 0) this.kept.splice(i, 1);
        this.release(k);
        conn.destroy();
      },
    };
    k.timer.unref();
    conn.on('close', k.drop);
    conn.on('error', k.drop);
    conn.on('frame', k.drop);
    conn.on('protocol-error', k.drop);
    conn.socket.unref();
    this.kept.push(k);
  }

  /** Closes the idle connections to main this client keeps (they also close by themselves when idle, and never keep the process alive). */
  close(): void {
    for (const k of this.kept.splice(0)) {
      this.release(k);
      k.conn.end(100);
    }
  }

  /**
   * Presents a lease to its secondary and runs one request on a new connection.
   * @throws DispatchError LEASE_*, DEADLINE_EXCEEDED, CONNECT_FAILED, CONNECTION_LOST, …
   */
  async runOnLease(grant: LeaseGranted, type: string, data: Buffer, timeoutMs: number): Promise<Buffer> {
    const session = await Session.open(grant, this.o.maxResultBytes, Math.min(timeoutMs, this.o.answerTimeoutMs));
    try {
      return await session.run(type, data, timeoutMs, this.o.deadlineMs);
    } finally {
      session.close();
    }
  }

  /**
   * Sends one request and returns the result's bytes, retrying on a fresh lease when that
   * is safe (see the module comment).
   *
   * @throws DispatchError with the last failure's code when the request cannot be served
   *   (codes and their exit codes: README "Exit codes").
   */
  async request(type: string, data: Buffer = Buffer.alloc(0)): Promise<Buffer> {
    return (await this.requestWithInfo(type, data)).result;
  }

  /** As {@link request}, and says which secondary (and generation) served it, after how many attempts. */
  async requestWithInfo(type: string, data: Buffer = Buffer.alloc(0)): Promise<RequestInfo> {
    const deadline = Date.now() + this.o.timeoutMs;
    let last: DispatchError | undefined;
    for (let attempt = 1; attempt <= this.o.attempts; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      let grant: LeaseGranted | undefined;
      try {
        grant = await this.lease(type, Math.min(this.o.answerTimeoutMs, left));
        await this.o.onLease?.(grant);
        const result = await this.runOnLease(grant, type, data, Math.max(1, deadline - Date.now()));
        return { result, secondary: grant.secondary, generation: grant.generation, attempts: attempt };
      } catch (err) {
        last = err instanceof DispatchError ? err : new DispatchError('INTERNAL', reason(err), { cause: err });
        if (last.mayHaveRun && grant?.idempotent === false) throw outcomeUnknown(type, grant, last);
        if (!RETRYABLE.has(last.code) || attempt === this.o.attempts) break;
        const waitMs = last.code === 'BUSY' && last.retryAfterMs !== undefined ? last.retryAfterMs : backoffMs(attempt);
        if (Date.now() + waitMs >= deadline) break;
        this.o.onRetry?.({ attempt, error: last, waitMs });
        await delay(waitMs);
      }
    }
    const e = last ?? new DispatchError('TIMEOUT', `failed to complete the '${type}' request within ${this.o.timeoutMs} ms`);
    throw new DispatchError(e.code, e.message, { cause: e, retryAfterMs: e.retryAfterMs, retryable: RETRYABLE.has(e.code), mayHaveRun: e.mayHaveRun, fields: e.fields });
  }
}

/**
 * Checks a lease answer (docs/PROTOCOL.md §1.2): a LeaseGranted whose `idempotent` is a
 * boolean and whose `type` is the one asked for (a client decides how to retry by them).
 * @throws DispatchError PROTOCOL_ERROR otherwise.
 */
export function parseLeaseAnswer(header: FrameHeader, type: string): LeaseGranted {
  const g = LeaseGranted.safeParse(header);
  if (!g.success) {
    const missing = typeof header.idempotent !== 'boolean' ? ': it has no boolean `idempotent`' : typeof header.type !== 'string' ? ': it has no `type`' : '';
    throw new DispatchError('PROTOCOL_ERROR', `failed to understand the main server's answer: not a lease${missing} (docs/PROTOCOL.md §1.2)`);
  }
  if (g.data.type !== type) throw new DispatchError('PROTOCOL_ERROR', `failed to use the main server's answer: a lease for '${g.data.type}' requests, but '${type}' was asked for (docs/PROTOCOL.md §1.2)`);
  return g.data;
}

/**
 * The answer of a request that may have run was lost, and its type is not idempotent: it is
 * not sent again (at most once).
 */
function outcomeUnknown(type: string, grant: LeaseGranted, cause: DispatchError): DispatchError {
  return new DispatchError(
    'OUTCOME_UNKNOWN',
    `the '${type}' request may or may not have run on secondary-${grant.secondary} (${cause.code}: ${cause.message}); it was not sent again because '${type}' is not idempotent (at most once): check whether it took effect before sending it again`,
    { cause, mayHaveRun: true, fields: { ...cause.fields, type } },
  );
}

/** Exponential back-off with jitter: about 25, 50, 100 … ms, at most 1 s. */
function backoffMs(attempt: number): number {
  const base = Math.min(1000, 25 * 2 ** (attempt - 1));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/**
 * A connection to a secondary holding a claimed lease: several requests may run on it one
 * after the other ("established lease"). The lease ends when the session closes.
 */
export class Session {
  private constructor(private readonly conn: FrameConnection, readonly grant: LeaseGranted) {}

  /** @throws DispatchError CONNECT_FAILED. */
  static async open(grant: LeaseGranted, maxResultBytes: number, connectTimeoutMs: number): Promise<Session> {
    return new Session(await connectFramed(grant.socket, maxResultBytes, connectTimeoutMs), grant);
  }

  /** Runs one request on this lease. @throws DispatchError as DispatchClient.runOnLease. */
  async run(type: string, data: Buffer, timeoutMs: number, deadlineMs?: number): Promise<Buffer> {
    const header: FrameHeader = { op: 'run', lease: this.grant.lease, generation: this.grant.generation, type };
    if (deadlineMs !== undefined) header.deadline_ms = deadlineMs;
    const peer = `secondary-${this.grant.secondary}`;
    let f: Frame;
    try {
      f = await exchange(this.conn, header, data, timeoutMs, peer);
    } catch (err) {
      // The run frame was sent: the request may have run before the answer was lost.
      if (err instanceof DispatchError && (err.code === 'CONNECTION_LOST' || err.code === 'TIMEOUT')) {
        const retry = this.grant.idempotent === false ? '' : ' (delivery is at least once): it may be retried, its type being idempotent';
        throw new DispatchError(err.code, `${err.message}; the '${type}' request may or may not have run${retry}`, {
          cause: err,
          retryable: true,
          mayHaveRun: true,
          fields: { ...err.fields, may_have_run: true },
        });
      }
      throw err;
    }
    if (f.header.ok !== true) throw fromReply(f.header, peer);
    if (!isRunResult(f.header)) throw new DispatchError('PROTOCOL_ERROR', `failed to understand the answer of ${peer}: not a result`);
    const generation = f.header.generation;
    if (typeof generation === 'number' && generation !== this.grant.generation) {
      // Cannot happen with a conforming secondary (it refuses a lease of another generation).
      throw new DispatchError('LEASE_STALE', `failed to use the answer of ${peer}: it came from generation ${generation}, the lease is for generation ${this.grant.generation}; ask the main server for a new lease`, { retryable: true });
    }
    return f.body;
  }

  close(): void {
    this.conn.end(100);
  }
}

/** Sends one request with a new client. See {@link DispatchClient.request}. */
export function request(type: string, data?: Buffer, options?: ClientOptions): Promise<Buffer> {
  return new DispatchClient(options).request(type, data);
}
