/**
 * A call to the unit manager (systemd over D-Bus) that is started and followed, never awaited
 * by the probe loop: its outcome is reported once, and a call that does not answer in time
 * is reported as failed (a later answer is dropped).
 */
import { DispatchError, reason } from '../common/errors.js';
import type { Clock } from '../common/clock.js';

/**
 * A unit list, restart or kill not answered within this long (ms) is reported as failed and
 * asked again (the list next round, a restart after max_missed more pings). Longer than the
 * D-Bus client's own timeout (2 s), shorter than ESCALATE_AFTER_MS.
 */
export const UNIT_CALL_TIMEOUT_MS = 2500;

/**
 * Starts `call` and reports how it ended, once: `done(undefined, value)`, `done(error)`, or
 * `done(RESTART_FAILED "no answer within UNIT_CALL_TIMEOUT_MS ms")`.
 *
 * @param what what the call does, for messages ("restart dispatchd-main.service").
 */
export function followCall<T>(clock: Clock, call: () => Promise<T>, what: string, done: (err: DispatchError | undefined, value?: T) => void): void {
  let settled = false;
  const finish = (err: DispatchError | undefined, value?: T) => {
    if (settled) return;
    settled = true;
    clock.clearTimeout(timer);
    done(err, value);
  };
  const timer = clock.setTimeout(() => finish(new DispatchError('RESTART_FAILED', `failed to ${what} through systemd's D-Bus API: no answer within ${UNIT_CALL_TIMEOUT_MS} ms`)), UNIT_CALL_TIMEOUT_MS);
  let p: Promise<T>;
  try {
    p = call();
  } catch (err) {
    p = Promise.reject(err);
  }
  p.then(
    (v) => finish(undefined, v),
    (err) => finish(err instanceof DispatchError ? err : new DispatchError('RESTART_FAILED', `failed to ${what}: ${reason(err)}`, { cause: err })),
  );
}
