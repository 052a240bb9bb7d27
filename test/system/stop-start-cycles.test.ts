/**
 * Stop, then start again, under load: cycles 11 to 20 of test/system/stop-start.test.ts, in a
 * sandbox of their own so that the system tier runs both halves side by side. Each cycle:
 * started, every unit active, serving the load; stopped within 5 s with Result=success,
 * nothing left behind, each daemon's last line in the journal under its unit; no unit hits
 * its start limit; every request that failed on the way ended with a clear error.
 */
import t from 'tap';
import { StopStartCycles } from './lib/stop-start.js';
import { installedSuite } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

if (sb) {
  let cycles: StopStartCycles | undefined;
  t.teardown(() => cycles?.stop()); // a failed assertion must not leave its 600 s running

  t.test('systemctl stop dispatchd.target under load: within 5 s, Result=success, nothing left behind', async (t) => {
    cycles = await StopStartCycles.underLoad(sb);
    await cycles.stopAndCheck(t, 'stop');
  });

  t.test('stop, then start again, 10 more times, under load: same behaviour each time', async (t) => {
    await cycles!.run(t, 11, 20);
    const limits = await sb.out("journalctl --no-pager -q -u 'dispatchd*' -g 'Start request repeated too quickly' || true");
    t.equal(limits.trim(), '', 'no unit hit its start limit');
    cycles!.checkLoad(t, await cycles!.stopLoad());
  });

  t.test('started once more, the suite serves', async (t) => {
    await cycles!.startAndCheck(t, 'final', false);
  });
}
