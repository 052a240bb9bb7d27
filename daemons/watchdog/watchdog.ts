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
 */
import { mergeReload, type Config, type ReloadOutcome } from '../common/config.js';
import type { DispatchError } from '../common/errors.js';
import { IncidentLog } from '../common/incident-log.js';
import type { Logger } from '../common/logger.js';
import type { MailboxMessage } from '../common/messages.js';
import type { Notifier } from '../common/notify.js';
import { formatDaemonId, mailboxPath, mailboxSocketUnit, serviceUnit, type DaemonId } from '../common/topology.js';
import { checkProbeInterval } from './probe-interval.js';
import { INITIAL, supervise, type Rules, type SupervisionAction, type SupervisionEvent, type TargetState } from './supervision.js';
import { followCall } from './follow-call.js';
import { supervisedDaemon, type UnitManager, type UnitState } from './unit-manager.js';
import type { PingWriter, WatchdogParts } from './watchdog-parts.js';

export { ESCALATE_AFTER_MS } from './supervision.js';
export { UNIT_CALL_TIMEOUT_MS } from './follow-call.js';
export type { Clock, Inbox, PingWriter, WatchdogParts, WatchdogSlot } from './watchdog-parts.js';
/**
 * While every probed daemon answers, the unit list (a D-Bus call, the costliest part of a
 * probe round) is refreshed at least this often, to pick up new or removed secondaries (ms).
 * While any daemon is not plainly answering it is asked for every round.
 */
export const UNIT_LIST_MAX_AGE_MS = 2000;

/** What a Watchdog is built from: real parts in production (watchdogParts()), fakes in tests. */
export interface WatchdogOptions extends WatchdogParts {
  config: Config;
  logger: Logger;
  notifier: Notifier;
  units: UnitManager;
}

interface Target {
  id: DaemonId;
  rules: Rules;
  writer: PingWriter;
  state: TargetState;
  /** Which restart or kill call is the current one: a late answer to an older one is ignored. */
  call: number;
}

export class Watchdog {
  private readonly targets = new Map<string, Target>();
  private readonly incidents: IncidentLog;
  private timer: unknown;
  private stopping = false;
  /** The probe round's number: the seq its pings carry. */
  private seq = 0;
  /** Pings sent by this process (the slot's `requests`, docs/SCOREBOARD.md). */
  private pings = 0;
  private listedAtMs = -Infinity;
  /** The unit list being asked for (its number), if any. */
  private listing: number | undefined;
  private calls = 0;

  private constructor(private readonly o: WatchdogOptions) {
    // Probe failures repeat every round: report each kind at most every 30 s.
    this.incidents = new IncidentLog(o.logger, () => undefined, 30_000);
    o.inbox.on('message', (m) => this.onMessage(m));
    o.inbox.on('invalid', (err, preview) => this.incidents.report(`mailbox:${err.code}`, 'error', `failed to decode a message in mailbox '${o.inbox.label}': ${err.message}, ignoring`, { peer: 'mailbox writer', code: err.code, preview }));
    o.inbox.on('error', (err) => o.logger.error(err.message, { code: err.code }));
  }

  /**
   * Starts probing; READY=1 once the mailbox is read and the loop is running.
   *
   * @throws DispatchError CONFIG_INVALID when the probe period does not fit WatchdogSec=.
   */
  static start(o: WatchdogOptions): Watchdog {
    checkProbeInterval(o.config, o.notifier.watchdogMs);
    const w = new Watchdog(o);
    o.slot.update({ state: 'ready', heartbeatMs: o.clock.now() });
    o.notifier.ready(w.statusLine());
    w.schedule();
    o.logger.info(`watchdog ready: probing every ${o.config.watchdog.probe_interval_ms} ms, restarting after ${o.config.watchdog.max_missed} missed pongs`);
    return w;
  }

  /** Applies a reloaded configuration (all but paths): from the next probe round on. */
  reload(next: Config): ReloadOutcome {
    checkProbeInterval(next, this.o.notifier.watchdogMs);
    const { config, outcome } = mergeReload(this.o.config, next);
    this.o.config = config;
    for (const t of this.targets.values()) t.rules = this.rules(t.id);
    return outcome;
  }

  statusLine(): string {
    const names = [...this.targets.values()].map((t) => `${t.rules.name}${t.state.s === 'suspect' ? `(${t.state.missed} missed)` : ''}`);
    return `${this.stopping ? 'stopping' : 'probing'} ${names.length ? names.join(', ') : 'nothing yet'}; ${this.o.slot.data.incidents} restarts ordered`;
  }

  /** Each daemon's supervision state, by name (for status and tests). */
  states(): Record<string, TargetState['s']> {
    return Object.fromEntries([...this.targets].map(([name, t]) => [name, t.state.s]));
  }

