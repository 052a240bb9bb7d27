/** A Clock (daemons/common/clock.ts) whose timers run only when the test moves the time on. */
import type { Clock } from '../../../daemons/common/clock.js';

export class FakeClock implements Clock {
  private ms = 1_000_000;
  private timers = new Map<number, { at: number; fn: () => void }>();
  private next = 0;
  now(): number {
    return this.ms;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    this.timers.set(++this.next, { at: this.ms + ms, fn });
    return this.next;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  /** Timers waiting to run. */
  get pending(): number {
    return this.timers.size;
  }
  /** Moves the time on by `ms`, running each timer due at its time and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.ms + ms;
    for (;;) {
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!first || e[1].at < first[1].at)) first = e;
      if (!first) break;
      this.timers.delete(first[0]);
      this.ms = first[1].at;
      first[1].fn();
      await new Promise((r) => setImmediate(r));
    }
    this.ms = end;
    await new Promise((r) => setImmediate(r));
  }
}
