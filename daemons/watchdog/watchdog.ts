/**
 * The watchdog daemon: every `probe_interval_ms` it pings main and every running secondary
 * over their mailbox FIFOs and reads the pongs on its own. A daemon that leaves
 * `max_missed` pings in a row unanswered is restarted through systemd; if that restart has
 * not completed after {@link ESCALATE_AFTER_MS}, its main process is killed (SIGKILL) and
 * systemd's Restart= brings it back. No signal is ever used to probe: a frozen daemon is
 * one whose mailbox goes unanswered.
 *
 * The watchdog sends its own WATCHDOG=1 only from its probe loop, so a stuck loop (or one
 * stuck waiting on systemd) gets the watchdog itself restarted by systemd.
 */
import { mergeReload, runtimePaths, type Config, type ReloadOutcome } from '../common/config.js';
import { DispatchError, reason } from '../common/errors.js';
import { IncidentLog } from '../common/incident-log.js';
import type { Logger } from '../common/logger.js';
import { MailboxReader, MailboxWriter } from '../common/mailbox.js';
import type { MailboxMessage } from '../common/messages.js';
import type { Notifier } from '../common/notify.js';
import { SlotWriter } from '../common/scoreboard.js';
import { daemonOfUnit } from '../common/units.js';
import type { UnitManager, UnitState } from './unit-manager.js';

/** A restart not finished after this long (ms) is escalated to SIGKILL of the main process. */
export const ESCALATE_AFTER_MS = 3000;
/**
 * While every probed daemon answers, the unit list (a D-Bus call, the costliest part of a
 * probe round) is refreshed at least this often, to pick up new or removed secondaries (ms).
 * A round that finds an unanswered ping or a restart in progress always refreshes it first.
 */
export const UNIT_LIST_MAX_AGE_MS = 2000;

export interface WatchdogOptions {
  config: Config;
  logger: Logger;
  notifier: Notifier;
  units: UnitManager;
  mailboxFd: number;
  generation: number;
  pid: number;
}

interface Target {
  unit: string;
  name: string;
  writer: MailboxWriter;
  sent: number;
  acked: number;
  missed: number;
  lastAnswerMs: number;
  /** When a restart was ordered and not yet seen through. */
  restartedAtMs: number | undefined;
  escalated: boolean;
  /**
   * The last ping found no reader on the target's mailbox: judged in the next round, after a
   * fresh unit list, so that a unit being stopped is dropped without a warning.
   */
  pingFailed: DispatchError | undefined;
}

/**
 * The watchdog sends WATCHDOG=1 only from its probe loop, so a probe period longer than half
 * of the unit's WatchdogSec= (WATCHDOG_USEC, sd_watchdog_enabled(3)) would have systemd kill
 * it between two rounds, again and again.
 *
 * @param watchdogMs the systemd watchdog period in ms (0: not enabled, nothing to check)
 * @throws DispatchError CONFIG_INVALID naming the key, the value and the bound.
 */
export function checkProbeInterval(config: Config, watchdogMs: number): void {
  const probe = config.watchdog.probe_interval_ms;
  if (watchdogMs > 0 && probe > watchdogMs / 2) {
    throw new DispatchError(
      'CONFIG_INVALID',
      `watchdog.probe_interval_ms = ${probe} is longer than half of the unit's WatchdogSec= (${watchdogMs} ms), so systemd would kill the watchdog between two probe rounds; set it to at most ${Math.floor(watchdogMs / 2)} in /etc/dispatchd/dispatchd.conf`,
    );
  }
}

export class Watchdog {
  private readonly reader: MailboxReader;
  private readonly slot: SlotWriter;
  private readonly targets = new Map<string, Target>();
  private readonly incidents: IncidentLog;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private seq = 0;
  private listedAtMs = 0;
  private ticking: Promise<void> | undefined;

