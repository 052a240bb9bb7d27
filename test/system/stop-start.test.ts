/**
 * Stopping dispatchd.target under load stops every process within 5 s with result success,
 * the requests in flight are drained or fail with a clear error, the last lines each daemon
 * logs before it exits reach the journal (under its unit, every time), and nothing is left
 * behind (process, FIFO, socket, segment); stop then start again behaves the same each time
 * (cycles 1 to 10 here, 11 to 20 in test/system/stop-start-cycles.test.ts, in a sandbox of
 * their own), and 20 stop;start back to back, as a script would, after these cycles in the
 * same 300 s, never trip the units' start limit.
 */
import t from 'tap';
import { StopStartCycles } from './lib/stop-start.js';
import { installedSuite, UNITS, untilUnits } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

if (sb) {
  let cycles: StopStartCycles | undefined;
  t.teardown(() => cycles?.stop()); // a failed assertion must not leave its 600 s running
  const startLimitHit = async () => (await sb.out("journalctl --no-pager -q -u 'dispatchd*' -g 'Start request repeated too quickly' || true")).trim();

  t.test('systemctl stop dispatchd.target under load: within 5 s, Result=success, nothing left behind', async (t) => {
    cycles = await StopStartCycles.underLoad(sb);
    await cycles.stopAndCheck(t, 'stop');
  });

  t.test('stop, then start again, 10 times, under load: same behaviour each time', async (t) => {
    await cycles!.run(t, 1, 10);
    t.equal(await startLimitHit(), '', 'no unit hit its start limit');
    cycles!.checkLoad(t, await cycles!.stopLoad());
  });

  t.test('stop;start back to back, 20 times, as a script would: no start limit tripped', async (t) => {
    // `systemctl stop` returns before the daemons have drained, so each start finds them
    // still stopping: systemd retries those starts, and every retry counts against the
    // units' start limit (this tripped a limit of 30 in 150 s after about 20 cycles).
    const r = await sb.sh('for i in $(seq 1 20); do systemctl stop dispatchd.target; systemctl start dispatchd.target || exit 1; done', { timeoutMs: 180_000 });
    t.equal(r.code, 0, `every start exited 0 (${r.stderr.trim()})`);
    await untilUnits(sb, UNITS, 'active', 10_000).catch((err: Error) => t.fail(err.message));
    t.equal(await startLimitHit(), '', 'no unit hit its start limit');
    t.equal((await sb.exec(['dispatchctl', 'request', 'echo', 'after'])).stdout.toString(), 'after', 'serving');
  });

  t.test('started once more, the suite serves', async (t) => {
    await cycles!.startAndCheck(t, 'final', false);
  });
}
