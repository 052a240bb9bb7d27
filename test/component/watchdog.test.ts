/**
 * The watchdog against real daemons: it pings them over their mailbox FIFOs, leaves healthy
 * ones alone, and restarts a frozen one (SIGSTOP) through its UnitManager. Here the
 * UnitManager drives the test's processes the way systemd does on RestartUnit (SIGTERM then
 * SIGCONT, wait for exit, start again); the system tests use the real one over D-Bus.
 */
import { PassThrough } from 'node:stream';
import t from 'tap';
import { DispatchClient } from '../../daemons/client/client.js';
import { closeAfter, ProcessSuite, until } from '../helpers/index.js';

// The suite is the watchdog's unit manager, as systemd is over D-Bus; no Restart= of its own.
const suite = new ProcessSuite({ config: `[watchdog]\nprobe_interval_ms = 100\nmax_missed = 3\n`, secondaries: 1, restart: false });
closeAfter(t, suite);

t.test('the watchdog leaves healthy daemons alone and restarts a frozen main', async (t) => {
  await suite.start('secondary-1');
  await suite.start('main');
  const logs = new PassThrough();
  let logText = '';
  logs.on('data', (c: Buffer) => (logText += c.toString()));
  const sent: string[] = [];
  suite.startWatchdog({ binding: { sendState: (s) => sent.push(s), watchdogInterval: () => 400 }, logStream: logs, generation: 7 });
  await until('ten probe rounds', 5000, () => (suite.slot('watchdog')?.requests ?? 0) >= 10);
  t.same(suite.restartLog, [], 'no restart while everyone answers');
  t.ok(sent.includes('WATCHDOG=1'), 'the probe loop keeps the watchdog itself alive in systemd');
  t.ok(sent[0]?.startsWith('READY=1'), 'READY=1 first');

  const frozenPid = suite.pid('main')!;
  const frozenAt = Date.now();
  t.ok(suite.signal('main', 'SIGSTOP'), 'main frozen');
  await until('the watchdog to restart main', 5000, () => suite.restartLog.length > 0);
  const detectedMs = Date.now() - frozenAt;
  t.same(suite.restartLog, ['dispatchd-main.service']);
  t.ok(detectedMs < 1500, `caught within ${detectedMs} ms (3 missed pings at 100 ms)`);
  t.match(logText, /warning: dispatchd-main.service missed 3 pings in a row .*: restarting it .*unit=dispatchd-main.service.*reason=missed-pings.*action=restart/);

  await until('a new main', 10_000, () => suite.slot('main')?.pid !== frozenPid && suite.slot('main')?.state === 'ready');
  const c = new DispatchClient({ socket: suite.mainSocket, timeoutMs: 10_000 });
  t.equal((await c.request('echo', Buffer.from('again'))).toString(), 'again', 'served again after the restart');
  t.equal(suite.slot('main')!.starts, 2, 'the scoreboard counts the restart');
  await until('the recovery to be logged', 20_000, () => /is active again/.test(logText));
  t.same(suite.restartLog, ['dispatchd-main.service'], 'restarted once, not in a loop');
});
