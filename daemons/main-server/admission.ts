/**
 * The admission loop: for each lease request, picks the least-busy live secondaries that serve
 * its type (served-types-index.ts) from the scoreboard (secondary-picker.ts) and mints a lease
 * from a credit the first of them granted (credit-pool.ts; docs/PROTOCOL.md §2.2): no message
 * to the secondary on the way. While none has a credit left it waits in the admission queue
 * (admission-queue.ts, woken by each `credit` message) up to the queue timeout, then answers
 * BUSY (secondaries running, their credits all in use) or UNAVAILABLE (none running, or none
 * of those running ever granted credits). A live secondary whose credits main lacks is asked
 * for some (`want`), at most once per `reserve_timeout_ms`.
 */
import fs from 'node:fs';
import type { Config } from '../common/config.js';
import { DispatchError, reason } from '../common/errors.js';
import type { IncidentLevel } from '../common/incident-log.js';
import type { LeaseGranted } from '../common/protocol.js';
import type { SlotData } from '../common/scoreboard-layout.js';
import type { ScoreboardSnapshot } from '../common/scoreboard-reader.js';
import { SCOREBOARD_REUSE_MS } from '../common/timing.js';
import { clientSocketPath, formatDaemonId, secondary } from '../common/topology.js';
import type { AdmissionQueue } from './admission-queue.js';
import type { CreditPool } from './credit-pool.js';
import type { LeaseLedger } from './lease-ledger.js';
import { isLiveSecondary, pickSecondaries, type Candidate, type PickOptions } from './secondary-picker.js';
import type { TypeRoute } from './served-types-index.js';

/** While requests wait in the admission queue, the scoreboard is re-read at least this often (ms). */
export const QUEUE_RECHECK_MS = 250;
/** What a BUSY answer tells the client to wait before retrying (ms). */
export const BUSY_RETRY_AFTER_MS = 250;

/** Whether a pid exists: a /proc look-up, never a signal. */
function processExists(pid: number): boolean {
  return pid > 0 && fs.existsSync(`/proc/${pid}`);
}

/** The scoreboard as main reads it (ScoreboardReader). */
export interface ScoreboardPort {
  /** @throws DispatchError SCOREBOARD_* when it cannot be read. */
  read(): ScoreboardSnapshot;
  close(): void;
}

/** Which secondaries serve which type (ServedTypesIndex). */
export interface TypeRoutesPort {
  lookup(type: string): TypeRoute | undefined;
  known(): string[];
  sync(slots: readonly SlotData[]): void;
  syncForUnknown(slots: readonly SlotData[]): void;
  refresh(instance: number, generation: number): void;
  /** Whether what secondary N of this generation serves is known. */
  knows(instance: number, generation: number): boolean;
}

export interface AdmissionOptions {
  config: () => Config;
  types: TypeRoutesPort;
  scoreboard: ScoreboardPort;
  /** The credits the secondaries granted. */
  pool: CreditPool;
  /** Asks secondary N (of this generation) for credits: a `want` on its mailbox, errors handled by the caller. */
  want: (instance: number, generation: number) => void;
  ledger: LeaseLedger;
  queue: AdmissionQueue;
  /** Whether main is stopping: queued and new requests answer SHUTTING_DOWN. */
  stopping: () => boolean;
  incident: (key: string, message: string, fields: Record<string, unknown>, level?: IncidentLevel) => void;
  /** Called when `queued` changed (main publishes its slot soon). */
  queueChanged: () => void;
  /** Tells whether a pid exists (default: a /proc look-up). */
  processExists?: (pid: number) => boolean;
  /** The clock that ages the scoreboard snapshot (unix ms; default Date.now). */
  now?: () => number;
}

export class Admission {
  private rotation = 0;
  private alive = 0;
  /** The last read of the scoreboard (unix ms), reused for SCOREBOARD_REUSE_MS. */
  private snapshot: { at: number; slots: SlotData[] } | undefined;

  constructor(private readonly o: AdmissionOptions) {}

