/**
 * Starting and stopping the baselines (bench/bare-server.ts) as child processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

/**
 * Resolves when `child` prints the line `ready` on standard output. Rejects when it exits (or
 * cannot be spawned) first, or after `ms`, with the end of what it printed. Its output is
 * read for as long as it runs, so that it never blocks on a full pipe.
 */
function untilReady(child: ChildProcess, what: string, ms: number): Promise<void> {
  let out = '';
  const keep = (s: string) => (out = (out + s).slice(-4000));
  child.stderr!.on('data', (c: Buffer) => keep(c.toString()));
  const lines = readline.createInterface({ input: child.stdout!, crlfDelay: Infinity });
  return new Promise<void>((resolve, reject) => {
    const settle = (err?: Error) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      child.off('error', settle);
      lines.off('line', onLine);
      lines.on('line', (l) => keep(`${l}\n`));
      if (err) reject(err);
      else resolve();
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => settle(new Error(`${what} exited with ${signal ?? code}: ${out}`));
    const onLine = (l: string) => (l === 'ready' ? settle() : keep(`${l}\n`));
    const timer = setTimeout(() => settle(new Error(`${what} not listening within ${ms / 1000} s: ${out}`)), ms);
    child.once('exit', onExit);
    child.once('error', settle);
    lines.on('line', onLine);
  });
}

const BARE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'bare-server.js');

export class BareServer {
  private constructor(private readonly child: ChildProcess, private readonly dir: string, readonly socket: string) {}

  /** The primary's pid (for cluster: the primary, which only accepts and hands out connections). */
  get pid(): number {
    return this.child.pid!;
  }

  /**
   * Starts a bare server: `workers` 0 for one process, N for node:cluster with N workers.
   * @throws Error when it exits or is not listening within 10 s.
   */
  static async start(workers: number, nodeArgs: string[] = []): Promise<BareServer> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-bench-bare-'));
    const socket = path.join(dir, 'bare.sock');
    const child = spawn(process.execPath, [...nodeArgs, BARE, '--socket', socket, '--workers', String(workers)], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
    try {
      await untilReady(child, 'bare server', 10_000);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    return new BareServer(child, dir, socket);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = once(this.child, 'exit');
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

const RELAY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'relay-floor.js');

/** bench/relay-floor.ts: a front process that sends clients to a back process. */
export class RelayFloor {
  private constructor(private readonly children: ChildProcess[], private readonly dir: string, readonly socket: string) {}

  /** @throws Error when a process exits or is not listening within 10 s. */
  static async start(nodeArgs: string[] = []): Promise<RelayFloor> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-bench-relay-'));
    const p = (n: string) => path.join(dir, n);
    const spawnRole = (role: string, args: string[]) => spawn(process.execPath, [...nodeArgs, RELAY, '--role', role, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
    const back = spawnRole('back', ['--socket', p('back.sock')]);
    const front = spawnRole('front', ['--socket', p('front.sock'), '--back-socket', p('back.sock')]);
    const relay = new RelayFloor([front, back], dir, p('front.sock'));
    try {
      await Promise.all([untilReady(back, 'relay floor back', 10_000), untilReady(front, 'relay floor front', 10_000)]);
    } catch (err) {
      await relay.stop();
      throw new Error(`relay floor did not start: ${err instanceof Error ? err.message : String(err)}`);
    }
    return relay;
  }

  /** The two processes' ids. */
  pids(): Record<string, number> {
    return { front: this.children[0]!.pid!, back: this.children[1]!.pid! };
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null) return;
        const exited = once(c, 'exit');
        c.kill('SIGTERM');
        await exited;
      }),
    );
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
