/**
 * Memory and CPU of running processes, from /proc (proc(5)): what `ps` and `top` show,
 * without spawning them.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ProcSample {
  pid: number;
  /** CPU time used so far (user + system), in s. */
  cpuSeconds: number;
  /** Resident set size now, and its peak, in MiB (VmRSS, VmHWM). */
  rssMiB: number;
  hwmMiB: number;
  /** Proportional set size, in MiB: RSS with each shared page divided among its sharers (NaN if unknown). */
  pssMiB: number;
}

let ticks: number | undefined;
/** Clock ticks per second, for /proc/PID/stat's utime and stime. */
export function clockTicks(): number {
  ticks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticks;
}

/** @throws Error when the process does not exist. */
export function sampleProcess(pid: number): ProcSample {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  let pss = NaN;
  try {
    pss = Number(/^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? NaN) / 1024;
  } catch {
    // smaps_rollup needs Linux 4.14 and the right to read the process's maps
  }
  return { pid, cpuSeconds: (utime + stime) / clockTicks(), rssMiB: kib('VmRSS') / 1024, hwmMiB: kib('VmHWM') / 1024, pssMiB: pss };
}

export interface IdleResult {
  name: string;
  pid: number;
  /** Share of one CPU used over the window, in percent. */
  cpuPercent: number;
  rssMiB: number;
  hwmMiB: number;
  pssMiB: number;
}

/** Samples each process, waits `seconds`, samples again. */
export async function measureIdle(pids: Record<string, number>, seconds: number): Promise<IdleResult[]> {
  const before = Object.entries(pids).map(([name, pid]) => ({ name, s: sampleProcess(pid) }));
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const elapsed = (performance.now() - t0) / 1000;
  return before.map(({ name, s }) => {
    const after = sampleProcess(s.pid);
    return { name, pid: s.pid, cpuPercent: ((after.cpuSeconds - s.cpuSeconds) / elapsed) * 100, rssMiB: after.rssMiB, hwmMiB: after.hwmMiB, pssMiB: after.pssMiB };
  });
}

/** The idle baseline's name in the results. */
export const BARE_NODE = 'bare node, one socket';
/** The idle floor's name in the results: the baseline with the daemons' libraries loaded. */
export const LIBRARIES_NODE = 'bare node, one socket, the daemons\' libraries loaded';

/**
 * The libraries every daemon loads at start (main and the secondaries alike: a module
 * resolve hook lists winston, zod and smol-toml; sd-notify and systemd-journald come through
 * createRequire). Loaded and not used, they are the floor of a daemon's idle memory that
 * only leaving one of them out would lower.
 */
export const DAEMON_LIBRARIES = ['winston', 'zod', 'smol-toml', 'sd-notify', 'systemd-journald'] as const;

/**
 * dispatchd's package root, whose node_modules hold the libraries: this file is
 * build/bench/proc-stats.js in the source tree and in the package alike
 * (/usr/lib/dispatchd/build/bench/ inside the throw-away systemd).
 */
const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The idle baseline: a bare `node` process listening on one unix stream socket and doing
 * nothing else, what any Node.js server holds at the least. With `libraries`, it also loads
 * {@link DAEMON_LIBRARIES} from dispatchd's node_modules first (and uses none of them).
 * Resolves once it listens.
 * @throws Error when it exits first.
 */
async function startSocketHolder(dir: string, libraries = false): Promise<{ pid: number; stop: () => void }> {
  const socket = path.join(dir, libraries ? 'libraries-node.sock' : 'bare-node.sock');
  fs.rmSync(socket, { force: true });
  const load = libraries ? `const r = require('node:module').createRequire(${JSON.stringify(path.join(PACKAGE_ROOT, 'package.json'))}); for (const l of ${JSON.stringify(DAEMON_LIBRARIES)}) r(l);` : '';
  const child = spawn(process.execPath, ['-e', `${load}require('node:net').createServer().listen(${JSON.stringify(socket)}, () => process.stdout.write('listening\\n'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the bare node process holding ${socket} exited ${code}`)));
  });
  return { pid: child.pid!, stop: () => void child.kill() };
}

/**
 * The idle measure's two reference processes in `dir`: the baseline ({@link BARE_NODE}) and
 * its floor with the daemons' libraries ({@link LIBRARIES_NODE}), by name for measureIdle;
 * `stop` ends both. Neither is left running when the second fails to start.
 * @throws Error when either exits before it listens.
 */
export async function startIdleReferences(dir: string): Promise<{ pids: Record<string, number>; stop: () => void }> {
  const bare = await startSocketHolder(dir);
  try {
    const floor = await startSocketHolder(dir, true);
    return { pids: { [BARE_NODE]: bare.pid, [LIBRARIES_NODE]: floor.pid }, stop: () => (bare.stop(), floor.stop()) };
  } catch (err) {
    bare.stop();
    throw err;
  }
}
