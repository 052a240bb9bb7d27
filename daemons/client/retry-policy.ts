/**
 * What a client retries on a fresh lease, how long it waits first, and what it says when the
 * lease's idempotency forbids a retry (docs/PROTOCOL.md §4).
 */
import { DispatchError, type ErrorCode } from '../common/errors.js';
import type { LeaseGranted } from '../common/protocol-replies.js';

/** Codes after which a fresh lease may be asked for. */
export const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'CONNECT_FAILED',
  'CONNECTION_LOST',
  'TIMEOUT',
  'UNAVAILABLE',
  'BUSY',
  'SHUTTING_DOWN',
  'LEASE_UNKNOWN',
  'LEASE_EXPIRED',
  'LEASE_STALE',
  'IDLE_TIMEOUT',
]);

/**
 * The answer of a request that may have run was lost, and its type is not idempotent: it is
 * not sent again (at most once). Returns the OUTCOME_UNKNOWN error to throw.
 */
export function outcomeUnknown(type: string, grant: LeaseGranted, cause: DispatchError): DispatchError {
  return new DispatchError(
    'OUTCOME_UNKNOWN',
    `the '${type}' request may or may not have run on secondary-${grant.secondary} (${cause.code}: ${cause.message}); it was not sent again because '${type}' is not idempotent (at most once): check whether it took effect before sending it again`,
    { cause, mayHaveRun: true, fields: { ...cause.fields, type } },
  );
}

/** Exponential back-off with jitter before attempt `attempt + 1`, in ms: about 25, 50, 100 … ms, at most 1 s. */
export function backoffMs(attempt: number): number {
  const base = Math.min(1000, 25 * 2 ** (attempt - 1));
  return Math.round(base / 2 + Math.random() * (base / 2));
}