  /** Live secondaries at the last tick, or the last lease that found none with a credit. */
  get secondariesAlive(): number {
    return this.alive;
  }

  private pickOptions(now: number): PickOptions {
    return { now, staleMs: this.o.config().main.heartbeat_stale_ms, rotation: this.rotation, processExists: this.o.processExists ?? processExists };
  }

  /** The live secondaries' slots now. @throws DispatchError SCOREBOARD_*. */
  liveSecondaries(now: number): SlotData[] {
    const live = this.pickOptions(now);
    return this.o.scoreboard.read().slots.filter((x) => isLiveSecondary(x, live));
  }

  /**
   * Each tick: re-counts the live secondaries, re-reads the served types of those whose
   * generation changed, forgets the credits of stopped or restarted ones, asks those whose
   * credits main lacks for some (`want`), and forgets minted leases that expired unclaimed.
   * @throws DispatchError SCOREBOARD_*.
   */
  refresh(now: number): void {
    const slots = this.read(now);
    const options = this.pickOptions(now);
    const live = slots.filter((x) => isLiveSecondary(x, options));
    this.alive = live.length;
    this.o.types.sync(slots);
    this.o.pool.keepOnly(new Map(live.map((x) => [x.instance, x.generation])));
    for (const x of live) this.askIfDue(x.instance, x.generation, now);
    this.o.ledger.sweep(now);
  }

  /** Asks secondary N for credits when main has none of it and has not asked lately. */
  private askIfDue(instance: number, generation: number, now: number): void {
    const { lease_ttl_ms: ttl, reserve_timeout_ms: interval } = this.o.config().main;
    if (this.o.pool.shouldWant(instance, generation, now, ttl, interval)) this.o.want(instance, generation);
  }

  /** The scoreboard's slots, read afresh at `now` (unix ms). @throws DispatchError SCOREBOARD_*. */
  private read(now: number): SlotData[] {
    this.snapshot = undefined;
    const slots = this.o.scoreboard.read().slots;
    this.snapshot = { at: now, slots };
    return slots;
  }

  /** The slots of a read at most SCOREBOARD_REUSE_MS old, else read afresh. @throws DispatchError SCOREBOARD_*. */
  private slots(now: number): SlotData[] {
    const s = this.snapshot;
    return s && now - s.at < SCOREBOARD_REUSE_MS && now >= s.at ? s.slots : this.read(now);
  }

  /** A `credit` from secondary N of `generation`: when the last read shows another process of it, the next lease reads the scoreboard afresh. */
  creditFrom(instance: number, generation: number): void {
    const slot = this.snapshot?.slots.find((x) => x.kind === 'secondary' && x.instance === instance);
    if (slot && slot.generation !== generation) this.snapshot = undefined;
  }

  /** Secondary N (re)started or reloaded: its types are read again, it may be chosen at once, and queued requests look again. */
  secondaryReady(instance: number, generation: number): void {
    this.snapshot = undefined;
    this.o.types.refresh(instance, generation);
    this.o.queue.wake();
  }

  /**
   * Who serves `type`; a type no known secondary serves makes the index look again (rate
   * limited). It is UNKNOWN_TYPE, with nothing reserved, only when every running secondary
   * has published what it serves; while one has not (the suite is starting, a secondary
   * restarting), the type may yet appear: undefined, and the request waits as for a full suite.
   * @throws DispatchError UNKNOWN_TYPE.
   */
  private route(type: string, slots: readonly SlotData[]): TypeRoute | undefined {
    let route = this.o.types.lookup(type);
    if (!route) {
      this.o.types.syncForUnknown(slots);
      route = this.o.types.lookup(type);
    }
    if (route) return route;
    const options = this.pickOptions(Date.now());
    const live = slots.filter((x) => isLiveSecondary(x, options));
    if (live.length === 0 || !live.every((x) => this.o.types.knows(x.instance, x.generation))) return undefined;
    const known = this.o.types.known();
    throw new DispatchError('UNKNOWN_TYPE', `no secondary serves request type '${type}'; the types served: ${known.join(', ') || 'none'} (dispatchctl types lists the declared ones)`);
  }

