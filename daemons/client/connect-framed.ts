/**
 * The client's connect(2) to a dispatchd unix stream socket (main's or a secondary's),
 * with a hint for each way it fails.
 */
import fs from 'node:fs';
import net from 'node:net';
import { DispatchError, errnoCode, reason } from '../common/errors.js';
import { FrameConnection } from '../common/frame-connection.js';

/**
 * A request's overall time budget (ClientOptions.timeoutMs, dispatchctl --timeout), which a
 * connect made for the request must not outlast.
 */
export interface TimeBudget {
  /** When the budget runs out, as a Date.now() time in ms. */
  deadline: number;
  /** The whole budget, in ms (for the message). */
  totalMs: number;
}

/**
 * Opens a framed connection to a unix stream socket.
 * @param maxBodyBytes largest frame body accepted on it, in bytes (0: the framing's default).
 * @param timeoutMs how long the connect may take, in ms.
 * @param budget the request's overall budget: the connect ends when it runs out, if sooner.
 * @throws DispatchError CONNECT_FAILED (missing socket, refused, permission, no answer within
 *   `timeoutMs`); TIMEOUT when `budget` ran out first (the connect did not fail: the request
 *   ran out of time).
 * @param createConnection starts the connect (tests pass one that never completes).
 */
export function connectFramed(
  path: string,
  maxBodyBytes: number,
  timeoutMs: number,
  budget?: TimeBudget,
  createConnection: (path: string) => net.Socket = (p) => net.createConnection({ path: p }),
): Promise<FrameConnection> {
  return new Promise((resolve, reject) => {
    const budgetLeftMs = budget ? budget.deadline - Date.now() : Infinity;
    const outOfBudget = budgetLeftMs <= timeoutMs;
    const socket = createConnection(path);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        outOfBudget
          ? new DispatchError('TIMEOUT', `failed to connect to '${path}': no answer within ${budget!.totalMs} ms, the request's time budget (timeoutMs, dispatchctl --timeout)`, { retryable: true })
          : new DispatchError('CONNECT_FAILED', `failed to connect to '${path}': no answer within ${timeoutMs} ms`),
      );
    }, Math.max(1, Math.min(timeoutMs, budgetLeftMs)));
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(new FrameConnection(socket, { maxBodyBytes, idleTimeoutMs: 0 }));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      const code = errnoCode(err);
      const notSocket = code === 'ECONNREFUSED' || code === 'ENOTSOCK' ? isNotSocket(path) : false;
      const hint =
        code === 'ENOENT' ? "no such socket: dispatchd is not running; see 'systemctl status dispatchd.target' (start it with systemctl start dispatchd.target)"
        : code === 'EACCES' ? 'permission denied: run as root or as a member of the dispatchd-clients group'
        : notSocket ? 'it is not a socket; pass the main server\'s socket with --socket (default /run/dispatchd/main.sock)'
        : code === 'ECONNREFUSED' ? "connection refused: nobody listens there; see 'systemctl status dispatchd.target'"
        : reason(err);
      reject(new DispatchError('CONNECT_FAILED', `failed to connect to '${path}': ${hint}`, { cause: err, retryable: true }));
    });
  });
}

/** True when `path` exists and is not a socket (a refused connect then means a wrong path). */
function isNotSocket(path: string): boolean {
  try {
    return !fs.statSync(path).isSocket();
  } catch {
    return false;
  }
}
