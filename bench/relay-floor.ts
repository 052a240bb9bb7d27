#!/usr/bin/node
/**
 * The floor of the redirect handshake: the same processes, hops and transports as a new
 * dispatchd lease, with none of dispatchd's logic. Two processes:
 *
 *   --role front  (stands for main) serves frames on SOCKET; for each request it writes one
 *                 line into the back's FIFO and answers the client once the back's line
 *                 comes back on its own FIFO: client → front → FIFO → back → FIFO → front → client
 *   --role back   (stands for a secondary) answers every line on its FIFO with a line on the
 *                 front's FIFO, and echoes frames on its own SOCKET: client → back → client
 *
 * The client (bench/load.ts, target `relay`) connects to the front, is told the back's
 * socket, connects there and runs the request: exactly the hops of `DispatchClient.request`.
 * No scoreboard, no lease table, no validation: what is left is the cost of the hops.
 *
 *   node build/bench/relay-floor.js --role front|back --socket PATH --in FIFO --out FIFO [--back-socket PATH]
 */
import fs from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { defaultConfig } from '../daemons/common/config.js';
import { FrameConnection } from '../daemons/common/frame-connection.js';
import { openMailboxFd } from '../daemons/common/mailbox.js';

const { values: v } = parseArgs({ options: { role: { type: 'string' }, socket: { type: 'string' }, in: { type: 'string' }, out: { type: 'string' }, 'back-socket': { type: 'string' } } });
if ((v.role !== 'front' && v.role !== 'back') || !v.socket || !v.in || !v.out) {
  process.stderr.write('usage: relay-floor.js --role front|back --socket PATH --in FIFO --out FIFO [--back-socket PATH]\n');
  process.exit(64);
}
const inFd = openMailboxFd(v.in);
const outFd = openMailboxFd(v.out); // O_RDWR: never blocks, never fails for want of a reader
const send = (line: string) => fs.writeSync(outFd, line);
/** The same maximum as a secondary's by default (max_payload_bytes). */
const MAX_BODY_BYTES = defaultConfig().secondary.max_payload_bytes;
const pending = new Map<number, () => void>();
let seq = 0;
let buffered = '';
new net.Socket({ fd: inFd, readable: true, writable: false }).on('data', (chunk: Buffer) => {
  buffered += chunk.toString('utf8');
  for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
    const m = JSON.parse(buffered.slice(0, nl)) as { id: number };
    buffered = buffered.slice(nl + 1);
    if (v.role === 'back') send(`${JSON.stringify({ id: m.id, ok: true })}\n`);
    else pending.get(m.id)?.();
  }
});

fs.rmSync(v.socket, { force: true });
net
  .createServer((socket) => {
    const conn = new FrameConnection(socket, { maxBodyBytes: MAX_BODY_BYTES, idleTimeoutMs: 0 });
    conn.on('error', () => undefined);
    conn.on('frame', (f) => {
      if (v.role === 'back') {
        conn.send({ ok: true, op: 'result', type: f.header.type, elapsed_ms: 0 }, f.body);
        return;
      }
      const id = ++seq;
      pending.set(id, () => {
        pending.delete(id);
        conn.send({ ok: true, op: 'lease', socket: v['back-socket'] });
      });
      send(`${JSON.stringify({ id })}\n`);
    });
  })
  .listen(v.socket, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
