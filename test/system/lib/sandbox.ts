/**
 * A throw-away systemd for one system test file: a thin wrapper over
 * packaging/sandbox.sh (systemd-nspawn over a tmpfs overlay of /). Commands run inside
 * as root with `exec`; nothing a test does inside survives `stop`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { onCleanup } from './cleanup.js';
import { REPO } from './repo.js';

export const SANDBOX_SH = `${REPO}/packaging/sandbox.sh`;

export interface ExecResult {
  /** Exit status, or null when killed by a signal (then `signal` says which). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  /** Wall-clock time the command took, in milliseconds. */
  ms: number;
}

export interface ExecOptions {
  /** Bytes written to the command's standard input (default: none, stdin closed). */
  input?: Buffer | string;
  /** Kill the command after this many milliseconds (default 120 s). */
  timeoutMs?: number;
}

/** Why this machine cannot boot a sandbox, or undefined when it can. */
export function cannotBootReason(): string | undefined {
  if (process.platform !== 'linux') return 'system tests need Linux (systemd-nspawn)';
  if (process.getuid?.() !== 0) return 'system tests need root: they mount an overlay and boot systemd in a sandbox (run them with sudo)';
  if (!existsSync('/lib/systemd/systemd')) return 'no /lib/systemd/systemd to boot: install systemd';
  const fs = readFileSync('/proc/filesystems', 'utf8');
  if (!/\boverlay\b/.test(fs) && spawnSync('modprobe', ['overlay']).status !== 0) return 'the kernel has no overlayfs';
  const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  if (!have('systemd-nspawn') && !have('apt-get')) return 'no systemd-nspawn, and no apt-get to install systemd-container';
  if (!have('unshare') || !have('nsenter')) return 'no unshare/nsenter (util-linux)';
  return undefined;
}

function run(args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(SANDBOX_SH, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString(), ms: Date.now() - started });
    });
    child.stdin.on('error', () => {
      // the command may exit without reading all of its input
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Formats a failed command for an assertion message. */
export function describe(what: string, r: ExecResult): string {
  const status = r.signal ? `signal ${r.signal}` : `exit ${r.code}`;
  return `${what}: ${status} after ${r.ms} ms; stdout: ${r.stdout.toString().slice(0, 2000).trim()}; stderr: ${r.stderr.slice(0, 2000).trim()}`;
}

export class Sandbox {
  private stopped = false;
  private readonly forget: () => void;

  private constructor(readonly name: string) {
    // Never leave a running systemd behind, even when the test process dies early.
    this.forget = onCleanup(() => this.stopSync());
  }

  /** Boots a sandbox named after the test file (unique per process). */
  static async boot(testFile: string): Promise<Sandbox> {
    const stem = basename(testFile).replace(/\.test\.[cm]?[jt]s$/, '').replace(/[^A-Za-z0-9-]/g, '-');
    const name = `dt-${stem.slice(0, 20)}-${process.pid}`;
    const sb = new Sandbox(name);
    const r = await run(['boot', name], { timeoutMs: 150_000 });
    if (r.code !== 0) {
      sb.stopSync();
      throw new Error(describe(`failed to boot sandbox '${name}'`, r));
    }
    return sb;
  }

  /** Runs argv inside the sandbox. */
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    return run(['exec', this.name, ...argv], opts);
  }

  /** Runs a shell script inside the sandbox (bash, with -euo pipefail). */
  sh(script: string, opts?: ExecOptions): Promise<ExecResult> {
    return this.exec(['bash', '--norc', '--noprofile', '-euo', 'pipefail', '-c', script], opts);
  }

  /** Runs a shell script and returns its standard output; throws when it fails. */
  async out(script: string, opts?: ExecOptions): Promise<string> {
    const r = await this.sh(script, opts);
    if (r.code !== 0) throw new Error(describe(script, r));
    return r.stdout.toString();
  }

  /** Copies host files into directory `dest` inside the sandbox. */
  async copyIn(dest: string, ...sources: string[]): Promise<void> {
    const r = await run(['copy-in', this.name, dest, ...sources], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(describe(`failed to copy ${sources.join(' ')} into ${this.name}:${dest}`, r));
  }

  /** `systemctl show -p …` of one unit, as a record. */
  async show(unit: string, ...props: string[]): Promise<Record<string, string>> {
    const text = await this.out(`systemctl show ${props.map((p) => `-p ${p}`).join(' ')} -- '${unit}'`);
    const rec: Record<string, string> = {};
    for (const line of text.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) rec[line.slice(0, eq)] = line.slice(eq + 1);
    }
    return rec;
  }

  /** The journal of the dispatchd units and the units' states, for a failure report. */
  async diagnostics(): Promise<string> {
    const r = await this.sh(
      "systemctl list-units --all --no-pager 'dispatchd*' || true; " +
        "journalctl --no-pager -o short-monotonic -n 400 -u 'dispatchd*' || true",
      { timeoutMs: 30_000 },
    );
    return `${r.stdout.toString()}${r.stderr}`;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.forget();
    const r = await run(['stop', this.name], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(describe(`failed to stop sandbox '${this.name}'`, r));
  }

  /** Stops the sandbox synchronously (for exit and signal handlers). */
  stopSync(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.forget();
    spawnSync(SANDBOX_SH, ['stop', this.name], { stdio: 'ignore', timeout: 60_000 });
  }
}
