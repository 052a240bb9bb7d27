/**
 * Runs the real daemons as processes with socket activation imitated: the test creates the
 * listening stream sockets and the mailbox FIFOs, and passes them as fds 3 and 4 with
 * LISTEN_FDS, LISTEN_PID (set by a `sh -c 'LISTEN_PID=$$ exec …'` wrapper, as the pid must
 * be the daemon's own) and LISTEN_FDNAMES=client:mailbox, exactly as systemd does.
 * Everything lives in a fresh temporary runtime directory; nothing touches /run or /dev/shm.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { openMailboxFd } from '../../../daemons/common/mailbox.js';
import { createScoreboard, type SlotData } from '../../../daemons/common/scoreboard.js';
import { readSlot, waitFor } from '../../chaos/lib/harness.js';
import { ACTIVATE_PY as ACTIVATE, BUILD_DAEMONS as BUILD, ROOT } from '../../chaos/lib/paths.js';

export { BUILD, ROOT };

export interface Daemon {
  name: string;
  child: ChildProcess;
  output: () => string;
}

export class Suite {
  readonly dir: string;
  readonly configPath: string;
  readonly scoreboard: string;
  private readonly fifos = new Map<string, number>();
  readonly daemons = new Map<string, Daemon>();

  /** @param configExtra TOML appended after [paths] (sections [main], [secondary], …). */
  constructor(configExtra = '') {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-test-'));
    this.scoreboard = path.join(this.dir, 'scoreboard');
    this.configPath = path.join(this.dir, 'dispatchd.conf');
    fs.writeFileSync(this.configPath, `[paths]\nruntime_dir = "${this.dir}"\nscoreboard = "${this.scoreboard}"\n${configExtra}\n`);
    createScoreboard(this.scoreboard);
  }

  get mainSocket(): string {
    return path.join(this.dir, 'main.sock');
  }

  /**
   * The mailbox FIFO of a daemon, created and held open (O_RDWR) once, as systemd's
   * ListenFIFO= does: messages written while the daemon restarts wait in the pipe.
   */
  mailboxFd(name: string): number {
    let fd = this.fifos.get(name);
    if (fd === undefined) {
      fd = openMailboxFd(path.join(this.dir, `${name}.fifo`));
      this.fifos.set(name, fd);
    }
    return fd;
  }

  /** Starts a daemon by name: main, secondary-N, with the activated fds. Resolves once READY (its slot says ready). */
  async start(name: string, env: NodeJS.ProcessEnv = {}): Promise<Daemon> {
    const isSecondary = name.startsWith('secondary-');
    const fifoFd = this.mailboxFd(name);
    const entry = name === 'main' ? 'main-server/main.js' : 'secondary-server/main.js';
    const args = [path.join(BUILD, entry), '--config', this.configPath];
    if (isSecondary) args.push('--instance', name.slice('secondary-'.length));
    let out = '';
    const child = spawn('python3', [ACTIVATE, path.join(this.dir, `${name}.sock`), process.execPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe', 'ignore', fifoFd],
      env: { ...process.env, NOTIFY_SOCKET: '', JOURNAL_STREAM: '', ...env },
    });
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const d: Daemon = { name, child, output: () => out };
    this.daemons.set(name, d);
    await this.waitFor(() => {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}: ${out}`);
      const s = this.slot(name);
      return s !== undefined && s.pid === child.pid && s.state !== 'starting';
    }, 10_000, `${name} to become ready`);
    return d;
  }

  slot(name: string): SlotData | undefined {
    return readSlot(this.scoreboard, name);
  }

  /** Polls `cond` every 20 ms until it is true, or throws after `timeoutMs`. */
  waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return waitFor(cond, timeoutMs, what);
  }

  /** Stops a daemon with SIGTERM (as systemd does) and resolves with its exit code and signal. */
  async stop(name: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const d = this.daemons.get(name);
    if (!d) return { code: null, signal: null };
    this.daemons.delete(name);
    if (d.child.exitCode !== null || d.child.signalCode !== null) return { code: d.child.exitCode, signal: d.child.signalCode };
    d.child.kill('SIGTERM');
    const [code, signal] = (await once(d.child, 'exit')) as [number | null, NodeJS.Signals | null];
    return { code, signal };
  }

  /** Runs dispatchctl against this suite; resolves with its exit code and output. */
  dispatchctl(args: string[], stdin?: Buffer | string): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(BUILD, 'client/dispatchctl.js'), '--socket', this.mainSocket, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
      child.stdin.on('error', () => undefined); // dispatchctl need not read stdin (DATA given as an argument)
      child.stdin.end(stdin ?? '');
    });
  }

  async close(): Promise<void> {
    for (const d of this.daemons.values()) {
      d.child.kill('SIGKILL');
    }
    await Promise.all([...this.daemons.values()].map((d) => (d.child.exitCode === null && d.child.signalCode === null ? once(d.child, 'exit') : undefined)));
    this.daemons.clear();
    for (const fd of this.fifos.values()) fs.closeSync(fd);
    this.fifos.clear();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
