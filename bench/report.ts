/**
 * The results of `npm run bench`: the ratios against the baselines and the targets of
 * issue 4, as JSON and as a Markdown table for docs/BENCHMARKS.md. Pure but for
 * {@link writeMarkdown}.
 */
import fs from 'node:fs';
import type { LoadResult } from './load.js';
import type { CliStartResult } from './cli-start.js';
import type { IdleResult } from './proc-stats.js';
import { median } from './stats.js';

export interface BenchResults {
  command: string;
  date: string;
  machine: { cpus: string; memoryGiB: number; kernel: string; os: string };
  versions: { node: string; dispatchd: string; git: string; systemd: string };
  options: Record<string, number | string>;
  /** Targets left out, with the reason. */
  skipped: Record<string, string>;
  /**
   * Load runs by measure, then by target (bare, cluster, floor, plain, plain-1, systemd), then
   * by repeat: null where that run failed, so that index i is round i for every target.
   */
  loads: Record<string, Record<string, Array<LoadResult | null>>>;
  other: {
    freeze?: { runs: number[]; median: number };
    start?: { runs: Array<{ startReturnedMs: number; firstServedMs: number; units?: Array<{ unit: string; startMs: number; readyMs: number }> }>; median: number; medianStartReturned: number };
    /** `bare`: the bare server, measured alongside the plain daemons (the floor of this stack). */
    /** `bareNode`: a bare node process holding one socket, beside each target's daemons (the RSS ratio's baseline). */
    idle?: {
      plain?: IdleResult[] | undefined;
      bare?: IdleResult | undefined;
      systemd?: IdleResult[] | undefined;
      bareNode?: { plain?: IdleResult | undefined; systemd?: IdleResult | undefined };
      /** `librariesNode`: the same with the daemons' libraries loaded (bench/proc-stats.ts DAEMON_LIBRARIES): the floor of the ratio. */
      librariesNode?: { plain?: IdleResult | undefined; systemd?: IdleResult | undefined };
    };
    /** Whole runs of dispatchctl against `node -e 0` (bench/cli-start.ts), by target. */
    cli?: { plain?: CliStartResult; systemd?: CliStartResult };
  };
  rows: MeasureRow[];
}

/** One line of the summary table. */
export interface MeasureRow {
  measure: string;
  unit: string;
  /** Median per target. */
  values: Record<string, number>;
  /** Ratio name → median of the per-repeat ratios. */
  ratios: Record<string, number>;
  target: string;
  /** Whether every dispatchd figure measured meets the target; undefined when none was measured. */
  met: boolean | undefined;
  /** The same run's baseline of a declared-type measure (module, exec): its name and median, in `unit`. */
  baseline?: { name: string; value: number };
  /** Several such baselines (the persistent measure's). */
  baselines?: Array<{ name: string; value: number }>;
}

const fmt = (x: number | undefined, digits = 0): string => (x === undefined || !Number.isFinite(x) ? '–' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));
const fmtAuto = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '–' : Math.abs(x) >= 100 ? fmt(x) : Math.abs(x) >= 10 ? fmt(x, 1) : fmt(x, 2));

type Runs = Array<LoadResult | null> | undefined;

/** The runs that succeeded. */
function ok(runs: Runs): LoadResult[] {
  return (runs ?? []).filter((x): x is LoadResult => x !== null);
}

/**
 * Median of run-by-run ratios a[i]/b[i] (runs were interleaved, so pairs share the machine's
 * state); a round where either run failed is left out.
 */
function pairedRatio(a: Runs, b: Runs, pick: (r: LoadResult) => number): number {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(a?.length ?? 0, b?.length ?? 0); i++) {
    const x = a![i];
    const y = b![i];
    if (x && y) ratios.push(pick(x) / pick(y));
  }
  return median(ratios);
}

function medianOf(runs: Runs, pick: (r: LoadResult) => number): number {
  const done = ok(runs);
  return done.length ? median(done.map(pick)) : NaN;
}

function defined(xs: Array<number | undefined>): number[] {
  return xs.filter((x): x is number => x !== undefined && Number.isFinite(x));
}

function meets(xs: number[], ok: (x: number) => boolean): boolean | undefined {
  return xs.length ? xs.every(ok) : undefined;
}

