/**
 * Start-up cost of command-line runs, whole processes: each command is spawned `runs` times,
 * the commands interleaved (a, b, c, a, b, c, …) so that a slow spell of the machine hits
 * each alike, after `warmup` unmeasured rounds (which also fill a compile cache where the
 * runtime has one). Wall time from spawn to exit; CPU time of the children from this
 * process's cutime + cstime (proc(5), clock ticks summed over all runs).
 *
 * The commands run without NODE_EXTRA_CA_CERTS and NODE_OPTIONS: Node.js reads and parses
 * the certificate bundle named there at every start, whatever the script (on the
 * development machine, where it is set, `node -e 0` took 74 ms with it and 28 ms without),
 * which would hide the CLI's own cost in the baseline; the systemd target's sandbox has
 * neither.
 *
 * Repeated spawns rather than hyperfine: the same code runs on the host and inside the
 * throw-away systemd, where hyperfine is not installed, and hyperfine runs one command's
 * runs after another's rather than interleaved.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { clockTicks } from './proc-stats.js';
import { median, quantileSorted } from './stats.js';

export interface CliStartFigures {
  /** The command line, as run. */
  argv: string[];
  /** Wall time per run, median and 90th percentile (ms). */
  medianMs: number;
  p90Ms: number;
  /** Mean CPU time per run, user + system (ms; 10 ms ticks summed over the runs). */
  cpuMs: number;
}

export interface CliStartResult {
  runs: number;
  warmup: number;
  commands: Record<string, CliStartFigures>;
}

/** CPU time of this process's waited-for children so far, in clock ticks (cutime + cstime). */
function childTicks(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[13]) + Number(f[14]);
}

/**
 * Runs each command `runs` times, interleaved, after `warmup` rounds.
 * @throws Error when a run exits non-zero (with its standard error).
 */
export function measureCliStart(commands: Record<string, string[]>, runs: number, warmup: number): CliStartResult {
  const names = Object.keys(commands);
  const wall: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const ticks: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.NODE_OPTIONS;
  for (let round = 0; round < warmup + runs; round++) {
    for (const name of names) {
      const [cmd, ...args] = commands[name]!;
      const c0 = childTicks();
      const t0 = performance.now();
      const r = spawnSync(cmd!, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
      const ms = performance.now() - t0;
      if (r.status !== 0) throw new Error(`'${commands[name]!.join(' ')}' exited ${r.status ?? r.signal}: ${r.stderr.toString().trim()}`);
      if (round < warmup) continue;
      wall[name]!.push(ms);
      ticks[name]! += childTicks() - c0;
    }
  }
  const figures: Record<string, CliStartFigures> = {};
  for (const name of names) {
    const sorted = [...wall[name]!].sort((a, b) => a - b);
    figures[name] = { argv: commands[name]!, medianMs: median(sorted), p90Ms: quantileSorted(sorted, 0.9), cpuMs: ((ticks[name]! / clockTicks()) * 1000) / runs };
  }
  return { runs, warmup, commands: figures };
}
