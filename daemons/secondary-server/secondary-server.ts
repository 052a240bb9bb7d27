/**
 * Secondary server N: hands its capacity (`max_leases`) to main as credits over main's mailbox
 * FIFO (credit-issuer.ts), checks by itself the lease a client presents on its stream socket
 * (lease-table.ts: a MAC and a replay window, docs/PROTOCOL.md §2.2), runs the request with a
 * deadline (each `run` frame: run-frame-handler.ts), and reports claims and ends of leases to
 * main in batches.
 *
 * A lease is good once, for one connection and one request type: the first `run` frame
 * claims it, later frames on the same connection reuse it, and it ends when that connection
 * closes. It is bound to this process's generation: a lease minted for an earlier process of
 * secondary N is refused as LEASE_STALE. Each kind of bad lease is logged once per interval.
 *
 * What it runs is the types of its `serve` list (docs/TYPES.md), through a TypeRunner; it
 * publishes them, with per-type counters, in its served-types file, which main routes by.
 */
import type net from 'node:net';
import type { Config, ReloadOutcome } from '../common/config.js';
import { DaemonCore, type DaemonCoreOptions } from '../common/daemon-core.js';
import { openDaemonPorts, type DaemonPorts, type NotifierPort, type SlotState } from '../common/daemon-ports.js';
import { DispatchError, reason } from '../common/errors.js';
import { FramedServer, type ClientServer, type ClientServerFactory } from '../common/framed-server.js';
import type { Logger } from '../common/logger.js';
import { RequestCounters } from '../common/request-counters.js';
import { loadLeaseKey } from '../common/lease-key.js';
import { LeaseSigner } from '../common/lease-token.js';
import { CUT_OFF_MS, DRAIN_MS } from '../common/timing.js';
import { formatDaemonId, leaseKeyPath, MAIN, secondary, servedTypesPath } from '../common/topology.js';
import { CreditIssuer } from './credit-issuer.js';
import { runningMainGeneration } from './running-main.js';
import { CreditWindow } from './credit-window.js';
import { LeaseTable, type Lease } from './lease-table.js';
import { writeServedTypes, type ServedTypesFile } from '../common/served-types.js';
import { loadTypesFor, servedTypes, type TypeRegistry } from '../common/type-registry.js';
import { createHandler } from './handlers/handler.js';
import { TypeRunner } from './type-runner.js';
import { RunFrameHandler, type ConnectionLease } from './run-frame-handler.js';

/**
 * Request counters are published at most once per this many ms after requests: a request seen
 * alone is counted before its client can look, a busy lease costs one publish per interval.
 */
const COUNTERS_PUBLISH_MS = 5;

/** `marking` (V8's incremental marking, marking-mode.ts) goes to the daemon core as it is. */
export interface SecondaryServerOptions extends Pick<DaemonCoreOptions, 'marking'> {
  config: Config;
  logger: Logger;
  notifier: NotifierPort;
  instance: number;
  listen: { fd: number } | { path: string };
  /** This daemon's mailbox FIFO, open for reading (unused when `ports` are given). */
  mailboxFd: number;
  generation: number;
  pid: number;
}

/** What a secondary is built from besides its options (unit tests pass fakes). */
export interface SecondaryServerParts {
  /** The slot and mailboxes (default: the real ones, from the configuration's paths). */
  ports?: DaemonPorts;
  /** The client side (default: a FramedServer on the `listen` socket). */
  clientServer?: ClientServerFactory;
  /** The types it serves (default: its `serve` list of the configuration's types directories). */
  types?: TypeRegistry;
  /** Where its served types go (default: the file beside the scoreboard, served-types.ts). */
  publishTypes?: (content: ServedTypesFile) => void;
  /** The suite's lease key (default: read from beside the scoreboard, lease-key.ts). */
  leaseKey?: Buffer;
  /** The generation of the main process running now (default: from the scoreboard, running-main.ts). */
  mainGeneration?: number;
}

export class SecondaryServer {
  private readonly core: DaemonCore;
  private readonly server: ClientServer;
  private readonly counters = new RequestCounters();
  private readonly leases: LeaseTable;
  private readonly credits: CreditIssuer;
  private readonly name: string;
  private readonly runner: TypeRunner;
  private readonly runFrames: RunFrameHandler;

