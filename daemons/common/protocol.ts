/**
 * Frame headers of the client protocol (docs/PROTOCOL.md §1.2). Frames are encoded by
 * frame.ts; these schemas validate the JSON headers.
 *
 *   client → main:       { op: "lease", type, wait_ms? }            → LeaseGranted | ErrorReply
 *   client → secondary:  { op: "run", lease, generation, type, deadline_ms? } + DATA
 *                                                                   → RunResult + result | ErrorReply
 */
import { z } from 'zod';
import { ERROR_CODES, type DispatchError } from './errors.js';
import { LEASE_TOKEN } from './messages.js';

/** Built-in request types (docs/PROTOCOL.md §3). */
export const REQUEST_TYPES = ['echo', 'sha256', 'sleep'] as const;
export type RequestType = (typeof REQUEST_TYPES)[number];

const u32 = z.number().int().nonnegative().max(0xffffffff);

export const LeaseRequest = z.object({
  op: z.literal('lease'),
  type: z.string().min(1).max(64),
  /**
   * The most the client will wait in the admission queue, in ms (capped by the server's
   * queue_timeout_ms): a client with less time left than the queue timeout gets BUSY in time,
   * rather than giving up with no answer.
   */
  wait_ms: z.number().int().nonnegative().max(3_600_000).optional(),
  /** Optional client-chosen id, echoed in logs. */
  id: z.string().max(64).optional(),
});

export const LeaseGranted = z.object({
  ok: z.literal(true),
  op: z.literal('lease'),
  /** The secondary's instance number N. */
  secondary: z.number().int().min(1),
  /** Path of secondary N's stream socket. */
  socket: z.string().min(1).max(4096),
  lease: z.string().regex(LEASE_TOKEN),
  /** The secondary's generation: the lease is good only for this process of it. */
  generation: u32,
  /** Time left to present the lease to the secondary, in ms. */
  expires_in_ms: z.number().int().nonnegative(),
});

export const RunRequest = z.object({
  op: z.literal('run'),
  lease: z.string().regex(LEASE_TOKEN),
  generation: u32,
  type: z.string().min(1).max(64),
  /** Optional per-request deadline in ms, at most the server's request_deadline_ms. */
  deadline_ms: z.number().int().positive().max(3_600_000).optional(),
  id: z.string().max(64).optional(),
});

export const RunResult = z.object({
  ok: z.literal(true),
  op: z.literal('result'),
  type: z.string(),
  /** Time the secondary spent running the request, in ms. */
  elapsed_ms: z.number().nonnegative(),
  /** Which secondary ran it, and its generation: the client checks it is the lease's. */
  secondary: z.number().int().min(1).optional(),
  generation: u32.optional(),
});

export const ErrorReply = z.object({
  ok: z.literal(false),
  code: z.enum(ERROR_CODES),
  message: z.string(),
  /** For BUSY: when to retry, in ms. */
  retry_after_ms: z.number().int().nonnegative().optional(),
  /** True when the request was not run and may be sent again. */
  retryable: z.boolean().optional(),
});

export type LeaseRequest = z.infer<typeof LeaseRequest>;
export type LeaseGranted = z.infer<typeof LeaseGranted>;
export type RunRequest = z.infer<typeof RunRequest>;
export type RunResult = z.infer<typeof RunResult>;
export type ErrorReply = z.infer<typeof ErrorReply>;

/** The error frame header for a DispatchError. */
export function errorReply(err: DispatchError): ErrorReply {
  const r: ErrorReply = { ok: false, code: err.code, message: err.message };
  if (err.retryAfterMs !== undefined) r.retry_after_ms = err.retryAfterMs;
  if (err.retryable) r.retryable = true;
  return r;
}

/** A short description of the first schema problem, for BAD_REQUEST messages. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'does not match the protocol';
  return issue.path.length ? `'${issue.path.join('.')}': ${issue.message}` : issue.message;
}
