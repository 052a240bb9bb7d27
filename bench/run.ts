#!/usr/bin/node
/**
 * `npm run bench`: dispatchd side by side with the baselines users would otherwise run,
 * every figure a ratio against a baseline measured in the same run on the same machine.
 *
 * Targets: `bare` (one Node process serving the same handlers with the same framing on a
 * unix stream socket: the ceiling for this stack), `cluster` (node:cluster with as many
 * workers as secondaries), `floor` (bench/relay-floor.ts: a new lease's processes
 * and hops with none of dispatchd's logic, for the new-lease measures only), `plain`
 * (dispatchd's daemons as plain processes), `systemd` (the .deb installed under a throw-away
 * systemd, as users run it; needs root).
 *
 * Declared request types (issue 10), on the plain target: `module` (a module handler that
 * echoes, against the built-in echo of the same suite), `exec` (an exec handler running
 * /bin/cat, against the load worker spawning /bin/cat per request itself: load target
 * `spawn`) and `cpu` (a module handler hashing in JavaScript, 1 secondary against N). The
 * types are declared in the suite's own types.d (bench.toml), the handlers in bench/handlers.
 *
 * Persistent workers (issue 11), on the plain target: `persistent` (bench/handlers/
 * echo_worker.py as a persistent worker, socket-activated by test/helpers/activate.py --fdnames worker
 * as its unit would be, against the same script as a per-request exec handler, and against
 * its function called in-process from a Python loop).
 *
 * The Python client (issue 11), on the plain target: `python` (bench/py_load.py, the
 * `dispatchd` package of python/, on an established lease and with a new lease per request,
 * each against the TypeScript client's load worker on the same suite, runs interleaved; the
 * same type, size, concurrency and duration as the lease and handshake measures).
 *
 * Writes the results as JSON (--json) and a Markdown table between the markers
 * `<!-- bench:begin -->` and `<!-- bench:end -->` of docs/BENCHMARKS.md (--markdown).
 * The options are listed by `npm run bench -- --help`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import cliProgress from 'cli-progress';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { BUILTIN_HANDLERS } from '../daemons/common/request-type.js';
import { DEFAULT_SECONDARIES, serviceUnit, suiteDaemons, workerSocketPath } from '../daemons/common/topology.js';
import { VERSION } from '../daemons/common/version.js';
import type { LoadResult } from './load.js';
import { ensureDeb, ProcessSuite, ROOT } from '../test/helpers/index.js';
import { ACTIVATE_PY } from '../test/helpers/paths.js';
import type { CliStartResult } from './cli-start.js';
import { BARE_NODE, LIBRARIES_NODE, measureIdle, sampleProcess, startIdleReferences, type IdleResult } from './proc-stats.js';
import { renderMarkdown, summarise, writeMarkdown, type BenchResults, type MeasureRow } from './report.js';
import { BareServer, RelayFloor } from './servers.js';
import { median } from './stats.js';
import { cannotBoot, SystemdSuite } from './systemd-suite.js';

const ALL_TARGETS = ['bare', 'cluster', 'floor', 'plain', 'systemd'] as const;
const ALL_MEASURES = ['lease', 'handshake', 'kept', 'large', 'scale', 'module', 'exec', 'cpu', 'persistent', 'python', 'freeze', 'start', 'idle', 'cli'] as const;
/** Measures of declared request types (bench/handlers, declared by {@link writeBenchTypes}). */
const TYPE_MEASURES: readonly Measure[] = ['module', 'exec', 'cpu', 'persistent'];
type Target = (typeof ALL_TARGETS)[number];
type Measure = (typeof ALL_MEASURES)[number];
/**
 * What a job runs against: a target, the plain suite with one secondary (scale and cpu
 * measures), or `spawn`: no server, the load worker spawning a command per request (the
 * exec measure's baseline, which runs whenever the plain suite does).
 */
type Server = Target | 'plain-1' | 'spawn';

