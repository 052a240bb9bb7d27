/**
 * The metrics HTTP server in-process, on an ephemeral loopback port, with a made-up status
 * report: content negotiation, the classic and OpenMetrics bodies, 404/405/503, and a client
 * that never finishes its headers being cut off.
 */
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { openMetrics, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE } from '../../../daemons/client/metrics.js';
import type { DaemonStatus, StatusReport } from '../../../daemons/client/status.js';
import { DispatchError } from '../../../daemons/common/errors.js';
import { createMetricsServer, HTTP_LIMITS, negotiateFormat } from '../../../daemons/metrics/metrics-server.js';

const row = (name: string, requests: number): DaemonStatus => ({ name, pid: 1, state: 'ready', requests, failures: 1, active: 0, capacity: name.startsWith('secondary') ? 32 : 0, queued: 0, heartbeat_age_ms: 100, restarts: 0, generation: 1, started_at: '', incidents: 0, latency_avg_ms: 0, latency_max_ms: 0, latency_sum_us: 0 });
const REPORT: StatusReport = { scoreboard: '/x', created_at: '', daemons: [row('main', 7), row('secondary-1', 5), row('watchdog', 2)], types: [] };

t.test('negotiateFormat: OpenMetrics only when asked for', async (t) => {
  t.equal(negotiateFormat(undefined), PROMETHEUS_CONTENT_TYPE, 'no Accept: classic text');
  t.equal(negotiateFormat('*/*'), PROMETHEUS_CONTENT_TYPE, '*/*: classic text');
  t.equal(negotiateFormat('text/plain'), PROMETHEUS_CONTENT_TYPE);
  t.equal(negotiateFormat('application/json'), PROMETHEUS_CONTENT_TYPE, 'a type we do not have: classic text');
  t.equal(negotiateFormat('application/openmetrics-text'), OPENMETRICS_CONTENT_TYPE);
  t.equal(negotiateFormat('application/openmetrics-text; version=1.0.0'), OPENMETRICS_CONTENT_TYPE);
  // What Prometheus 2.x sends.
  t.equal(negotiateFormat('application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'), OPENMETRICS_CONTENT_TYPE, "Prometheus' own Accept: OpenMetrics");
  t.equal(negotiateFormat('text/plain;version=0.0.4;q=0.5,application/openmetrics-text;q=0.1'), PROMETHEUS_CONTENT_TYPE, 'q-values decide');
});

async function serve(t: Test, report: () => StatusReport) {
  const errors: string[] = [];
  const server = createMetricsServer({ report, onError: (what) => errors.push(what) });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  const get = (path: string, method = 'GET', headers: http.OutgoingHttpHeaders = {}) =>
    new Promise<{ status: number; type: string; allow: string; length: string; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), allow: String(res.headers.allow ?? ''), length: String(res.headers['content-length'] ?? ''), body }));
      });
      req.on('error', reject);
      req.end();
    });
  return { port, get, errors };
}

t.test('GET /metrics: the report, in the negotiated format, as dispatchctl status --format openmetrics writes it', async (t) => {
  const { get } = await serve(t, () => REPORT);
  const classic = await get('/metrics');
  t.equal(classic.status, 200);
  t.equal(classic.type, PROMETHEUS_CONTENT_TYPE, 'classic text by default');
  t.equal(classic.body, await openMetrics(REPORT, PROMETHEUS_CONTENT_TYPE), 'the body is what metrics.ts writes');
  t.match(classic.body, /^dispatchd_requests_total\{daemon="secondary-1"\} 5$/m, 'counters carry _total in the classic format');
  const om = await get('/metrics?x=1', 'GET', { Accept: 'application/openmetrics-text; version=1.0.0' });
  t.equal(om.type, OPENMETRICS_CONTENT_TYPE, 'OpenMetrics when asked for');
  t.equal(om.body, await openMetrics(REPORT), 'the same text as dispatchctl status --format openmetrics');
  t.match(om.body, /# EOF\n$/);
});

t.test('anything but GET /metrics is refused in plain text', async (t) => {
  const { get } = await serve(t, () => REPORT);
  const other = await get('/');
  t.equal(other.status, 404);
  t.match(other.type, /^text\/plain/);
  t.match(other.body, /only GET \/metrics/);
  t.equal((await get('/metrics/x')).status, 404);
  for (const method of ['POST', 'PUT', 'DELETE']) {
    const r = await get('/metrics', method);
    t.equal(r.status, 405, `${method} /metrics: 405`);
    t.equal(r.allow, 'GET, HEAD', 'Allow: GET, HEAD');
  }
});

t.test('HEAD /metrics: the headers of GET (type, length), no body (RFC 9110 §9.3.2)', async (t) => {
  const { get } = await serve(t, () => REPORT);
  const full = await get('/metrics');
  const head = await get('/metrics', 'HEAD');
  t.equal(head.status, 200);
  t.equal(head.type, full.type, 'the Content-Type of GET');
  t.equal(head.length, String(Buffer.byteLength(full.body)), 'the Content-Length of GET');
  t.equal(head.body, '', 'and no body');
});

t.test('an unreadable scoreboard: 503 with the reason, and the error reported', async (t) => {
  const { get, errors } = await serve(t, () => {
    throw new DispatchError('SCOREBOARD_MISSING', "failed to open scoreboard '/x': it does not exist; is dispatchd.target running (systemctl start dispatchd.target)?");
  });
  const r = await get('/metrics');
  t.equal(r.status, 503);
  t.match(r.body, /it does not exist; is dispatchd.target running/);
  t.same(errors, ['failed to read the scoreboard']);
});

t.test('a client that never finishes its headers is cut off', async (t) => {
  const { port, get } = await serve(t, () => REPORT);
  const slow = net.connect(port, '127.0.0.1');
  await once(slow, 'connect');
  slow.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'); // and never the blank line
  let answer = '';
  slow.on('data', (c: Buffer) => (answer += c.toString()));
  const started = Date.now();
  await once(slow, 'close');
  const ms = Date.now() - started;
  t.ok(ms < HTTP_LIMITS.socketIdleMs, `closed by the server after ${ms} ms`);
  t.match(answer, /^HTTP\/1\.1 408/, 'with 408 Request Timeout');
  t.equal((await get('/metrics')).status, 200, 'others were served meanwhile');
});

t.test('a request head over 8 KiB is refused with 431', async (t) => {
  const { port } = await serve(t, () => REPORT);
  const c = net.connect(port, '127.0.0.1');
  await once(c, 'connect');
  let answer = '';
  c.on('data', (b: Buffer) => (answer += b.toString()));
  c.on('error', () => undefined); // the server may reset while we still write
  c.write(`GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(HTTP_LIMITS.maxHeaderBytes)}\r\n\r\n`);
  await once(c, 'close');
  t.match(answer, /^HTTP\/1\.1 431/);
});
