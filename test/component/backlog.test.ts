/**
 * Connections that arrive while the main server is busy or frozen wait in the socket's
 * listen queue (systemd's Backlog=, SOMAXCONN): a burst of 1,000 is kept, not refused.
 * Node re-listens on an activated fd with a backlog of 511 unless told otherwise, and the
 * 513th connection of such a burst failed with EAGAIN.
 */
import net from 'node:net';
import t from 'tap';
import { DispatchClient } from '../../daemons/client/client.js';
import { closeAfter, ProcessSuite } from '../helpers/index.js';

const IDLE_MS = 500;
const suite = new ProcessSuite({ config: `[main]\nclient_idle_timeout_ms = ${IDLE_MS}\n`, secondaries: 1, restart: false });
closeAfter(t, suite);
t.before(async () => {
  await suite.start('secondary-1');
  await suite.start('main');
});

t.test('1,000 connections to a frozen main all wait in the queue, and are served once it runs', async (t) => {
  suite.signal('main', 'SIGSTOP');
  const sockets: net.Socket[] = [];
  /** What each connection received before it closed (the server's answer, if any). */
  const received: Buffer[][] = [];
  const outcomes = await Promise.all(
    Array.from({ length: 1000 }, () =>
      new Promise<string>((resolve) => {
        const s = net.createConnection({ path: suite.mainSocket });
        sockets.push(s);
        const chunks: Buffer[] = [];
        received.push(chunks);
        s.on('data', (c: Buffer) => chunks.push(c));
        s.once('connect', () => resolve('connected'));
        s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      }),
    ),
  );
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
  t.same(counts, { connected: 1000 }, `every connection was queued (${JSON.stringify(counts)})`);
  const closed = Promise.all(sockets.map((s) => new Promise((r) => (s.destroyed ? r(undefined) : s.once('close', r)))));
  suite.signal('main', 'SIGCONT');
  // Main accepts them all, cuts them off as idle, and serves a real client meanwhile.
  t.equal((await new DispatchClient({ socket: suite.mainSocket, timeoutMs: 10_000 }).request('echo', Buffer.from('queued'))).toString(), 'queued');
  await closed;
  const cutOff = received.filter((chunks) => Buffer.concat(chunks).includes('IDLE_TIMEOUT')).length;
  t.equal(cutOff, 1000, 'all 1,000 were accepted, then cut off as idle with an IDLE_TIMEOUT answer');
});
