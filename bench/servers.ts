/**
 * Starting and stopping the baselines (bench/bare-server.ts) as child processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openMailboxFd } from '../daemons/common/mailbox.js';

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
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const deadline = Date.now() + 10_000;
    while (!out.includes('ready\n')) {
      if (child.exitCode !== null) throw new Error(`bare server exited with ${child.exitCode}: ${out}`);
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`bare server not listening within 10 s: ${out}`);
      }
      await new Promise((r) => setTimeout(r, 10));
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

/** bench/relay-floor.ts: a front and a back process joined by two FIFOs. */
export class RelayFloor {
  private constructor(private readonly children: ChildProcess[], private readonly dir: string, readonly socket: string) {}

  /** @throws Error when a process exits or is not listening within 10 s. */
  static async start(): Promise<RelayFloor> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-bench-relay-'));
    const p = (n: string) => path.join(dir, n);
    const spawnRole = (role: string, args: string[]) => {
      const child = spawn(process.execPath, [RELAY, '--role', role, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
      let out = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
      return { child, out: () => out };
    };
    // Both FIFOs exist before either process opens them (each would otherwise race to mkfifo).
    for (const f of ['back.fifo', 'front.fifo']) fs.closeSync(openMailboxFd(p(f)));
    const back = spawnRole('back', ['--socket', p('back.sock'), '--in', p('back.fifo'), '--out', p('front.fifo')]);
    const front = spawnRole('front', ['--socket', p('front.sock'), '--in', p('front.fifo'), '--out', p('back.fifo'), '--back-socket', p('back.sock')]);
    const relay = new RelayFloor([front.child, back.child], dir, p('front.sock'));
    const deadline = Date.now() + 10_000;
    for (const r of [back, front]) {
      while (!r.out().includes('ready\n')) {
        if (r.child.exitCode !== null || Date.now() > deadline) {
          await relay.stop();
          throw new Error(`relay floor did not start: ${r.out()}`);
        }
        await new Promise((res) => setTimeout(res, 10));
      }
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
