/**
 * The whole suite as processes, with what systemd does imitated: socket activation (the
 * listening socket and the mailbox FIFO passed as fds 3 and 4, LISTEN_FDNAMES=client:mailbox),
 * FIFOs held open across restarts (ListenFIFO=), `Restart=on-failure` after `RestartSec=`
 * (a daemon that dies unexpectedly is started again), and the watchdog daemon's
 * RestartUnit/KillUnit (SIGTERM then SIGCONT, then start). The watchdog itself runs in this
 * process (its class, with a unit manager that drives the processes here), so a frozen main or
 * secondary is caught and restarted as under systemd. Everything lives in a temporary
 * runtime directory; nothing touches /run or /dev/shm.
 *
 * Used by `npm run chaos` and `npm run fuzz` without a sandbox, and by the component tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../../daemons/common/config.js';
import { createLogger } from '../../../daemons/common/logger.js';
import { openMailboxFd } from '../../../daemons/common/mailbox.js';
import { Notifier } from '../../../daemons/common/notify.js';
import { createScoreboard, type SlotData } from '../../../daemons/common/scoreboard.js';
import type { UnitManager, UnitState } from '../../../daemons/watchdog/unit-manager.js';
import { daemonOfUnit, unitOf } from '../../../daemons/common/units.js';
import { Watchdog } from '../../../daemons/watchdog/watchdog.js';
import { watchdogParts } from '../../../daemons/watchdog/watchdog-parts.js';
import { isUp, readSlot, waitFor } from './harness.js';
import { ACTIVATE_PY, BUILD_DAEMONS } from './paths.js';

/** systemd's RestartSec= in the shipped units. */
const RESTART_SEC_MS = 250;
/** TimeoutStopSec= in the shipped units: SIGKILL after this. */
const STOP_TIMEOUT_MS = 10_000;

export interface ProcessSuiteOptions {
  /** TOML appended after [paths] ([main], [secondary], [watchdog] sections). */
  config?: string;
  /** How many secondaries (default 2). */
  secondaries?: number;
  /** Called with each line a daemon (or the watchdog) logs. */
  onLog?: (daemon: string, line: string) => void;
}

interface Proc {
  name: string;
  child: ChildProcess;
  /** Set when we stop it on purpose: its exit is not a failure to restart. */
  stopping: boolean;
  exited: Promise<void>;
}

export class ProcessSuite implements UnitManager {
  readonly dir: string;
  readonly configPath: string;
  readonly scoreboard: string;
  readonly names: string[];
  /** Unexpected exits restarted (systemd's NRestarts), per daemon. */
  readonly restarts = new Map<string, number>();
  /** Restarts ordered by the watchdog (RestartUnit), per daemon. */
  readonly watchdogRestarts = new Map<string, number>();
  private readonly fifos = new Map<string, number>();
  private readonly procs = new Map<string, Proc>();
  private readonly busy = new Set<string>();
  /** Stopped on purpose (systemctl stop) and not started since: the watchdog does not probe it. */
  private readonly inactive = new Set<string>();
  /** Started, not yet up. */
  private readonly starting = new Set<string>();
  private readonly logs = new Map<string, string[]>();
  private watchdog: Watchdog | undefined;
  private closed = false;

  constructor(private readonly o: ProcessSuiteOptions = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-procs-'));
    this.scoreboard = path.join(this.dir, 'scoreboard');
    this.configPath = path.join(this.dir, 'dispatchd.conf');
    fs.writeFileSync(this.configPath, `[paths]\nruntime_dir = "${this.dir}"\nscoreboard = "${this.scoreboard}"\n${o.config ?? ''}\n`);
    createScoreboard(this.scoreboard);
    this.names = ['main', ...Array.from({ length: o.secondaries ?? 2 }, (_, i) => `secondary-${i + 1}`)];
  }

  get mainSocket(): string {
    return path.join(this.dir, 'main.sock');
  }

  socket(name: string): string {
    return path.join(this.dir, `${name}.sock`);
  }

  fifo(name: string): string {
    return path.join(this.dir, `${name}.fifo`);
  }

  /** Starts every daemon (secondaries first, then main) and the watchdog. */
  async startAll(): Promise<void> {
    for (const n of this.names.filter((x) => x !== 'main')) await this.start(n);
    await this.start('main');
    this.startWatchdog();
  }