/** The summary rows: one per target of issue 4. */
export function summarise(r: BenchResults): MeasureRow[] {
  const rows: MeasureRow[] = [];
  const o = r.options;
  const TARGETS = ['bare', 'cluster', 'floor', 'plain', 'systemd'];
  const load = (measure: string, label: string, unit: string, pick: (x: LoadResult) => number, goal: number) => {
    const runs = r.loads[measure];
    if (!runs) return;
    const values: Record<string, number> = {};
    for (const t of TARGETS) if (ok(runs[t]).length) values[t] = medianOf(runs[t], pick);
    const ratios: Record<string, number> = {};
    for (const t of ['plain', 'systemd', 'cluster', 'floor']) if (ok(runs[t]).length && ok(runs.bare).length) ratios[`${t}/bare`] = pairedRatio(runs[t], runs.bare, pick);
    if (ok(runs.floor).length && ok(runs.plain).length) ratios['plain/floor'] = pairedRatio(runs.plain, runs.floor, pick);
    rows.push({ measure: label, unit, values, ratios, target: `≥ ${goal}× bare`, met: meets(defined([ratios['plain/bare'], ratios['systemd/bare']]), (x) => x >= goal) });
  };
  load('lease', `established lease, ${o.type} ${bytes(Number(o.size))}, ${o.concurrency} client(s)`, 'req/s', (x) => x.rps, 0.9);
  load('handshake', `new leases (whole redirect), ${o.type} ${bytes(Number(o.size))}, ${o.concurrency} client(s)`, 'req/s', (x) => x.rps, 0.5);
  load('kept', `new leases on a kept main connection, ${o.type} ${bytes(Number(o.size))}, ${o.concurrency} client(s)`, 'req/s', (x) => x.rps, 0.6);
  const hs = r.loads.handshake;
  if (hs) {
    for (const [q, name] of [['p50', 'p50'], ['p99', 'p99']] as const) {
      const values: Record<string, number> = {};
      for (const t of TARGETS) if (ok(hs[t]).length) values[t] = medianOf(hs[t], (x) => x.latency[q]);
      rows.push({ measure: `new lease latency ${name}`, unit: 'ms', values, ratios: {}, target: q === 'p99' ? '≤ 2 ms' : '', met: q === 'p99' ? meets(defined([values.plain, values.systemd]), (x) => x <= 2) : undefined });
    }
  }
  load('large', `echo ${bytes(Number(o.largeSize))}, ${o.concurrency} client(s)`, 'MB/s', (x) => x.mbps, 0.8);
  const sc = r.loads.scale;
  if (sc) {
    const values: Record<string, number> = {};
    for (const t of ['bare', 'cluster', 'plain-1', 'plain']) if (ok(sc[t]).length) values[t] = medianOf(sc[t], (x) => x.rps);
    const ratios: Record<string, number> = {};
    if (ok(sc.plain).length && ok(sc['plain-1']).length) ratios[`plain ${o.secondaries} sec./1 sec.`] = pairedRatio(sc.plain, sc['plain-1'], (x) => x.rps);
    if (ok(sc.cluster).length && ok(sc.bare).length) ratios[`cluster ${o.secondaries} workers/bare`] = pairedRatio(sc.cluster, sc.bare, (x) => x.rps);
    rows.push({ measure: `${o.scaleType} ${bytes(Number(o.scaleSize))}, ${o.secondaries} secondaries vs 1, ${o.scaleConcurrency} clients`, unit: 'req/s', values, ratios, target: '≥ 1.7×', met: meets(defined([ratios[`plain ${o.secondaries} sec./1 sec.`]]), (x) => x >= 1.7) });
  }
  // Declared request types (issue 10): each against its baseline of the same run.
  const typed = (measure: string, baseKey: string, baseName: string, label: string, ratioName: string, goal: number | undefined) => {
    const runs = r.loads[measure];
    if (!runs || !ok(runs.plain).length) return;
    const ratios: Record<string, number> = {};
    if (ok(runs[baseKey]).length) ratios[ratioName] = pairedRatio(runs.plain, runs[baseKey], (x) => x.rps);
    const row: MeasureRow = { measure: label, unit: 'req/s', values: { plain: medianOf(runs.plain, (x) => x.rps) }, ratios, target: goal === undefined ? '' : `≥ ${goal}×`, met: goal === undefined ? undefined : meets(defined([ratios[ratioName]]), (x) => x >= goal) };
    if (ok(runs[baseKey]).length) row.baseline = { name: baseName, value: medianOf(runs[baseKey], (x) => x.rps) };
    rows.push(row);
  };
  typed('module', 'builtin', 'built-in echo', `module handler (echo.mjs), ${bytes(Number(o.typesSize))}, established lease, ${o.concurrency} client(s)`, 'module/built-in echo', 0.8);
  typed('exec', 'spawn', 'spawn /bin/cat from Node', `exec handler (/bin/cat), ${bytes(Number(o.typesSize))}, established lease, ${o.concurrency} client(s)`, 'exec/spawn from Node', 0.8);
  // Persistent workers (issue 11): the same Python function as a persistent worker, as a
  // per-request exec handler, and called in-process from a Python loop.
  const pw = r.loads.persistent;
  if (pw && ok(pw.plain).length) {
    const ratios: Record<string, number> = {};
    if (ok(pw.exec).length) ratios['persistent/per-request exec'] = pairedRatio(pw.plain, pw.exec, (x) => x.rps);
    if (ok(pw.loop).length) ratios['in-process loop/persistent'] = pairedRatio(pw.loop, pw.plain, (x) => x.rps);
    const baselines = [...(ok(pw.exec).length ? [{ name: 'per-request exec of the script', value: medianOf(pw.exec, (x) => x.rps) }] : []), ...(ok(pw.loop).length ? [{ name: 'in-process Python loop', value: medianOf(pw.loop, (x) => x.rps) }] : [])];
    rows.push({ measure: `persistent Python worker (echo_worker.py, dispatchd.worker), ${bytes(Number(o.typesSize))}, established lease, ${o.concurrency} client(s)`, unit: 'req/s', values: { plain: medianOf(pw.plain, (x) => x.rps) }, ratios, target: '≥ 20× per-request exec', met: meets(defined([ratios['persistent/per-request exec']]), (x) => x >= 20), baselines });
  }
  // The Python client (issue 11) against the TypeScript client, same suite, same run: req/s,
  // then latency p50 and p99, of an established lease and of a new lease per request.
  const py = r.loads.python;
  if (py) {
    const what = `${o.type} ${bytes(Number(o.size))}, ${o.concurrency} client(s)`;
    for (const [key, label] of [['established', 'established lease'], ['new', 'new leases (whole redirect)']] as const) {
      const pyRuns = py[`py-${key}`];
      const tsRuns = py[`ts-${key}`];
      if (!ok(pyRuns).length) continue;
      const figures = [['req/s', 'req/s', (x: LoadResult) => x.rps], ['latency p50', 'ms', (x: LoadResult) => x.latency.p50], ['latency p99', 'ms', (x: LoadResult) => x.latency.p99]] as const;
      for (const [name, unit, pick] of figures) {
        const row: MeasureRow = { measure: `Python client (bench/py_load.py), ${label}, ${what}: ${name}`, unit, values: { plain: medianOf(pyRuns, pick) }, ratios: {}, target: '', met: undefined };
        if (ok(tsRuns).length) {
          row.ratios['Python/TypeScript client'] = pairedRatio(pyRuns, tsRuns, pick);
          row.baseline = { name: 'TypeScript client, same suite', value: medianOf(tsRuns, pick) };
        }
        rows.push(row);
      }
    }
  }
  const cpu = r.loads.cpu;
  if (cpu) {
    const values: Record<string, number> = {};
    for (const t of ['plain-1', 'plain']) if (ok(cpu[t]).length) values[t] = medianOf(cpu[t], (x) => x.rps);
    const ratios: Record<string, number> = {};
    if (ok(cpu.plain).length && ok(cpu['plain-1']).length) ratios[`${o.secondaries} sec./1 sec.`] = pairedRatio(cpu.plain, cpu['plain-1'], (x) => x.rps);
    rows.push({ measure: `module handler sha256.mjs (JavaScript) ${bytes(Number(o.cpuSize))}, ${o.secondaries} secondaries vs 1, ${o.scaleConcurrency} clients`, unit: 'req/s', values, ratios, target: '', met: undefined });
  }
  for (const [name, label, goal] of [['dispatchctl request echo x', '`dispatchctl request echo x` wall time / `node -e 0`', 1.5], ['dispatchctl --version', '`dispatchctl --version` wall time / `node -e 0`', undefined]] as const) {
    const values: Record<string, number> = {};
    const ratios: Record<string, number> = {};
    for (const t of ['plain', 'systemd'] as const) {
      const c = r.other.cli?.[t]?.commands;
      if (!c?.[name] || !c['node -e 0']) continue;
      values[t] = c[name].medianMs;
      ratios[`${t}/node -e 0`] = c[name].medianMs / c['node -e 0'].medianMs;
    }
    if (Object.keys(values).length) rows.push({ measure: label, unit: 'ms', values, ratios, target: goal ? `≤ ${goal}×` : '', met: goal ? meets(Object.values(ratios), (x) => x <= goal) : undefined });
  }
  if (r.other.freeze) rows.push({ measure: 'main frozen (SIGSTOP) → first request served', unit: 'ms', values: { systemd: r.other.freeze.median }, ratios: {}, target: '≤ 2000 ms', met: r.other.freeze.median <= 2000 });
  if (r.other.start) rows.push({ measure: '`systemctl start dispatchd.target` → first request served', unit: 'ms', values: { systemd: r.other.start.median }, ratios: {}, target: '≤ 800 ms', met: r.other.start.median <= 800 });
  const idle = r.other.idle;
  if (idle) {
    const rss: Record<string, number> = {};
    const cpu: Record<string, number> = {};
    for (const t of ['plain', 'systemd'] as const) {
      const d = idle[t];
      if (!d?.length) continue;
      rss[t] = Math.max(...d.map((x) => x.rssMiB));
      cpu[t] = Math.max(...d.map((x) => x.cpuPercent));
    }
    if (idle.bare) {
      rss.bare = idle.bare.rssMiB;
      cpu.bare = idle.bare.cpuPercent;
    }
    rows.push({ measure: 'RSS of the largest daemon (plain: after the load runs; systemd: idle after the start runs)', unit: 'MiB', values: rss, ratios: {}, target: '≤ 60 MiB', met: meets(defined([rss.plain, rss.systemd]), (x) => x <= 60) });
    // The daemon's RSS under its target's column; the baseline, measured beside it, named in the ratio.
    // The floor (the bare node with the daemons' libraries loaded) as a ratio to the same
    // baseline, beside the daemons': what no code of dispatchd's own could go under.
    const ratios: Record<string, number> = {};
    const values: Record<string, number> = {};
    const goal: number[] = [];
    for (const t of ['plain', 'systemd'] as const) {
      const node = idle.bareNode?.[t];
      if (!node || rss[t] === undefined) continue;
      values[t] = rss[t]!;
      ratios[`${t}/bare node (${fmt(node.rssMiB, 1)} MiB)`] = rss[t]! / node.rssMiB;
      goal.push(rss[t]! / node.rssMiB);
      const floor = idle.librariesNode?.[t];
      if (floor) ratios[`${t} floor: bare node + libraries (${fmt(floor.rssMiB, 1)} MiB)/bare node`] = floor.rssMiB / node.rssMiB;
    }
    if (goal.length) rows.push({ measure: 'idle RSS of the largest daemon / a bare `node` process holding one socket', unit: 'MiB', values, ratios, target: '≤ 1.3×', met: meets(goal, (x) => x <= 1.3) });
    rows.push({ measure: `idle CPU of the busiest daemon over ${o.idleSeconds} s`, unit: '%', values: cpu, ratios: {}, target: '≤ 0.5 %', met: meets(defined([cpu.plain, cpu.systemd]), (x) => x <= 0.5) });
  }
  return rows;
}

