/**
 * Every secondary at its limit, with the default queue timeout (2 s): dispatchctl ends with
 * "busy, retry after N ms" and its own exit code (75) within its --timeout, never a hang and
 * never a misleading "no answer" timeout; once a lease frees up, a queued request is served.
 */
import t from 'tap';
import { DispatchClient, Session } from '../../daemons/client/client.js';
import { EXIT } from '../../daemons/common/exit-codes.js';
import { closeAfter, ProcessSuite, until } from '../helpers/index.js';

const suite = new ProcessSuite({ config: `[secondary]\nmax_leases = 1\n`, restart: false });
closeAfter(t, suite);
t.before(async () => {
  await suite.start('secondary-1');
  await suite.start('secondary-2');
  await suite.start('main');
});

/** Holds every lease (2 secondaries × max_leases 1) with a session running a long sleep. */
async function holdAll(): Promise<Session[]> {
  const c = new DispatchClient({ socket: suite.mainSocket, attempts: 1 });
  const held: Session[] = [];
  for (let i = 0; i < 2; i++) {
    const s = await Session.open(await c.lease('sleep'), 1024, 2000);
    s.run('sleep', Buffer.from('60000'), 120_000).catch(() => undefined);
    held.push(s);
  }
  return held;
}

t.test('dispatchctl exits 75 with "retry after" within its --timeout, shorter or longer than the queue timeout', async (t) => {
  const held = await holdAll();
  t.teardown(() => held.forEach((s) => s.close()));
  for (const timeout of [1000, 5000]) {
    const t0 = Date.now();
    const r = await suite.dispatchctl(['request', '--timeout', String(timeout), 'echo', 'x']);
    const ms = Date.now() - t0;
    t.equal(r.code, EXIT.BUSY, `--timeout ${timeout}: exit 75 (${r.stderr.trim()})`);
    t.match(r.stderr, /busy.*retry after \d+ ms.*\[BUSY\]/, 'says busy and when to retry');
    // Bound: the budget, plus dispatchctl's own start-up and exit (Node, 0.3 to 2 s on a busy machine).
    t.ok(ms < timeout + 3000, `--timeout ${timeout}: answered in ${ms} ms`);
  }
});

t.test('a request queued while every secondary is busy is served when a lease frees up', async (t) => {
  const held = await holdAll();
  const queued = new DispatchClient({ socket: suite.mainSocket, attempts: 1 }).request('echo', Buffer.from('queued'));
  await until('the request to wait in the admission queue', 2000, () => (suite.slot('main')?.queued ?? 0) === 1);
  held.pop()!.close();
  t.equal((await queued).toString(), 'queued');
  held.forEach((s) => s.close());
});
