/**
 * How a secondary hands its capacity to main (docs/PROTOCOL.md §2.2): in `credit` messages
 * over main's mailbox FIFO, batched with the claims and ends of leases since the last one, so
 * the FIFO carries about one message per batch instead of one round trip per lease. A claim
 * waits for its lease's end, which reports both (a lease of one request costs main one
 * message), or {@link CLAIM_REPORT_MS} while the lease is still held. Ends wait up to
 * {@link CREDIT_GATHER_MS} to share a message while main holds plenty of this secondary's
 * credits (half of max_leases or more, fresh); otherwise an end goes out at once after a
 * quiet {@link CREDIT_BATCH_MS}, else at the end of that interval with the others.
 *
 * It keeps as many fresh credits at main as it has free capacity (max_leases − in use),
 * granting again when leases end or credits go stale. A `want` from a main process it has not
 * heard from before (main restarted: the credits it held are gone with it) is answered with
 * the whole free capacity at once, even though the old credits stay valid until they lapse: a
 * lease presented while the secondary is full is refused (BUSY, nothing ran), so granting more
 * than it can serve never overloads it. Fresh unclaimed credits are bounded by
 * {@link MAX_OUTSTANDING} × max_leases, so the window (which keeps a credit one more lease
 * lifetime after it goes stale) holds at most about twice that.
 */
import type { DispatchError } from '../common/errors.js';
import { CREDIT_LIST_MAX, type Credit } from '../common/messages.js';
import { PublishPacer } from '../common/publish-pacer.js';
import { CLAIM_REPORT_MS, CREDIT_BATCH_MS, CREDIT_GATHER_MS } from '../common/timing.js';
import type { CreditGrant, CreditWindow } from './credit-window.js';

/** Unused fresh credits are at most this many times max_leases. */
export const MAX_OUTSTANDING = 3;

export interface CreditIssuerOptions {
  /** This secondary's name and generation, for the messages. */
  from: string;
  generation: number;
  window: CreditWindow;
  /** max_leases now, and the leases in use. */
  maxLeases: () => number;
  inUse: () => number;
  /** No credits are granted while stopping. */
  stopping: () => boolean;
  /** Writes to main's mailbox. @throws DispatchError MAILBOX_* (rejects). */
  send: (m: Credit) => Promise<void>;
  /** A message could not be written (its credits are taken back). */
  failed: (err: DispatchError) => void;
  now?: () => number;
}

export class CreditIssuer {
  /** Sequences claimed and not yet reported, in claim order (a lease that ends leaves it: its end reports the claim). */
  private readonly claimed = new Set<number>();
  private ended: Array<[number, number, number]> = [];
  /** Sends ends and credits at once after a quiet CREDIT_BATCH_MS, else at its end. */
  private readonly pacer = new PublishPacer(() => this.flush());
  private claimTimer: NodeJS.Timeout | undefined;
  private gatherTimer: NodeJS.Timeout | undefined;
  private staleTimer: NodeJS.Timeout | undefined;
  private mainGen: number | undefined;
  private refill = false;
  private closed = false;

  constructor(private readonly o: CreditIssuerOptions) {}

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  /** A client claimed lease sequence `seq`: main hears of it with the lease's end, or in the first message after CLAIM_REPORT_MS. */
  claim(seq: number): void {
    if (this.closed) return;
    this.claimed.add(seq);
    this.claimTimer ??= setTimeout(() => this.flush(), CLAIM_REPORT_MS);
  }

  /** A lease ended after serving `requests` (`failed` of them failed): main hears of it, and gets its capacity back as a credit. */
  end(seq: number, requests: number, failed: number): void {
    this.claimed.delete(seq); // its end says it was claimed
    this.ended.push([seq, requests, failed]);
    if (this.closed) return;
    const ms = this.gatherMs();
    if (ms > CREDIT_BATCH_MS) this.gatherTimer ??= setTimeout(() => this.flush(), ms);
    else this.soon();
  }

