import t from 'tap';
import { defaultConfig } from '../../../daemons/common/config.js';
import type { ScoreboardSnapshot } from '../../../daemons/common/scoreboard-reader.js';
import { formatTable, problems, STALE_HEARTBEAT_MS, statusReport } from '../../../daemons/client/status.js';
import { daemon, NOW, secondary } from '../lib/slots.js';

const FILE = '/dev/shm/dispatchd.scoreboard';
const everyoneAlive = () => true;

const snap = (slots: ScoreboardSnapshot['slots']): ScoreboardSnapshot => ({ createdMs: NOW - 3_600_000, slots });

t.test('the report: order, fields and derived values', async (t) => {
  const r = statusReport(
    FILE,
    snap([
      secondary(2, { active: 1, capacity: 4, requests: 10, failures: 1, starts: 3, heartbeatMs: NOW - 250, generation: 42, incidents: 2, latencySumUs: 12_345, latencyMaxUs: 4_000 }),
      daemon('watchdog', { requests: 500, incidents: 1 }),
      secondary(1),
      daemon('main', { active: 2, requests: 99, startedMs: NOW - 1000 }),
    ]),
    NOW,
    everyoneAlive,
  );
  t.equal(r.scoreboard, FILE);
  t.equal(r.created_at, new Date(NOW - 3_600_000).toISOString());
  t.same(r.daemons.map((d) => d.name), ['main', 'secondary-1', 'secondary-2', 'watchdog'], 'main, the secondaries by number, the watchdog last');
  t.same(r.daemons[2], {
    name: 'secondary-2',
    pid: 1002,
    state: 'ready',
    requests: 10,
    failures: 1,
    active: 1,
    capacity: 4,
    queued: 0,
    heartbeat_age_ms: 250,
    restarts: 2,
    generation: 42,
    started_at: new Date(NOW - 60_000).toISOString(),
    incidents: 2,
    latency_avg_ms: 1.235,
    latency_max_ms: 4,
    latency_sum_us: 12_345,
  });
  t.equal(r.daemons[0]!.latency_avg_ms, 0, 'no request, no mean latency');
  t.equal(r.daemons[0]!.restarts, 0, 'one start is no restart');
  t.same(JSON.parse(JSON.stringify(r)), r, 'plain JSON');
});

t.test('secondaries are ordered by number, not by name', async (t) => {
  const r = statusReport(FILE, snap([secondary(10), secondary(9), secondary(1)]), NOW, everyoneAlive);
  t.same(r.daemons.map((d) => d.name), ['main', 'secondary-1', 'secondary-9', 'secondary-10', 'watchdog']);
});

t.test('main and the watchdog are listed as absent when they never started, with a hint', async (t) => {
  const r = statusReport(FILE, snap([secondary(1)]), NOW, everyoneAlive);
  t.same(r.daemons.map((d) => [d.name, d.state, d.pid]), [['main', 'absent', 0], ['secondary-1', 'ready', 1001], ['watchdog', 'absent', 0]]);
  t.same(problems(r), [
    'main is absent: see systemctl status dispatchd-main.service and journalctl -u dispatchd-main.service -p warning',
    'watchdog is absent: see systemctl status dispatchd-watchdog.service and journalctl -u dispatchd-watchdog.service -p warning',
  ]);
  t.match(formatTable(r), /\nmain\s+-\s+absent\s+-/, 'the table shows the absent row');
  const empty = statusReport(FILE, snap([]), NOW, everyoneAlive);
  t.same(empty.daemons.map((d) => d.state), ['absent', 'absent'], 'an empty scoreboard is not an empty table');
});

t.test('a slot the reader found inconsistent: named in the report and in a line to stderr', async (t) => {
  const base = snap([daemon('main'), secondary(2), daemon('watchdog')]);
  const r = statusReport(FILE, { ...base, inconsistent: ['secondary-2'] }, NOW, everyoneAlive);
  t.same(r.inconsistent, ['secondary-2']);
  t.same(problems(r), ["secondary-2's slot is inconsistent (its seq stayed odd: a writer died mid-update; shown as last read): see systemctl status dispatchd-secondary@2.service"]);
  t.notOk('inconsistent' in statusReport(FILE, base, NOW, everyoneAlive), 'no key when every slot read consistent');
});

