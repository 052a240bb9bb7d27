import t from 'tap';
import { defaultConfig } from '../../../daemons/common/config.js';
import { DispatchError } from '../../../daemons/common/errors.js';
import { daemonOfUnit } from '../../../daemons/common/units.js';
import { checkProbeInterval } from '../../../daemons/watchdog/watchdog.js';

t.test('daemonOfUnit: the units the watchdog supervises', async (t) => {
  t.same(daemonOfUnit('dispatchd-main.service'), { name: 'main', instance: 0 });
  t.same(daemonOfUnit('dispatchd-secondary@1.service'), { name: 'secondary-1', instance: 1 });
  t.same(daemonOfUnit('dispatchd-secondary@62.service'), { name: 'secondary-62', instance: 62 });
  t.equal(daemonOfUnit('dispatchd-secondary@63.service'), undefined, 'past the bound of topology.ts');
});

t.test('daemonOfUnit: everything else is not supervised', async (t) => {
  for (const unit of [
    'dispatchd-watchdog.service', // it does not restart itself
    'dispatchd-scoreboard.service',
    'dispatchd.target',
    'dispatchd-main.socket',
    'dispatchd-main-mailbox.socket',
    'dispatchd-secondary@1.socket',
    'dispatchd-secondary-mailbox@1.socket',
    'dispatchd-secondary@.service', // the template itself
    'dispatchd-secondary@0.service',
    'dispatchd-secondary@01.service',
    'dispatchd-secondary@1000.service',
    'dispatchd-secondary@x.service',
    'dispatchd-secondary@1.service.bak',
    'xdispatchd-main.service',
    'sshd.service',
    '',
  ]) {
    t.equal(daemonOfUnit(unit), undefined, JSON.stringify(unit));
  }
});

t.test('checkProbeInterval: the probe loop must feed WatchdogSec= in time', async (t) => {
  const withProbe = (ms: number) => {
    const c = defaultConfig();
    c.watchdog.probe_interval_ms = ms;
    return c;
  };
  t.doesNotThrow(() => checkProbeInterval(withProbe(300), 3000), 'the default, 300 ms, against WatchdogSec=3s');
  t.doesNotThrow(() => checkProbeInterval(withProbe(1500), 3000), 'half of WatchdogSec= is the most');
  t.doesNotThrow(() => checkProbeInterval(withProbe(60_000), 0), 'no systemd watchdog: nothing to feed');
  const err = (() => {
    try {
      checkProbeInterval(withProbe(1501), 3000);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  t.ok(err instanceof DispatchError, 'longer: refused');
  t.equal((err as DispatchError).code, 'CONFIG_INVALID', 'as a configuration error (exit 78, no restart loop)');
  t.match((err as DispatchError).message, /watchdog\.probe_interval_ms = 1501 is longer than half of the unit's WatchdogSec= \(3000 ms\).*at most 1500/, 'naming the key, the value and the bound');
});
