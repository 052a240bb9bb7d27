/**
 * Time and timers as a collaborator: {@link systemClock} (Date.now and Node's timers) in the
 * daemons, a fake clock that runs timers only when a test moves the time on in unit tests.
 */

export interface Clock {
  /** Unix time in ms. */
  now(): number;
  /** Runs `fn` once after `ms`; returns a handle for {@link clearTimeout}. */
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Date.now and Node's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout | undefined),
};
