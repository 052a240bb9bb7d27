/**
 * The Watchdog built from fakes: a fake unit manager (systemd), the daemon core's fake ports
 * and a fake clock. What it must do whatever D-Bus does: keep sending WATCHDOG=1 every
 * probe round, report a call that hangs and ask again; and the units it supervises.
 */
import { PassThrough } from 'node:stream';
import t from 'tap';
import { defaultConfig, type Config } from '../../../daemons/common/config.js';
import { DispatchError } from '../../../daemons/common/errors.js';
import { createLogger } from '../../../daemons/common/logger.js';
import type { MailboxMessage } from '../../../daemons/common/messages.js';
import { Notifier } from '../../../daemons/common/notify.js';
import { formatDaemonId, type DaemonId } from '../../../daemons/common/topology.js';
import { checkProbeInterval } from '../../../daemons/watchdog/probe-interval.js';
import { supervisedDaemon, type UnitManager, type UnitState } from '../../../daemons/watchdog/unit-manager.js';
import { UNIT_CALL_TIMEOUT_MS, Watchdog } from '../../../daemons/watchdog/watchdog.js';
import { FakeClock } from '../lib/fake-clock.js';
import { fakeParts, type FakeParts } from '../lib/fake-daemon.js';

t.test('supervisedDaemon: the units the watchdog supervises', async (t) => {
  t.same(supervisedDaemon('dispatchd-main.service'), { kind: 'main' });
  t.same(supervisedDaemon('dispatchd-secondary@1.service'), { kind: 'secondary', instance: 1 });
  t.same(supervisedDaemon('dispatchd-secondary@62.service'), { kind: 'secondary', instance: 62 });
});

