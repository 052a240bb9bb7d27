/**
 * `handler = "exec"` with `mode = "persistent"` (docs/WORKERS.md): the secondary's side of a
 * type's persistent workers. Each worker K (1..`processes`) is a systemd unit of its own,
 * dispatchd-worker@TYPE-K.service, socket-activated from RUNTIME/worker-TYPE-K.sock; this
 * pool keeps one connection to each ({@link WorkerLink}) and speaks the worker protocol
 * (common/worker-protocol.ts) over it.
 *
 * A link's states (the table in docs/WORKERS.md §4):
 *
 * | state        | on                                   | to           | action                                   |
 * | ------------ | ------------------------------------ | ------------ | ---------------------------------------- |
 * | `connecting` | connected                            | `greeting`   | start the hello timer (start_timeout_ms) |
 * | `connecting` | connect failed                       | `failed`     | log; retry after the back-off            |
 * | `greeting`   | hello naming the type                | `ready`      | log; send what waits                     |
 * | `greeting`   | no hello within start_timeout_ms     | `failed`     | log (err); restart the unit; retry later |
 * | `ready`      | result / error                       | `ready`      | answer the client; send what waits       |
 * | `ready`      | a cancel unanswered after the grace  | `failed`     | log; restart the unit; in flight crash   |
 * | any          | connection closed (worker died)      | `connecting` | log; in flight crash; reconnect soon     |
 * | any          | bad frame or message                 | `failed`     | log (err); restart the unit; in flight crash |
 * | `failed`     | back-off over                        | `connecting` |                                          |
 *
 * A request waits in the pool while no link has room (never more than a link's hello asked
 * for is in flight on it); it is refused at once, HANDLER_FAILED, when every link is
 * `failed` (a worker that never speaks is not waited on). A request in flight on a worker
 * that dies is HANDLER_CRASHED; for an idempotent type it is first sent again, once, to
 * another worker, so a request that kills every worker it touches kills at most two.
 */
import net from 'node:net';
import { DispatchError, reason } from '../../common/errors.js';
import { FrameConnection } from '../../common/frame-connection.js';
import type { Logger } from '../../common/logger.js';
import type { RequestType } from '../../common/request-type.js';
import { workerInstance, workerServiceUnit, workerSocketPath, type WorkerId } from '../../common/topology.js';
import { parseWorkerMessage } from '../../common/worker-protocol.js';
import type { Handler, RunContext } from './handler.js';

export type PersistentType = Extract<RequestType, { handler: 'exec'; mode: 'persistent' }>;

/** What the pool needs of systemd: restarting a worker's unit (watchdog/unit-manager.ts's DbusUnitManager). */
export interface UnitRestarter {
  restart(unit: string): Promise<void>;
}

/** The pool's injected parts (tests pass fakes). */
export interface WorkerPoolParts {
  logger: Logger;
  /** The worker sockets' directory (the configuration's runtime_dir). */
  runtimeDir: string;
  units: UnitRestarter;
  /** Opens a stream to a worker socket (default: net.createConnection). */
  connect?: (path: string) => net.Socket;
  /** Back-off before reconnecting, ms, after `failures` failures in a row (default: 250 ms doubling, at most 5 s). */
  backoffMs?: (failures: number) => number;
}

/** The link states (table above). */
export type LinkState = 'connecting' | 'greeting' | 'ready' | 'failed' | 'closed';

interface Pending {
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

const defaultBackoff = (failures: number) => Math.min(5000, 250 * 2 ** Math.max(0, failures - 1));

/** One worker: its connection, what is in flight on it, its state. */
export class WorkerLink {
  state: LinkState = 'connecting';
  /** The requests the worker's hello allows in flight. */
  concurrency = 0;
  readonly inFlight = new Map<number, Pending>();
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

  constructor(private readonly pool: WorkerPool, readonly id: WorkerId) {
    this.unit = workerServiceUnit(id);
    this.name = workerInstance(id);
  }

  /** Free room on this link (0 unless ready). */
  get room(): number {
    return this.state === 'ready' ? this.concurrency - this.inFlight.size - this.cancelled.size : 0;
  }

