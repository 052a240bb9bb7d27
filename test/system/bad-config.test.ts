/**
 * A bad configuration value, as an operator makes one: every daemon refuses it in its own
 * journal (key and line named), exits 78 and is not restarted in a loop; the scoreboard
 * keeper still works (it reads only [paths]); `dispatchctl status` shows what is missing;
 * and the documented recovery (fix, reset-failed, restart) brings the suite back.
 */
import t from 'tap';
import { DAEMONS, installedSuite, until } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

if (sb) {
  const CONF = '/etc/dispatchd/dispatchd.conf';
  const daemons = DAEMONS;

  t.test('a bad value: each daemon refuses it with file, line and key, exit 78, no loop', async (t) => {
    // As an operator does it: uncomment the key in its section and give it a bad value.
    await sb.out(`cp ${CONF} /root/good.conf && sed -i 's/^#request_deadline_ms = .*/request_deadline_ms = -5/' ${CONF}`);
    const line = Number(await sb.out(`grep -n '^request_deadline_ms = -5' ${CONF} | cut -d: -f1`));
    await sb.out('systemctl restart dispatchd.target');
    for (const unit of daemons) {
      const s = await until(`${unit} to fail`, 15_000, async () => {
        const p = await sb.show(unit, 'ActiveState', 'Result', 'ExecMainStatus', 'NRestarts');
        return p.ActiveState === 'failed' ? p : undefined;
      });
      t.equal(s.ExecMainStatus, '78', `${unit}: exit status 78`);
      t.equal(s.NRestarts, '0', `${unit}: not restarted`);
    }
    const err = await sb.out('journalctl --no-pager -q -o cat -u dispatchd-main -p err');
    t.match(err, new RegExp(`failed to load configuration '${CONF}' line ${line}: key 'secondary.request_deadline_ms'`), 'journalctl -u dispatchd-main -p err names the file, line and key');
    t.match(err, /systemctl reset-failed 'dispatchd-\*' && systemctl restart dispatchd.target/, 'and says how to recover');
    t.equal((await sb.show('dispatchd-scoreboard.service', 'ActiveState')).ActiveState, 'active', 'the scoreboard keeper is not affected');
    const status = await sb.sh('dispatchctl status');
    t.match(status.stdout.toString(), /\nmain\s+-\s+absent/, 'dispatchctl status shows main absent');
    t.match(status.stderr, /main is absent: see systemctl status dispatchd-main.service/);
  });

  t.test('the documented recovery: fix the file, reset-failed, restart', async (t) => {
    await sb.out(`cp /root/good.conf ${CONF}`);
    await sb.out("systemctl reset-failed 'dispatchd-*' && systemctl restart dispatchd.target");
    const r = await until('a request served', 15_000, async () => {
      const e = await sb.exec(['dispatchctl', 'request', 'echo', 'back']);
      return e.code === 0 ? e.stdout.toString() : undefined;
    });
    t.equal(r, 'back');
  });

  t.test('stopped with a bad file in place, the suite still removes its scoreboard', async (t) => {
    await sb.out(`sed -i 's/^#queue_max = .*/queue_max = "lots"/' ${CONF}`);
    await sb.out('systemctl stop dispatchd.target');
    await until('the scoreboard to be removed', 10_000, async () => ((await sb.sh('test -e /dev/shm/dispatchd.scoreboard')).code !== 0 ? true : undefined));
    t.pass('no stale scoreboard');
    await sb.out(`cp /root/good.conf ${CONF}`);
  });
}
