/**
 * The watchdog against real daemons: it pings them over their mailbox FIFOs, leaves healthy
 * ones alone, and restarts a frozen one (SIGSTOP) through its UnitManager. Here the
 * UnitManager drives the test's processes the way systemd does on RestartUnit (SIGTERM then
 * SIGCONT, wait for exit, start again); the system tests use the real one over D-Bus.
 */
import path from 'node:path';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { DispatchClient } from '../../daemons/client/client.js';
import { loadConfig } from '../../daemons/common/config.js';
import { createLogger } from '../../daemons/common/logger.js';
import { openMailboxFd } from '../../daemons/common/mailbox.js';
import { Notifier } from '../../daemons/common/notify.js';
import type { UnitManager, UnitState } from '../../daemons/watchdog/unit-manager.js';
import { daemonOfUnit, formatDaemonId, parseDaemonId, serviceUnit } from '../../daemons/common/topology.js';
import { Watchdog } from '../../daemons/watchdog/watchdog.js';
import { watchdogParts } from '../../daemons/watchdog/watchdog-parts.js';
import { Suite } from './lib/suite.js';

const suite = new Suite(`[watchdog]\nprobe_interval_ms = 100\nmax_missed = 3\n`);
t.teardown(() => suite.close());


class TestUnits implements UnitManager {
  readonly restarts: string[] = [];
  private readonly busy = new Set<string>();
  async list(): Promise<UnitState[]> {
    // A unit being restarted stays listed, as in systemd (the suite forgets the process between stop and start).
    return [...new Set([...suite.daemons.keys(), ...this.busy])].map((n) => ({ unit: serviceUnit(parseDaemonId(n)!), activeState: this.busy.has(n) ? 'activating' : 'active', jobPending: this.busy.has(n) }));
  }
  async restart(unit: string): Promise<void> {
    this.restarts.push(unit);
    const name = formatDaemonId(daemonOfUnit(unit)!);
    const child = suite.daemons.get(name)!.child;
    child.kill('SIGTERM');
    child.kill('SIGCONT'); // as systemd's kill_and_sigcont(): a stopped process wakes to handle SIGTERM
    this.cycle(name);
  }
  async kill(unit: string): Promise<void> {
    const name = formatDaemonId(daemonOfUnit(unit)!);
    suite.daemons.get(name)?.child.kill('SIGKILL');
    if (!this.busy.has(name)) this.cycle(name);
  }
  /** Stops and starts a daemon; one killed while starting is started again, as systemd's Restart= does. */
  private cycle(name: string): void {
    this.busy.add(name);
    const start = () => suite.start(name);
    void suite
      .stop(name)
      .then(start)
      .catch(start)
      .finally(() => this.busy.delete(name));
  }
  close(): void {}
}

t.test('the watchdog leaves healthy daemons alone and restarts a frozen main', async (t) => {
  await suite.start('secondary-1');
  await suite.start('main');
  const logs = new PassThrough();
  let logText = '';
  logs.on('data', (c: Buffer) => (logText += c.toString()));
  const sent: string[] = [];
  const units = new TestUnits();
  const w = Watchdog.start({
    config: loadConfig(suite.configPath, true),
    logger: createLogger({ identifier: 'dispatchd-watchdog', journal: false, stream: logs }),
    notifier: new Notifier({ sendState: (s) => sent.push(s), watchdogInterval: () => 400 }),
    units,
    ...watchdogParts({ config: loadConfig(suite.configPath, true), mailboxFd: openMailboxFd(path.join(suite.dir, 'watchdog.fifo')), generation: 7, pid: process.pid }), // the watchdog owns and closes the fd
  });
  t.teardown(() => w.stop('test over'));

  await suite.waitFor(() => (suite.slot('watchdog')?.requests ?? 0) >= 10, 5000, 'ten probe rounds');
  t.same(units.restarts, [], 'no restart while everyone answers');
  t.ok(sent.includes('WATCHDOG=1'), 'the probe loop keeps the watchdog itself alive in systemd');
  t.ok(sent[0]?.startsWith('READY=1'), 'READY=1 first');

  const frozenPid = suite.daemons.get('main')!.child.pid!;
  const frozenAt = Date.now();
  suite.daemons.get('main')!.child.kill('SIGSTOP');
  await suite.waitFor(() => units.restarts.length > 0, 5000, 'the watchdog to restart main');
  const detectedMs = Date.now() - frozenAt;
  t.same(units.restarts, ['dispatchd-main.service']);
  t.ok(detectedMs < 1500, `caught within ${detectedMs} ms (3 missed pings at 100 ms)`);
  t.match(logText, /warning: dispatchd-main.service missed 3 pings in a row .*: restarting it .*unit=dispatchd-main.service.*reason=missed-pings.*action=restart/);

  await suite.waitFor(() => suite.slot('main')?.pid !== frozenPid && suite.slot('main')?.state === 'ready', 10_000, 'a new main');
  const c = new DispatchClient({ socket: suite.mainSocket, timeoutMs: 10_000 });
  t.equal((await c.request('echo', Buffer.from('again'))).toString(), 'again', 'served again after the restart');
  t.equal(suite.slot('main')!.starts, 2, 'the scoreboard counts the restart');
  await suite.waitFor(() => /is active again/.test(logText), 20_000, 'the recovery to be logged');
  t.same(units.restarts, ['dispatchd-main.service'], 'restarted once, not in a loop');
});
