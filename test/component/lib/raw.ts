/** Raw socket helpers for fault tests: send arbitrary bytes, read framed answers. */
import fs from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import { FrameDecoder, type Frame } from '../../../daemons/common/frame.js';

/**
 * Connects to a unix socket, writes `bytes` (unless undefined), and collects what comes back
 * until the server closes the connection or `timeoutMs` passes. `onConnect` runs once connected.
 */
export async function rawExchange(path: string, bytes: Buffer | undefined, timeoutMs: number, onConnect?: () => void): Promise<{ frames: Frame[]; closedByServer: boolean; elapsedMs: number }> {
  const started = Date.now();
  const s = net.createConnection({ path });
  await once(s, 'connect');
  onConnect?.();
  const dec = new FrameDecoder(64 * 1024 * 1024);
  const frames: Frame[] = [];
  s.on('data', (c: Buffer) => {
    dec.push(c);
    for (let r = dec.next(); r.kind === 'frame'; r = dec.next()) frames.push(r.frame);
  });
  s.on('error', () => undefined);
  if (bytes) s.write(bytes);
  const closed = await Promise.race([once(s, 'close').then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs))]);
  s.destroy();
  return { frames, closedByServer: closed, elapsedMs: Date.now() - started };
}

/** Writes bytes straight into a FIFO (as a misbehaving local writer would). */
export function writeFifo(path: string, bytes: Buffer | string): void {
  const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  try {
    fs.writeSync(fd, typeof bytes === 'string' ? Buffer.from(bytes) : bytes);
  } finally {
    fs.closeSync(fd);
  }
}
