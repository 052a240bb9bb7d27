/**
 * `dispatchctl status --format openmetrics`: the status report in the OpenMetrics text
 * format (https://prometheus.io/docs/specs/om/open_metrics_spec/), for a scraper to read
 * from a file or a textfile collector. Written with prom-client, one fresh registry per
 * snapshot. Every sample has the label `daemon` (main, secondary-N, watchdog).
 *
 * Counters are the scoreboard's per-process counters: they start at 0 when a daemon
 * (re)starts, which Prometheus' rate() treats as a counter reset.
 */
import client from 'prom-client';
import { parseDaemonId } from '../common/topology.js';
import type { DaemonStatus, StatusReport } from './status.js';

/** The states a daemon can be reported in (`dispatchd_daemon_state`), one sample each. */
export const REPORTED_STATES = ['starting', 'ready', 'busy', 'full', 'stopping', 'stopped', 'dead', 'unresponsive', 'absent', 'unknown'] as const;

/** The media type of {@link openMetrics}' output. */
export const OPENMETRICS_CONTENT_TYPE = client.Registry.OPENMETRICS_CONTENT_TYPE;
/** The classic Prometheus text format (exposition format 0.0.4), the other output of {@link openMetrics}. */
export const PROMETHEUS_CONTENT_TYPE = client.Registry.PROMETHEUS_CONTENT_TYPE;
/** The formats {@link openMetrics} writes. */
export type ExpositionContentType = typeof OPENMETRICS_CONTENT_TYPE | typeof PROMETHEUS_CONTENT_TYPE;

/**
 * The report as OpenMetrics text, ending with `# EOF`; or, with `contentType`
 * {@link PROMETHEUS_CONTENT_TYPE}, the same samples in the classic Prometheus text format
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), which is what
 * dispatchd-metrics.service serves to a scraper that does not ask for OpenMetrics.
 * Counters are named with `_total` in both (prom-client writes the OpenMetrics family name
 * without it, the samples with it), so a scraper stores the same series from either.
 *
 * Metric families (seconds and totals as the specification names them):
 * - `dispatchd_daemon_state{daemon,state}` gauge: 1 for the daemon's state, 0 for the others
 *   (idle is `ready`; `busy` and `full` have leases out)
 * - `dispatchd_requests_total{daemon}`: main leases granted, secondary requests served,
 *   watchdog pings sent; `dispatchd_failures_total{daemon}`: refused or failed ones
 * - `dispatchd_restarts_total{daemon}`: starts − 1 since the scoreboard was created
 * - `dispatchd_incidents_total{daemon}`: incidents logged (watchdog: restarts it ordered)
 * - `dispatchd_leases_active{daemon}`, `dispatchd_leases_capacity{daemon}` gauges;
 *   `dispatchd_queue_length{daemon="main"}` gauge
 * - `dispatchd_lease_latency_seconds_total{daemon="main"}` (time spent granting the
 *   `requests` leases; mean = rate of this / rate of requests) and
 *   `dispatchd_lease_latency_max_seconds{daemon="main"}`
 * - `dispatchd_request_duration_seconds_total{daemon="secondary-N"}` and
 *   `dispatchd_request_duration_max_seconds{daemon="secondary-N"}`
 * - `dispatchd_heartbeat_age_seconds{daemon}` gauge
 * - per request type, over the running secondaries that serve it (label `type`):
 *   `dispatchd_type_requests_total`, `dispatchd_type_failures_total`,
 *   `dispatchd_type_request_duration_seconds_total`, `dispatchd_type_request_duration_max_seconds`,
 *   `dispatchd_type_leases_active`
 */
