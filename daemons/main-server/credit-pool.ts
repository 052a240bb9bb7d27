/**
 * The credits main holds (docs/PROTOCOL.md §2.2): for each secondary process, the lease
 * sequences it granted in `credit` messages, and the signer that mints its leases. Main mints
 * a lease from a credit only while the credit has a whole lease lifetime left, so every lease
 * it hands out is good for `lease_ttl_ms`; older credits are dropped (the secondary grants new
 * ones as they go stale).
 */
import { LeaseSigner } from '../common/lease-token.js';
import type { Credit } from '../common/messages.js';

interface Range {
  next: number;
  end: number;
  exp: number;
}

interface Holding {
  generation: number;
  signer: LeaseSigner;
  ranges: Range[];
  /** Whether any `credit` of this process reached this main (it answers, so none left means it is full). */
  heard: boolean;
  /** When main last asked it for credits (unix ms). */
  wantedAt: number;
}

/** A lease minted from a credit. */
export interface Minted {
  lease: string;
  seq: number;
  exp: number;
}

export class CreditPool {
  private readonly held = new Map<number, Holding>();

  /** @param key the suite's lease key (lease-key.ts). */
  constructor(private readonly key: Buffer) {}

  private holding(instance: number, generation: number): Holding {
    let h = this.held.get(instance);
    if (!h || h.generation !== generation) {
      h = { generation, signer: new LeaseSigner(this.key, instance, generation), ranges: [], heard: false, wantedAt: -Infinity };
      this.held.set(instance, h);
    }
    return h;
  }

  /** Takes the credits of a `credit` message from secondary `instance`. */
  add(instance: number, m: Credit): void {
    const h = this.holding(instance, m.gen);
    h.heard = true;
    if (m.n > 0) h.ranges.push({ next: m.seq, end: m.seq + m.n, exp: m.exp });
  }

  /** Credits of secondary `instance` (generation `generation`) good for a whole lease of `ttlMs` at `now`. */
  usable(instance: number, generation: number, now: number, ttlMs: number): number {
    const h = this.held.get(instance);
    if (!h || h.generation !== generation) return 0;
    this.drop(h, now, ttlMs);
    return h.ranges.reduce((n, r) => n + (r.end - r.next), 0);
  }

  private drop(h: Holding, now: number, ttlMs: number): void {
    while (h.ranges.length && (h.ranges[0]!.exp - now < ttlMs || h.ranges[0]!.next >= h.ranges[0]!.end)) h.ranges.shift();
  }

  /**
   * Mints a lease of `type` for secondary `instance` from one of its credits, good until
   * `now + ttlMs`; undefined when it has none left.
   */
  mint(instance: number, generation: number, type: string, now: number, ttlMs: number): Minted | undefined {
    const h = this.held.get(instance);
    if (!h || h.generation !== generation) return undefined;
    this.drop(h, now, ttlMs);
    const r = h.ranges[0];
    if (!r) return undefined;
    const seq = r.next++;
    const exp = now + ttlMs;
    return { lease: h.signer.mint(seq, exp, type), seq, exp };
  }

  /** Whether this process of secondary `instance` ever granted this main credits. */
  heard(instance: number, generation: number): boolean {
    const h = this.held.get(instance);
    return h !== undefined && h.generation === generation && h.heard;
  }

  /** Whether to ask secondary `instance` for credits now: none usable, and not asked within `intervalMs`; marks it asked. */
  shouldWant(instance: number, generation: number, now: number, ttlMs: number, intervalMs: number): boolean {
    if (this.usable(instance, generation, now, ttlMs) > 0) return false;
    const h = this.holding(instance, generation);
    if (now - h.wantedAt < intervalMs) return false;
    h.wantedAt = now;
    return true;
  }

  /** Forgets the secondaries not in `live` (stopped, or restarted as a new generation). */
  keepOnly(live: ReadonlyMap<number, number>): void {
    for (const [n, h] of this.held) if (live.get(n) !== h.generation) this.held.delete(n);
  }
}
