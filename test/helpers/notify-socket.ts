/**
 * A NOTIFY_SOCKET the harness owns: the daemons it starts send READY=1, STATUS=, STOPPING=1
 * there (sd_notify(3)) as they do to systemd, and the harness awaits those messages instead
 * of polling the scoreboard. The datagram socket is held by test/helpers/notify-listen.py
 * (Node has no AF_UNIX datagram sockets), which reports each message with its sender's pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { NOTIFY_LISTEN_PY } from './paths.js';

interface Waiter {
  pid: number;
  assignment: string;
  resolve: () => void;
}

export class NotifySocket {
  /** Resolves once the socket is bound (pass `path` as NOTIFY_SOCKET only after that). */
  readonly listening: Promise<void>;
  private readonly child: ChildProcess;
  private readonly seen = new Map<number, string[]>();
  private readonly waiters = new Set<Waiter>();
  private stderr = '';

  /** Binds a datagram socket at `path` (an absolute path of at most 107 bytes). */
  constructor(readonly path: string) {
    this.child = spawn('python3', [NOTIFY_LISTEN_PY, path], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (b: Buffer) => (this.stderr = (this.stderr + b.toString()).slice(-4000)));
    let bound: () => void = () => undefined;
    this.listening = new Promise<void>((resolve, reject) => {
      bound = resolve;
      this.child.once('error', reject);
      this.child.once('exit', (code) => reject(new Error(`the notify socket listener (${NOTIFY_LISTEN_PY}) exited (${code}) before binding ${path}: ${this.stderr.trim()}`)));
    });
    this.listening.catch(() => undefined); // awaited by whoever starts a daemon
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as { listening?: string; pid?: number; state?: string };
      if (m.listening !== undefined) return bound();
      if (m.pid === undefined || m.state === undefined) return;
      let list = this.seen.get(m.pid);
      if (!list) this.seen.set(m.pid, (list = []));
      list.push(m.state);
      for (const w of [...this.waiters]) if (w.pid === m.pid && m.state.split('\n').includes(w.assignment)) w.resolve();
    });
  }

  /** The messages process `pid` sent, in order, each as its text ("READY=1\nSTATUS=…"). */
  messages(pid: number): string[] {
    return this.seen.get(pid) ?? [];
  }

  /**
   * Resolves once process `pid` sent a message with `assignment` (e.g. READY=1), counting
   * messages it already sent.
   * @param gone settles when the process ended: then this rejects, as it will never send it.
   * @throws Error when `pid` ended first or after `timeoutMs`, naming `what`.
   */
  async awaitMessage(pid: number, assignment: string, o: { timeoutMs: number; what: string; gone?: Promise<unknown> }): Promise<void> {
    if (this.messages(pid).some((m) => m.split('\n').includes(assignment))) return;
    let timer: NodeJS.Timeout | undefined;
    let waiter: Waiter | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => this.waiters.add((waiter = { pid, assignment, resolve }))),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${o.timeoutMs} ms waiting for ${o.what} (${assignment} from pid ${pid})`)), o.timeoutMs))),
        ...(o.gone ? [o.gone.then(() => Promise.reject(new Error(`${o.what}: pid ${pid} ended before sending ${assignment}`)))] : []),
      ]);
    } finally {
      clearTimeout(timer);
      if (waiter) this.waiters.delete(waiter);
    }
  }

  /** Stops the listener (it removes the socket). */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.stdin!.end();
    await exited;
  }
}
