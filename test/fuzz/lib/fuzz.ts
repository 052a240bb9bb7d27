/**
 * The system-level fuzzer: hostile bytes into every socket and FIFO of a running suite while
 * normal clients keep sending requests, then the verdict a user cares about:
 *
 * - no crash: every daemon has the pid it had before, and nothing was restarted;
 * - no stuck peer: every bad connection was answered or closed in time, every daemon's
 *   heartbeat is fresh, the watchdog restarted nothing;
 * - other clients kept being served: not one normal request failed;
 * - bad peers are logged once per interval per kind, not once per case or byte.
 */
import { startLoad, type LoadReport } from '../../chaos/lib/load.js';
import { serviceUnitOf as unitOf } from '../../../daemons/common/topology.js';
import { isUp, SANDBOX_DAEMONS, until, type ProcessSuite, type Sandbox } from '../../helpers/index.js';
import { endpointsOf } from './cases.js';
import { sendCases, type SendReport } from './sender.js';

/** The interval of the daemons' incident log (IncidentLog: 10 s; the watchdog's is 30 s). */
export const INCIDENT_INTERVAL_MS = 10_000;

export interface LogLine {
  daemon: string;
  /** The CODE= field, or the message's first words when it has none. */
  kind: string;
  text: string;
}

export interface FuzzTarget {
  readonly label: string;
  /** The daemons that must survive: name → unit or process. */
  readonly daemons: readonly string[];
  send(o: { cases: number; seed: number; onProgress?: (n: number) => void }): Promise<SendReport>;
  load(o: { clients: number; seed: number }): Promise<{ done: Promise<LoadReport>; stop: () => void }>;
  /** Each daemon's pid and restart count now. */
  snapshot(): Promise<Record<string, { pid: number; restarts: number }>>;
  /** True when every daemon's heartbeat is fresh and its state is up. */
  fresh(): Promise<boolean>;
  /** Incident lines logged since `sinceMs` (unix ms). */
  logs(sinceMs: number): Promise<LogLine[]>;
}

export interface FuzzVerdict {
  target: string;
  send: SendReport;
  load: LoadReport;
  crashed: string[];
  stuck: boolean;
  /** Per daemon and kind of incident: lines logged, and the most allowed (one per interval, plus one). */
  logLines: Array<{ daemon: string; kind: string; lines: number; allowed: number }>;
  logTotal: number;
  problems: string[];
}

export async function runFuzz(target: FuzzTarget, o: { cases: number; seed: number; clients?: number; onProgress?: (n: number) => void }): Promise<FuzzVerdict> {
  const before = await target.snapshot();
  const since = Date.now();
  const load = await target.load({ clients: o.clients ?? 4, seed: o.seed });
  let send: SendReport;
  try {
    send = await target.send({ cases: o.cases, seed: o.seed, onProgress: o.onProgress });
  } finally {
    load.stop();
  }
  const loadReport = await load.done;
  // The verdict on liveness is taken after the flood: every daemon must be fresh right away.
  const fresh = await until('every daemon up with a fresh heartbeat', 2000, () => target.fresh(), { everyMs: 100 }).then(
    () => true,
    () => false,
  );
  const after = await target.snapshot();
  const durationMs = Date.now() - since;
  const crashed = target.daemons.filter((d) => before[d]?.pid !== after[d]?.pid || (after[d]?.restarts ?? 0) !== (before[d]?.restarts ?? 0));
  const lines = await target.logs(since);
  const allowed = Math.ceil(durationMs / INCIDENT_INTERVAL_MS) + 1;
  const groups = new Map<string, { daemon: string; kind: string; lines: number; allowed: number }>();
  for (const l of lines) {
    const key = `${l.daemon}\u0000${l.kind}`;
    const g = groups.get(key) ?? { daemon: l.daemon, kind: l.kind, lines: 0, allowed };
    g.lines++;
    groups.set(key, g);
  }
  const logLines = [...groups.values()].sort((a, b) => b.lines - a.lines);
  const problems: string[] = [];
  if (crashed.length) problems.push(`crashed or restarted: ${crashed.map((d) => `${d} (pid ${before[d]?.pid} -> ${after[d]?.pid})`).join(', ')}`);
  if (send.stuck) problems.push(`${send.stuck} connections left hanging: ${send.stuckExamples.join('; ')}`);
  if (!fresh) problems.push('a daemon is stuck: its heartbeat is stale or its state is not up after the fuzzing');
  if (send.extraFramesAfterError) problems.push(`${send.extraFramesAfterError} connections got frames after a framing error (which must end the connection)`);
  if (loadReport.failed > 0) problems.push(`${loadReport.failed} of ${loadReport.sent} normal requests failed: ${loadReport.examples.slice(0, 3).join('; ')}`);
  if (loadReport.succeeded === 0) problems.push('no normal request was served during the fuzzing');
  for (const g of logLines) if (g.lines > g.allowed) problems.push(`${g.daemon} logged '${g.kind}' ${g.lines} times in ${Math.round(durationMs / 1000)} s (at most ${g.allowed}: once per ${INCIDENT_INTERVAL_MS / 1000} s)`);
  return { target: target.label, send, load: loadReport, crashed, stuck: !fresh || send.stuck > 0, logLines, logTotal: lines.length, problems };
}

