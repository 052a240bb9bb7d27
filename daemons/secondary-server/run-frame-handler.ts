/**
 * A secondary's handling of one `run` frame from a client (docs/PROTOCOL.md §2.2): parse the
 * request, refuse a type this secondary does not serve before the lease is claimed, claim (or
 * reuse) the connection's lease in the lease table (its MAC, then the credit window), run the
 * request through the type runner with its deadline, and answer: a `result` header with the
 * result body, or the error reply of the DispatchError it failed with (an unexpected error is
 * INTERNAL and logged with its stack; a refused lease is a `lease:<fault>` incident).
 *
 * Built from injected parts ({@link RunFramePorts}); SecondaryServer wires the real ones.
 */
import { DispatchError, reason } from '../common/errors.js';
import type { FrameConnection } from '../common/frame-connection.js';
import type { Frame } from '../common/frame.js';
import type { IncidentLevel } from '../common/incident-log.js';
import type { Logger } from '../common/logger.js';
import { describeIssue, errorReply, parseRunRequest, type RunResult } from '../common/protocol.js';
import type { RequestCounters } from '../common/request-counters.js';
import type { Lease, LeaseTable } from './lease-table.js';
import type { TypeRunner } from './type-runner.js';

/** The lease a client connection holds: none until its first `run` frame claims one. */
export interface ConnectionLease {
  lease: Lease | undefined;
}

/** What a RunFrameHandler is built from (SecondaryServer passes its own; unit tests pass fakes). */
export interface RunFramePorts {
  /** The secondary's name (secondary-N), for messages. */
  name: string;
  /** Its instance N and process generation, echoed in each result header. */
  instance: number;
  generation: number;
  logger: Logger;
  /** The served types: `get` for the check before the claim, `run` to run. */
  runner: Pick<TypeRunner, 'get' | 'run'>;
  /** The leases in use: `claim` verifies and claims (throws LEASE_* or BUSY). */
  leases: Pick<LeaseTable, 'claim'>;
  /** Requests served (with their time, µs) and failed. */
  counters: Pick<RequestCounters, 'served' | 'failed'>;
  /** The current max_leases (it follows a reload). */
  maxLeases: () => number;
  /** A request begins and ends running (the core's `running` count, awaited by drain). */
  enter: () => void;
  leave: () => void;
  /** Publishes `running` and the counters to the slot soon (batched). */
  publishSoon: () => void;
  /** Records an incident, logged once per interval per key. */
  incident: (key: string, message: string, fields: Record<string, unknown>, level: IncidentLevel) => void;
}

export class RunFrameHandler {
  constructor(private readonly p: RunFramePorts) {}

  /**
   * Handles one frame of `conn` (from `peer`, holding `state`'s lease) and sends its answer;
   * never throws: every failure becomes an error reply with its stable code (BAD_REQUEST,
   * UNKNOWN_TYPE, LEASE_*, BUSY, the type runner's codes, INTERNAL). A closed connection's
   * frame is ignored.
   */
  async handle(conn: FrameConnection, frame: Frame, peer: string, state: ConnectionLease): Promise<void> {
    const p = this.p;
    if (conn.isClosed) return;
    conn.busy();
    p.enter();
    p.publishSoon(); // `running` reaches the slot: a test can await a running request
    const started = performance.now();
    let lease: Lease | undefined;
    let type = '?';
    try {
      const parsed = parseRunRequest(frame.header);
      if (!parsed.success) throw new DispatchError('BAD_REQUEST', `bad run request: ${describeIssue(parsed.error)}`);
      const req = parsed.data;
      type = req.type;
      // A type this secondary does not serve is refused before the lease is claimed.
      const served = p.runner.get(req.type);
      if (!served) throw new DispatchError('UNKNOWN_TYPE', `${p.name} does not serve request type '${req.type}'; ask the main server for a lease of that type`);
      lease = p.leases.claim(req, conn, state, Date.now(), { maxLeases: p.maxLeases(), concurrency: served.concurrency });
      const result = await p.runner.run(req.type, frame.body, { ...(req.deadline_ms === undefined ? {} : { deadlineMs: req.deadline_ms }), lease: lease.token, peer });
      const header: RunResult = { ok: true, op: 'result', type: req.type, elapsed_ms: Math.round((performance.now() - started) * 1000) / 1000, secondary: p.instance, generation: p.generation };
      lease.requests++;
      p.counters.served(Math.round((performance.now() - started) * 1000));
      conn.send(header, result);
    } catch (err) {
      const de = err instanceof DispatchError ? err : new DispatchError('INTERNAL', `failed to run a '${type}' request: ${reason(err)}`, { cause: err });
      if (lease) lease.failed++;
      p.counters.failed();
      if (de.code === 'INTERNAL') p.logger.error(de.message, { peer, code: de.code, type, stack: err instanceof Error ? err.stack : undefined });
      const fault = de.fields.lease_fault;
      if (fault !== undefined) p.incident(`lease:${fault}`, `refused a lease from ${peer}: ${de.message}`, { peer, code: de.code, lease_fault: fault }, 'warning');
      conn.send(errorReply(de));
    } finally {
      p.leave();
      p.publishSoon();
      if (!conn.isClosed) conn.idle();
    }
  }
}
