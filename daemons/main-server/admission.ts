/**
 * The admission loop: for each lease request, picks the least-busy live secondaries that serve
 * its type (served-types-index.ts) from the scoreboard (secondary-picker.ts), reserves one
 * over its mailbox (mailbox-rpc.ts), and while
 * all are full waits in the admission queue (admission-queue.ts) up to the queue timeout,
 * then answers BUSY (every secondary full) or UNAVAILABLE (none answered, none running).
 * A secondary that misses a reservation is not chosen for a cool-down of twice the
 * reservation timeout.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { Config } from '../common/config.js';
import { DispatchError, reason } from '../common/errors.js';
import type { IncidentLevel } from '../common/incident-log.js';
import type { LeaseGranted } from '../common/protocol.js';
import type { ScoreboardSnapshot, SlotData } from '../common/scoreboard.js';
import { clientSocketPath, formatDaemonId, secondary } from '../common/topology.js';
import type { AdmissionQueue } from './admission-queue.js';
import type { LeaseLedger } from './lease-ledger.js';
import type { MailboxRpc } from './mailbox-rpc.js';
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
  rpc: Pick<MailboxRpc, 'call'>;
  ledger: LeaseLedger;
  queue: AdmissionQueue;
  /** Whether main is stopping: queued and new requests answer SHUTTING_DOWN. */
  stopping: () => boolean;
  incident: (key: string, message: string, fields: Record<string, unknown>, level?: IncidentLevel) => void;
  /** Called when `queued` changed (main publishes its slot soon). */
  queueChanged: () => void;
  /** Tells whether a pid exists (default: a /proc look-up). */
  processExists?: (pid: number) => boolean;
}

type ReserveOutcome = { kind: 'granted'; lease: string; generation: number } | { kind: 'full' } | { kind: 'gone' };

export class Admission {
  private readonly coolDown = new Map<number, number>();
  private rotation = 0;
  private alive = 0;

  constructor(private readonly o: AdmissionOptions) {}

  /** Live secondaries at the last look at the scoreboard. */
  get secondariesAlive(): number {
    return this.alive;
  }

  private pickOptions(now: number): PickOptions {
    return { now, staleMs: this.o.config().main.heartbeat_stale_ms, coolDown: this.coolDown, rotation: this.rotation, processExists: this.o.processExists ?? processExists };
  }

  /** The live secondaries' slots now. @throws DispatchError SCOREBOARD_*. */
  liveSecondaries(now: number): SlotData[] {
    const live = this.pickOptions(now);
    return this.o.scoreboard.read().slots.filter((x) => isLiveSecondary(x, live));
  }

  /**
   * Each tick: ends cool-downs that are over, re-counts the live secondaries and re-reads the
   * served types of those whose generation changed. @throws DispatchError SCOREBOARD_*.
   */
  refresh(now: number): void {
    for (const [n, until] of this.coolDown) if (until <= now) this.coolDown.delete(n);
    const slots = this.o.scoreboard.read().slots;
    this.alive = pickSecondaries(slots, this.pickOptions(now)).alive;
    this.o.types.sync(slots);
  }

  /** Secondary N (re)started or reloaded: its types are read again, it may be chosen at once, and queued requests look again. */
  secondaryReady(instance: number, generation: number): void {
    this.o.types.refresh(instance, generation);
    this.coolDown.delete(instance);
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
    const live = slots.filter((x) => isLiveSecondary(x, this.pickOptions(Date.now())));
    if (live.length === 0 || !live.every((x) => this.o.types.knows(x.instance, x.generation))) return undefined;
    const known = this.o.types.known();
    throw new DispatchError('UNKNOWN_TYPE', `no secondary serves request type '${type}'; the types served: ${known.join(', ') || 'none'} (dispatchctl types lists the declared ones)`);
  }

  /**
   * Reserves a secondary for one request of `type`, queueing while all are full.
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
        slots = this.o.scoreboard.read().slots;
      } catch (err) {
        throw new DispatchError('UNAVAILABLE', `failed to read the scoreboard: ${reason(err)}`, { cause: err, retryable: true });
      }
      const route = this.route(type, slots);
      const serving = slots.filter((x) => x.kind !== 'secondary' || route?.instances.has(x.instance));
      const { candidates, alive, full } = pickSecondaries(serving, this.pickOptions(Date.now()));
      this.alive = alive;
      this.rotation++;
      for (const c of candidates) {
        const r = await this.reserve(c, type);
        if (r.kind === 'granted') {
          const socket = clientSocketPath(this.o.config().paths.runtime_dir, secondary(c.instance));
          return { ok: true, op: 'lease', secondary: c.instance, socket, lease: r.lease, generation: r.generation, expires_in_ms: this.o.config().main.lease_ttl_ms, type, idempotent: route?.idempotent ?? false };
        }
        if (r.kind === 'full') sawFull = true;
        if (this.o.stopping()) break;
      }
      if (full > 0) sawFull = true;
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.o.queue.full) {
        if (sawFull) {
          throw new DispatchError('BUSY', `every secondary is busy (waited ${queueMs} ms in the admission queue); retry after ${BUSY_RETRY_AFTER_MS} ms`, { retryAfterMs: BUSY_RETRY_AFTER_MS, retryable: true });
        }
        const why = alive > 0 ? `none of the ${alive} running secondaries answered` : 'no secondary server is running';
        throw new DispatchError('UNAVAILABLE', `${why} (waited ${queueMs} ms); check 'systemctl status dispatchd-secondary@*.service'`, { retryable: true });
      }
      this.o.queueChanged();
      await this.o.queue.wait(Math.min(remaining, QUEUE_RECHECK_MS));
      this.o.queueChanged();
    }
  }

  private async reserve(c: Candidate, type: string): Promise<ReserveOutcome> {
    const { reserve_timeout_ms: timeoutMs, lease_ttl_ms: ttlMs } = this.o.config().main;
    const lease = randomBytes(16).toString('hex');
    const target = secondary(c.instance);
    const name = formatDaemonId(target);
    this.o.ledger.record(lease, c.instance);
    let m;
    try {
      m = await this.o.rpc.call(target, { v: 1, t: 'reserve', lease, gen: c.generation, exp: Date.now() + ttlMs, type }, timeoutMs);
    } catch (err) {
      this.o.ledger.forget(lease);
      const de = err as DispatchError;
      this.coolDown.set(c.instance, Date.now() + 2 * timeoutMs);
      this.o.incident(`reserve-write:${c.instance}:${de.code}`, `failed to reserve ${name}: ${de.message}; trying another secondary`, { peer: name, code: de.code }, 'warning');
      return { kind: 'gone' };
    }
    if (m === undefined) {
      this.coolDown.set(c.instance, Date.now() + 2 * timeoutMs);
      this.o.incident(`reserve-timeout:${c.instance}`, `${name} did not answer a reservation within ${timeoutMs} ms; not choosing it for ${2 * timeoutMs} ms, trying another secondary`, { peer: name, code: 'TIMEOUT' }, 'warning');
      return { kind: 'gone' };
    }
    if (m.t === 'reserved') return { kind: 'granted', lease, generation: m.gen };
    this.o.ledger.forget(lease); // refused: no lease, no `done` will come
    // It no longer serves the type (a reload under way): read what it serves now.
    if (m.reason === 'unknown-type') this.o.types.refresh(c.instance, c.generation);
    return { kind: m.reason === 'full' ? 'full' : 'gone' };
  }
}
