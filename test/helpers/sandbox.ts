/**
 * A throw-away systemd: a thin wrapper over packaging/sandbox.sh (systemd-nspawn over a tmpfs
 * overlay of /). `Sandbox.boot` starts one that this process owns (stopped by `shutdown`,
 * or at exit whatever happens); `Sandbox.attach` uses one already running (`sudo ./install.sh
 * --sandbox` makes "dispatchd") and leaves it running. Commands run inside as root; faults go
 * through systemd (`systemctl kill`); the compiled test tools (the load generator, the fuzz
 * sender) run inside next to the installed suite and import the installed client library.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { serviceUnitOf } from '../../daemons/common/topology.js';
import { describeLoad, type LoadReport } from '../chaos/lib/load.js';
import { onCleanup } from './cleanup.js';
import { describe, runCommand, type ExecOptions, type ExecResult } from './command.js';
import type { Harness } from './failure.js';
import { BUILD_TEST, SANDBOX_SH } from './paths.js';

/** Where the compiled test tools go inside: next to the installed build, so that their
 * `../../daemons/…` imports and node_modules resolve to the installed package. */
export const TOOLS_INSIDE = '/usr/lib/dispatchd/build/test';

/** The daemons of the installed default suite (units: topology's serviceUnitOf). */
export const SANDBOX_DAEMONS = ['main', 'secondary-1', 'secondary-2', 'watchdog'] as const;

/** A load generator running inside. */
export interface RunningLoad {
  /** Resolves with the report once the load is over. */
  done: Promise<LoadReport>;
  stop: () => void;
}

/** A tool running inside (see {@link Sandbox.tool}). */
export interface RunningTool<R> {
  started: Promise<void>;
  ready: Promise<void>;
  result: Promise<R>;
  stop: () => void;
}

/** Why this machine cannot boot a sandbox, or undefined when it can. */
export function cannotBootReason(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux (systemd-nspawn)';
  if (process.getuid?.() !== 0) return 'needs root: it mounts an overlay and boots systemd in a sandbox (run it with sudo)';
  if (!fs.existsSync('/lib/systemd/systemd')) return 'no /lib/systemd/systemd to boot: install systemd';
  const filesystems = fs.readFileSync('/proc/filesystems', 'utf8');
  if (!/\boverlay\b/.test(filesystems) && spawnSync('modprobe', ['overlay']).status !== 0) return 'the kernel has no overlayfs';
  const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  if (!have('systemd-nspawn') && !have('apt-get')) return 'no systemd-nspawn, and no apt-get to install systemd-container';
  if (!have('unshare') || !have('nsenter')) return 'no unshare/nsenter (util-linux)';
  return undefined;
}

function run(args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return runCommand(SANDBOX_SH, args, opts);
}

export class Sandbox implements Harness {
  private stopped: boolean;
  private readonly forget: () => void;
  /** Set once the tools are in: one copy per sandbox. */
  private toolsInstalled: Promise<void> | undefined;

  private constructor(readonly name: string, owned: boolean) {
    this.stopped = !owned;
    // Never leave a running systemd behind, even when the test process dies early.
    this.forget = owned ? onCleanup(() => this.stopSync()) : () => undefined;
  }

  get label(): string {
    return `sandbox ${this.name}: dispatchd units and journal`;
  }

  /** Boots a sandbox named after `label` (a test file's path or a word such as "bench"), unique per process. @throws Error when it fails to boot. */
  static async boot(label: string): Promise<Sandbox> {
    const stem = path.basename(label).replace(/\.test\.[cm]?[jt]s$/, '').replace(/[^A-Za-z0-9-]/g, '-');
    const sb = new Sandbox(`dt-${stem.slice(0, 20)}-${process.pid}`, true);
    const r = await run(['boot', sb.name], { timeoutMs: 180_000 });
    if (r.code !== 0) {
      sb.stopSync();
      throw new Error(describe(`failed to boot sandbox '${sb.name}'`, r));
    }
    return sb;
  }

  /** A sandbox already running under `name`; {@link shutdown} leaves it running. */
  static attach(name: string): Sandbox {
    return new Sandbox(name, false);
  }

