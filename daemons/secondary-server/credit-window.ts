/**
 * A secondary's credits and their replay window (docs/PROTOCOL.md §2.2). A credit is one lease
 * sequence number handed to main in a batch; main mints one lease from each. The window
 * remembers which granted sequences are still unused, so a lease is claimed once: a sequence
 * never granted, or granted and already used (or lapsed), is refused.
 *
 * Time, per batch: a credit is *fresh* for `freshMs` after its grant (main mints from it only
 * then, so every lease gets its full lifetime), and *valid* until `validMs` after the grant
 * (a lease minted from it expires no later). The secondary keeps enough fresh credits at main
 * to cover its free capacity, and grants again as credits are used or go stale.
 */

/** One batch of credits: sequences `seq` … `seq + n − 1`, valid until `exp` (unix ms). */
export interface CreditGrant {
  seq: number;
  n: number;
  exp: number;
}

/** Why a sequence cannot be claimed: never handed out, or already used (or lapsed unused). */
export type ClaimFault = 'never-granted' | 'replayed';

interface Batch {
  first: number;
  n: number;
  freshUntil: number;
  until: number;
  unused: number;
  stale: boolean;
}

export class CreditWindow {
  private next = 1;
  /** Unused sequences → their batch. */
  private readonly unused = new Map<number, Batch>();
  /** Batches in grant order: `[staleAt, …)` are still fresh; `[head, …)` still valid. */
  private readonly batches: Batch[] = [];
  private head = 0;
  private staleAt = 0;
  private freshCount = 0;

  /** @param freshMs how long a credit is fresh (ms); @param validMs how long it is valid (ms, ≥ freshMs). */
  constructor(private readonly freshMs: number, private readonly validMs: number) {}

  /** Unused credits that are still fresh at `now` (what main can mint from). */
  fresh(now: number): number {
    this.age(now);
    return this.freshCount;
  }

  /** Unused credits still valid (the window's size). */
  get size(): number {
    return this.unused.size;
  }

  /** The next sequence to be granted. */
  get nextSeq(): number {
    return this.next;
  }

  /** When the oldest fresh batch goes stale (unix ms), or undefined when none is fresh. */
  nextStale(): number | undefined {
    return this.batches[this.staleAt]?.freshUntil;
  }

  /** Hands out `n` new sequences at `now`. */
  grant(n: number, now: number): CreditGrant {
    this.age(now);
    const b: Batch = { first: this.next, n, freshUntil: now + this.freshMs, until: now + this.validMs, unused: n, stale: false };
    for (let s = b.first; s < b.first + n; s++) this.unused.set(s, b);
    this.next += n;
    this.batches.push(b);
    this.freshCount += n;
    return { seq: b.first, n, exp: b.until };
  }

  /** Takes back a grant that never reached main (its message could not be written). */
  revoke(g: CreditGrant, now: number): void {
    this.age(now);
    for (let s = g.seq; s < g.seq + g.n; s++) this.use(s, now);
  }

  /** Claims sequence `seq` at `now`: it is good once. */
  claim(seq: number, now: number): { ok: true } | { ok: false; fault: ClaimFault } {
    this.age(now);
    if (seq < 1 || seq >= this.next) return { ok: false, fault: 'never-granted' };
    if (!this.use(seq, now)) return { ok: false, fault: 'replayed' };
    return { ok: true };
  }

  private use(seq: number, now: number): boolean {
    const b = this.unused.get(seq);
    if (!b || b.until < now) return false;
    this.unused.delete(seq);
    b.unused--;
    if (!b.stale) this.freshCount--;
    return true;
  }

  /** Moves batches past their fresh time out of the fresh count, and drops lapsed ones. */
  private age(now: number): void {
    while (this.staleAt < this.batches.length && this.batches[this.staleAt]!.freshUntil <= now) {
      const b = this.batches[this.staleAt++]!;
      b.stale = true;
      this.freshCount -= b.unused;
    }
    while (this.head < this.staleAt && this.batches[this.head]!.until < now) {
      const b = this.batches[this.head++]!;
      if (b.unused > 0) for (let s = b.first; s < b.first + b.n; s++) this.unused.delete(s);
    }
    if (this.head > 1024 && this.head * 2 > this.batches.length) {
      this.batches.splice(0, this.head);
      this.staleAt -= this.head;
      this.head = 0;
    }
  }
}
