/**
 * Incidents (a bad peer, a damaged mailbox, a failed write) logged at most once per interval
 * per kind, with the number suppressed since, and counted on the daemon's scoreboard slot.
 * Garbage therefore costs one log line per interval, not one per message or byte.
 */
import { IncidentLimiter, type Logger } from './logger.js';

export type IncidentLevel = 'error' | 'warning' | 'notice' | 'info';

export class IncidentLog {
  private readonly limiter: IncidentLimiter;

  /**
   * @param onLogged called for each incident actually logged (the daemon counts it in its slot).
   * @param intervalMs how long one kind of incident stays quiet after being logged (ms).
   * @param now the time in ms (Date.now; a fake clock's in unit tests).
   */
  constructor(private readonly logger: Logger, private readonly onLogged: () => void, intervalMs = 10_000, private readonly now: () => number = Date.now) {
    this.limiter = new IncidentLimiter(intervalMs);
  }

  /**
   * Logs `message` unless an incident of the same `key` was logged within the interval.
   * @param fields the log line's fields, or a function that builds them, called only when the
   *   line is logged (a flood of suppressed incidents then builds nothing).
   */
  report(key: string, level: IncidentLevel, message: string, fields: Record<string, unknown> | (() => Record<string, unknown>) = {}): void {
    const suppressed = this.limiter.shouldLog(key, this.now());
    if (suppressed === undefined) return;
    this.onLogged();
    this.logger.log(level, suppressed > 0 ? `${message} (${suppressed} more like it since the last report)` : message, typeof fields === 'function' ? fields() : fields);
  }
}
