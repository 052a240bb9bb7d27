/**
 * The client library keeps its connection to main between requests (docs/PROTOCOL.md §1.4):
 * several lease requests on one connection, a new one when main closed or cut off the kept
 * one, and an idle kept connection never keeps the process alive. Against a fake main.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import t, { type Test } from 'tap';
import { DispatchClient } from '../../../daemons/client/client.js';
import { FrameConnection } from '../../../daemons/common/frame-connection.js';

/** A fake main: answers each lease, then does `after(conn, n)` (n: leases so far). */
async function fakeMain(t: Test, after: (c: FrameConnection, n: number) => void = () => undefined) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kept-'));
  const sock = path.join(dir, 'main.sock');
  let connections = 0;
  let leases = 0;
  const server = net.createServer((s) => {
    connections++;
    const c = new FrameConnection(s, { maxBodyBytes: 0, idleTimeoutMs: 0 });
    c.on('error', () => undefined);
    c.on('frame', (f) => {
      leases++;
      c.send({ ok: true, op: 'lease', secondary: 1, socket: '/nonexistent', lease: 'ab'.repeat(41), generation: 7, expires_in_ms: 3000, type: String(f.header.type), idempotent: true });
      after(c, leases);
    });
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  t.teardown(() => {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { sock, counts: () => ({ connections, leases }) };
}

t.test('several lease requests, one after the other, on one connection to main', async (t) => {
  const m = await fakeMain(t);
  const c = new DispatchClient({ socket: m.sock });
  for (let i = 0; i < 5; i++) t.match(await c.lease('echo'), { type: 'echo', idempotent: true });
  t.same(m.counts(), { connections: 1, leases: 5 });
  c.close();
});

t.test('concurrent lease requests each get a connection; all are kept for the next ones', async (t) => {
  const m = await fakeMain(t);
  const c = new DispatchClient({ socket: m.sock });
  await Promise.all([c.lease('echo'), c.lease('echo'), c.lease('echo')]);
  await Promise.all([c.lease('echo'), c.lease('echo'), c.lease('echo')]);
  t.same(m.counts(), { connections: 3, leases: 6 });
  c.close();
});

t.test('main closes the kept connection, or cuts it off as idle: the next lease request opens a new one', async (t) => {
  const m = await fakeMain(t, (conn, n) => {
    if (n === 1) conn.end(100);
    if (n === 2) setTimeout(() => conn.sendAndEnd({ ok: false, code: 'IDLE_TIMEOUT', message: 'idle' }), 10);
  });
  const c = new DispatchClient({ socket: m.sock });
  await c.lease('echo');
  await new Promise((r) => setTimeout(r, 50));
  await c.lease('echo');
  await new Promise((r) => setTimeout(r, 50));
  t.match(await c.lease('echo'), { type: 'echo' });
  t.same(m.counts(), { connections: 3, leases: 3 });
  c.close();
});

t.test('an idle kept connection does not keep the process alive', async (t) => {
  const m = await fakeMain(t);
  const client = pathToFileURL(path.join(import.meta.dirname, '..', '..', '..', 'build', 'daemons', 'client', 'client.js')).href;
  const script = `import { DispatchClient } from ${JSON.stringify(client)}; const c = new DispatchClient({ socket: ${JSON.stringify(m.sock)} }); await c.lease('echo'); console.log('leased');`;
  const started = Date.now();
  // Asynchronously: the fake main in this process must answer meanwhile.
  const r = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
  t.equal(r.stdout.trim(), 'leased', r.stderr);
  t.ok(Date.now() - started < 1500, `the process ended by itself (${Date.now() - started} ms; a kept connection is dropped after 2000 ms)`);
  t.same(m.counts(), { connections: 1, leases: 1 });
});
