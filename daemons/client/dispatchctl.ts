#!/usr/bin/node
/**
 * dispatchctl: send requests to dispatchd and show its scoreboard. See dispatchctl(1).
 *
 *   dispatchctl [--socket PATH] request TYPE [DATA]   DATA from the argument, or stdin if '-' or absent
 *   dispatchctl status [--json | --format table|json|openmetrics] [--watch [--interval MS] [--count N]]
 *   dispatchctl scale [N]                             show, or set, the number of secondary servers
 *   dispatchctl types [--json]                        every request type, its limits and who serves it
 *   dispatchctl check-config [FILE]                   validate the configuration file and the types
 *   dispatchctl completion                            print the bash completion script
 *
 * Errors: one line on stderr, and the exit code of README "Exit codes".
 */
import fs from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DEFAULT_CONFIG_PATH, loadConfig } from '../common/config.js';
import { DispatchError, reason } from '../common/errors.js';
import { EXIT, exitCodeFor } from '../common/exit-codes.js';
import { stderrIsJournal } from '../common/journal-stream.js';
import { MAX_BODY_BYTES_CEILING } from '../common/frame.js';
import { ScoreboardReader } from '../common/scoreboard.js';
import { liveServedTypes, type ServedTypesFile } from '../common/served-types.js';
import { formatDaemonId, isSecondaryInstance, MAX_SECONDARIES, secondary } from '../common/topology.js';
import { loadTypesFor, type TypeRegistry } from '../common/type-registry.js';
import { checkTypes, unservedTypes } from './check-types.js';
import { formatTypesTable, typesReport } from './types-report.js';
import { VERSION } from '../common/version.js';
import { DEFAULT_SOCKET, DispatchClient } from './client.js';
import { openMetrics } from './metrics.js';
import { pidExists, readStatusReport } from './read-status.js';
import { scale, scaleState, type ScaleState } from './scale.js';
import { formatTable, problems, type StatusReport } from './status.js';
import { watchStatus } from './status-watch.js';

/** What the user of dispatchctl can do about an error, beyond what the server said. */
const HINTS: Partial<Record<string, string>> = {
  TIMEOUT: 'raise --timeout (ms) if the request needs longer',
  DEADLINE_EXCEEDED: 'dispatchctl takes it as --deadline (ms)',
  PAYLOAD_TOO_LARGE: 'send less, or raise max_payload_bytes in /etc/dispatchd/dispatchd.conf',
  BUSY: 'retry later, or raise max_leases / add secondaries (dispatchctl scale N)',
};


/** One line saying what failed, why, what to do, and the error's stable code (no newline). */
function errorLine(what: string, err: unknown): string {
  const de = err instanceof DispatchError ? err : undefined;
  const hint = de && HINTS[de.code] && !reason(err).includes(HINTS[de.code]!) ? `; ${HINTS[de.code]}` : '';
  return `dispatchctl: ${what}: ${reason(err)}${hint}${de ? ` [${de.code}]` : ''}`;
}

function fail(what: string, err: unknown): never {
  // <3>: priority err for journald (sd-daemon(3)), so that `journalctl -p err` shows it.
  process.stderr.write(`${stderrIsJournal() ? '<3>' : ''}${errorLine(what, err)}\n`);
  process.exit(err instanceof DispatchError ? exitCodeFor(err.code) : EXIT.FAILURE);
}

/** `dispatchctl scale` output: how many, which are enabled, which run. */
function describeScale(s: ScaleState): string {
  const list = (xs: number[]) => (xs.length ? xs.join(' ') : 'none');
  return `secondaries: ${s.enabled.length} enabled (${list(s.enabled)}), running: ${list(s.running)}${s.suiteActive ? '' : ' (dispatchd.target is not active)'}\n`;
}

/** What the user typed for --NAME (yargs has turned 'abc' into NaN by the time checks run). */
function rawOption(name: string): string | undefined {
  const args = process.argv;
  for (let i = args.length - 1; i >= 0; i--) {
    if (args[i] === `--${name}`) return args[i + 1];
    if (args[i]!.startsWith(`--${name}=`)) return args[i]!.slice(name.length + 3);
  }
  return undefined;
}

