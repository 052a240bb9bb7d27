/**
 * Main's accounting of leases (docs/ARCHITECTURE.md, "A restart of main loses nothing"): the
 * leases this process minted and has not yet seen end (the secondaries report claims and ends
 * in their batched `credit` messages), and the end of leases an earlier main process minted,
 * reported in `credit` messages that waited in main's FIFO while main was down or restarting.
 * Those are adopted: counted, and logged together, one line per batch.
 */
import { reason } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { Credit } from '../common/messages.js';
import type { SlotData } from '../common/scoreboard-layout.js';
import { TICK_MS } from '../common/timing.js';

/** Leases minted by this process remembered, to tell their end from adopted ones (bounded). */
export const RESERVED_MEMORY = 65_536;
/** `done` messages of adopted leases are reported in one line per this many ms. */
export const ADOPTED_REPORT_MS = 1000;
/** A lease no secondary reported claimed this long after its expiry (ms) expired unused. */
export const CLAIM_REPORT_GRACE_MS = 1000;

interface AdoptedBatch {
  leases: number;
  requests: number;
  failed: number;
  from: Set<string>;
}

interface MintedLease {
  exp: number;
  claimed: boolean;
}

export class LeaseLedger {
  /** Leases this process minted and not yet seen end, by `secondary-N/generation/sequence`, oldest first. */
  private readonly minted = new Map<string, MintedLease>();
  /** Leases reported ended: minted by this process, or adopted from an earlier main process; and this process's that expired unclaimed. */
  private readonly ended = { own: 0, adopted: 0, expired: 0 };
  /** Adopted leases ended since the last report: they are logged together. */
  private batch: AdoptedBatch | undefined;
  private timer: NodeJS.Timeout | undefined;

  /** @param reportAfterMs how long adopted leases are gathered into one line (ms). */
  constructor(private readonly logger: Logger, private readonly reportAfterMs = ADOPTED_REPORT_MS) {}

  /** Leases of an earlier main process accounted for so far. */
  get adopted(): number {
    return this.ended.adopted;
  }

  /** Leases this process minted that have not ended yet (bounded by {@link RESERVED_MEMORY}). */
  get out(): number {
    return this.minted.size;
  }

  /** Leases this process minted that no client presented before they expired. */
  get expiredUnused(): number {
    return this.ended.expired;
  }

  /** A lease this process minted for `secondary` (its name) of generation `gen`, sequence `seq`, expiring at `exp` (unix ms). */
  record(secondary: string, gen: number, seq: number, exp: number): void {
    this.minted.set(`${secondary}/${gen}/${seq}`, { exp, claimed: false });
    if (this.minted.size > RESERVED_MEMORY) this.minted.delete(this.minted.keys().next().value!);
  }

  /**
   * A secondary's `credit` message: the leases claimed and ended since its last. An ended
   * lease this process did not mint was granted by an earlier main process: it is accounted
   * for here and logged, a batch per line (every `reportAfterMs`).
   */
  credit(m: Credit): void {
    for (const seq of m.claimed) {
      const l = this.minted.get(`${m.from}/${m.gen}/${seq}`);
      if (l) l.claimed = true;
    }
    for (const [seq, requests, failed] of m.ended) {
      if (this.minted.delete(`${m.from}/${m.gen}/${seq}`)) {
        this.ended.own++;
        continue;
      }
      this.ended.adopted++;
      const b = (this.batch ??= { leases: 0, requests: 0, failed: 0, from: new Set() });
      b.leases++;
      b.requests += requests;
      b.failed += failed;
      b.from.add(m.from);
      this.timer ??= setTimeout(() => this.report(), this.reportAfterMs);
    }
  }

  /** Forgets the leases no secondary reported claimed by their expiry (and a grace for the report to come): they expired unused. */
  sweep(now: number): void {
    for (const [k, l] of this.minted) {
      if (!l.claimed && l.exp + CLAIM_REPORT_GRACE_MS < now) {
        this.minted.delete(k);
        this.ended.expired++;
      }
    }
  }

  /** Logs the adopted leases not yet reported (at once, e.g. on stop). */
  report(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const b = this.batch;
    this.batch = undefined;
    if (!b) return;
    this.logger.info(`accounted for ${b.leases} leases granted by an earlier main process, ended on ${[...b.from].sort().join(', ')}: ${b.leases} used, ${b.requests} requests served, ${b.failed} failed`, {
      adopted_leases: b.leases,
      adopted_requests: b.requests,
      adopted_failed: b.failed,
    });
  }

  /** Logs what this process leaves to its successor: a lease still out ends on its secondary, whose `done` waits in main's FIFO. */
  reportStop(): void {
    const out = this.minted.size;
    this.logger.info(`${out} of this process's leases not yet ended${out ? ': the next main process accounts for them as their secondaries report' : ''}; ${this.ended.own} ended, ${this.ended.expired} expired unused, ${this.ended.adopted} of an earlier process accounted for`, {
      leases_out: out,
      leases_ended: this.ended.own,
      leases_expired_unused: this.ended.expired,
      adopted_leases_total: this.ended.adopted,
    });
  }

  /**
   * What a restarted main takes over, for its ready line: the secondaries keep running
   * (separate units), their slots carry their load and generation, and the leases they hold
   * stay valid (a lease is bound to the secondary's generation, not to main's).
   * @param starts this start's number in main's slot (1: a first start, nothing to adopt).
   * @param liveSecondaries reads the live secondaries' slots. @throws whatever it throws, reported in the note.
   */
  static adoptionNote(starts: number, liveSecondaries: () => SlotData[]): string {
    if (starts <= 1) return '';
    try {
      const running = liveSecondaries();
      const held = running.reduce((n, x) => n + x.active, 0);
      return `; re-adopted the scoreboard (start ${starts} of this slot): ${running.length} secondaries running (${running.map((x) => `${x.name} generation ${x.generation}`).join(', ') || 'none'}), ${held} leases held, which stay valid`;
    } catch (err) {
      return `; failed to read the scoreboard to re-adopt it: ${reason(err)}, retrying in ${TICK_MS} ms`;
    }
  }
}
