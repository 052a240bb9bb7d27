/**
 * The client's checks of the replies it reads (docs/PROTOCOL.md §1.2), without zod: the
 * client library, and so `dispatchctl request`, must start without loading the schema
 * library. Measured on Node.js 20 without a compile cache, whole process runs: `node -e 0`
 * 62 ms, `node -e "require('zod')"` +55 ms (and +90 ms of 230 ms against 140 ms on the
 * same machine under load), nearly the whole of the 1.5× budget of `dispatchctl request`
 * against `node -e 0` (issue 12) on its own. That cost is the only reason these checks
 * are code of our own; the zod schemas stay the reference.
 *
 * `LeaseGranted.safeParse` and `ErrorReply.safeParse` answer exactly as the zod schemas of
 * the same names in protocol.ts, which stay the reference (the servers and the docs use
 * them): same success, same data (unknown keys dropped; an optional key present in the input
 * kept, even when undefined). test/unit/common/protocol.test.ts compares them on generated
 * headers. A change to one of those schemas is made here too, or that test fails.
 */
import { ERROR_CODES, type ErrorCode } from './errors.js';
import type { FrameHeader } from './frame.js';
import { CLIENT_LEASE_TOKEN as LEASE_TOKEN } from './client-lease-token.js';
import type { ErrorReply as ErrorReplyData, LeaseGranted as LeaseGrantedData } from './protocol.js';

export type LeaseGranted = LeaseGrantedData;
export type ErrorReply = ErrorReplyData;

/** What `safeParse` returns: `success` and the parsed data, as zod's (no issues on failure). */
export type ReplyParse<T> = { success: true; data: T } | { success: false };

const CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/** zod's `z.number().int()`: a safe integer. */
const isInt = (x: unknown): x is number => Number.isSafeInteger(x);
const isU32 = (x: unknown): x is number => isInt(x) && x >= 0 && x <= 0xffffffff;
const isNonNegativeInt = (x: unknown): x is number => isInt(x) && x >= 0;
const isString = (x: unknown, min: number, max: number): x is string => typeof x === 'string' && x.length >= min && x.length <= max;

/** Copies the optional keys present in `h` (even when undefined) into `data`, as zod does. */
function copyOptional<T extends object>(data: T, h: FrameHeader, keys: readonly string[]): T {
  for (const k of keys) if (k in h) (data as Record<string, unknown>)[k] = h[k];
  return data;
}

/** protocol.ts `LeaseGranted`: main's answer granting a lease. */
export const LeaseGranted = {
  safeParse(h: FrameHeader): ReplyParse<LeaseGranted> {
    const { secondary, socket, lease, generation, expires_in_ms, type, idempotent } = h;
    if (
      h.ok === true &&
      h.op === 'lease' &&
      isInt(secondary) &&
      secondary >= 1 &&
      isString(socket, 1, 4096) &&
      typeof lease === 'string' &&
      LEASE_TOKEN.test(lease) &&
      isU32(generation) &&
      isNonNegativeInt(expires_in_ms) &&
      isString(type, 1, 64) &&
      typeof idempotent === 'boolean'
    ) {
      return { success: true, data: { ok: true, op: 'lease', secondary, socket, lease, generation, expires_in_ms, type, idempotent } };
    }
    return { success: false };
  },
};

/** protocol.ts `ErrorReply`: an error frame's header. */
export const ErrorReply = {
  safeParse(h: FrameHeader): ReplyParse<ErrorReply> {
    const { code, message, retry_after_ms, retryable, may_have_run } = h;
    if (
      h.ok === false &&
      typeof code === 'string' &&
      CODES.has(code) &&
      typeof message === 'string' &&
      (retry_after_ms === undefined || isNonNegativeInt(retry_after_ms)) &&
      (retryable === undefined || typeof retryable === 'boolean') &&
      (may_have_run === undefined || typeof may_have_run === 'boolean')
    ) {
      const data: ErrorReply = { ok: false, code: code as ErrorCode, message };
      return { success: true, data: copyOptional(data, h, ['retry_after_ms', 'retryable', 'may_have_run']) };
    }
    return { success: false };
  },
};

/** protocol.ts `RunResult.safeParse(h).success`: a secondary's result frame header. */
export function isRunResult(h: FrameHeader): boolean {
  return (
    h.ok === true &&
    h.op === 'result' &&
    typeof h.type === 'string' &&
    typeof h.elapsed_ms === 'number' &&
    h.elapsed_ms >= 0 &&
    Number.isFinite(h.elapsed_ms) &&
    (h.secondary === undefined || (isInt(h.secondary) && h.secondary >= 1)) &&
    (h.generation === undefined || isU32(h.generation))
  );
}