/** A yargs check: the option, when given, is a whole number of ms in [min, max]. */
function wholeMs(name: string, min: number, max: number) {
  return (a: Record<string, unknown>) => {
    const v = a[name];
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max)) {
      throw new Error(`--${name} takes a whole number of milliseconds from ${min} to ${max}, got '${rawOption(name) ?? String(v)}'`);
    }
    return true;
  };
}

/**
 * Reads standard input whole, but stops at the first byte past `maxBytes` (bytes): a 1 GiB
 * pipe into a server that takes 64 MiB is refused at once, not after buffering all of it.
 *
 * @throws DispatchError PAYLOAD_TOO_LARGE past `maxBytes`; the stream's error otherwise.
 */
function readStdin(maxBytes: number, limitSource: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        process.stdin.off('data', onData);
        process.stdin.destroy();
        reject(new DispatchError('PAYLOAD_TOO_LARGE', `standard input is over the ${maxBytes}-byte request limit (${limitSource})`, { fields: { max_bytes: maxBytes } }));
        return;
      }
      chunks.push(c);
    };
    process.stdin.on('data', onData);
    process.stdin.on('end', () => resolve(Buffer.concat(chunks, size)));
    process.stdin.on('error', reject);
  });
}

/**
 * The most a request may carry, from the configuration's `[secondary] max_payload_bytes`.
 * A missing default file means the defaults; an unreadable or invalid one leaves the check
 * to the server (the protocol's ceiling); a missing or bad file named with --config throws.
 *
 * @throws DispatchError CONFIG_UNREADABLE, CONFIG_INVALID (only for an explicit file).
 */
function payloadLimit(file: string | undefined): { maxBytes: number; source: string } {
  try {
    const path = file ?? DEFAULT_CONFIG_PATH;
    const c = loadConfig(path, file !== undefined);
    return { maxBytes: c.secondary.max_payload_bytes, source: fs.existsSync(path) ? `max_payload_bytes, from ${path}` : `the default max_payload_bytes; ${path} is absent` };
  } catch (err) {
    if (file !== undefined) throw err;
    return { maxBytes: MAX_BODY_BYTES_CEILING, source: "the protocol's ceiling" };
  }
}

function writeStdout(b: Buffer): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(b, (err) => (err ? reject(err) : resolve())));
}

/** Default scoreboard path: from the configuration file if it is readable, else the built-in one. */
function defaultScoreboard(): string {
  try {
    return loadConfig(DEFAULT_CONFIG_PATH).paths.scoreboard;
  } catch {
    return '/dev/shm/dispatchd.scoreboard';
  }
}

/** The declared type names, for completion (read only then: not on every start); none when the configuration cannot be read. */
function typeNames(): string[] {
  try {
    return loadTypesFor(loadConfig(DEFAULT_CONFIG_PATH)).names();
  } catch {
    return [];
  }
}

/** What every running secondary publishes about the types it serves (none when the suite is not running). */
function servedTypes(scoreboard: string): ServedTypesFile[] {
  try {
    const reader = new ScoreboardReader(scoreboard);
    try {
      return liveServedTypes(scoreboard, reader.read().slots, pidExists);
    } finally {
      reader.close();
    }
  } catch {
    return [];
  }
}

/**
 * yargs-parser reads a lone '-' as an option; map it to a sentinel before parsing. The
 * sentinel starts with NUL, which no real command-line argument can contain.
 */
const STDIN = '\0-';

const argv = hideBin(process.argv).map((a) => (a === '-' ? STDIN : a));

