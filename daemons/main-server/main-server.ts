/**
 * The main server: accepts clients on its (socket-activated) stream socket, and for each
 * lease request picks the least-busy live secondary from the scoreboard, reserves it over
 * that secondary's mailbox FIFO, waits for the answer on its own mailbox (with a deadline)
 * and answers the client with the secondary's socket and a short-lived lease. It never
 * carries payloads (its frames have no body: the decoder's body limit is 0).
 *
 * docs/PROTOCOL.md describes the exchanges; docs/ARCHITECTURE.md the processes.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { mergeReload, runtimePaths, type Config, type ReloadOutcome } from '../common/config.js';
import { DispatchError, reason } from '../common/errors.js';
import type { FrameConnection } from '../common/frame-connection.js';
import { acceptFramed, listen } from '../common/framed-server.js';
import type { Frame } from '../common/frame.js';
import { IncidentLog, type IncidentLevel } from '../common/incident-log.js';
import type { Logger } from '../common/logger.js';
import { MailboxReader, MailboxWriter } from '../common/mailbox.js';
import type { Done, MailboxMessage, Refused, Reserved } from '../common/messages.js';
import type { Notifier } from '../common/notify.js';
import { describeIssue, errorReply, LeaseRequest, REQUEST_TYPES, type LeaseGranted } from '../common/protocol.js';
import { ScoreboardReader, SlotWriter } from '../common/scoreboard.js';
import { AdmissionQueue } from './admission-queue.js';
import { isLiveSecondary, pickSecondaries, type Candidate } from './secondary-picker.js';

/** While requests wait in the admission queue, the scoreboard is re-read at least this often (ms). */
const QUEUE_RECHECK_MS = 250;
/** What a BUSY answer tells the client to wait before retrying (ms). */
const BUSY_RETRY_AFTER_MS = 250;
/** How long in-flight requests may take to finish on stop (ms); the unit allows more. */
const DRAIN_MS = 1500;
/** How often the heartbeat and STATUS= are refreshed (ms), unless the systemd watchdog wants it sooner. */
const TICK_MS = 1000;
/** Leases reserved by this process remembered, to tell their `done` from adopted ones (bounded). */
const RESERVED_MEMORY = 65_536;
/** `done` messages of adopted leases are reported in one line per this many ms. */
const ADOPTED_REPORT_MS = 1000;

export interface MainServerOptions {
  config: Config;
  logger: Logger;
  notifier: Notifier;
  /** The client socket: an activated listening fd, or a path to bind (tests, development). */
  listen: { fd: number } | { path: string };
  /** This daemon's mailbox FIFO, open for reading. */
  mailboxFd: number;
  /** Random per process; published in the slot. */
  generation: number;
  pid: number;
}

/** Whether a pid exists: a /proc look-up, never a signal. */
function processExists(pid: number): boolean {
  return pid > 0 && fs.existsSync(`/proc/${pid}`);
}

type ReserveOutcome = { kind: 'granted'; lease: string; generation: number } | { kind: 'full' } | { kind: 'gone' };

interface Pending {
  instance: number;
  lease: string;
  resolve: (m: Reserved | Refused | undefined) => void;
  timer: NodeJS.Timeout;
}