export function formatFuzz(v: FuzzVerdict): string {
  const s = v.send;
  const answers = Object.entries(s.answers)
    .map(([server, codes]) => `${server}: ${Object.entries(codes).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ')}`)
    .join('\n  ');
  return [
    `fuzzed ${v.target}: ${s.cases} cases (${s.socketCases} on sockets, ${s.fifoCases} into FIFOs) in ${(s.durationMs / 1000).toFixed(1)} s`,
    `cases: ${Object.entries(s.byLabel).sort((a, b) => b[1] - a[1]).map(([l, n]) => `${l} ${n}`).join(', ')}`,
    `answers:\n  ${answers}`,
    `pipe full (EAGAIN) on ${s.fifoFull} FIFO writes; longest case ${s.longestCaseMs} ms`,
    `normal clients meanwhile: ${v.load.sent} sent, ${v.load.succeeded} succeeded, ${v.load.failed} failed; p99 ${v.load.p99Ms} ms, longest ${v.load.longestRequestMs} ms`,
    `incident log lines: ${v.logTotal} in all (${(v.logTotal / Math.max(1, s.cases)).toFixed(4)} per case); ${v.logLines.map((g) => `${g.daemon} ${g.kind} ${g.lines}/${g.allowed}`).join(', ') || 'none'}`,
    v.problems.length ? `PROBLEMS:\n  ${v.problems.join('\n  ')}` : 'no crash, no stuck peer, every normal request served, incidents logged once per interval',
  ].join('\n');
}

/** Parses one daemon log line of the process harness: `<iso> <identifier> <level>: <message> key=value…`. */
function processLogLine(daemon: string, line: string): LogLine | undefined {
  const m = /^\S+ \S+ (\w+): (.*)$/.exec(line);
  if (!m || !['error', 'warning', 'notice', 'info'].includes(m[1]!)) return undefined;
  const code = / code=(\S+)/.exec(m[2]!)?.[1];
  if (!code && m[1] === 'info') return undefined; // start-up and stop lines, not incidents
  // A bad lease's kind is its lease_fault (docs/PROTOCOL.md §2.2): several share a code.
  const fault = / lease_fault=(\S+)/.exec(m[2]!)?.[1];
  return { daemon, kind: fault ? `${code}/${fault}` : code ?? m[2]!.replace(/[0-9]+/g, 'N').slice(0, 40), text: m[2]! };
}

export class ProcessFuzzTarget implements FuzzTarget {
  readonly label = 'the suite as processes (systemd imitated)';
  readonly daemons: readonly string[];
  private readonly lines: Array<LogLine & { at: number }> = [];

  /** @param suite started with `onLog: target.onLog` so that incident lines are collected. */
  constructor(private readonly suite: ProcessSuite, private readonly idleTimeoutMs: number) {
    this.daemons = suite.names;
  }

