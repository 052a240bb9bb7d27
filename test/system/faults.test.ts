/**
 * Faults from the contract, under the real systemd: a frozen main server is restarted and
 * serving again within 5 s; a killed secondary does not stop requests and comes back.
 */
import t from 'tap';
import { installedSuite, until } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

if (sb) {
  const echo = async (text: string, timeoutMs = 10_000) => {
    const r = await sb.exec(['dispatchctl', 'request', '--timeout', String(timeoutMs), 'echo', text], { timeoutMs: timeoutMs + 5_000 });
    return r.code === 0 && r.stdout.toString() === text;
  };

  t.test('main frozen with SIGSTOP is back and serving within 5 s', async (t) => {
    t.ok(await echo('before'), 'serving before the freeze');
    const frozen = Number((await sb.show('dispatchd-main.service', 'MainPID')).MainPID);
    const since = (await sb.out('date "+%Y-%m-%d %H:%M:%S"')).trim();
    const t0 = Date.now();
    await sb.out('systemctl kill -s SIGSTOP dispatchd-main.service');
    // Back means: a new main process (the frozen one was replaced) and a request served.
    await until('a new main server', 5_000, async () => {
      const pid = Number((await sb.show('dispatchd-main.service', 'MainPID')).MainPID);
      return pid !== 0 && pid !== frozen ? pid : undefined;
    }, 50);
    await until('a request served by the new main', 5_000, async () => ((await echo('after', 3_000)) ? true : undefined), 50);
    const ms = Date.now() - t0;
    t.comment(`freeze recovery: main frozen -> restarted and serving in ${ms} ms`);
    console.log(`# freeze recovery time: ${ms} ms`);
    t.ok(ms < 5_000, `back and serving in ${ms} ms (< 5000 ms)`);
    // The journal says which probe or watchdog caught it.
    const journal = await sb.out(`journalctl --no-pager -q --since '${since}' -u dispatchd-watchdog -u dispatchd-main -p warning`);
    t.match(journal, /dispatchd-main/, `the journal names what caught the freeze:\n${journal.trim()}`);
  });

  t.test('a secondary killed with SIGKILL: requests keep succeeding and it comes back', async (t) => {
    const before = Number((await sb.show('dispatchd-secondary@1.service', 'MainPID')).MainPID);
    await sb.out('systemctl kill -s SIGKILL dispatchd-secondary@1.service');
    let ok = 0;
    for (let i = 0; i < 10; i++) if (await echo(`during-${i}`)) ok += 1;
    t.equal(ok, 10, 'every request right after the kill succeeded');
    const after = await until('secondary 1 back with a new pid', 10_000, async () => {
      const s = await sb.show('dispatchd-secondary@1.service', 'MainPID', 'ActiveState');
      const pid = Number(s.MainPID);
      return s.ActiveState === 'active' && pid !== 0 && pid !== before ? pid : undefined;
    });
    t.not(after, before, `secondary 1 restarted (pid ${before} -> ${after})`);
  });

  t.test('the suite is whole again', async (t) => {
    for (const unit of ['dispatchd-main.service', 'dispatchd-secondary@1.service', 'dispatchd-secondary@2.service', 'dispatchd-watchdog.service']) {
      t.equal((await sb.show(unit, 'ActiveState')).ActiveState, 'active', `${unit} is active`);
    }
    t.ok(await echo('final'), 'serving');
  });
}
