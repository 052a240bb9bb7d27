/**
 * Secondary server N: holds reservations made by main over its mailbox FIFO (bounded by
 * `max_leases`), checks the lease a client presents on its stream socket, runs the request
 * with a deadline, and reports each lease's end to main's mailbox.
 *
 * A lease is good once, for one connection: the first `run` frame claims it, later frames on
 * the same connection reuse it, and it ends when that connection closes (or, unclaimed, at
 * its expiry). It is bound to this process's generation: a lease issued for an earlier
 * process of secondary N is refused as LEASE_STALE.
 */
import net from 'node:net';
import { mergeReload, runtimePaths, type Config, type ReloadOutcome } from '../common/config.js';
import { DispatchError, reason } from '../common/errors.js';
import type { FrameConnection } from '../common/frame-connection.js';
import { acceptFramed, listen } from '../common/framed-server.js';
import type { Frame } from '../common/frame.js';
import { IncidentLog, type IncidentLevel } from '../common/incident-log.js';
import type { Logger } from '../common/logger.js';
import { MailboxReader, MailboxWriter } from '../common/mailbox.js';
import type { MailboxMessage, Reserve } from '../common/messages.js';
import type { Notifier } from '../common/notify.js';
import { describeIssue, errorReply, parseRunRequest, REQUEST_TYPES, type RequestType, type RunRequest, type RunResult } from '../common/protocol.js';
import { SlotWriter } from '../common/scoreboard.js';
import { HANDLERS, WAITING_TYPES } from './request-types.js';

const DRAIN_MS = 1500;
/** After the drain, how long requests cut off with SHUTTING_DOWN get to send that answer (ms). */
const CUT_OFF_MS = 200;
const TICK_MS = 1000;
/** How many ended leases are remembered, to tell "expired" from "unknown" (bounded). */
const TOMBSTONES = 4096;
/** The signal handed to handlers that finish within one turn (never aborted). */
const NO_DEADLINE = new AbortController().signal;
/** Request counters are published at most once per this many ms (see publishCountersSoon). */
const COUNTERS_PUBLISH_MS = 5;

export interface SecondaryServerOptions {
  config: Config;
  logger: Logger;
  notifier: Notifier;
  instance: number;
  listen: { fd: number } | { path: string };
  mailboxFd: number;
  generation: number;
  pid: number;
}

interface Lease {
  token: string;
  expiresAt: number;
  timer: NodeJS.Timeout | undefined;
  conn: FrameConnection | undefined;
  requests: number;
  failed: number;
}

export class SecondaryServer {
  private readonly server = net.createServer();
  private readonly reader: MailboxReader;
  private readonly slot: SlotWriter;
  private readonly leases = new Map<string, Lease>();
  private readonly tombstones = new Map<string, 'expired' | 'ended'>();
  private readonly connections = new Set<FrameConnection>();
  private readonly incidents: IncidentLog;
  private readonly mainMailbox: MailboxWriter;
  private readonly watchdogMailbox: MailboxWriter;
  private readonly name: string;
  private running = 0;
  /** The abort controllers of the requests running now: stop() cuts off what outlives the drain. */
  private readonly inProgress = new Set<AbortController>();
  private countersTimer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private lastPublishMs = 0;
  private connSeq = 0;
  private stopping = false;
  private drained: (() => void) | undefined;

