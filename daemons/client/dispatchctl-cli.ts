/**
 * dispatchctl's command line as yargs reads it: the commands, their options, help, usage
 * errors and bash completion. Each command's code is loaded with import() only when that
 * command runs (request-command.ts, status-command.ts, scale-command.ts,
 * config-commands.ts). dispatchctl.ts comes here for every command line that its fast path
 * (request-argv.ts) leaves.
 */
import path from 'node:path';
import yargs from 'yargs';
import { DEFAULT_CONFIG_PATH } from '../common/config-path.js';
import { EXIT } from '../common/exit-codes.js';
import { isSecondaryInstance, MAX_SECONDARIES } from '../common/topology.js';
import { VERSION } from '../common/version.js';
import { consoleLogToStdout, fail, guardStdout, oneLine } from './cli-output.js';
import { DEFAULT_SOCKET } from './client.js';
import { DEADLINE_RANGE_MS, DEFAULT_TIMEOUT_MS, TIMEOUT_RANGE_MS } from './request-argv.js';
import type { RequestCommand } from './request-command.js';

/** What runs each command: the modules loaded on use (tests replace them). */
export interface CommandRunners {
  request(a: RequestCommand): Promise<void>;
}

const LOADED: CommandRunners = {
  request: async (a) => (await import('./request-command.js')).runRequest(a),
};

/** What the user typed for --NAME (yargs has turned 'abc' into NaN by the time checks run). */
function rawOption(args: readonly string[], name: string): string | undefined {
  for (let i = args.length - 1; i >= 0; i--) {
    if (args[i] === `--${name}`) return args[i + 1];
    if (args[i]!.startsWith(`--${name}=`)) return args[i]!.slice(name.length + 3);
  }
  return undefined;
}

/**
 * A yargs check: the option, when given, is a whole number of ms in [min, max], written
 * plainly as the fast path takes it (request-argv.ts: digits, no sign, exponent, fraction,
 * hex or leading zero), so that both read the same command lines.
 */
function wholeMs(args: readonly string[], name: string, [min, max]: readonly [number, number]) {
  return (a: Record<string, unknown>) => {
    const v = a[name];
    const raw = rawOption(args, name);
    if (v !== undefined && (!(typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) || (raw !== undefined && !/^[1-9][0-9]*$/.test(raw)))) {
      throw new Error(`--${name} takes a whole number of milliseconds from ${min} to ${max}, got '${raw ?? String(v)}'`);
    }
    return true;
  };
}

/**
 * yargs-parser reads a lone '-' as an option; map it to a sentinel before parsing. The
 * sentinel starts with NUL, which no real command-line argument can contain.
 */
const STDIN = '\0-';

/** yargs's option for a completion request (the script that `dispatchctl completion` prints uses it). */
const COMPLETIONS = '--get-yargs-completions';

/**
 * `dispatchctl request <TAB>`: the declared request types that start with the word typed,
 * one per line; true when `args` asked for that. The completion script passes bash's
 * COMP_WORDS after COMPLETIONS, the command's own name first. Answered here rather than in
 * yargs's completion function, which cannot wait for the types: yargs goes on to validate the
 * command line (in strict mode: an error) before an asynchronous answer comes.
 */
async function completeRequestType(args: readonly string[]): Promise<boolean> {
  if (args[0] !== COMPLETIONS) return false;
  const words = args.slice(1);
  if (words.length > 0 && path.basename(words[0]!) === 'dispatchctl') words.shift();
  if (words.length !== 2 || words[0] !== 'request') return false;
  const { typeNames } = await import('./config-commands.js');
  process.stdout.write(typeNames().filter((n) => n.startsWith(words[1]!)).map((n) => `${n}\n`).join(''));
  return true;
}

