/**
 * One persistent worker as the secondary sees it (docs/WORKERS.md §4): its connection to
 * RUNTIME/worker-TYPE-K.sock, the hello it must say within `start_timeout_ms` (ms) naming the
 * type and the concurrency it allows, what is in flight on it (never more than that
 * concurrency), the cancel sent at a request's deadline and the unit restarted when no answer
 * comes within `cancel_grace_ms` (ms), and the reconnect after a back-off. The pool that
 * chooses among workers is worker-pool.ts; it is reached only through {@link WorkerLinkOwner}.
 *
 * Its states and what moves it between them: link-transitions.ts (the table, with the actions
 * taken here on each event).
 */
import net from 'node:net';
import { DispatchError, reason } from '../../common/errors.js';
import { FrameConnection } from '../../common/frame-connection.js';
import { workerInstance, workerServiceUnit, workerSocketPath, type WorkerId } from '../../common/topology.js';
import { parseWorkerMessage } from '../../common/worker-protocol.js';
import type { RunContext } from './handler.js';
import type { PersistentType } from '../../common/request-type.js';
import type { WorkerPoolParts } from './worker-pool.js';
import { nextLinkState, type LinkEvent, type LinkState } from './link-transitions.js';

/** A request of the pool: waiting, or in flight on one link. */
export interface PendingRun {
  data: Buffer;
  ctx: RunContext;
  resolve: (b: Buffer) => void;
  reject: (e: unknown) => void;
  /** Links this request was sent to (a retry goes to another). */
  tried: Set<WorkerLink>;
  /** Its id on the link it is in flight on. */
  id?: number;
  link?: WorkerLink;
  onAbort: () => void;
}

/** What a link needs of its pool (worker-pool.ts's WorkerPool; tests may pass a fake). */
export interface WorkerLinkOwner {
  readonly type: PersistentType;
  readonly parts: WorkerPoolParts;
  /** Sends what waits to the links with room. */
  dispatch(): void;
  /** A request's worker died (or did `what`, e.g. broke the protocol) with it in flight (retry or HANDLER_CRASHED). */
  crashed(p: PendingRun, link: WorkerLink, what?: string): void;
  /** A request is answered: its abort listener goes. */
  settle(p: PendingRun): void;
  /** A link failed. */
  failedOne(): void;
}

const defaultBackoff = (failures: number) => Math.min(5000, 250 * 2 ** Math.max(0, failures - 1));

/** One worker: its connection, what is in flight on it, its state. */
export class WorkerLink {
  private current: LinkState = 'connecting';
  /** The requests the worker's hello allows in flight. */
  concurrency = 0;
  readonly inFlight = new Map<number, PendingRun>();
  /** Cancelled requests waiting for the worker's answer: id → grace timer. */
  private readonly cancelled = new Map<number, NodeJS.Timeout>();
  /** Why it is failed (for the client's message). */
  lastFailure = '';
  private failures = 0;
  private nextId = 1;
  private conn: FrameConnection | undefined;
  private timer: NodeJS.Timeout | undefined;
  readonly unit: string;
  readonly name: string;

  constructor(private readonly pool: WorkerLinkOwner, readonly id: WorkerId) {
    this.unit = workerServiceUnit(id);
    this.name = workerInstance(id);
  }

  /** Its state (link-transitions.ts). */
  get state(): LinkState {
    return this.current;
  }

  /** Applies `ev` by the state table (link-transitions.ts); false (nothing changes) when the state has no row for it. */
  private move(ev: LinkEvent): boolean {
    const next = nextLinkState(this.current, ev);
    if (next === undefined) return false;
    this.current = next;
    return true;
  }

  /** Free room on this link (0 unless ready). */
  get room(): number {
    return this.state === 'ready' ? this.concurrency - this.inFlight.size - this.cancelled.size : 0;
  }