const argv = await yargs(hideBin(process.argv))
  .scriptName('npm run bench --')
  .usage('$0 [options]\n\nMeasures dispatchd against a bare Node server and node:cluster in the same run.')
  .option('duration', { type: 'number', default: 5, describe: 'measured seconds per load run' })
  .option('warmup', { type: 'number', default: 1, describe: 'warm-up seconds before each load run' })
  .option('repeat', { type: 'number', default: 3, describe: 'runs of each load measurement per target (medians quoted)' })
  .option('concurrency', { type: 'number', default: 1, describe: 'virtual clients for the lease, handshake, kept, large and python measures' })
  .option('type', { type: 'string', default: 'echo', choices: BUILTIN_HANDLERS, describe: 'request type of the lease, handshake, kept and python measures (a built-in handler, which the bare server and node:cluster run too)' })
  .option('size', { type: 'number', default: 1024, describe: 'DATA bytes of the lease, handshake, kept and python measures' })
  .option('large-size', { type: 'number', default: 16 * 1024 * 1024, describe: 'DATA bytes of the large (echo) measure' })
  .option('scale-type', { type: 'string', default: 'sha256', choices: BUILTIN_HANDLERS, describe: 'request type of the scale measure (a built-in handler)' })
  .option('scale-size', { type: 'number', default: 64 * 1024, describe: 'DATA bytes of the scale measure' })
  .option('scale-concurrency', { type: 'number', default: 4, describe: 'virtual clients of the scale measure' })
  .option('types-size', { type: 'number', default: 1024, describe: 'DATA bytes of the module and exec measures' })
  .option('cpu-size', { type: 'number', default: 64 * 1024, describe: 'DATA bytes of the cpu measure (sha256-js module handler)' })
  .option('secondaries', { type: 'number', default: 2, describe: 'secondaries of the plain suite, and cluster workers' })
  .option('targets', { type: 'string', default: ALL_TARGETS.join(','), describe: `comma-separated: ${ALL_TARGETS.join(', ')}` })
  .option('measures', { type: 'string', default: ALL_MEASURES.join(','), describe: `comma-separated: ${ALL_MEASURES.join(', ')}` })
  .option('idle-seconds', { type: 'number', default: 60, describe: 'window of the idle CPU measure' })
  .option('cli-runs', { type: 'number', default: 40, describe: 'whole runs of each command of the cli measure (dispatchctl request echo x, dispatchctl --version, node -e 0; medians quoted)' })
  .option('freeze-repeat', { type: 'number', default: 3, describe: 'runs of the freeze and start measures' })
  .option('deb', { type: 'string', describe: 'install this .deb (default: dist/, rebuilt when stale)' })
  .option('json', { type: 'string', default: 'build/bench/results.json', describe: "where to write the results as JSON ('-': standard output)" })
  .option('markdown', { type: 'string', default: 'docs/BENCHMARKS.md', describe: "Markdown file whose bench:begin/end block is replaced ('': none)" })
  .option('cpu-prof', { type: 'string', describe: 'write V8 CPU profiles of the plain daemons, the bare servers, the floor and the load workers on the host to this directory' })
  .option('progress', { type: 'boolean', default: Boolean(process.stderr.isTTY), describe: 'progress bar (default: on a terminal)' })
  .check((a) => {
    for (const t of a.targets.split(',')) if (!(ALL_TARGETS as readonly string[]).includes(t)) throw new Error(`unknown target '${t}'`);
    for (const m of a.measures.split(',')) if (!(ALL_MEASURES as readonly string[]).includes(m)) throw new Error(`unknown measure '${m}'`);
    if (a.repeat < 1 || a.duration <= 0 || a.warmup < 0 || a.concurrency < 1 || a.secondaries < 1) throw new Error('repeat, duration, concurrency and secondaries must be positive');
    return true;
  })
  .strict()
  .help()
  .parseAsync();

const targets = new Set(argv.targets.split(',') as Target[]);
const measures = new Set(argv.measures.split(',') as Measure[]);
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const log = (line: string): void => void (multibar ? multibar.log(`${line}\n`) : process.stderr.write(`${line}\n`));

const skipped: Record<string, string> = {};
if (targets.has('systemd')) {
  const why = cannotBoot(argv.deb);
  if (why) {
    skipped.systemd = why;
    targets.delete('systemd');
  }
}

// ---- what will run -------------------------------------------------------------------

