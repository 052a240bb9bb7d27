import t from 'tap';
import { Notifier, type NotifyBinding } from '../../../daemons/common/notify.js';
import { FakeClock } from '../lib/fake-clock.js';

/** A fake sd-notify binding that records what would reach systemd. */
function fake(watchdogMs: number): NotifyBinding & { sent: string[] } {
  const sent: string[] = [];
  return { sent, sendState: (s) => sent.push(s), watchdogInterval: () => watchdogMs };
}

t.test('READY, STATUS and STOPPING strings', async (t) => {
  const b = fake(0);
  const n = new Notifier(b);
  n.ready('serving on /run/dispatchd/main.sock');
  n.status('2 secondaries, 0 queued');
  n.reloading('reloading /etc/dispatchd/dispatchd.conf');
  n.ready('reloaded');
  n.stopping('draining 3 connections');
  t.same(b.sent, [
    'READY=1\nSTATUS=serving on /run/dispatchd/main.sock',
    'STATUS=2 secondaries, 0 queued',
    'RELOADING=1\nSTATUS=reloading /etc/dispatchd/dispatchd.conf',
    'READY=1\nSTATUS=reloaded',
    'STOPPING=1\nSTATUS=draining 3 connections',
  ]);
});

t.test('newlines are stripped from STATUS, so a status cannot inject another assignment', async (t) => {
  const b = fake(0);
  const n = new Notifier(b);
  n.status('failed: bad\nREADY=1');
  n.ready('a\r\nb\n\nc');
  n.stopping('x\ry');
  n.reloading('p\nq');
  t.same(b.sent, ['STATUS=failed: bad READY=1', 'READY=1\nSTATUS=a b c', 'STOPPING=1\nSTATUS=x y', 'RELOADING=1\nSTATUS=p q']);
  for (const s of b.sent) {
    const assignments = s.split('\n');
    t.ok(assignments.every((a) => /^[A-Z_]+=/.test(a)), `only VAR=value lines in ${JSON.stringify(s)}`);
  }
});

t.test('keepalive: WATCHDOG=1 at most once per quarter of the period', async (t) => {
  const b = fake(2000);
  const n = new Notifier(b);
  t.equal(n.watchdogMs, 2000);
  t.equal(n.keepaliveIntervalMs, 1000, 'the timer interval is half the period');
  const t0 = 1_700_000_000_000;
  n.keepalive(t0);
  t.same(b.sent, ['WATCHDOG=1'], 'the first call sends');
  n.keepalive(t0 + 1);
  n.keepalive(t0 + 499);
  t.equal(b.sent.length, 1, 'not again within a quarter of the period');
  n.keepalive(t0 + 500);
  t.equal(b.sent.length, 2, 'again after a quarter');
  // Called every 10 ms for 10 s: 10 000 / 500 = 20 pings, not 1000.
  const b2 = fake(2000);
  const n2 = new Notifier(b2);
  for (let ms = 0; ms < 10_000; ms += 10) n2.keepalive(t0 + ms);
  t.equal(b2.sent.length, 20);
  t.ok(b2.sent.every((s) => s === 'WATCHDOG=1'));
});

t.test('a disabled watchdog sends nothing', async (t) => {
  const b = fake(0);
  const n = new Notifier(b);
  t.equal(n.watchdogMs, 0);
  t.equal(n.keepaliveIntervalMs, 0);
  for (let i = 0; i < 100; i++) n.keepalive(1_700_000_000_000 + i * 1000);
  t.same(b.sent, []);
});

t.test('startTicking calls the tick then sends WATCHDOG=1, stopping() ends it', async (t) => {
  const b = fake(100); // keepalive interval 50 ms, shorter than the 10 s tick asked for
  const n = new Notifier(b);
  const ticks: number[] = [];
  await new Promise<void>((resolve) => {
    n.startTicking((now) => {
      ticks.push(now);
      b.sent.push(`tick`);
      if (ticks.length === 3) resolve();
    }, 10_000);
  });
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  n.stopping('bye');
  t.equal(timers(), before - 1, 'stopping() clears the keepalive timer');
  const count = ticks.length;
  t.equal(count, 3, 'ticks at the keepalive interval, not every 10 s');
  t.equal(b.sent[0], 'tick');
  t.equal(b.sent[1], 'WATCHDOG=1', 'WATCHDOG=1 follows the tick that proves the loop runs');
  t.equal(b.sent[b.sent.length - 1], 'STOPPING=1\nSTATUS=bye');
});

t.test('startTicking without a watchdog uses the interval asked for', async (t) => {
  const b = fake(0);
  const n = new Notifier(b);
  const start = Date.now();
  await new Promise<void>((resolve) => n.startTicking(() => resolve(), 30));
  n.stopping('done');
  t.ok(Date.now() - start >= 25, 'the first tick after ~30 ms');
  t.same(b.sent, ['STOPPING=1\nSTATUS=done'], 'no WATCHDOG=1');
});

t.test('startTicking on the given clock: the period is read before each wait, a second call replaces the ticks', async (t) => {
  const clock = new FakeClock();
  const b = fake(3000); // WATCHDOG=1 at most every 750 ms, ticks at most 1500 ms apart
  const n = new Notifier(b, clock);
  let period = 300;
  const ticks: number[] = [];
  const start = clock.now();
  n.startTicking((now) => ticks.push(now - start), () => period);
  await clock.advance(900);
  t.same(ticks, [300, 600, 900]);
  period = 1000;
  await clock.advance(2500);
  t.same(ticks, [300, 600, 900, 1200, 2200, 3200], 'the new period from the next wait on');
  period = 5000;
  await clock.advance(3000);
  t.same(ticks.slice(6), [4200, 5700], 'never longer than half of WatchdogSec= (the wait begun at 3200 kept its 1000 ms)');
  t.same(b.sent.filter((s) => s === 'WATCHDOG=1').length, 6, 'WATCHDOG=1 after each tick at least 750 ms after the last');
  const again: number[] = [];
  n.startTicking((now) => again.push(now - start), 100);
  await clock.advance(300);
  t.equal(ticks.length, 8, 'the first ticks are replaced');
  t.equal(again.length, 3);
  n.stopping('bye');
  t.equal(clock.pending, 0, 'stopping() leaves no timer');
});
