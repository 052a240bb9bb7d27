/**
 * Runs one request of a built-in type (request-types.ts) for a secondary, cut off at its
 * deadline, and cuts off every running request when the secondary stops.
 */
import { DispatchError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { RequestType } from '../common/protocol.js';
import { HANDLERS, WAITING_TYPES } from './request-types.js';

/** The signal handed to handlers that finish within one turn (never aborted). */
const NO_DEADLINE = new AbortController().signal;

export interface RequestExecutorOptions {
  logger: Logger;
  /** The secondary's name in log lines and answers (secondary-N). */
  name: string;
  /** request_deadline_ms now (ms), for the DEADLINE_EXCEEDED message. */
  deadlineLimitMs: () => number;
}

export class RequestExecutor {
  /** The abort controllers of the requests running now: {@link cutOff} aborts them. */
  private readonly inProgress = new Set<AbortController>();

  constructor(private readonly o: RequestExecutorOptions) {}

  /** Runs one request, cut off at its deadline. @throws DispatchError DEADLINE_EXCEEDED, BAD_REQUEST. */
  async execute(type: RequestType, data: Buffer, deadlineMs: number, ctx: { peer: string; lease: string }): Promise<Buffer> {
    // No AbortController and timer per request for types that cannot be cut off anyway.
    if (!WAITING_TYPES.has(type)) return HANDLERS[type](data, NO_DEADLINE);
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort('deadline'), deadlineMs);
    const started = Date.now();
    this.inProgress.add(ac);
    try {
      return await HANDLERS[type](data, ac.signal);
    } catch (err) {
      if (ac.signal.aborted && ac.signal.reason === 'stopping') {
        this.o.logger.warning(`cut off a '${type}' request after ${Date.now() - started} ms: ${this.o.name} is stopping`, { code: 'SHUTTING_DOWN', type, ran_ms: Date.now() - started, lease: ctx.lease, secondary: this.o.name, peer: ctx.peer });
        throw new DispatchError('SHUTTING_DOWN', `${this.o.name} is stopping and cut off the '${type}' request after ${Date.now() - started} ms; it may have run in part: it may be retried`, { retryable: true });
      }
      if (ac.signal.aborted) {
        const requested = type === 'sleep' ? data.toString('latin1').trim().slice(0, 16) : `${data.length} bytes`;
        this.o.logger.warning(`cut off a '${type}' request at its deadline of ${deadlineMs} ms (requested ${requested}${type === 'sleep' ? ' ms' : ''})`, {
          code: 'DEADLINE_EXCEEDED',
          type,
          deadline_ms: deadlineMs,
          ran_ms: Date.now() - started,
          lease: ctx.lease,
          secondary: this.o.name,
          peer: ctx.peer,
        });
        throw new DispatchError('DEADLINE_EXCEEDED', `the '${type}' request ran past its deadline of ${deadlineMs} ms and was cut off; ask for a longer deadline (at most request_deadline_ms, ${this.o.deadlineLimitMs()} ms here)`);
      }
      throw err;
    } finally {
      clearTimeout(timer);
      this.inProgress.delete(ac);
    }
  }

  /** Cuts off every running request that can be cut off: each answers SHUTTING_DOWN. */
  cutOff(): void {
    for (const ac of this.inProgress) ac.abort('stopping');
  }
}
