/**
 * dispatchctl's output: results to standard output, errors as one line on standard error
 * with the exit code of README "Exit codes". Loads nothing beyond the error codes, so that
 * every command, `request` first, can use it.
 */
import { DispatchError, reason } from '../common/errors.js';
import { EXIT, exitCodeFor } from '../common/exit-codes.js';
import { stderrIsJournal } from '../common/journal-stream.js';

/** What the user of dispatchctl can do about an error, beyond what the server said. */
const HINTS: Partial<Record<string, string>> = {
  TIMEOUT: 'raise --timeout (ms) if the request needs longer',
  DEADLINE_EXCEEDED: 'dispatchctl takes it as --deadline (ms)',
  PAYLOAD_TOO_LARGE: 'send less, or raise max_payload_bytes in /etc/dispatchd/dispatchd.conf',
  BUSY: 'retry later, or raise max_leases / add secondaries (dispatchctl scale N)',
};

/** One line saying what failed, why, what to do, and the error's stable code (no newline). */
export function errorLine(what: string, err: unknown): string {
  const de = err instanceof DispatchError ? err : undefined;
  const hint = de && HINTS[de.code] && !reason(err).includes(HINTS[de.code]!) ? `; ${HINTS[de.code]}` : '';
  return `dispatchctl: ${what}: ${reason(err)}${hint}${de ? ` [${de.code}]` : ''}`;
}

/** Writes {@link errorLine} to standard error and exits with the error's exit code. */
export function fail(what: string, err: unknown): never {
  // <3>: priority err for journald (sd-daemon(3)), so that `journalctl -p err` shows it.
  process.stderr.write(`${stderrIsJournal() ? '<3>' : ''}${errorLine(what, err)}\n`);
  process.exit(err instanceof DispatchError ? exitCodeFor(err.code) : EXIT.FAILURE);
}

/** Writes `b` to standard output; resolves once it is handed to the system. */
export function writeStdout(b: Buffer): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(b, (err) => (err ? reject(err) : resolve())));
}
