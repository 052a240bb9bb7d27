/**
 * The watchdog daemon: every `probe_interval_ms` it pings main and every running secondary
 * over their mailbox FIFOs and reads the pongs on its own. Each daemon's supervision is the
 * state × event table of ./supervision.ts; this class feeds it events and carries out its
 * actions. A daemon that leaves `max_missed` pings in a row unanswered is restarted through
 * systemd; if that restart has not completed after ESCALATE_AFTER_MS, its main process is
 * killed (SIGKILL) and systemd's Restart= brings it back. A daemon whose service was stopped
 * while its mailbox socket still listens is pinged, so that socket activation starts it.
 * No signal is ever used to probe: a frozen daemon is one whose mailbox goes unanswered.
 *
 * The probe round never waits for systemd: the unit list and each restart or kill are D-Bus
 * calls that are started, followed, and bounded by {@link UNIT_CALL_TIMEOUT_MS}; the round
 * sends WATCHDOG=1 whatever they do, so only a stuck event loop gets the watchdog itself
 * restarted by systemd (WatchdogSec=).
 *
 * It is composed of the daemon core (common/daemon-core.ts) like main and the secondaries:
 * the core owns the slot (projected here: pings sent, restarts ordered), the mailbox inbox,
 * incidents, the tick (here: the probe round, every `probe_interval_ms`), reload and release.
 */
