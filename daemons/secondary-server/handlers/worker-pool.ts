/**
 * `handler = "exec"` with `mode = "persistent"` (docs/WORKERS.md): the secondary's side of a
 * type's persistent workers. Each worker K (1..`processes`) is a systemd unit of its own,
 * dispatchd-worker@TYPE-K.service, socket-activated from RUNTIME/worker-TYPE-K.sock; this
 * pool keeps one connection to each ({@link WorkerLink}, worker-link.ts: its hello, its
 * concurrency, cancels and restarts, and its state table) and chooses among them.
 *
 * A request waits in the pool while no link has room (never more than a link's hello asked
 * for is in flight on it); it is refused at once, HANDLER_FAILED, when every link is
 * `failed` (a worker that never speaks is not waited on). A request in flight on a worker
 * that dies is HANDLER_CRASHED; for an idempotent type it is first sent again, once, to
 * another worker, so a request that kills every worker it touches kills at most two.
 */
import type net from 'node:net';
import { DispatchError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { workerIds, type PersistentType } from '../../common/request-type.js';
import type { Handler, RunContext } from './handler.js';
import { WorkerLink, type PendingRun, type WorkerLinkOwner } from './worker-link.js';

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

/** A persistent type's workers, as a {@link Handler}. */
export class WorkerPool implements Handler, WorkerLinkOwner {
  readonly waits = true;
  readonly links: WorkerLink[];
  private readonly queue: PendingRun[] = [];

  constructor(readonly type: PersistentType, readonly parts: WorkerPoolParts) {
    this.links = [];
    for (const id of workerIds(type)) this.links.push(new WorkerLink(this, id));
    for (const l of this.links) l.connect();
  }

  run(data: Buffer, ctx: RunContext): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const p: PendingRun = { data, ctx, resolve, reject, tried: new Set(), onAbort: () => this.abort(p) };
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

  /**
   * A request's worker died (or, `what`, broke the worker protocol) with it in flight: once
   * more on another worker (idempotent types), else HANDLER_CRASHED.
   */
  crashed(p: PendingRun, link: WorkerLink, what = 'died'): void {
    const t = this.type;
    const others = this.links.filter((l) => !p.tried.has(l) && l.state !== 'failed' && l.state !== 'closed');
    if (t.idempotent && p.tried.size < 2 && others.length > 0) {
      this.parts.logger.info(`sending the '${t.name}' request again, to another worker: worker ${link.name} ${what} with it in flight (the type is idempotent)`, { ...link.fields(), lease: p.ctx.lease });
      this.queue.unshift(p);
      return;
    }
    this.settle(p);
    p.reject(this.crashError(p, link, what));
  }

  private crashError(p: PendingRun, link?: WorkerLink, what = 'died'): DispatchError {
    const t = this.type;
    const names = [...p.tried].map((l) => l.name);
    const where = link ? `worker ${link.name} (${link.unit})` : `worker${names.length > 1 ? 's' : ''} ${names.join(', ')}`;
    const retry = !t.idempotent ? 'not sent again: the type is not idempotent' : p.tried.size >= 2 ? `sent to ${names.length} workers, each died (retried at most once)` : 'no other worker was running to send it to';
    return new DispatchError('HANDLER_CRASHED', `the '${t.name}' ${where} ${what} while it ran the request, which may have run in part; ${retry}; see journalctl -u 'dispatchd-worker@${t.name}-*'`, { fields: { type: t.name } });
  }

  private noWorkerError(): DispatchError {
    const t = this.type;
    const why = this.links.map((l) => l.lastFailure).filter(Boolean).join('; ');
    return new DispatchError('HANDLER_FAILED', `no '${t.name}' worker is ready: ${why || 'none has said hello'}; see journalctl -u 'dispatchd-worker@${t.name}-*'`, { fields: { type: t.name } });
  }

  /** The run's signal fired: out of the queue, or cancelled on its worker. */
  private abort(p: PendingRun): void {
    const i = this.queue.indexOf(p);
    if (i >= 0) this.queue.splice(i, 1);
    else p.link?.cancel(p);
    p.reject(p.ctx.signal.reason);
    this.dispatch();
  }

  /** The request is answered: its abort listener goes. */
  settle(p: PendingRun): void {
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
