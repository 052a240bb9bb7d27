/**
 * The metrics endpoint under the real systemd, scraped by a real Prometheus (Debian's
 * `prometheus` package, run by hand inside the sandbox):
 *  - dispatchd-metrics.socket is installed off; enabled, it listens on 127.0.0.1:10391 and
 *    the first connection starts dispatchd-metrics.service (socket activation);
 *  - GET /metrics answers the classic text format, which `promtool check metrics` passes
 *    without a word, and OpenMetrics on `Accept: application/openmetrics-text`, the same
 *    families as `dispatchctl status --format openmetrics`; anything else 404/405;
 *  - Prometheus scrapes it, and after a few requests a dispatchd counter read back through
 *    Prometheus' HTTP query API counts them; every query of docs/grafana-dashboard.json
 *    answers a non-empty result.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { describe, ROOT as REPO, until } from '../helpers/index.js';
import { installedSuite } from './lib/suite.js';
import { HTTP_LIMITS } from '../../daemons/metrics/metrics-server.js';

const ENDPOINT = 'http://127.0.0.1:10391/metrics';
const PROMETHEUS = 'http://127.0.0.1:9090';
const REQUESTS = 5;

interface QueryAnswer {
  status: string;
  data: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

/** Every PromQL expression of the dashboard, with Grafana's $__rate_interval made concrete. */
function dashboardQueries(): string[] {
  const dash = JSON.parse(readFileSync(join(REPO, 'docs', 'grafana-dashboard.json'), 'utf8')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
  return dash.panels.flatMap((p) => p.targets.map((q) => q.expr.replaceAll('$__rate_interval', '1m')));
}

const sb = await installedSuite(t, import.meta.url);

if (sb) {
  const have = await sb.sh('command -v prometheus && command -v promtool && command -v curl');
  if (have.code !== 0) {
    t.plan(0, 'skip: no prometheus/promtool/curl on the host (apt-get install prometheus curl, as .ci/run does)');
  } else {
    const curl = (args: string) => sb.sh(`curl -sS --max-time 10 ${args}`);
    /** The HTTP status of one GET /metrics ('000' when nothing answered). */
    const scrapeStatus = async () => (await curl(`-o /dev/null -w '%{http_code}' ${ENDPOINT}`)).stdout.toString();
    const query = async (promql: string): Promise<QueryAnswer> =>
      JSON.parse(await sb.out(`curl -sS --max-time 10 --data-urlencode 'query=${promql.replace(/'/g, "'\\''")}' ${PROMETHEUS}/api/v1/query`)) as QueryAnswer;

    t.test('installed off; enabled, the socket listens and the first scrape starts the service', async (t) => {
      t.equal((await sb.sh('systemctl is-enabled dispatchd-metrics.socket')).stdout.toString().trim(), 'disabled', 'the package does not enable it');
      t.equal((await sb.show('dispatchd-metrics.socket', 'ActiveState')).ActiveState, 'inactive', 'nor start it');
      const en = await sb.sh('systemctl enable --now dispatchd-metrics.socket');
      t.equal(en.code, 0, describe('systemctl enable --now dispatchd-metrics.socket', en));
      t.equal((await sb.show('dispatchd-metrics.service', 'ActiveState')).ActiveState, 'inactive', 'the service waits for a connection');
      t.match(await sb.out('ss -Htln'), /127\.0\.0\.1:10391\b/, 'systemd listens on 127.0.0.1:10391');
      const r = await curl(`-o /dev/null -w '%{http_code}' ${ENDPOINT}`);
      t.equal(r.stdout.toString(), '200', describe('the first GET /metrics', r));
      t.equal((await sb.show('dispatchd-metrics.service', 'ActiveState')).ActiveState, 'active', 'the connection started the service');
      t.equal((await sb.show('dispatchd-metrics.service', 'User')).User, 'dispatchd', 'it runs as dispatchd');
    });

    t.test('GET /metrics: classic text that promtool passes, OpenMetrics when asked, nothing else', async (t) => {
      for (let i = 0; i < REQUESTS; i++) t.equal((await sb.exec(['dispatchctl', 'request', 'echo', `m${i}`])).stdout.toString(), `m${i}`);
      const headers = await sb.out(`curl -sS --max-time 10 -D - -o /tmp/classic.txt ${ENDPOINT}`);
      t.match(headers, /^content-type: text\/plain; version=0\.0\.4; charset=utf-8\r?$/im, 'classic text format by default');
      const classic = await sb.out('cat /tmp/classic.txt');
      t.match(classic, /^dispatchd_requests_total\{daemon="main"\} \d+$/m, 'counters end in _total');
      const check = await sb.sh('promtool check metrics < /tmp/classic.txt');
      t.equal(check.code, 0, describe('promtool check metrics', check));
      t.equal(`${check.stdout.toString()}${check.stderr}`, '', 'promtool check metrics says nothing');
      t.comment(`promtool check metrics: exit ${check.code}, output '${check.stdout.toString()}${check.stderr}'`);

      const omHeaders = await sb.out(`curl -sS --max-time 10 -D - -o /tmp/om.txt -H 'Accept: application/openmetrics-text; version=1.0.0' ${ENDPOINT}`);
      t.match(omHeaders, /^content-type: application\/openmetrics-text; version=1\.0\.0; charset=utf-8\r?$/im, 'OpenMetrics on request');
      const om = await sb.out('cat /tmp/om.txt');
      t.match(om, /# EOF\n$/, 'ends with # EOF');
      const families = (text: string) => [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`).sort();
      const cli = await sb.out('dispatchctl status --format openmetrics');
      t.same(families(om), families(cli), 'the same metric families as dispatchctl status --format openmetrics');
      // The OpenMetrics reference parser reads it (python3-prometheus-client, as operate.test.ts).
      const parsed = await sb.sh("python3 -c 'import sys; from prometheus_client.openmetrics.parser import text_string_to_metric_families as p; print(len(list(p(sys.stdin.read()))))' < /tmp/om.txt");
      t.equal(parsed.code, 0, describe('the OpenMetrics parser reads it', parsed));

      t.equal((await curl(`-o /dev/null -w '%{http_code}' http://127.0.0.1:10391/`)).stdout.toString(), '404', 'GET / is 404');
      t.equal((await curl(`-o /dev/null -w '%{http_code}' -X POST ${ENDPOINT}`)).stdout.toString(), '405', 'POST /metrics is 405');
    });

    t.test('a real Prometheus scrapes it and reads a dispatchd counter back', async (t) => {
      await sb.out(`mkdir -p /tmp/prom && cat > /tmp/prom/prometheus.yml <<'EOF'
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: dispatchd
    static_configs:
      - targets: ['127.0.0.1:10391']
EOF
chown -R prometheus: /tmp/prom 2>/dev/null || true`);
      // A transient unit: stopped with the sandbox, its output in the journal.
      const run = await sb.sh(
        'systemd-run --unit=test-prometheus --property=User=prometheus --property=WorkingDirectory=/tmp/prom ' +
          '/usr/bin/prometheus --config.file=/tmp/prom/prometheus.yml --storage.tsdb.path=/tmp/prom/data ' +
          '--web.listen-address=127.0.0.1:9090 --log.level=warn',
      );
      // It keeps running for the dashboard's queries below; the sandbox's stop ends it.
      t.equal(run.code, 0, describe('systemd-run prometheus', run));
      const version = await sb.out('prometheus --version 2>&1 | head -n 1');
      t.comment(version.trim());

      // The counter Prometheus stores: requests served by the secondaries, scraped in OpenMetrics.
      const COUNTER = 'sum(dispatchd_requests_total{job="dispatchd", daemon=~"secondary-.*"})';
      const total = await until(`Prometheus to scrape ${REQUESTS} requests`, 60_000, async () => {
        const a = await query(COUNTER);
        const v = Number(a.data.result[0]?.value[1]);
        return v >= REQUESTS ? v : undefined;
      }, { everyMs: 500 });
      t.ok(total >= REQUESTS, `${COUNTER} = ${total} through ${PROMETHEUS}/api/v1/query (${REQUESTS} requests sent)`);
      t.comment(`query ${COUNTER} -> ${total}`);
      const up = await query('up{job="dispatchd"}');
      t.equal(up.data.result[0]?.value[1], '1', 'the target is up');
      const before = total;
      for (let i = 0; i < 3; i++) await sb.out(`dispatchctl request echo again${i}`);
      const after = await until('the next requests to show', 30_000, async () => {
        const v = Number((await query(COUNTER)).data.result[0]?.value[1]);
        return v >= before + 3 ? v : undefined;
      }, { everyMs: 500 });
      t.equal(after, before + 3, 'three more requests, three more counted');
    });

    t.test('every query of docs/grafana-dashboard.json answers something', async (t) => {
      const queries = dashboardQueries();
      t.ok(queries.length >= 10, `${queries.length} queries`);
      // rate() over 1m needs two samples of every series: wait for a few scrapes.
      await until('two scrapes of the requests counter', 30_000, async () => {
        const a = await query('count_over_time(dispatchd_requests_total{daemon="main"}[1m])');
        return Number(a.data.result[0]?.value[1]) >= 2 ? true : undefined;
      }, { everyMs: 500 });
      for (const q of queries) {
        const a = await query(q);
        t.equal(a.status, 'success', `${q}: success`);
        t.ok(a.data.result.length > 0, `${q}: ${a.data.result.length} series (${a.data.result.map((r) => r.value[1]).slice(0, 4).join(', ')})`);
      }
    });

    t.test("the service keeps the socket unit's Backlog= when it listens again on the fd", async (t) => {
      t.equal(await scrapeStatus(), '200', 'scraped: the service runs');
      // For a listening socket, ss's Send-Q column is the backlog.
      const line = (await sb.out("ss -ltnH 'sport = :10391'")).trim();
      t.equal(line.split(/\s+/)[2], String(HTTP_LIMITS.backlog), `Send-Q is the backlog (${line}); Node's default is 511`);
    });

    t.test('scraped, it survives systemctl restart dispatchd.target (the socket is not restarted under its running service)', async (t) => {
      for (let i = 1; i <= 3; i++) {
        t.equal(await scrapeStatus(), '200', `scraped before restart ${i}: the service runs`);
        await sb.out('systemctl restart dispatchd.target');
        t.equal((await sb.sh('systemctl is-active dispatchd-metrics.socket')).stdout.toString().trim(), 'active', `restart ${i}: the socket still listens (it failed with "Address already in use" when it was restarted too)`);
      }
      t.equal(await scrapeStatus(), '200', 'and answers');
    });

    t.test('enabled, it stops and starts with the suite: systemctl stop, then start dispatchd.target', async (t) => {
      await sb.out('systemctl stop dispatchd.target');
      t.equal((await sb.sh('systemctl is-active dispatchd-metrics.socket')).stdout.toString().trim(), 'inactive', 'stopped with the suite (StopPropagatedFrom=)');
      await sb.out('systemctl start dispatchd.target');
      t.equal((await sb.sh('systemctl is-active dispatchd-metrics.socket')).stdout.toString().trim(), 'active', 'and started with it again (WantedBy=dispatchd.target)');
      t.equal(await scrapeStatus(), '200', 'scraped again');
    });
  }
}
