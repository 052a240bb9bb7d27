/**
 * `dispatchctl status`: every daemon from the scoreboard, as a table, JSON or OpenMetrics
 * text, once or with --watch. Loaded only when that command runs.
 */
import { DEFAULT_CONFIG_PATH } from '../common/config-path.js';
import { errorLine, fail, writeStdout } from './cli-output.js';
import { readStatusReport } from './read-status.js';
import { formatTable, problems, type StatusReport } from './status.js';

/** The parsed `dispatchctl status` command line. */
export interface StatusCommand {
  format: 'table' | 'json' | 'openmetrics';
  watch: boolean;
  /** Time between --watch snapshots (ms). */
  interval: number;
  count: number | undefined;
  /** The scoreboard file; undefined: from the configuration. */
  scoreboard: string | undefined;
}

/** Default scoreboard path: from the configuration file if it is readable, else the built-in one. */
async function defaultScoreboard(): Promise<string> {
  try {
    const { loadConfig } = await import('../common/config.js');
    return loadConfig(DEFAULT_CONFIG_PATH).paths.scoreboard;
  } catch {
    return '/dev/shm/dispatchd.scoreboard';
  }
}

/** Runs `dispatchctl status`; on failure writes one line and exits (cli-output.ts fail). */
export async function runStatus(a: StatusCommand): Promise<void> {
  const file = a.scoreboard ?? (await defaultScoreboard());
  const { format } = a;
  const read = (): StatusReport => readStatusReport(file);
  const render = async (report: StatusReport, compact: boolean): Promise<string> => {
    if (format === 'openmetrics') return (await import('./metrics.js')).openMetrics(report);
    if (format === 'json') return compact ? JSON.stringify(report) + '\n' : JSON.stringify(report, null, 2) + '\n';
    return formatTable(report);
  };
  if (!a.watch) {
    let report: StatusReport;
    try {
      report = read();
    } catch (err) {
      fail('failed to read the status', err);
    }
    await writeStdout(Buffer.from(await render(report, false)));
    if (format === 'table') for (const p of problems(report)) process.stderr.write(`dispatchctl: ${p}\n`);
    return;
  }
  // --watch: a scoreboard that goes away (the suite stopped) is reported and retried.
  const { watchStatus } = await import('./status-watch.js');
  const tty = process.stdout.isTTY === true;
  const ac = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort());
  process.stdout.on('error', () => ac.abort()); // the reader of the pipe went away
  // What the last snapshot failed with: a watch with --count ends with it, as one read would.
  let failed: unknown;
  await watchStatus({
    intervalMs: a.interval,
    count: a.count,
    out: process.stdout,
    tty,
    signal: ac.signal,
    render: async () => {
      try {
        const report = read();
        const text = await render(report, !tty);
        failed = undefined;
        return tty && format === 'table' ? `dispatchctl status, every ${a.interval} ms (Ctrl-C to stop)   ${new Date().toISOString()}\n\n${text}` : text;
      } catch (err) {
        failed = err;
        return `${errorLine('failed to read the status', err)}; retrying in ${a.interval} ms\n`;
      }
    },
  });
  if (failed !== undefined && a.count !== undefined && !ac.signal.aborted) fail(`failed to read the status (the last of ${a.count} snapshots)`, failed);
}