  /**
   * How long an end may wait now for others to share its message (ms): CREDIT_GATHER_MS while
   * main holds at least half of max_leases in fresh credits of this secondary, else CREDIT_BATCH_MS.
   */
  gatherMs(): number {
    return this.o.window.fresh(this.now()) * 2 >= this.o.maxLeases() ? CREDIT_GATHER_MS : CREDIT_BATCH_MS;
  }

  /**
   * The main process that will read the first credits (its generation, from the scoreboard
   * at start; undefined: none runs): its `want` is not a new main's, so it gets what is free beyond the fresh
   * credits, not the whole free capacity again. (Its `want` can cross the first credits in
   * the FIFOs when this secondary has just started: answered with the whole capacity, main
   * held twice max_leases of this secondary's credits and leases past it were refused BUSY.)
   */
  grantedTo(mainGen: number | undefined): void {
    this.mainGen ??= mainGen;
  }

  /** Main (process `mainGen`) holds no fresh credit of this secondary. */
  want(mainGen: number): void {
    if (mainGen !== this.mainGen) {
      this.mainGen = mainGen;
      this.refill = true;
    }
    this.soon();
  }

  /** Sends what is gathered, and the credits due: at once when the last message is older than {@link CREDIT_BATCH_MS}, else at its end. */
  soon(): void {
    if (this.closed) return;
    this.pacer.soon(CREDIT_BATCH_MS);
  }

  /** Sends what is gathered and the credits due, now. */
  flush(): void {
    this.pacer.published();
    if (this.claimTimer) clearTimeout(this.claimTimer);
    this.claimTimer = undefined;
    if (this.gatherTimer) clearTimeout(this.gatherTimer);
    this.gatherTimer = undefined;
    if (this.closed) return;
    const now = this.now();
    const free = Math.max(0, this.o.maxLeases() - this.o.inUse());
    const fresh = this.o.window.fresh(now);
    let n = this.o.stopping() ? 0 : this.refill ? free : Math.max(0, free - fresh);
    // The bound counts the fresh credits only: stale ones (main mints no more from them) stay
    // valid one more lease lifetime, and after a reload that lowered max_leases the stale
    // ones granted under the old limit would otherwise hold back every new credit until
    // they lapse, with capacity free and main answering BUSY.
    n = Math.min(n, Math.max(0, MAX_OUTSTANDING * this.o.maxLeases() - fresh));
    this.refill = false;
    let grant: CreditGrant | undefined = n > 0 ? this.o.window.grant(n, now) : undefined;
    while (grant || this.claimed.size || this.ended.length) {
      const m: Credit = {
        v: 1,
        t: 'credit',
        from: this.o.from,
        gen: this.o.generation,
        seq: grant?.seq ?? this.o.window.nextSeq,
        n: grant?.n ?? 0,
        exp: grant?.exp ?? now,
        claimed: this.takeClaims(),
        ended: this.ended.splice(0, CREDIT_LIST_MAX),
      };
      const sent = grant;
      grant = undefined;
      this.o.send(m).catch((err: DispatchError) => {
        if (sent) this.o.window.revoke(sent, this.now());
        this.o.failed(err);
      });
    }
    this.watchStale();
  }

  /** Grants again when the oldest fresh credits go stale. */
  private watchStale(): void {
    if (this.staleTimer) clearTimeout(this.staleTimer);
    this.staleTimer = undefined;
    const at = this.o.window.nextStale();
    if (this.closed || at === undefined) return;
    this.staleTimer = setTimeout(() => this.flush(), Math.max(1, at - this.now()));
    this.staleTimer.unref?.();
  }

  /** Sends what is gathered (the ends of the last leases), then grants nothing more. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.staleTimer) clearTimeout(this.staleTimer);
    this.pacer.cancel();
  }

  /** The first CREDIT_LIST_MAX claims not yet reported, taken out. */
  private takeClaims(): number[] {
    const out: number[] = [];
    for (const seq of this.claimed) {
      if (out.length === CREDIT_LIST_MAX) break;
      out.push(seq);
      this.claimed.delete(seq);
    }
    return out;
  }
}
