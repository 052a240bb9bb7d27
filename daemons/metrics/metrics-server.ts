/**
 * The HTTP side of dispatchd-metrics.service: `GET /metrics` answers the scoreboard's status
 * report in a Prometheus exposition format, chosen by content negotiation (RFC 9110 §12.5.1,
 * through the `negotiator` library):
 *  - `application/openmetrics-text` when the scraper asks for it (Prometheus does, at the
 *    highest q), version 1.0.0 (https://prometheus.io/docs/specs/om/open_metrics_spec/);
 *  - otherwise, with no Accept header or one that names neither, the classic Prometheus text
 *    format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
 * Both are written by prom-client through daemons/client/metrics.ts, the code behind
 * `dispatchctl status --format openmetrics`: one set of metric families.
 *
 * `HEAD /metrics` is GET without the body (RFC 9110 §9.3.2). Everything else is refused in
 * plain text: another path 404, another method on /metrics 405 (with `Allow: GET, HEAD`).
 * The scoreboard unreadable (its keeper stopped, or the suite restarting): 503, which a
 * scraper records as `up == 0`.
 *
 * A slow or hostile client is cut off by node:http's own limits ({@link HTTP_LIMITS}):
 * headers within 5 s, the whole request within 10 s, an idle keep-alive connection closed
 * after 5 s, at most 16 connections at once (node:http closes more as they are accepted),
 * headers of at most 8 KiB. The server only reads
 * the scoreboard (a lock-free snapshot), so no client can hold up a daemon of the suite.
 */
import http from 'node:http';
import Negotiator from 'negotiator';
import { reason } from '../common/errors.js';
import { openMetrics, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, type ExpositionContentType } from '../client/metrics.js';
import type { StatusReport } from '../client/status.js';

/** The one path served. */
export const METRICS_PATH = '/metrics';

/** node:http's limits against slow and hostile clients (ms, bytes, connections). */
export const HTTP_LIMITS = {
  /** Time to receive the request's headers (slowloris). */
  headersTimeoutMs: 5_000,
  /** Time to receive the whole request. */
  requestTimeoutMs: 10_000,
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: 5_000,
  /** A connection with no traffic at all for this long is destroyed. */
  socketIdleMs: 10_000,
  /** Connections served at once; more are closed on accept. */
  maxConnections: 16,
  /** How often node:http checks the two timeouts above. */
  checkIntervalMs: 1_000,
  /** Largest request head (request line and headers). */
  maxHeaderBytes: 8 * 1024,
  /**
   * The listen(2) backlog: dispatchd-metrics.socket's Backlog=, so a scraper's connection storm
   * waits in a small queue. Node calls listen(2) again on an activated fd, with 511 unless
   * given one (units.test checks the unit says the same).
   */
  backlog: 64,
} as const;

/** The media types offered, classic text first (the default for an Accept that names neither). */
const OFFERED = ['text/plain; version=0.0.4', 'application/openmetrics-text; version=1.0.0'] as const;

/**
 * The exposition format for an Accept header: OpenMetrics when it prefers
 * `application/openmetrics-text` (version 1.0.0 or none given) to `text/plain`, else the
 * classic text format.
 */
export function negotiateFormat(accept: string | undefined): ExpositionContentType {
  const chosen = new Negotiator({ headers: accept === undefined ? {} : { accept } }).mediaType([...OFFERED]);
  return chosen === OFFERED[1] ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE;
}

export interface MetricsServerOptions {
  /** Reads the status report now (readStatusReport); throws when the scoreboard cannot be read. */
  report: () => StatusReport;
  /** Told when the report could not be read or written, for the journal. */
  onError?: (what: string, err: unknown) => void;
}

function plain(res: http.ServerResponse, status: number, text: string, headers: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
  res.end(`${text}\n`);
}

/**
 * An HTTP server (not yet listening) that serves {@link METRICS_PATH}; listen on the
 * socket-activated fd with `server.listen({ fd })`.
 */
export function createMetricsServer(opts: MetricsServerOptions): http.Server {
  const server = http.createServer(
    {
      headersTimeout: HTTP_LIMITS.headersTimeoutMs,
      requestTimeout: HTTP_LIMITS.requestTimeoutMs,
      keepAliveTimeout: HTTP_LIMITS.keepAliveTimeoutMs,
      maxHeaderSize: HTTP_LIMITS.maxHeaderBytes,
      // How often the header and request timeouts are checked (node's default is 30 s).
      connectionsCheckingInterval: HTTP_LIMITS.checkIntervalMs,
    },
    (req, res) => {
      // A body (none is expected) is read and dropped, so the connection can be reused.
      req.resume();
      let path: string;
      try {
        path = new URL(req.url ?? '/', 'http://localhost').pathname;
      } catch {
        plain(res, 400, 'bad request: unparsable request target');
        return;
      }
      if (path !== METRICS_PATH) {
        plain(res, 404, `not found: only GET ${METRICS_PATH} is served here`);
        return;
      }
      // HEAD as GET without the body (RFC 9110 §9.3.2: a server that supports GET supports HEAD).
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        plain(res, 405, `method not allowed: only GET (and HEAD) ${METRICS_PATH} is served here`, { Allow: 'GET, HEAD' });
        return;
      }
      const contentType = negotiateFormat(req.headers.accept);
      let report: StatusReport;
      try {
        report = opts.report();
      } catch (err) {
        opts.onError?.('failed to read the scoreboard', err);
        plain(res, 503, `service unavailable: ${reason(err)}`);
        return;
      }
      openMetrics(report, contentType).then(
        (text) => {
          // node:http sends no body for HEAD; Content-Length is what GET would send.
          res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
          res.end(text);
        },
        (err: unknown) => {
          opts.onError?.('failed to write the metrics', err);
          plain(res, 500, `internal error: ${reason(err)}`);
        },
      );
    },
  );
  server.maxConnections = HTTP_LIMITS.maxConnections;
  // A connection that says nothing at all (not even a request line) is destroyed.
  server.setTimeout(HTTP_LIMITS.socketIdleMs, (socket) => socket.destroy());
  // A malformed request or an oversized head: node:http answers 400/431 itself when it can.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${status}\n`);
  });
  return server;
}
