/**
 * The main server restarts (stopped, or killed) while secondaries run requests it leased:
 * the secondaries keep running (same processes), the work in progress completes, its `done`
 * messages wait in main's FIFO while main is down (the harness holds the FIFO as systemd's
 * ListenFIFO= does) and the new main reads them and accounts for them; it re-adopts its
 * scoreboard slot and serves on with the same secondaries.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { DispatchClient, Session } from '../../daemons/client/client.js';
import { closeAfter, ProcessSuite, until } from '../helpers/index.js';

const suite = new ProcessSuite();
closeAfter(t, suite);
t.before(() => suite.startAll());

const secondaries = () => suite.names.filter((n) => n !== 'main').map((n) => ({ name: n, pid: suite.pid(n), starts: suite.slot(n)!.starts, requests: suite.slot(n)!.requests }));
/** The secondaries once their counters are published (they batch them for a few ms): two reads 20 ms apart agree. */
async function settled(): Promise<ReturnType<typeof secondaries>> {
  for (let prev = JSON.stringify(secondaries()); ; ) {
    await sleep(20);
    const now = secondaries();
    if (JSON.stringify(now) === prev) return now;
    prev = JSON.stringify(now);
  }
}

for (const how of ['stopped', 'killed'] as const) {
  t.test(`main ${how} while secondaries run its leases: the work completes and the new main accounts for it`, async (t) => {
    await until('every daemon up', 10_000, () => suite.healthy());
    const before = await settled();
    const mainStarts = suite.slot('main')!.starts;
    const c = new DispatchClient({ socket: suite.mainSocket, attempts: 1 });
    // Four requests in progress on the secondaries, on leases from the main about to go.
    const sessions = await Promise.all(Array.from({ length: 4 }, async () => Session.open(await c.lease('sleep'), 1024, 2000)));
    const work = sessions.map((s) => s.run('sleep', Buffer.from('800'), 10_000));
    await until('the 4 requests to run on the secondaries', 5000, () => suite.names.filter((n) => n !== 'main').reduce((sum, n) => sum + suite.slot(n)!.running, 0) === 4);
    if (how === 'stopped') await suite.stop('main'); // systemctl stop: main is down until started
    else suite.signal('main', 'SIGKILL'); // the harness restarts it after RestartSec=, as systemd does
    // The work completes while main is down or restarting; closing the sessions ends the
    // leases, and the secondaries write `done` into main's FIFO.
    const results = await Promise.all(work);
    t.same(results.map(String), ['slept 800', 'slept 800', 'slept 800', 'slept 800'], 'the work in progress completed');
    sessions.forEach((s) => s.close());
    if (how === 'stopped') {
      // The secondaries have ended the leases (and written `done` into the FIFO, which nobody reads).
      await until('the secondaries to end the leases', 5000, () => suite.names.filter((n) => n !== 'main').every((n) => suite.slot(n)!.active === 0));
      await until('the stopping main to say what it left to its successor', 5000, () => suite.output('main').some((l) => /4 of this process's leases not yet ended: the next main process accounts for them/.test(l)));
      t.pass('the stopping main said what it left to its successor');
      await suite.start('main');
    }
    await until('the new main', 10_000, () => suite.healthy());
    await until('the new main to account for the adopted leases', 5000, () => suite.output('main').some((l) => /accounted for 4 leases granted by an earlier main process/.test(l)));
    const line = suite.output('main').filter((l) => /accounted for 4 leases/.test(l)).pop()!;
    t.match(line, /4 used, 4 requests served, 0 failed/, `the new main read the done messages: ${line.replace(/^.*info: /, '')}`);
    t.match(suite.output('main').filter((l) => /main server ready/.test(l)).pop()!, /re-adopted the scoreboard \(start \d+ of this slot\): 2 secondaries running/, 'and says what it re-adopted');
    t.equal(suite.slot('main')!.starts, mainStarts + 1, 'the new main took over its slot (one more start)');
    const after = await settled();
    t.same(after.map((s) => [s.name, s.pid, s.starts]), before.map((s) => [s.name, s.pid, s.starts]), 'the secondaries kept running: same processes, no restart');
    t.equal(after.reduce((n, s) => n + s.requests, 0) - before.reduce((n, s) => n + s.requests, 0), 4, 'their counters on the scoreboard count the work');
    // The new main serves on, with the same secondaries.
    const more = await Promise.all(Array.from({ length: 10 }, (_, i) => new DispatchClient({ socket: suite.mainSocket }).request('echo', Buffer.from(`m${i}`))));
    t.same(more.map(String), Array.from({ length: 10 }, (_, i) => `m${i}`));
    t.same(secondaries().map((s) => s.pid), before.map((s) => s.pid), 'still the same secondaries');
  });
}
