/**
 * The daemon core: what main, every secondary and the watchdog share, composed into each
 * daemon class. It owns
 *
 * - the scoreboard slot: its contents are *projected* from the daemon's state when published
 *   ({@link DaemonCoreOptions.project}); the core adds `heartbeatMs` and `incidents` (the
 *   incidents logged, unless the projection gives its own count);
 * - the mailbox inbox, with a handler registry ({@link DaemonCore.on}); `ping` is answered
 *   with `pong` to the watchdog's mailbox by the core itself (docs/PROTOCOL.md §2);
 * - mailbox writers to peers, one per peer, opened lazily ({@link DaemonCore.send});
 * - incidents ({@link IncidentLog}), counted in the slot;
 * - the tick (every TICK_MS, or {@link DaemonCoreOptions.tickMs}): heartbeat publish and
 *   STATUS= (about once per TICK_MS however short the tick), the systemd keepalive through
 *   the notifier, and whether work ran since the last tick
 *   for V8's marking mode ({@link DaemonCoreOptions.marking}, marking-mode.ts);
 * - the work counter, the drain on stop and the release of everything it holds;
 * - configuration reload (all but paths).
 *
 * Its collaborators are interfaces ({@link SlotPort}, {@link InboxPort}, {@link OutboxPort},
 * {@link NotifierPort}), so a unit test builds a daemon with fakes; daemon-ports.ts opens the
 * real ones (scoreboard slot, mailbox FIFOs).
 */
import { mergeReload, type Config, type ReloadOutcome } from './config.js';
import { DispatchError, reason } from './errors.js';
import { IncidentLog, type IncidentLevel } from './incident-log.js';
import type { Logger } from './logger.js';
import type { MailboxMessage } from './messages.js';
import type { InboxPort, NotifierPort, OutboxPort, SlotPort, SlotState } from './daemon-ports.js';
import type { MarkingPort } from './marking-mode.js';
import { PeerOutboxes } from './peer-outboxes.js';
import { PublishPacer } from './publish-pacer.js';
import { TICK_MS } from './timing.js';
import { formatDaemonId, WATCHDOG, type DaemonId } from './topology.js';

/** Where a daemon is in its life; the projection maps it to the slot's `state`. */
export type Phase = 'starting' | 'ready' | 'stopping' | 'stopped';

export interface DaemonCoreOptions {
  id: DaemonId;
  config: Config;
  logger: Logger;
  notifier: NotifierPort;
  slot: SlotPort;
  inbox: InboxPort;
  /** Opens a writer to a peer's mailbox (called once per peer, lazily). */
  outbox: (peer: DaemonId) => OutboxPort;
  pid: number;
  /** Random per process; sent in pongs. */
  generation: number;
  /**
   * The slot's values, projected from the daemon's state and the core's (its phase, running
   * work, configuration); called on every publish, the first time from the core's constructor.
   * Values it gives win over the core's (the watchdog's `incidents` count restarts ordered).
   */
  project: (core: DaemonCore) => SlotState;
  /** The STATUS= line (sent on ready and each tick). */
  statusLine: (core: DaemonCore) => string;
  /** The daemon's own work each tick, before the heartbeat is published (ms: Date.now()). */
  onTick?: (now: number) => void;
  /** The tick's period in ms from the (reloaded) configuration; default TICK_MS. */
  tickMs?: (config: Config) => number;
  /** How long one kind of incident stays quiet after being logged (ms, default 10 s; IncidentLog). */
  incidentIntervalMs?: number;
  /** Fields added to every incident's log line (e.g. `{ secondary: 'secondary-2' }`). */
  incidentFields?: Record<string, unknown>;
  /** Unix ms now (default Date.now). */
  now?: () => number;
  /** Told each tick whether work ran since the last one (marking-mode.ts); none in unit tests. */
  marking?: MarkingPort | undefined;
}

/** The options a daemon class hands its core as they are. */
export type CoreBasics = Pick<DaemonCoreOptions, 'config' | 'logger' | 'notifier' | 'pid' | 'generation' | 'marking'>;

/** Picks the {@link CoreBasics} out of a daemon's options (which hold more). */
export function coreBasics(o: CoreBasics): CoreBasics {
  return { config: o.config, logger: o.logger, notifier: o.notifier, pid: o.pid, generation: o.generation, marking: o.marking };
}

type Handler<T extends MailboxMessage['t']> = (m: Extract<MailboxMessage, { t: T }>) => void;

