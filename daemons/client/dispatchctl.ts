#!/usr/bin/node
/**
 * dispatchctl: send requests to dispatchd and show its scoreboard. See dispatchctl(1).
 *
 *   dispatchctl [--socket PATH] request TYPE [DATA]   DATA from the argument, or stdin if '-' or absent
 *   dispatchctl status [--json]
 *
 * Errors: one line on stderr, and the exit code of README "Exit codes".
 */
import fs from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DEFAULT_CONFIG_PATH, loadConfig } from '../common/config.js';
import { DispatchError, reason } from '../common/errors.js';
import { EXIT, exitCodeFor } from '../common/exit-codes.js';
import { REQUEST_TYPES } from '../common/protocol.js';
import { ScoreboardReader } from '../common/scoreboard.js';
import { DEFAULT_SOCKET, DispatchClient } from './client.js';
import { formatTable, problems, statusReport } from './status.js';

/** What the user of dispatchctl can do about an error, beyond what the server said. */
const HINTS: Partial<Record<string, string>> = {
  TIMEOUT: 'raise --timeout (ms) if the request needs longer',
  DEADLINE_EXCEEDED: "raise --deadline (ms), up to the server's request_deadline_ms",
  PAYLOAD_TOO_LARGE: 'send less, or raise max_payload_bytes in /etc/dispatchd/dispatchd.conf',
  BUSY: 'retry later, or raise max_leases / add secondaries',
};

function fail(what: string, err: unknown): never {
  const de = err instanceof DispatchError ? err : undefined;
  const hint = de && HINTS[de.code] && !reason(err).includes(HINTS[de.code]!) ? `; ${HINTS[de.code]}` : '';
  process.stderr.write(`dispatchctl: ${what}: ${reason(err)}${hint}${de ? ` [${de.code}]` : ''}\n`);
  process.exit(de ? exitCodeFor(de.code) : EXIT.FAILURE);
}

/** A yargs check: the option, when given, is a whole number of ms in [min, max]. */
function wholeMs(name: string, min: number, max: number) {
  return (a: Record<string, unknown>) => {
    const v = a[name];
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max)) {
      throw new Error(`--${name} takes a whole number of milliseconds from ${min} to ${max}, got '${String(v)}'`);
    }
    return true;
  };
}

function readStdin(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (c: Buffer) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks)));
    process.stdin.on('error', reject);
  });
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

/**
 * yargs-parser reads a lone '-' as an option; map it to a sentinel before parsing. The
 * sentinel starts with NUL, which no real command-line argument can contain.
 */
const STDIN = '\0-';

/** The package's version, from the package.json next to the build. */
const VERSION = (JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const argv = hideBin(process.argv).map((a) => (a === '-' ? STDIN : a));

await yargs(argv)
  .parserConfiguration({ 'populate--': true })
  .scriptName('dispatchctl')
  .usage('$0 <command> [options]\n\nSend requests to dispatchd and show its scoreboard.')
  .option('socket', { type: 'string', default: DEFAULT_SOCKET, describe: "the main server's socket", global: true })
  .command(
    'request <type> [data]',
    `send one request (types: ${REQUEST_TYPES.join(', ')}); DATA from the argument, or standard input when it is - or absent; the result's bytes go to standard output`,
    (y) =>
      y
        .positional('type', { type: 'string', demandOption: true, describe: 'request type' })
        .positional('data', { type: 'string', describe: "request data, or '-' for standard input (DATA starting with '-' goes after '--')" })
        .option('timeout', { type: 'number', default: 60_000, describe: 'total time budget for the request, retries included (ms)' })
        .option('deadline', { type: 'number', describe: "deadline for running the request on the secondary (ms; default: the server's)" })
        .option('verbose', { type: 'boolean', default: false, alias: 'v', describe: 'report retries on standard error' })
        .check(wholeMs('timeout', 1, 24 * 3_600_000))
        .check(wholeMs('deadline', 1, 3_600_000)),
    async (a) => {
      let data: Buffer;
      try {
        // DATA that starts with a dash goes after '--': dispatchctl request echo -- -n
        const rest = (a['--'] as Array<string | number> | undefined)?.[0];
        const given = a.data ?? (rest === undefined ? undefined : String(rest));
        data = given === undefined || given === STDIN ? await readStdin() : Buffer.from(given, 'utf8');
      } catch (err) {
        fail('failed to read standard input', err);
      }
      const client = new DispatchClient({
        socket: a.socket,
        timeoutMs: a.timeout,
        deadlineMs: a.deadline,
        onRetry: a.verbose ? ({ attempt, error, waitMs }) => process.stderr.write(`dispatchctl: attempt ${attempt} failed: ${error.message} [${error.code}]; retrying in ${waitMs} ms\n`) : undefined,
      });
      try {
        const result = await client.request(a.type, data);
        await writeStdout(result);
      } catch (err) {
        fail(`'${a.type}' request failed`, err);
      }
    },
  )
  .command(
    'status',
    'show every daemon from the scoreboard: name, pid, state, requests, heartbeat age, restarts',
    (y) =>
      y
        .option('json', { type: 'boolean', default: false, describe: 'one JSON object with a daemons array' })
        .option('scoreboard', { type: 'string', describe: 'the scoreboard file (default: from /etc/dispatchd/dispatchd.conf)' }),
    async (a) => {
      const file = a.scoreboard ?? defaultScoreboard();
      let report;
      try {
        const reader = new ScoreboardReader(file);
        try {
          report = statusReport(file, reader.read(), Date.now(), (pid) => pid > 0 && fs.existsSync(`/proc/${pid}`));
        } finally {
          reader.close();
        }
      } catch (err) {
        fail('failed to read the status', err);
      }
      await writeStdout(Buffer.from(a.json ? JSON.stringify(report, null, 2) + '\n' : formatTable(report)));
      if (!a.json) for (const p of problems(report)) process.stderr.write(`dispatchctl: ${p}\n`);
    },
  )
  .demandCommand(1, 'name a command: request or status')
  .strict()
  .version(VERSION)
  .help()
  .alias('h', 'help')
  .fail((msg, err) => {
    // Only the command line reaches here (a failed check or parse): the handlers report
    // their own errors through fail().
    process.stderr.write(`dispatchctl: ${msg ?? reason(err)}; see 'dispatchctl --help'\n`);
    process.exit(EXIT.USAGE);
  })
  .parseAsync();
