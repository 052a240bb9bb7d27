/**
 * The main server: accepts clients on its (socket-activated) stream socket, and for each
 * lease request picks the least-busy live secondary from the scoreboard and answers with the
 * secondary's socket and a short-lived lease it mints from a credit that secondary granted
 * over main's mailbox FIFO (no message per lease: docs/PROTOCOL.md §2.2). It never carries
 * payloads (its frames have no body: the decoder's body limit is 0).
 *
 * It is composed of the daemon core (slot, mailbox, tick, stop), the admission loop
 * (admission.ts), the credits it holds (credit-pool.ts) and the lease ledger (lease-ledger.ts). docs/PROTOCOL.md describes the exchanges; docs/ARCHITECTURE.md
 * the processes.
 */
import type net from 'node:net';
import type { Config, ReloadOutcome } from '../common/config.js';
import { coreBasics, DaemonCore, type DaemonCoreOptions } from '../common/daemon-core.js';
import { openDaemonPorts, type DaemonPorts, type NotifierPort, type SlotState } from '../common/daemon-ports.js';
import { DispatchError, reason } from '../common/errors.js';
import type { FrameConnection } from '../common/frame-connection.js';
import { FramedServer, type ClientServer, type ClientServerFactory } from '../common/framed-server.js';
import type { Frame } from '../common/frame.js';
import type { Logger } from '../common/logger.js';
import { describeIssue, errorReply, parseLeaseRequest } from '../common/protocol.js';
import { RequestCounters } from '../common/request-counters.js';
import { ScoreboardReader } from '../common/scoreboard-reader.js';
import { DRAIN_MS, TICK_MS } from '../common/timing.js';
import { loadLeaseKey } from '../common/lease-key.js';
import { formatDaemonId, instanceOf, leaseKeyPath, MAIN, parseDaemonId, secondary } from '../common/topology.js';
import { AdmissionQueue } from './admission-queue.js';
import { Admission, type ScoreboardPort, type TypeRoutesPort } from './admission.js';
import { CreditPool } from './credit-pool.js';
import { LeaseLedger } from './lease-ledger.js';
import { ServedTypesIndex } from './served-types-index.js';

/** `marking` (V8's incremental marking, marking-mode.ts) goes to the daemon core as it is. */
export interface MainServerOptions extends Pick<DaemonCoreOptions, 'marking'> {
  config: Config;
  logger: Logger;
  notifier: NotifierPort;
  /** The client socket: an activated listening fd, or a path to bind (tests, development). */
  listen: { fd: number } | { path: string };
  /** This daemon's mailbox FIFO, open for reading (unused when `parts` are given). */
  mailboxFd: number;
  /** Random per process; published in the slot. */
  generation: number;
  pid: number;
}

/** What main is built from besides its options: the daemon core's ports and the scoreboard reader. */
export interface MainServerParts {
  ports: DaemonPorts;
  scoreboard: ScoreboardPort;
  /** The client side (default: a FramedServer on the `listen` socket). */
  clientServer?: ClientServerFactory;
  /** Which secondaries serve which type (default: their served-types files beside the scoreboard). */
  types?: TypeRoutesPort;
  /** The suite's lease key (default: read from beside the scoreboard, lease-key.ts). */
  leaseKey?: Buffer;
}

/** Opens the real parts: the lease key, main's slot and mailbox, writers to its peers, the scoreboard. @throws DispatchError SCOREBOARD_*. */
function openParts(o: MainServerOptions): MainServerParts {
  const leaseKey = loadLeaseKey(leaseKeyPath(o.config.paths.scoreboard));
  const scoreboard = new ScoreboardReader(o.config.paths.scoreboard);
  try {
    return { leaseKey, scoreboard, ports: openDaemonPorts(o.config, MAIN, { mailboxFd: o.mailboxFd, pid: o.pid, generation: o.generation, backpressureTimeoutMs: o.config.main.reserve_timeout_ms }) };
  } catch (err) {
    scoreboard.close();
    throw err;
  }
}

export class MainServer {
  private readonly core: DaemonCore;
  private readonly server: ClientServer;
  private readonly counters = new RequestCounters();
  private readonly queue: AdmissionQueue;
  private readonly ledger: LeaseLedger;
  private readonly pool: CreditPool;
  private readonly admission: Admission;

  private constructor(private readonly o: MainServerOptions, private readonly parts: MainServerParts) {
    this.queue = new AdmissionQueue(o.config.main.queue_max);
    this.ledger = new LeaseLedger(o.logger);
    const core = new DaemonCore({
      id: MAIN,
      ...coreBasics(o),
      ...parts.ports,
      project: (c) => this.project(c),
      statusLine: () => this.statusLine(),
      onTick: (now) => this.onTick(now),
    });
    this.core = core;
    this.pool = new CreditPool(parts.leaseKey ?? loadLeaseKey(leaseKeyPath(o.config.paths.scoreboard)));
    this.admission = new Admission({
      config: () => core.config,
      types: parts.types ?? new ServedTypesIndex(o.config.paths.scoreboard),
      scoreboard: parts.scoreboard,
      pool: this.pool,
      want: (n, gen) => this.want(n, gen),
      ledger: this.ledger,
      queue: this.queue,
      stopping: () => core.stopping,
      incident: (...a) => core.incident(...a),
      queueChanged: () => core.publishSoon(),
    });
    core.on('credit', (m) => {
      const id = parseDaemonId(m.from);
      if (id?.kind !== 'secondary') return;
      this.admission.creditFrom(instanceOf(id), m.gen);
      this.pool.add(instanceOf(id), m);
      this.ledger.credit(m);
      if (m.n > 0) this.queue.wake(m.n);
    });
    core.on('ready', (m) => {
      const id = parseDaemonId(m.from);
      if (id?.kind === 'secondary') this.admission.secondaryReady(instanceOf(id), m.gen);
      else this.queue.wake();
    });
    this.server = (parts.clientServer ?? ((f) => new FramedServer(f)))({
      limits: () => ({ maxBodyBytes: 0, idleTimeoutMs: core.config.main.client_idle_timeout_ms }), // main never carries payloads
      incidents: core.incidentLog,
      logger: o.logger,
      refusing: () => core.stopping,
      accept: (peer) => ({ onFrame: (c, f) => this.onFrame(c, f, peer) }),
    });
  }

