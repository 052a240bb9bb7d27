/**
 * Typed errors for dispatchd. Library code throws a {@link DispatchError} with a stable
 * `code`; only daemon entry points and dispatchctl log it and map it to an exit code
 * (see exit-codes.ts). Messages follow "failed to <verb> '<object>': <reason>" and say
 * what to do where the reader can act.
 */

/** Every stable error code dispatchd uses, in code and on the wire. */
export const ERROR_CODES = [
  // configuration and start-up
  'CONFIG_UNREADABLE',
  'CONFIG_INVALID',
  'LISTEN_FDS_INVALID',
  'LISTEN_FDS_MISSING',
  // socket framing
  'FRAME_BAD_MAGIC',
  'FRAME_BAD_VERSION',
  'FRAME_TOO_LARGE',
  'FRAME_BAD_HEADER',
  // mailbox FIFOs
  'MESSAGE_TOO_LARGE',
  'MESSAGE_INVALID',
  'MAILBOX_NO_READER',
  'MAILBOX_OPEN_FAILED',
  'MAILBOX_FULL',
  'MAILBOX_WRITE_FAILED',
  // scoreboard
  'SCOREBOARD_OPEN_FAILED',
  'SCOREBOARD_BAD_LAYOUT',
  'SCOREBOARD_NO_SPACE',
  'SCOREBOARD_IO',
  // answers a server gives a client (also thrown by the client library)
  'BAD_REQUEST',
  'UNKNOWN_TYPE',
  'PAYLOAD_TOO_LARGE',
  'UNAVAILABLE',
  'BUSY',
  'LEASE_UNKNOWN',
  'LEASE_EXPIRED',
  'LEASE_STALE',
  'DEADLINE_EXCEEDED',
  'SHUTTING_DOWN',
  'IDLE_TIMEOUT',
  'INTERNAL',
  // request types (docs/TYPES.md)
  'LEASE_WRONG_TYPE',
  'HANDLER_FAILED',
  /** A persistent worker died (or was restarted) while it ran the request (docs/WORKERS.md). */
  'HANDLER_CRASHED',
  'RESULT_TOO_LARGE',
  // client side
  'CONNECT_FAILED',
  'CONNECTION_LOST',
  'TIMEOUT',
  'PROTOCOL_ERROR',
  'SCOREBOARD_MISSING',
  'OUTCOME_UNKNOWN',
  // supervision
  'RESTART_FAILED',
  // operation (dispatchctl scale)
  'SCALE_FAILED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Tells whether a string is one of {@link ERROR_CODES}. */
export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === 'string' && (ERROR_CODES as readonly string[]).includes(s);
}

export interface DispatchErrorOptions {
  /** The lower-level error this one wraps (an errno error, a parse error, …). */
  cause?: unknown;
  /** For BUSY: how long the client should wait before retrying, in ms. */
  retryAfterMs?: number;
  /** True when the operation may be retried safely (the request was not run). */
  retryable?: boolean;
  /** True when the request may have run, in whole or in part (its answer was lost or cut off). */
  mayHaveRun?: boolean;
  /** Short key=value context for logs (peer, lease, path, …). */
  fields?: Record<string, string | number | boolean>;
}

/**
 * The mark of a DispatchError, the same in every copy of this module a process loads
 * (Symbol.for: the global symbol registry).
 */
const DISPATCH_ERROR = Symbol.for('dispatchd.DispatchError');

/**
 * The one error class of dispatchd: a message for people and a stable `code` for programs.
 *
 * `err instanceof DispatchError` holds for a DispatchError made by any copy of this module in
 * the process, not only this one: /usr/bin/dispatchctl is a bundle (dispatchctl.cjs) that
 * loads the configuration's parser, and every command but `request`, from the ES modules
 * beside it, each with its own copy of this class; an application can likewise end up with
 * two copies of the client library.
 */
export class DispatchError extends Error {
  readonly code: ErrorCode;
  readonly retryAfterMs: number | undefined;
  readonly retryable: boolean;
  readonly mayHaveRun: boolean;
  readonly fields: Record<string, string | number | boolean>;

  constructor(code: ErrorCode, message: string, options: DispatchErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DispatchError';
    this.code = code;
    this.retryAfterMs = options.retryAfterMs;
    this.retryable = options.retryable ?? false;
    this.mayHaveRun = options.mayHaveRun ?? false;
    this.fields = options.fields ?? {};
    Object.defineProperty(this, DISPATCH_ERROR, { value: true });
  }

  static override [Symbol.hasInstance](v: unknown): boolean {
    return typeof v === 'object' && v !== null && (v as { [DISPATCH_ERROR]?: unknown })[DISPATCH_ERROR] === true;
  }
}

/** The `code` of an errno-style error (`ENOENT`, `EAGAIN`, …), or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

/** A one-line reason for any thrown value, for "failed to …: <reason>" messages. */
export function reason(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
