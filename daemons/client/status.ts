/**
 * `dispatchctl status`: the scoreboard as a table or as JSON. Pure formatting over a
 * snapshot; reading is ScoreboardReader's job.
 */
import type { SlotData } from '../common/scoreboard-layout.js';
import type { ScoreboardSnapshot } from '../common/scoreboard-reader.js';
import type { ServedTypesFile } from '../common/served-types.js';
import { STALE_HEARTBEAT_MS } from '../common/timing.js';
import { formatDaemonId, MAIN, parseDaemonId, secondary, serviceUnit, shortDaemonName, WATCHDOG } from '../common/topology.js';
import { formatColumns } from './text-table.js';

/** One daemon in `dispatchctl status --json` (the contract's fields and more). */
export interface DaemonStatus {
  name: string;
  pid: number;
  /**
   * Slot state, or `dead` when the pid is gone without having stopped, `unresponsive` when
   * the heartbeat is stale, `absent` when main or the watchdog never wrote its slot (it did
   * not start: see its unit).
   */
  state: string;
  requests: number;
  failures: number;
  active: number;
  capacity: number;
  /** Main: requests waiting in the admission queue; else 0. */
  queued: number;
  heartbeat_age_ms: number;
  restarts: number;
  generation: number;
  started_at: string;
  incidents: number;
  /**
   * Main: mean time from lease request to lease granted; secondary: mean run time of a
   * request; in ms, over this process's `requests` (0 when none).
   */
  latency_avg_ms: number;
  /** The largest of those latencies since this process started, in ms. */
  latency_max_ms: number;
  /** The sum of those latencies, in µs (the scoreboard's counter, for rates). */
  latency_sum_us: number;
}

/** One request type in `dispatchctl status --json`: its figures over the running secondaries that serve it. */
export interface TypeStatus {
  type: string;
  /** The running secondaries that serve it (`secondary-N`). */
  secondaries: string[];
  /** Leases of this type held now. */
  leases: number;
  /** Requests of this type served and failed by those secondaries' current processes. */
  requests: number;
  failures: number;
  /** Mean and largest run time, in ms; total run time in µs. */
  latency_avg_ms: number;
  latency_max_ms: number;
  latency_sum_us: number;
}

export interface StatusReport {
  scoreboard: string;
  created_at: string;
  daemons: DaemonStatus[];
  /** Per request type, from the secondaries' served-types files (docs/SCOREBOARD.md §6). */
  types: TypeStatus[];
  /**
   * Present only when some slot's `seq` stayed odd (a writer died mid-update): their names;
   * their rows show the last copy read, as it is.
   */
  inconsistent?: string[];
}

/** Sums the served-types files of the running secondaries per type, sorted by name. */
export function typeStatuses(served: readonly ServedTypesFile[]): TypeStatus[] {
  const by = new Map<string, TypeStatus>();
  for (const f of [...served].sort((a, b) => a.secondary - b.secondary)) {
    for (const t of f.types) {
      const s = by.get(t.name) ?? { type: t.name, secondaries: [], leases: 0, requests: 0, failures: 0, latency_avg_ms: 0, latency_max_ms: 0, latency_sum_us: 0 };
      s.secondaries.push(formatDaemonId(secondary(f.secondary)));
      s.leases += t.leases;
      s.requests += t.requests;
      s.failures += t.failures;
      s.latency_sum_us += t.latency_sum_us;
      s.latency_max_ms = Math.max(s.latency_max_ms, t.latency_max_us / 1000);
      by.set(t.name, s);
    }
  }
  return [...by.values()].sort((a, b) => (a.type < b.type ? -1 : 1)).map((s) => ({ ...s, latency_avg_ms: s.requests > 0 ? Math.round(s.latency_sum_us / s.requests) / 1000 : 0 }));
}

/** A heartbeat older than this (ms) marks a running daemon unresponsive (common/timing.ts). */
export { STALE_HEARTBEAT_MS };

/** Report order: main, the secondaries by instance, the watchdog last. */
const ORDER = (d: SlotData) => (d.kind === 'main' ? 0 : d.kind === 'secondary' ? d.instance : Number.MAX_SAFE_INTEGER);

/**
 * Builds the report.
 * @param alive tells whether a pid exists (a /proc look-up; never a signal).
 */
