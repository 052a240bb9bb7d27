/**
 * V8's incremental marking in a daemon: off while it serves, on once it has been quiet for
 * {@link IDLE_MARKING_AFTER_MS}, so that its heap shrinks at idle.
 *
 * - Off while serving (`--no-incremental-marking`): a daemon's heap is small (about 10 MB), so
 *   a full mark-compact is a pause of a few ms, while request bodies are external memory
 *   (Buffers) allocated at a high rate. With incremental marking V8 answers that
 *   external-memory pressure by starting mark-compact after mark-compact (measured: 60 to 90
 *   in 3 s of 64 KiB sha256 requests, against 1 or 2 in a bare server), each cycle's write
 *   barriers and marking steps taxing every request; without it the same pressure is relieved
 *   by cheap scavenges.
 * - On while idle (`--incremental-marking`): V8's memory reducer, which gives memory back to
 *   the system once a process stops allocating, works by starting incremental marking; with
 *   it off the young generation stays at the size it grew to while the daemon started (8 MiB)
 *   and the old generation never shrinks. Measured on a bare process that allocated and then
 *   idled: 73 MiB resident with the flag off for good, 47 MiB 30 s after it was turned back on.
 *
 * The flag is V8's and process-wide; `v8.setFlagsFromString` changes it at run time (Node.js
 * leaves V8's flags unfrozen for it). Transitions, checked once per tick:
 *
 * | state   | work since the last tick               | no work since the last tick                                 |
 * | ---     | ---                                    | ---                                                         |
 * | serving | serving                                | idle (flag on) once quiet for {@link IDLE_MARKING_AFTER_MS} |
 * | idle    | serving (flag off), quiet clock resets | idle                                                        |
 *
 * A burst that starts while idle runs with incremental marking for at most one tick.
 * docs/BENCHMARKS.md ("Memory", "Large bodies") has the measurements.
 */
import { IDLE_MARKING_AFTER_MS } from './timing.js';

export type MarkingState = 'serving' | 'idle';

/** The V8 flag each state sets. */
export const MARKING_FLAGS: Readonly<Record<MarkingState, string>> = {
  serving: '--no-incremental-marking',
  idle: '--incremental-marking',
};

/** What the daemon core calls each tick (a fake in unit tests). */
export interface MarkingPort {
  /** `now`: unix ms; `worked`: a request started or was running since the last tick. */
  tick(now: number, worked: boolean): void;
}

export class MarkingMode implements MarkingPort {
  private stateNow: MarkingState = 'serving';
  private lastWorkMs: number;

  /**
   * Sets the serving flag at once. `setFlags` is `v8.setFlagsFromString` in a daemon;
   * `now` unix ms; `quietMs` how long without work (ms) before the idle flag.
   */
  constructor(
    private readonly setFlags: (flag: string) => void,
    now: number,
    private readonly quietMs = IDLE_MARKING_AFTER_MS,
  ) {
    this.lastWorkMs = now;
    setFlags(MARKING_FLAGS.serving);
  }

  get state(): MarkingState {
    return this.stateNow;
  }

  tick(now: number, worked: boolean): void {
    if (worked) {
      this.lastWorkMs = now;
      if (this.stateNow === 'idle') this.enter('serving');
    } else if (this.stateNow === 'serving' && now - this.lastWorkMs >= this.quietMs) {
      this.enter('idle');
    }
  }

  private enter(state: MarkingState): void {
    this.stateNow = state;
    this.setFlags(MARKING_FLAGS[state]);
  }
}
