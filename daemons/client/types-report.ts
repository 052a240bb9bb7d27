/**
 * `dispatchctl types`: every declared request type with its handler, limits, idempotency,
 * where it is declared and which secondaries serve it now (from their served-types files),
 * as a table or as JSON. Pure formatting; reading is the caller's.
 */
import { handlerTarget, isPersistent, workerIds } from '../common/request-type.js';
import type { ServedTypesFile } from '../common/served-types.js';
import type { TypeRegistry } from '../common/type-registry.js';
import { formatColumns } from './text-table.js';
import { formatDaemonId, secondary, shortDaemonName, workerServiceUnit } from '../common/topology.js';

/** One type in `dispatchctl types --json`. */
export interface TypeRow {
  name: string;
  handler: 'builtin' | 'exec' | 'module';
  /** The command line, the module's path, or builtin:NAME. */
  target: string;
  /** Exec types only: a process per request, or persistent workers (docs/WORKERS.md). */
  mode?: 'per-request' | 'persistent';
  /** Persistent types only: the worker units, dispatchd-worker@NAME-1.service … -N. */
  workers?: string[];
  deadline_ms: number;
  max_payload_bytes: number;
  max_result_bytes: number;
  concurrency: number;
  idempotent: boolean;
  description: string;
  /** Where it is declared: FILE or FILE:LINE. */
  declared_in: string;
  /** The running secondaries that publish it (`secondary-N`), ascending. */
  served_by: string[];
  /** Requests of this type served and failed, summed over those secondaries' current processes. */
  requests: number;
  failures: number;
}

/** Builds the rows: the registry's types, and what the running secondaries publish. */
export function typesReport(registry: TypeRegistry, served: ServedTypesFile[]): TypeRow[] {
  const byType = new Map<string, { by: number[]; requests: number; failures: number }>();
  for (const f of [...served].sort((a, b) => a.secondary - b.secondary)) {
    for (const t of f.types) {
      const e = byType.get(t.name) ?? { by: [], requests: 0, failures: 0 };
      e.by.push(f.secondary);
      e.requests += t.requests;
      e.failures += t.failures;
      byType.set(t.name, e);
    }
  }
  return registry.list().map((t) => {
    const s = byType.get(t.name);
    return {
      name: t.name,
      handler: t.handler,
      target: handlerTarget(t),
      ...(t.handler === 'exec' ? { mode: t.mode } : {}),
      ...(isPersistent(t) ? { workers: workerIds(t).map(workerServiceUnit) } : {}),
      deadline_ms: t.deadline_ms,
      max_payload_bytes: t.max_payload_bytes,
      max_result_bytes: t.max_result_bytes,
      concurrency: t.concurrency,
      idempotent: t.idempotent,
      description: t.description ?? '',
      declared_in: t.source.line === undefined ? t.source.file : `${t.source.file}:${t.source.line}`,
      served_by: (s?.by ?? []).map((n) => formatDaemonId(secondary(n))),
      requests: s?.requests ?? 0,
      failures: s?.failures ?? 0,
    };
  });
}

function size(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes >> 20}MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes >> 10}KiB`;
  return `${bytes}B`;
}

/**
 * The table: NAME HANDLER IDEMPOTENT DEADLINE PAYLOAD RESULT CONCURRENCY SERVED-BY REQUESTS
 * FAILED RUNS. HANDLER is builtin, module, exec (a process per request) or exec/persistent:N
 * (N worker units: `systemctl status 'dispatchd-worker@NAME-*'`).
 */
export function formatTypesTable(rows: TypeRow[]): string {
  const out = [['NAME', 'HANDLER', 'IDEMPOTENT', 'DEADLINE', 'PAYLOAD', 'RESULT', 'CONCURRENCY', 'SERVED-BY', 'REQUESTS', 'FAILED', 'RUNS']];
  for (const r of rows) {
    const servedBy = r.served_by.length ? r.served_by.map(shortDaemonName).join(',') : 'none';
    const handler = r.mode === 'persistent' ? `exec/persistent:${r.workers?.length ?? 0}` : r.handler;
    out.push([r.name, handler, r.idempotent ? 'yes' : 'no', `${r.deadline_ms}ms`, size(r.max_payload_bytes), size(r.max_result_bytes), String(r.concurrency), servedBy, String(r.requests), String(r.failures), r.target]);
  }
  return formatColumns(out, new Set([0, 1, 2, 7, 10]));
}