import type { Clock } from '../common/clock.js';
import type { Config, ReloadOutcome } from '../common/config.js';
import { coreBasics, DaemonCore, type DaemonCoreOptions } from '../common/daemon-core.js';
import type { NotifierPort, SlotState } from '../common/daemon-ports.js';
import type { DispatchError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { formatDaemonId, mailboxSocketUnit, serviceUnit, WATCHDOG, type DaemonId } from '../common/topology.js';
import { followCall } from './follow-call.js';
import { checkProbeInterval } from './probe-interval.js';
import { INITIAL, supervise, type Rules, type SupervisionAction, type SupervisionEvent, type TargetState } from './supervision.js';
import { supervisedDaemon, type UnitManager, type UnitState } from './unit-manager.js';
import { openWatchdogParts, type WatchdogParts } from './watchdog-parts.js';

export { ESCALATE_AFTER_MS } from './supervision.js';
export { UNIT_CALL_TIMEOUT_MS } from './follow-call.js';
export type { WatchdogParts } from './watchdog-parts.js';
/**
 * While every probed daemon answers, the unit list (a D-Bus call, the costliest part of a
 * probe round) is refreshed at least this often, to pick up new or removed secondaries (ms).
 * While any daemon is not plainly answering it is asked for every round.
 */
export const UNIT_LIST_MAX_AGE_MS = 2000;

/** Probe failures repeat every round: each kind is logged at most this often (ms). */
const INCIDENT_INTERVAL_MS = 30_000;

/** `marking` (V8's incremental marking, marking-mode.ts) goes to the daemon core as it is. */
export interface WatchdogOptions extends Pick<DaemonCoreOptions, 'marking'> {
  config: Config;
  logger: Logger;
  /** sd_notify; `watchdogMs` is the unit's WatchdogSec= the probe period must fit (0: none). */
  notifier: NotifierPort & { readonly watchdogMs: number };
  units: UnitManager;
  /** The mailbox FIFO fd of dispatchd-watchdog.socket (unused when `parts` are given). */
  mailboxFd: number;
  /** Random per process; published in the slot. */
  generation: number;
  pid: number;
}

interface Target {
  id: DaemonId;
  rules: Rules;
  state: TargetState;
  /** Which restart or kill call is the current one: a late answer to an older one is ignored. */
  call: number;
}

export class Watchdog {
  private readonly core: DaemonCore;
  private readonly clock: Clock;
  private readonly targets = new Map<string, Target>();
  /** The probe round's number: the seq its pings carry. */
  private seq = 0;
  /** Pings sent by this process (the slot's `requests`, docs/SCOREBOARD.md). */
  private pings = 0;
  /** Restarts and kills ordered (the slot's `incidents`, docs/SCOREBOARD.md). */
  private ordered = 0;
  private listedAtMs = -Infinity;
  /** The unit list being asked for (its number), if any. */
  private listing: number | undefined;
  private calls = 0;

  private constructor(private readonly o: WatchdogOptions, parts: WatchdogParts) {
    this.clock = parts.clock;
    this.core = new DaemonCore({
      id: WATCHDOG,
      ...coreBasics(o),
      ...parts.ports,
      now: () => parts.clock.now(),
      project: (c) => this.project(c),
      statusLine: () => this.statusLine(),
      onTick: (now) => this.probe(now),
      tickMs: (config) => config.watchdog.probe_interval_ms,
      incidentIntervalMs: INCIDENT_INTERVAL_MS,
    });
    this.core.on('pong', (m) => {
      const t = this.targets.get(m.from);
      if (t) this.step(t, { e: 'pong', now: this.clock.now(), seq: m.seq }); // else: an answer to a ping sent before a restart of us
    });
  }

  /**
   * Starts probing; READY=1 once the mailbox is read and the probe rounds run.
   *
   * @param parts the slot, mailboxes and clock (default: the real ones, from the configuration's paths).
   * @throws DispatchError CONFIG_INVALID when the probe period does not fit WatchdogSec=;
   *   SCOREBOARD_* when the slot cannot be claimed or written.
   */
  static start(o: WatchdogOptions, parts?: WatchdogParts): Watchdog {
    checkProbeInterval(o.config, o.notifier.watchdogMs);
    const w = new Watchdog(o, parts ?? openWatchdogParts(o.config, o));
    w.core.ready();
    o.logger.info(`watchdog ready: probing every ${o.config.watchdog.probe_interval_ms} ms, restarting after ${o.config.watchdog.max_missed} missed pongs`);
    return w;
  }

  /** Applies a reloaded configuration (all but paths): from the next probe round on. @throws DispatchError CONFIG_INVALID. */
  reload(next: Config): ReloadOutcome {
    checkProbeInterval(next, this.o.notifier.watchdogMs);
    return this.core.reload(next, () => {
      for (const t of this.targets.values()) t.rules = this.rules(t.id);
    });
  }

  statusLine(): string {
    const names = [...this.targets.values()].map((t) => `${t.rules.name}${t.state.s === 'suspect' ? `(${t.state.missed} missed)` : ''}`);
    return `${this.core.stopping ? 'stopping' : 'probing'} ${names.length ? names.join(', ') : 'nothing yet'}; ${this.ordered} restarts ordered`;
  }

  /** Each daemon's supervision state, by name (for status and tests). */
  states(): Record<string, TargetState['s']> {
    return Object.fromEntries([...this.targets].map(([name, t]) => [name, t.state.s]));
  }

  private project(core: DaemonCore): SlotState {
    return { state: core.phase, requests: this.pings, incidents: this.ordered };
  }

  /** One probe round (the core's tick): ask for the unit list if due (not waiting for it), judge and ping. */
  private probe(now: number): void {
    ++this.seq;
    if (this.needUnitList(now)) this.list(now);
    for (const t of this.targets.values()) this.step(t, { e: 'tick', now, seq: this.seq });
  }

  /** Whether this round must ask systemd for the units' states (see {@link UNIT_LIST_MAX_AGE_MS}). */
  private needUnitList(now: number): boolean {
    if (this.listing !== undefined) return false;
    if (this.targets.size === 0 || now - this.listedAtMs >= UNIT_LIST_MAX_AGE_MS) return true;
    for (const t of this.targets.values()) if (t.state.s !== 'probing' || t.state.deferred !== undefined || t.state.sent > t.state.acked) return true;
    return false;
  }

  private list(now: number): void {
    const n = (this.listing = ++this.calls);
    followCall(this.clock, () => this.o.units.list(), 'list units', (err, units) => {
      if (this.listing !== n || this.core.stopping) return;
      this.listing = undefined;
      if (err) {
        this.core.incident('list', `${err.message}; probing the daemons already known`, { code: err.code });
        const failedAt = this.clock.now();
        for (const t of this.targets.values()) this.step(t, { e: 'list-failed', now: failedAt });
      } else {
        this.listedAtMs = now;
        this.onUnitList(units!, now);
      }
    });
  }

  /** Feeds a unit list asked for at `askedMs` to every target, adding newly listed daemons and forgetting the gone. */
  private onUnitList(units: UnitState[], askedMs: number): void {
    const byName = new Map(units.map((u) => [u.unit, u]));
    const now = this.clock.now();
    const listed = new Set<string>();
    for (const u of units) {
      const id = supervisedDaemon(u.unit);
      if (!id) continue;
      const name = formatDaemonId(id);
      listed.add(name);
      const mailbox = byName.get(mailboxSocketUnit(id));
      let t = this.targets.get(name);
      if (!t) this.targets.set(name, (t = { id, rules: this.rules(id), state: INITIAL, call: 0 }));
      this.step(t, { e: 'unit-listed', now, askedMs, seq: this.seq, unit: { activeState: u.activeState, jobPending: u.jobPending, mailboxListening: mailbox?.activeState === 'active' && !mailbox.jobPending } });
    }
    for (const [name, t] of this.targets) if (!listed.has(name)) this.step(t, { e: 'unit-missing' });
  }

  private rules(id: DaemonId): Rules {
    const w = this.core.config.watchdog;
    return { name: formatDaemonId(id), unit: serviceUnit(id), maxMissed: w.max_missed, probeIntervalMs: w.probe_interval_ms };
  }

  /** Applies one event to a target and carries out the actions. */
  private step(t: Target, ev: SupervisionEvent): void {
    const { state, actions } = supervise(t.state, ev, t.rules);
    t.state = state;
    for (const a of actions) this.act(t, a);
    if (state.s === 'gone' && this.targets.get(t.rules.name) === t) {
      this.core.closeOutbox(t.id);
      this.targets.delete(t.rules.name);
    }
  }

  private act(t: Target, a: SupervisionAction): void {
    const { unit, name } = t.rules;
    switch (a.a) {
      case 'ping':
        this.pings++;
        this.core.send(t.id, { v: 1, t: 'ping', from: 'watchdog', seq: a.seq }).catch((err: DispatchError) => {
          if (this.targets.get(name) === t) this.step(t, { e: 'ping-failed', code: err.code, message: err.message });
        });
        return;
      case 'restart':
      case 'kill': {
        const n = (t.call = ++this.calls);
        const call = a.a === 'restart' ? () => this.o.units.restart(unit) : () => this.o.units.kill(unit);
        followCall(this.clock, call, `${a.a} ${unit}`, (err) => {
          if (t.call !== n || this.targets.get(name) !== t) return;
          if (a.a === 'restart') this.step(t, err ? { e: 'restart-failed', message: err.message } : { e: 'restart-ok' });
          else if (err) this.step(t, { e: 'kill-failed', message: err.message });
        });
        return;
      }
      case 'log':
        this.o.logger[a.level](a.message, a.fields);
        return;
      case 'incident':
        this.core.incident(a.key, a.message, a.fields, a.level === 'notice' ? 'warning' : a.level);
        return;
      case 'count':
        this.ordered++;
        return;
    }
  }

  /** Stops probing and releases the mailbox, writers, slot and D-Bus connection (no work to drain). */
  async stop(why: string): Promise<void> {
    if (!this.core.beginStop(`stopping (${why})`)) return;
    this.targets.clear();
    this.o.units.close();
    this.core.release();
  }
}