function bytes(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} B`;
}

/** The Markdown block for docs/BENCHMARKS.md. */
export function renderMarkdown(r: BenchResults): string {
  const L: string[] = [];
  L.push(`Command: \`${r.command}\` (${r.date})  `);
  L.push(`Machine: ${r.machine.cpus}, ${r.machine.memoryGiB} GiB, ${r.machine.kernel}, ${r.machine.os}  `);
  L.push(`Versions: Node ${r.versions.node}, dispatchd ${r.versions.dispatchd}${r.versions.git ? ` (${r.versions.git})` : ''}${r.versions.systemd ? `; in the sandbox: ${r.versions.systemd}` : ''}  `);
  const o = r.options;
  L.push(`Settings: ${o.repeat} runs per figure (medians; ratios are medians of run-by-run ratios, runs interleaved), ${o.warmup} s warm-up + ${o.duration} s measured per run, ${o.secondaries} secondaries / cluster workers.`);
  for (const [t, why] of Object.entries(r.skipped)) L.push(`\n**Not measured: ${t}** — ${why}`);
  L.push('');
  L.push('| measure | unit | bare (a) | cluster (b) | floor (same hops) | dispatchd, plain processes | dispatchd, systemd + .deb | ratios | target | met |');
  L.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |');
  for (const row of r.rows) {
    const v = row.values;
    const plain = row.values['plain-1'] !== undefined ? `${fmtAuto(v['plain-1'])} (1 sec.) → ${fmtAuto(v.plain)}` : fmtAuto(v.plain);
    const ratios = [...Object.entries(row.ratios).map(([k, x]) => `${k} **${fmt(x, 2)}×**`), ...[...(row.baseline ? [row.baseline] : []), ...(row.baselines ?? [])].map((b) => `(${b.name}: ${fmtAuto(b.value)} ${row.unit})`)].join('; ');
    const met = row.met === undefined ? '–' : row.met ? 'yes' : '**no**';
    L.push(`| ${row.measure} | ${row.unit} | ${fmtAuto(v.bare)} | ${fmtAuto(v.cluster)} | ${fmtAuto(v.floor)} | ${plain} | ${fmtAuto(v.systemd)} | ${ratios} | ${row.target} | ${met} |`);
  }
  const idle = r.other.idle;
  if (idle && (idle.plain?.length || idle.systemd?.length)) {
    L.push('');
    L.push(`Per daemon, after the load runs, then idle for ${o.idleSeconds} s:`);
    L.push('');
    L.push('| daemon | RSS MiB | peak RSS MiB | PSS MiB | idle CPU % |');
    L.push('| --- | ---: | ---: | ---: | ---: |');
    // The bare server is listed with the plain daemons, beside which it was measured.
    for (const [t, d] of [['plain', [...(idle.plain ?? []), ...(idle.bare ? [idle.bare] : [])]], ['systemd', idle.systemd ?? []]] as const) {
      for (const x of d) L.push(`| ${t}: ${x.name} | ${fmt(x.rssMiB, 1)} | ${fmt(x.hwmMiB, 1)} | ${fmt(x.pssMiB, 1)} | ${fmt(x.cpuPercent, 3)} |`);
      const node = idle.bareNode?.[t];
      if (node) L.push(`| ${t}: ${node.name} (baseline) | ${fmt(node.rssMiB, 1)} | ${fmt(node.hwmMiB, 1)} | ${fmt(node.pssMiB, 1)} | ${fmt(node.cpuPercent, 3)} |`);
      const floor = idle.librariesNode?.[t];
      if (floor) L.push(`| ${t}: ${floor.name} (floor) | ${fmt(floor.rssMiB, 1)} | ${fmt(floor.hwmMiB, 1)} | ${fmt(floor.pssMiB, 1)} | ${fmt(floor.cpuPercent, 3)} |`);
    }
  }
  if (r.other.cli) {
    L.push('');
    L.push('Whole command-line runs (bench/cli-start.ts: spawned one after another, the commands interleaved, after 3 warm-up rounds; wall time median and p90, CPU user + system mean):');
    L.push('');
    L.push('| target | command | runs | median ms | p90 ms | CPU ms |');
    L.push('| --- | --- | ---: | ---: | ---: | ---: |');
    for (const [t, c] of Object.entries(r.other.cli)) {
      for (const [name, x] of Object.entries(c?.commands ?? {})) L.push(`| ${t} | \`${name}\` | ${c!.runs} | ${fmt(x.medianMs, 1)} | ${fmt(x.p90Ms, 1)} | ${fmt(x.cpuMs, 1)} |`);
    }
  }
  if (r.loads.handshake || r.loads.python) {
    L.push('');
    L.push('Latency per request (ms, medians over runs of p50 / p90 / p99 / max):');
    L.push('');
    L.push('| measure | target | p50 | p90 | p99 | max |');
    L.push('| --- | --- | ---: | ---: | ---: | ---: |');
    for (const m of ['lease', 'handshake', 'kept', 'large', 'python'] as const) {
      for (const [t, all] of Object.entries(r.loads[m] ?? {})) {
        const runs = ok(all);
        if (!runs.length) continue;
        const q = (k: 'p50' | 'p90' | 'p99' | 'max') => fmt(median(runs.map((x) => x.latency[k])), 3);
        L.push(`| ${m} | ${t} | ${q('p50')} | ${q('p90')} | ${q('p99')} | ${q('max')} |`);
      }
    }
  }
  const cpuRows: string[] = [];
  for (const [m, byTarget] of Object.entries(r.loads)) {
    for (const [t, runs] of Object.entries(byTarget)) {
      const withCpu = ok(runs).filter((x) => x.cpuUsPerRequest);
      if (!withCpu.length) continue;
      const keys = Object.keys(withCpu[0]!.cpuUsPerRequest!);
      const parts = keys.map((k) => `${k} ${fmt(median(withCpu.map((x) => x.cpuUsPerRequest![k] ?? NaN)))}`);
      const sum = median(withCpu.map((x) => Object.values(x.cpuUsPerRequest!).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0)));
      cpuRows.push(`| ${m} | ${t} | ${fmt(sum)} | ${parts.join(', ')} |`);
    }
  }
  if (cpuRows.length) {
    L.push('');
    L.push('CPU time per request, by process (µs, user + system, medians over runs; the load generator is `client`):');
    L.push('');
    L.push('| measure | target | all processes | by process |');
    L.push('| --- | --- | ---: | --- |');
    L.push(...cpuRows);
  }
  const errors: string[] = [];
  for (const [m, byTarget] of Object.entries(r.loads)) {
    for (const [t, runs] of Object.entries(byTarget)) {
      const done = ok(runs);
      const failedRuns = runs.length - done.length;
      const failedRequests = done.reduce((a, x) => a + x.errors, 0);
      const first = done.find((x) => x.firstError !== undefined)?.firstError;
      const parts = [...(failedRequests ? [`${failedRequests} failed request(s)${first ? ` (first: ${first})` : ''}`] : []), ...(failedRuns ? [`${failedRuns} of ${runs.length} runs failed`] : [])];
      if (parts.length) errors.push(`${m} on ${t}: ${parts.join(', ')}`);
    }
  }
  if (errors.length) {
    L.push('');
    L.push(`Errors during the load runs: ${errors.join('; ')}.`);
  }
  if (r.other.freeze || r.other.start) {
    L.push('');
    if (r.other.freeze) L.push(`Freeze runs (ms): ${r.other.freeze.runs.map((x) => fmt(x)).join(', ')}.  `);
    if (r.other.start) L.push(`Start runs (ms, first request served; \`systemctl start\` returned): ${r.other.start.runs.map((x) => `${fmt(x.firstServedMs)} (${fmt(x.startReturnedMs)})`).join(', ')}.`);
    const last = r.other.start?.runs.at(-1)?.units;
    if (last?.length) {
      L.push('');
      L.push('Start-up of each unit in the last start run (ms after the first unit began; a `Type=notify` service is ready at READY=1):');
      L.push('');
      L.push('| unit | activation began | ready | took |');
      L.push('| --- | ---: | ---: | ---: |');
      for (const u of last) L.push(`| ${u.unit} | ${fmt(u.startMs)} | ${fmt(u.readyMs)} | ${fmt(u.readyMs - u.startMs)} |`);
    }
  }
  return L.join('\n');
}

const BEGIN = '<!-- bench:begin (written by npm run bench; do not edit by hand) -->';
const END = '<!-- bench:end -->';

/** Replaces the generated block of `file` (creating the file or the block when missing). */
export function writeMarkdown(file: string, block: string): void {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# dispatchd benchmarks\n\n';
  const a = text.indexOf('<!-- bench:begin');
  const b = text.indexOf(END);
  const body = `${BEGIN}\n${block}\n${END}`;
  const next = a !== -1 && b > a ? text.slice(0, a) + body + text.slice(b + END.length) : `${text.trimEnd()}\n\n${body}\n`;
  fs.writeFileSync(file, next);
}