export class DaemonCore {
  readonly name: string;
  private phaseNow: Phase = 'starting';
  private heartbeatMs: number;
  private incidentCount = 0;
  private workCount = 0;
  /** Work started since the last tick (for {@link DaemonCoreOptions.marking}). */
  private workStarted = false;
  private idle: (() => void) | undefined;
  private readonly pacer = new PublishPacer(() => {
    if (this.phaseNow !== 'stopped') this.publish();
  });
  private readonly incidents: IncidentLog;
  private readonly handlers = new Map<string, (m: MailboxMessage) => void>();
  private readonly outboxes: PeerOutboxes;
  private readonly now: () => number;

  /** Reads the inbox and publishes the slot (state `starting`). @throws DispatchError SCOREBOARD_IO. */
  constructor(private readonly o: DaemonCoreOptions) {
    this.name = formatDaemonId(o.id);
    this.now = o.now ?? Date.now;
    this.heartbeatMs = this.now();
    this.outboxes = new PeerOutboxes(o.outbox);
    this.incidents = new IncidentLog(o.logger, () => this.incidentCount++, o.incidentIntervalMs, this.now);
    o.inbox.on('message', (m) => this.onMessage(m));
    o.inbox.on('invalid', (err, preview) => this.incident(`mailbox:${err.code}`, `failed to decode a message in mailbox '${o.inbox.label}': ${err.message}, ignoring`, { peer: 'mailbox writer', code: err.code, preview }));
    o.inbox.on('error', (err) => o.logger.error(err.message, { code: err.code }));
    this.on('ping', (m) => {
      this.send(WATCHDOG, { v: 1, t: 'pong', from: this.name, seq: m.seq, pid: o.pid, gen: o.generation }).catch((err: DispatchError) => {
        this.incident(`pong:${err.code}`, `failed to answer the watchdog's ping: ${err.message}, ignoring`, { peer: 'watchdog', code: err.code }, 'warning');
      });
    });
    o.slot.publish(this.slotValues());
  }

  get phase(): Phase {
    return this.phaseNow;
  }

  get stopping(): boolean {
    return this.phaseNow === 'stopping' || this.phaseNow === 'stopped';
  }

  get config(): Config {
    return this.o.config;
  }

  /** This start's number for the slot (1 on the first start since the scoreboard was created). */
  get starts(): number {
    return this.o.slot.starts;
  }

  /** Work in progress (requests being served), counted by {@link enter}/{@link leave}. */
  get running(): number {
    return this.workCount;
  }

  /** The incident log, for helpers that report their own (framed connections). */
  get incidentLog(): IncidentLog {
    return this.incidents;
  }

  /** Registers the handler of one message type (one per type; `ping` is the core's). */
  on<T extends MailboxMessage['t']>(type: T, fn: Handler<T>): this {
    this.handlers.set(type, fn as (m: MailboxMessage) => void);
    return this;
  }

  private onMessage(m: MailboxMessage): void {
    const handler = this.handlers.get(m.t);
    if (handler) handler(m);
    else this.incident(`unexpected:${m.t}`, `unexpected '${m.t}' message in ${this.name}'s mailbox, ignoring`, { peer: 'mailbox writer' });
  }

  /** Sends a message to a peer's mailbox. @throws DispatchError MAILBOX_* (rejects). */
  send(peer: DaemonId, m: MailboxMessage): Promise<void> {
    return this.outboxes.send(peer, m);
  }

  /** Closes the writer to a peer's mailbox, if one is open (a peer gone for good); a later {@link send} opens a new one. */
  closeOutbox(peer: DaemonId): void {
    this.outboxes.close(peer);
  }

  /** Logs an incident (at most once per interval per key) and counts it in the slot. */
  incident(key: string, message: string, fields: Record<string, unknown>, level: IncidentLevel = 'error'): void {
    // The fields are merged only when the line is logged: a flood of incidents (a mailbox full
    // of broken lines) is counted per line, and most are suppressed.
    const extra = this.o.incidentFields;
    this.incidents.report(key, level, message, extra ? () => Object.assign({}, extra, fields) : fields);
  }

  private slotValues(): SlotState {
    const values: SlotState = { heartbeatMs: this.heartbeatMs, incidents: this.incidentCount, ...this.o.project(this) };
    // A stopped daemon holds and runs nothing, whatever was cut off.
    if (this.phaseNow === 'stopped') Object.assign(values, { active: 0, queued: 0, running: 0 });
    return values;
  }

  /** Publishes the slot now (and cancels a pending {@link publishSoon}); a failure is an incident, not an error. */
  publish(): void {
    this.pacer.published();
    try {
      this.o.slot.publish(this.slotValues());
    } catch (err) {
      this.incident('scoreboard', `failed to publish to the scoreboard: ${reason(err)}, ignoring`, {});
    }
  }

