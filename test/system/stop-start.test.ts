/**
 * Stopping dispatchd.target stops every process within 5 s with result success and leaves
 * no process, FIFO, socket or segment; stop then start again, 20 times, behaves the same
 * each time (and never trips the units' start limit).
 */
import t, { type Test } from 'tap';
import { installedSuite, leftovers, UNITS, untilUnits } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

if (sb) {
  const stopAndCheck = async (t: Test, label: string): Promise<boolean> => {
    const t0 = Date.now();
    const r = await sb.sh('systemctl stop dispatchd.target');
    // `systemctl stop` waits for the target's own job; the units stop right after it.
    await untilUnits(sb, UNITS, 'inactive', 5_000).catch((err: Error) => t.fail(`${label}: ${err.message}`));
    const ms = Date.now() - t0;
    let ok = t.equal(r.code, 0, `${label}: systemctl stop exits 0`);
    ok = t.ok(ms < 5_000, `${label}: every unit stopped in ${ms} ms (< 5000)`) && ok;
    const results = await sb.out(`for u in ${UNITS.map((u) => `'${u}'`).join(' ')}; do echo "$u $(systemctl show -p Result --value -- "$u")"; done`);
    const bad = results.trim().split('\n').filter((l) => !/ (success)?$/.test(l));
    ok = t.same(bad, [], `${label}: every unit ended with Result=success`) && ok;
    ok = t.same(await leftovers(sb), [], `${label}: no process, FIFO, socket or segment left`) && ok;
    return ok;
  };

  const startAndCheck = async (t: Test, label: string): Promise<boolean> => {
    const r = await sb.sh('systemctl start dispatchd.target');
    let ok = t.equal(r.code, 0, `${label}: systemctl start exits 0 (${r.stderr.trim()})`);
    await untilUnits(sb, UNITS, 'active', 10_000).catch((err: Error) => (ok = t.fail(`${label}: ${err.message}`)));
    const echo = await sb.exec(['dispatchctl', 'request', 'echo', label]);
    ok = t.equal(echo.stdout.toString(), label, `${label}: serving (${echo.stderr.trim()})`) && ok;
    return ok;
  };

  t.test('systemctl stop dispatchd.target leaves nothing behind, every unit Result=success', async (t) => {
    await stopAndCheck(t, 'stop');
  });

  t.test('stop, then start again, 20 times: same behaviour each time', async (t) => {
    const t0 = Date.now();
    for (let i = 1; i <= 20; i++) {
      // Stop at the first bad cycle: the rest would only repeat its failure.
      if (!(await startAndCheck(t, `cycle ${i} start`))) break;
      if (!(await stopAndCheck(t, `cycle ${i} stop`))) break;
    }
    t.comment(`20 stop/start cycles in ${Date.now() - t0} ms`);
    const limits = await sb.out("journalctl --no-pager -q -u 'dispatchd*' -g 'Start request repeated too quickly' || true");
    t.equal(limits.trim(), '', 'no unit hit its start limit');
  });

  t.test('stop;start back to back, 20 times, as a script would: no start limit tripped', async (t) => {
    // `systemctl stop` returns before the daemons have drained, so each start finds them
    // still stopping: systemd retries those starts, and every retry counts against the
    // units' start limit (this tripped a limit of 30 in 150 s after about 20 cycles).
    const r = await sb.sh('for i in $(seq 1 20); do systemctl stop dispatchd.target; systemctl start dispatchd.target || exit 1; done', { timeoutMs: 180_000 });
    t.equal(r.code, 0, `every start exited 0 (${r.stderr.trim()})`);
    await untilUnits(sb, UNITS, 'active', 10_000).catch((err: Error) => t.fail(err.message));
    const limits = await sb.out("journalctl --no-pager -q -u 'dispatchd*' -g 'Start request repeated too quickly' || true");
    t.equal(limits.trim(), '', 'no unit hit its start limit');
    t.equal((await sb.exec(['dispatchctl', 'request', 'echo', 'after'])).stdout.toString(), 'after', 'serving');
  });

  t.test('started once more, the suite serves', async (t) => {
    await startAndCheck(t, 'final');
  });
}