  /**
   * Mints a lease for one request of `type` on the least-busy secondary with a credit,
   * queueing while none has one.
   *
   * @param waitMs the most the client waits in the queue (capped by queue_timeout_ms).
   * @throws DispatchError UNKNOWN_TYPE, BUSY (with retryAfterMs), UNAVAILABLE, SHUTTING_DOWN.
   */
  async lease(type: string, waitMs?: number): Promise<LeaseGranted> {
    const config = this.o.config();
    const queueMs = Math.min(config.main.queue_timeout_ms, waitMs ?? Infinity);
    const deadline = Date.now() + queueMs;
    let sawFull = false;
    for (;;) {
      if (this.o.stopping()) throw new DispatchError('SHUTTING_DOWN', 'the main server is stopping; retry', { retryable: true });
      let slots: SlotData[];
      try {
        slots = this.slots(this.o.now?.() ?? Date.now());
      } catch (err) {
        throw new DispatchError('UNAVAILABLE', `failed to read the scoreboard: ${reason(err)}`, { cause: err, retryable: true });
      }
      const route = this.route(type, slots);
      const serving = slots.filter((x) => x.kind !== 'secondary' || route?.instances.has(x.instance));
      const now = Date.now();
      // The /proc look-up only for the candidates tried, in order (one per lease while the
      // first has credits), not for every slot: a killed secondary is still skipped at once.
      const exists = this.o.processExists ?? processExists;
      const { candidates } = pickSecondaries(serving, { ...this.pickOptions(now), processExists: undefined });
      this.rotation++;
      for (const c of candidates) {
        if (!exists(c.pid)) continue;
        const m = this.mint(c, type, now);
        if (m) {
          const socket = clientSocketPath(config.paths.runtime_dir, secondary(c.instance));
          return { ok: true, op: 'lease', secondary: c.instance, socket, lease: m, generation: c.generation, expires_in_ms: config.main.lease_ttl_ms, type, idempotent: route?.idempotent ?? false };
        }
        // Out of credits: busy if it ever granted this main some (they are in use), else not answering (yet).
        if (this.o.pool.heard(c.instance, c.generation)) sawFull = true;
        this.askIfDue(c.instance, c.generation, now);
      }
      // None had a credit: the counts of the error and the status line, with every process looked up.
      const counted = pickSecondaries(serving, this.pickOptions(now));
      this.alive = counted.alive;
      if (counted.full > 0) sawFull = true;
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.o.queue.full) {
        if (sawFull) {
          throw new DispatchError('BUSY', `every secondary is busy (waited ${queueMs} ms in the admission queue); retry after ${BUSY_RETRY_AFTER_MS} ms`, { retryAfterMs: BUSY_RETRY_AFTER_MS, retryable: true });
        }
        const why = counted.alive > 0 ? `none of the ${counted.alive} running secondaries has granted this main credits (asked with \`want\`)` : 'no secondary server is running';
        throw new DispatchError('UNAVAILABLE', `${why} (waited ${queueMs} ms); check 'systemctl status dispatchd-secondary@*.service'`, { retryable: true });
      }
      this.o.queueChanged();
      await this.o.queue.wait(Math.min(remaining, QUEUE_RECHECK_MS));
      this.o.queueChanged();
      this.snapshot = undefined; // what woke it (credits, a secondary ready, the recheck) may have changed the slots
    }
  }

  /** A lease of secondary `c` from one of its credits, recorded in the ledger; undefined when main holds none. */
  private mint(c: Candidate, type: string, now: number): string | undefined {
    const ttl = this.o.config().main.lease_ttl_ms;
    const m = this.o.pool.mint(c.instance, c.generation, type, now, ttl);
    if (!m) return undefined;
    this.o.ledger.record(formatDaemonId(secondary(c.instance)), c.generation, m.seq, m.exp);
    return m.lease;
  }
}