  connect(): void {
    if (this.state === 'closed') return;
    this.state = 'connecting';
    const path = workerSocketPath(this.pool.parts.runtimeDir, this.id);
    const socket = (this.pool.parts.connect ?? ((p) => net.createConnection(p)))(path);
    const conn = new FrameConnection(socket, { maxBodyBytes: this.pool.type.max_result_bytes, idleTimeoutMs: 0 });
    this.conn = conn;
    let connected = false;
    socket.once('connect', () => {
      connected = true;
      if (this.conn !== conn) return;
      this.state = 'greeting';
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
        this.fail(`it broke the worker protocol: ${reason(err)}`, { restart: true, priority: 'error' });
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
      this.fail(`it sent a bad frame: ${err.message}`, { restart: true, priority: 'error' });
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
        this.fail('it said hello twice', { restart: true, priority: 'error' });
        return;
      }
      if (!m.types.includes(t.name)) {
        this.fail(`its hello names the types ${m.types.join(', ')}, not '${t.name}'; register a function for '${t.name}'`, { restart: true, priority: 'error' });
        return;
      }
      this.clear();
      this.concurrency = m.concurrency;
      this.state = 'ready';
      this.failures = 0;
      this.lastFailure = '';
      this.pool.parts.logger.info(`the '${t.name}' worker ${this.name} is ready (concurrency ${m.concurrency})`, { ...this.fields(), concurrency: m.concurrency });
      this.pool.dispatch();
      return;
    }
    if (this.state !== 'ready') {
      this.fail(`it answered before its hello`, { restart: true, priority: 'error' });
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
      this.fail(`it answered request id ${m.id}, which is not in flight`, { restart: true, priority: 'error' });
      return;
    }
    this.inFlight.delete(m.id);
    this.pool.settle(p);
    if (m.op === 'result') p.resolve(body);
    else p.reject(new DispatchError('HANDLER_FAILED', `the '${t.name}' handler failed: ${m.message}`, { fields: { type: t.name, worker: this.name } }));
    this.pool.dispatch();
  }

  /** Sends a request (the caller checked {@link room}). */
  send(p: Pending): void {
    const id = this.nextId++;
    p.id = id;
    p.link = this;
    p.tried.add(this);
    this.inFlight.set(id, p);
    this.conn!.send({ op: 'run', id, type: this.pool.type.name, deadline_ms: p.ctx.deadlineMs }, p.data);
  }

  /** The run's signal fired: cancel it on the worker; restart the unit when no answer comes within the grace. */
  cancel(p: Pending): void {
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

  /** Marks the link failed: logs, drops the connection (in flight crash), restarts the unit if asked, reconnects after the back-off. */
  fail(why: string, o: { restart: boolean; priority: 'error' | 'warning' }): void {
    if (this.state === 'closed') return;
    const conn = this.conn;
    this.state = 'failed';
    this.lastFailure = `worker ${this.name} (${this.unit}) failed: ${why}`;
    this.failures++;
    const action = o.restart ? `; marked failed, restarting ${this.unit}` : '; marked failed';
    this.pool.parts.logger[o.priority](`the '${this.pool.type.name}' worker ${this.name} failed: ${why}${action}`, this.fields());
    if (conn) this.drop(conn, (p) => this.pool.crashed(p, this));
    if (o.restart) {
      this.pool.parts.units.restart(this.unit).catch((err) => this.pool.parts.logger.error(`failed to restart ${this.unit}: ${reason(err)}`, this.fields()));
    }
    this.later(this.backoff());
    this.pool.failedOne();
  }

  /** Ends the connection; each request in flight goes to `each`, cancelled ones are forgotten. */
  private drop(conn: FrameConnection, each: (p: Pending) => void): void {
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
    if (this.state !== 'failed') this.state = 'connecting';
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
    this.state = 'closed';
    this.clear();
    for (const g of this.cancelled.values()) clearTimeout(g);
    this.cancelled.clear();
    const conn = this.conn;
    this.conn = undefined;
    conn?.socket.destroy();
  }
}

/** A persistent type's workers, as a {@link Handler}. */
export class WorkerPool implements Handler {
  readonly waits = true;
  readonly links: WorkerLink[];
  private readonly queue: Pending[] = [];