t.test('supervisedDaemon: everything else is not supervised', async (t) => {
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
    'dispatchd-secondary@63.service', // past the suite's bound (topology: 62)
    'dispatchd-secondary@x.service',
    'dispatchd-secondary@1.service.bak',
    'xdispatchd-main.service',
    'sshd.service',
    '',
  ]) {
    t.equal(supervisedDaemon(unit), undefined, JSON.stringify(unit));
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

// ---- fakes ------------------------------------------------------------------------------

/** systemd as the watchdog sees it: unit states, and calls that answer, fail or hang. */
class FakeUnits implements UnitManager {
  readonly states = new Map<string, UnitState>();
  readonly calls: string[] = [];
  hang = { list: false, restart: false };
  /** A slow systemd: the list answers this long after it was asked (fake time), with the states of then. */
  slowList: { clock: FakeClock; ms: number } | undefined;
  onRestart: (unit: string) => void = () => undefined;
  set(unit: string, activeState: string, jobPending = false): void {
    this.states.set(unit, { unit, activeState, jobPending });
  }
  list(): Promise<UnitState[]> {
    this.calls.push('list');
    const snapshot = () => [...this.states.values()].map((s) => ({ ...s }));
    if (this.hang.list) return new Promise(() => undefined);
    const slow = this.slowList;
    return slow ? new Promise((resolve) => slow.clock.setTimeout(() => resolve(snapshot()), slow.ms)) : Promise.resolve(snapshot());
  }
  restart(unit: string): Promise<void> {
    this.calls.push(`restart ${unit}`);
    if (this.hang.restart) return new Promise(() => undefined);
    this.onRestart(unit);
    return Promise.resolve();
  }
  kill(unit: string): Promise<void> {
    this.calls.push(`kill ${unit}`);
    return Promise.resolve();
  }
  closed = false;
  close(): void {
    this.closed = true;
  }
}

interface Rig {
  w: Watchdog;
  clock: FakeClock;
  units: FakeUnits;
  parts: FakeParts;
  /** Daemons that answer pings (by name, e.g. `main`). */
  answering: Set<string>;
  /** Pings written, as `name:seq`. */
  pings: string[];
  /** WATCHDOG=1 messages, at their fake time. */
  keepalives: number[];
  /** Every sd_notify message but WATCHDOG=1. */
  notified: string[];
  log: () => string;
}

/**
 * A Watchdog on fakes: the daemon core's ports from fake-daemon.ts (the daemons it pings
 * answer at once when in `answering`), a fake clock, the real Notifier and logger on a fake
 * sd_notify binding (WatchdogSec=3s) and a string.
 */
function rig(units: FakeUnits, configure: (c: Config) => void = () => undefined): Rig {
  const clock = new FakeClock();
  const parts = fakeParts();
  const config = parts.config;
  config.watchdog.probe_interval_ms = 300;
  config.watchdog.max_missed = 3;
  config.paths.runtime_dir = '/run/dispatchd';
  configure(config);
  const answering = new Set<string>();
  const pings: string[] = [];
  const keepalives: number[] = [];
  const notified: string[] = [];
  let logText = '';
  const stream = new PassThrough();
  stream.on('data', (c: Buffer) => (logText += c.toString()));
  const outbox = parts.ports.outbox;
  const ports = {
    ...parts.ports,
    outbox: (peer: DaemonId) => {
      const w = outbox(peer);
      const name = formatDaemonId(peer);
      return {
        send: async (m: MailboxMessage) => {
          await w.send(m);
          if (m.t !== 'ping') return;
          pings.push(`${name}:${m.seq}`);
          if (answering.has(name)) setImmediate(() => parts.inbox.deliver({ v: 1, t: 'pong', from: name, seq: m.seq, pid: 1, gen: 1 }));
        },
        close: () => w.close(),
      };
    },
  };
  const binding = { sendState: (s: string) => void (s === 'WATCHDOG=1' ? keepalives.push(clock.now()) : notified.push(s)), watchdogInterval: () => 3000 };
  const w = Watchdog.start(
    {
      config,
      logger: createLogger({ identifier: 'dispatchd-watchdog', journal: false, stream }),
      notifier: new Notifier(binding, clock),
      units,
      mailboxFd: -1, // not opened: the parts are given
      generation: 7,
      pid: 4242,
    },
    { ports, clock },
  );
  t.teardown(() => w.stop('test over'));
  return { w, clock, units, parts, answering, pings, keepalives, notified, log: () => logText };
}

/** The longest time between two WATCHDOG=1 (and from the start to the first one), ms. */
function longestGap(r: Rig, from: number): number {
  let last = from;
  let gap = 0;
  for (const at of r.keepalives) {
    gap = Math.max(gap, at - last);
    last = at;
  }
  return Math.max(gap, r.clock.now() - last);
}

// ---- behaviour --------------------------------------------------------------------------

t.test('D-Bus calls that never answer: WATCHDOG=1 keeps coming every probe round; each call is reported and asked again', async (t) => {
  const units = new FakeUnits();
  units.set('dispatchd-main.service', 'active');
  const r = rig(units);
  const start = r.clock.now();
  await r.clock.advance(1000);
  t.same(Object.keys(r.w.states()), ['main'], 'main listed while D-Bus answered');
  // From now on systemd answers nothing (a hung D-Bus); main does not answer pings either.
  units.hang = { list: true, restart: true };
  await r.clock.advance(30_000);
  const gap = longestGap(r, start);
  t.ok(gap <= 1500, `WATCHDOG=1 at least every half WatchdogSec= (longest gap ${gap} ms of fake time; WatchdogSec=3s)`);
  t.ok(r.keepalives.length >= 30_000 / 1500, `${r.keepalives.length} keepalives in 31 s`);
  const restarts = units.calls.filter((c) => c === 'restart dispatchd-main.service').length;
  const lists = units.calls.filter((c) => c === 'list').length;
  t.ok(restarts >= 3, `a hung restart is given up on and ordered again (${restarts} times in 30 s)`);
  t.ok(lists >= 10, `a hung unit list is asked again (${lists} times)`);
  t.match(r.log(), new RegExp(`error: failed to restart dispatchd-main.service: failed to restart dispatchd-main.service through systemd's D-Bus API: no answer within ${UNIT_CALL_TIMEOUT_MS} ms; retrying after 3 more missed pings`), 'the hung restart is reported');
  t.match(r.log(), new RegExp(`error: failed to list units through systemd's D-Bus API: no answer within ${UNIT_CALL_TIMEOUT_MS} ms; probing the daemons already known`), 'the hung list is reported');
  t.notMatch(r.log(), /killing its main process/, 'a restart that never got through is not escalated to a kill');
});

t.test('a slow systemd: a secondary stopped on purpose is not restarted, a frozen one is (the CI race of dispatchctl scale)', async (t) => {
  for (const [what, stopped] of [['stopped on purpose', true], ['frozen', false]] as const) {
    const units = new FakeUnits();
    units.set('dispatchd-main.service', 'active');
    units.set('dispatchd-secondary@3.service', 'active');
    const r = rig(units);
    r.answering.add('main').add('secondary-3');
    await r.clock.advance(2000);
    // systemd answers the unit list 1.5 s late: five probe rounds, more than max_missed (3).
    units.slowList = { clock: r.clock, ms: 1500 };
    r.answering.delete('secondary-3'); // draining and exiting, or frozen
    if (stopped) units.set('dispatchd-secondary@3.service', 'deactivating', true);
    await r.clock.advance(6000);
    const restarts = units.calls.filter((c) => c.startsWith('restart'));
    if (stopped) {
      t.same(restarts, [], `${what}: never restarted (a restart would have replaced the stop job)`);
      t.notMatch(r.log(), /warning|error/, `${what}: nothing warned of`);
      t.equal(r.w.states()['secondary-3'], 'waiting', `${what}: waiting for systemd's job`);
    } else {
      t.same(restarts, ['restart dispatchd-secondary@3.service'], `${what}: restarted once the late list confirmed it active with no job`);
      t.match(r.log(), /warning: dispatchd-secondary@3.service missed \d+ pings in a row/, `${what}: warned`);
    }
    await r.w.stop('next case');
  }
});

t.test('a frozen daemon is restarted once and followed until it is back; the slot counts the restart', async (t) => {
  const units = new FakeUnits();
  units.set('dispatchd-main.service', 'active');
  units.set('dispatchd-secondary@1.service', 'active');
  const r = rig(units);
  r.answering.add('main').add('secondary-1');
  await r.clock.advance(3000);
  t.same(units.calls.filter((c) => c !== 'list'), [], 'no restart while everyone answers');
  t.same(r.w.states(), { main: 'probing', 'secondary-1': 'probing' });
  t.ok(r.pings.includes('main:10') && r.pings.includes('secondary-1:10'), 'one ping per daemon per round');
  // The slot is written with the heartbeat, about once per TICK_MS (three 300 ms rounds).
  const counted = r.parts.slot().requests ?? -1;
  t.ok(counted >= r.pings.length - 2 * 3 && counted <= r.pings.length && counted % 2 === 0, `the slot counts the pings sent as of its last heartbeat (${counted} of ${r.pings.length}: one per daemon per round)`);

  units.onRestart = (unit) => units.set(unit, 'activating', true);
  r.answering.delete('secondary-1'); // frozen
  await r.clock.advance(1200);
  t.same(units.calls.filter((c) => c !== 'list'), ['restart dispatchd-secondary@1.service'], 'restarted after 3 missed pings');
  t.equal(r.w.states()['secondary-1'], 'restarting');
  t.match(r.log(), /warning: dispatchd-secondary@1.service missed 3 pings in a row \(no answer for \d+ ms\): restarting it .*unit=dispatchd-secondary@1.service.*reason=missed-pings.*action=restart/);
  await r.clock.advance(1000);
  t.equal(r.w.states()['secondary-1'], 'restarting', 'while systemd runs the job');
  units.set('dispatchd-secondary@1.service', 'active');
  r.answering.add('secondary-1');
  await r.clock.advance(1000);
  t.equal(r.w.states()['secondary-1'], 'probing', 'probed again once active');
  t.match(r.log(), /notice: dispatchd-secondary@1.service is active again \d+ ms after the restart/);
  await r.clock.advance(5000);
  t.same(units.calls.filter((c) => c !== 'list'), ['restart dispatchd-secondary@1.service'], 'restarted once, not in a loop');
  t.equal(r.parts.slot().incidents, 1, 'one restart ordered');
  t.match(r.w.statusLine(), /^probing main, secondary-1; 1 restarts ordered$/);
});

t.test('a restart that does not come back is escalated to SIGKILL once', async (t) => {
  const units = new FakeUnits();
  units.set('dispatchd-main.service', 'active');
  const r = rig(units);
  units.onRestart = (unit) => units.set(unit, 'deactivating', true); // stuck stopping
  await r.clock.advance(5000);
  t.same(units.calls.filter((c) => c !== 'list'), ['restart dispatchd-main.service', 'kill dispatchd-main.service']);
  t.match(r.log(), /warning: dispatchd-main.service has not come back 3\d\d\d ms after the restart \(state deactivating\); killing its main process \(SIGKILL\)/);
  t.equal(r.parts.slot().incidents, 2, 'the restart and the kill');
});

t.test('a service stopped while its mailbox socket listens is pinged awake; one stopped with its sockets is left alone', async (t) => {
  const units = new FakeUnits();
  units.set('dispatchd-main.service', 'active');
  units.set('dispatchd-main-mailbox.socket', 'active');
  units.set('dispatchd-secondary@1.service', 'active');
  units.set('dispatchd-secondary-mailbox@1.socket', 'active');
  units.set('dispatchd-secondary@2.service', 'active');
  units.set('dispatchd-secondary-mailbox@2.socket', 'active');
  const r = rig(units);
  r.answering.add('main').add('secondary-1').add('secondary-2');
  await r.clock.advance(1000);
  // `systemctl stop dispatchd-secondary@1.service` (the service only), and secondary 2 with its sockets.
  r.answering.delete('secondary-1');
  r.answering.delete('secondary-2');
  units.set('dispatchd-secondary@1.service', 'deactivating', true);
  units.set('dispatchd-secondary@2.service', 'deactivating', true);
  units.set('dispatchd-secondary-mailbox@2.socket', 'active', true);
  await r.clock.advance(2000);
  t.same(r.w.states(), { main: 'probing', 'secondary-1': 'waiting', 'secondary-2': 'waiting' }, 'while systemd stops them');
  units.set('dispatchd-secondary@1.service', 'inactive');
  units.set('dispatchd-secondary@2.service', 'inactive');
  units.set('dispatchd-secondary-mailbox@2.socket', 'inactive');
  const before = r.pings.length;
  await r.clock.advance(2000);
  t.same(r.w.states(), { main: 'probing', 'secondary-1': 'dormant' }, 'secondary 2 is forgotten, secondary 1 is dormant');
  t.same(r.parts.outboxesClosed(), ['secondary-2'], "the forgotten one's mailbox writer is closed");
  const wake = r.pings.slice(before).filter((p) => p.startsWith('secondary-'));
  t.equal(wake.length, 1, `one wake-up ping into secondary 1's mailbox FIFO (${wake.join(', ')})`);
  t.match(wake[0], /^secondary-1:/);
  t.match(r.log(), /notice: dispatchd-secondary@1.service is inactive but its mailbox socket is listening: pinging secondary-1 so that socket activation starts it again .*reason=stopped-service.*action=wake/);
  // Socket activation starts it.
  units.set('dispatchd-secondary@1.service', 'active');
  r.answering.add('secondary-1');
  await r.clock.advance(2000);
  t.same(r.w.states(), { main: 'probing', 'secondary-1': 'probing' }, 'probed again once it runs');
  t.same(units.calls.filter((c) => c !== 'list'), [], 'no restart or kill ordered for any of it');
});

t.test('a secondary added while running is picked up within the unit list\'s most age', async (t) => {
  const units = new FakeUnits();
  units.set('dispatchd-main.service', 'active');
  const r = rig(units);
  r.answering.add('main').add('secondary-3');
  await r.clock.advance(1000);
  t.same(r.w.states(), { main: 'probing' });
  units.set('dispatchd-secondary@3.service', 'active');
  await r.clock.advance(2500);
  t.same(r.w.states(), { main: 'probing', 'secondary-3': 'probing' }, `within ${2000 + 300} ms (the unit list's most age, one round)`);
});

t.test('the slot is the daemon core\'s, projected: starting, ready, a heartbeat every probe round, pings sent; stop releases it all', async (t) => {
  const units = new FakeUnits();
  units.set('dispatchd-main.service', 'active');
  const r = rig(units);
  r.answering.add('main');
  t.match(r.parts.published[0], { state: 'starting', requests: 0, incidents: 0 }, 'claimed as starting');
  t.match(r.parts.slot(), { state: 'ready', heartbeatMs: r.clock.now() });
  t.match(r.notified[0], /^READY=1\nSTATUS=probing nothing yet; 0 restarts ordered$/);
  await r.clock.advance(900);
  t.equal(r.parts.slot().heartbeatMs, r.clock.now(), 'heartbeat of the last probe round');
  t.equal(r.parts.slot().requests, r.pings.length, 'requests: the pings sent');
  t.ok(r.pings.length >= 2, `main pinged (${r.pings.join(', ')})`);
  t.match(r.notified.at(-1), /^STATUS=probing main(\(1 missed\))?; 0 restarts ordered$/, 'STATUS= from each probe round');

  await r.w.stop('SIGTERM');
  t.same(r.parts.published.slice(-2).map((v) => v.state), ['stopping', 'stopped'], 'stopping, then stopped');
  t.ok(r.parts.slotClosed(), 'slot closed');
  t.ok(r.parts.inbox.closed, 'mailbox closed');
  t.same(r.parts.outboxesClosed(), ['main'], "main's mailbox writer closed");
  t.ok(units.closed, 'D-Bus connection closed');
  t.equal(r.notified.at(-1), 'STOPPING=1\nSTATUS=stopping (SIGTERM)');
  const pings = r.pings.length;
  const keepalives = r.keepalives.length;
  await r.clock.advance(3000);
  t.equal(r.pings.length, pings, 'no probe round after stop');
  t.equal(r.keepalives.length, keepalives, 'no WATCHDOG=1 after stop');
});

t.test('a D-Bus answer that comes after stop is dropped', async (t) => {
  const units = new FakeUnits();
  units.set('dispatchd-main.service', 'active');
  const r = rig(units);
  await r.clock.advance(300); // the first unit list is asked for, and answered
  let answer: (u: UnitState[]) => void = () => undefined;
  units.list = () => new Promise((resolve) => (answer = resolve));
  await r.clock.advance(2000); // main does not answer: the list is asked for again, and hangs
  await r.w.stop('SIGTERM');
  const published = r.parts.published.length;
  answer([{ unit: 'dispatchd-secondary@1.service', activeState: 'active', jobPending: false }]);
  await r.clock.advance(3000);
  t.same(r.w.states(), {}, 'nothing supervised after stop');
  t.equal(r.parts.published.length, published, 'nothing published after stop');
  t.notMatch(r.log(), /secondary-1/);
});

t.test('reload: a new probe period applies from the next round; one too long for WatchdogSec= is refused', async (t) => {
  const units = new FakeUnits();
  units.set('dispatchd-main.service', 'active');
  const r = rig(units);
  r.answering.add('main');
  await r.clock.advance(3000);
  const next = defaultConfig();
  Object.assign(next.paths, r.parts.config.paths);
  next.watchdog.probe_interval_ms = 1000;
  next.watchdog.max_missed = 3;
  const outcome = r.w.reload(next);
  t.same(outcome.applied, ['watchdog.probe_interval_ms'], 'applied');
  await r.clock.advance(300); // the round already waited for
  const before = r.pings.length;
  await r.clock.advance(6000);
  t.equal(r.pings.length - before, 6, 'one ping of main per second');
  const gap = longestGap(r, r.clock.now() - 6000);
  t.ok(gap <= 1500, `WATCHDOG=1 still within half of WatchdogSec= (longest gap ${gap} ms)`);

  const tooLong = defaultConfig();
  Object.assign(tooLong.paths, r.parts.config.paths);
  tooLong.watchdog.probe_interval_ms = 2000;
  t.throws(() => r.w.reload(tooLong), { code: 'CONFIG_INVALID' }, 'longer than half of WatchdogSec=: refused');
  const kept = r.pings.length;
  await r.clock.advance(3000);
  t.equal(r.pings.length - kept, 3, 'the running period is kept');
});

t.test('a repeating probe failure is logged once per 30 s (the watchdog\'s incident interval), counted not logged between', async (t) => {
  const units = new FakeUnits();
  units.set('dispatchd-main.service', 'active');
  const r = rig(units);
  units.hang.list = true;
  await r.clock.advance(29_000);
  const lines = () => r.log().split('\n').filter((l) => /failed to list units/.test(l));
  t.equal(lines().length, 1, `once in the first 29 s, although asked again every ${UNIT_CALL_TIMEOUT_MS} ms (${units.calls.filter((c) => c === 'list').length} lists)`);
  await r.clock.advance(9000);
  t.equal(lines().length, 2, 'again after 30 s');
  t.match(lines()[1], /\(\d+ more like it since the last report\)/, 'with the count of those not logged');
});