await yargs(argv)
  .parserConfiguration({ 'populate--': true })
  .scriptName('dispatchctl')
  .usage('$0 <command> [options]\n\nSend requests to dispatchd and show its scoreboard.')
  .option('socket', { type: 'string', default: DEFAULT_SOCKET, describe: "the main server's socket", global: true })
  .command(
    'request <type> [data]',
    'send one request of a declared type (dispatchctl types lists them; completion offers them); DATA from the argument, or standard input when it is - or absent; the result\'s bytes go to standard output',
    (y) =>
      y
        .positional('type', { type: 'string', demandOption: true, describe: 'request type' })
        .positional('data', { type: 'string', describe: "request data, or '-' for standard input (DATA starting with '-' goes after '--')" })
        .option('timeout', { type: 'number', default: 60_000, describe: 'total time budget for the request, retries included (ms)' })
        .option('deadline', { type: 'number', describe: "deadline for running the request on the secondary (ms; default: the server's)" })
        .option('config', { type: 'string', describe: `the configuration whose max_payload_bytes caps DATA from standard input (default ${DEFAULT_CONFIG_PATH})` })
        .option('verbose', { type: 'boolean', default: false, alias: 'v', describe: 'report retries, and which secondary served the request, on standard error' })
        .check(wholeMs('timeout', 1, 24 * 3_600_000))
        .check(wholeMs('deadline', 1, 3_600_000)),
    async (a) => {
      let data: Buffer;
      try {
        // DATA that starts with a dash goes after '--': dispatchctl request echo -- -n
        const rest = (a['--'] as Array<string | number> | undefined)?.[0];
        const given = a.data ?? (rest === undefined ? undefined : String(rest));
        if (given === undefined || given === STDIN) {
          const limit = payloadLimit(a.config);
          data = await readStdin(limit.maxBytes, limit.source);
        } else {
          data = Buffer.from(given, 'utf8');
        }
      } catch (err) {
        fail(`'${a.type}' request not sent`, err);
      }
      const client = new DispatchClient({
        socket: a.socket,
        timeoutMs: a.timeout,
        deadlineMs: a.deadline,
        onRetry: a.verbose ? ({ attempt, error, waitMs }) => process.stderr.write(`dispatchctl: attempt ${attempt} failed: ${error.message} [${error.code}]; retrying in ${waitMs} ms\n`) : undefined,
      });
      try {
        const info = await client.requestWithInfo(a.type, data);
        if (a.verbose) process.stderr.write(`dispatchctl: served by ${isSecondaryInstance(info.secondary) ? formatDaemonId(secondary(info.secondary)) : `secondary ${info.secondary}`} (generation ${info.generation}) in ${info.attempts} attempt${info.attempts === 1 ? '' : 's'}\n`);
        await writeStdout(info.result);
      } catch (err) {
        fail(`'${a.type}' request failed`, err);
      }
    },
  )
  .command(
    'status',
    'show every daemon from the scoreboard: name, pid, state, active leases, requests, failures, latency, heartbeat age, restarts',
    (y) =>
      y
        .option('json', { type: 'boolean', describe: 'one JSON object with a daemons array (same as --format json)' })
        .option('format', { choices: ['table', 'json', 'openmetrics'] as const, describe: 'table (default), json, or OpenMetrics text for a scraper' })
        .option('watch', { type: 'boolean', default: false, alias: 'w', describe: 'refresh every --interval: in place on a terminal, one snapshot after another on a pipe' })
        .option('interval', { type: 'number', default: 1000, describe: 'time between --watch snapshots (ms)' })
        .option('count', { type: 'number', describe: 'with --watch: stop after this many snapshots' })
        .option('scoreboard', { type: 'string', describe: 'the scoreboard file (default: from /etc/dispatchd/dispatchd.conf)' })
        .conflicts('json', 'format')
        .check(wholeMs('interval', 100, 3_600_000))
        .check((a) => {
          if (a.count !== undefined && !(Number.isInteger(a.count) && a.count >= 1)) throw new Error('--count must be a whole number of at least 1');
          return true;
        }),
    async (a) => {
      const file = a.scoreboard ?? defaultScoreboard();
      const format = a.format ?? (a.json ? 'json' : 'table');
      const read = (): StatusReport => readStatusReport(file);
      const render = async (report: StatusReport, compact: boolean): Promise<string> => {
        if (format === 'openmetrics') return openMetrics(report);
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
      const tty = process.stdout.isTTY === true;
      const ac = new AbortController();
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort());
      process.stdout.on('error', () => ac.abort()); // the reader of the pipe went away
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
            return tty && format === 'table' ? `dispatchctl status, every ${a.interval} ms (Ctrl-C to stop)   ${new Date().toISOString()}\n\n${text}` : text;
          } catch (err) {
            return `${errorLine('failed to read the status', err)}; retrying in ${a.interval} ms\n`;
          }
        },
      });
    },
  )
  .command(
    'scale [count]',
    `show, or set, the number of secondary servers (1..${MAX_SECONDARIES}): enables dispatchd-secondary@1..N, starts them if the suite runs, stops and disables the others (as root)`,
    (y) =>
      y.positional('count', { type: 'number', describe: 'the number of secondaries; absent: show the current number' }).check((a) => {
        if (a.count !== undefined && !isSecondaryInstance(a.count)) throw new Error(`the number of secondaries must be a whole number 1..${MAX_SECONDARIES}`);
        return true;
      }),
    async (a) => {
      try {
        if (a.count === undefined) {
          await writeStdout(Buffer.from(describeScale(await scaleState())));
          return;
        }
        const { after } = await scale(a.count);
        await writeStdout(Buffer.from(describeScale(after)));
      } catch (err) {
        fail(a.count === undefined ? 'failed to read the number of secondaries' : `failed to scale to ${a.count} secondaries`, err);
      }
    },
  )
  .command(
    'types',
    'list every request type: handler, limits, idempotent, where it is declared, which secondaries serve it, requests and failures',
    (y) =>
      y
        .option('json', { type: 'boolean', default: false, describe: 'one JSON object with a types array' })
        .option('config', { type: 'string', describe: `the configuration naming the types directories (default ${DEFAULT_CONFIG_PATH})` }),
    async (a) => {
      let registry: TypeRegistry;
      let scoreboard: string;
      try {
        const config = loadConfig(a.config ?? DEFAULT_CONFIG_PATH, a.config !== undefined);
        registry = loadTypesFor(config);
        scoreboard = config.paths.scoreboard;
      } catch (err) {
        fail('failed to read the request types', err);
      }
      const rows = typesReport(registry, servedTypes(scoreboard));
      await writeStdout(Buffer.from(a.json ? JSON.stringify({ types: rows }, null, 2) + '\n' : formatTypesTable(rows)));
    },
  )
  .command(
    'check-config [file]',
    `check a configuration file (default ${DEFAULT_CONFIG_PATH}) and the request types it names: exit 78 with the file, line and key when something is invalid`,
    (y) => y.positional('file', { type: 'string', describe: 'the file to check' }),
    async (a) => {
      const file = a.file ?? DEFAULT_CONFIG_PATH;
      let types: TypeRegistry;
      let unserved: string[];
      try {
        const config = loadConfig(file, a.file !== undefined);
        types = await checkTypes(config);
        unserved = unservedTypes(config, types);
      } catch (err) {
        fail('configuration refused', err);
      }
      for (const name of unserved) process.stderr.write(`dispatchctl: warning: type '${name}' is declared but no serve list names it ([secondary] serve, [secondary.instance.N] serve): no secondary will run it\n`);
      await writeStdout(Buffer.from(`dispatchctl: configuration '${file}' is valid (${types.size} request types: ${types.names().join(', ') || 'none'})\n`));
    },
  )
  .completion('completion', 'print a bash completion script (the package installs it as /usr/share/bash-completion/completions/dispatchctl)', (current: string, a: { _: Array<string | number> }, defaultCompletion: () => void, done: (completions: string[]) => void) => {
    // `dispatchctl request <TAB>` offers the declared types; everything else as yargs would.
    const words = a._.map(String);
    if (words[0] === 'request' && words.length === 2) done(typeNames().filter((n) => n.startsWith(current)));
    else defaultCompletion();
  })
  .demandCommand(1, 'name a command: request, status, types, scale, check-config or completion')
  .strict()
  .version(VERSION)
  .help()
  .alias('h', 'help')
  .fail((msg, err) => {
    // yargs passes a message for bad usage (a failed .check() included); none for an error
    // thrown by a command, which is not a usage error.
    if (err && !msg) fail('failed', err);
    process.stderr.write(`dispatchctl: ${msg}; see 'dispatchctl --help'\n`);
    process.exit(EXIT.USAGE);
  })
  .parseAsync();
