/**
 * The leases a secondary holds: reserved by main (held until their expiry unless claimed),
 * claimed by one connection's first `run` frame, ended when that connection closes. Ended
 * leases are remembered (bounded) to tell LEASE_EXPIRED from LEASE_UNKNOWN.
 */
import { DispatchError } from '../common/errors.js';
import type { FrameConnection } from '../common/frame-connection.js';
import type { RunRequest } from '../common/protocol.js';

/** How many ended leases are remembered, to tell "expired" from "unknown" (bounded). */
const TOMBSTONES = 4096;

export interface Lease {
  token: string;
  /** The request type it is for; undefined only for a reservation of a dispatchd 0.1 main (bound at its first run). */
  type: string | undefined;
  expiresAt: number;
  timer: NodeJS.Timeout | undefined;
  conn: FrameConnection | undefined;
  requests: number;
  failed: number;
}

export interface LeaseTableOptions {
  /** The secondary's name (secondary-N), for messages. */
  name: string;
  /** This process's generation: a lease of another is LEASE_STALE. */
  generation: number;
  /** Called once for each lease that ends, after it left the table. */
  onEnd: (lease: Lease) => void;
}

export class LeaseTable {
  private readonly leases = new Map<string, Lease>();
  private readonly tombstones = new Map<string, 'expired' | 'ended'>();
  private readonly perType = new Map<string, number>();

  constructor(private readonly o: LeaseTableOptions) {}

  /** Leases held now (reserved or in use). */
  get size(): number {
    return this.leases.size;
  }

  has(token: string): boolean {
    return this.leases.has(token);
  }

  /** Leases of one type held now (reserved or in use). */
  countOf(type: string): number {
    return this.perType.get(type) ?? 0;
  }

  /** Holds a reserved lease for `type` until `expiresAt` (unix ms) unless it is claimed first. */
  hold(token: string, type: string | undefined, expiresAt: number, now: number): Lease {
    const lease: Lease = { token, type, expiresAt, timer: undefined, conn: undefined, requests: 0, failed: 0 };
    lease.timer = setTimeout(() => this.expire(lease), expiresAt - now);
    this.leases.set(token, lease);
    this.count(type, 1);
    return lease;
  }

  private count(type: string | undefined, by: number): void {
    if (type === undefined) return;
    const n = (this.perType.get(type) ?? 0) + by;
    if (n > 0) this.perType.set(type, n);
    else this.perType.delete(type);
  }

  /** @throws DispatchError LEASE_WRONG_TYPE when a run frame's type is not its lease's (nothing runs, the lease stays). */
  private checkType(lease: Lease, req: RunRequest): void {
    if (lease.type !== undefined && req.type !== lease.type) {
      throw new DispatchError('LEASE_WRONG_TYPE', `this lease is for '${lease.type}' requests, not '${req.type}'; ask the main server for a lease of type '${req.type}'`);
    }
  }

  /** Finds and claims the lease a run frame presents. @throws DispatchError LEASE_*, BAD_REQUEST. */
  claim(req: RunRequest, conn: FrameConnection, state: { lease: Lease | undefined }): Lease {
    if (state.lease) {
      if (req.lease !== state.lease.token) throw new DispatchError('BAD_REQUEST', 'this connection holds another lease; open a new connection for a new lease');
      this.checkType(state.lease, req);
      return state.lease;
    }
    if (req.generation !== this.o.generation) {
      throw new DispatchError('LEASE_STALE', `lease was issued for generation ${req.generation}, but this is generation ${this.o.generation} of ${this.o.name} (it restarted, or the lease is for another secondary); ask the main server for a new lease`, { retryable: true });
    }
    const lease = this.leases.get(req.lease);
    if (!lease) {
      if (this.tombstones.get(req.lease) === 'expired') {
        throw new DispatchError('LEASE_EXPIRED', `lease expired before it was presented (an unclaimed lease lasts the main server's lease_ttl_ms); ask the main server for a new lease`, { retryable: true });
      }
      throw new DispatchError('LEASE_UNKNOWN', `${this.o.name} holds no such lease (already used, or never issued); ask the main server for a new lease`, { retryable: true });
    }
    if (lease.conn) throw new DispatchError('LEASE_UNKNOWN', 'lease is already in use by another connection; ask the main server for a new lease', { retryable: true });
    this.checkType(lease, req);
    if (lease.type === undefined) {
      lease.type = req.type; // a dispatchd 0.1 main's reservation: bound by its first run
      this.count(lease.type, 1);
    }
    if (lease.timer) clearTimeout(lease.timer);
    lease.timer = undefined;
    lease.conn = conn;
    state.lease = lease;
    return lease;
  }

  private expire(lease: Lease): void {
    lease.timer = undefined;
    if (lease.conn || !this.leases.has(lease.token)) return;
    this.end(lease, 'expired');
  }

  /** Ends a lease (once): its connection closed, or it expired unclaimed. */
  end(lease: Lease, how: 'expired' | 'ended'): void {
    if (!this.leases.delete(lease.token)) return;
    this.count(lease.type, -1);
    if (lease.timer) clearTimeout(lease.timer);
    this.tombstones.set(lease.token, how);
    if (this.tombstones.size > TOMBSTONES) this.tombstones.delete(this.tombstones.keys().next().value!);
    this.o.onEnd(lease);
  }

  /** Ends every lease (stop): a claimed one as ended, an unclaimed one as expired. */
  endAll(): void {
    for (const lease of [...this.leases.values()]) this.end(lease, lease.conn ? 'ended' : 'expired');
  }
}
