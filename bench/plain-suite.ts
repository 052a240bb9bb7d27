/**
 * dispatchd as plain processes (no systemd): main and N secondaries from build/daemons,
 * with socket activation imitated the way the component tests do it
 * (test/component/lib/activate.py passes the listening socket and the mailbox FIFO as fds
 * 3 and 4 with LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES). Everything lives in a fresh temporary
 * directory; the configuration is the default one but for the paths. No watchdog: it
 * restarts units through systemd, which is not there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openMailboxFd } from '../daemons/common/mailbox.js';
import { createScoreboard, ScoreboardReader } from '../daemons/common/scoreboard.js';

/** The repository (this file is build/bench/plain-suite.js). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ACTIVATE = path.join(ROOT, 'test/component/lib/activate.py');

export class PlainSuite {
  private readonly children = new Map<string, ChildProcess>();
  private readonly fifos: number[] = [];

  private constructor(readonly dir: string, readonly config: string, readonly scoreboard: string) {}

  get mainSocket(): string {
    return path.join(this.dir, 'main.sock');
  }

  /** Process ids by daemon name (main, secondary-N). */
  pids(): Record<string, number> {
    return Object.fromEntries([...this.children].map(([n, c]) => [n, c.pid!]));
  }

  /**
   * Starts main and `secondaries` secondaries; resolves once every one is ready.
   * `nodeArgs` go to every daemon's node (e.g. `--cpu-prof`).
   * @throws Error when a daemon exits or is not ready within 15 s.
   */
  static async start(secondaries: number, nodeArgs: string[] = []): Promise<PlainSuite> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-bench-'));
    const shm = fs.existsSync('/dev/shm') ? '/dev/shm' : dir;
    const scoreboard = path.join(shm, `dispatchd-bench-${path.basename(dir)}.scoreboard`);
    const config = path.join(dir, 'dispatchd.conf');
    fs.writeFileSync(config, `[paths]\nruntime_dir = "${dir}"\nscoreboard = "${scoreboard}"\n`);
    createScoreboard(scoreboard);
    const s = new PlainSuite(dir, config, scoreboard);
    try {
      for (let i = 1; i <= secondaries; i++) await s.spawn(`secondary-${i}`, nodeArgs);
      await s.spawn('main', nodeArgs);
    } catch (err) {
      await s.stop();
      throw err;
    }
    return s;
  }

  private async spawn(name: string, nodeArgs: string[]): Promise<void> {
    const fifo = openMailboxFd(path.join(this.dir, `${name}.fifo`));
    this.fifos.push(fifo);
    const entry = name === 'main' ? 'main-server/main.js' : 'secondary-server/main.js';
    const args = [...nodeArgs, path.join(ROOT, 'build/daemons', entry), '--config', this.config];
    if (name !== 'main') args.push('--instance', name.slice('secondary-'.length));
    let err = '';
    const child = spawn('python3', [ACTIVATE, path.join(this.dir, `${name}.sock`), process.execPath, ...args], {
      stdio: ['ignore', 'ignore', 'pipe', 'ignore', fifo],
      env: { ...process.env, NOTIFY_SOCKET: '', JOURNAL_STREAM: '' },
      cwd: this.dir,
    });
    child.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
    this.children.set(name, child);
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}: ${err}`);
      const r = new ScoreboardReader(this.scoreboard);
      const slot = r.read().slots.find((x) => x.name === name);
      r.close();
      if (slot && slot.pid === child.pid && slot.state !== 'starting') return;
      if (Date.now() > deadline) throw new Error(`${name} not ready within 15 s: ${err}`);
      await new Promise((res) => setTimeout(res, 20));
    }
  }

  /** SIGTERM to every daemon (as systemd stops them), then removes the directory. */
  async stop(): Promise<void> {
    const exits = [...this.children.values()].map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined));
    for (const c of this.children.values()) c.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const c of this.children.values()) c.kill('SIGKILL');
    }, 5000);
    await Promise.all(exits);
    clearTimeout(timer);
    this.children.clear();
    for (const fd of this.fifos.splice(0)) fs.closeSync(fd);
    fs.rmSync(this.dir, { recursive: true, force: true });
    fs.rmSync(this.scoreboard, { force: true });
  }
}
