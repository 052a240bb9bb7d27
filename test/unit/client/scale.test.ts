import t from 'tap';
import { planScale, scale, type Systemctl } from '../../../daemons/client/scale.js';
import { MAX_SECONDARIES } from '../../../daemons/common/topology.js';

t.test('planScale: up, down, same, suite stopped, out of range', async (t) => {
  const up = planScale({ enabled: [1, 2], running: [1, 2], suiteActive: true }, 4);
  t.same(up.enable, ['dispatchd-secondary@1.service', 'dispatchd-secondary@2.service', 'dispatchd-secondary@3.service', 'dispatchd-secondary@4.service']);
  t.same(up.start, up.enable, 'started when the suite runs');
  t.same(up.stop, []);
  t.same(up.disable, []);

  const down = planScale({ enabled: [1, 2, 3, 4], running: [1, 2, 3, 5], suiteActive: true }, 2);
  t.same(down.stop, [
    'dispatchd-secondary@3.service', 'dispatchd-secondary@3.socket', 'dispatchd-secondary-mailbox@3.socket',
    'dispatchd-secondary@4.service', 'dispatchd-secondary@4.socket', 'dispatchd-secondary-mailbox@4.socket',
    'dispatchd-secondary@5.service', 'dispatchd-secondary@5.socket', 'dispatchd-secondary-mailbox@5.socket',
  ], 'instances above N stop with their sockets, running or only enabled (4: its sockets may listen while its service is not running)');
  t.same(down.disable, ['dispatchd-secondary@3.service', 'dispatchd-secondary@4.service', 'dispatchd-secondary@5.service']);

  const stopped = planScale({ enabled: [1, 2], running: [], suiteActive: false }, 3);
  t.same(stopped.start, [], 'a stopped suite is only re-enabled, not started');
  t.equal(stopped.enable.length, 3);

  for (const n of [0, MAX_SECONDARIES + 1, 1.5, NaN]) t.throws(() => planScale({ enabled: [], running: [], suiteActive: true }, n), { code: 'SCALE_FAILED' }, `${n} refused`);
});

t.test('scale: the systemctl calls, in order; a failure names the command', async (t) => {
  const calls: string[] = [];
  let enabled = 'dispatchd-secondary@1.service dispatchd-secondary@2.service dispatchd-secondary@3.service';
  const fake: Systemctl = async (args) => {
    calls.push(args.join(' '));
    if (args[0] === 'show') return { code: 0, stdout: `dispatchd-main.service ${enabled}\n`, stderr: '' };
    if (args[0] === 'list-units') return { code: 0, stdout: 'dispatchd-secondary@1.service loaded active running x\ndispatchd-secondary@3.service loaded active running x\n', stderr: '' };
    if (args[0] === 'is-active') return { code: 0, stdout: '', stderr: '' };
    if (args[0] === 'disable') enabled = 'dispatchd-secondary@1.service';
    return { code: 0, stdout: '', stderr: '' };
  };
  const r = await scale(1, fake);
  const verbs = calls.map((c) => c.split(' ')[0]);
  t.same(verbs.slice(3, 7), ['enable', 'start', 'stop', 'disable'], 'enable and start first, then stop and disable');
  t.equal(calls[5], 'stop dispatchd-secondary@2.service dispatchd-secondary@2.socket dispatchd-secondary-mailbox@2.socket dispatchd-secondary@3.service dispatchd-secondary@3.socket dispatchd-secondary-mailbox@3.socket', '2 (enabled, its service not running) stops with its sockets as 3 does');
  t.same(r.after.enabled, [1]);

  const denied: Systemctl = async (args) =>
    args[0] === 'enable' ? { code: 1, stdout: '', stderr: 'Failed to enable unit: Access denied\n' } : fake(args);
  await t.rejects(scale(2, denied), { code: 'SCALE_FAILED', message: /failed to enable 2 secondaries: systemctl enable .*Access denied \(run as root\)/ });
});
