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

  t.test('started once more, the suite serves', async (t) => {
    await startAndCheck(t, 'final');
  });
}