  private constructor(private readonly o: SecondaryServerOptions, ports: DaemonPorts, clientServer: ClientServerFactory, types: TypeRegistry, private readonly writeTypes: (content: ServedTypesFile) => void, key: Buffer) {
    const id = secondary(o.instance);
    this.name = formatDaemonId(id);
    // Fresh for one lease lifetime (main mints only then), valid for two (docs/PROTOCOL.md §2.2).
    const ttl = o.config.main.lease_ttl_ms;
    const window = new CreditWindow(ttl, 2 * ttl);
    // The lease table comes before the core: the core's first publish projects it.
    const signer = new LeaseSigner(key, o.instance, o.generation);
    this.leases = new LeaseTable({ name: this.name, generation: o.generation, signer, window, onClaim: (seq) => this.credits.claim(seq), onEnd: (lease) => this.onLeaseEnd(lease) });
    this.core = new DaemonCore({
      id,
      config: o.config,
      logger: o.logger,
      notifier: o.notifier,
      ...ports,
      pid: o.pid,
      generation: o.generation,
      marking: o.marking,
      project: (core) => this.project(core),
      statusLine: () => this.statusLine(),
      onTick: () => this.publishTypes(false),
      incidentFields: { secondary: this.name },
    });
    this.runner = new TypeRunner(types, this.name, o.logger, (t) => createHandler(t, o.logger, { runtimeDir: o.config.paths.runtime_dir }));
    this.credits = new CreditIssuer({
      from: this.name,
      generation: o.generation,
      window,
      maxLeases: () => this.core.config.secondary.max_leases,
      inUse: () => this.leases.size,
      stopping: () => this.core.stopping,
      send: (m) => this.core.send(MAIN, m),
      failed: (err) => this.core.incident(`main:${err.code}`, `failed to send credits to main: ${err.message}; they are taken back and granted again`, { peer: 'main', code: err.code }, 'warning'),
    });
    this.runFrames = new RunFrameHandler({
      name: this.name, instance: o.instance, generation: o.generation, logger: o.logger,
      runner: this.runner, leases: this.leases, counters: this.counters,
      maxLeases: () => this.core.config.secondary.max_leases,
      enter: () => this.core.enter(), leave: () => this.core.leave(),
      publishSoon: () => this.publishCountersSoon(),
      incident: (key, message, fields, level) => this.core.incident(key, message, fields, level),
    });
    this.core.on('want', (m) => {
      if (m.to === o.generation) this.credits.want(m.gen);
    });
    this.server = clientServer({
      limits: () => ({ maxBodyBytes: this.core.config.secondary.max_payload_bytes, idleTimeoutMs: this.core.config.secondary.client_idle_timeout_ms }),
      incidents: this.core.incidentLog,
      logger: o.logger,
      refusing: () => this.core.stopping,
      accept: (peer) => {
        const state: ConnectionLease = { lease: undefined };
        return {
          onFrame: (c, f) => this.runFrames.handle(c, f, peer, state),
          onClose: () => {
            if (state.lease) this.leases.end(state.lease);
          },
        };
      },
    });
  }

  /**
   * Starts secondary N: loads the types it serves, claims its slot, listens, publishes its
   * served types, sends READY=1 and tells main it is ready.
   * @throws DispatchError CONFIG_INVALID (a bad types file), SCOREBOARD_* or CONNECT_FAILED.
   */
  static async start(o: SecondaryServerOptions, parts: SecondaryServerParts = {}): Promise<SecondaryServer> {
    const types = parts.types ?? servedTypes(o.config, o.instance, loadTypesFor(o.config));
    const write = parts.publishTypes ?? ((content: ServedTypesFile) => writeServedTypes(servedTypesPath(o.config.paths.scoreboard, secondary(o.instance)), content));
    const ports = parts.ports ?? openDaemonPorts(o.config, secondary(o.instance), { mailboxFd: o.mailboxFd, pid: o.pid, generation: o.generation, capacity: o.config.secondary.max_leases });
    const key = parts.leaseKey ?? loadLeaseKey(leaseKeyPath(o.config.paths.scoreboard));
    const s = new SecondaryServer(o, ports, parts.clientServer ?? ((f) => new FramedServer(f)), types, write, key);
    // Published before READY=1 and `ready`: main routes by it as soon as it hears of this process.
    s.publishTypes(true);
    await s.core.serve(() => s.server.listen(o.listen), () => s.release());
    s.core.send(MAIN, { v: 1, t: 'ready', from: s.name, gen: o.generation }).catch((err: DispatchError) => {
      // main is not running yet: it reads the scoreboard when it starts
      o.logger.debug(`failed to tell main that ${s.name} is ready: ${err.message}, ignoring`, { code: err.code });
    });
    s.credits.grantedTo('mainGeneration' in parts ? parts.mainGeneration : runningMainGeneration(o.config.paths.scoreboard));
    s.credits.flush(); // its first credits: main mints leases from them
    o.logger.info(`${s.name} ready, serving ${s.runner.names().join(', ') || 'no type'}`, { generation: o.generation, max_leases: o.config.secondary.max_leases });
    return s;
  }

