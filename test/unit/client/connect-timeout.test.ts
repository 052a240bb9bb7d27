/**
 * A connect cut short by the request's overall time budget (timeoutMs, dispatchctl --timeout)
 * is TIMEOUT (exit 124): the request ran out of time. A connect that fails for a reason of its
 * own (no such socket, refused, no answer within the answer timeout while budget is left)
 * stays CONNECT_FAILED (exit 69). docs/PROTOCOL.md §1.3.
 *
 * A connect to a local unix socket completes or fails at once on Linux (a full backlog is
 * EAGAIN), so the connect that never completes is a socket that was never asked to connect.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { connectFramed, DispatchClient, DispatchError, EXIT, exitCodeFor } from '../../../daemons/client/client.js';

/** A socket whose connect never completes: no connect, no error. */
const neverConnects = () => new net.Socket();

async function failure(p: Promise<unknown>): Promise<DispatchError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DispatchError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

t.test('the budget running out during a connect is TIMEOUT (exit 124), not CONNECT_FAILED', async (t) => {
  const e = await failure(connectFramed('/run/dispatchd/main.sock', 0, 5000, { deadline: Date.now() + 20, totalMs: 50 }, neverConnects));
  t.equal(e.code, 'TIMEOUT');
  t.equal(e.message, "failed to connect to '/run/dispatchd/main.sock': no answer within 50 ms, the request's time budget (timeoutMs, dispatchctl --timeout)");
  t.equal(exitCodeFor(e.code), EXIT.TIMED_OUT, 'exit 124');
});

t.test('a budget already spent is TIMEOUT too', async (t) => {
  const e = await failure(connectFramed('/tmp/x.sock', 0, 1, { deadline: Date.now() - 5, totalMs: 1 }, neverConnects));
  t.equal(e.code, 'TIMEOUT');
  t.match(e.message, 'no answer within 1 ms');
});

t.test('the connect timeout running out with budget left stays CONNECT_FAILED (exit 69)', async (t) => {
  const e = await failure(connectFramed('/tmp/x.sock', 0, 10, { deadline: Date.now() + 60_000, totalMs: 60_000 }, neverConnects));
  t.equal(e.code, 'CONNECT_FAILED');
  t.equal(e.message, "failed to connect to '/tmp/x.sock': no answer within 10 ms");
  t.equal(exitCodeFor(e.code), EXIT.UNAVAILABLE, 'exit 69');
  t.equal((await failure(connectFramed('/tmp/x.sock', 0, 10, undefined, neverConnects))).code, 'CONNECT_FAILED', 'and without a budget');
});

t.test('a client whose connect fails for a real reason says CONNECT_FAILED even with a short budget', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'connect-timeout-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const missing = await failure(new DispatchClient({ socket: path.join(dir, 'missing.sock'), timeoutMs: 50 }).request('echo'));
  t.equal(missing.code, 'CONNECT_FAILED');
  t.match(missing.message, /no such socket/);
  const plain = path.join(dir, 'plain-file');
  fs.writeFileSync(plain, '');
  const notSocket = await failure(new DispatchClient({ socket: plain, timeoutMs: 50 }).request('echo'));
  t.equal(notSocket.code, 'CONNECT_FAILED');
  t.match(notSocket.message, /not a socket/);
});
