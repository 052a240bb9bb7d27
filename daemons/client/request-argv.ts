/**
 * The command line's fast path: recognises the common forms of `dispatchctl request` with
 * Node.js's own argument parser (`util.parseArgs`, node:util, already loaded with Node.js:
 * no measurable cost) instead of yargs, which costs about 65 ms of wall time at every start
 * (measured here on Node.js 20: `node -e 0` 62 ms, requiring yargs +65 ms), so that a
 * request reaches the socket with the least code loaded. It takes only what it can read
 * exactly as yargs would (dispatchctl-cli.ts): the options of `request` given once each with
 * a valid value after the command name (only --socket before it), and the positionals
 * `request TYPE [DATA]` (DATA `-`: standard input, as absent). Anything else (help,
 * completion, `--`, a bad value, a repeated or unknown option, another command) is left to
 * yargs, which answers with its own help text and usage errors.
 *
 * test/unit/client/request-argv.test.ts checks that yargs reads each accepted command line
 * the same way.
 */
import { parseArgs } from 'node:util';
import { MAX_DEADLINE_MS } from '../common/timing.js';
import { DEFAULT_SOCKET } from './client.js';
import type { RequestCommand } from './request-command.js';

/** --timeout: default and range (ms). */
export const DEFAULT_TIMEOUT_MS = 60_000;
export const TIMEOUT_RANGE_MS = [1, 24 * 3_600_000] as const;
/** --deadline: range (ms). */
export const DEADLINE_RANGE_MS = [1, MAX_DEADLINE_MS] as const;

/** A whole number of ms in `range` written plainly (no sign, exponent or leading zero), else undefined. */
function plainMs(v: string, [min, max]: readonly [number, number]): number | undefined {
  if (!/^[1-9][0-9]{0,9}$/.test(v)) return undefined;
  const n = Number(v);
  return n >= min && n <= max ? n : undefined;
}

/**
 * The options of `request` and the global --socket, as dispatchctl-cli.ts declares them to
 * yargs. `multiple` only so that a repeated option can be seen and left to yargs.
 */
const OPTIONS = {
  socket: { type: 'string', multiple: true },
  timeout: { type: 'string', multiple: true },
  deadline: { type: 'string', multiple: true },
  config: { type: 'string', multiple: true },
  verbose: { type: 'boolean', short: 'v', multiple: true },
} as const;

/** parseArgs's own usage errors (unknown option, missing value, ...): yargs is to answer them. */
function isParseArgsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

/**
 * The `dispatchctl request` command in `args` (process.argv without node and the script),
 * or undefined when yargs is to read it.
 */
export function parseRequestArgv(args: readonly string[]): RequestCommand | undefined {
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: OPTIONS, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    if (isParseArgsError(err)) return undefined;
    throw err;
  }
  const { values, positionals, tokens } = parsed;
  let seenCommand = false;
  let positional = 0;
  for (const [i, token] of tokens.entries()) {
    // `--`: DATA after it is yargs's to read.
    if (token.kind === 'option-terminator') return undefined;
    if (token.kind === 'positional') {
      // '' is yargs's, and '-' anywhere but as DATA (where it means standard input); other
      // dashed words parseArgs refused above.
      if (token.value === '' || (token.value === '-' && positional !== 2)) return undefined;
      positional++;
      seenCommand = true;
      continue;
    }
    // Before the command name only the global --socket: yargs refuses request's own options there.
    if (!seenCommand && token.name !== 'socket') return undefined;
    if (token.name === 'verbose') {
      // yargs would take a following 'true' or 'false' as the flag's value.
      const next = tokens[i + 1];
      if (next?.kind === 'positional' && (next.value === 'true' || next.value === 'false')) return undefined;
      continue;
    }
    // A value that is empty or looks like an option is yargs's to read.
    if (token.value === undefined || token.value === '' || token.value.startsWith('-')) return undefined;
  }
  // An option given twice is yargs's (the last one holds there).
  if (Object.values(values).some((v) => v.length > 1)) return undefined;
  if (positionals[0] !== 'request' || positionals.length < 2 || positionals.length > 3) return undefined;
  const one = (v: string[] | undefined) => v?.[0];
  const timeout = values.timeout === undefined ? DEFAULT_TIMEOUT_MS : plainMs(one(values.timeout)!, TIMEOUT_RANGE_MS);
  const deadline = values.deadline === undefined ? undefined : plainMs(one(values.deadline)!, DEADLINE_RANGE_MS);
  if (timeout === undefined || (values.deadline !== undefined && deadline === undefined)) return undefined;
  return { socket: one(values.socket) ?? DEFAULT_SOCKET, type: positionals[1]!, data: positionals[2] === '-' ? undefined : positionals[2], timeout, deadline, config: one(values.config), verbose: values.verbose !== undefined };
}
