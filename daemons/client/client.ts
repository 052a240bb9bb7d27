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
 *
 * This file is the library's facade: DispatchClient and `request`, and the re-exports of its
 * parts (main-leases.ts: lease requests on kept connections to main; session.ts: the run on a
 * secondary; retry-policy.ts: what is retried; connect-framed.ts, exchange.ts: the wire).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { DispatchError, reason } from '../common/errors.js';
import { MAX_BODY_BYTES_CEILING } from '../common/frame.js';
import { MAX_DEADLINE_MS, MAX_TIMER_MS } from '../common/timing.js';
import type { LeaseGranted } from '../common/protocol-replies.js';
import { DEFAULT_SOCKET, type ClientOptions, type RequestInfo } from './client-options.js';
import type { TimeBudget } from './connect-framed.js';
import { MainLeases } from './main-leases.js';
import { backoffMs, outcomeUnknown, RETRYABLE } from './retry-policy.js';
import { Session } from './session.js';

export { DispatchError } from '../common/errors.js';
export type { ErrorCode } from '../common/errors.js';
export { EXIT, exitCodeFor } from '../common/exit-codes.js';
export { DEFAULT_SOCKET, type ClientOptions, type RequestInfo } from './client-options.js';
export { connectFramed, type TimeBudget } from './connect-framed.js';
export { exchange } from './exchange.js';
export { KEPT_MAIN_IDLE_MS, KEPT_MAIN_MAX } from './main-leases.js';
export { parseLeaseAnswer } from './parse-lease-answer.js';
export { Session } from './session.js';

/**
 * A client of one dispatchd suite. Safe to share between concurrent requests; between
 * requests it holds only idle connections to main (see the module comment).
 */
export class DispatchClient {
  readonly socket: string;
  private readonly leases: MainLeases;
  private readonly o: Required<Omit<ClientOptions, 'deadlineMs' | 'onRetry' | 'onLease'>> & Pick<ClientOptions, 'deadlineMs' | 'onRetry' | 'onLease'>;

  /** @throws DispatchError BAD_REQUEST when an option is out of range (ClientOptions says each one's). */
  constructor(options: ClientOptions = {}) {
    checkOptions(options);
    this.socket = options.socket ?? DEFAULT_SOCKET;
    this.leases = new MainLeases(this.socket);
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
    return this.leases.lease(type, timeoutMs);
  }

  /** Closes the idle connections to main this client keeps (they also close by themselves when idle, and never keep the process alive). */
  close(): void {
    this.leases.close();
  }

  /**
   * Presents a lease to its secondary and runs one request on a new connection.
   * @param timeoutMs how long to wait for the answer, in ms (the connect: at most the answer timeout too).
   * @param budget the request's overall budget: a connect it cuts short is TIMEOUT, not CONNECT_FAILED.
   * @throws DispatchError LEASE_*, DEADLINE_EXCEEDED, CONNECT_FAILED, CONNECTION_LOST, TIMEOUT, …
   */
  async runOnLease(grant: LeaseGranted, type: string, data: Buffer, timeoutMs: number, budget?: TimeBudget): Promise<Buffer> {
    const session = await Session.open(grant, this.o.maxResultBytes, Math.min(timeoutMs, this.o.answerTimeoutMs), budget);
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
    // A connect cut short by this budget is TIMEOUT: the request ran out of time, the socket did not fail.
    const budget: TimeBudget = { deadline, totalMs: this.o.timeoutMs };
    let last: DispatchError | undefined;
    for (let attempt = 1; attempt <= this.o.attempts; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      let grant: LeaseGranted | undefined;
      try {
        grant = await this.leases.lease(type, Math.min(this.o.answerTimeoutMs, left), budget);
        await this.o.onLease?.(grant);
        const result = await this.runOnLease(grant, type, data, Math.max(1, deadline - Date.now()), budget);
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

/** Refuses an option out of range before anything is sent. @throws DispatchError BAD_REQUEST. */
function checkOptions(o: ClientOptions): void {
  const bad = (name: string, want: string, value: unknown) => new DispatchError('BAD_REQUEST', `${name} must be ${want}, not ${String(value)}; nothing was sent`);
  for (const name of ['timeoutMs', 'answerTimeoutMs'] as const) {
    const v = o[name];
    if (v !== undefined && !(typeof v === 'number' && v >= 1 && v <= MAX_TIMER_MS)) throw bad(name, `a number of 1 … ${MAX_TIMER_MS} ms`, v);
  }
  if (o.attempts !== undefined && !(Number.isInteger(o.attempts) && o.attempts >= 1)) throw bad('attempts', 'an integer of at least 1', o.attempts);
  if (o.deadlineMs !== undefined && !(Number.isInteger(o.deadlineMs) && o.deadlineMs >= 1 && o.deadlineMs <= MAX_DEADLINE_MS)) throw bad('deadlineMs', `an integer of 1 … ${MAX_DEADLINE_MS} ms`, o.deadlineMs);
  if (o.maxResultBytes !== undefined && !(Number.isInteger(o.maxResultBytes) && o.maxResultBytes >= 0 && o.maxResultBytes <= MAX_BODY_BYTES_CEILING)) throw bad('maxResultBytes', `an integer of 0 … ${MAX_BODY_BYTES_CEILING} bytes`, o.maxResultBytes);
}

/** Sends one request with a new client. See {@link DispatchClient.request}. */
export function request(type: string, data?: Buffer, options?: ClientOptions): Promise<Buffer> {
  return new DispatchClient(options).request(type, data);
}