  /** Pass as ProcessSuite's `onLog`. */
  readonly onLog = (daemon: string, line: string): void => {
    const l = processLogLine(daemon, line);
    if (l) this.lines.push({ ...l, at: Date.now() });
  };

  send(o: { cases: number; seed: number; onProgress?: (n: number) => void }): Promise<SendReport> {
    return sendCases({ endpoints: endpointsOf(this.suite.dir, this.suite.names.length - 1, 64 * 1024 * 1024), idleTimeoutMs: this.idleTimeoutMs, ...o });
  }

  async load(o: { clients: number; seed: number }) {
    return startLoad({ socket: this.suite.mainSocket, clients: o.clients, seed: o.seed, timeoutMs: 30_000 });
  }

  async snapshot(): Promise<Record<string, { pid: number; restarts: number }>> {
    const out: Record<string, { pid: number; restarts: number }> = {};
    for (const n of this.suite.names) out[n] = { pid: this.suite.pid(n) ?? 0, restarts: this.suite.totalRestarts(n) };
    return out;
  }

  async fresh(): Promise<boolean> {
    return this.suite.healthy();
  }

  async logs(sinceMs: number): Promise<LogLine[]> {
    return this.lines.filter((l) => l.at >= sinceMs);
  }
}

export class SandboxFuzzTarget implements FuzzTarget {
  readonly label: string;
  readonly daemons = SANDBOX_DAEMONS;

  constructor(private readonly sb: Sandbox) {
    this.label = `the installed suite under systemd (sandbox '${sb.name}')`;
  }

  async send(o: { cases: number; seed: number; onProgress?: (n: number) => void }): Promise<SendReport> {
    const tool = this.sb.tool<SendReport & { event: string }>('fuzz/lib/sender.js', ['--cases', String(o.cases), '--seed', String(o.seed)], 'fuzzed');
    const { event: _e, ...r } = await tool.result;
    return r as SendReport;
  }

  async load(o: { clients: number; seed: number }) {
    return this.sb.startLoad({ clients: o.clients, seed: o.seed, timeoutMs: 30_000 });
  }

  async snapshot(): Promise<Record<string, { pid: number; restarts: number }>> {
    const out: Record<string, { pid: number; restarts: number }> = {};
    for (const d of this.daemons) {
      const s = await this.sb.show(unitOf(d), 'MainPID', 'NRestarts');
      out[d] = { pid: Number(s.MainPID), restarts: Number(s.NRestarts) };
    }
    return out;
  }

  async fresh(): Promise<boolean> {
    const status = JSON.parse(await this.sb.out('dispatchctl status --json')) as { daemons: Array<{ name: string; state: string; heartbeat_age_ms: number }> };
    return this.daemons.every((d) => {
      const s = status.daemons.find((x) => x.name === d);
      return s !== undefined && isUp(s.state, s.heartbeat_age_ms);
    });
  }

  async logs(sinceMs: number): Promise<LogLine[]> {
    const out = await this.sb.out(`journalctl --no-pager -q -o json --since @${Math.floor(sinceMs / 1000)} -p info ${this.daemons.map((d) => `-u ${unitOf(d)}`).join(' ')}`, { timeoutMs: 120_000 });
    const lines: LogLine[] = [];
    const daemonOf = new Map(this.daemons.map((d) => [unitOf(d), d]));
    for (const raw of out.split('\n')) {
      if (!raw.trim()) continue;
      const e = JSON.parse(raw) as Record<string, string>;
      if (e._PID === '1' || Number(e.__REALTIME_TIMESTAMP) / 1000 < sinceMs) continue; // systemd's own lines
      const msg = typeof e.MESSAGE === 'string' ? e.MESSAGE : '';
      if (!e.CODE && e.PRIORITY === '6') continue; // start-up and stop lines, not incidents
      const kind = e.LEASE_FAULT ? `${e.CODE}/${e.LEASE_FAULT}` : e.CODE ?? msg.replace(/[0-9]+/g, 'N').slice(0, 40);
      lines.push({ daemon: daemonOf.get(e._SYSTEMD_UNIT ?? '') ?? e._SYSTEMD_UNIT ?? '?', kind, text: msg });
    }
    return lines;
  }
}
