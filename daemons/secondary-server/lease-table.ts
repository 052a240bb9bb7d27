/**
 * The leases a secondary has in use. A lease is minted by main from one of this process's
 * credits (docs/PROTOCOL.md §2.2) and checked here with no list of issued leases: its MAC
 * (lease-token.ts), then its sequence in the replay window (credit-window.ts), so it is good
 * once, for this process, its type and until its expiry. The first `run` frame of a
 * connection claims it; later frames on that connection reuse it; it ends when the connection
 * closes. Each refusal carries the kind of bad lease (`fields.lease_fault`) for the log.
 */
import { DispatchError } from '../common/errors.js';
import type { FrameConnection } from '../common/frame-connection.js';
import type { LeaseSigner } from '../common/lease-token.js';
import type { RunRequest } from '../common/protocol.js';
import { SECONDARY_BUSY_RETRY_MS } from '../common/timing.js';
import type { CreditWindow } from './credit-window.js';

export interface Lease {
  token: string;
  seq: number;
  type: string;
  conn: FrameConnection;
  requests: number;
  failed: number;
}

/** Every kind of bad lease, each logged at most once per interval (docs/PROTOCOL.md §2.2). */
export type LeaseFaultKind = 'malformed' | 'old-key' | 'wrong-generation' | 'forged' | 'wrong-type' | 'expired' | 'never-granted' | 'replayed' | 'full';

export interface LeaseTableOptions {
  /** The secondary's name (secondary-N), for messages. */
  name: string;
  /** This process's generation: a lease of another is LEASE_STALE. */
  generation: number;
  signer: LeaseSigner;
  window: CreditWindow;
  /** Called with each sequence claimed, and each lease that ended (after it left the table). */
  onClaim: (seq: number) => void;
  onEnd: (lease: Lease) => void;
}

/** The limits a claim is checked against: max_leases and the type's concurrency. */
export interface ClaimLimits {
  maxLeases: number;
  concurrency: number;
}

function refuse(kind: LeaseFaultKind, code: 'LEASE_UNKNOWN' | 'LEASE_STALE' | 'LEASE_EXPIRED' | 'LEASE_WRONG_TYPE' | 'BUSY', message: string): DispatchError {
  const retry = code === 'LEASE_WRONG_TYPE' ? {} : { retryable: true, ...(code === 'BUSY' ? { retryAfterMs: SECONDARY_BUSY_RETRY_MS } : {}) };
  return new DispatchError(code, message, { ...retry, fields: { lease_fault: kind } });
}

export class LeaseTable {
  private readonly leases = new Set<Lease>();
  private readonly perType = new Map<string, number>();

  constructor(private readonly o: LeaseTableOptions) {}

  /** Leases in use now. */
  get size(): number {
    return this.leases.size;
  }

  /** Leases of one type in use now. */
  countOf(type: string): number {
    return this.perType.get(type) ?? 0;
  }

  private count(type: string, by: number): void {
    const n = (this.perType.get(type) ?? 0) + by;
    if (n > 0) this.perType.set(type, n);
    else this.perType.delete(type);
  }

  /**
   * Finds or claims the lease a run frame presents, at `now` (unix ms).
   * @throws DispatchError LEASE_UNKNOWN, LEASE_STALE, LEASE_EXPIRED, LEASE_WRONG_TYPE (nothing ran,
   *   the lease stays good for its type), BUSY (full: the lease is used up, nothing ran), BAD_REQUEST.
   */
  claim(req: RunRequest, conn: FrameConnection, state: { lease: Lease | undefined }, now: number, limits: ClaimLimits): Lease {
    const ask = 'ask the main server for a new lease';
    if (state.lease) {
      if (req.lease !== state.lease.token) throw new DispatchError('BAD_REQUEST', 'this connection holds another lease; open a new connection for a new lease');
      if (req.type !== state.lease.type) throw refuse('wrong-type', 'LEASE_WRONG_TYPE', `this lease is for '${state.lease.type}' requests, not '${req.type}'; ask the main server for a lease of type '${req.type}'`);
      return state.lease;
    }
    // One parse of the token: the faults in the order of docs/PROTOCOL.md §2.2 (format, key,
    // generation, then what the MAC vouches for).
    const v = this.o.signer.verify(req.lease, req.type, now);
    if (!v.ok && v.fault === 'malformed') throw refuse('malformed', 'LEASE_UNKNOWN', `${this.o.name} holds no such lease: not a lease token of this version (docs/PROTOCOL.md §2.2); ${ask}`);
    if (!v.ok && v.fault === 'old-key') throw refuse('old-key', 'LEASE_STALE', `lease was minted with the key of an earlier start of the suite; ${ask}`);
    if (req.generation !== this.o.generation) {
      throw refuse('wrong-generation', 'LEASE_STALE', `the run frame names generation ${req.generation}, but this is generation ${this.o.generation} of ${this.o.name} (it restarted, or the lease is for another secondary); ${ask}`);
    }
    if (!v.ok) {
      if (v.fault === 'wrong-type') throw refuse('wrong-type', 'LEASE_WRONG_TYPE', `this lease is not for '${req.type}' requests; ask the main server for a lease of type '${req.type}'`);
      if (v.fault === 'expired') throw refuse('expired', 'LEASE_EXPIRED', `lease expired before it was presented (a lease lasts the main server's lease_ttl_ms); ${ask}`);
      throw refuse('forged', 'LEASE_UNKNOWN', `${this.o.name} never issued this lease (its MAC does not match: forged, altered, or for another secondary); ${ask}`);
    }
    const c = this.o.window.claim(v.claims.seq, now);
    if (!c.ok) {
      if (c.fault === 'replayed') throw refuse('replayed', 'LEASE_UNKNOWN', `lease ${v.claims.seq} was already used (a lease is good for one connection); ${ask}`);
      throw refuse('never-granted', 'LEASE_UNKNOWN', `${this.o.name} never granted lease sequence ${v.claims.seq}; ${ask}`);
    }
    this.o.onClaim(v.claims.seq);
    if (this.leases.size >= limits.maxLeases || this.countOf(req.type) >= limits.concurrency) {
      this.o.onEnd({ token: req.lease, seq: v.claims.seq, type: req.type, conn, requests: 0, failed: 0 });
      throw refuse('full', 'BUSY', `${this.o.name} is full (${this.leases.size} leases in use, ${this.countOf(req.type)} of type '${req.type}'); nothing ran: retry after ${SECONDARY_BUSY_RETRY_MS} ms`);
    }
    const lease: Lease = { token: req.lease, seq: v.claims.seq, type: req.type, conn, requests: 0, failed: 0 };
    this.leases.add(lease);
    this.count(req.type, 1);
    state.lease = lease;
    return lease;
  }

  /** Ends a lease (once): its connection closed, or the server stops. */
  end(lease: Lease): void {
    if (!this.leases.delete(lease)) return;
    this.count(lease.type, -1);
    this.o.onEnd(lease);
  }

  /** Ends every lease (stop). */
  endAll(): void {
    for (const lease of [...this.leases]) this.end(lease);
  }
}