  private constructor(private readonly o: WatchdogOptions) {
    // Probe failures repeat every round: report each kind at most every 30 s.
    this.incidents = new IncidentLog(o.logger, () => undefined, 30_000);
    this.slot = new SlotWriter(o.config.paths.scoreboard, 'watchdog', 0, { pid: o.pid, generation: o.generation });
    this.slot.publish();
    this.reader = new MailboxReader(o.mailboxFd, runtimePaths.watchdogMailbox(o.config.paths.runtime_dir));
    this.reader.on('message', (m) => this.onMessage(m));
    this.reader.on('invalid', (err, preview) => this.incident(`mailbox:${err.code}`, 'error', `failed to decode a message in mailbox '${this.reader.label}': ${err.message}, ignoring`, { peer: 'mailbox writer', code: err.code, preview }));
    this.reader.on('error', (err) => o.logger.error(err.message, { code: err.code }));
  }

  /**
   * Starts probing; READY=1 once the mailbox is read and the loop is running.
   *
   * @throws DispatchError CONFIG_INVALID when the probe period does not fit WatchdogSec=.
   */
  static start(o: WatchdogOptions): Watchdog {
    checkProbeInterval(o.config, o.notifier.watchdogMs);
    const w = new Watchdog(o);
    w.slot.update({ state: 'ready', heartbeatMs: Date.now() });
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
    return outcome;
  }

  statusLine(): string {
    const names = [...this.targets.values()].map((t) => `${t.name}${t.missed ? `(${t.missed} missed)` : ''}`);
    return `${this.stopping ? 'stopping' : 'probing'} ${names.length ? names.join(', ') : 'nothing yet'}; ${this.slot.data.incidents} restarts ordered`;
  }

  private incident(key: string, level: 'error' | 'warning', message: string, fields: Record<string, unknown>): void {
    this.incidents.report(key, level, message, fields);
  }