  private constructor(private readonly o: SecondaryServerOptions) {
    this.name = `secondary-${o.instance}`;
    this.incidents = new IncidentLog(o.logger, () => this.slot.data.incidents++);
    const dir = o.config.paths.runtime_dir;
    this.slot = new SlotWriter(o.config.paths.scoreboard, 'secondary', o.instance, { pid: o.pid, generation: o.generation, capacity: o.config.secondary.max_leases });
    this.slot.publish();
    this.mainMailbox = new MailboxWriter(runtimePaths.mainMailbox(dir));
    this.watchdogMailbox = new MailboxWriter(runtimePaths.watchdogMailbox(dir));
    this.reader = new MailboxReader(o.mailboxFd, runtimePaths.secondaryMailbox(dir, o.instance));
    this.reader.on('message', (m) => this.onMessage(m));
    this.reader.on('invalid', (err, preview) => this.incident(`mailbox:${err.code}`, `failed to decode a message in mailbox '${this.reader.label}': ${err.message}, ignoring`, { peer: 'mailbox writer', code: err.code, preview }));
    this.reader.on('error', (err) => o.logger.error(err.message, { code: err.code }));
    this.server.on('connection', (s) => this.onConnection(s));
    this.server.on('error', (err) => o.logger.error(`failed to accept on the client socket: ${reason(err)}`, { code: 'CONNECT_FAILED' }));
  }

  /**
   * Starts secondary N: claims its slot, listens, sends READY=1 and tells main it is ready.
   * @throws DispatchError SCOREBOARD_* or CONNECT_FAILED.
   */
  static async start(o: SecondaryServerOptions): Promise<SecondaryServer> {
    const s = new SecondaryServer(o);
    try {
      await listen(s.server, o.listen);
    } catch (err) {
      s.release();
      throw err;
    }
    s.slot.update({ state: 'ready', heartbeatMs: Date.now() });
    o.notifier.ready(s.statusLine());
    o.notifier.startTicking((now) => s.tick(now), TICK_MS);
    s.mainMailbox.send({ v: 1, t: 'ready', from: s.name, gen: o.generation }).catch((err: DispatchError) => {
      // main is not running yet: it reads the scoreboard when it starts
      o.logger.debug(`failed to tell main that ${s.name} is ready: ${err.message}, ignoring`, { code: err.code });
    });
    o.logger.info(`${s.name} ready`, { generation: o.generation, max_leases: o.config.secondary.max_leases });
    return s;
  }

  address(): string | net.AddressInfo | null {
    return this.server.address();
  }

  private tick(now: number): void {
    try {
      this.slot.update({ heartbeatMs: now });
    } catch (err) {
      this.incident('scoreboard', `failed to publish the heartbeat: ${reason(err)}, retrying in ${TICK_MS} ms`, {});
    }
    this.o.notifier.status(this.statusLine());
  }

  /** Applies a reloaded configuration (all but paths): new limits hold for new leases and requests. */
  reload(next: Config): ReloadOutcome {
    const { config, outcome } = mergeReload(this.o.config, next);
    this.o.config = config;
    this.slot.data.capacity = config.secondary.max_leases;
    this.publishNow();
    return outcome;
  }

  statusLine(): string {
    const d = this.slot.data;
    return `${this.stopping ? 'stopping' : 'ready'}: ${this.leases.size}/${this.o.config.secondary.max_leases} leases, ${this.running} running, ${d.requests} served, ${d.failures} failed`;
  }

  private stateFor(): 'ready' | 'busy' | 'full' | 'stopping' {
    if (this.stopping) return 'stopping';
    if (this.leases.size === 0) return 'ready';
    return this.leases.size >= this.o.config.secondary.max_leases ? 'full' : 'busy';
  }

  /**
   * Publishes the counters after a request: on the next turn when the last publish is older
   * than {@link COUNTERS_PUBLISH_MS}, else once at the end of that interval. A request seen
   * alone is counted before its client can look (as before), while a busy lease costs at most
   * one publish (three pwrite(2)s, docs/SCOREBOARD.md §4) per interval, not one per request.
   */
  private publishCountersSoon(): void {
    if (this.countersTimer) return;
    const wait = this.lastPublishMs + COUNTERS_PUBLISH_MS - performance.now();
    const run = () => {
      this.countersTimer = undefined;
      this.publishNow();
    };
    this.countersTimer = wait <= 0 ? setImmediate(run) : setTimeout(run, wait);
  }

  private cancelCountersPublish(): void {
    if (!this.countersTimer) return;
    clearTimeout(this.countersTimer as NodeJS.Timeout);
    clearImmediate(this.countersTimer as NodeJS.Immediate);
    this.countersTimer = undefined;
  }

