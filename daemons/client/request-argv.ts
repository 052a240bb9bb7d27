/**
 * The command line's fast path: recognises the common forms of `dispatchctl request` without
 * loading yargs (about 80 ms of CPU at every start), so that a request reaches the socket
 * with the least code loaded. It takes only what it can read exactly as yargs would
 * (dispatchctl-cli.ts): the options of `request` given once each with a valid value after
 * the command name (only --socket before it), and the positionals `request TYPE [DATA]`. Anything else (help, completion, `--`, a bad
 * value, a repeated or unknown option, another command) is left to yargs, which answers
 * with its own help text and usage errors.
 *
 * test/unit/client/request-argv.test.ts checks that yargs reads each accepted command line
 * the same way.
 */
import { DEFAULT_SOCKET } from './client.js';
import type { RequestCommand } from './request-command.js';

/** --timeout: default and range (ms). */
export const DEFAULT_TIMEOUT_MS = 60_000;
export const TIMEOUT_RANGE_MS = [1, 24 * 3_600_000] as const;
/** --deadline: range (ms). */
export const DEADLINE_RANGE_MS = [1, 3_600_000] as const;

/** A whole number of ms in `range` written plainly (no sign, exponent or leading zero), else undefined. */
function plainMs(v: string, [min, max]: readonly [number, number]): number | undefined {
  if (!/^[1-9][0-9]{0,9}$/.test(v)) return undefined;
  const n = Number(v);
  return n >= min && n <= max ? n : undefined;
}

/** What the fast path takes: `--name value` or `--name=value` of these options. */
const VALUE_OPTIONS = ['socket', 'timeout', 'deadline', 'config'] as const;
type ValueOption = (typeof VALUE_OPTIONS)[number];

/**
 * The `dispatchctl request` command in `args` (process.argv without node and the script),
 * or undefined when yargs is to read it.
 */
export function parseRequestArgv(args: readonly string[]): RequestCommand | undefined {
  const values: Partial<Record<ValueOption, string>> = {};
  let verbose: boolean | undefined;
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    // Before the command name only the global --socket: yargs refuses request's own options there.
    if (positionals.length === 0 && arg !== '--socket' && !arg.startsWith('--socket=') && arg.startsWith('-')) return undefined;
    if (arg === '--verbose' || arg === '-v') {
      // yargs would take a following 'true' or 'false' as the flag's value.
      const next = args[i + 1];
      if (verbose !== undefined || next === 'true' || next === 'false') return undefined;
      verbose = true;
      continue;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = (eq < 0 ? arg.slice(2) : arg.slice(2, eq)) as ValueOption;
      if (!VALUE_OPTIONS.includes(name) || name in values) return undefined;
      const value = eq < 0 ? args[++i] : arg.slice(eq + 1);
      // A value that is absent, empty or looks like an option is yargs's to read.
      if (value === undefined || value === '' || value.startsWith('-')) return undefined;
      values[name] = value;
      continue;
    }
    // Other dashed words ('-', '-x', negative numbers) are yargs's.
    if (arg === '' || arg.startsWith('-')) return undefined;
    positionals.push(arg);
  }
  if (positionals[0] !== 'request' || positionals.length < 2 || positionals.length > 3) return undefined;
  const timeout = values.timeout === undefined ? DEFAULT_TIMEOUT_MS : plainMs(values.timeout, TIMEOUT_RANGE_MS);
  const deadline = values.deadline === undefined ? undefined : plainMs(values.deadline, DEADLINE_RANGE_MS);
  if (timeout === undefined || (values.deadline !== undefined && deadline === undefined)) return undefined;
  return { socket: values.socket ?? DEFAULT_SOCKET, type: positionals[1]!, data: positionals[2], timeout, deadline, config: values.config, verbose: verbose ?? false };
}