  /** Runs argv inside the sandbox. */
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    return run(['exec', this.name, ...argv], opts);
  }

  /** Runs a shell script inside the sandbox (bash, with -euo pipefail). */
  sh(script: string, opts?: ExecOptions): Promise<ExecResult> {
    return this.exec(['bash', '--norc', '--noprofile', '-euo', 'pipefail', '-c', script], opts);
  }

  /** Runs a shell script and returns its standard output. @throws Error with its status and output when it fails. */
  async out(script: string, opts?: ExecOptions): Promise<string> {
    const r = await this.sh(script, opts);
    if (r.code !== 0) throw new Error(describe(`failed to run '${script.slice(0, 200)}' in sandbox '${this.name}'`, r));
    return r.stdout.toString();
  }

  /** Copies host files or directories into directory `dest` inside the sandbox. */
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

  /** Sends a signal to a daemon's unit's processes through systemd, as the contract's operator does. */
  async signal(daemon: string, sig: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT' | 'SIGTERM'): Promise<boolean> {
    const r = await this.exec(['systemctl', 'kill', '-s', sig, serviceUnitOf(daemon)], { timeoutMs: 60_000 });
    return r.code === 0;
  }

  /** The dispatchd units' states and their journal, for a failure dump. */
  async diagnostics(): Promise<string> {
    const r = await this.sh(
      "systemctl list-units --all --no-pager 'dispatchd*' || true; " +
        "journalctl --no-pager -o short-monotonic -n 400 -u 'dispatchd*' || true",
      { timeoutMs: 30_000 },
    );
    return `${r.stdout.toString()}${r.stderr}`;
  }

  // ---- the test tools inside -----------------------------------------------------------

  /** Copies the compiled test tools (build/test/chaos, build/test/fuzz) in, next to the installed build; once. */
  installTools(): Promise<void> {
    this.toolsInstalled ??= (async () => {
      for (const dir of ['chaos', 'fuzz'].filter((d) => fs.existsSync(`${BUILD_TEST}/${d}`))) await this.copyIn(TOOLS_INSIDE, `${BUILD_TEST}/${dir}`);
    })().catch((err: unknown) => {
      this.toolsInstalled = undefined; // let a later call try again
      throw err;
    });
    return this.toolsInstalled;
  }

  /**
   * Starts the load generator (test/chaos/lib/load.ts) inside; resolves once its clients run
   * or, with `readyAfter`, once that many requests have succeeded (within 30 s, else throws).
   * `pauseMs`: each client's pause between two requests; `maxSleepMs`: the longest `sleep` request.
   */
  async startLoad(o: { clients: number; durationMs?: number; requests?: number; timeoutMs?: number; types?: string; seed?: number; pauseMs?: number; maxSleepMs?: number; readyAfter?: number }): Promise<RunningLoad> {
    await this.installTools();
    const args = ['--clients', String(o.clients), '--seed', String(o.seed ?? 1)];
    if (o.durationMs !== undefined) args.push('--duration-ms', String(o.durationMs));
    if (o.requests !== undefined) args.push('--requests', String(o.requests));
    if (o.timeoutMs !== undefined) args.push('--timeout-ms', String(o.timeoutMs));
    if (o.types !== undefined) args.push('--types', o.types);
    if (o.pauseMs !== undefined) args.push('--pause-ms', String(o.pauseMs));
    if (o.maxSleepMs !== undefined) args.push('--max-sleep-ms', String(o.maxSleepMs));
    if (o.readyAfter !== undefined) args.push('--ready-after', String(o.readyAfter));
    const tool = this.tool<LoadReport & { event: string }>('chaos/lib/load.js', args, 'report');
    await tool.started;
    const load: RunningLoad = { done: tool.result.then(({ event: _e, ...r }) => r as LoadReport), stop: tool.stop };
    if (o.readyAfter !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), 30_000)));
      const r = await Promise.race([tool.ready.then(() => 'ready' as const), late]);
      clearTimeout(timer);
      if (r === 'late') {
        load.stop();
        throw new Error(`the load inside did not get ${o.readyAfter} requests served within 30 s: ${describeLoad(await load.done)}`);
      }
    }
    return load;
  }

  /**
   * Starts one of the tools inside (a path under TOOLS_INSIDE, after {@link installTools}) and
   * follows its JSON-lines output: resolves `started` at its {"event":"started"} line, `ready`
   * at its {"event":"ready"} line (both also when it ends) and `result` with its last
   * {"event":…} line of `resultEvent`.
   */
  tool<R>(script: string, args: string[], resultEvent: string): RunningTool<R> {
    const child = spawn(SANDBOX_SH, ['exec', this.name, 'node', `${TOOLS_INSIDE}/${script}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    let onStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => (onStarted = resolve));
    let onReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (onReady = resolve));
    let last: R | undefined;
    let pid: number | undefined;
    createInterface({ input: child.stdout }).on('line', (line) => {
      let m: { event?: string; pid?: number } & Record<string, unknown>;
      try {
        m = JSON.parse(line) as typeof m;
      } catch {
        return;
      }
      if (m.event === 'started') {
        pid = m.pid;
        onStarted();
      }
      if (m.event === 'ready') onReady();
      if (m.event === resultEvent) last = m as unknown as R;
    });
    const result = new Promise<R>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => {
        onStarted();
        onReady();
        if (last !== undefined) resolve(last);
        else reject(new Error(`${script} in sandbox '${this.name}' ended (exit ${code}) without a ${resultEvent}: ${stderr.trim().slice(-2000)}`));
      });
    });
    // Signal the tool itself (its pid inside, from its "started" line): a signal to the
    // `sandbox.sh exec` here would not cross into the sandbox's PID namespace.
    // Once: a test's teardown may stop a tool it already stopped.
    let stopped = false;
    const stop = () => {
      if (pid === undefined || stopped) return;
      stopped = true;
      void this.exec(['kill', '-TERM', String(pid)]);
    };
    return { started, ready, result, stop };
  }

  // ---- the end ------------------------------------------------------------------------

  /** Stops a sandbox this process booted (nothing inside survives); leaves an attached one running. */
  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.forget();
    const r = await run(['stop', this.name], { timeoutMs: 90_000 });
    if (r.code !== 0) throw new Error(describe(`failed to stop sandbox '${this.name}'`, r));
  }

  /** Stops the sandbox synchronously (for exit and signal handlers). */
  stopSync(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.forget();
    spawnSync(SANDBOX_SH, ['stop', this.name], { stdio: 'ignore', timeout: 90_000 });
  }
}