  /** Publishes the slot now (lease changes: main reads them to choose). */
  private publishNow(): void {
    this.lastPublishMs = performance.now();
    this.cancelCountersPublish(); // this publish carries the counters too
    this.slot.data.active = this.leases.size;
    this.slot.data.running = this.running;
    this.slot.data.state = this.stateFor();
    try {
      this.slot.publish();
    } catch (err) {
      this.incident('scoreboard', `failed to publish to the scoreboard: ${reason(err)}, ignoring`, {});
    }
  }

  private incident(key: string, message: string, fields: Record<string, unknown>, level: IncidentLevel = 'error'): void {
    this.incidents.report(key, level, message, { secondary: this.name, ...fields });
  }

  private toMain(m: MailboxMessage): void {
    this.mainMailbox.send(m).catch((err: DispatchError) => {
      this.incident(`main:${err.code}`, `failed to send '${m.t}' to main: ${err.message}, ignoring`, { peer: 'main', code: err.code }, 'warning');
    });
  }

  // ---- mailbox -------------------------------------------------------------------------

  private onMessage(m: MailboxMessage): void {
    switch (m.t) {
      case 'reserve':
        this.onReserve(m);
        return;
      case 'ping':
        this.watchdogMailbox.send({ v: 1, t: 'pong', from: this.name, seq: m.seq, pid: this.o.pid, gen: this.o.generation }).catch((err: DispatchError) => {
          this.incident(`pong:${err.code}`, `failed to answer the watchdog's ping: ${err.message}, ignoring`, { peer: 'watchdog', code: err.code }, 'warning');
        });
        return;
      default:
        this.incident(`unexpected:${m.t}`, `unexpected '${m.t}' message in ${this.name}'s mailbox, ignoring`, { peer: 'mailbox writer' });
    }
  }

  private onReserve(m: Reserve): void {
    const now = Date.now();
    const refuse = (why: 'full' | 'stopping' | 'stale-generation' | 'expired') => this.toMain({ v: 1, t: 'refused', id: m.id, from: this.name, gen: this.o.generation, reason: why });
    if (this.stopping) return refuse('stopping');
    if (m.gen !== this.o.generation) return refuse('stale-generation');
    if (m.exp <= now) return refuse('expired'); // written before this process started
    // A lease is held at most lease_ttl_ms unclaimed, whatever `exp` says: a bad or forged
    // reservation cannot pin capacity for long.
    const expiresAt = Math.min(m.exp, now + this.o.config.main.lease_ttl_ms);
    if (this.leases.size >= this.o.config.secondary.max_leases) return refuse('full');
    if (this.leases.has(m.lease)) return refuse('expired');
    const lease: Lease = { token: m.lease, expiresAt, timer: undefined, conn: undefined, requests: 0, failed: 0 };
    lease.timer = setTimeout(() => this.expire(lease), expiresAt - now);
    this.leases.set(m.lease, lease);
    this.publishNow(); // before answering, so main's next choice sees the load
    this.toMain({ v: 1, t: 'reserved', id: m.id, from: this.name, gen: this.o.generation, lease: m.lease });
  }

  private expire(lease: Lease): void {
    lease.timer = undefined;
    if (lease.conn || !this.leases.has(lease.token)) return;
    this.endLease(lease, 'expired');
  }

  private endLease(lease: Lease, how: 'expired' | 'ended'): void {
    if (!this.leases.delete(lease.token)) return;
    if (lease.timer) clearTimeout(lease.timer);
    this.tombstones.set(lease.token, how);
    if (this.tombstones.size > TOMBSTONES) this.tombstones.delete(this.tombstones.keys().next().value!);
    this.publishNow();
    this.toMain({ v: 1, t: 'done', from: this.name, gen: this.o.generation, lease: lease.token, claimed: lease.conn !== undefined, requests: lease.requests, failed: lease.failed });
  }

  // ---- clients -------------------------------------------------------------------------

