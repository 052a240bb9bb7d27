/**
 * A secondary killed mid-request, and leases that went stale or expired, against the suite as
 * processes with systemd imitated (a killed daemon is started again after RestartSec=):
 *
 * - the request in progress fails with a clear error that says it may be retried, or, through
 *   the library's retries, completes on another process (delivery is at least once);
 * - requests that had not started go elsewhere; the killed secondary comes back;
 * - a lease of a restarted secondary (LEASE_STALE) or an expired one (LEASE_EXPIRED) is
 *   refused, the library gets a new one, and no request is served by a wrong generation.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { DispatchClient, type RequestInfo } from '../../daemons/client/client.js';
import { DispatchError } from '../../daemons/common/errors.js';
import type { LeaseGranted } from '../../daemons/common/protocol.js';
import { closeAfter, ProcessSuite, until } from '../helpers/index.js';
import { sleepOnNewLease, watchedClient } from './lib/leases.js';

const LEASE_TTL_MS = 300;
const suite = new ProcessSuite({ config: `[main]\nlease_ttl_ms = ${LEASE_TTL_MS}\n` });
closeAfter(t, suite);
t.before(() => suite.startAll());

const name = (g: LeaseGranted) => `secondary-${g.secondary}`;

t.test('the request in progress on a killed secondary fails clearly: it may have run, it may be retried', async (t) => {
  const { grant, session, outcome: running } = await sleepOnNewLease(suite.mainSocket, 5000, 10_000);
  await suite.untilRunning(name(grant));
  const pid = suite.pid(name(grant));
  suite.signal(name(grant), 'SIGKILL');
  const err = await running;
  session.close();
  t.ok(err instanceof DispatchError, 'the run fails');
  if (!(err instanceof DispatchError)) return;
  t.equal(err.code, 'CONNECTION_LOST');
  t.equal(err.retryable, true, 'marked retryable');
  t.equal(err.fields.may_have_run, true, 'and may have run');
  t.match(err.message, /may or may not have run.*may be retried/, `says so: ${err.message}`);
  await until(`${name(grant)} to come back`, 10_000, () => suite.healthy() && suite.pid(name(grant)) !== pid);
  t.pass(`${name(grant)} came back (pid ${pid} -> ${suite.pid(name(grant))})`);
});

t.test('through the library the request completes elsewhere (at least once), and the rest go elsewhere too', async (t) => {
  await until('every daemon up', 10_000, () => suite.healthy());
  const { client: c, retried, first: firstLease } = watchedClient(suite.mainSocket);
  const pending = c.requestWithInfo('sleep', Buffer.from('1000'));
  await until('the lease', 5000, () => firstLease() !== undefined);
  const first = firstLease();
  await suite.untilRunning(name(first!));
  suite.signal(name(first!), 'SIGKILL');
  // Requests that had not started while it is down: every one is served, none by the dead process.
  const others = await Promise.all(Array.from({ length: 20 }, (_, i) => new DispatchClient({ socket: suite.mainSocket }).requestWithInfo('echo', Buffer.from(`o${i}`))));
  const info = await pending;
  t.equal(info.result.toString(), 'slept 1000', 'the request completed');
  t.ok(retried.includes('CONNECTION_LOST'), `after a retry (${retried.join(', ')})`);
  t.not(info.generation, first!.generation, 'on another process than the one killed');
  t.same(others.map((o) => o.result.toString()), others.map((_, i) => `o${i}`), 'the other requests all succeeded');
  t.notOk(others.some((o: RequestInfo) => o.generation === first!.generation), 'none was served by the killed process');
  await until(`${name(first!)} to come back`, 10_000, () => suite.healthy());
});

t.test('a lease for a secondary that restarted is refused as stale; the library gets a new one', async (t) => {
  await until('every daemon up', 10_000, () => suite.healthy());
  // Restart the secondary between the grant and its use (systemctl restart).
  const { client: c, retried, first } = watchedClient(suite.mainSocket, (g) => suite.restartDaemon(name(g)));
  const info = await c.requestWithInfo('echo', Buffer.from('fresh'));
  const stale = first();
  t.equal(info.result.toString(), 'fresh');
  t.same(retried, ['LEASE_STALE'], 'refused once as stale, then served');
  t.not(info.generation, stale!.generation, 'not by the generation the stale lease named');
  const current = suite.slot(`secondary-${info.secondary}`)!.generation;
  t.equal(info.generation, current, `by the current process of secondary-${info.secondary}`);
  // Presented directly, the stale lease is refused with its own code and a clear message.
  const e = await new DispatchClient({ socket: suite.mainSocket }).runOnLease(stale!, 'echo', Buffer.from('x'), 2000).catch((x: unknown) => x);
  t.ok(e instanceof DispatchError && e.code === 'LEASE_STALE', 'LEASE_STALE');
  t.match((e as Error).message, /the run frame names generation \d+, but this is generation \d+ of secondary-\d .*ask the main server for a new lease/);
});

t.test('an expired lease is refused as expired; the library gets a new one', async (t) => {
  const { client: c, retried } = watchedClient(suite.mainSocket, () => sleep(LEASE_TTL_MS + 200));
  const info = await c.requestWithInfo('sha256', Buffer.from(''));
  t.equal(info.result.toString(), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  t.same(retried, ['LEASE_EXPIRED'], 'refused once as expired, then served');
  t.equal(info.attempts, 2);
});
