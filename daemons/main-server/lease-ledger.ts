/**
 * Main's accounting of leases (docs/ARCHITECTURE.md, "A restart of main loses nothing"): the
 * leases this process reserved and has not yet seen end, and the `done` of leases an earlier
 * main process granted, which waited in main's FIFO while main was down or restarting. Those
 * are adopted: counted, and logged together, one line per batch.
 */
import { reason } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { Done } from '../common/messages.js';
import type { SlotData } from '../common/scoreboard.js';
import { TICK_MS } from '../common/timing.js';

/** Leases reserved by this process remembered, to tell their `done` from adopted ones (bounded). */
export const RESERVED_MEMORY = 65_536;
/** `done` messages of adopted leases are reported in one line per this many ms. */
export const ADOPTED_REPORT_MS = 1000;

interface AdoptedBatch {
  leases: number;
  used: number;
  requests: number;
  failed: number;
  from: Set<string>;
}

export class LeaseLedger {
  /** Leases this process reserved and not yet seen end (lease → secondary instance), oldest first. */
  private readonly reserved = new Map<string, number>();
  /** Leases reported ended: reserved by this process, or adopted from an earlier main process. */
  private readonly ended = { own: 0, adopted: 0 };
  /** Adopted leases ended since the last report: they are logged together. */
  private batch: AdoptedBatch | undefined;
  private timer: NodeJS.Timeout | undefined;

  /** @param reportAfterMs how long adopted leases are gathered into one line (ms). */
  constructor(private readonly logger: Logger, private readonly reportAfterMs = ADOPTED_REPORT_MS) {}

  /** Leases of an earlier main process accounted for so far. */
  get adopted(): number {
    return this.ended.adopted;
  }

  /** Leases this process reserved that have not ended yet (bounded by {@link RESERVED_MEMORY}). */
  get out(): number {
    return this.reserved.size;
  }

  /** A lease this process is reserving on secondary `instance`. */
  record(lease: string, instance: number): void {
    this.reserved.set(lease, instance);
    if (this.reserved.size > RESERVED_MEMORY) this.reserved.delete(this.reserved.keys().next().value!);
  }

  /** A reservation that was not made (refused, or never written): no `done` will come. */
  forget(lease: string): void {
    this.reserved.delete(lease);
  }

  /**
   * A lease ended. One this process did not reserve was granted by an earlier main process
   * (or this one's predecessor in the slot): it is accounted for here and logged, a batch
   * per line (every `reportAfterMs`).
   */
  done(m: Done): void {
    if (this.reserved.delete(m.lease)) {
      this.ended.own++;
      return;
    }
    this.ended.adopted++;
    const b = (this.batch ??= { leases: 0, used: 0, requests: 0, failed: 0, from: new Set() });
    b.leases++;
    if (m.claimed) b.used++;
    b.requests += m.requests;
    b.failed += m.failed;
    b.from.add(m.from);
    this.timer ??= setTimeout(() => this.report(), this.reportAfterMs);
  }

  /** Logs the adopted leases not yet reported (at once, e.g. on stop). */
  report(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const b = this.batch;
    this.batch = undefined;
    if (!b) return;
    this.logger.info(`accounted for ${b.leases} leases granted by an earlier main process, ended on ${[...b.from].sort().join(', ')}: ${b.used} used, ${b.requests} requests served, ${b.failed} failed; ${b.leases - b.used} expired unused`, {
      adopted_leases: b.leases,
      adopted_requests: b.requests,
      adopted_failed: b.failed,
    });
  }

  /** Logs what this process leaves to its successor: a lease still out ends on its secondary, whose `done` waits in main's FIFO. */
  reportStop(): void {
    const out = this.reserved.size;
    this.logger.info(`${out} of this process's leases not yet ended${out ? ': the next main process accounts for them as their secondaries report' : ''}; ${this.ended.own} ended, ${this.ended.adopted} of an earlier process accounted for`, {
      leases_out: out,
      leases_ended: this.ended.own,
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
