/**
 * Small statistics for the benchmark: medians over repeats and latency percentiles.
 * Pure functions, no I/O.
 */

/** The median of `xs` (the mean of the two middle values for an even count); NaN when empty. */
export function median(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** The q-quantile (0 … 1) of already sorted values, nearest rank; NaN when empty. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** Latency summary in milliseconds. */
export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * Collects latencies (ms) in a growable Float64Array: no per-sample allocation, so recording
 * does not disturb what it measures.
 */
export class LatencyRecorder {
  private buf = new Float64Array(1 << 16);
  private n = 0;

  add(ms: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = ms;
  }

  summary(): LatencySummary {
    const v = this.buf.slice(0, this.n).sort();
    let sum = 0;
    for (let i = 0; i < v.length; i++) sum += v[i]!;
    return {
      p50: quantileSorted(v, 0.5),
      p90: quantileSorted(v, 0.9),
      p99: quantileSorted(v, 0.99),
      max: v.length ? v[v.length - 1]! : NaN,
      mean: v.length ? sum / v.length : NaN,
    };
  }
}
