/**
 * One framed stream connection (client ↔ main, client ↔ secondary), server or client side.
 *
 * - Decodes frames incrementally with a bounded body size.
 * - Idle timeout: while the connection waits for a frame (not while a request it sent is
 *   being served), a peer that sends nothing, or only part of a frame, for `idleTimeoutMs`
 *   is cut off. Partial data does not reset the timer, so a peer dribbling bytes cannot hold
 *   a connection forever.
 * - A protocol error ends the connection: it is reported once, the peer gets an error frame
 *   where the caller sends one, and the socket is closed.
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { DispatchError, reason } from './errors.js';
import { encodeFrame, FrameDecoder, type Frame, type FrameHeader } from './frame.js';

export interface FrameConnectionEvents {
  frame: [Frame];
  'protocol-error': [DispatchError];
  idle: [];
  close: [];
  error: [Error];
}

export interface FrameConnectionOptions {
  maxBodyBytes: number;
  /** 0 disables the idle timeout. */
  idleTimeoutMs: number;
}

export class FrameConnection extends EventEmitter<FrameConnectionEvents> {
  private readonly decoder: FrameDecoder;
  private idleTimer: NodeJS.Timeout | undefined;
  private waiting = true;
  private closed = false;
  /** Set by a framing error or end(): what the peer sends afterwards is ignored. */
  private done = false;

  constructor(readonly socket: net.Socket, private readonly options: FrameConnectionOptions) {
    super();
    this.decoder = new FrameDecoder(options.maxBodyBytes);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      if (!this.closed) this.emit('error', err);
    });
    socket.on('close', () => this.onClose());
    this.armIdle();
  }

  /** True once the socket closed. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes of an incomplete frame held. */
  get partialBytes(): number {
    return this.decoder.bufferedBytes;
  }

  private onData(chunk: Buffer): void {
    if (this.closed || this.done) return;
    this.decoder.push(chunk);
    for (;;) {
      const r = this.decoder.next();
      if (r.kind === 'need-more') return;
      if (r.kind === 'error') {
        // Final for the connection: reported once, whatever the peer sends until it closes.
        this.done = true;
        this.clearIdle();
        this.emit('protocol-error', r.error);
        return;
      }
      // A frame arrived: the idle clock restarts from here.
      this.armIdle();
      this.emit('frame', r.frame);
      if (this.closed) return;
    }
  }

  /** Marks the connection as serving a request: the idle timeout is paused. */
  busy(): void {
    this.waiting = false;
    this.clearIdle();
  }

  /** Marks the connection as waiting for the peer's next frame: the idle timeout runs. */
  idle(): void {
    this.waiting = true;
    this.armIdle();
  }

  private armIdle(): void {
    this.clearIdle();
    if (!this.waiting || this.closed || this.done || this.options.idleTimeoutMs <= 0) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (!this.closed) this.emit('idle');
    }, this.options.idleTimeoutMs);
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /**
   * Sends one frame. Returns false when the socket's buffer is full (wait for 'drain') or it
   * is closed.
   */
  send(header: FrameHeader, body?: Buffer): boolean {
    if (this.closed || this.socket.destroyed || this.socket.writableEnded) return false;
    let parts: [Buffer, Buffer];
    try {
      parts = encodeFrame(header, body);
    } catch (err) {
      this.emit('error', err instanceof Error ? err : new Error(reason(err)));
      return false;
    }
    this.socket.cork();
    this.socket.write(parts[0]);
    const ok = parts[1].length > 0 ? this.socket.write(parts[1]) : true;
    this.socket.uncork();
    return ok;
  }

  /** Sends a last frame, then half-closes; the socket is destroyed if the peer lingers. */
  sendAndEnd(header: FrameHeader, lingerMs = 1000): void {
    this.send(header);
    this.end(lingerMs);
  }

  /** Ends the connection gracefully: flushes what was written, then closes. */
  end(lingerMs = 1000): void {
    if (this.closed) return;
    this.done = true;
    this.clearIdle();
    this.socket.end();
    const t = setTimeout(() => this.socket.destroy(), lingerMs);
    t.unref();
  }

  /** Closes the connection at once. */
  destroy(): void {
    this.clearIdle();
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearIdle();
    this.emit('close');
  }
}
