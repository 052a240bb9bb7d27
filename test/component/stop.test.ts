/**
 * Stopping under load (SIGTERM, as `systemctl stop` sends): each daemon drains what runs, cuts
 * off what outlives the drain with a clear, retryable answer, and exits 0 in time; the
 * library carries the cut-off requests to a daemon still running.
 */
import t from 'tap';
import { DispatchClient, Session } from '../../daemons/client/client.js';
import { DispatchError } from '../../daemons/common/errors.js';
import { closeAfter, ProcessSuite, until } from '../helpers/index.js';
import { sleepOnNewLease, watchedClient } from './lib/leases.js';

// Requests wait in main's admission queue long enough for the test to see them there.
const suite = new ProcessSuite({ config: '[main]\nqueue_timeout_ms = 10000\n' });
closeAfter(t, suite);
t.before(() => suite.startAll());

/** The drain (1.5 s) plus the cut-off (0.2 s) plus process exit: the bound the units' stop timeout is far above. */
const STOP_BOUND_MS = 3000;

t.test('a secondary stopped mid-request answers SHUTTING_DOWN (retryable) after its drain and exits 0 in time', async (t) => {
  const { grant, session, outcome: running } = await sleepOnNewLease(suite.mainSocket, 10_000, 20_000);
  await suite.untilRunning(`secondary-${grant.secondary}`);
  const t0 = Date.now();
  const exit = await suite.stop(`secondary-${grant.secondary}`);
  const ms = Date.now() - t0;
  t.same(exit, { code: 0, signal: null }, 'exits 0');
  t.ok(ms < STOP_BOUND_MS, `stopped in ${ms} ms`);
  const err = await running;
  session.close();
  t.ok(err instanceof DispatchError, 'the request failed');
  if (err instanceof DispatchError) {
    t.equal(err.code, 'SHUTTING_DOWN');
    t.equal(err.retryable, true);
    t.match(err.message, /is stopping and cut off the 'sleep' request after \d+ ms; it may have run in part: it may be retried/);
  }
  t.ok(suite.output(`secondary-${grant.secondary}`).some((l) => /warning: cut off a 'sleep' request .* is stopping .*lease=[0-9a-f]{82}\b/.test(l)), 'logged with the lease');
  await suite.start(`secondary-${grant.secondary}`);
});

t.test('through the library, a request cut off by a stopping secondary completes on another one', async (t) => {
  const { client: c, retried, first: firstLease } = watchedClient(suite.mainSocket);
  const pending = c.requestWithInfo('sleep', Buffer.from('2500'));
  await until('the lease', 5000, () => firstLease() !== undefined);
  const first = firstLease();
  await suite.untilRunning(`secondary-${first!.secondary}`);
  await suite.stop(`secondary-${first!.secondary}`);
  const info = await pending;
  t.equal(info.result.toString(), 'slept 2500');
  t.same(retried, ['SHUTTING_DOWN'], 'retried once, after SHUTTING_DOWN');
  t.not(info.secondary, first!.secondary, 'on the other secondary');
  await suite.start(`secondary-${first!.secondary}`);
});

t.test('main stopped with requests waiting: they get SHUTTING_DOWN at once, main exits 0 in time', async (t) => {
  // Fill every lease (2 secondaries x max_leases 32), each claimed by a request on its own
  // connection, so that the secondaries grant no more credits and new lease requests wait in
  // main's admission queue.
  const c = new DispatchClient({ socket: suite.mainSocket, attempts: 1, answerTimeoutMs: 20_000 });
  const held: Session[] = [];
  for (let i = 0; i < 64; i++) {
    const s = await Session.open(await c.lease('echo'), 1024, 2000);
    await s.run('echo', Buffer.from('hold'), 2000);
    held.push(s);
  }
  const queued = Array.from({ length: 5 }, () => c.lease('echo').then(() => 'granted', (e: DispatchError) => e.code));
  // main publishes its queue length with its heartbeat (at least once a second).
  await until('the 5 requests in the admission queue', 5000, () => (suite.slot('main')?.queued ?? 0) === 5);
  const t0 = Date.now();
  const exit = await suite.stop('main');
  t.same(exit, { code: 0, signal: null }, 'exits 0');
  t.ok(Date.now() - t0 < STOP_BOUND_MS, `stopped in ${Date.now() - t0} ms`);
  const codes = await Promise.all(queued);
  t.same(codes, Array(5).fill('SHUTTING_DOWN'), `every waiting request answered SHUTTING_DOWN at once: ${codes.join(', ')}`);
  held.forEach((s) => s.close());
});
