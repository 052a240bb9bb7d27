import t from 'tap';
import { daemonOfUnit } from '../../../daemons/watchdog/watchdog.js';

t.test('daemonOfUnit: the units the watchdog supervises', async (t) => {
  t.same(daemonOfUnit('dispatchd-main.service'), { name: 'main', instance: 0 });
  t.same(daemonOfUnit('dispatchd-secondary@1.service'), { name: 'secondary-1', instance: 1 });
  t.same(daemonOfUnit('dispatchd-secondary@62.service'), { name: 'secondary-62', instance: 62 });
  t.same(daemonOfUnit('dispatchd-secondary@999.service'), { name: 'secondary-999', instance: 999 });
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