  connect(): void {
    if (!this.move('dial')) return;
    const path = workerSocketPath(this.pool.parts.runtimeDir, this.id);
    const socket = (this.pool.parts.connect ?? ((p) => net.createConnection(p)))(path);
    const conn = new FrameConnection(socket, { maxBodyBytes: this.pool.type.max_result_bytes, idleTimeoutMs: 0 });
    this.conn = conn;
    let connected = false;
    socket.once('connect', () => {
      connected = true;
      if (this.conn !== conn) return;
      this.move('connected');
      this.arm(this.pool.type.worker.start_timeout_ms, () => {
        this.fail(`it did not say hello within start_timeout_ms (${this.pool.type.worker.start_timeout_ms} ms) of the connection; check that it runs a dispatchd worker library on the socket systemd passes it (journalctl -u ${this.unit})`, { restart: true, priority: 'error' });
      });
    });
    conn.on('frame', (f) => {
      if (this.conn !== conn) return;
      let m;
      try {
        m = parseWorkerMessage(f.header);
      } catch (err) {
        this.brokeProtocol(reason(err));
        return;
      }
      this.onMessage(m, f.body);
    });
    conn.on('protocol-error', (err) => {
      if (this.conn !== conn) return;
      if (err.code === 'PAYLOAD_TOO_LARGE') {
        // The worker is sound; its answer is too long: those in flight get RESULT_TOO_LARGE.
        const e = new DispatchError('RESULT_TOO_LARGE', `the '${this.pool.type.name}' worker ${this.name} answered with more than max_result_bytes (${this.pool.type.max_result_bytes} bytes); raise max_result_bytes in its types.d file or make it answer less`, { fields: { type: this.pool.type.name } });
        this.drop(conn, (p) => p.reject(e));
        this.pool.parts.logger.warning(`worker ${this.name} answered with more than max_result_bytes; reconnecting`, this.fields());
        this.later(0);
        return;
      }
      this.brokeProtocol(`it sent a bad frame: ${err.message}`);
    });
    conn.on('error', () => undefined); // followed by 'close'
    conn.on('close', () => {
      if (this.conn !== conn) return;
      const n = this.inFlight.size;
      const what = connected ? `closed its connection (it exited or was restarted) with ${n} request${n === 1 ? '' : 's'} in flight` : `could not be reached at ${path}`;
      if (!connected) {
        this.fail(`its socket ${what}; is its unit there? (systemctl daemon-reload && systemctl start dispatchd.target)`, { restart: false, priority: 'warning' });
        return;
      }
      this.pool.parts.logger.warning(`the '${this.pool.type.name}' worker ${this.name} ${what}; reconnecting`, this.fields());
      this.drop(conn, (p) => this.pool.crashed(p, this));
      this.failures++;
      this.later(this.backoff());
      this.pool.dispatch();
    });
  }

  private onMessage(m: ReturnType<typeof parseWorkerMessage>, body: Buffer): void {
    const t = this.pool.type;
    if (m.op === 'hello') {
      if (this.state !== 'greeting') {
        this.brokeProtocol('it said hello twice');
        return;
      }
      if (!m.types.includes(t.name)) {
        this.fail(`its hello names the types ${m.types.join(', ')}, not '${t.name}'; register a function for '${t.name}'`, { restart: true, priority: 'error' });
        return;
      }
      this.clear();
      this.concurrency = m.concurrency;
      this.move('hello');
      this.failures = 0;
      this.lastFailure = '';
      this.pool.parts.logger.info(`the '${t.name}' worker ${this.name} is ready (concurrency ${m.concurrency})`, { ...this.fields(), concurrency: m.concurrency });
      this.pool.dispatch();
      return;
    }
    if (this.state !== 'ready') {
      this.brokeProtocol('it answered before its hello');
      return;
    }
    const grace = this.cancelled.get(m.id);
    if (grace) {
      // The answer to a request already cut off at its deadline: the worker is fine.
      clearTimeout(grace);
      this.cancelled.delete(m.id);
      this.pool.dispatch();
      return;
    }
    const p = this.inFlight.get(m.id);
    if (!p) {
      this.brokeProtocol(`it answered request id ${m.id}, which is not in flight`);
      return;
    }
    this.inFlight.delete(m.id);
    this.pool.settle(p);
    if (m.op === 'result') p.resolve(body);
    else p.reject(new DispatchError('HANDLER_FAILED', `the '${t.name}' handler failed: ${m.message}`, { fields: { type: t.name, worker: this.name } }));
    this.pool.dispatch();
  }

