/**
 * A session on an established lease: the run of requests on the secondary a lease names.
 */
import { DispatchError } from '../common/errors.js';
import type { FrameConnection } from '../common/frame-connection.js';
import type { Frame, FrameHeader } from '../common/frame.js';
import { isRunResult, type LeaseGranted } from '../common/protocol-replies.js';
import { connectFramed, type TimeBudget } from './connect-framed.js';
import { exchange, fromReply } from './exchange.js';

/**
 * A connection to a secondary holding a claimed lease: several requests may run on it one
 * after the other ("established lease"). The lease ends when the session closes.
 */
export class Session {
  private closed = false;

  private constructor(private readonly conn: FrameConnection, readonly grant: LeaseGranted) {}

  /**
   * Connects to the lease's secondary.
   * @param maxResultBytes largest result accepted, in bytes.
   * @param connectTimeoutMs how long the connect may take, in ms.
   * @param budget the request's overall budget: a connect it cuts short is TIMEOUT, not CONNECT_FAILED.
   * @throws DispatchError CONNECT_FAILED; TIMEOUT when `budget` ran out during the connect.
   */
  static async open(grant: LeaseGranted, maxResultBytes: number, connectTimeoutMs: number, budget?: TimeBudget): Promise<Session> {
    return new Session(await connectFramed(grant.socket, maxResultBytes, connectTimeoutMs, budget), grant);
  }

  /**
   * Runs one request on this lease and returns the result's bytes.
   * @param timeoutMs how long to wait for the answer, in ms.
   * @param deadlineMs the per-request deadline sent to the secondary, in ms (default: the server's).
   * @throws DispatchError as DispatchClient.runOnLease; CONNECTION_LOST or TIMEOUT with `mayHaveRun` once the run frame was sent;
   *   CONNECTION_LOST without it when the session was closed already (nothing sent).
   */
  async run(type: string, data: Buffer, timeoutMs: number, deadlineMs?: number): Promise<Buffer> {
    if (this.closed || this.conn.isClosed) {
      throw new DispatchError('CONNECTION_LOST', `the session on secondary-${this.grant.secondary} is closed (its lease ended): nothing was sent; run the '${type}' request on a new lease`, { retryable: true });
    }
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
      // Cannot happen with a conforming secondary (it refuses a lease of another generation);
      // if it does, some process answered after reading the run frame: it may have run.
      throw new DispatchError('LEASE_STALE', `failed to use the answer of ${peer}: it came from generation ${generation}, the lease is for generation ${this.grant.generation}; ask the main server for a new lease`, { retryable: true, mayHaveRun: true });
    }
    return f.body;
  }

  /** Closes the connection, which ends the lease (idempotent); a later {@link run} throws CONNECTION_LOST. */
  close(): void {
    this.closed = true;
    this.conn.end(100);
  }
}
