/**
 * The persistent worker protocol (docs/WORKERS.md §3; vectors in spec/worker.json): dispatchd's
 * frames (frame.ts, docs/PROTOCOL.md §1) over the stream socket a worker receives from
 * systemd (dispatchd-worker@TYPE-K.socket). The secondary connects; the worker speaks first.
 *
 * worker → secondary:
 *
 *   { "op": "hello", "protocol": 1, "types": ["resize"], "concurrency": 4 }   first, within start_timeout_ms
 *   { "op": "result", "id": 7 }                      body: the result's bytes
 *   { "op": "error", "id": 7, "message": "…" }        the handler failed (HANDLER_FAILED)
 *
 * secondary → worker:
 *
 *   { "op": "run", "id": 7, "type": "resize", "deadline_ms": 5000 }   body: the request's DATA
 *   { "op": "cancel", "id": 7 }                      the deadline passed: stop; answer within cancel_grace_ms
 *
 * `id` is a whole number 1 … 2^53-1 the secondary chooses, unique among its requests in
 * flight on that connection; the secondary never has more than `concurrency` in flight.
 * Unknown header fields are ignored (docs/PROTOCOL.md, forward compatibility); anything else
 * that breaks these rules is PROTOCOL_ERROR, final for the connection.
 */
import { DispatchError } from './errors.js';
import type { FrameHeader } from './frame.js';
import { TYPE_NAME } from './request-type.js';

/** The worker protocol's version, sent in hello. */
export const WORKER_PROTOCOL_VERSION = 1;
/** The most requests one worker connection may ask for at once (`concurrency` in hello). */
export const MAX_WORKER_CONCURRENCY = 1024;
/** The longest message an `error` carries, in characters (longer ones are cut). */
export const MAX_WORKER_ERROR_CHARS = 4096;

export type WorkerMessage =
  | { op: 'hello'; protocol: number; types: string[]; concurrency: number }
  | { op: 'result'; id: number }
  | { op: 'error'; id: number; message: string };

export type SecondaryMessage =
  | { op: 'run'; id: number; type: string; deadline_ms: number }
  | { op: 'cancel'; id: number };

function bad(what: string): DispatchError {
  return new DispatchError('PROTOCOL_ERROR', `failed to read a worker protocol frame: ${what} (docs/WORKERS.md §3)`);
}

function id(h: FrameHeader): number {
  const v = h.id;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw bad(`'id' must be a whole number from 1, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Checks a frame header a worker sent.
 * @throws DispatchError PROTOCOL_ERROR naming what is wrong.
 */
export function parseWorkerMessage(h: FrameHeader): WorkerMessage {
  switch (h.op) {
    case 'hello': {
      if (h.protocol !== WORKER_PROTOCOL_VERSION) throw bad(`hello's 'protocol' must be ${WORKER_PROTOCOL_VERSION}, got ${JSON.stringify(h.protocol)}`);
      const types = h.types;
      if (!Array.isArray(types) || types.length === 0 || !types.every((t) => typeof t === 'string' && TYPE_NAME.test(t))) {
        throw bad(`hello's 'types' must be a non-empty list of type names, got ${JSON.stringify(types)}`);
      }
      const c = h.concurrency;
      if (typeof c !== 'number' || !Number.isInteger(c) || c < 1 || c > MAX_WORKER_CONCURRENCY) {
        throw bad(`hello's 'concurrency' must be a whole number 1 … ${MAX_WORKER_CONCURRENCY}, got ${JSON.stringify(c)}`);
      }
      return { op: 'hello', protocol: WORKER_PROTOCOL_VERSION, types: [...new Set(types as string[])], concurrency: c };
    }
    case 'result':
      return { op: 'result', id: id(h) };
    case 'error': {
      const m = h.message;
      if (typeof m !== 'string') throw bad(`error's 'message' must be a string, got ${JSON.stringify(m)}`);
      return { op: 'error', id: id(h), message: m.slice(0, MAX_WORKER_ERROR_CHARS) };
    }
    default:
      throw bad(`'op' must be "hello", "result" or "error", got ${JSON.stringify(h.op)}`);
  }
}

/**
 * Checks a frame header a secondary sent (the worker libraries' side).
 * @throws DispatchError PROTOCOL_ERROR naming what is wrong.
 */
export function parseSecondaryMessage(h: FrameHeader): SecondaryMessage {
  switch (h.op) {
    case 'run': {
      if (typeof h.type !== 'string' || !TYPE_NAME.test(h.type)) throw bad(`run's 'type' must be a type name, got ${JSON.stringify(h.type)}`);
      const d = h.deadline_ms;
      if (typeof d !== 'number' || !Number.isInteger(d) || d < 1) throw bad(`run's 'deadline_ms' must be a whole number from 1, got ${JSON.stringify(d)}`);
      return { op: 'run', id: id(h), type: h.type, deadline_ms: d };
    }
    case 'cancel':
      return { op: 'cancel', id: id(h) };
    default:
      throw bad(`'op' must be "run" or "cancel", got ${JSON.stringify(h.op)}`);
  }
}
