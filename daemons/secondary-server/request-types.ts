/**
 * The built-in request types a secondary runs (docs/PROTOCOL.md §3). Each handler takes the
 * request's DATA and an AbortSignal that fires at the request's deadline, and returns the
 * result's bytes.
 *
 * | type   | DATA                                | result                         |
 * | ------ | ----------------------------------- | ------------------------------ |
 * | echo   | any bytes                           | DATA, byte for byte            |
 * | sha256 | any bytes                           | lowercase hex SHA-256 of DATA  |
 * | sleep  | a whole number of ms, ASCII decimal | `slept N`                      |
 *
 * All three are idempotent: running one twice has the same effect as once, which is why the
 * client library may retry them after a secondary fails mid-request (at-least-once).
 */
import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { DispatchError } from '../common/errors.js';
import type { RequestType } from '../common/protocol.js';

export type Handler = (data: Buffer, signal: AbortSignal) => Promise<Buffer>;

/** The longest delay one timer holds (2^31 − 1 ms); Node turns a longer one into 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Parses sleep's DATA. @throws DispatchError BAD_REQUEST. */
export function parseSleepMs(data: Buffer): number {
  const text = data.toString('latin1').trim();
  if (!/^[0-9]{1,10}$/.test(text)) {
    throw new DispatchError('BAD_REQUEST', `sleep takes a whole number of milliseconds as DATA, got '${text.slice(0, 32)}'`);
  }
  return Number(text);
}

/**
 * Types whose handler waits (on a timer, on I/O) and can therefore be cut off at the
 * request's deadline. The others finish within one turn of the event loop, before a deadline
 * timer could fire, so they run without one.
 */
export const WAITING_TYPES: ReadonlySet<RequestType> = new Set<RequestType>(['sleep']);

export const HANDLERS: Record<RequestType, Handler> = {
  echo: async (data) => data,
  sha256: async (data) => Buffer.from(createHash('sha256').update(data).digest('hex'), 'latin1'),
  sleep: async (data, signal) => {
    const ms = parseSleepMs(data);
    for (let left = ms; left > 0; left -= MAX_TIMER_MS) await delay(Math.min(left, MAX_TIMER_MS), undefined, { signal });
    return Buffer.from(`slept ${ms}`, 'latin1');
  },
};
