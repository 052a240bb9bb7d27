/**
 * `dispatchctl status`: the scoreboard as a table or as JSON. Pure formatting over a
 * snapshot; reading is ScoreboardReader's job.
 */
import type { ScoreboardSnapshot, SlotData } from '../common/scoreboard.js';

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
  heartbeat_age_ms: number;
  restarts: number;
  generation: number;
  started_at: string;
  incidents: number;
}

export interface StatusReport {
  scoreboard: string;
  created_at: string;
  daemons: DaemonStatus[];
}

/** A heartbeat older than this (ms) marks a running daemon unresponsive. */
export const STALE_HEARTBEAT_MS = 5000;

const ORDER = (d: SlotData) => (d.kind === 'main' ? 0 : d.kind === 'secondary' ? d.instance : 10_000);

/**
 * Builds the report.
 * @param alive tells whether a pid exists (a /proc look-up; never a signal).
 */
export function statusReport(file: string, snap: ScoreboardSnapshot, now: number, alive: (pid: number) => boolean): StatusReport {
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
        heartbeat_age_ms: age,
        restarts: Math.max(0, d.starts - 1),
        generation: d.generation,
        started_at: new Date(d.startedMs).toISOString(),
        incidents: d.incidents,
      };
    });
  // main and the watchdog always belong to a running suite: say so when one never started.
  for (const name of ['main', 'watchdog']) {
    if (!daemons.some((d) => d.name === name)) {
      const row: DaemonStatus = { name, pid: 0, state: 'absent', requests: 0, failures: 0, active: 0, capacity: 0, heartbeat_age_ms: 0, restarts: 0, generation: 0, started_at: '', incidents: 0 };
      if (name === 'main') daemons.unshift(row);
      else daemons.push(row);
    }
  }
  return { scoreboard: file, created_at: new Date(snap.createdMs).toISOString(), daemons };
}

/** The unit of a daemon, for hints: main → dispatchd-main.service. */
export function unitOf(name: string): string {
  return name.startsWith('secondary-') ? `dispatchd-secondary@${name.slice('secondary-'.length)}.service` : `dispatchd-${name}.service`;
}

/** One line per daemon that is not running as it should, saying where to look. */
export function problems(r: StatusReport): string[] {
  return r.daemons
    .filter((d) => ['dead', 'unresponsive', 'absent'].includes(d.state))
    .map((d) => `${d.name} is ${d.state}: see systemctl status ${unitOf(d.name)} and journalctl -u ${unitOf(d.name)} -p warning`);
}

function age(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.round(ms / 1000)}s`;
  return `${(ms / 3_600_000).toFixed(1)}h`;
}

/** The report as an aligned text table. */
export function formatTable(r: StatusReport): string {
  const rows = [['NAME', 'PID', 'STATE', 'ACTIVE', 'REQUESTS', 'FAILED', 'HEARTBEAT', 'RESTARTS']];
  for (const d of r.daemons) {
    if (d.state === 'absent') {
      rows.push([d.name, '-', d.state, '-', '-', '-', '-', '-']);
      continue;
    }
    rows.push([d.name, String(d.pid), d.state, d.capacity ? `${d.active}/${d.capacity}` : String(d.active), String(d.requests), String(d.failures), `${age(d.heartbeat_age_ms)} ago`, String(d.restarts)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((c, i) => (i === 0 || i === 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}