  private schedule(): void {
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick().finally(() => {
        this.ticking = undefined;
        this.schedule();
      });
    }, this.o.config.watchdog.probe_interval_ms);
  }

  private onMessage(m: MailboxMessage): void {
    if (m.t !== 'pong') {
      this.incident(`unexpected:${m.t}`, 'error', `unexpected '${m.t}' message in the watchdog's mailbox, ignoring`, { peer: 'mailbox writer' });
      return;
    }
    const t = this.targets.get(m.from);
    if (!t) return; // an answer to a ping sent before a restart of the target or of us
    if (m.seq > t.acked) {
      t.acked = m.seq;
      t.missed = 0;
      t.lastAnswerMs = Date.now();
    }
  }

  /** One probe round: refresh the unit list, judge last round's pings, send new ones. */
  async tick(): Promise<void> {
    const now = Date.now();
    let units: UnitState[] | undefined;
    if (this.needUnitList(now)) {
      try {
        units = await this.o.units.list();
        this.listedAtMs = now;
      } catch (err) {
        this.incident('list', 'error', `${reason(err)}; probing the daemons already known`, { code: err instanceof DispatchError ? err.code : 'RESTART_FAILED' });
      }
    }
    if (units) this.refreshTargets(units, now);
    for (const t of this.targets.values()) {
      if (!t.pingFailed) continue;
      this.pingIncident(t, t.pingFailed);
      t.pingFailed = undefined;
    }
    for (const t of this.targets.values()) {
      if (t.restartedAtMs !== undefined) continue;
      if (t.sent > t.acked) t.missed++;
      if (t.missed >= this.o.config.watchdog.max_missed) {
        await this.restart(t, now);
        continue;
      }
      t.writer.send({ v: 1, t: 'ping', from: 'watchdog', seq: ++this.seq }).then(
        () => undefined,
        (err: DispatchError) => {
          // No reader: the unit may be stopping; the next round lists the units first (this
          // ping is unanswered) and warns only if the unit is still meant to run.
          if (err.code === 'MAILBOX_NO_READER') t.pingFailed = err;
          else this.pingIncident(t, err);
        },
      );
      t.sent = this.seq;
    }
    this.slot.data.requests = this.seq;
    this.slot.update({ heartbeatMs: Date.now() });
    this.o.notifier.status(this.statusLine());
    // Only a probe loop that completes keeps the watchdog alive in systemd's eyes.
    this.o.notifier.keepalive();
  }

  private pingIncident(t: Target, err: DispatchError): void {
    this.incident(`ping:${t.name}:${err.code}`, 'warning', `failed to ping ${t.name}: ${err.message}; counting it as missed`, { unit: t.unit, code: err.code });
  }

  /** Whether this round must ask systemd for the units' states (see {@link UNIT_LIST_MAX_AGE_MS}). */
  private needUnitList(now: number): boolean {
    if (this.targets.size === 0 || now - this.listedAtMs >= UNIT_LIST_MAX_AGE_MS) return true;
    for (const t of this.targets.values()) if (t.sent > t.acked || t.restartedAtMs !== undefined) return true;
    return false;
  }

  /**
   * Adds units that are running and idle (no job), drops the others. A unit being started,
   * stopped or restarted is not probed: it cannot answer and systemd is already on it.
   */
  private refreshTargets(units: UnitState[], now: number): void {
    const seen = new Set<string>();
    for (const u of units) {
      const d = daemonOfUnit(u.unit);
      if (!d) continue;
      const t = this.targets.get(d.name);
      if (t?.restartedAtMs !== undefined) {
        seen.add(d.name);
        this.followRestart(t, u, now);
        continue;
      }
      if (u.activeState !== 'active' || u.jobPending) continue;
      seen.add(d.name);
      if (!t) {
        const path = d.name === 'main' ? runtimePaths.mainMailbox(this.o.config.paths.runtime_dir) : runtimePaths.secondaryMailbox(this.o.config.paths.runtime_dir, d.instance);
        this.targets.set(d.name, { unit: u.unit, name: d.name, writer: new MailboxWriter(path, { backpressureTimeoutMs: this.o.config.watchdog.probe_interval_ms }), sent: 0, acked: 0, missed: 0, lastAnswerMs: now, restartedAtMs: undefined, escalated: false, pingFailed: undefined });
      }
    }
    for (const [name, t] of this.targets) {
      if (!seen.has(name)) {
        t.writer.close();
        this.targets.delete(name);
      }
    }
  }

  /** After a restart was ordered: done once the unit is active with no job; escalate if it hangs. */
  private followRestart(t: Target, u: UnitState, now: number): void {
    const since = now - t.restartedAtMs!;
    if (u.activeState === 'active' && !u.jobPending && since > this.o.config.watchdog.probe_interval_ms) {
      this.o.logger.notice(`${t.unit} is active again ${since} ms after the restart`, { unit: t.unit, action: 'restart', outcome: 'recovered', recovery_ms: since });
      t.restartedAtMs = undefined;
      t.escalated = false;
      t.missed = 0;
      t.acked = t.sent;
      return;
    }
    if (since >= ESCALATE_AFTER_MS && !t.escalated) {
      t.escalated = true;
      this.slot.data.incidents++;
      this.o.logger.warning(`${t.unit} has not come back ${since} ms after the restart (state ${u.activeState}); killing its main process (SIGKILL) so that systemd restarts it`, { unit: t.unit, reason: 'restart-hung', action: 'kill' });
      this.o.units.kill(t.unit).catch((err) => this.o.logger.error(`failed to kill ${t.unit}: ${reason(err)}`, { unit: t.unit, code: 'RESTART_FAILED' }));
    }
  }

  private async restart(t: Target, now: number): Promise<void> {
    const silentMs = now - t.lastAnswerMs;
    t.restartedAtMs = now;
    t.escalated = false;
    this.slot.data.incidents++;
    this.o.logger.warning(`${t.unit} missed ${t.missed} pings in a row (no answer for ${silentMs} ms): restarting it`, {
      unit: t.unit,
      reason: 'missed-pings',
      missed: t.missed,
      silent_ms: silentMs,
      action: 'restart',
    });
    try {
      await this.o.units.restart(t.unit);
    } catch (err) {
      this.o.logger.error(`failed to restart ${t.unit}: ${reason(err)}; retrying after ${this.o.config.watchdog.max_missed} more missed pings`, { unit: t.unit, code: 'RESTART_FAILED' });
      t.restartedAtMs = undefined;
      t.missed = 0;
    }
  }

  /** Stops probing and releases the mailbox, writers and D-Bus connection. */
  async stop(why: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.o.notifier.stopping(`stopping (${why})`);
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    for (const t of this.targets.values()) t.writer.close();
    this.targets.clear();
    this.reader.close();
    this.o.units.close();
    try {
      this.slot.update({ state: 'stopped', heartbeatMs: Date.now() });
    } catch {
      // the scoreboard was removed first: nothing to publish
    }
    this.slot.close();
  }
}
