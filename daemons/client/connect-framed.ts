/**
 * The client's connect(2) to a dispatchd unix stream socket (main's or a secondary's),
 * with a hint for each way it fails.
 */
import fs from 'node:fs';
import net from 'node:net';
import { DispatchError, errnoCode, reason } from '../common/errors.js';
import { FrameConnection } from '../common/frame-connection.js';

/**
 * Opens a framed connection to a unix stream socket.
 * @param maxBodyBytes largest frame body accepted on it, in bytes (0: the framing's default).
 * @param timeoutMs how long the connect may take, in ms.
 * @throws DispatchError CONNECT_FAILED (missing socket, refused, permission, no answer within `timeoutMs`).
 */
export function connectFramed(path: string, maxBodyBytes: number, timeoutMs: number): Promise<FrameConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new DispatchError('CONNECT_FAILED', `failed to connect to '${path}': no answer within ${timeoutMs} ms`));
    }, timeoutMs);
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
