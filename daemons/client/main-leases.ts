/**
 * Lease requests to the main server on kept connections (docs/PROTOCOL.md §1.2): several lease
 * requests on one connection, one after the other. Idle connections do not keep the process
 * alive, are dropped after {@link KEPT_MAIN_IDLE_MS}, and {@link MainLeases.close} closes them.
 */
import { DispatchError } from '../common/errors.js';
import type { FrameConnection } from '../common/frame-connection.js';
import type { LeaseGranted } from '../common/protocol-replies.js';
import { connectFramed, type TimeBudget } from './connect-framed.js';
import { exchange, fromReply } from './exchange.js';
import { parseLeaseAnswer } from './parse-lease-answer.js';

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

/** The lease requests of one client to the main server listening on `socket`, and the idle connections it keeps. */
export class MainLeases {
  private readonly kept: KeptConnection[] = [];

  constructor(readonly socket: string) {}

  /**
   * Asks the main server for a lease for one request of `type`, on a kept connection when
   * one is idle, else on a new one.
   * @param timeoutMs how long to wait for the connect and main's answer together, in ms.
   * @param budget the request's overall budget: a connect it cuts short is TIMEOUT, not CONNECT_FAILED.
   * @throws DispatchError CONNECT_FAILED, TIMEOUT, CONNECTION_LOST, BUSY, UNAVAILABLE, UNKNOWN_TYPE, PROTOCOL_ERROR, …
   */
  async lease(type: string, timeoutMs: number, budget?: TimeBudget): Promise<LeaseGranted> {
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
    return this.leaseOn(await connectFramed(this.socket, 0, left, budget), type, timeoutMs, started);
  }

  /** Closes the idle connections to main kept (they also close by themselves when idle, and never keep the process alive). */
  close(): void {
    for (const k of this.kept.splice(0)) {
      this.release(k);
      k.conn.end(100);
    }
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
}
