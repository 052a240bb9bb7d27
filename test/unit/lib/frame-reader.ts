/**
 * Frames off a socket, one at a time, for tests that play the peer of a daemon or worker.
 */
import type net from 'node:net';
import { FrameDecoder, type Frame } from '../../../daemons/common/frame.js';

/**
 * Returns `next()`: the socket's next frame, or 'closed' once the socket closed and every
 * frame before that was taken. Bodies up to 1 MiB; errors on the socket count as its close.
 */
export function frameReader(sock: net.Socket): () => Promise<Frame | 'closed'> {
  const dec = new FrameDecoder(1 << 20);
  const ready: Frame[] = [];
  let closed = false;
  let wake: (() => void) | undefined;
  sock.on('data', (b: Buffer) => {
    dec.push(b);
    for (let r = dec.next(); r.kind === 'frame'; r = dec.next()) ready.push(r.frame);
    wake?.();
  });
  sock.on('close', () => {
    closed = true;
    wake?.();
  });
  sock.on('error', () => undefined);
  return async () => {
    for (;;) {
      const f = ready.shift();
      if (f) return f;
      if (closed) return 'closed';
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
}
