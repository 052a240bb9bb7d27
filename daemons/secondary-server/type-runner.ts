/**
 * What a secondary runs: the request types it serves (its `serve` list of the registry), a
 * handler for each, and the per-type counters it publishes in its served-types file
 * (served-types.ts). One run goes through {@link TypeRunner.run}:
 *
 *   1. DATA over the type's `max_payload_bytes`: PAYLOAD_TOO_LARGE, nothing runs;
 *   2. the run's deadline: the request's `deadline_ms`, at most the type's `deadline_ms`;
 *   3. the handler runs; when its signal fires it is stopped: DEADLINE_EXCEEDED at the
 *      deadline, SHUTTING_DOWN (retryable, `may_have_run`) when the secondary stops;
 *   4. one journal line for every failed run, with TYPE=, LEASE=, SECONDARY=, CODE=.
 *
 * A reload swaps in the new types: handlers of unchanged types are kept; changed or removed
 * ones are closed once the runs they have in progress are over (a module type always gets a
 * fresh pool, so a changed module file is used).
 */
import { DEFAULT_TYPES_DIRS } from '../common/config.js';
import { DispatchError, reason } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { sameType, type RequestType } from '../common/request-type.js';
import type { ServedType } from '../common/served-types.js';
import type { TypeRegistry } from '../common/type-registry.js';
import { createHandler, type Handler, type RunContext } from './handlers/handler.js';

/** The signal handed to handlers that finish within one turn (never aborted). */
const NO_DEADLINE = new AbortController().signal;

interface Entry {
  type: RequestType;
  handler: Handler;
  running: number;
  stats: { requests: number; failures: number; latencySumUs: number; latencyMaxUs: number };
  /** Replaced or removed by a reload: its handler is closed once no run of it is left. */
  retired?: boolean;
}

/** One request to run. */
export interface RunRequestInfo {
  /** The client's deadline_ms, if it sent one. */
  deadlineMs?: number;
  lease: string;
  peer: string;
}

export class TypeRunner {
  private entries = new Map<string, Entry>();
  private readonly inProgress = new Set<AbortController>();
  private changed = true;

  /** @param makeHandler the handler factory (tests inject fakes). */
  constructor(
    registry: TypeRegistry,
    private readonly secondary: string,
    private readonly logger: Logger,
    private readonly makeHandler: (t: RequestType) => Handler = (t) => createHandler(t, logger),
  ) {
    this.replace(registry);
  }

  /** The type called `name` if this secondary serves it. */
  get(name: string): RequestType | undefined {
    return this.entries.get(name)?.type;
  }

