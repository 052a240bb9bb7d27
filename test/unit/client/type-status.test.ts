import t from 'tap';
import { openMetrics, PROMETHEUS_CONTENT_TYPE } from '../../../daemons/client/metrics.js';
import { formatTable, statusReport, typeStatuses } from '../../../daemons/client/status.js';
import { formatTypesTable, typesReport } from '../../../daemons/client/types-report.js';
import { resolveType } from '../../../daemons/common/request-type.js';
import type { ServedType, ServedTypesFile } from '../../../daemons/common/served-types.js';
import { TypeRegistry } from '../../../daemons/common/type-registry.js';

const served = (name: string, requests: number, failures: number, sumUs: number, maxUs: number, leases = 0): ServedType => ({ name, handler: 'exec', idempotent: false, concurrency: 2, deadline_ms: 5000, max_payload_bytes: 1024, max_result_bytes: 1024, leases, requests, failures, latency_sum_us: sumUs, latency_max_us: maxUs });
const file = (secondary: number, types: ServedType[]): ServedTypesFile => ({ version: 1, secondary, generation: secondary * 10, pid: 100 + secondary, updated_ms: 0, types });
const FILES = [file(2, [served('upper', 10, 1, 20_000, 5000, 1)]), file(1, [served('upper', 30, 0, 60_000, 9000), served('greet', 4, 2, 4000, 1500)])];

t.test('per-type figures are summed over the secondaries that serve the type', async (t) => {
  t.same(typeStatuses(FILES), [
    { type: 'greet', secondaries: ['secondary-1'], leases: 0, requests: 4, failures: 2, latency_avg_ms: 1, latency_max_ms: 1.5, latency_sum_us: 4000 },
    { type: 'upper', secondaries: ['secondary-1', 'secondary-2'], leases: 1, requests: 40, failures: 1, latency_avg_ms: 2, latency_max_ms: 9, latency_sum_us: 80_000 },
  ]);
  t.same(typeStatuses([]), []);
});

t.test('status: the table has a type section; OpenMetrics has per-type families with a type label', async (t) => {
  const report = statusReport('/sb', { createdMs: 0, slots: [] }, 1000, () => true, FILES);
  t.match(formatTable(report), /^TYPE +LEASES +REQUESTS +FAILED +LATENCY +SECONDARIES\ngreet +0 +4 +2 +1\.00ms\/1\.50ms +1\nupper +1 +40 +1 +2\.00ms\/9\.00ms +1,2\n$/m);
  const text = await openMetrics(report);
  t.match(text, /^dispatchd_type_requests_total\{type="upper"\} 40$/m);
  t.match(text, /^dispatchd_type_failures_total\{type="greet"\} 2$/m);
  t.match(text, /^dispatchd_type_request_duration_seconds_total\{type="upper"\} 0\.08$/m);
  t.match(text, /^dispatchd_type_request_duration_max_seconds\{type="upper"\} 0\.009$/m);
  t.match(text, /^dispatchd_type_leases_active\{type="upper"\} 1$/m);
  t.match(text, /# EOF\n$/);
  const classic = await openMetrics(report, PROMETHEUS_CONTENT_TYPE);
  t.match(classic, /^# TYPE dispatchd_type_requests_total counter$/m, 'the classic format names counters _total too (promtool)');
  t.match(classic, /^dispatchd_type_requests_total\{type="upper"\} 40$/m);
});

t.test('dispatchctl types: every declared type, with who serves it now', async (t) => {
  const src = { file: '/etc/dispatchd/types.d/u.toml', line: 3 };
  const defaults = { deadline_ms: 30_000, max_payload_bytes: 64 << 20, max_result_bytes: 64 << 20, concurrency: 32 };
  const registry = new TypeRegistry([
    resolveType('upper', { handler: 'exec', command: ['/usr/bin/tr', 'a-z', 'A-Z'], deadline_ms: 5000, concurrency: 4 }, defaults, src),
    resolveType('greet', { handler: 'module', module: '/m.mjs', idempotent: true }, defaults, { file: '/g.toml' }),
    resolveType('idle', { handler: 'builtin', builtin: 'echo' }, defaults, { file: '/i.toml' }),
    resolveType('wc', { handler: 'exec', command: ['/usr/bin/python3', '/opt/wc.py'], mode: 'persistent', processes: 2 }, defaults, { file: '/w.toml' }),
  ]);
  const rows = typesReport(registry, FILES);
  t.same(rows.map((r) => [r.name, r.served_by, r.requests]), [['greet', ['secondary-1'], 4], ['idle', [], 0], ['upper', ['secondary-1', 'secondary-2'], 40], ['wc', [], 0]]);
  t.match(rows[2], { handler: 'exec', mode: 'per-request', target: '/usr/bin/tr a-z A-Z', deadline_ms: 5000, concurrency: 4, idempotent: false, declared_in: '/etc/dispatchd/types.d/u.toml:3' });
  t.notOk('workers' in rows[2]!, 'a process per request: no worker units');
  t.match(rows[3], { handler: 'exec', mode: 'persistent', workers: ['dispatchd-worker@wc-1.service', 'dispatchd-worker@wc-2.service'] }, 'a persistent type names its worker units');
  t.notOk('mode' in rows[0]! || 'mode' in rows[1]!, 'module and builtin types have no mode');
  const table = formatTypesTable(rows);
  t.match(table, /^NAME +HANDLER +IDEMPOTENT +DEADLINE +PAYLOAD +RESULT +CONCURRENCY +SERVED-BY +REQUESTS +FAILED +RUNS$/m);
  t.match(table, /^idle +builtin +no +30000ms +64MiB +64MiB +32 +none +0 +0 +builtin:echo$/m);
  t.match(table, /^upper +exec +no +5000ms .* 1,2 +40 +1 +\/usr\/bin\/tr a-z A-Z$/m);
  t.match(table, /^wc +exec\/persistent:2 +no +30000ms .* none +0 +0 +\/usr\/bin\/python3 \/opt\/wc\.py$/m, 'persistent, with its number of workers');
});
