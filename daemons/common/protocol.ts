/**
 * Frame headers of the client protocol (docs/PROTOCOL.md §1.2). Frames are encoded by
 * frame.ts; these schemas validate the JSON headers.
 *
 * Request types are not a list compiled in: the secondaries serve the types declared in
 * types.d (docs/TYPES.md) and main answers UNKNOWN_TYPE for a name none of them serves.
 *
 *   client → main:       { op: "lease", type, wait_ms? }            → LeaseGranted | ErrorReply
 *   client → secondary:  { op: "run", lease, generation, type, deadline_ms? } + DATA
 *                                                                   → RunResult + result | ErrorReply
 */
import { z } from 'zod';
import './zod-messages.js'; // range errors worded as dispatchd's ("must be at least 1")
import { ERROR_CODES, type DispatchError } from './errors.js';
import { MAX_DEADLINE_MS } from './timing.js';
import type { FrameHeader } from './frame.js';
import { CLIENT_LEASE_TOKEN as LEASE_TOKEN } from './client-lease-token.js';

const u32 = z.number().int().nonnegative().max(0xffffffff);

/** A request type's name as frames carry it (1 to 64 characters). */
const TypeName = z.string().min(1).max(64);

/** What every client request carries: the request type and an optional client-chosen id, echoed in logs. */
const ClientRequest = z.object({
  type: TypeName,
  id: z.string().max(64).optional(),
});

export const LeaseRequest = ClientRequest.extend({
  op: z.literal('lease'),
  /**
   * The most the client will wait in the admission queue, in ms (capped by the server's
   * queue_timeout_ms): a client with less time left than the queue timeout gets BUSY in time,
   * rather than giving up with no answer.
   */
  wait_ms: z.number().int().nonnegative().max(MAX_DEADLINE_MS).optional(),
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
  /** The type the lease is for (required): a run frame of another type is refused (LEASE_WRONG_TYPE). */
  type: TypeName,
  /**
   * Whether the type is idempotent (required): a client may send a request again after its
   * answer was lost only when this is true (at least once); otherwise that is OUTCOME_UNKNOWN
   * (at most once). docs/PROTOCOL.md §4.
   */
  idempotent: z.boolean(),
});

export const RunRequest = ClientRequest.extend({
  op: z.literal('run'),
  lease: z.string().regex(LEASE_TOKEN),
  generation: u32,
  /** Optional per-request deadline in ms, at most the server's request_deadline_ms. */
  deadline_ms: z.number().int().positive().max(MAX_DEADLINE_MS).optional(),
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
  /** True when the request may have run, in whole or in part (a run cut off when its secondary stopped). */
  may_have_run: z.boolean().optional(),
});

export type LeaseRequest = z.infer<typeof LeaseRequest>;
export type LeaseGranted = z.infer<typeof LeaseGranted>;
export type RunRequest = z.infer<typeof RunRequest>;
export type RunResult = z.infer<typeof RunResult>;
export type ErrorReply = z.infer<typeof ErrorReply>;

/** What {@link parseRunRequest} returns: as `RunRequest.safeParse`. */
export type RunRequestParse = { success: true; data: RunRequest } | { success: false; error: z.ZodError };

const isU32 = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 0xffffffff;
const isShortString = (x: unknown, min: number): x is string => typeof x === 'string' && x.length >= min && x.length <= 64;

/**
 * `RunRequest.safeParse` for the secondary's hot path: a well-formed header (every `run`
 * frame of a working client) is checked by hand, field by field against the schema above,
 * without building zod's parse context; anything else goes to zod, which says what is wrong.
 * Same result either way (test/unit/common/protocol.test.ts compares them).
 */
export function parseRunRequest(header: FrameHeader): RunRequestParse {
  const { op, lease, generation, type, deadline_ms, id } = header;
  if (
    op === 'run' &&
    typeof lease === 'string' &&
    LEASE_TOKEN.test(lease) &&
    isU32(generation) &&
    isShortString(type, 1) &&
    (deadline_ms === undefined || (Number.isInteger(deadline_ms) && (deadline_ms as number) > 0 && (deadline_ms as number) <= MAX_DEADLINE_MS)) &&
    (id === undefined || isShortString(id, 0))
  ) {
    const data: RunRequest = { op, lease, generation, type };
    // As zod: an optional key present in the input is kept, even when undefined.
    if ('deadline_ms' in header) data.deadline_ms = deadline_ms as number | undefined;
    if ('id' in header) data.id = id;
    return { success: true, data };
  }
  return RunRequest.safeParse(header) as RunRequestParse;
}

/** What {@link parseLeaseRequest} returns: as `LeaseRequest.safeParse`. */
export type LeaseRequestParse = { success: true; data: LeaseRequest } | { success: false; error: z.ZodError };

/**
 * `LeaseRequest.safeParse` for main's hot path: a well-formed header (every `lease` frame of
 * a working client) is checked by hand, field by field against the schema above, without
 * building zod's parse context; anything else goes to zod, which says what is wrong. Same
 * result either way (test/unit/common/protocol.test.ts compares them).
 */
export function parseLeaseRequest(header: FrameHeader): LeaseRequestParse {
  const { op, type, wait_ms, id } = header;
  if (
    op === 'lease' &&
    isShortString(type, 1) &&
    (wait_ms === undefined || (Number.isInteger(wait_ms) && (wait_ms as number) >= 0 && (wait_ms as number) <= MAX_DEADLINE_MS)) &&
    (id === undefined || isShortString(id, 0))
  ) {
    const data: LeaseRequest = { op, type };
    // As zod: an optional key present in the input is kept, even when undefined.
    if ('wait_ms' in header) data.wait_ms = wait_ms as number | undefined;
    if ('id' in header) data.id = id;
    return { success: true, data };
  }
  return LeaseRequest.safeParse(header) as LeaseRequestParse;
}

/** `RunResult.safeParse(h).success` for the client's hot path, by hand (same answer), in protocol-replies.ts without zod. */
export { isRunResult } from './protocol-replies.js';

/** The error frame header for a DispatchError. */
export function errorReply(err: DispatchError): ErrorReply {
  const r: ErrorReply = { ok: false, code: err.code, message: err.message };
  if (err.retryAfterMs !== undefined) r.retry_after_ms = err.retryAfterMs;
  if (err.retryable) r.retryable = true;
  if (err.mayHaveRun) r.may_have_run = true;
  return r;
}

/** A short description of the first schema problem, for BAD_REQUEST messages. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'does not match the protocol';
  return issue.path.length ? `'${issue.path.join('.')}': ${issue.message}` : issue.message;
}