  private onConnection(socket: net.Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const peer = `client#${++this.connSeq}`;
    const state: { lease: Lease | undefined } = { lease: undefined };
    const conn: FrameConnection = acceptFramed(socket, {
      maxBodyBytes: this.o.config.secondary.max_payload_bytes,
      idleTimeoutMs: this.o.config.secondary.client_idle_timeout_ms,
      peer,
      incidents: this.incidents,
      logger: this.o.logger,
      onFrame: (c, f) => this.onFrame(c, f, peer, state),
      onClose: () => {
        this.connections.delete(conn);
        if (state.lease) this.endLease(state.lease, 'ended');
      },
    });
    this.connections.add(conn);
  }

  /** Finds and claims the lease a run frame presents. @throws DispatchError LEASE_*, BAD_REQUEST. */
  private claim(req: RunRequest, conn: FrameConnection, state: { lease: Lease | undefined }): Lease {
    if (state.lease) {
      if (req.lease !== state.lease.token) throw new DispatchError('BAD_REQUEST', 'this connection holds another lease; open a new connection for a new lease');
      return state.lease;
    }
    if (req.generation !== this.o.generation) {
      throw new DispatchError('LEASE_STALE', `lease was issued for generation ${req.generation}, but this is generation ${this.o.generation} of ${this.name} (it restarted, or the lease is for another secondary); ask the main server for a new lease`, { retryable: true });
    }
    const lease = this.leases.get(req.lease);
    if (!lease) {
      if (this.tombstones.get(req.lease) === 'expired') {
        throw new DispatchError('LEASE_EXPIRED', `lease expired before it was presented (leases last ${this.o.config.main.lease_ttl_ms} ms); ask the main server for a new lease`, { retryable: true });
      }
      throw new DispatchError('LEASE_UNKNOWN', `${this.name} holds no such lease (already used, or never issued); ask the main server for a new lease`, { retryable: true });
    }
    if (lease.conn) throw new DispatchError('LEASE_UNKNOWN', 'lease is already in use by another connection; ask the main server for a new lease', { retryable: true });
    if (lease.timer) clearTimeout(lease.timer);
    lease.timer = undefined;
    lease.conn = conn;
    state.lease = lease;
    return lease;
  }

  private async onFrame(conn: FrameConnection, frame: Frame, peer: string, state: { lease: Lease | undefined }): Promise<void> {
    if (conn.isClosed) return;
    conn.busy();
    this.running++;
    this.publishCountersSoon(); // `running` on the slot: tests await a request in progress by it
    const started = performance.now();
    let lease: Lease | undefined;
    let type = '?';
    try {
      const parsed = parseRunRequest(frame.header);
      if (!parsed.success) throw new DispatchError('BAD_REQUEST', `bad run request: ${describeIssue(parsed.error)}`);
      const req = parsed.data;
      type = req.type;
      lease = this.claim(req, conn, state);
      if (!(REQUEST_TYPES as readonly string[]).includes(req.type)) {
        throw new DispatchError('UNKNOWN_TYPE', `unknown request type '${req.type}'; known types: ${REQUEST_TYPES.join(', ')}`);
      }
      const limit = this.o.config.secondary.request_deadline_ms;
      const deadlineMs = Math.min(req.deadline_ms ?? limit, limit);
      const result = await this.execute(req.type as RequestType, frame.body, deadlineMs, { peer, lease: lease.token });
      const header: RunResult = { ok: true, op: 'result', type: req.type, elapsed_ms: Math.round((performance.now() - started) * 1000) / 1000, secondary: this.o.instance, generation: this.o.generation };
      lease.requests++;
      this.slot.data.requests++;
      this.slot.addLatency(Math.round((performance.now() - started) * 1000));
      conn.send(header, result);
    } catch (err) {
      const de = err instanceof DispatchError ? err : new DispatchError('INTERNAL', `failed to run a '${type}' request: ${reason(err)}`, { cause: err });
      if (lease) lease.failed++;
      this.slot.data.failures++;
      if (de.code === 'INTERNAL') this.o.logger.error(de.message, { peer, code: de.code, type, stack: err instanceof Error ? err.stack : undefined });
      conn.send(errorReply(de));
    } finally {
      this.running--;
      this.publishCountersSoon();
      if (!conn.isClosed) conn.idle();
      if (this.drained && this.running === 0) this.drained();
    }
  }