  constructor(readonly type: PersistentType, readonly parts: WorkerPoolParts) {
    this.links = [];
    for (let k = 1; k <= type.worker.processes; k++) this.links.push(new WorkerLink(this, { type: type.name, index: k }));
    for (const l of this.links) l.connect();
  }

  run(data: Buffer, ctx: RunContext): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const p: Pending = { data, ctx, resolve, reject, tried: new Set(), onAbort: () => this.abort(p) };
      if (ctx.signal.aborted) {
        reject(ctx.signal.reason);
        return;
      }
      ctx.signal.addEventListener('abort', p.onAbort, { once: true });
      this.queue.push(p);
      this.dispatch();
    });
  }

  /** Sends what waits to the links with room, the least loaded first; refuses it when no link can serve. */
  dispatch(): void {
    for (let i = 0; i < this.queue.length; ) {
      const p = this.queue[i]!;
      const candidates = this.links.filter((l) => !p.tried.has(l));
      const link = candidates.filter((l) => l.room > 0).sort((a, b) => b.room - a.room)[0];
      if (link) {
        this.queue.splice(i, 1);
        link.send(p);
        continue;
      }
      if (candidates.every((l) => l.state === 'failed' || l.state === 'closed')) {
        this.queue.splice(i, 1);
        this.settle(p);
        p.reject(p.tried.size > 0 ? this.crashError(p) : this.noWorkerError());
        continue;
      }
      i++;
    }
  }

  /** A link failed: what waits and only it could serve is refused. */
  failedOne(): void {
    this.dispatch();
  }

  /** A request's worker died with it in flight: once more on another worker (idempotent types), else HANDLER_CRASHED. */
  crashed(p: Pending, link: WorkerLink): void {
    const t = this.type;
    const others = this.links.filter((l) => !p.tried.has(l) && l.state !== 'failed' && l.state !== 'closed');
    if (t.idempotent && p.tried.size < 2 && others.length > 0) {
      this.parts.logger.info(`sending the '${t.name}' request again, to another worker: worker ${link.name} died with it in flight (the type is idempotent)`, { ...link.fields(), lease: p.ctx.lease });
      this.queue.unshift(p);
      return;
    }
    this.settle(p);
    p.reject(this.crashError(p, link));
  }

  private crashError(p: Pending, link?: WorkerLink): DispatchError {
    const t = this.type;
    const names = [...p.tried].map((l) => l.name);
    const where = link ? `worker ${link.name} (${link.unit})` : `worker${names.length > 1 ? 's' : ''} ${names.join(', ')}`;
    const retry = !t.idempotent ? 'not sent again: the type is not idempotent' : p.tried.size >= 2 ? `sent to ${names.length} workers, each died (retried at most once)` : 'no other worker was running to send it to';
    return new DispatchError('HANDLER_CRASHED', `the '${t.name}' ${where} died while it ran the request, which may have run in part; ${retry}; see journalctl -u 'dispatchd-worker@${t.name}-*'`, { fields: { type: t.name } });
  }

  private noWorkerError(): DispatchError {
    const t = this.type;
    const why = this.links.map((l) => l.lastFailure).filter(Boolean).join('; ');
    return new DispatchError('HANDLER_FAILED', `no '${t.name}' worker is ready: ${why || 'none has said hello'}; see journalctl -u 'dispatchd-worker@${t.name}-*'`, { fields: { type: t.name } });
  }

  /** The run's signal fired: out of the queue, or cancelled on its worker. */
  private abort(p: Pending): void {
    const i = this.queue.indexOf(p);
    if (i >= 0) this.queue.splice(i, 1);
    else p.link?.cancel(p);
    p.reject(p.ctx.signal.reason);
    this.dispatch();
  }

  /** The request is answered: its abort listener goes. */
  settle(p: Pending): void {
    p.ctx.signal.removeEventListener('abort', p.onAbort);
  }

  async close(): Promise<void> {
    for (const l of this.links) l.close();
    for (const p of this.queue.splice(0)) {
      this.settle(p);
      p.reject(new DispatchError('SHUTTING_DOWN', `the '${this.type.name}' handler was closed`, { retryable: true }));
    }
  }
}