interface Job {
  label: string;
  /** The servers it measures: it runs when at least one of them is up, and only they are started. */
  uses: Server[];
  /** Expected seconds, for the progress bar. */
  weight: number;
  run: (tick: (f: number) => void) => Promise<void>;
}
const jobs: Job[] = [];
const loadSeconds = argv.duration + argv.warmup;
const nodeProf = argv['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(argv['cpu-prof'])}`] : [];

let bare: BareServer | undefined;
let cluster: BareServer | undefined;
let floor: RelayFloor | undefined;
let plain: ProcessSuite | undefined;
let plainOne: ProcessSuite | undefined;
let sys: SystemdSuite | undefined;

const loads: BenchResults['loads'] = {};
const other: BenchResults['other'] = {};

function workerArgs(kind: 'bare' | 'dispatchd' | 'relay' | 'spawn', socket: string, mode: string, type: string, size: number, concurrency: number): string[] {
  return ['load', '--target', kind, '--socket', socket, '--mode', mode, '--type', type, '--size', String(size), '--concurrency', String(concurrency), '--duration', String(argv.duration * 1000), '--warmup', String(argv.warmup * 1000)];
}

/** The processes serving a host target, by role, for CPU time per request. */
function serverPids(target: string): Record<string, number> {
  const children = (pid: number): number[] => {
    try {
      return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  switch (target) {
    case 'bare':
      return bare ? { server: bare.pid } : {};
    case 'cluster':
      return cluster ? { primary: cluster.pid, ...Object.fromEntries(children(cluster.pid).map((p, i) => [`worker ${i + 1}`, p])) } : {};
    case 'floor':
      return floor ? floor.pids() : {};
    case 'plain':
      return plain ? plain.pids() : {};
    case 'plain-1':
      return plainOne ? plainOne.pids() : {};
    default:
      return {};
  }
}

function cpuSeconds(pid: number): number {
  try {
    return sampleProcess(pid).cpuSeconds;
  } catch {
    return NaN;
  }
}

/**
 * Runs the load worker on the host, as its own process, and adds to its result the CPU time
 * each serving process spent per request over the whole run (µs; clock ticks of 10 ms, so
 * meaningful over thousands of requests).
 */
async function hostWorker(args: string[], tick: (f: number) => void, target?: string, program?: LoadProgram): Promise<LoadResult> {
  const pids = target ? serverPids(target) : {};
  const before = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuSeconds(p)]));
  const r = await runHostWorker(args, tick, program);
  const cpu: Record<string, number> = { client: r.clientCpuUsPerRequest };
  for (const [k, p] of Object.entries(pids)) cpu[k] = ((cpuSeconds(p) - before[k]!) / r.totalRequests) * 1e6;
  return { ...r, cpuUsPerRequest: cpu };
}

/** Calls `tick` every `everyMs` with the fraction of `seconds` elapsed (at most 1); returns its stop. */
function progressTimer(tick: (f: number) => void, seconds: number, everyMs = 250): () => void {
  const t0 = Date.now();
  const timer = setInterval(() => tick(Math.min(1, (Date.now() - t0) / 1000 / seconds)), everyMs);
  return () => clearInterval(timer);
}

/** A load generator's command line before its arguments, and its environment (default: the Node load worker). */
interface LoadProgram {
  argv: string[];
  env?: NodeJS.ProcessEnv;
}
const NODE_WORKER: LoadProgram = { argv: [process.execPath, ...nodeProf, path.join(ROOT, 'build/bench/worker.js')] };

function runHostWorker(args: string[], tick: (f: number) => void, program: LoadProgram = NODE_WORKER): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program.argv[0]!, [...program.argv.slice(1), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: program.env ?? process.env });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const stopProgress = progressTimer(tick, loadSeconds);
    child.on('error', (e) => {
      stopProgress();
      reject(e);
    });
    child.on('close', (code) => {
      stopProgress();
      if (code === 0) resolve(JSON.parse(out) as LoadResult);
      else reject(new Error(err.trim() || `${program.argv.join(' ')}: exit ${code}`));
    });
  });
}

function sandboxWorker(args: string[], tick: (f: number) => void): Promise<LoadResult> {
  const stopProgress = progressTimer(tick, loadSeconds);
  return sys!.worker(args).finally(stopProgress) as Promise<LoadResult>;
}

