/**
 * The installed suite inside a running sandbox (packaging/sandbox.sh: `sudo ./install.sh
 * --sandbox`, or a system test's): commands run inside with `sandbox.sh exec`, faults are sent
 * by systemd (`systemctl kill`), and the test tools (the load generator, the fuzz sender) run
 * inside next to the installed suite, importing the installed client library.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createInterface } from 'node:readline';
import { unitOf } from '../../../daemons/common/units.js';
import { describeLoad, type LoadReport } from './load.js';
import { BUILD_TEST, SANDBOX_SH } from './paths.js';

/** Where the compiled test tools go inside: next to the installed build, so that their
 * `../../daemons/…` imports and node_modules resolve to the installed package. */
export const TOOLS_INSIDE = '/usr/lib/dispatchd/build/test';

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A load generator running inside. */
export interface RunningLoad {
  /** Resolves with the report once the load is over. */
  done: Promise<LoadReport>;
  stop: () => void;
}

/** The daemons of the installed suite (units: `unitOf`). */
export const SANDBOX_DAEMONS = ['main', 'secondary-1', 'secondary-2', 'watchdog'] as const;

export class SandboxTarget {
  constructor(readonly name: string) {}

  /** Runs argv inside; resolves with its exit code and output. */
  exec(argv: string[], timeoutMs = 60_000): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(SANDBOX_SH, ['exec', this.name, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(t);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Runs a shell script inside and returns its output; throws when it fails. */
  async sh(script: string, timeoutMs?: number): Promise<string> {
    const r = await this.exec(['bash', '--norc', '--noprofile', '-euo', 'pipefail', '-c', script], timeoutMs);
    if (r.code !== 0) throw new Error(`failed to run '${script.slice(0, 200)}' in sandbox '${this.name}': exit ${r.code}: ${r.stderr.trim().slice(0, 1000)}`);
    return r.stdout;
  }

  /** Set once the tools are in: every target of this sandbox shares one copy. */
  private toolsInstalled: Promise<void> | undefined;

  /** Copies the compiled test tools (build/test/chaos, build/test/fuzz) in, next to the installed build; once. */
  installTools(): Promise<void> {
    this.toolsInstalled ??= this.copyTools().catch((err: unknown) => {
      this.toolsInstalled = undefined; // let a later call try again
      throw err;
    });
    return this.toolsInstalled;
  }

  private async copyTools(): Promise<void> {
    for (const dir of ['chaos', 'fuzz'].filter((d) => fs.existsSync(`${BUILD_TEST}/${d}`))) {
      await new Promise<void>((resolve, reject) => {
        const child = spawn(SANDBOX_SH, ['copy-in', this.name, TOOLS_INSIDE, `${BUILD_TEST}/${dir}`], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (b: Buffer) => (err += b.toString()));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`failed to copy ${BUILD_TEST}/${dir} into sandbox '${this.name}': ${err.trim()}`))));
      });
    }
  }

  /** Sends a signal to a daemon's unit's processes through systemd, as the contract's operator does. */
  async signal(daemon: string, sig: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT' | 'SIGTERM'): Promise<boolean> {
    const r = await this.exec(['systemctl', 'kill', '-s', sig, unitOf(daemon)]);
    return r.code === 0;
  }

  /** `systemctl show` properties of a unit. */
  async show(unit: string, ...props: string[]): Promise<Record<string, string>> {
    const out = await this.sh(`systemctl show ${props.map((p) => `-p ${p}`).join(' ')} -- '${unit}'`);
    const rec: Record<string, string> = {};
    for (const line of out.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) rec[line.slice(0, eq)] = line.slice(eq + 1);
    }
    return rec;
  }

  /**
   * Starts the load generator (test/chaos/lib/load.ts) inside; resolves once its clients run
   * or, with `readyAfter`, once that many requests have succeeded (within 30 s, else throws).
   * `pauseMs`: each client's pause between two requests.
   */
  async startLoad(o: { clients: number; durationMs?: number; requests?: number; timeoutMs?: number; types?: string; seed?: number; pauseMs?: number; readyAfter?: number }): Promise<RunningLoad> {
    const args = ['--clients', String(o.clients), '--seed', String(o.seed ?? 1)];
    if (o.durationMs !== undefined) args.push('--duration-ms', String(o.durationMs));
    if (o.requests !== undefined) args.push('--requests', String(o.requests));
    if (o.timeoutMs !== undefined) args.push('--timeout-ms', String(o.timeoutMs));
    if (o.types !== undefined) args.push('--types', o.types);
    if (o.pauseMs !== undefined) args.push('--pause-ms', String(o.pauseMs));
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
   * Starts one of the tools inside (a path under TOOLS_INSIDE) and follows its JSON-lines
   * output: resolves `started` at its {"event":"started"} line, `ready` at its
   * {"event":"ready"} line (both also when it ends) and `result` with its last {"event":…}
   * line of `resultEvent`.
   */
  tool<R>(script: string, args: string[], resultEvent: string): { started: Promise<void>; ready: Promise<void>; result: Promise<R>; stop: () => void } {
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
}
