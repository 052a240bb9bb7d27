/**
 * The one exit-code table of dispatchd, shared by the daemons and dispatchctl. Values follow
 * sysexits.h (BSD) where one fits, and 124 for "timed out" as timeout(1) does. The table is
 * repeated in README.md and dispatchd(8); a test keeps them in step.
 */
import type { ErrorCode } from './errors.js';

export const EXIT = {
  /** Success. */
  OK: 0,
  /** An unexpected failure; for a daemon, systemd restarts it. */
  FAILURE: 1,
  /** Bad command line (EX_USAGE). */
  USAGE: 64,
  /** The request was rejected: bad type, bad data, too large, bad or stale lease (EX_DATAERR). */
  REJECTED: 65,
  /** No main server or no secondary could be reached (EX_UNAVAILABLE). */
  UNAVAILABLE: 69,
  /** The request's handler failed: it threw, exited non-zero, was killed, or returned too much (EX_SOFTWARE). */
  HANDLER_FAILED: 70,
  /**
   * The request may or may not have run: its answer was lost after it was sent to a secondary,
   * and its type is not idempotent, so it was not sent again (at most once; EX_IOERR).
   */
  OUTCOME_UNKNOWN: 74,
  /** Every secondary is busy; retry after the time given (EX_TEMPFAIL). */
  BUSY: 75,
  /** A peer spoke something that is not the dispatchd protocol (EX_PROTOCOL). */
  PROTOCOL: 76,
  /** Bad configuration: the unit is not restarted (EX_CONFIG, RestartPreventExitStatus=78). */
  CONFIG: 78,
  /** The request, or the wait for an answer, took longer than its deadline. */
  TIMED_OUT: 124,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Maps an error code to the exit code dispatchctl and the daemons end with. */
export function exitCodeFor(code: ErrorCode | undefined): ExitCode {
  switch (code) {
    case 'CONFIG_INVALID':
    case 'CONFIG_UNREADABLE':
      return EXIT.CONFIG;
    case 'BAD_REQUEST':
    case 'UNKNOWN_TYPE':
    case 'PAYLOAD_TOO_LARGE':
    case 'LEASE_UNKNOWN':
    case 'LEASE_EXPIRED':
    case 'LEASE_STALE':
    case 'LEASE_WRONG_TYPE':
      return EXIT.REJECTED;
    case 'HANDLER_FAILED':
    case 'HANDLER_CRASHED':
    case 'RESULT_TOO_LARGE':
      return EXIT.HANDLER_FAILED;
    case 'OUTCOME_UNKNOWN':
      return EXIT.OUTCOME_UNKNOWN;
    case 'UNAVAILABLE':
    case 'CONNECT_FAILED':
    case 'CONNECTION_LOST':
    case 'SHUTTING_DOWN':
    case 'SCOREBOARD_MISSING':
      return EXIT.UNAVAILABLE;
    case 'BUSY':
      return EXIT.BUSY;
    case 'PROTOCOL_ERROR':
    case 'FRAME_BAD_MAGIC':
    case 'FRAME_BAD_VERSION':
    case 'FRAME_TOO_LARGE':
    case 'FRAME_BAD_HEADER':
      return EXIT.PROTOCOL;
    case 'TIMEOUT':
    case 'DEADLINE_EXCEEDED':
    case 'IDLE_TIMEOUT':
      return EXIT.TIMED_OUT;
    default:
      return EXIT.FAILURE;
  }
}
