import { spawnSync } from 'node:child_process';
import t from 'tap';
import { openMetrics, REPORTED_STATES } from '../../../daemons/client/metrics.js';
import { statusReport } from '../../../daemons/client/status.js';
import { daemon, NOW, secondary } from '../lib/slots.js';

const report = statusReport(
  '/dev/shm/dispatchd.scoreboard',
  {
    createdMs: NOW - 60_000,
    slots: [
      daemon('main', { requests: 40, failures: 2, queued: 3, active: 1, latencySumUs: 40 * 1500, latencyMaxUs: 9_000, starts: 2 }),
      secondary(1, { state: 'busy', active: 2, capacity: 32, requests: 25, latencySumUs: 25 * 800, latencyMaxUs: 4_000 }),
      secondary(2, { state: 'ready', requests: 15, heartbeatMs: NOW - 1_500 }),
      daemon('watchdog', { requests: 500, incidents: 1 }),
    ],
  },
  NOW,
  () => true,
);

/** name{labels} → value, for the samples of the exposition. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

t.test('OpenMetrics: counters, gauges, states and latencies from the report', async (t) => {
  const text = await openMetrics(report);
  t.ok(text.endsWith('# EOF\n'), 'ends with # EOF');
  const s = samples(text);
  t.equal(s.get('dispatchd_requests_total{daemon="main"}'), 40, 'leases granted');
  t.equal(s.get('dispatchd_requests_total{daemon="secondary-1"}'), 25, 'requests served');
  t.equal(s.get('dispatchd_failures_total{daemon="main"}'), 2);
  t.equal(s.get('dispatchd_restarts_total{daemon="main"}'), 1, 'starts - 1');
  t.equal(s.get('dispatchd_queue_length{daemon="main"}'), 3);
  t.equal(s.get('dispatchd_leases_active{daemon="secondary-1"}'), 2);
  t.equal(s.get('dispatchd_leases_capacity{daemon="secondary-1"}'), 32);
  t.equal(s.get('dispatchd_lease_latency_seconds_total{daemon="main"}'), 0.06, 'sum of lease latencies in s');
  t.equal(s.get('dispatchd_lease_latency_max_seconds{daemon="main"}'), 0.009);
  t.equal(s.get('dispatchd_request_duration_seconds_total{daemon="secondary-1"}'), 0.02);
  t.equal(s.get('dispatchd_request_duration_max_seconds{daemon="secondary-1"}'), 0.004);
  t.equal(s.get('dispatchd_heartbeat_age_seconds{daemon="secondary-2"}'), 1.5);
  t.equal(s.get('dispatchd_daemon_state{daemon="secondary-1",state="busy"}'), 1, 'busy');
  t.equal(s.get('dispatchd_daemon_state{daemon="secondary-2",state="ready"}'), 1, 'idle');
  t.equal(s.get('dispatchd_daemon_state{daemon="secondary-2",state="busy"}'), 0);
  const states = [...s.keys()].filter((k) => k.startsWith('dispatchd_daemon_state{daemon="main"'));
  t.equal(states.length, REPORTED_STATES.length, 'one state sample per reported state');
  t.notOk(s.has('dispatchd_lease_latency_seconds_total{daemon="secondary-1"}'), 'lease latency is main\'s');
});

// The reference parser (the Prometheus project's Python client) is strict about the format.
const py = spawnSync('/usr/bin/python3', ['-c', 'import prometheus_client.openmetrics.parser'], { encoding: 'utf8' });
const noParser = py.error || py.status !== 0 ? 'python3-prometheus-client is not installed (apt-get install python3-prometheus-client)' : false;

t.test('the OpenMetrics reference parser accepts the output', { skip: noParser }, async (t) => {
  const text = await openMetrics(report);
  const r = spawnSync(
    '/usr/bin/python3',
    ['-c', 'import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\nfor f in p(sys.stdin.read()): print(f.name, f.type, len(f.samples))'],
    { input: text, encoding: 'utf8' },
  );
  t.equal(r.status, 0, `parsed (${r.stderr.trim()})`);
  const families = r.stdout.trim().split('\n');
  t.ok(families.includes('dispatchd_requests counter 4'), 'dispatchd_requests is a counter with one sample per daemon');
  t.ok(families.includes('dispatchd_lease_latency_seconds counter 1'), 'lease latency');
  t.ok(families.includes(`dispatchd_daemon_state gauge ${4 * REPORTED_STATES.length}`), 'states');
});