  /** Runs one request, cut off at its deadline. @throws DispatchError DEADLINE_EXCEEDED, BAD_REQUEST. */
  private async execute(type: RequestType, data: Buffer, deadlineMs: number, ctx: { peer: string; lease: string }): Promise<Buffer> {
    // No AbortController and timer per request for types that cannot be cut off anyway.
    if (!WAITING_TYPES.has(type)) return HANDLERS[type](data, NO_DEADLINE);
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort('deadline'), deadlineMs);
    const started = Date.now();
    this.inProgress.add(ac);
    try {
      return await HANDLERS[type](data, ac.signal);
    } catch (err) {
      if (ac.signal.aborted && ac.signal.reason === 'stopping') {
        this.o.logger.warning(`cut off a '${type}' request after ${Date.now() - started} ms: ${this.name} is stopping`, { code: 'SHUTTING_DOWN', type, ran_ms: Date.now() - started, lease: ctx.lease, secondary: this.name, peer: ctx.peer });
        throw new DispatchError('SHUTTING_DOWN', `${this.name} is stopping and cut off the '${type}' request after ${Date.now() - started} ms; it may have run in part: it may be retried`, { retryable: true });
      }
      if (ac.signal.aborted) {
        const requested = type === 'sleep' ? data.toString('latin1').trim().slice(0, 16) : `${data.length} bytes`;
        this.o.logger.warning(`cut off a '${type}' request at its deadline of ${deadlineMs} ms (requested ${requested}${type === 'sleep' ? ' ms' : ''})`, {
          code: 'DEADLINE_EXCEEDED',
          type,
          deadline_ms: deadlineMs,
          ran_ms: Date.now() - started,
          lease: ctx.lease,
          secondary: this.name,
          peer: ctx.peer,
        });
        throw new DispatchError('DEADLINE_EXCEEDED', `the '${type}' request ran past its deadline of ${deadlineMs} ms and was cut off; ask for a longer deadline (at most request_deadline_ms, ${this.o.config.secondary.request_deadline_ms} ms here)`);
      }
      throw err;
    } finally {
      clearTimeout(timer);
      this.inProgress.delete(ac);
    }
  }

  // ---- stop ----------------------------------------------------------------------------

  /**
   * Refuses new work, lets running requests finish (≤ 1.5 s), cuts off the rest with a
   * retryable SHUTTING_DOWN answer, ends every lease, releases everything.
   */
  async stop(why: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.o.notifier.stopping(`stopping (${why}): ${this.running} requests running`);
    this.publishNow();
    this.server.close();
    await this.drain(DRAIN_MS);
    if (this.running > 0) {
      for (const ac of this.inProgress) ac.abort('stopping');
      await this.drain(CUT_OFF_MS);
    }
    this.release();
  }

  /** Resolves when no request runs any more, or after `ms`. */
  private async drain(ms: number): Promise<void> {
    if (this.running === 0) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.drained = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.drained = undefined;
  }

  private release(): void {
    for (const lease of [...this.leases.values()]) this.endLease(lease, lease.conn ? 'ended' : 'expired');
    // end(), not destroy(): an answer just written (SHUTTING_DOWN) still reaches its client.
    for (const c of this.connections) c.end(100);
    this.reader.close();
    this.mainMailbox.close();
    this.watchdogMailbox.close();
    if (this.server.listening) this.server.close();
    try {
      this.slot.update({ state: 'stopped', active: 0, heartbeatMs: Date.now() });
    } catch {
      // the scoreboard was removed first: nothing to publish
    }
    this.cancelCountersPublish();
    this.slot.close();
  }
}
