#!/usr/bin/node
/**
 * The floor of a new lease: the same processes, hops and transports as a new dispatchd lease
 * from credits (docs/PROTOCOL.md §2.2), with none of dispatchd's logic. Two processes:
 *
 *   --role front  (stands for main) serves frames on SOCKET and answers each lease request
 *                 at once with the back's socket: client → front → client
 *   --role back   (stands for a secondary) echoes frames on its SOCKET: client → back → client
 *
 * The client (bench/load.ts, target `relay`) asks the front where to go (on a new connection
 * per request, or on one it keeps: the `kept` mode), connects to the back and runs the request
 * there: exactly the hops of `DispatchClient.request`. Like main with credits in hand, the
 * front asks the back nothing per request; unlike main it mints nothing, reads no scoreboard,
 * checks nothing and hands out no credits (dispatchd's mailbox FIFOs carry a batched `credit`
 * message per few leases: part of what dispatchd adds, not of the floor). What is left is the
 * cost of the hops.
 *
 * Until the leases from credits (issue 12), the front also asked the back over a FIFO for
 * each request, as main then asked a secondary; docs/BENCHMARKS.md marks the figures of that
 * floor where it quotes them ("What is measured", "Leases from credits").
 *
 *   node build/bench/relay-floor.js --role front --socket PATH --back-socket PATH
 *   node build/bench/relay-floor.js --role back --socket PATH
 */
import fs from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { defaultConfig } from '../daemons/common/config.js';
import { FrameConnection } from '../daemons/common/frame-connection.js';

const { values: v } = parseArgs({ options: { role: { type: 'string' }, socket: { type: 'string' }, 'back-socket': { type: 'string' } } });
if ((v.role !== 'front' && v.role !== 'back') || !v.socket || (v.role === 'front' && !v['back-socket'])) {
  process.stderr.write('usage: relay-floor.js --role front --socket PATH --back-socket PATH | --role back --socket PATH\n');
  process.exit(64);
}
/** The same maximum as a secondary's by default (max_payload_bytes). */
const MAX_BODY_BYTES = defaultConfig().secondary.max_payload_bytes;

fs.rmSync(v.socket, { force: true });
net
  .createServer((socket) => {
    const conn = new FrameConnection(socket, { maxBodyBytes: MAX_BODY_BYTES, idleTimeoutMs: 0 });
    conn.on('error', () => undefined);
    conn.on('frame', (f) => {
      if (v.role === 'back') conn.send({ ok: true, op: 'result', type: f.header.type, elapsed_ms: 0 }, f.body);
      else conn.send({ ok: true, op: 'lease', socket: v['back-socket'] });
    });
  })
  .listen(v.socket, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