  /** The names served, sorted. */
  names(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** Requests running now, over every type. */
  get running(): number {
    return this.inProgress.size;
  }

  /**
   * Swaps in a reloaded set of types. Returns the names added, changed and removed.
   */
  reload(registry: TypeRegistry): { added: string[]; changed: string[]; removed: string[] } {
    const before = this.entries;
    const diff = { added: [] as string[], changed: [] as string[], removed: [] as string[] };
    for (const t of registry.list()) {
      const old = before.get(t.name);
      if (!old) diff.added.push(t.name);
      else if (!sameType(old.type, t) || t.handler === 'module') diff.changed.push(t.name);
    }
    for (const name of before.keys()) if (!registry.get(name)) diff.removed.push(name);
    this.replace(registry, before);
    return diff;
  }

  private replace(registry: TypeRegistry, before = new Map<string, Entry>()): void {
    const next = new Map<string, Entry>();
    for (const t of registry.list()) {
      const old = before.get(t.name);
      // Unchanged types keep their handler and counters; a module type always gets a fresh pool.
      if (old && sameType(old.type, t) && t.handler !== 'module') {
        old.type = t; // the same entry: runs in progress count down on it
        next.set(t.name, old);
      }
      else next.set(t.name, { type: t, handler: this.makeHandler(t), running: 0, stats: old?.stats ?? { requests: 0, failures: 0, latencySumUs: 0, latencyMaxUs: 0 } });
    }
    for (const [name, old] of before) {
      if (next.get(name)?.handler !== old.handler) this.retire(old);
    }
    this.entries = next;
    this.changed = true;
  }

  /** Closes a replaced handler now, or once its runs in progress are over (run()'s `finally`). */
  private retire(e: Entry): void {
    e.retired = true;
    if (e.running === 0) this.closeRetired(e);
  }

  private closeRetired(e: Entry): void {
    e.handler.close().catch((err) => this.logger.warning(`failed to release the old '${e.type.name}' handler: ${reason(err)}`, { type: e.type.name }));
  }

  /**
   * Runs one request of a served type.
   * @throws DispatchError UNKNOWN_TYPE (not served here), PAYLOAD_TOO_LARGE,
   *   DEADLINE_EXCEEDED, SHUTTING_DOWN (may have run), HANDLER_FAILED, RESULT_TOO_LARGE,
   *   BAD_REQUEST (a built-in's DATA).
   */
  async run(name: string, data: Buffer, req: RunRequestInfo): Promise<Buffer> {
    const e = this.entries.get(name);
    if (!e) throw new DispatchError('UNKNOWN_TYPE', `${this.secondary} does not serve request type '${name}'; it serves: ${this.names().join(', ') || 'nothing'}`);
    const t = e.type;
    if (data.length > t.max_payload_bytes) {
      this.count(e, false, 0);
      throw new DispatchError('PAYLOAD_TOO_LARGE', `the '${name}' request carries ${data.length} bytes, more than its type's max_payload_bytes (${t.max_payload_bytes} bytes); send less`);
    }
    const deadlineMs = Math.min(req.deadlineMs ?? t.deadline_ms, t.deadline_ms);
    const started = performance.now();
    e.running++;
    // No AbortController and timer for handlers that finish within one turn anyway.
    const ac = e.handler.waits ? new AbortController() : undefined;
    const timer = ac ? setTimeout(() => ac.abort('deadline'), deadlineMs) : undefined;
    if (ac) this.inProgress.add(ac);
    const ctx: RunContext = { signal: ac?.signal ?? NO_DEADLINE, deadlineMs, lease: req.lease, secondary: this.secondary };
    try {
      const out = await e.handler.run(data, ctx);
      this.count(e, true, performance.now() - started);
      return out;
    } catch (err) {
      const ranMs = Math.round(performance.now() - started);
      this.count(e, false, performance.now() - started);
      const de = this.explain(err, ac?.signal, t, deadlineMs, ranMs);
      const fields = { code: de.code, type: name, lease: req.lease, secondary: this.secondary, peer: req.peer, ran_ms: ranMs, deadline_ms: deadlineMs };
      if (de.code === 'BAD_REQUEST') this.logger.info(`refused a '${name}' request: ${de.message}`, fields);
      else if (de.code === 'DEADLINE_EXCEEDED') this.logger.warning(`cut off a '${name}' request at its deadline of ${deadlineMs} ms (ran ${ranMs} ms)`, fields);
      else if (de.code === 'SHUTTING_DOWN') this.logger.warning(`cut off a '${name}' request after ${ranMs} ms: ${this.secondary} is stopping`, fields);
      else this.logger.warning(`the '${name}' request failed: ${de.message}`, fields);
      throw de;
    } finally {
      if (timer) clearTimeout(timer);
      if (ac) this.inProgress.delete(ac);
      if (--e.running === 0 && e.retired) this.closeRetired(e);
    }
  }

  /** A handler's rejection as the error the client gets. */
  private explain(err: unknown, signal: AbortSignal | undefined, t: RequestType, deadlineMs: number, ranMs: number): DispatchError {
    if (signal?.aborted && signal.reason === 'stopping') {
      return new DispatchError('SHUTTING_DOWN', `${this.secondary} is stopping and cut off the '${t.name}' request after ${ranMs} ms; it may have run in part${t.idempotent ? ': it may be retried' : ''}`, { retryable: true, mayHaveRun: true });
    }
    if (signal?.aborted) {
      const advice =
        deadlineMs < t.deadline_ms
          ? `ask for a longer deadline (at most the type's deadline_ms, ${t.deadline_ms} ms)`
          : t.source.file.startsWith(`${DEFAULT_TYPES_DIRS[0]}/`)
            ? `that is the deadline_ms of the package's built-in type '${t.name}' (${t.source.file}, the package's file): declare a type of your own with a longer deadline_ms in /etc/dispatchd/types.d (docs/TYPES.md)`
            : `that is the type's deadline_ms: raise it in its types.d file (${t.source.file})`;
      return new DispatchError('DEADLINE_EXCEEDED', `the '${t.name}' request ran past its deadline of ${deadlineMs} ms and was cut off; ${advice}`);
    }
    if (err instanceof DispatchError) return err;
    return new DispatchError('HANDLER_FAILED', `the '${t.name}' handler failed: ${reason(err)}`, { cause: err });
  }

  private count(e: Entry, ok: boolean, ms: number): void {
    const us = Math.round(ms * 1000);
    if (ok) {
      e.stats.requests++;
      e.stats.latencySumUs += us;
      if (us > e.stats.latencyMaxUs) e.stats.latencyMaxUs = us;
    } else e.stats.failures++;
    this.changed = true;
  }

  /** Cuts off every run in progress (the secondary stops after its drain): SHUTTING_DOWN. */
  cutOff(): void {
    for (const ac of this.inProgress) ac.abort('stopping');
  }

  /**
   * The served types with their counters, for the served-types file; undefined when nothing
   * changed since the last call (the caller then skips the write).
   *
   * @param leases leases of each type held now.
   */
  snapshot(leases: (type: string) => number, force = false): ServedType[] | undefined {
    if (!this.changed && !force) return undefined;
    this.changed = false;
    return [...this.entries.values()].map(({ type: t, stats: s }) => ({
      name: t.name,
      handler: t.handler,
      idempotent: t.idempotent,
      concurrency: t.concurrency,
      deadline_ms: t.deadline_ms,
      max_payload_bytes: t.max_payload_bytes,
      max_result_bytes: t.max_result_bytes,
      leases: leases(t.name),
      requests: s.requests,
      failures: s.failures,
      latency_sum_us: s.latencySumUs,
      latency_max_us: Math.min(0xffffffff, s.latencyMaxUs),
    }));
  }

  /** Marks the table changed (a lease taken or ended changes `leases`). */
  touch(): void {
    this.changed = true;
  }

  /** Closes every handler (worker pools); runs in progress finish or were cut off first. */
  async close(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries = new Map();
    await Promise.all(all.map((e) => e.handler.close().catch(() => undefined)));
  }
}