/** Parses `args` (process.argv without node and the script) and runs the command. */
export async function runCli(args: readonly string[], run: CommandRunners = LOADED): Promise<void> {
  guardStdout();
  if (await completeRequestType(args)) return;
  consoleLogToStdout();
  const argv = args.map((a) => (a === '-' ? STDIN : a));
  await yargs(argv)
    // An option given twice: the last one holds, as in most commands (not an array of both).
    .parserConfiguration({ 'populate--': true, 'duplicate-arguments-array': false })
    .scriptName('dispatchctl')
    .usage('$0 <command> [options]\n\nSend requests to dispatchd and show its scoreboard.')
    .option('socket', { requiresArg: true, type: 'string', default: DEFAULT_SOCKET, describe: "the main server's socket", global: true })
    .command(
      'request <type> [data]',
      'send one request of a declared type (dispatchctl types lists them; completion offers them); DATA from the argument, or standard input when it is - or absent; the result\'s bytes go to standard output',
      (y) =>
        y
          .positional('type', { type: 'string', demandOption: true, describe: 'request type' })
          .positional('data', { type: 'string', describe: "request data, or '-' for standard input (DATA starting with '-' goes after '--')" })
          .option('timeout', { requiresArg: true, type: 'number', default: DEFAULT_TIMEOUT_MS, describe: 'total time budget for the request, retries included (ms)' })
          .option('deadline', { requiresArg: true, type: 'number', describe: "deadline for running the request on the secondary (ms; default: the type's deadline_ms)" })
          .option('config', { requiresArg: true, type: 'string', describe: `the configuration whose max_payload_bytes caps DATA from standard input (default ${DEFAULT_CONFIG_PATH})` })
          .option('verbose', { type: 'boolean', default: false, alias: 'v', describe: 'report retries, and which secondary served the request, on standard error' })
          .check((a) => {
            if (a.type === '') throw new Error('TYPE is empty: name a request type (dispatchctl types lists them)');
            return true;
          })
          .check(wholeMs(args, 'timeout', TIMEOUT_RANGE_MS))
          .check(wholeMs(args, 'deadline', DEADLINE_RANGE_MS)),
      async (a) => {
        // DATA that starts with a dash goes after '--': dispatchctl request echo -- -n
        const rest = (a['--'] as Array<string | number> | undefined)?.[0];
        const given = a.data ?? (rest === undefined ? undefined : String(rest));
        await run.request({ socket: a.socket, type: a.type, data: given === STDIN ? undefined : given, timeout: a.timeout, deadline: a.deadline, config: a.config, verbose: a.verbose });
      },
    )
    .command(
      'status',
      'show every daemon from the scoreboard: name, pid, state, active leases, requests, failures, latency, heartbeat age, restarts',
      (y) =>
        y
          .option('json', { type: 'boolean', describe: 'one JSON object with a daemons array (same as --format json)' })
          .option('format', { requiresArg: true, choices: ['table', 'json', 'openmetrics'] as const, describe: 'table (default), json, or OpenMetrics text for a scraper' })
          .option('watch', { type: 'boolean', default: false, alias: 'w', describe: 'refresh every --interval: in place on a terminal, one snapshot after another on a pipe' })
          .option('interval', { requiresArg: true, type: 'number', default: 1000, describe: 'time between --watch snapshots (ms)' })
          .option('count', { requiresArg: true, type: 'number', describe: 'with --watch: stop after this many snapshots' })
          .option('scoreboard', { requiresArg: true, type: 'string', describe: 'the scoreboard file (default: from /etc/dispatchd/dispatchd.conf)' })
          .conflicts('json', 'format')
          .check((a) => {
            // Both have a meaning only with --watch (yargs's implies() counts --interval's default as given).
            const given = (['interval', 'count'] as const).filter((o) => rawOption(args, o) !== undefined);
            if (!a.watch && given.length) throw new Error(`--${given[0]} goes with --watch (dispatchctl status --watch --${given[0]} …)`);
            return true;
          })
          .check(wholeMs(args, 'interval', [100, 3_600_000]))
          .check((a) => {
            if (a.count !== undefined && !(Number.isInteger(a.count) && a.count >= 1)) throw new Error('--count must be a whole number of at least 1');
            return true;
          }),
      async (a) => {
        const { runStatus } = await import('./status-command.js');
        await runStatus({ format: a.format ?? (a.json ? 'json' : 'table'), watch: a.watch, interval: a.interval, count: a.count, scoreboard: a.scoreboard });
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
      async (a) => (await import('./scale-command.js')).runScale({ count: a.count }),
    )
    .command(
      'types',
      'list every request type: handler, limits, idempotent, which secondaries serve it, requests and failures (--json adds where each is declared)',
      (y) =>
        y
          .option('json', { type: 'boolean', default: false, describe: 'one JSON object with a types array' })
          .option('config', { requiresArg: true, type: 'string', describe: `the configuration naming the types directories (default ${DEFAULT_CONFIG_PATH})` }),
      async (a) => (await import('./config-commands.js')).runTypes({ json: a.json, config: a.config }),
    )
    .command(
      'check-config [file]',
      `check a configuration file (default ${DEFAULT_CONFIG_PATH}) and the request types it names: exit 78 with the file, line and key when something is invalid`,
      (y) => y.positional('file', { type: 'string', describe: 'the file to check' }),
      async (a) => (await import('./config-commands.js')).runCheckConfig({ file: a.file }),
    )
    // `dispatchctl request <TAB>` is answered before yargs (completeRequestType); the rest here.
    .completion('completion', 'print a bash completion script (the package installs it as /usr/share/bash-completion/completions/dispatchctl)')
    .demandCommand(1, 'name a command: request, status, types, scale, check-config or completion')
    .strict()
    .version(VERSION)
    .help()
    .alias('h', 'help')
    .fail((msg, err) => {
      // yargs passes a message for bad usage (a failed .check() included); none for an error
      // thrown by a command, which is not a usage error.
      if (err && !msg) fail('failed', err);
      // yargs's own messages may take several lines ("Invalid values:\n  Argument: …"): one.
      // An unknown option after `request` is most often DATA that starts with '-' (README).
      const dashData = argv.includes('request') && /^Unknown arguments?: /.test(msg) ? "; DATA that starts with '-' goes after '--' (dispatchctl request TYPE -- -DATA)" : '';
      process.stderr.write(`dispatchctl: ${oneLine(msg.replace(/\s*\n\s*/g, ' '))}${dashData}; see 'dispatchctl --help'\n`);
      process.exit(EXIT.USAGE);
    })
    .parseAsync();
}