t.test('dead and unresponsive', async (t) => {
  const alive = (pid: number) => pid !== 1001 && pid !== 1003;
  const r = statusReport(
    FILE,
    snap([
      secondary(1), // pid gone, not stopped
      secondary(2, { heartbeatMs: NOW - STALE_HEARTBEAT_MS - 1 }), // running, stale
      secondary(3, { state: 'stopped', heartbeatMs: NOW - 60_000 }), // stopped cleanly: pid gone is expected
      secondary(4, { heartbeatMs: NOW - STALE_HEARTBEAT_MS }), // exactly at the limit
      secondary(5, { state: 'stopped' }), // stopped but its pid exists (reused)
    ]),
    NOW,
    alive,
  );
  t.same(r.daemons.filter((d) => d.state !== 'absent').map((d) => [d.name, d.state]), [
    ['secondary-1', 'dead'],
    ['secondary-2', 'unresponsive'],
    ['secondary-3', 'stopped'],
    ['secondary-4', 'ready'],
    ['secondary-5', 'stopped'],
  ]);
  t.equal(STALE_HEARTBEAT_MS, defaultConfig().main.heartbeat_stale_ms, 'one stale-heartbeat limit: the one main skips a secondary at by default');
});

t.test('a heartbeat from a clock ahead gives age 0, never negative', async (t) => {
  const r = statusReport(FILE, snap([secondary(1, { heartbeatMs: NOW + 500 })]), NOW, everyoneAlive);
  t.equal(r.daemons.find((d) => d.name === 'secondary-1')!.heartbeat_age_ms, 0);
});

t.test('restarts never go negative (a slot with starts 0)', async (t) => {
  const r = statusReport(FILE, snap([secondary(1, { starts: 0 })]), NOW, everyoneAlive);
  t.equal(r.daemons.find((d) => d.name === 'secondary-1')!.restarts, 0);
});

t.test('an empty scoreboard', async (t) => {
  const r = statusReport(FILE, snap([]), NOW, everyoneAlive);
  t.same(r.daemons.map((d) => [d.name, d.state]), [['main', 'absent'], ['watchdog', 'absent']]);
  t.equal(formatTable(r).split('\n')[0], 'NAME      PID  STATE   ACTIVE  REQUESTS  FAILED  LATENCY  HEARTBEAT  RESTARTS', 'the header');
});

t.test('formatTable: aligned columns', async (t) => {
  const r = statusReport(
    FILE,
    snap([
      daemon('main', { active: 12, requests: 123456, heartbeatMs: NOW - 1500, latencySumUs: 123456 * 420, latencyMaxUs: 25_000 }),
      secondary(1, { active: 3, capacity: 32, requests: 7, failures: 2, starts: 4, heartbeatMs: NOW - 42_000, latencySumUs: 7 * 2_500_000, latencyMaxUs: 3_100_000 }),
      daemon('watchdog', { heartbeatMs: NOW - 2 * 3_600_000, state: 'busy' }),
    ]),
    NOW,
    everyoneAlive,
  );
  const text = formatTable(r);
  t.ok(text.endsWith('\n'), 'ends with a newline');
  const rows = text.trimEnd().split('\n');
  t.equal(rows.length, 4);
  t.same(rows[0]!.split(/\s+/), ['NAME', 'PID', 'STATE', 'ACTIVE', 'REQUESTS', 'FAILED', 'LATENCY', 'HEARTBEAT', 'RESTARTS']);
  t.ok(rows.every((row) => row === row.trimEnd()), 'no trailing spaces');
  const cells = rows.map((row) => row.split(/\s{2,}/));
  t.same(cells[1], ['main', '900', 'ready', '12', '123456', '0', '0.42ms/25ms', '1.5s ago', '0'], 'latency mean/max');
  t.same(cells[2], ['secondary-1', '1001', 'unresponsive', '3/32', '7', '2', '2.5s/3.1s', '42s ago', '3'], 'active/capacity for a secondary');
  t.same(cells[3], ['watchdog', '901', 'unresponsive', '0', '0', '0', '-', '2.0h ago', '0']);
  // Numeric columns are right-aligned: every row has the same length up to the last column's end.
  t.equal(new Set(rows.map((row) => row.length)).size, 1, 'every row has the same width');
  const pidEnd = rows[0]!.indexOf('PID') + 3;
  t.ok(rows.every((row) => /\d|D/.test(row[pidEnd - 1]!)), 'PID column right-aligned');
});