  /** Sends a request (the caller checked {@link room}). */
  send(p: PendingRun): void {
    const id = this.nextId++;
    p.id = id;
    p.link = this;
    p.tried.add(this);
    this.inFlight.set(id, p);
    this.conn!.send({ op: 'run', id, type: this.pool.type.name, deadline_ms: p.ctx.deadlineMs }, p.data);
  }

  /** The run's signal fired: cancel it on the worker; restart the unit when no answer comes within the grace. */
  cancel(p: PendingRun): void {
    if (p.id === undefined || this.inFlight.get(p.id) !== p) return;
    this.inFlight.delete(p.id);
    const id = p.id;
    this.conn?.send({ op: 'cancel', id });
    const grace = this.pool.type.worker.cancel_grace_ms;
    this.cancelled.set(id, setTimeout(() => {
      this.cancelled.delete(id);
      this.fail(`it did not answer the cancel of request id ${id} within cancel_grace_ms (${grace} ms) after its deadline`, { restart: true, priority: 'warning' });
    }, grace));
  }

  /**
   * A protocol error (docs/WORKERS.md §3): the link fails with "it broke the worker protocol:
   * WHAT", the unit is restarted, and what was in flight is HANDLER_CRASHED saying so.
   */
  private brokeProtocol(what: string): void {
    this.fail(`it broke the worker protocol: ${what}`, { restart: true, priority: 'error', crash: `broke the worker protocol (${what})` });
  }

  /**
   * Marks the link failed, logs `why` (at o.priority) and restarts the unit when o.restart;
   * what was in flight goes to the pool as crashed, with `o.crash` (what the worker did,
   * for the client's message) when it did not simply die.
   */
  fail(why: string, o: { restart: boolean; priority: 'error' | 'warning'; crash?: string }): void {
    const conn = this.conn;
    if (!this.move('fault')) return;
    this.lastFailure = `worker ${this.name} (${this.unit}) failed: ${why}`;
    this.failures++;
    const action = o.restart ? `; marked failed, restarting ${this.unit}` : '; marked failed';
    this.pool.parts.logger[o.priority](`the '${this.pool.type.name}' worker ${this.name} failed: ${why}${action}`, this.fields());
    if (conn) this.drop(conn, (p) => this.pool.crashed(p, this, o.crash));
    if (o.restart) {
      this.pool.parts.units.restart(this.unit).catch((err) => this.pool.parts.logger.error(`failed to restart ${this.unit}: ${reason(err)}`, this.fields()));
    }
    this.later(this.backoff());
    this.pool.failedOne();
  }

  /** Ends the connection; each request in flight goes to `each`, cancelled ones are forgotten. */
  private drop(conn: FrameConnection, each: (p: PendingRun) => void): void {
    if (this.conn === conn) this.conn = undefined;
    conn.socket.destroy();
    this.clear();
    for (const g of this.cancelled.values()) clearTimeout(g);
    this.cancelled.clear();
    const lost = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const p of lost) {
      p.link = undefined;
      p.id = undefined;
      each(p);
    }
  }

  private backoff(): number {
    return (this.pool.parts.backoffMs ?? defaultBackoff)(this.failures);
  }

  private later(ms: number): void {
    this.move('lost');
    this.arm(ms, () => this.connect());
  }

  private arm(ms: number, f: () => void): void {
    this.clear();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      f();
    }, ms);
  }

  private clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  fields(): Record<string, string> {
    return { type: this.pool.type.name, worker: this.name, worker_unit: this.unit };
  }

  close(): void {
    this.move('close');
    this.clear();
    for (const g of this.cancelled.values()) clearTimeout(g);
    this.cancelled.clear();
    const conn = this.conn;
    this.conn = undefined;
    conn?.socket.destroy();
  }
}
