/**
 * dispatchctl's output: results to standard output, errors as one line on standard error
 * with the exit code of README "Exit codes". Loads nothing beyond the error codes, so that
 * every command, `request` first, can use it.
 */
import fs from 'node:fs';
import { format } from 'node:util';
import { DispatchError, reason } from '../common/errors.js';
import { EXIT, exitCodeFor } from '../common/exit-codes.js';
import { stderrIsJournal } from '../common/journal-stream.js';

/** What the user of dispatchctl can do about an error, beyond what the server said. */
const HINTS: Partial<Record<string, string>> = {
  TIMEOUT: 'raise --timeout (ms) if the request needs longer',
  DEADLINE_EXCEEDED: 'dispatchctl takes it as --deadline (ms)',
  PAYLOAD_TOO_LARGE: "send less, or raise max_payload_bytes (a type's own where its file sets one, in /etc/dispatchd/types.d; the package's built-in types, in /usr/share/dispatchd/types.d, are not edited; else [secondary] max_payload_bytes in /etc/dispatchd/dispatchd.conf)",
  BUSY: 'retry later, or raise max_leases / add secondaries (dispatchctl scale N)',
  CONFIG_UNREADABLE: 'check the path, and that this user may read it (the installed file is readable by all; run as root for a file of root only)',
};

/**
 * Control characters (C0 and DEL) written as JSON escapes (`\n`, `\u001b`): a type name,
 * path or DATA quoted in a message stays on its line and cannot drive the terminal.
 */
export function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === '\u007f' ? '\\u007f' : JSON.stringify(c).slice(1, -1)));
}

/** One line saying what failed, why, what to do, and the error's stable code (no newline). */
export function errorLine(what: string, err: unknown): string {
  const de = err instanceof DispatchError ? err : undefined;
  const why = reason(err);
  const hint = de ? HINTS[de.code] : undefined;
  return oneLine(`dispatchctl: ${what}: ${why}${hint ? withHint(why, hint) : ''}${de ? ` [${de.code}]` : ''}`);
}

/**
 * What `hint` adds to the message `why`: nothing when it says it already, only the rest when
 * the message already ends with the hint's first clause (the server's "…; send less"), else
 * the whole hint after a semicolon.
 */
function withHint(why: string, hint: string): string {
  if (why.includes(hint)) return '';
  const first = hint.split(',')[0]!;
  return first !== hint && why.endsWith(first) ? hint.slice(first.length) : `; ${hint}`;
}

/** Writes {@link errorLine} to standard error and exits with the error's exit code. */
export function fail(what: string, err: unknown): never {
  // <3>: priority err for journald (sd-daemon(3)), so that `journalctl -p err` shows it.
  process.stderr.write(`${stderrIsJournal() ? '<3>' : ''}${errorLine(what, err)}\n`);
  process.exit(err instanceof DispatchError ? exitCodeFor(err.code) : EXIT.FAILURE);
}

/**
 * Handles a failed write to standard output through `process.stdout` for the whole run (call
 * before the stream is used: the commands that write through it, and {@link writeStdout}
 * when it falls back to it): a reader that closed its end (EPIPE: `dispatchctl … | head -c
 * 1`) took what it wanted, so dispatchctl exits 0 quietly; any other failure (ENOSPC on a
 * full disk, EIO) is one error line and exit 1. Without it Node.js throws the stream's
 * 'error' event with a stack trace. Idempotent.
 */
export function guardStdout(): void {
  if (stdoutGuarded) return;
  stdoutGuarded = true;
  process.stdout.on('error', stdoutFailed);
}
let stdoutGuarded = false;

/** What a failed write to standard output ends in, whoever sees it first (see {@link guardStdout}). */
function stdoutFailed(err: NodeJS.ErrnoException): never {
  if (err.code === 'EPIPE') process.exit(EXIT.OK);
  fail('failed to write to standard output', err);
}

/**
 * Routes console.log (what yargs prints help, --version and the completion script with) to
 * a synchronous write of fd 1 whose failure ends as {@link guardStdout} says. Node.js's
 * console ignores failed writes, and yargs exits right after printing, so `dispatchctl
 * completion > FILE` on a full disk would exit 0 having written nothing. The texts are a few
 * KiB, well within a pipe's buffer.
 */
export function consoleLogToStdout(): void {
  console.log = (...args: unknown[]) => {
    try {
      fs.writeSync(1, `${format(...args)}\n`);
    } catch (err) {
      stdoutFailed(err as NodeJS.ErrnoException);
    }
  };
}

/**
 * Writes `b` to standard output; resolves once it is handed to the system. A failed write
 * ends the run as {@link guardStdout} says.
 *
 * It writes file descriptor 1 itself (write(2) until all is written), without creating
 * `process.stdout`: the stream costs a `dispatchctl request` about 1 ms of its start
 * (docs/BENCHMARKS.md "Command line"). A descriptor in non-blocking mode (a pipe some parent
 * made so) that is full (EAGAIN) gets the rest through `process.stdout`, which waits for it.
 */
export async function writeStdout(b: Buffer): Promise<void> {
  let done = 0;
  try {
    while (done < b.length) done += fs.writeSync(1, b, done, b.length - done);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') stdoutFailed(err as NodeJS.ErrnoException);
  }
  guardStdout();
  // The stream's callback hears of a failure before its 'error' event: both end the same way.
  await new Promise<void>((resolve) => process.stdout.write(b.subarray(done), (err) => (err ? stdoutFailed(err) : resolve())));
}
