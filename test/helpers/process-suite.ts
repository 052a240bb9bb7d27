/**
 * The whole suite as processes, with what systemd does imitated: socket activation (the
 * listening socket and the mailbox FIFO passed as fds 3 and 4 with LISTEN_FDS, LISTEN_PID
 * and LISTEN_FDNAMES=client:mailbox, by test/helpers/activate.py), readiness (READY=1 on a
 * NOTIFY_SOCKET the suite owns), FIFOs held open across restarts (ListenFIFO=),
 * `Restart=on-failure` after `RestartSec=` (a daemon that dies unexpectedly is started again;
 * `restart: false` turns it off) and, for the watchdog daemon run in this process, its
 * RestartUnit/KillUnit (SIGTERM then SIGCONT, then start). Everything lives in a temporary
 * runtime directory; nothing touches /run (the scoreboard goes to /dev/shm only when asked).
 *
 * Used by the component tests, `npm run chaos` and `npm run fuzz` without a sandbox, and
 * `npm run bench` (its plain target).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../daemons/common/config.js';
import { createLogger } from '../../daemons/common/logger.js';
import { openMailboxFd } from '../../daemons/common/mailbox.js';
import { Notifier, type NotifyBinding } from '../../daemons/common/notify.js';
import { removeLeaseKey } from '../../daemons/common/lease-key.js';
import { createScoreboard, removeScoreboard } from '../../daemons/common/scoreboard-file.js';
import type { SlotData } from '../../daemons/common/scoreboard-layout.js';
import { ScoreboardReader } from '../../daemons/common/scoreboard-reader.js';
import { removeServedTypes } from '../../daemons/common/served-types.js';
import { clientSocketPath, daemonOfUnit, entryPoint, formatDaemonId, instanceOf, leaseKeyPath, mailboxPath, parseDaemonId, serviceUnitOf, suiteDaemons, type DaemonId } from '../../daemons/common/topology.js';
import type { UnitManager, UnitState } from '../../daemons/watchdog/unit-manager.js';
import { STALE_HEARTBEAT_MS } from '../../daemons/common/timing.js';
import { Watchdog } from '../../daemons/watchdog/watchdog.js';
import { onCleanup } from './cleanup.js';
import { runCommand, type ExecResult } from './command.js';
import type { Harness } from './failure.js';
import { NotifySocket } from './notify-socket.js';
import { ACTIVATE_PY, BUILTIN_TYPES_DIR, DISPATCHCTL, ROOT } from './paths.js';
import { until } from './until.js';

/** systemd's RestartSec= in the shipped units. */
const RESTART_SEC_MS = 250;
/** TimeoutStopSec= in the shipped units: SIGKILL after this. */
const STOP_TIMEOUT_MS = 10_000;
/** How long a daemon may take from exec to READY=1 (TimeoutStartSec= is longer; these are small). */
const START_TIMEOUT_MS = 15_000;
/** A heartbeat older than this means the daemon's event loop is stuck (common/timing.ts, as `dispatchctl status` says). */
export { STALE_HEARTBEAT_MS };

export interface ProcessSuiteOptions {
  /** TOML appended after [paths] ([main], [secondary], [watchdog] sections). */
  config?: string;
  /** How many secondaries (default 2): `names` is main, secondary-1 … secondary-N. */
  secondaries?: number;
  /** Restart=on-failure: start a daemon again when it dies without being stopped (default true). */
  restart?: boolean;
  /** Options for each daemon's node (e.g. `--cpu-prof`); the daemons run in the suite's directory. */
  nodeArgs?: string[];
  /** Put the scoreboard in /dev/shm as installed (default: in the suite's directory). */
  scoreboardInShm?: boolean;
  /** Called with each line a daemon (or the watchdog) logs. */
  onLog?: (daemon: string, line: string) => void;
}

/** How the in-process watchdog talks to "systemd" and where it logs (defaults: nowhere but the suite's log). */
export interface WatchdogOptions {
  binding?: NotifyBinding;
  /** Also receives the watchdog's log lines. */
  logStream?: Writable;
  generation?: number;
}