  /**
   * Starts the main server: claims its scoreboard slot, reads its mailbox, listens, then
   * sends READY=1.
   *
   * @param parts the slot, mailboxes and scoreboard (default: the real ones, from the configuration's paths).
   * @throws DispatchError SCOREBOARD_* when the scoreboard is missing or unusable; CONNECT_FAILED
   *   when the socket cannot be served.
   */
  static async start(o: MainServerOptions, parts?: MainServerParts): Promise<MainServer> {
    const m = new MainServer(o, parts ?? openParts(o));
    await m.core.serve(() => m.server.listen(o.listen), () => m.release());
    m.onTick(Date.now()); // asks the live secondaries for credits at once
    const note = LeaseLedger.adoptionNote(m.core.starts, () => m.admission.liveSecondaries(Date.now()));
    o.logger.info(`main server ready${note}`, { generation: o.generation, starts: m.core.starts });
    return m;
  }

  /** Asks secondary N for credits; a failed write is an incident (main asks again later). */
  private want(instance: number, generation: number): void {
    const peer = formatDaemonId(secondary(instance));
    this.core.send(secondary(instance), { v: 1, t: 'want', from: 'main', gen: this.o.generation, to: generation }).catch((err: DispatchError) => {
      this.core.incident(`want:${instance}:${err.code}`, `failed to ask ${peer} for credits: ${err.message}; asking again in ${this.core.config.main.reserve_timeout_ms} ms`, { peer, code: err.code }, 'warning');
    });
  }

  /** The listening address (for tests that bind a path). */
  address(): string | net.AddressInfo | null {
    return this.server.address();
  }

  private onTick(now: number): void {
    try {
      this.admission.refresh(now);
    } catch (err) {
      this.core.incident('scoreboard', `failed to refresh the scoreboard: ${reason(err)}, retrying in ${TICK_MS} ms`, { code: err instanceof DispatchError ? err.code : 'SCOREBOARD_IO' });
    }
  }

  /** Applies a reloaded configuration (all but paths) to the running server. */
  reload(next: Config): ReloadOutcome {
    return this.core.reload(next, (config) => {
      this.queue.max = config.main.queue_max;
    });
  }

  statusLine(): string {
    const adopted = this.ledger.adopted ? `; ${this.ledger.adopted} leases of an earlier main process accounted for` : '';
    return `${this.core.stopping ? 'stopping' : 'ready'}: ${this.counters.requests} leases granted, ${this.counters.failures} refused, ${this.core.running} in progress, ${this.queue.length} queued; ${this.admission.secondariesAlive} secondaries alive${adopted}`;
  }

  /** The slot: requests in progress and queued; active and the counters lag by at most a tick. */
  private project(core: DaemonCore): SlotState {
    return { state: core.phase, active: core.running, queued: this.queue.length, ...this.counters.values() };
  }

  private async onFrame(conn: FrameConnection, frame: Frame, peer: string): Promise<void> {
    if (conn.isClosed) return;
    conn.busy();
    this.core.enter();
    const started = performance.now();
    try {
      const parsed = parseLeaseRequest(frame.header);
      if (!parsed.success) {
        throw new DispatchError('BAD_REQUEST', `bad lease request: ${describeIssue(parsed.error)}`);
      }
      const grant = await this.admission.lease(parsed.data.type, parsed.data.wait_ms);
      this.counters.served(Math.round((performance.now() - started) * 1000));
      conn.send(grant);
    } catch (err) {
      const de = err instanceof DispatchError ? err : new DispatchError('INTERNAL', `failed to grant a lease: ${reason(err)}`, { cause: err });
      this.counters.failed();
      if (de.code === 'INTERNAL') this.o.logger.error(de.message, { peer, code: de.code, stack: err instanceof Error ? err.stack : undefined });
      else if (de.code === 'UNAVAILABLE' || de.code === 'BUSY') this.core.incident(`refuse:${de.code}`, `refused a lease to ${peer}: ${de.message}`, { peer, code: de.code }, 'warning');
      conn.send(errorReply(de));
    } finally {
      this.core.leave();
      if (!conn.isClosed) conn.idle();
    }
  }

  /** Stops accepting, lets in-flight requests finish (≤ DRAIN_MS), then releases everything. */
  async stop(why: string): Promise<void> {
    if (!this.core.beginStop(`stopping (${why}): draining ${this.core.running} requests`)) return;
    this.server.close();
    this.queue.wake(); // queued requests see `stopping` and answer SHUTTING_DOWN
    await this.core.drain(DRAIN_MS);
    this.server.endAll(200);
    this.ledger.reportStop();
    this.release();
  }

  private release(): void {
    this.ledger.report();
    this.queue.clear();
    this.server.close();
    this.core.release();
    this.parts.scoreboard.close();
  }
}