export function statusReport(file: string, snap: ScoreboardSnapshot, now: number, alive: (pid: number) => boolean, served: readonly ServedTypesFile[] = []): StatusReport {
  const daemons = [...snap.slots]
    .sort((a, b) => ORDER(a) - ORDER(b))
    .map((d): DaemonStatus => {
      const age = Math.max(0, now - d.heartbeatMs);
      let state: string = d.state;
      if (state !== 'stopped') {
        if (!alive(d.pid)) state = 'dead';
        else if (age > STALE_HEARTBEAT_MS) state = 'unresponsive';
      }
      return {
        name: d.name,
        pid: d.pid,
        state,
        requests: d.requests,
        failures: d.failures,
        active: d.active,
        capacity: d.capacity,
        queued: d.queued,
        heartbeat_age_ms: age,
        restarts: Math.max(0, d.starts - 1),
        generation: d.generation,
        started_at: new Date(d.startedMs).toISOString(),
        incidents: d.incidents,
        latency_avg_ms: d.requests > 0 ? Math.round(d.latencySumUs / d.requests) / 1000 : 0,
        latency_max_ms: d.latencyMaxUs / 1000,
        latency_sum_us: d.latencySumUs,
      };
    });
  // main and the watchdog always belong to a running suite: say so when one never started.
  for (const id of [MAIN, WATCHDOG]) {
    const name = formatDaemonId(id);
    if (!daemons.some((d) => d.name === name)) {
      const row: DaemonStatus = { name, pid: 0, state: 'absent', requests: 0, failures: 0, active: 0, capacity: 0, queued: 0, heartbeat_age_ms: 0, restarts: 0, generation: 0, started_at: '', incidents: 0, latency_avg_ms: 0, latency_max_ms: 0, latency_sum_us: 0 };
      if (id === MAIN) daemons.unshift(row);
      else daemons.push(row);
    }
  }
  const report: StatusReport = { scoreboard: file, created_at: new Date(snap.createdMs).toISOString(), daemons, types: typeStatuses(served) };
  if (snap.inconsistent?.length) report.inconsistent = [...snap.inconsistent];
  return report;
}


/** One line per daemon that is not running as it should, or whose slot is torn, saying where to look. */
export function problems(r: StatusReport): string[] {
  const unitOf = (name: string) => {
    const id = parseDaemonId(name);
    return id ? serviceUnit(id) : "'dispatchd-*'";
  };
  const lines = r.daemons
    .filter((d) => ['dead', 'unresponsive', 'absent'].includes(d.state))
    .map((d) => `${d.name} is ${d.state}: see systemctl status ${unitOf(d.name)} and journalctl -u ${unitOf(d.name)} -p warning`);
  for (const name of r.inconsistent ?? []) {
    lines.push(`${name}'s slot is inconsistent (its seq stayed odd: a writer died mid-update; shown as last read): see systemctl status ${unitOf(name)}`);
  }
  return lines;
}

function age(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.round(ms / 1000)}s`;
  return `${(ms / 3_600_000).toFixed(1)}h`;
}

/** A latency in ms, short: 0.42ms, 12ms, 3.1s. */
function latency(ms: number): string {
  if (ms < 10) return `${ms.toFixed(2)}ms`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return `${(ms / 1000).toFixed(1)}s`;
}

/**
 * The report as an aligned text table, one daemon a row. LATENCY is mean/max: for main the
 * time to grant a lease, for a secondary the time to run a request; '-' before the first.
 */
export function formatTable(r: StatusReport): string {
  const rows = [['NAME', 'PID', 'STATE', 'ACTIVE', 'REQUESTS', 'FAILED', 'LATENCY', 'HEARTBEAT', 'RESTARTS']];
  for (const d of r.daemons) {
    if (d.state === 'absent') {
      rows.push([d.name, '-', d.state, '-', '-', '-', '-', '-', '-']);
      continue;
    }
    const lat = d.requests > 0 && d.name !== 'watchdog' ? `${latency(d.latency_avg_ms)}/${latency(d.latency_max_ms)}` : '-';
    rows.push([d.name, String(d.pid), d.state, d.capacity ? `${d.active}/${d.capacity}` : String(d.active), String(d.requests), String(d.failures), lat, `${age(d.heartbeat_age_ms)} ago`, String(d.restarts)]);
  }
  const table = formatColumns(rows, new Set([0, 2]));
  if (r.types.length === 0) return table;
  const types = [['TYPE', 'LEASES', 'REQUESTS', 'FAILED', 'LATENCY', 'SECONDARIES']];
  for (const t of r.types) types.push([t.type, String(t.leases), String(t.requests), String(t.failures), t.requests > 0 ? `${latency(t.latency_avg_ms)}/${latency(t.latency_max_ms)}` : '-', t.secondaries.map(shortDaemonName).join(',')]);
  return `${table}\n${formatColumns(types, new Set([0, 5]))}`;
}