interface Proc {
  name: string;
  child: ChildProcess;
  /** Set when we stop it on purpose: its exit is not a failure to restart. */
  stopping: boolean;
  exited: Promise<void>;
}

/** A daemon's id from the name a test uses (`main`, `secondary-2`; topology.ts). @throws Error for any other name. */
function daemonId(name: string): DaemonId {
  const id = parseDaemonId(name);
  if (!id) throw new Error(`'${name}' names no daemon of the suite: main, watchdog or secondary-N`);
  return id;
}

/** A daemon is up: its state is ready, busy or full, and its heartbeat is fresh. */
export function isUp(state: string, heartbeatAgeMs: number): boolean {
  return ['ready', 'busy', 'full'].includes(state) && heartbeatAgeMs < STALE_HEARTBEAT_MS;
}

export class ProcessSuite implements UnitManager, Harness {
  readonly dir: string;
  readonly configPath: string;
  readonly scoreboard: string;
  /** This suite's own types directory (after the built-ins): a test declares its types here. */
  get typesDir(): string {
    return path.join(this.dir, 'types.d');
  }
  /** main, then secondary-1 … secondary-N. */
  readonly names: string[];
  /** Unexpected exits restarted (systemd's NRestarts), per daemon. */
  readonly restarts = new Map<string, number>();
  /** Restarts ordered by the watchdog (RestartUnit), per daemon. */
  readonly watchdogRestarts = new Map<string, number>();
  /** The units the watchdog restarted, in order. */
  readonly restartLog: string[] = [];
  private readonly notify: NotifySocket;
  private readonly fifos = new Map<string, number>();
  private readonly procs = new Map<string, Proc>();
  private readonly busy = new Set<string>();
  /** Stopped on purpose (systemctl stop) and not started since: the watchdog does not probe it. */
  private readonly inactive = new Set<string>();
  /** Started, not yet ready. */
  private readonly starting = new Set<string>();
  private readonly logs = new Map<string, string[]>();
  private watchdog: Watchdog | undefined;
  private closed = false;
  /** Deregisters the last-resort clean-up (the test process ending without shutdown). */
  private readonly forget: () => void;

  constructor(private readonly o: ProcessSuiteOptions = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-procs-'));
    this.scoreboard = o.scoreboardInShm && fs.existsSync('/dev/shm') ? path.join('/dev/shm', `dispatchd-test-${path.basename(this.dir)}.scoreboard`) : path.join(this.dir, 'scoreboard');
    this.configPath = path.join(this.dir, 'dispatchd.conf');
    // The request types: the package's built-ins from the repository, then the suite's own
    // types.d (tests drop types there), unless the test's configuration names its own [types].
    fs.mkdirSync(this.typesDir, { mode: 0o755 });
    const types = /^\[types\]/m.test(o.config ?? '') ? '' : `[types]\ndirs = ["${BUILTIN_TYPES_DIR}", "${this.typesDir}"]\n`;
    fs.writeFileSync(this.configPath, `[paths]\nruntime_dir = "${this.dir}"\nscoreboard = "${this.scoreboard}"\n${types}${o.config ?? ''}\n`);
    createScoreboard(this.scoreboard);
    this.names = suiteDaemons(o.secondaries ?? 2).filter((id) => id.kind !== 'watchdog').map(formatDaemonId);
    this.notify = new NotifySocket(path.join(this.dir, 'notify.sock'));
    // A test process that dies early (a crash, tap's timeout) must not leave daemons behind.
    this.forget = onCleanup(() => {
      for (const p of this.procs.values()) p.child.kill('SIGKILL');
      fs.rmSync(this.dir, { recursive: true, force: true });
      fs.rmSync(this.scoreboard, { force: true });
      fs.rmSync(leaseKeyPath(this.scoreboard), { force: true });
    });
  }

  get label(): string {
    return `dispatchd as processes in ${this.dir}`;
  }

