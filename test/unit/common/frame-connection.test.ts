import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { FrameConnection } from '../../../daemons/common/frame-connection.js';
import { encodeFrame } from '../../../daemons/common/frame.js';
import type { DispatchError } from '../../../daemons/common/errors.js';

/** A connected pair over a unix socket: the server side wrapped in a FrameConnection. */
async function pair(t: Test, idleTimeoutMs = 0): Promise<{ conn: FrameConnection; peer: net.Socket }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-fc-'));
  const server = net.createServer();
  const sock = path.join(dir, 's');
  await new Promise<void>((r) => server.listen(sock, r));
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const peer = net.createConnection({ path: sock });
  const [s] = await accepted;
  const conn = new FrameConnection(s, { maxBodyBytes: 1024, idleTimeoutMs });
  t.teardown(() => {
    peer.destroy();
    conn.destroy();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { conn, peer };
}

t.test('a framing error is reported once, however much more the peer sends', async (t) => {
  const { conn, peer } = await pair(t);
  const errors: DispatchError[] = [];
  conn.on('protocol-error', (e) => errors.push(e));
  conn.on('error', () => undefined);
  peer.on('error', () => undefined);
  const reported = once(conn, 'protocol-error');
  peer.write(Buffer.from('GET / HTTP/1.1\r\n'));
  await reported;
  for (let i = 0; i < 5 && !peer.destroyed; i++) {
    peer.write(Buffer.from('Host: x\r\n'));
    await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(errors.length, 1, 'one protocol-error for the connection');
  t.equal(errors[0]?.code, 'FRAME_BAD_MAGIC');
});

t.test('frames split across writes arrive whole, in order', async (t) => {
  const { conn, peer } = await pair(t);
  const got: unknown[] = [];
  conn.on('frame', (f) => got.push(f.header));
  const bytes = Buffer.concat([...encodeFrame({ n: 1 }), ...encodeFrame({ n: 2 }, Buffer.from('body'))]);
  for (const b of bytes) peer.write(Buffer.from([b]));
  while (got.length < 2) await new Promise((r) => setTimeout(r, 10));
  t.same(got, [{ n: 1 }, { n: 2 }]);
});

t.test('partial data does not restart the idle clock', async (t) => {
  const { conn, peer } = await pair(t, 300);
  const started = Date.now();
  const idle = once(conn, 'idle');
  const [head] = encodeFrame({ op: 'lease', pad: 'x'.repeat(1000) });
  let sent = 0;
  const dribble = setInterval(() => peer.write(head.subarray(sent, ++sent)), 50);
  // Bounded: a broken idle clock fails here in 2 s rather than hanging the file.
  let late: NodeJS.Timeout | undefined;
  await Promise.race([idle, new Promise((_, reject) => (late = setTimeout(() => reject(new Error('not cut off within 2 s')), 2000)))]).finally(() => {
    clearTimeout(late);
    clearInterval(dribble);
  });
  t.ok(Date.now() - started < 1000, `cut off after ${Date.now() - started} ms despite a byte every 50 ms`);
});