export class MainServer {
  private readonly server = net.createServer();
  private readonly reader: MailboxReader;
  private readonly scoreboard: ScoreboardReader;
  private readonly slot: SlotWriter;
  private readonly writers = new Map<string, MailboxWriter>();
  private readonly pending = new Map<string, Pending>();
  private readonly queue: AdmissionQueue;
  private readonly coolDown = new Map<number, number>();
  private readonly connections = new Set<FrameConnection>();
  private readonly incidents: IncidentLog;
  private readonly runtimeDir: string;
  private inflight = 0;
  private rotation = 0;
  private seq = 0;
  private connSeq = 0;
  private stopping = false;
  private publishScheduled = false;
  private secondariesAlive = 0;
  private drained: (() => void) | undefined;
  /** Leases this process reserved and not yet seen end (lease → secondary instance), oldest first. */
  private readonly reserved = new Map<string, number>();
  /** Leases reported ended: reserved by this process, or adopted from an earlier main process. */
  private readonly ended = { own: 0, adopted: 0 };
  /** Adopted leases ended since the last report: they are logged together. */
  private adoptedPending: { leases: number; used: number; requests: number; failed: number; from: Set<string> } | undefined;
  private adoptedTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly o: MainServerOptions) {
    this.runtimeDir = o.config.paths.runtime_dir;
    this.incidents = new IncidentLog(o.logger, () => this.slot.data.incidents++);
    this.queue = new AdmissionQueue(o.config.main.queue_max);
    this.scoreboard = new ScoreboardReader(o.config.paths.scoreboard);
    try {
      this.slot = new SlotWriter(o.config.paths.scoreboard, 'main', 0, { pid: o.pid, generation: o.generation });
      this.slot.publish();
    } catch (err) {
      this.scoreboard.close();
      throw err;
    }
    this.reader = new MailboxReader(o.mailboxFd, runtimePaths.mainMailbox(this.runtimeDir));
    this.reader.on('message', (m) => this.onMessage(m));
    this.reader.on('invalid', (err, preview) => this.incident(`mailbox:${err.code}`, `failed to decode a message in mailbox '${this.reader.label}': ${err.message}, ignoring`, { peer: 'mailbox writer', code: err.code, preview }));
    this.reader.on('error', (err) => this.o.logger.error(err.message, { code: err.code }));
    this.server.on('connection', (s) => this.onConnection(s));
    this.server.on('error', (err) => this.o.logger.error(`failed to accept on the client socket: ${reason(err)}`, { code: 'CONNECT_FAILED' }));
  }

  /**
   * Starts the main server: claims its scoreboard slot, reads its mailbox, listens, then
   * sends READY=1.
   *
   * @throws DispatchError SCOREBOARD_* when the scoreboard is missing or unusable; an Error
   *   from listen(2) when the socket cannot be served.
   */
  static async start(o: MainServerOptions): Promise<MainServer> {
    const m = new MainServer(o);
    try {
      await listen(m.server, o.listen);
    } catch (err) {
      m.release();
      throw err;
    }
    m.slot.update({ state: 'ready', heartbeatMs: Date.now() });
    o.notifier.ready(m.statusLine());
    o.notifier.startTicking((now) => m.tick(now), TICK_MS);
    o.logger.info(`main server ready${m.adoptionNote()}`, { generation: o.generation, starts: m.slot.data.starts });
    return m;
  }

  /**
   * What a restarted main takes over: the secondaries keep running (separate units), their
   * slots carry their load and generation, and the leases they hold stay valid (a lease is
   * bound to the secondary's generation, not to main's).
   */
  private adoptionNote(): string {
    if (this.slot.data.starts <= 1) return '';
    try {
      const live = this.pickOptions(Date.now());
      const running = this.scoreboard.read().slots.filter((x) => isLiveSecondary(x, live));
      const held = running.reduce((n, x) => n + x.active, 0);
      return `; re-adopted the scoreboard (start ${this.slot.data.starts} of this slot): ${running.length} secondaries running (${running.map((x) => `${x.name} generation ${x.generation}`).join(', ') || 'none'}), ${held} leases held, which stay valid`;
    } catch (err) {
      return `; failed to read the scoreboard to re-adopt it: ${reason(err)}, retrying in ${TICK_MS} ms`;
    }
  }

  /** The listening address (for tests that bind a path). */
  address(): string | net.AddressInfo | null {
    return this.server.address();
  }

  private tick(now: number): void {
    for (const [n, until] of this.coolDown) if (until <= now) this.coolDown.delete(n);
    try {
      this.slot.update({ heartbeatMs: now, active: this.inflight, queued: this.queue.length });
      const snap = this.scoreboard.read();
      this.secondariesAlive = pickSecondaries(snap.slots, this.pickOptions(now)).alive;
    } catch (err) {
      this.incident('scoreboard', `failed to refresh the scoreboard: ${reason(err)}, retrying in ${TICK_MS} ms`, { code: err instanceof DispatchError ? err.code : 'SCOREBOARD_IO' });
    }
    this.o.notifier.status(this.statusLine());
  }

  /** Applies a reloaded configuration (all but paths) to the running server. */
  reload(next: Config): ReloadOutcome {
    const { config, outcome } = mergeReload(this.o.config, next);
    this.o.config = config;
    this.queue.max = config.main.queue_max;
    return outcome;
  }

  statusLine(): string {
    const d = this.slot.data;
    const adopted = this.ended.adopted ? `; ${this.ended.adopted} leases of an earlier main process accounted for` : '';
    return `${this.stopping ? 'stopping' : 'ready'}: ${d.requests} leases granted, ${d.failures} refused, ${this.inflight} in progress, ${this.queue.length} queued; ${this.secondariesAlive} secondaries alive${adopted}`;
  }

  private pickOptions(now: number) {
    return { now, staleMs: this.o.config.main.heartbeat_stale_ms, coolDown: this.coolDown, rotation: this.rotation, processExists };
  }

  /** Publishes the slot once per event-loop turn however many counters changed. */
  private markDirty(): void {
    if (this.publishScheduled) return;
    this.publishScheduled = true;
    setImmediate(() => {
      this.publishScheduled = false;
      this.slot.data.active = this.inflight;
      this.slot.data.queued = this.queue.length;
      try {
        this.slot.publish();
      } catch (err) {
        this.incident('scoreboard', `failed to publish to the scoreboard: ${reason(err)}, ignoring`, {});
      }
    });
  }

  private incident(key: string, message: string, fields: Record<string, unknown>, level: IncidentLevel = 'error'): void {
    this.incidents.report(key, level, message, fields);
  }

  // ---- mailbox -------------------------------------------------------------------------

  private onMessage(m: MailboxMessage): void {
    switch (m.t) {
      case 'reserved':
      case 'refused': {
        const p = this.pending.get(m.id);
        if (!p) {
          this.o.logger.debug(`late answer to reservation ${m.id} from ${m.from}, ignoring (its lease expires unclaimed)`, { peer: m.from });
          return;
        }
        if (m.from !== `secondary-${p.instance}` || (m.t === 'reserved' && m.lease !== p.lease)) {
          this.incident(`mismatch:${m.from}`, `answer to reservation ${m.id} came from ${m.from} for another lease, ignoring`, { peer: m.from });
          return;
        }
        p.resolve(m);
        return;
      }
      case 'done':
        this.onDone(m);
        this.queue.wake(1);
        return;
      case 'ready':
        this.coolDown.delete(Number(m.from.slice('secondary-'.length)));
        this.queue.wake();
        return;
      case 'ping':
        this.writer(runtimePaths.watchdogMailbox(this.runtimeDir))
          .send({ v: 1, t: 'pong', from: 'main', seq: m.seq, pid: this.o.pid, gen: this.o.generation })
          .catch((err: DispatchError) => this.incident(`pong:${err.code}`, `failed to answer the watchdog's ping: ${err.message}, ignoring`, { peer: 'watchdog', code: err.code }, 'warning'));
        return;
      default:
        this.incident(`unexpected:${m.t}`, `unexpected '${m.t}' message in main's mailbox, ignoring`, { peer: 'mailbox writer' });
    }
  }

  /**
   * A lease ended. One this process did not reserve was granted by an earlier main process
   * (or this one's predecessor in the slot): its `done` waited in the FIFO while main was down
   * or restarting. It is accounted for here and logged, a batch per line.
   */
  private onDone(m: Done): void {
    if (this.reserved.delete(m.lease)) {
      this.ended.own++;
      return;
    }
    this.ended.adopted++;
    const p = (this.adoptedPending ??= { leases: 0, used: 0, requests: 0, failed: 0, from: new Set() });
    p.leases++;
    if (m.claimed) p.used++;
    p.requests += m.requests;
    p.failed += m.failed;
    p.from.add(m.from);
    this.adoptedTimer ??= setTimeout(() => this.reportAdopted(), ADOPTED_REPORT_MS);
  }

  private reportAdopted(): void {
    this.adoptedTimer = undefined;
    const p = this.adoptedPending;
    this.adoptedPending = undefined;
    if (!p) return;
    this.o.logger.info(`accounted for ${p.leases} leases granted by an earlier main process, ended on ${[...p.from].sort().join(', ')}: ${p.used} used, ${p.requests} requests served, ${p.failed} failed; ${p.leases - p.used} expired unused`, {
      adopted_leases: p.leases,
      adopted_requests: p.requests,
      adopted_failed: p.failed,
    });
  }

  private writer(path: string): MailboxWriter {
    let w = this.writers.get(path);
    if (!w) {
      w = new MailboxWriter(path, { backpressureTimeoutMs: this.o.config.main.reserve_timeout_ms });
      this.writers.set(path, w);
    }
    return w;
  }

  // ---- clients -------------------------------------------------------------------------

  private onConnection(socket: net.Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const peer = `client#${++this.connSeq}`;
    const conn: FrameConnection = acceptFramed(socket, {
      maxBodyBytes: 0, // main never carries payloads
      idleTimeoutMs: this.o.config.main.client_idle_timeout_ms,
      peer,
      incidents: this.incidents,
      logger: this.o.logger,
      onFrame: (c, f) => this.onFrame(c, f, peer),
      onClose: () => {
        this.connections.delete(conn);
        if (this.drained && this.inflight === 0) this.drained();
      },
    });
    this.connections.add(conn);
  }

  private async onFrame(conn: FrameConnection, frame: Frame, peer: string): Promise<void> {
    if (conn.isClosed) return;
    conn.busy();
    // active and the counters reach the scoreboard with the heartbeat (≤ 1 s), not per lease.
    this.inflight++;
    const started = performance.now();
    try {
      const parsed = LeaseRequest.safeParse(frame.header);
      if (!parsed.success) {
        throw new DispatchError('BAD_REQUEST', `bad lease request: ${describeIssue(parsed.error)}`);
      }
      const grant = await this.lease(parsed.data.type, parsed.data.wait_ms);
      this.slot.data.requests++;
      this.slot.addLatency(Math.round((performance.now() - started) * 1000));
      conn.send(grant);
    } catch (err) {
      const de = err instanceof DispatchError ? err : new DispatchError('INTERNAL', `failed to grant a lease: ${reason(err)}`, { cause: err });
      this.slot.data.failures++;
      if (de.code === 'INTERNAL') this.o.logger.error(de.message, { peer, code: de.code, stack: err instanceof Error ? err.stack : undefined });
      else if (de.code === 'UNAVAILABLE' || de.code === 'BUSY') this.incident(`refuse:${de.code}`, `refused a lease to ${peer}: ${de.message}`, { peer, code: de.code }, 'warning');
      conn.send(errorReply(de));
    } finally {
      this.inflight--;
      if (!conn.isClosed) conn.idle();
      if (this.drained && this.inflight === 0) this.drained();
    }
  }

  /**
   * Reserves a secondary for one request of `type`, queueing while all are full.
   *
   * @param waitMs the most the client waits in the queue (capped by queue_timeout_ms).
   * @throws DispatchError UNKNOWN_TYPE, BUSY (with retryAfterMs), UNAVAILABLE, SHUTTING_DOWN.
   */
  private async lease(type: string, waitMs?: number): Promise<LeaseGranted> {
    if (!(REQUEST_TYPES as readonly string[]).includes(type)) {
      throw new DispatchError('UNKNOWN_TYPE', `unknown request type '${type}'; known types: ${REQUEST_TYPES.join(', ')}`);
    }
    const queueMs = Math.min(this.o.config.main.queue_timeout_ms, waitMs ?? Infinity);
    const deadline = Date.now() + queueMs;
    let sawFull = false;
    for (;;) {
      if (this.stopping) throw new DispatchError('SHUTTING_DOWN', 'the main server is stopping; retry', { retryable: true });
      const now = Date.now();
      let candidates: Candidate[];
      let alive: number;
      let full: number;
      try {
        ({ candidates, alive, full } = pickSecondaries(this.scoreboard.read().slots, this.pickOptions(now)));
      } catch (err) {
        throw new DispatchError('UNAVAILABLE', `failed to read the scoreboard: ${reason(err)}`, { cause: err, retryable: true });
      }
      this.secondariesAlive = alive;
      this.rotation++;
      for (const c of candidates) {
        const r = await this.reserve(c);
        if (r.kind === 'granted') {
          return {
            ok: true,
            op: 'lease',
            secondary: c.instance,
            socket: runtimePaths.secondarySocket(this.runtimeDir, c.instance),
            lease: r.lease,
            generation: r.generation,
            expires_in_ms: this.o.config.main.lease_ttl_ms,
          };
        }
        if (r.kind === 'full') sawFull = true;
        if (this.stopping) break;
      }
      if (full > 0) sawFull = true;
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.queue.full) {
        if (sawFull) {
          throw new DispatchError('BUSY', `every secondary is busy (waited ${queueMs} ms in the admission queue); retry after ${BUSY_RETRY_AFTER_MS} ms`, { retryAfterMs: BUSY_RETRY_AFTER_MS, retryable: true });
        }
        const why = alive > 0 ? `none of the ${alive} running secondaries answered` : 'no secondary server is running';
        throw new DispatchError('UNAVAILABLE', `${why} (waited ${queueMs} ms); check 'systemctl status dispatchd-secondary@*.service'`, { retryable: true });
      }
      this.markDirty();
      await this.queue.wait(Math.min(remaining, QUEUE_RECHECK_MS));
      this.markDirty();
    }
  }

  private async reserve(c: Candidate): Promise<ReserveOutcome> {
    const id = `${this.o.generation.toString(16)}-${++this.seq}`;
    const lease = randomBytes(16).toString('hex');
    const timeoutMs = this.o.config.main.reserve_timeout_ms;
    const exp = Date.now() + this.o.config.main.lease_ttl_ms;
    const name = `secondary-${c.instance}`;
    this.reserved.set(lease, c.instance);
    if (this.reserved.size > RESERVED_MEMORY) this.reserved.delete(this.reserved.keys().next().value!);
    const answer = new Promise<Reserved | Refused | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.pending.set(id, {
        instance: c.instance,
        lease,
        timer,
        resolve: (m) => {
          clearTimeout(timer);
          this.pending.delete(id);
          resolve(m);
        },
      });
    });
    try {
      await this.writer(runtimePaths.secondaryMailbox(this.runtimeDir, c.instance)).send({ v: 1, t: 'reserve', id, lease, gen: c.generation, exp });
    } catch (err) {
      this.pending.get(id)?.resolve(undefined);
      this.reserved.delete(lease);
      const de = err as DispatchError;
      this.coolDown.set(c.instance, Date.now() + 2 * timeoutMs);
      this.incident(`reserve-write:${c.instance}:${de.code}`, `failed to reserve ${name}: ${de.message}; trying another secondary`, { peer: name, code: de.code }, 'warning');
      return { kind: 'gone' };
    }
    const m = await answer;
    if (m === undefined) {
      this.coolDown.set(c.instance, Date.now() + 2 * timeoutMs);
      this.incident(`reserve-timeout:${c.instance}`, `${name} did not answer a reservation within ${timeoutMs} ms; not choosing it for ${2 * timeoutMs} ms, trying another secondary`, { peer: name, code: 'TIMEOUT' }, 'warning');
      return { kind: 'gone' };
    }
    if (m.t === 'reserved') return { kind: 'granted', lease, generation: m.gen };
    this.reserved.delete(lease); // refused: no lease, no `done` will come
    if (m.reason === 'full') return { kind: 'full' };
    return { kind: 'gone' };
  }

  // ---- stop ----------------------------------------------------------------------------

  /** Stops accepting, lets in-flight requests finish (≤ 1.5 s), then releases everything. */
  async stop(why: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.o.notifier.stopping(`stopping (${why}): draining ${this.inflight} requests`);
    try {
      this.slot.update({ state: 'stopping' });
    } catch {
      // the scoreboard is gone: nothing to tell readers
    }
    this.server.close();
    this.queue.wake(); // queued requests see `stopping` and answer SHUTTING_DOWN
    if (this.inflight > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, DRAIN_MS);
        this.drained = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    for (const c of this.connections) c.end(200);
    // Accounting: what this process leaves to its successor (docs/ARCHITECTURE.md, "A restart
    // of main loses nothing"). A lease still out ends on its secondary, whose `done` waits in
    // main's FIFO (held by systemd) for the next main process.
    const out = this.reserved.size;
    this.o.logger.info(`${out} of this process's leases not yet ended${out ? ': the next main process accounts for them as their secondaries report' : ''}; ${this.ended.own} ended, ${this.ended.adopted} of an earlier process accounted for`, {
      leases_out: out,
      leases_ended: this.ended.own,
      adopted_leases_total: this.ended.adopted,
    });
    this.release();
  }

  private release(): void {
    if (this.adoptedTimer) clearTimeout(this.adoptedTimer);
    this.reportAdopted();
    for (const p of this.pending.values()) p.resolve(undefined);
    this.queue.clear();
    this.reader.close();
    for (const w of this.writers.values()) w.close();
    this.writers.clear();
    if (this.server.listening) this.server.close();
    try {
      this.slot.update({ state: 'stopped', active: 0, queued: 0, heartbeatMs: Date.now() });
    } catch {
      // the scoreboard was removed first: nothing to publish
    }
    this.slot.close();
    this.scoreboard.close();
  }
}
