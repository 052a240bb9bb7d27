/**
 * The server side shared by main and the secondaries: listening on the activated socket, and
 * wrapping each accepted client in a FrameConnection with the standard treatment of bad
 * clients (protocol errors answered with one error frame and logged once per interval; idle
 * and half-frame clients cut off) while frames are handled one at a time per connection.
 */
import net from 'node:net';
import { DispatchError, reason } from './errors.js';
import { FrameConnection } from './frame-connection.js';
import type { Frame } from './frame.js';
import type { IncidentLog } from './incident-log.js';
import type { Logger } from './logger.js';
import { errorReply } from './protocol.js';

/**
 * The listen(2) backlog: systemd's default Backlog= (SOMAXCONN, 4096 on Linux 5.4 and later;
 * the kernel caps it at net.core.somaxconn). Node calls listen(2) again on an activated fd, with
 * 511 unless told otherwise, which would shrink systemd's queue: a burst of more than 512
 * connections while the server is busy or restarting would then fail with EAGAIN.
 */
export const LISTEN_BACKLOG = 4096;

/**
 * Listens on an activated fd (`{ fd }`, systemd.socket(5)) or binds a path (`{ path }`), with
 * `backlog` (its socket unit's Backlog=; default {@link LISTEN_BACKLOG}); `what` names the
 * socket in the error. Any net.Server: the metrics daemon's node:http server too.
 * @throws DispatchError CONNECT_FAILED when listen(2) fails.
 */
export function listen(server: net.Server, target: { fd: number } | { path: string }, backlog = LISTEN_BACKLOG, what = 'the client socket'): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error) =>
      reject(new DispatchError('CONNECT_FAILED', `failed to listen on ${what}: ${reason(err)}`, { cause: err }));
    server.once('error', onError);
    // The backlog as an argument: Node ignores `backlog` in the options of an `{ fd }` listen.
    server.listen(target, backlog, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export interface AcceptOptions {
  maxBodyBytes: number;
  idleTimeoutMs: number;
  /** A name for the client in logs: client#N. */
  peer: string;
  incidents: IncidentLog;
  logger: Logger;
  /** Handles one frame; the next frame of this connection waits until it settles. */
  onFrame: (conn: FrameConnection, frame: Frame) => Promise<void>;
  onClose: () => void;
}

/** Wraps an accepted client socket. */
export function acceptFramed(socket: net.Socket, o: AcceptOptions): FrameConnection {
  const conn = new FrameConnection(socket, { maxBodyBytes: o.maxBodyBytes, idleTimeoutMs: o.idleTimeoutMs });
  let chain = Promise.resolve();
  conn.on('frame', (f) => {
    chain = chain.then(() => (conn.isClosed ? undefined : o.onFrame(conn, f)));
  });
  conn.on('protocol-error', (err) => {
    o.incidents.report(`client-protocol:${err.code}`, 'error', `failed to read a request from ${o.peer}: ${err.message}; disconnecting it`, { peer: o.peer, code: err.code });
    conn.sendAndEnd(errorReply(err));
  });
  conn.on('idle', () => {
    o.incidents.report('client-idle', 'info', `${o.peer} sent no complete request for ${o.idleTimeoutMs} ms; disconnecting it`, { peer: o.peer, code: 'IDLE_TIMEOUT', partial_bytes: conn.partialBytes });
    conn.sendAndEnd(errorReply(new DispatchError('IDLE_TIMEOUT', `no complete request within ${o.idleTimeoutMs} ms; send a whole frame after connecting`)));
  });
  conn.on('error', (err) => o.logger.debug(`connection error on ${o.peer}: ${reason(err)}`, { peer: o.peer }));
  conn.on('close', o.onClose);
  return conn;
}

export interface FramedServerOptions {
  /** The body limit and idle timeout of each new connection (read per connection: reloadable). */
  limits: () => { maxBodyBytes: number; idleTimeoutMs: number };
  incidents: IncidentLog;
  logger: Logger;
  /** Whether to refuse new connections (stopping): they are destroyed at once. */
  refusing: () => boolean;
  /** The handlers of one accepted connection, named `peer` (client#N) in logs. */
  accept: (peer: string) => { onFrame: (conn: FrameConnection, frame: Frame) => Promise<void>; onClose?: () => void };
}

/** What a daemon uses of its client side: a {@link FramedServer}, or a fake in unit tests. */
export interface ClientServer {
  /** @throws DispatchError CONNECT_FAILED. */
  listen(target: { fd: number } | { path: string }): Promise<void>;
  address(): string | net.AddressInfo | null;
  close(): void;
  endAll(lingerMs: number): void;
}

/** Builds a daemon's client side from its options (default: a real {@link FramedServer}). */
export type ClientServerFactory = (o: FramedServerOptions) => ClientServer;

/**
 * A daemon's client side: a stream socket server whose accepted clients are wrapped by
 * {@link acceptFramed}, named client#1, client#2, … and tracked until they close.
 */
export class FramedServer implements ClientServer {
  private readonly server = net.createServer();
  private readonly connections = new Set<FrameConnection>();
  private seq = 0;

  constructor(private readonly o: FramedServerOptions) {
    this.server.on('connection', (s) => this.onConnection(s));
    this.server.on('error', (err) => o.logger.error(`failed to accept on the client socket: ${reason(err)}`, { code: 'CONNECT_FAILED' }));
  }

  /** @throws DispatchError CONNECT_FAILED, see {@link listen}. */
  listen(target: { fd: number } | { path: string }): Promise<void> {
    return listen(this.server, target);
  }

  /** The listening address (for tests that bind a path). */
  address(): string | net.AddressInfo | null {
    return this.server.address();
  }

  private onConnection(socket: net.Socket): void {
    if (this.o.refusing()) {
      socket.destroy();
      return;
    }
    const peer = `client#${++this.seq}`;
    const handlers = this.o.accept(peer);
    const conn: FrameConnection = acceptFramed(socket, {
      ...this.o.limits(),
      peer,
      incidents: this.o.incidents,
      logger: this.o.logger,
      onFrame: handlers.onFrame,
      onClose: () => {
        this.connections.delete(conn);
        handlers.onClose?.();
      },
    });
    this.connections.add(conn);
  }

  /** Stops accepting (connections already accepted stay). */
  close(): void {
    if (this.server.listening) this.server.close();
  }

  /** Ends every connection, letting what was just written reach its client within `lingerMs`. */
  endAll(lingerMs: number): void {
    for (const c of this.connections) c.end(lingerMs);
  }
}