  address(): string | net.AddressInfo | null {
    return this.server.address();
  }

  /**
   * Applies a reloaded configuration (all but paths) and its request types: new limits and
   * types hold for new leases and requests; requests running finish on what they started with.
   * @throws DispatchError CONFIG_INVALID (a bad types file): nothing is applied.
   */
  reload(next: Config): ReloadOutcome {
    const types = servedTypes(next, this.o.instance, loadTypesFor(next));
    const outcome = this.core.reload(next);
    const diff = this.runner.reload(types);
    for (const [what, names] of Object.entries(diff)) if (names.length) outcome.applied.push(`types ${what}: ${names.join(', ')}`);
    this.publishTypes(true);
    // main re-reads the served types when a secondary says it is ready.
    this.core.send(MAIN, { v: 1, t: 'ready', from: this.name, gen: this.o.generation }).catch(() => undefined);
    return outcome;
  }

  /** Writes the served-types file when something changed (or `force`); a failure is an incident, not fatal. */
  private publishTypes(force: boolean): void {
    const types = this.runner.snapshot((t) => this.leases.countOf(t), force);
    if (!types) return;
    try {
      this.writeTypes({ version: 1, secondary: this.o.instance, generation: this.o.generation, pid: this.o.pid, updated_ms: Date.now(), types });
    } catch (err) {
      this.core.incident('served-types', `${reason(err)}; main may not route new types here until it succeeds (retrying every tick)`, { code: err instanceof DispatchError ? err.code : 'SCOREBOARD_IO' });
      this.runner.touch();
    }
  }

  statusLine(): string {
    return `${this.core.stopping ? 'stopping' : 'ready'}: ${this.leases.size}/${this.core.config.secondary.max_leases} leases in use, ${this.core.running} running, ${this.counters.requests} served, ${this.counters.failures} failed`;
  }

  /** The slot: leases in use against max_leases decide ready/busy/full. */
  private project(core: DaemonCore): SlotState {
    const max = core.config.secondary.max_leases;
    const held = this.leases.size;
    const state = core.phase !== 'ready' ? core.phase : held === 0 ? 'ready' : held >= max ? 'full' : 'busy';
    return { state, active: held, capacity: max, running: core.running, ...this.counters.values() };
  }

  /** Publishes the counters, `running` and the leases in use soon: at most once per COUNTERS_PUBLISH_MS, never per request. */
  private publishCountersSoon(): void {
    this.core.publishSoon(COUNTERS_PUBLISH_MS);
  }

  /** A lease ended (its connection closed, a claim refused, or stop): main hears of it, and gets the capacity back. */
  private onLeaseEnd(lease: Lease): void {
    this.runner.touch();
    this.publishCountersSoon();
    this.credits.end(lease.seq, lease.requests, lease.failed);
  }

  // ---- stop ----------------------------------------------------------------------------

  /**
   * Refuses new work, lets running requests finish (≤ DRAIN_MS), cuts off the rest with a
   * retryable SHUTTING_DOWN answer (≤ CUT_OFF_MS to send it), ends every lease, releases
   * everything.
   */
  async stop(why: string): Promise<void> {
    if (!this.core.beginStop(`stopping (${why}): ${this.core.running} requests running`)) return;
    this.server.close();
    await this.core.drain(DRAIN_MS);
    if (this.core.running > 0) {
      this.runner.cutOff();
      await this.core.drain(CUT_OFF_MS);
    }
    this.release();
    await this.runner.close();
  }

  private release(): void {
    this.leases.endAll();
    this.credits.close(); // the ends of the last leases reach main
    // end(), not destroy(): an answer just written (SHUTTING_DOWN) still reaches its client.
    this.server.endAll(100);
    this.server.close();
    this.core.release();
  }
}
