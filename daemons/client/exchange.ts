/**
 * One request/answer on a framed connection, and the reading of an error answer.
 */
import { DispatchError, reason } from '../common/errors.js';
import type { FrameConnection } from '../common/frame-connection.js';
import type { Frame, FrameHeader } from '../common/frame.js';
import { ErrorReply } from '../common/protocol-replies.js';

/**
 * Sends one frame and waits for one frame back.
 * @param timeoutMs how long to wait for the answer, in ms; the connection is destroyed past it.
 * @param peer who answers, for messages ('the main server', 'secondary-2').
 * @throws DispatchError TIMEOUT, CONNECTION_LOST, or the framing errors.
 */
export function exchange(conn: FrameConnection, header: FrameHeader, body: Buffer | undefined, timeoutMs: number, peer: string): Promise<Frame> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      conn.off('frame', onFrame);
      conn.off('close', onClose);
      conn.off('protocol-error', onBad);
      conn.off('error', onError);
    };
    const onFrame = (f: Frame) => {
      cleanup();
      resolve(f);
    };
    const onClose = () => {
      cleanup();
      reject(new DispatchError('CONNECTION_LOST', `failed to get an answer from ${peer}: the connection closed`, { retryable: true }));
    };
    const onError = (err: Error) => {
      cleanup();
      conn.destroy();
      reject(new DispatchError('CONNECTION_LOST', `failed to get an answer from ${peer}: ${reason(err)}`, { cause: err, retryable: true }));
    };
    const onBad = (err: DispatchError) => {
      cleanup();
      conn.destroy();
      reject(new DispatchError('PROTOCOL_ERROR', `failed to read the answer of ${peer}: ${err.message}`, { cause: err }));
    };
    const timer = setTimeout(() => {
      cleanup();
      conn.destroy();
      reject(new DispatchError('TIMEOUT', `failed to get an answer from ${peer} within ${timeoutMs} ms`, { retryable: true }));
    }, timeoutMs);
    conn.on('frame', onFrame);
    conn.on('close', onClose);
    conn.on('protocol-error', onBad);
    conn.on('error', onError);
    conn.send(header, body);
  });
}

/**
 * Converts an error frame (docs/PROTOCOL.md §3) into a DispatchError with its code, message,
 * retry_after_ms, retryable and may_have_run; PROTOCOL_ERROR when it is not a dispatchd reply.
 */
export function fromReply(header: FrameHeader, peer: string): DispatchError {
  const e = ErrorReply.safeParse(header);
  if (!e.success) return new DispatchError('PROTOCOL_ERROR', `failed to understand the answer of ${peer}: not a dispatchd reply`);
  return new DispatchError(e.data.code, e.data.message, { retryAfterMs: e.data.retry_after_ms, retryable: e.data.retryable ?? false, mayHaveRun: e.data.may_have_run ?? false, fields: { peer } });
}