  get mainSocket(): string {
    return this.socket('main');
  }

  socket(name: string): string {
    return clientSocketPath(this.dir, daemonId(name));
  }

  fifo(name: string): string {
    return mailboxPath(this.dir, daemonId(name));
  }

  /** Starts every daemon (secondaries first, then main) and, unless told not to, the watchdog. */
  async startAll(o: { watchdog?: boolean } = {}): Promise<void> {
    for (const n of this.names.filter((x) => x !== 'main')) await this.start(n);
    await this.start('main');
    if (o.watchdog ?? true) this.startWatchdog();
  }

  /** Runs the watchdog daemon's class in this process, with this suite as its unit manager. */
  startWatchdog(o: WatchdogOptions = {}): Watchdog {
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        for (const line of chunk.toString().split('\n')) if (line) this.log('watchdog', line);
        o.logStream?.write(chunk);
        done();
      },
    });
    this.watchdog = Watchdog.start({
      config: loadConfig(this.configPath, true),
      logger: createLogger({ identifier: 'dispatchd-watchdog', journal: false, stream: sink }),
      notifier: new Notifier(o.binding ?? { sendState: () => undefined, watchdogInterval: () => 0 }),
      units: this,
      mailboxFd: openMailboxFd(this.fifo('watchdog')), // the watchdog closes it on stop
      generation: o.generation ?? 1,
      pid: process.pid,
    });
    return this.watchdog;
  }

  private log(name: string, line: string): void {
    let l = this.logs.get(name);
    if (!l) this.logs.set(name, (l = []));
    l.push(line);
    if (l.length > 20_000) l.splice(0, 10_000);
    this.o.onLog?.(name, line);
  }

  /** The lines a daemon (or the watchdog) logged, across its restarts (the most recent 10,000 to 20,000). */
  output(name: string): string[] {
    return this.logs.get(name) ?? [];
  }

  /** The sd_notify messages the running process of a daemon sent ("READY=1\nSTATUS=…"). */
  notifications(name: string): string[] {
    const pid = this.pid(name);
    return pid === undefined ? [] : this.notify.messages(pid);
  }

  /** Each daemon's slot and the last lines of the watchdog's and each daemon's log, for a failure dump. */
  diagnostics(lines = 20): string {
    return ['watchdog', ...this.names]
      .map((d) => {
        const s = this.slot(d);
        const state = s ? `${s.state}, pid ${s.pid}, ${s.active} active, ${s.running} running, heartbeat ${Date.now() - s.heartbeatMs} ms ago` : 'no slot';
        return `--- ${d} (${state}), last lines:\n${this.output(d).slice(-lines).join('\n')}\n`;
      })
      .join('');
  }

  /** The mailbox FIFO of a daemon, created and held open once, as ListenFIFO= does: messages written while it restarts wait in the pipe. */
  private mailboxFd(name: string): number {
    let fd = this.fifos.get(name);
    if (fd === undefined) {
      fd = openMailboxFd(this.fifo(name));
      this.fifos.set(name, fd);
    }
    return fd;
  }

  /**
   * Starts one daemon (main, secondary-N) with its activated fds; resolves once it sent READY=1.
   * @param env added to the daemon's environment.
   * @throws Error when it exits first or is not ready within 15 s, with its last log lines.
   */
  async start(name: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
    this.inactive.delete(name);
    // 'activating' until READY=1, as a Type=notify unit.
    this.starting.add(name);
    try {
      await this.spawnDaemon(name, env);
    } finally {
      this.starting.delete(name);
    }
  }

  private async spawnDaemon(name: string, env: NodeJS.ProcessEnv): Promise<void> {
    await this.notify.listening;
    const fifoFd = this.mailboxFd(name);
    const id = daemonId(name);
    const args = [...(this.o.nodeArgs ?? []), path.join(ROOT, 'build', entryPoint(id.kind)), '--config', this.configPath];
    if (id.kind === 'secondary') args.push('--instance', String(instanceOf(id)));
    const child = spawn('python3', [ACTIVATE_PY, this.socket(name), process.execPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe', 'ignore', fifoFd],
      env: { ...process.env, NOTIFY_SOCKET: this.notify.path, JOURNAL_STREAM: '', ...env },
      cwd: this.dir,
    });
    let partial = '';
    const onData = (c: Buffer) => {
      const lines = (partial + c.toString()).split('\n');
      partial = lines.pop()!;
      for (const l of lines) this.log(name, l);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    const p: Proc = { name, child, stopping: false, exited: once(child, 'exit').then(() => undefined) };
    this.procs.set(name, p);
    void p.exited.then(() => this.onExit(p));
    try {
      await this.notify.awaitMessage(child.pid!, 'READY=1', { timeoutMs: START_TIMEOUT_MS, what: `${name} to start`, gone: p.exited });
    } catch (err) {
      throw new Error(`${(err as Error).message} (exit ${child.exitCode ?? child.signalCode}): ${this.output(name).slice(-5).join(' | ')}`);
    }
  }

  /** Restart=on-failure: a daemon that died without being stopped is started again. */
  private onExit(p: Proc): void {
    if (this.closed || p.stopping || this.procs.get(p.name) !== p || this.o.restart === false) return;
    this.restarts.set(p.name, (this.restarts.get(p.name) ?? 0) + 1);
    this.busy.add(p.name);
    void sleep(RESTART_SEC_MS)
      .then(() => (this.closed ? undefined : this.start(p.name)))
      .catch((err: Error) => this.log(p.name, `supervisor: failed to restart ${p.name}: ${err.message}`))
      .finally(() => this.busy.delete(p.name));
  }

  /** The pid of a daemon's current process (undefined: never started). */
  pid(name: string): number | undefined {
    return this.procs.get(name)?.child.pid;
  }

  /** Process ids by daemon name, of every daemon started. */
  pids(): Record<string, number> {
    return Object.fromEntries([...this.procs].map(([n, p]) => [n, p.child.pid!]));
  }

  /** Whether a daemon's current process is still running (a stopped one, SIGSTOP, counts as running). */
  isRunning(name: string): boolean {
    const p = this.procs.get(name);
    return p !== undefined && p.child.exitCode === null && p.child.signalCode === null;
  }

  /** Sends a signal to a daemon's process (a fault), as `systemctl kill` does (one process per unit). */
  signal(name: string, sig: NodeJS.Signals): boolean {
    const p = this.procs.get(name);
    if (!p || !this.isRunning(name)) return false;
    return p.child.kill(sig);
  }

  /** Stops a daemon as systemd does (SIGTERM, then SIGCONT so that a frozen one wakes to exit; SIGKILL after the stop timeout). */
  async stop(name: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const p = this.procs.get(name);
    if (!p) return { code: null, signal: null };
    p.stopping = true;
    this.inactive.add(name);
    if (this.isRunning(name)) {
      p.child.kill('SIGTERM');
      p.child.kill('SIGCONT');
      const t = setTimeout(() => p.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await p.exited;
      clearTimeout(t);
    }
    return { code: p.child.exitCode, signal: p.child.signalCode };
  }

  /** A daemon's slot on the scoreboard, read now (undefined when it has none). */
  slot(name: string): SlotData | undefined {
    const r = new ScoreboardReader(this.scoreboard);
    try {
      return r.read().slots.find((s) => s.name === name);
    } finally {
      r.close();
    }
  }

  /** Every daemon is running, not restarting, and its slot is up and fresh. */
  healthy(): boolean {
    const now = Date.now();
    return this.names.every((n) => {
      const s = this.slot(n);
      if (this.busy.has(n) || this.starting.has(n) || !this.isRunning(n) || !s) return false;
      return s.pid === this.pid(n) && isUp(s.state, now - s.heartbeatMs);
    });
  }

  /** Resolves once {@link healthy}; throws after `timeoutMs` naming `what`. */
  async untilHealthy(timeoutMs: number, what = 'every daemon to be up'): Promise<void> {
    await until(what, timeoutMs, () => this.healthy());
  }

  /**
   * Resolves once a secondary's slot says at least `count` requests are running on it
   * (`running`, docs/SCOREBOARD.md §3): a request sent is then being handled, not on its way.
   */
  async untilRunning(name: string, count = 1, timeoutMs = 5000): Promise<void> {
    await until(`${count} request(s) running on ${name}`, timeoutMs, () => (this.slot(name)?.running ?? 0) >= count);
  }

  /** Restarts of a daemon since the start: automatic (Restart=) and by the watchdog. */
  totalRestarts(name: string): number {
    return (this.restarts.get(name) ?? 0) + (this.watchdogRestarts.get(name) ?? 0);
  }

  /** Runs dispatchctl against this suite's main; resolves with its exit code and output. */
  dispatchctl(args: string[], stdin?: Buffer | string): Promise<ExecResult> {
    return runCommand(process.execPath, [DISPATCHCTL, '--socket', this.mainSocket, ...args], { input: stdin ?? '' });
  }

  // ---- UnitManager, for the watchdog: what systemd's D-Bus API does for it -------------

  async list(): Promise<UnitState[]> {
    return this.names.map((n) => ({
      unit: serviceUnitOf(n),
      activeState: this.busy.has(n) || this.starting.has(n) ? 'activating' : this.inactive.has(n) ? 'inactive' : 'active',
      jobPending: this.busy.has(n) || this.starting.has(n),
    }));
  }

  async restart(unit: string): Promise<void> {
    const name = formatDaemonId(daemonOfUnit(unit)!);
    this.restartLog.push(unit);
    this.watchdogRestarts.set(name, (this.watchdogRestarts.get(name) ?? 0) + 1);
    void this.restartDaemon(name).catch((err: Error) => this.log(name, `supervisor: failed to restart ${name}: ${err.message}`));
  }

  /** `systemctl restart`: stop, then start, with a job pending meanwhile (the watchdog leaves it alone). */
  async restartDaemon(name: string): Promise<void> {
    this.busy.add(name);
    try {
      await this.stop(name);
      if (!this.closed) await this.start(name);
    } finally {
      this.busy.delete(name);
    }
  }

  async kill(unit: string): Promise<void> {
    this.signal(formatDaemonId(daemonOfUnit(unit)!), 'SIGKILL');
  }

  close(): void {
    // UnitManager.close (the watchdog's D-Bus connection): nothing to release here.
  }

  // ---- the end ------------------------------------------------------------------------

  /** Stops the watchdog and every daemon as systemd stops a target (SIGTERM, SIGKILL after 5 s), then removes everything. */
  async stopAll(): Promise<void> {
    await this.end(async (p) => {
      if (p.child.exitCode !== null || p.child.signalCode !== null) return;
      p.child.kill('SIGTERM');
      p.child.kill('SIGCONT');
      const t = setTimeout(() => p.child.kill('SIGKILL'), 5000);
      await p.exited;
      clearTimeout(t);
    });
  }

  /** Kills the watchdog and every daemon (SIGKILL), then removes everything. */
  async shutdown(): Promise<void> {
    await this.end(async (p) => {
      p.child.kill('SIGKILL');
      await p.exited;
    });
  }

  private async end(stopOne: (p: Proc) => Promise<void>): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.forget();
    if (this.watchdog) await this.watchdog.stop('suite closed');
    this.watchdog = undefined;
    for (const p of this.procs.values()) p.stopping = true;
    await Promise.all([...this.procs.values()].map(stopOne));
    this.procs.clear();
    for (const fd of this.fifos.values()) fs.closeSync(fd);
    this.fifos.clear();
    await this.notify.close();
    removeScoreboard(this.scoreboard);
    removeServedTypes(this.scoreboard);
    removeLeaseKey(leaseKeyPath(this.scoreboard)); // the daemons make it when there is none
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
