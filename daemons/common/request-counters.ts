/**
 * A daemon's request counters as published in its scoreboard slot (docs/SCOREBOARD.md §3):
 * requests served, failed, and their latency sum and maximum in microseconds.
 */
import type { SlotData } from './scoreboard-layout.js';

export type RequestCountersValues = Pick<SlotData, 'requests' | 'failures' | 'latencySumUs' | 'latencyMaxUs'>;

export class RequestCounters {
  private readonly v: RequestCountersValues = { requests: 0, failures: 0, latencySumUs: 0, latencyMaxUs: 0 };

  /** Counts one request served (a lease granted, a request run) that took `us` microseconds. */
  served(us: number): void {
    this.v.requests++;
    this.v.latencySumUs += us;
    if (us > this.v.latencyMaxUs) this.v.latencyMaxUs = Math.min(0xffffffff, us);
  }

  /** Counts one failed request. */
  failed(): void {
    this.v.failures++;
  }

  get requests(): number {
    return this.v.requests;
  }

  get failures(): number {
    return this.v.failures;
  }

  /** The values for the slot (a copy). */
  values(): RequestCountersValues {
    return { ...this.v };
  }
}