  /** Publishes the slot soon, once however many values change meanwhile, at most once per `intervalMs` (PublishPacer). */
  publishSoon(intervalMs = 0): void {
    this.pacer.soon(intervalMs);
  }

  /**
   * The daemon can serve: publishes the slot (`ready` phase) with a fresh heartbeat, sends
   * READY=1 with the status line and starts the tick.
   * @throws DispatchError SCOREBOARD_IO when the slot cannot be written.
   */
  ready(): void {
    this.phaseNow = 'ready';
    this.heartbeatMs = this.now();
    this.o.slot.publish(this.slotValues());
    this.o.notifier.ready(this.o.statusLine(this));
    this.o.notifier.startTicking((now) => this.tick(now), () => this.tickMs);
  }

  /**
   * Starts serving: runs `listen` (the daemon's client socket), then {@link ready}. When
   * `listen` fails, `release` runs (the daemon releases everything) and the error is thrown.
   * @throws whatever `listen` throws; DispatchError SCOREBOARD_IO from ready().
   */
  async serve(listen: () => Promise<void>, release: () => void): Promise<void> {
    try {
      await listen();
    } catch (err) {
      release();
      throw err;
    }
    this.ready();
  }

  private get tickMs(): number {
    return this.o.tickMs?.(this.o.config) ?? TICK_MS;
  }

  /** One tick: the daemon's own work, the heartbeat, STATUS= (the notifier sends WATCHDOG=1 after it). */
  tick(now: number): void {
    try {
      this.o.onTick?.(now);
    } catch (err) {
      this.incident('tick', `failed to run ${this.name}'s periodic work: ${reason(err)}, retrying in ${this.tickMs} ms`, { code: err instanceof DispatchError ? err.code : 'INTERNAL' });
    }
    this.o.marking?.tick(now, this.workStarted || this.workCount > 0);
    this.workStarted = false;
    if (!this.heartbeatDue(now)) return;
    this.heartbeatMs = now;
    try {
      this.o.slot.publish(this.slotValues());
    } catch (err) {
      this.incident('scoreboard', `failed to publish the heartbeat: ${reason(err)}, retrying in ${this.tickMs} ms`, { code: err instanceof DispatchError ? err.code : 'SCOREBOARD_IO' });
    }
    this.o.notifier.status(this.o.statusLine(this));
  }

  /**
   * Whether this tick publishes the heartbeat and STATUS=: every tick of TICK_MS or longer;
   * with a shorter tick (the watchdog's probe round, 300 ms by default) the tick nearest to
   * TICK_MS after the last heartbeat, so that the slot and STATUS= are written about once per
   * TICK_MS whatever the tick (a change that must be seen sooner is published by its daemon:
   * {@link publish}, {@link publishSoon}).
   */
  private heartbeatDue(now: number): boolean {
    const tickMs = this.tickMs;
    if (tickMs >= TICK_MS) return true;
    const since = now - this.heartbeatMs;
    return since < 0 || since + tickMs / 2 >= TICK_MS;
  }

  /** Applies a reloaded configuration (all but paths); `apply` updates what the daemon derived from it. */
  reload(next: Config, apply?: (config: Config) => void): ReloadOutcome {
    const { config, outcome } = mergeReload(this.o.config, next);
    this.o.config = config;
    apply?.(config);
    this.publish();
    return outcome;
  }

  /** Counts one piece of work (a request) as started. */
  enter(): void {
    this.workCount++;
    this.workStarted = true;
  }

  /** Counts one piece of work as over; wakes a pending {@link drain} when none is left. */
  leave(): void {
    this.workCount--;
    if (this.workCount === 0 && this.idle) this.idle();
  }

  /**
   * Enters the `stopping` phase: STOPPING=1 with `status` (which also stops the tick) and a
   * publish, so main and `dispatchctl status` see it. Returns false when already stopping.
   */
  beginStop(status: string): boolean {
    if (this.stopping) return false;
    this.phaseNow = 'stopping';
    this.o.notifier.stopping(status);
    this.publish();
    return true;
  }

  /** Resolves when no work runs any more, or after `ms`. */
  async drain(ms: number): Promise<void> {
    if (this.workCount === 0) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.idle = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.idle = undefined;
  }

  /** Releases everything: the inbox, every writer, the slot (published `stopped` first). */
  release(): void {
    if (this.phaseNow === 'stopped') return;
    this.phaseNow = 'stopped';
    this.pacer.cancel();
    this.o.inbox.close();
    this.outboxes.closeAll();
    this.heartbeatMs = this.now();
    try {
      this.o.slot.publish(this.slotValues());
    } catch {
      // the scoreboard was removed first: nothing to publish
    }
    this.o.slot.close();
  }
}
