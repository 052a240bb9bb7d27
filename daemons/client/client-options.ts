/**
 * What a {@link DispatchClient} is built with, and what it answers besides a result's bytes.
 */
import type { DispatchError } from '../common/errors.js';
import type { LeaseGranted } from '../common/protocol-replies.js';

/** The main server's socket a client connects to unless told otherwise. */
export const DEFAULT_SOCKET = '/run/dispatchd/main.sock';

/** What DispatchClient is built with; an option out of its range is DispatchError BAD_REQUEST from the constructor. */
export interface ClientOptions {
  /** The main server's socket (default /run/dispatchd/main.sock). */
  socket?: string;
  /** Total time budget for one request, retries included, in ms: 1 … 2^31 − 1 (default 60000). */
  timeoutMs?: number;
  /** Most attempts for one request: an integer of at least 1 (default 10). */
  attempts?: number;
  /** How long to wait for the main server's answer to a lease request, in ms: 1 … 2^31 − 1 (default 5000). */
  answerTimeoutMs?: number;
  /** Per-request deadline sent to the secondary, in ms: an integer of 1 … 3,600,000 (default: the type's). */
  deadlineMs?: number;
  /** Largest result accepted, in bytes: an integer of 0 … 1 GiB (default 1 GiB). */
  maxResultBytes?: number;
  /** Called before each retry, with what failed and how long the client waits. */
  onRetry?: (info: { attempt: number; error: DispatchError; waitMs: number }) => void;
  /** Called with each lease granted, before it is presented (tracing; tests use it to inject faults). */
  onLease?: (grant: LeaseGranted) => void | Promise<void>;
}

/** A result with where it came from. */
export interface RequestInfo {
  result: Buffer;
  /** The secondary that ran the request, and its generation (the lease's). */
  secondary: number;
  generation: number;
  /** Attempts it took (1 when nothing was retried). */
  attempts: number;
}