  private schedule(): void {
    if (this.stopping) return;
    this.timer = this.o.clock.setTimeout(() => {
      this.tick();
      this.schedule();
    }, this.o.config.watchdog.probe_interval_ms);
  }

  private onMessage(m: MailboxMessage): void {
    if (m.t !== 'pong') {
      this.incidents.report(`unexpected:${m.t}`, 'error', `unexpected '${m.t}' message in the watchdog's mailbox, ignoring`, { peer: 'mailbox writer' });
      return;
    }
    const t = this.targets.get(m.from);
    if (t) this.step(t, { e: 'pong', now: this.o.clock.now(), seq: m.seq }); // else: an answer to a ping sent before a restart of us
  }

  /** One probe round: ask for the unit list if due (not waiting for it), judge and ping, keepalive. */
  tick(): void {
    const now = this.o.clock.now();
    ++this.seq;
    if (this.needUnitList(now)) this.list(now);
    for (const t of this.targets.values()) this.step(t, { e: 'tick', now, seq: this.seq });
    this.o.slot.data.requests = this.pings;
    this.o.slot.update({ heartbeatMs: now });
    this.o.notifier.status(this.statusLine());
    this.o.notifier.keepalive(now);
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
    followCall(this.o.clock, () => this.o.units.list(), 'list units', (err, units) => {
      if (this.listing !== n || this.stopping) return;
      this.listing = undefined;
      if (err) this.incidents.report('list', 'error', `${err.message}; probing the daemons already known`, { code: err.code });
      else {
        this.listedAtMs = now;
        this.onUnitList(units!);
      }
    });
  }

  /** Feeds a unit list to every target, adding newly listed daemons and forgetting the gone. */
  private onUnitList(units: UnitState[]): void {
    const byName = new Map(units.map((u) => [u.unit, u]));
    const now = this.o.clock.now();
    const listed = new Set<string>();
    for (const u of units) {
      const id = supervisedDaemon(u.unit);
      if (!id) continue;
      const name = formatDaemonId(id);
      listed.add(name);
      const mailbox = byName.get(mailboxSocketUnit(id));
      let t = this.targets.get(name);
      if (!t) {
        t = { id, rules: this.rules(id), writer: this.o.writer(mailboxPath(this.o.config.paths.runtime_dir, id), this.o.config.watchdog.probe_interval_ms), state: INITIAL, call: 0 };
        this.targets.set(name, t);
      }
      this.step(t, { e: 'unit-listed', now, seq: this.seq, unit: { activeState: u.activeState, jobPending: u.jobPending, mailboxListening: mailbox?.activeState === 'active' && !mailbox.jobPending } });
    }
    for (const [name, t] of this.targets) if (!listed.has(name)) this.step(t, { e: 'unit-missing' });
  }

  private rules(id: DaemonId): Rules {
    const w = this.o.config.watchdog;
    return { name: formatDaemonId(id), unit: serviceUnit(id), maxMissed: w.max_missed, probeIntervalMs: w.probe_interval_ms };
  }

  /** Applies one event to a target and carries out the actions. */
  private step(t: Target, ev: SupervisionEvent): void {
    const { state, actions } = supervise(t.state, ev, t.rules);
    t.state = state;
    for (const a of actions) this.act(t, a);
    if (state.s === 'gone' && this.targets.get(t.rules.name) === t) {
      t.writer.close();
      this.targets.delete(t.rules.name);
    }
  }

  private act(t: Target, a: SupervisionAction): void {
    const { unit, name } = t.rules;
    switch (a.a) {
      case 'ping':
        this.pings++;
        t.writer.send({ v: 1, t: 'ping', from: 'watchdog', seq: a.seq }).catch((err: DispatchError) => {
          if (this.targets.get(name) === t) this.step(t, { e: 'ping-failed', code: err.code, message: err.message });
        });
        return;
      case 'restart':
      case 'kill': {
        const n = (t.call = ++this.calls);
        const call = a.a === 'restart' ? () => this.o.units.restart(unit) : () => this.o.units.kill(unit);
        followCall(this.o.clock, call, `${a.a} ${unit}`, (err) => {
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
        this.incidents.report(a.key, a.level === 'notice' ? 'warning' : a.level, a.message, a.fields);
        return;
      case 'count':
        this.o.slot.data.incidents++;
        return;
    }
  }

  /** Stops probing and releases the mailbox, writers and D-Bus connection. */
  async stop(why: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.o.notifier.stopping(`stopping (${why})`);
    this.o.clock.clearTimeout(this.timer);
    for (const t of this.targets.values()) t.writer.close();
    this.targets.clear();
    this.o.inbox.close();
    this.o.units.close();
    try {
      this.o.slot.update({ state: 'stopped', heartbeatMs: this.o.clock.now() });
    } catch {
      // the scoreboard was removed first: nothing to publish
    }
    this.o.slot.close();
  }
}