  private startWatchdog(): void {
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        for (const line of chunk.toString().split('\n')) if (line) this.log('watchdog', line);
        done();
      },
    });
    this.watchdog = Watchdog.start({
      config: loadConfig(this.configPath, true),
      logger: createLogger({ identifier: 'dispatchd-watchdog', journal: false, stream: sink }),
      notifier: new Notifier({ sendState: () => undefined, watchdogInterval: () => 0 }),
      units: this,
      ...watchdogParts({ config: loadConfig(this.configPath, true), mailboxFd: openMailboxFd(this.fifo('watchdog')), generation: 1, pid: process.pid }), // the watchdog closes the fd on stop
    });
  }

  private log(name: string, line: string): void {
    let l = this.logs.get(name);
    if (!l) this.logs.set(name, (l = []));
    l.push(line);
    if (l.length > 20_000) l.splice(0, 10_000);
    this.o.onLog?.(name, line);
  }

  /** The lines a daemon logged (the most recent 10,000 to 20,000). */
  output(name: string): string[] {
    return this.logs.get(name) ?? [];
  }

  /** The last `n` lines of the watchdog's and each daemon's log, under a `--- name, last lines:` heading each, for a failure report. */
  dumpTail(n: number): string {
    return ['watchdog', ...this.names].map((d) => `--- ${d}, last lines:\n${this.output(d).slice(-n).join('\n')}\n`).join('');
  }

  /** The mailbox FIFO of a daemon, created and held open once, as ListenFIFO= does. */
  private mailboxFd(name: string): number {
    let fd = this.fifos.get(name);
    if (fd === undefined) {
      fd = openMailboxFd(this.fifo(name));
      this.fifos.set(name, fd);
    }
    return fd;
  }

  /** Starts one daemon with its activated fds; resolves once its slot says it is up. */
  async start(name: string): Promise<void> {
    this.inactive.delete(name);
    // 'activating' until its slot says it is up, as a Type=notify unit until READY=1.
    this.starting.add(name);
    try {
      await this.spawnDaemon(name);
    } finally {
      this.starting.delete(name);
    }
  }

  private async spawnDaemon(name: string): Promise<void> {
    const fifoFd = this.mailboxFd(name);
    const isSecondary = name.startsWith('secondary-');
    const args = [path.join(BUILD_DAEMONS, isSecondary ? 'secondary-server/main.js' : 'main-server/main.js'), '--config', this.configPath];
    if (isSecondary) args.push('--instance', name.slice('secondary-'.length));
    const child = spawn('python3', [ACTIVATE_PY, this.socket(name), process.execPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe', 'ignore', fifoFd],
      env: { ...process.env, NOTIFY_SOCKET: '', JOURNAL_STREAM: '' },
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
    await this.waitFor(() => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) while starting: ${this.output(name).slice(-5).join(' | ')}`);
      const s = this.slot(name);
      return s !== undefined && s.pid === child.pid && s.state !== 'starting';
    }, 15_000, `${name} to start`);
  }

  /** Restart=on-failure: a daemon that died without being stopped is started again. */
  private onExit(p: Proc): void {
    if (this.closed || p.stopping || this.procs.get(p.name) !== p) return;
    this.restarts.set(p.name, (this.restarts.get(p.name) ?? 0) + 1);
    this.busy.add(p.name);
    void sleep(RESTART_SEC_MS)
      .then(() => (this.closed ? undefined : this.start(p.name)))
      .catch((err: Error) => this.log(p.name, `supervisor: failed to restart ${p.name}: ${err.message}`))
      .finally(() => this.busy.delete(p.name));
  }

  pid(name: string): number | undefined {
    return this.procs.get(name)?.child.pid;
  }

  /** Sends a signal to a daemon's process (a fault), as `systemctl kill` does (one process per unit). */
  signal(name: string, sig: NodeJS.Signals): boolean {
    const p = this.procs.get(name);
    if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return false;
    return p.child.kill(sig);
  }

  /** Stops a daemon as systemd does (SIGTERM, then SIGCONT so that a frozen one wakes to exit; SIGKILL after the stop timeout). */
  async stop(name: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const p = this.procs.get(name);
    if (!p) return { code: null, signal: null };
    p.stopping = true;
    this.inactive.add(name);
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGTERM');
      p.child.kill('SIGCONT');
      const t = setTimeout(() => p.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await p.exited;
      clearTimeout(t);
    }
    return { code: p.child.exitCode, signal: p.child.signalCode };
  }

  slot(name: string): SlotData | undefined {
    return readSlot(this.scoreboard, name);
  }

  /** Every daemon is running, not restarting, and its slot is up and fresh. */
  healthy(): boolean {
    const now = Date.now();
    return this.names.every((n) => {
      const p = this.procs.get(n);
      const s = this.slot(n);
      if (this.busy.has(n) || this.starting.has(n) || !p || p.child.exitCode !== null || p.child.signalCode !== null || !s) return false;
      return s.pid === p.child.pid && isUp(s.state, now - s.heartbeatMs);
    });
  }

  /** Polls `cond` every 20 ms until it is true, or throws after `timeoutMs`. */
  waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return waitFor(cond, timeoutMs, what);
  }

  /** Restarts of a daemon since the start: automatic (Restart=) and by the watchdog. */
  totalRestarts(name: string): number {
    return (this.restarts.get(name) ?? 0) + (this.watchdogRestarts.get(name) ?? 0);
  }

  // ---- UnitManager, for the watchdog: what systemd's D-Bus API does for it -------------

  async list(): Promise<UnitState[]> {
    return this.names.map((n) => ({
      unit: unitOf(n),
      activeState: this.busy.has(n) || this.starting.has(n) ? 'activating' : this.inactive.has(n) ? 'inactive' : 'active',
      jobPending: this.busy.has(n) || this.starting.has(n),
    }));
  }

  async restart(unit: string): Promise<void> {
    const name = daemonOfUnit(unit)!.name;
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
    this.signal(daemonOfUnit(unit)!.name, 'SIGKILL');
  }

  close(): void {
    // UnitManager.close (the watchdog's D-Bus connection): nothing to release here.
  }

  /** Stops the watchdog and every daemon, removes the runtime directory. */
  async shutdown(): Promise<void> {
    this.closed = true;
    if (this.watchdog) await this.watchdog.stop('suite closed');
    this.watchdog = undefined;
    for (const p of this.procs.values()) {
      p.stopping = true;
      p.child.kill('SIGKILL');
    }
    await Promise.all([...this.procs.values()].map((p) => p.exited));
    this.procs.clear();
    for (const fd of this.fifos.values()) fs.closeSync(fd);
    this.fifos.clear();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
