#!/usr/bin/node
/**
 * The baselines of `npm run bench`: dispatchd's request handlers (daemons/secondary-server/
 * request-types.ts) served bare, on the same kind of socket (AF_UNIX stream) with the same
 * framing (daemons/common/frame-connection.ts), but with no main server, no lease, no
 * mailbox and no scoreboard.
 *
 *   node build/bench/bare-server.js --socket PATH              one process (baseline a)
 *   node build/bench/bare-server.js --socket PATH --workers N  node:cluster, N workers (baseline b)
 *
 * A request is a frame with header `{ "op": "run", "type": TYPE }` and DATA as its body; the
 * answer is `{ "ok": true, "op": "result", "type", "elapsed_ms" }` with the result as its
 * body, exactly as a secondary answers. Prints `ready` on standard output once listening;
 * stops on SIGTERM.
 */
import cluster from 'node:cluster';
import fs from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { DispatchError } from '../daemons/common/errors.js';
import { FrameConnection } from '../daemons/common/frame-connection.js';
import type { Frame } from '../daemons/common/frame.js';
import { defaultConfig } from '../daemons/common/config.js';
import { errorReply } from '../daemons/common/protocol.js';
import { BUILTIN_HANDLERS, type BuiltinHandler as BuiltinName } from '../daemons/common/request-type.js';
import { BuiltinHandler } from '../daemons/secondary-server/handlers/builtin-handler.js';

/** The same maximum as a secondary's by default (max_payload_bytes). */
const MAX_BODY_BYTES = defaultConfig().secondary.max_payload_bytes;
const NEVER = new AbortController().signal;

async function handle(conn: FrameConnection, f: Frame): Promise<void> {
  const type = f.header.type;
  const handler = typeof type === 'string' && (BUILTIN_HANDLERS as readonly string[]).includes(type) ? new BuiltinHandler(type as BuiltinName) : undefined;
  if (!handler) {
    conn.send(errorReply(new DispatchError('UNKNOWN_TYPE', `unknown request type '${String(type)}'`)));
    return;
  }
  const started = performance.now();
  const result = await handler.run(f.body, { signal: NEVER, deadlineMs: 0, lease: '', secondary: 'bare' });
  conn.send({ ok: true, op: 'result', type, elapsed_ms: Math.round((performance.now() - started) * 1000) / 1000 }, result);
}

function serve(socket: net.Socket): void {
  const conn = new FrameConnection(socket, { maxBodyBytes: MAX_BODY_BYTES, idleTimeoutMs: 0 });
  let chain = Promise.resolve();
  conn.on('frame', (f) => {
    chain = chain.then(() => (conn.isClosed ? undefined : handle(conn, f)));
  });
  conn.on('protocol-error', (err) => conn.sendAndEnd(errorReply(err)));
  conn.on('error', () => undefined);
}

const { values } = parseArgs({ options: { socket: { type: 'string' }, workers: { type: 'string', default: '0' } } });
const path = values.socket;
const workers = Number(values.workers);
if (!path || !Number.isInteger(workers) || workers < 0) {
  process.stderr.write('usage: bare-server.js --socket PATH [--workers N]\n');
  process.exit(64);
}

if (workers > 0 && cluster.isPrimary) {
  fs.rmSync(path, { force: true });
  let listening = 0;
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('listening', () => {
    if (++listening === workers) process.stdout.write('ready\n');
  });
  cluster.on('exit', (_w, code, signal) => {
    if (!stopping) {
      process.stderr.write(`bare-server: a worker exited (${signal ?? code})\n`);
      process.exit(1);
    }
  });
  let stopping = false;
  process.on('SIGTERM', () => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
    setTimeout(() => process.exit(0), 200).unref();
    cluster.disconnect(() => process.exit(0));
  });
} else {
  if (workers === 0) fs.rmSync(path, { force: true });
  const server = net.createServer(serve);
  server.listen(path, () => {
    if (workers === 0) process.stdout.write('ready\n');
  });
  process.on('SIGTERM', () => process.exit(0));
}
