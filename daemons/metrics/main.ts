#!/usr/bin/node
/**
 * dispatchd-metrics: serves `GET /metrics` (daemons/metrics/metrics-server.ts) on the TCP
 * socket dispatchd-metrics.socket passes (socket activation, fd named `http`), reading the
 * scoreboard named by the configuration's `paths.scoreboard` read-only on every scrape.
 * Started by systemd on the first connection; stops on SIGTERM, closing its connections.
 */
import { runDaemon } from '../common/daemon.js';
import { reason } from '../common/errors.js';
import { listen } from '../common/framed-server.js';
import { requireFd } from '../common/listen-fds.js';
import { IncidentLimiter } from '../common/logger.js';
import { readStatusReport } from '../client/read-status.js';
import { createMetricsServer, HTTP_LIMITS, METRICS_PATH } from './metrics-server.js';

/** The service and socket units, and the fd name (FileDescriptorName=) of the listening socket. */
export const METRICS_UNITS = { service: 'dispatchd-metrics.service', socket: 'dispatchd-metrics.socket', fdName: 'http' } as const;

await runDaemon<{ config: string }>({
  identifier: 'dispatchd-metrics',
  unit: () => METRICS_UNITS.service,
  start: async ({ config, logger, notifier, listenFds }) => {
    const fd = requireFd(listenFds, METRICS_UNITS.fdName, METRICS_UNITS.socket);
    const file = config.paths.scoreboard;
    // A stopped suite is scraped every 15 s or so: say so once per minute, not per scrape.
    const limiter = new IncidentLimiter(60_000);
    const server = createMetricsServer({
      report: () => readStatusReport(file),
      onError: (what, err) => {
        const suppressed = limiter.shouldLog(what);
        if (suppressed !== undefined) logger.warning(`${what}: ${reason(err)}${suppressed ? ` (${suppressed} more since the last report)` : ''}`, { scoreboard: file });
      },
    });
    server.on('error', (err) => logger.error(`HTTP server error: ${reason(err)}`));
    await listen(server, { fd }, HTTP_LIMITS.backlog, METRICS_UNITS.socket);
    const status = `serving GET ${METRICS_PATH} from ${file}`;
    notifier.ready(status);
    return {
      statusLine: () => status,
      // Only paths.scoreboard matters here, and it takes a restart.
      reload: (next) => ({ applied: [], needRestart: next.paths.scoreboard === file ? [] : ['paths.scoreboard'] }),
      stop: async () => {
        notifier.stopping('closing the HTTP connections');
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      },
    };
  },
});
