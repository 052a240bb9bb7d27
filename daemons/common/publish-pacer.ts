/**
 * Paces a daemon's slot publishes: a publish asked for "soon" runs once however many values
 * change meanwhile, on the next turn when the last publish is older than the interval, else
 * at the end of that interval. So values changed alone reach readers at once, while a busy
 * daemon publishes (three pwrite(2)s, docs/SCOREBOARD.md §4) at most once per interval.
 */
export class PublishPacer {
  private pending: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private lastMs = 0;

  /** @param publish what {@link soon} runs (the daemon core's publish, which calls {@link published}). */
  constructor(private readonly publish: () => void) {}

  /** A publish ran now: cancels a pending one and starts the interval. */
  published(): void {
    this.cancel();
    this.lastMs = performance.now();
  }

  /** Publishes on the next turn, or once `intervalMs` (ms) after the last publish; once however often asked. */
  soon(intervalMs: number): void {
    if (this.pending) return;
    const wait = this.lastMs + intervalMs - performance.now();
    const run = () => {
      this.pending = undefined;
      this.publish();
    };
    this.pending = wait <= 0 ? setImmediate(run) : setTimeout(run, wait);
  }

  cancel(): void {
    if (!this.pending) return;
    clearTimeout(this.pending as NodeJS.Timeout);
    clearImmediate(this.pending as NodeJS.Immediate);
    this.pending = undefined;
  }
}
