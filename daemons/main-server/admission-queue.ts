/**
 * The admission queue: requests that found every secondary full (or none running yet) wait
 * here, first come first served, until a secondary frees a lease or appears, or their queue
 * timeout passes. Bounded: past `max` waiters a request is refused at once.
 */
export class AdmissionQueue {
  private readonly waiters: Array<{ wake: (woken: boolean) => void; timer: NodeJS.Timeout }> = [];

  /** @param max most waiters; may be changed while running (configuration reload). */
  constructor(public max: number) {}

  get length(): number {
    return this.waiters.length;
  }

  get full(): boolean {
    return this.waiters.length >= this.max;
  }

  /**
   * Waits for a wake-up or `timeoutMs`. Resolves true when woken, false on timeout.
   * Callers check {@link full} first.
   */
  wait(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const entry = {
        wake: (woken: boolean) => resolve(woken),
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(entry);
          if (i !== -1) this.waiters.splice(i, 1);
          resolve(false);
        }, Math.max(0, timeoutMs)),
      };
      this.waiters.push(entry);
    });
  }

  /** Wakes the `count` oldest waiters (all by default). */
  wake(count = Infinity): void {
    const woken = this.waiters.splice(0, Math.min(count, this.waiters.length));
    for (const w of woken) {
      clearTimeout(w.timer);
      w.wake(true);
    }
  }

  /** Releases every waiter as timed out (on stop). */
  clear(): void {
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.wake(false);
    }
  }
}
