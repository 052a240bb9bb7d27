/**
 * What the watchdog needs from the service manager: which dispatchd units are running, and
 * a way to restart (or, when a restart hangs, kill) one. Production talks to systemd over
 * the system D-Bus (org.freedesktop.systemd1(5)); tests pass their own implementation.
 */
import dbus from 'dbus-next';
import { DispatchError, reason } from '../common/errors.js';
import { daemonOfUnit, PROBED_UNIT_PATTERNS, type DaemonId } from '../common/topology.js';

/** A unit as systemd reports it (ListUnitsByPatterns). */
export interface UnitState {
  unit: string;
  /** ActiveState: active, activating, deactivating, reloading, inactive, failed. */
  activeState: string;
  /** True while a job (start, stop, restart) is queued or running for the unit. */
  jobPending: boolean;
}

export interface UnitManager {
  /**
   * The main and secondary service units systemd knows, and their mailbox socket units
   * ({@link PROBED_UNIT_PATTERNS}), with their states.
   */
  list(): Promise<UnitState[]>;
  /**
   * Restarts a running unit (stop: SIGTERM then SIGCONT, so a frozen process wakes to exit;
   * then start). Never starts a stopped unit, never replaces a job already queued for it
   * (an operator's stop): systemd's TryRestartUnit in job mode "fail".
   * @throws DispatchError RESTART_FAILED when systemd refuses or does not answer.
   */
  restart(unit: string): Promise<void>;
  /** Sends SIGKILL to a unit's main process; systemd's Restart= brings it back. */
  kill(unit: string): Promise<void>;
  close(): void;
}

/** The units the watchdog lists (topology.ts): the services it probes and their mailbox sockets. */
export { PROBED_UNIT_PATTERNS };

/** The daemons the watchdog supervises: main and the secondaries (not itself). */
export function supervisedDaemon(unit: string): DaemonId | undefined {
  const id = daemonOfUnit(unit);
  return id && id.kind !== 'watchdog' ? id : undefined;
}

const SIGKILL = 9;
/** A D-Bus call that takes longer than this (ms) fails, and the connection is renewed. */
const DBUS_TIMEOUT_MS = 2000;

type Manager = dbus.ClientInterface & {
  ListUnitsByPatterns(states: string[], patterns: string[]): Promise<Array<[string, string, string, string, string, string, string, number, string, string]>>;
  TryRestartUnit(name: string, mode: string): Promise<string>;
  KillUnit(name: string, whom: string, signal: number): Promise<void>;
};

/**
 * systemd's manager over the system bus (dbus-next). Calls as user `dispatchd` are allowed
 * for dispatchd-* units only, by /usr/share/polkit-1/rules.d/dispatchd.rules.
 */
export class DbusUnitManager implements UnitManager {
  private bus: dbus.MessageBus | undefined;
  private manager: Promise<Manager> | undefined;

  private connect(): Promise<Manager> {
    if (!this.manager) {
      const bus = dbus.systemBus();
      this.bus = bus;
      bus.on('error', () => this.reset()); // reconnect on the next call
      this.manager = bus
        .getProxyObject('org.freedesktop.systemd1', '/org/freedesktop/systemd1')
        .then((o) => o.getInterface('org.freedesktop.systemd1.Manager') as Manager);
      this.manager.catch(() => this.reset());
    }
    return this.manager;
  }

  private reset(): void {
    try {
      this.bus?.disconnect();
    } catch {
      // already disconnected
    }
    this.bus = undefined;
    this.manager = undefined;
  }

  private async call<T>(what: string, fn: (m: Manager) => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${DBUS_TIMEOUT_MS} ms`)), DBUS_TIMEOUT_MS);
    });
    try {
      return await Promise.race([this.connect().then(fn), timeout]);
    } catch (err) {
      const text = reason(err);
      if (!/Interactive authentication required|Access denied|not allowed/i.test(text)) this.reset();
      const hint = /Interactive authentication required|Access denied/i.test(text) ? ' (is the polkit rule /usr/share/polkit-1/rules.d/dispatchd.rules installed and polkitd running?)' : '';
      throw new DispatchError('RESTART_FAILED', `failed to ${what} through systemd's D-Bus API: ${text}${hint}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  async list(): Promise<UnitState[]> {
    const rows = await this.call('list units', (m) => m.ListUnitsByPatterns([], [...PROBED_UNIT_PATTERNS]));
    return rows.map((r) => ({ unit: r[0], activeState: r[3], jobPending: r[7] !== 0 }));
  }

  async restart(unit: string): Promise<void> {
    await this.call(`restart ${unit}`, (m) => m.TryRestartUnit(unit, 'fail'));
  }

  async kill(unit: string): Promise<void> {
    await this.call(`kill ${unit}`, (m) => m.KillUnit(unit, 'main', SIGKILL));
  }

  close(): void {
    this.reset();
  }
}