/** Adds run number `repeat` (from 0) of a load measure on a target; its result goes to that index. */
function addLoad(measure: string, label: string, target: Server, repeat: number, run: (tick: (f: number) => void) => Promise<LoadResult>, key: string = target): void {
  jobs.push({
    label: `${measure} ${label}`,
    uses: [target],
    weight: loadSeconds,
    run: async (tick) => {
      let result: LoadResult | null = null;
      try {
        result = await run(tick);
      } catch (err) {
        log(`bench: ${measure} on ${target} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      // By repeat, a failed run leaving a gap (null), so that ratios pair runs of one round.
      const runs = ((loads[measure] ??= {})[key] ??= []);
      while (runs.length < repeat) runs.push(null);
      runs[repeat] = result;
    },
  });
}

/** Adds a measure the sandbox worker runs `--freeze-repeat` times in a row (`args`: its command); `file` records the runs. */
function addSandboxRuns<R>(label: string, weightEach: number, args: string[], file: (runs: R[]) => void): void {
  jobs.push({
    label,
    uses: ['systemd'],
    weight: weightEach * argv['freeze-repeat'],
    run: async () => {
      const runs: R[] = [];
      for (let i = 0; i < argv['freeze-repeat']; i++) runs.push((await sys!.worker(args)) as R);
      file(runs);
    },
  });
}

const MAIN_SOCKET = '/run/dispatchd/main.sock';
/** The exec measure's command, for the exec handler and the spawn baseline alike. */
const CAT = '/bin/cat';
/** The bench's declared request types, by measure. */
const BENCH_TYPES = { module: 'echo-module', exec: 'cat', cpu: 'sha256-js', persistent: 'echo-py', perRequest: 'echo-py-exec' } as const;
/** The persistent measure's script (three ways: worker, per-request exec, in-process loop) and its interpreter. */
const ECHO_PY = path.join(ROOT, 'bench/handlers/echo_worker.py');
const PYTHON = '/usr/bin/python3';
/**
 * The python measure's load generator: bench/py_load.py with the repository's `dispatchd`
 * package (python/) first on its path. Its arguments are the Node worker's after `load
 * --target dispatchd` (see {@link pyLoadArgs}).
 */
const PY_LOAD: LoadProgram = { argv: [PYTHON, path.join(ROOT, 'bench/py_load.py')], env: { ...process.env, PYTHONPATH: path.join(ROOT, 'python') } };
/** {@link workerArgs} of a dispatchd target without its first three (`load --target dispatchd`), as py_load.py takes them. */
const pyLoadArgs = (socket: string, mode: string, type: string, size: number, concurrency: number): string[] => workerArgs('dispatchd', socket, mode, type, size, concurrency).slice(3);
/** The persistent workers the bench started itself (stopped at the end). */
const workerProcs: ChildProcess[] = [];
/** Quiet time before the idle window (ms). */
const IDLE_SETTLE_MS = 5000;
const loadMeasures: Array<{ m: Measure; mode: string; type: string; size: number; conc: number }> = [
  { m: 'lease', mode: 'session', type: argv.type, size: argv.size, conc: argv.concurrency },
  { m: 'handshake', mode: 'handshake', type: argv.type, size: argv.size, conc: argv.concurrency },
  // New leases from one client that keeps its main connection (bare: as handshake, a new connection per request).
  { m: 'kept', mode: 'kept', type: argv.type, size: argv.size, conc: argv.concurrency },
  { m: 'large', mode: 'session', type: 'echo', size: argv['large-size'], conc: argv.concurrency },
];
for (const lm of loadMeasures) {
  if (!measures.has(lm.m)) continue;
  for (let r = 0; r < argv.repeat; r++) {
    // Interleaved (bare, cluster, plain, systemd, bare, …) so that a slow spell of the
    // machine hits every target alike.
    if (targets.has('bare')) addLoad(lm.m, `bare #${r + 1}`, 'bare', r, (t) => hostWorker(workerArgs('bare', bare!.socket, lm.mode, lm.type, lm.size, lm.conc), t, 'bare'));
    if (targets.has('cluster')) addLoad(lm.m, `cluster #${r + 1}`, 'cluster', r, (t) => hostWorker(workerArgs('bare', cluster!.socket, lm.mode, lm.type, lm.size, lm.conc), t, 'cluster'));
    if (targets.has('floor') && (lm.m === 'handshake' || lm.m === 'kept')) addLoad(lm.m, `floor #${r + 1}`, 'floor', r, (t) => hostWorker(workerArgs('relay', floor!.socket, lm.mode, lm.type, lm.size, lm.conc), t, 'floor'));
    if (targets.has('plain')) addLoad(lm.m, `plain #${r + 1}`, 'plain', r, (t) => hostWorker(workerArgs('dispatchd', plain!.mainSocket, lm.mode, lm.type, lm.size, lm.conc), t, 'plain'));
    if (targets.has('systemd')) addLoad(lm.m, `systemd #${r + 1}`, 'systemd', r, (t) => sandboxWorker(workerArgs('dispatchd', MAIN_SOCKET, lm.mode, lm.type, lm.size, lm.conc), t));
  }
}
if (measures.has('scale')) {
  const sargs = (kind: 'bare' | 'dispatchd', socket: string) => workerArgs(kind, socket, 'session', argv['scale-type'], argv['scale-size'], argv['scale-concurrency']);
  for (let r = 0; r < argv.repeat; r++) {
    if (targets.has('plain')) {
      addLoad('scale', `plain, 1 secondary #${r + 1}`, 'plain-1', r, (t) => hostWorker(sargs('dispatchd', plainOne!.mainSocket), t, 'plain-1'));
      addLoad('scale', `plain, ${argv.secondaries} secondaries #${r + 1}`, 'plain', r, (t) => hostWorker(sargs('dispatchd', plain!.mainSocket), t, 'plain'));
    }
    if (targets.has('bare')) addLoad('scale', `bare #${r + 1}`, 'bare', r, (t) => hostWorker(sargs('bare', bare!.socket), t, 'bare'));
    if (targets.has('cluster')) addLoad('scale', `cluster #${r + 1}`, 'cluster', r, (t) => hostWorker(sargs('bare', cluster!.socket), t, 'cluster'));
  }
}
// Declared request types (issue 10), on the plain suite, each against a baseline of the same
// run: the module handler against the built-in echo, the exec handler against spawning the
// same command from Node, the CPU-bound module handler on N secondaries against 1.
if (targets.has('plain')) {
  const size = argv['types-size'];
  const conc = argv.concurrency;
  for (let r = 0; r < argv.repeat; r++) {
    if (measures.has('module')) {
      addLoad('module', `built-in echo #${r + 1}`, 'plain', r, (t) => hostWorker(workerArgs('dispatchd', plain!.mainSocket, 'session', 'echo', size, conc), t, 'plain'), 'builtin');
      addLoad('module', `echo-module #${r + 1}`, 'plain', r, (t) => hostWorker(workerArgs('dispatchd', plain!.mainSocket, 'session', BENCH_TYPES.module, size, conc), t, 'plain'));
    }
    if (measures.has('exec')) {
      addLoad('exec', `spawn ${CAT} from Node #${r + 1}`, 'spawn', r, (t) => hostWorker(workerArgs('spawn', CAT, 'session', BENCH_TYPES.exec, size, conc), t));
      addLoad('exec', `cat (exec handler) #${r + 1}`, 'plain', r, (t) => hostWorker(workerArgs('dispatchd', plain!.mainSocket, 'session', BENCH_TYPES.exec, size, conc), t, 'plain'));
    }
    if (measures.has('persistent')) {
      addLoad('persistent', `echo_worker.py per-request exec #${r + 1}`, 'plain', r, (t) => hostWorker(workerArgs('dispatchd', plain!.mainSocket, 'session', BENCH_TYPES.perRequest, size, conc), t, 'plain'), 'exec');
      addLoad('persistent', `echo_worker.py persistent worker #${r + 1}`, 'plain', r, (t) => hostWorker(workerArgs('dispatchd', plain!.mainSocket, 'session', BENCH_TYPES.persistent, size, conc), t, 'plain'));
      addLoad('persistent', `echo() in a Python loop #${r + 1}`, 'plain', r, (t) => pythonLoop(size, t), 'loop');
    }
    if (measures.has('cpu')) {
      const cargs = (s: ProcessSuite) => workerArgs('dispatchd', s.mainSocket, 'session', BENCH_TYPES.cpu, argv['cpu-size'], argv['scale-concurrency']);
      addLoad('cpu', `sha256-js, 1 secondary #${r + 1}`, 'plain-1', r, (t) => hostWorker(cargs(plainOne!), t, 'plain-1'));
      addLoad('cpu', `sha256-js, ${argv.secondaries} secondaries #${r + 1}`, 'plain', r, (t) => hostWorker(cargs(plain!), t, 'plain'));
    }
  }
}
// The Python client (issue 11) against the TypeScript client, on the plain suite, with the
// lease and handshake measures' type, size and concurrency: an established lease (mode
// session) and a new lease per request (mode handshake), runs interleaved.
if (targets.has('plain') && measures.has('python')) {
  for (let r = 0; r < argv.repeat; r++) {
    for (const [mode, key, what] of [['session', 'established', 'established lease'], ['handshake', 'new', 'new leases']] as const) {
      addLoad('python', `${what}, TypeScript client #${r + 1}`, 'plain', r, (t) => hostWorker(workerArgs('dispatchd', plain!.mainSocket, mode, argv.type, argv.size, argv.concurrency), t, 'plain'), `ts-${key}`);
      addLoad('python', `${what}, Python client #${r + 1}`, 'plain', r, (t) => hostWorker(pyLoadArgs(plain!.mainSocket, mode, argv.type, argv.size, argv.concurrency), t, 'plain', PY_LOAD), `py-${key}`);
    }
  }
}
/** The persistent measure's in-process baseline: echo_worker.py --loop, its LoadResult. */
function pythonLoop(size: number, tick: (f: number) => void): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [ECHO_PY, '--loop', String(argv.duration), String(size)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const stopProgress = progressTimer(tick, argv.duration);
    child.on('error', reject);
    child.on('close', (code) => {
      stopProgress();
      if (code === 0) resolve(JSON.parse(out) as LoadResult);
      else reject(new Error(err.trim() || `${ECHO_PY} --loop: exit ${code}`));
    });
  });
}
if (targets.has('systemd')) {
  if (measures.has('freeze')) {
    addSandboxRuns<{ ms: number }>('freeze of main (systemd)', 4, ['freeze'], (runs) => {
      const ms = runs.map((r) => r.ms);
      other.freeze = { runs: ms, median: median(ms) };
    });
  }
  if (measures.has('start')) {
    addSandboxRuns<{ startReturnedMs: number; firstServedMs: number }>('start of dispatchd.target (systemd)', 2, ['start'], (runs) => {
      other.start = { runs, median: median(runs.map((r) => r.firstServedMs)), medianStartReturned: median(runs.map((r) => r.startReturnedMs)) };
    });
  }
}
if (measures.has('idle') && (targets.has('plain') || targets.has('systemd'))) {
  jobs.push({
    label: `idle ${argv['idle-seconds']} s (plain and systemd side by side)`,
    // The bare server is measured alongside the plain daemons (the floor of this stack).
    uses: [...(['plain', 'systemd'] as const).filter((t) => targets.has(t)), ...(targets.has('plain') && targets.has('bare') ? (['bare'] as const) : [])],
    weight: argv['idle-seconds'] + IDLE_SETTLE_MS / 1000,
    run: async (tick) => {
      const stopProgress = progressTimer(tick, argv['idle-seconds'] + IDLE_SETTLE_MS / 1000, 500);
      try {
        // The start runs just restarted the systemd suite: let its start-up work (compilation,
        // first collections) end before the idle window opens.
        await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
        const units = suiteDaemons(DEFAULT_SECONDARIES).map(serviceUnit);
        // The baseline of the RSS ratio, a bare node process holding one socket, and its
        // floor, the same with the daemons' libraries loaded: on the host beside the plain
        // daemons (the systemd worker starts its own inside the sandbox).
        const holderDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-bench-idle-'));
        let refs: Awaited<ReturnType<typeof startIdleReferences>> | undefined;
        try {
          if (plain) refs = await startIdleReferences(holderDir);
          const [p, b, s] = await Promise.all([
            plain ? measureIdle({ ...plain.pids(), ...refs?.pids }, argv['idle-seconds']) : undefined,
            // The bare server alongside: the floor of this stack (Node, the framing, the handlers).
            plain && bare ? measureIdle({ 'bare server (floor)': bare.pid }, argv['idle-seconds']) : undefined,
            sys ? (sys.worker(['idle', '--seconds', String(argv['idle-seconds']), '--units', units.join(',')]) as Promise<{ daemons: IdleResult[] }>) : undefined,
          ]);
          const [plainNode, sysNode] = [p, s?.daemons].map((d) => d?.find((x) => x.name === BARE_NODE));
          const [plainFloor, sysFloor] = [p, s?.daemons].map((d) => d?.find((x) => x.name === LIBRARIES_NODE));
          const others = (d: IdleResult[] | undefined) => d?.filter((x) => x.name !== BARE_NODE && x.name !== LIBRARIES_NODE);
          other.idle = { plain: others(p), bare: b?.[0], systemd: others(s?.daemons), bareNode: { plain: plainNode, systemd: sysNode }, librariesNode: { plain: plainFloor, systemd: sysFloor } };
        } finally {
          refs?.stop();
          fs.rmSync(holderDir, { recursive: true, force: true });
        }
      } finally {
        stopProgress();
      }
    },
  });
}

if (measures.has('cli') && (targets.has('plain') || targets.has('systemd'))) {
  const runs = String(argv['cli-runs']);
  if (targets.has('plain')) {
    jobs.push({
      label: `cli: ${runs} runs of dispatchctl request, --version and node -e 0 (plain)`,
      uses: ['plain'],
      weight: argv['cli-runs'] * 0.6,
      // /usr/bin/dispatchctl is build/daemons/client/dispatchctl.cjs (launch.ts bundled; compile cache where Node.js has one).
      run: async () => {
        const r = spawnSync(process.execPath, [path.join(ROOT, 'build/bench/worker.js'), 'cli', '--socket', plain!.mainSocket, '--dispatchctl', path.join(ROOT, 'build/daemons/client/dispatchctl.cjs'), '--runs', runs], { encoding: 'utf8' });
        if (r.status !== 0) log(`bench: cli on plain failed: ${r.stderr.trim()}`);
        else (other.cli ??= {}).plain = JSON.parse(r.stdout) as CliStartResult;
      },
    });
  }
  if (targets.has('systemd')) {
    jobs.push({
      label: `cli: ${runs} runs of dispatchctl request, --version and node -e 0 (systemd)`,
      uses: ['systemd'],
      weight: argv['cli-runs'] * 0.6,
      run: async () => {
        try {
          (other.cli ??= {}).systemd = (await sys!.worker(['cli', '--socket', MAIN_SOCKET, '--dispatchctl', '/usr/bin/dispatchctl', '--runs', runs])) as CliStartResult;
        } catch (err) {
          log(`bench: cli on systemd failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      },
    });
  }
}

// ---- run -----------------------------------------------------------------------------

const totalWeight = jobs.reduce((s, j) => s + j.weight, 0);
let multibar: cliProgress.MultiBar | undefined;
let bar: cliProgress.SingleBar | undefined;
if (argv.progress) {
  multibar = new cliProgress.MultiBar(
    { format: 'bench [{bar}] {percentage}% | ETA {eta_formatted} | {job}', hideCursor: true, stream: process.stderr, etaBuffer: 50, fps: 4, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
}

const cleanup = () => {
  sys?.stopSync();
};
process.on('SIGINT', () => {
  multibar?.stop();
  cleanup();
  process.exit(130);
});
process.on('SIGTERM', () => {
  multibar?.stop();
  cleanup();
  process.exit(143);
});

interface SetupStep {
  what: string;
  /** A step that may fail without ending the run: the target is then left out (systemd only). */
  optional?: 'systemd';
  run: () => Promise<void>;
}
const setupSteps: SetupStep[] = [];
/** Started only when some job measures it. */
const used = new Set(jobs.flatMap((j) => j.uses));
const isUp = (s: Server): boolean => (s === 'spawn' ? plain !== undefined : { bare, cluster, floor, plain, 'plain-1': plainOne, systemd: sys }[s] !== undefined);
if (used.has('bare')) setupSteps.push({ what: 'start the bare server', run: async () => void (bare = await BareServer.start(0, nodeProf)) });
if (used.has('floor')) setupSteps.push({ what: 'start the handshake floor (bench/relay-floor.ts)', run: async () => void (floor = await RelayFloor.start(nodeProf)) });
if (used.has('cluster')) setupSteps.push({ what: `start node:cluster (${argv.secondaries} workers)`, run: async () => void (cluster = await BareServer.start(argv.secondaries, nodeProf)) });
if (used.has('plain')) setupSteps.push({ what: `start dispatchd as plain processes (${argv.secondaries} secondaries)`, run: async () => void (plain = await startPlain(argv.secondaries)) });
if (used.has('plain-1')) setupSteps.push({ what: 'start dispatchd as plain processes (1 secondary)', run: async () => void (plainOne = await startPlain(1)) });
/**
 * Declares the bench's request types (docs/TYPES.md) in the suite's own types directory,
 * mode 0644 as check-config wants: a module handler that echoes, an exec handler running
 * {@link CAT}, and a CPU-bound module handler (SHA-256 in plain JavaScript).
 */
function writeBenchTypes(s: ProcessSuite): void {
  const handler = (f: string) => JSON.stringify(path.join(ROOT, 'bench/handlers', f));
  const file = path.join(s.typesDir, 'bench.toml');
  fs.writeFileSync(
    file,
    [
      `[type.${BENCH_TYPES.module}]\nhandler = "module"\nmodule = ${handler('echo.mjs')}\nconcurrency = 32\nidempotent = true\n`,
      `[type.${BENCH_TYPES.exec}]\nhandler = "exec"\ncommand = [${JSON.stringify(CAT)}]\nconcurrency = 32\nidempotent = true\n`,
      `[type.${BENCH_TYPES.cpu}]\nhandler = "module"\nmodule = ${handler('sha256.mjs')}\nconcurrency = 32\nidempotent = true\n`,
      `[type.${BENCH_TYPES.persistent}]\nhandler = "exec"\nmode = "persistent"\ncommand = [${JSON.stringify(PYTHON)}, ${JSON.stringify(ECHO_PY)}]\nconcurrency = 32\nidempotent = true\n`,
      `[type.${BENCH_TYPES.perRequest}]\nhandler = "exec"\ncommand = [${JSON.stringify(PYTHON)}, ${JSON.stringify(ECHO_PY)}]\nconcurrency = 32\nidempotent = true\n`,
    ].join('\n'),
  );
  fs.chmodSync(file, 0o644);
}
/**
 * Starts the persistent type's one worker as its unit would (no systemd here): listening on
 * its socket in the suite's runtime directory, passed as fd 3 by activate.py --fdnames worker.
 */
function startEchoWorker(s: ProcessSuite): void {
  const sock = workerSocketPath(s.dir, { type: BENCH_TYPES.persistent, index: 1 });
  const env = { ...process.env, PYTHONPATH: path.join(ROOT, 'python'), DISPATCHD_TYPE: BENCH_TYPES.persistent, DISPATCHD_WORKER: `${BENCH_TYPES.persistent}-1` };
  const child = spawn(PYTHON, [ACTIVATE_PY, '--fdnames', 'worker', sock, PYTHON, ECHO_PY], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  workerProcs.push(child);
}
/**
 * dispatchd as plain processes (test/helpers ProcessSuite: socket activation imitated, no
 * systemd, so no watchdog and no Restart=), the scoreboard in /dev/shm as installed.
 */
async function startPlain(secondaries: number): Promise<ProcessSuite> {
  const s = new ProcessSuite({ secondaries, nodeArgs: nodeProf, scoreboardInShm: true, restart: false });
  try {
    if (TYPE_MEASURES.some((m) => measures.has(m))) {
      writeBenchTypes(s);
      // Before the secondaries: they connect to it at start (and retry with a back-off).
      if (measures.has('persistent')) startEchoWorker(s);
    }
    await s.startAll({ watchdog: false });
  } catch (err) {
    await s.shutdown();
    throw err;
  }
  return s;
}
let sysVersions = '';
if (used.has('systemd')) {
  setupSteps.push({
    what: 'build the .deb and boot a throw-away systemd',
    optional: 'systemd',
    run: async () => {
      const deb = await ensureDeb(argv.deb);
      sys = await SystemdSuite.boot(deb);
      sysVersions = await sys.versions();
      // Served once before measuring: the suite is up and every unit ready.
      await sys.worker(['load', '--target', 'dispatchd', '--socket', MAIN_SOCKET, '--mode', 'handshake', '--size', '1', '--duration', '200', '--warmup', '0']);
    },
  });
}

const started = new Date();
let done = 0;
bar = multibar?.create(totalWeight + setupSteps.length * 5, 0, { job: 'setting up' });
try {
  for (const { what, optional, run } of setupSteps) {
    bar?.update(done, { job: what });
    if (!multibar) log(`bench: ${what}`);
    try {
      await run();
    } catch (err) {
      if (!optional) throw err;
      skipped[optional] = `failed to ${what}: ${err instanceof Error ? err.message : String(err)}`;
      log(`bench: ${skipped[optional]}; measuring without it`);
      targets.delete(optional);
    }
    done += 5;
  }
  for (const job of jobs) {
    if (!job.uses.some(isUp)) {
      done += job.weight;
      continue;
    }
    bar?.update(done, { job: job.label });
    if (!multibar) log(`bench: ${job.label}`);
    await job.run((f) => bar?.update(done + f * job.weight, { job: job.label }));
    done += job.weight;
  }
} finally {
  bar?.update(totalWeight + setupSteps.length * 5, { job: 'done' });
  multibar?.stop();
  await Promise.allSettled([bare?.stop(), cluster?.stop(), floor?.stop(), plain?.stopAll(), plainOne?.stopAll(), sys?.stop()]);
  for (const w of workerProcs) w.kill('SIGTERM');
}

// ---- report --------------------------------------------------------------------------

const results: BenchResults = {
  command,
  date: started.toISOString(),
  machine: {
    cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}`,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    os: fs.existsSync('/etc/debian_version') ? `Debian ${fs.readFileSync('/etc/debian_version', 'utf8').trim()}` : os.platform(),
  },
  versions: {
    node: process.version,
    dispatchd: VERSION,
    git: gitDescribe(),
    systemd: sysVersions,
  },
  options: { duration: argv.duration, warmup: argv.warmup, repeat: argv.repeat, concurrency: argv.concurrency, type: argv.type, size: argv.size, largeSize: argv['large-size'], scaleType: argv['scale-type'], scaleSize: argv['scale-size'], scaleConcurrency: argv['scale-concurrency'], secondaries: argv.secondaries, typesSize: argv['types-size'], cpuSize: argv['cpu-size'], idleSeconds: argv['idle-seconds'] },
  skipped,
  loads,
  other,
  rows: [] as MeasureRow[],
};
results.rows = summarise(results);

const json = `${JSON.stringify(results, null, 2)}\n`;
if (argv.json === '-') process.stdout.write(json);
else {
  fs.mkdirSync(path.dirname(path.resolve(argv.json)), { recursive: true });
  fs.writeFileSync(argv.json, json);
}
const md = renderMarkdown(results);
if (argv.markdown) writeMarkdown(argv.markdown, md);
if (argv.json !== '-') process.stdout.write(`${md}\nJSON: ${argv.json}${argv.markdown ? `; table written to ${argv.markdown}` : ''}\n`);

function gitDescribe(): string {
  // git is optional: a tarball has none.
  const r = spawnSync('git', ['-C', ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}
