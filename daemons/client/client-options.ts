/**
 * What a {@link DispatchClient} is built with, and what it answers besides a result's bytes.
 */
import type { DispatchError } from '../common/errors.js';
import type { LeaseGranted } from '../common/protocol-replies.js';

/** The main server's socket a client connects to unless told otherwise. */
export const DEFAULT_SOCKET = '/run/dispatchd/main.sock';

export interface ClientOptions {
  /** The main server's socket (default /run/dispatchd/main.sock). */
  socket?: string;
  /** Total time budget for one request, retries included, in ms (default 60000). */
  timeoutMs?: number;
  /** Most attempts for one request (default 10). */
  attempts?: number;
  /** How long to wait for the main server's answer to a lease request, in ms (default 5000). */
  answerTimeoutMs?: number;
  /** Per-request deadline sent to the secondary, in ms (default: the server's). */
  deadlineMs?: number;
  /** Largest result accepted, in bytes (default 1 GiB). */
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