export async function openMetrics(report: StatusReport, contentType: ExpositionContentType = OPENMETRICS_CONTENT_TYPE): Promise<string> {
  const registry = new client.Registry<ExpositionContentType>();
  registry.setContentType(contentType);
  /** A counter (named `…_total`, as both formats want) or a gauge, labelled by daemon or by request type. */
  const counter = (name: string, help: string, label: 'daemon' | 'type' = 'daemon') => new client.Counter({ name: `${name}_total`, help, labelNames: [label], registers: [registry] });
  const gauge = (name: string, help: string, label: 'daemon' | 'type' = 'daemon') => new client.Gauge({ name, help, labelNames: [label], registers: [registry] });

  const state = new client.Gauge({ name: 'dispatchd_daemon_state', help: 'Current state of each daemon: 1 for its state, 0 for the others', labelNames: ['daemon', 'state'], registers: [registry] });
  const requests = counter('dispatchd_requests', 'Main: leases granted; secondary: requests served; watchdog: pings sent; by the running process');
  const failures = counter('dispatchd_failures', 'Requests refused or failed by the running process');
  const restarts = counter('dispatchd_restarts', 'Restarts since the suite started (starts - 1)');
  const incidents = counter('dispatchd_incidents', 'Incidents logged (bad peers, damaged messages); watchdog: restarts it ordered');
  const active = gauge('dispatchd_leases_active', 'Secondary: leases held (reserved or in use); main: requests in progress');
  const capacity = gauge('dispatchd_leases_capacity', 'Secondary: most leases held at once (max_leases)');
  const queued = gauge('dispatchd_queue_length', 'Main: requests waiting in the admission queue');
  const leaseSum = counter('dispatchd_lease_latency_seconds', 'Main: total time from lease request to lease granted, over the leases granted');
  const leaseMax = gauge('dispatchd_lease_latency_max_seconds', 'Main: the longest time to grant one lease since the process started');
  const runSum = counter('dispatchd_request_duration_seconds', 'Secondary: total run time of the requests served');
  const runMax = gauge('dispatchd_request_duration_max_seconds', 'Secondary: the longest run time of one request since the process started');
  const heartbeat = gauge('dispatchd_heartbeat_age_seconds', 'Time since the daemon last refreshed its scoreboard slot');

  for (const d of report.daemons) {
    const daemon = { daemon: d.name };
    for (const s of REPORTED_STATES) state.set({ daemon: d.name, state: s }, d.state === s ? 1 : 0);
    requests.inc(daemon, d.requests);
    failures.inc(daemon, d.failures);
    restarts.inc(daemon, d.restarts);
    incidents.inc(daemon, d.incidents);
    active.set(daemon, d.active);
    heartbeat.set(daemon, d.heartbeat_age_ms / 1000);
    if (isSecondary(d)) {
      capacity.set(daemon, d.capacity);
      runSum.inc(daemon, d.latency_sum_us / 1e6);
      runMax.set(daemon, d.latency_max_ms / 1000);
    } else if (parseDaemonId(d.name)?.kind === 'main') {
      queued.set(daemon, d.queued);
      leaseSum.inc(daemon, d.latency_sum_us / 1e6);
      leaseMax.set(daemon, d.latency_max_ms / 1000);
    }
  }
  const typeRequests = counter('dispatchd_type_requests', 'Requests of this type served by the running secondaries', 'type');
  const typeFailures = counter('dispatchd_type_failures', 'Requests of this type that failed on the running secondaries', 'type');
  const typeRunSum = counter('dispatchd_type_request_duration_seconds', 'Total run time of the requests of this type served', 'type');
  const typeRunMax = gauge('dispatchd_type_request_duration_max_seconds', 'The longest run time of one request of this type', 'type');
  const typeLeases = gauge('dispatchd_type_leases_active', 'Leases of this type held now', 'type');
  for (const t of report.types) {
    const type = { type: t.type };
    typeRequests.inc(type, t.requests);
    typeFailures.inc(type, t.failures);
    typeRunSum.inc(type, t.latency_sum_us / 1e6);
    typeRunMax.set(type, t.latency_max_ms / 1000);
    typeLeases.set(type, t.leases);
  }
  const text = await registry.metrics();
  return text.endsWith('\n') ? text : `${text}\n`;
}

function isSecondary(d: DaemonStatus): boolean {
  return parseDaemonId(d.name)?.kind === 'secondary';
}
