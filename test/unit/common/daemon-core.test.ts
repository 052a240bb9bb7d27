import t from 'tap';
import { parseConfig } from '../../../daemons/common/config.js';
import { DaemonCore, type DaemonCoreOptions } from '../../../daemons/common/daemon-core.js';
import { DispatchError } from '../../../daemons/common/errors.js';
import { TICK_MS } from '../../../daemons/common/timing.js';
import { secondary } from '../../../daemons/common/topology.js';
import { fakeParts, settle, type FakeParts } from '../lib/fake-daemon.js';

/** A daemon of one counter, `held`, projected as `active`. */
function build(extra: Partial<DaemonCoreOptions> = {}, parts: FakeParts = fakeParts()) {
  const state = { held: 0 };
  const core = new DaemonCore({
    id: secondary(2),
    config: parts.config,
    logger: parts.logger,
    notifier: parts.notifier,
    ...parts.ports,
    pid: 4242,
    generation: 77,
    project: (c) => ({ state: c.phase === 'ready' ? (state.held ? 'busy' : 'ready') : c.phase, active: state.held, running: c.running }),
    statusLine: (c) => `${c.phase}: ${state.held} held`,
    incidentFields: { secondary: 'secondary-2' },
    now: () => 1000,
    ...extra,
  });
  return { core, state, parts };
}

t.test('the slot is projected from the daemon state on every publish', async (t) => {
  const { core, state, parts } = build();
  t.same(parts.published, [{ heartbeatMs: 1000, incidents: 0, state: 'starting', active: 0, running: 0 }], 'claimed as starting');
  core.ready();
  t.match(parts.slot(), { state: 'ready', active: 0 });
  state.held = 3;
  core.publish();
  t.match(parts.slot(), { state: 'busy', active: 3 }, 'derived state computed in the projection, not stamped');
  t.equal(parts.notifier.sent[0], 'READY=1 ready: 0 held');
});

t.test('publishSoon publishes once however many changes came in one turn', async (t) => {
  const { core, state, parts } = build();
  const before = parts.published.length;
  for (let i = 1; i <= 5; i++) {
    state.held = i;
    core.publishSoon();
  }
  t.equal(parts.published.length, before, 'not yet');
  await settle();
  t.equal(parts.published.length, before + 1, 'one publish');
  t.equal(parts.slot().active, 5, 'with the last values');
});

t.test('ping is answered with pong to the watchdog by the core itself', async (t) => {
  const { parts } = build();
  parts.inbox.deliver({ v: 1, t: 'ping', from: 'watchdog', seq: 9 });
  await settle();
  t.same(parts.sent, [{ to: 'watchdog', m: { v: 1, t: 'pong', from: 'secondary-2', seq: 9, pid: 4242, gen: 77 } }]);
});

t.test('a pong that cannot be written is a warning incident, counted in the slot', async (t) => {
  const { core, parts } = build();
  parts.failSends('watchdog', new DispatchError('MAILBOX_FULL', 'the pipe stayed full'));
  parts.inbox.deliver({ v: 1, t: 'ping', from: 'watchdog', seq: 1 });
  await settle();
  t.match(parts.lines, [{ level: 'warning', message: "failed to answer the watchdog's ping: the pipe stayed full, ignoring", fields: { secondary: 'secondary-2', peer: 'watchdog', code: 'MAILBOX_FULL' } }]);
  core.publish();
  t.equal(parts.slot().incidents, 1);
});

t.test('handlers are looked up by type; an unexpected type is an incident, logged once per interval', async (t) => {
  const { core, parts } = build();
  const got: string[] = [];
  core.on('reserve', (m) => got.push(m.lease));
  parts.inbox.deliver({ v: 1, t: 'reserve', id: 'a-1', lease: 'f'.repeat(32), gen: 77, exp: 5000 });
  for (let i = 0; i < 3; i++) parts.inbox.deliver({ v: 1, t: 'done', from: 'secondary-1', gen: 1, lease: 'e'.repeat(32), claimed: false, requests: 0, failed: 0 });
  t.same(got, ['f'.repeat(32)]);
  t.same(
    parts.lines.map((l) => [l.level, l.message]),
    [['error', "unexpected 'done' message in secondary-2's mailbox, ignoring"]],
  );
});

t.test('a damaged mailbox line is an incident naming the mailbox', async (t) => {
  const { parts } = build();
  parts.inbox.emit('invalid', new DispatchError('MESSAGE_INVALID', 'not valid JSON'), '{');
  t.match(parts.lines[0], { level: 'error', message: "failed to decode a message in mailbox '/run/dispatchd/fake.fifo': not valid JSON, ignoring", fields: { code: 'MESSAGE_INVALID', preview: '{' } });
});

t.test('the tick runs the daemon work, publishes the heartbeat and STATUS=', async (t) => {
  let ticks = 0;
  const { core, parts } = build({ onTick: () => void ticks++ });
  core.ready();
  parts.notifier.tick!(5000);
  t.equal(ticks, 1);
  t.equal(parts.slot().heartbeatMs, 5000);
  t.equal(parts.notifier.sent.at(-1), 'STATUS=ready: 0 held');
});

t.test('a failing tick work or slot write is an incident; the heartbeat goes on', async (t) => {
  const parts = fakeParts();
  let failWrite = false;
  const publish = parts.ports.slot.publish;
  parts.ports.slot = { ...parts.ports.slot, publish: (v) => (failWrite ? (() => { throw new DispatchError('SCOREBOARD_IO', 'EIO'); })() : publish(v)) };
  const { core } = build({ onTick: () => { throw new DispatchError('SCOREBOARD_IO', 'read failed'); } }, parts);
  core.ready();
  parts.notifier.tick!(6000);
  t.equal(parts.slot().heartbeatMs, 6000, 'heartbeat published although the work failed');
  failWrite = true;
  t.doesNotThrow(() => parts.notifier.tick!(7000));
  t.doesNotThrow(() => core.publish());
  t.same(
    parts.lines.map((l) => l.message),
    ["failed to run secondary-2's periodic work: read failed, retrying in 1000 ms", 'failed to publish the heartbeat: EIO, retrying in 1000 ms'],
    'the second scoreboard failure within the interval is counted, not logged again',
  );
});

t.test('drain waits for the work to leave, or for its bound', async (t) => {
  const { core, parts } = build();
  core.enter();
  core.enter();
  t.equal(core.running, 2);
  core.publish();
  t.equal(parts.slot().running, 2, 'running work is published');
  let drained = false;
  const d = core.drain(60_000).then(() => (drained = true));
  core.leave();
  await settle();
  t.notOk(drained, 'one still runs');
  core.leave();
  await d;
  t.ok(drained, 'resolved when the last left, long before its bound');
  core.enter();
  const started = Date.now();
  await core.drain(20);
  t.ok(Date.now() - started >= 15, 'bounded when work does not end');
});

t.test('stop: STOPPING=1 and a stopping slot, then release closes everything and publishes stopped', async (t) => {
  const { core, state, parts } = build();
  core.ready();
  state.held = 2;
  core.enter();
  t.ok(core.beginStop('stopping (SIGTERM)'));
  t.notOk(core.beginStop('again'), 'only once');
  t.equal(parts.notifier.sent.at(-1), 'STOPPING=1 stopping (SIGTERM)');
  t.equal(parts.slot().state, 'stopping');
  t.ok(core.stopping);
  await core.send(secondary(1), { v: 1, t: 'ready', from: 'secondary-2', gen: 77 });
  core.release();
  t.match(parts.slot(), { state: 'stopped', active: 0, running: 0 }, 'a stopped daemon holds nothing');
  t.ok(parts.inbox.closed, 'inbox closed');
  t.same(parts.outboxesClosed(), ['secondary-1'], 'writers closed');
  t.ok(parts.slotClosed(), 'slot closed');
  const n = parts.published.length;
  core.release();
  t.equal(parts.published.length, n, 'release is idempotent');
});

t.test('reload merges the new configuration (not paths) and republishes', async (t) => {
  const { core, parts } = build();
  const n = parts.published.length;
  let applied = 0;
  const next = parseConfig('[secondary]\nmax_leases = 7\n[paths]\nscoreboard = "/dev/shm/other"\n', 'test.conf');
  const outcome = core.reload(next, (c) => (applied = c.secondary.max_leases));
  t.equal(applied, 7);
  t.equal(core.config.secondary.max_leases, 7);
  t.equal(core.config.paths.scoreboard, parts.config.paths.scoreboard, 'paths need a restart');
  t.same(outcome.needRestart, ['paths.scoreboard']);
  t.equal(parts.published.length, n + 1);
});

t.test('the tick period: TICK_MS, or the daemon\'s own, read from the reloaded configuration', async (t) => {
  const plain = build();
  plain.core.ready();
  t.equal(plain.parts.notifier.everyMs!(), TICK_MS);
  const { core, parts } = build({ tickMs: (c) => c.watchdog.probe_interval_ms });
  core.ready();
  t.equal(parts.notifier.everyMs!(), 300, 'the default probe period');
  core.reload(parseConfig('[watchdog]\nprobe_interval_ms = 500\n', 'test.conf'));
  t.equal(parts.notifier.everyMs!(), 500, 'the reloaded one, from the next tick on');
  core.tick(1000);
  t.equal(parts.slot().heartbeatMs, 1000);
});

t.test('a tick shorter than TICK_MS publishes the heartbeat and STATUS= about once per TICK_MS, a tick of TICK_MS each time', async (t) => {
  const heartbeats = (tickMs: number, ticks: number) => {
    const { core, parts } = build({ tickMs: () => tickMs });
    core.ready(); // the heartbeat at 1000 (the fake clock)
    const before = parts.published.length;
    const statuses = () => parts.notifier.sent.filter((l) => l.startsWith('STATUS=')).length;
    for (let i = 1; i <= ticks; i++) core.tick(1000 + i * tickMs);
    return { beats: parts.published.slice(before).map((s) => s.heartbeatMs), statuses: statuses() };
  };
  t.same(heartbeats(TICK_MS, 3), { beats: [2000, 3000, 4000], statuses: 3 }, 'every tick of TICK_MS');
  // The watchdog's default probe round: a heartbeat every third round (900 ms), not every one.
  t.same(heartbeats(300, 9), { beats: [1900, 2800, 3700], statuses: 3 }, 'every third 300 ms round');
  t.same(heartbeats(50, 40), { beats: [2000, 3000], statuses: 2 }, 'every twentieth 50 ms round');
  const { core, parts } = build({ tickMs: () => 300 });
  core.ready();
  const before = parts.published.length;
  core.tick(500); // the wall clock stepped back
  t.equal(parts.published.length, before + 1, 'a clock stepped back publishes at once');
});

t.test('incidents are quiet for the daemon\'s interval on the daemon\'s clock', async (t) => {
  let now = 1_000_000;
  const { core, parts } = build({ now: () => now, incidentIntervalMs: 30_000 });
  const report = () => core.incident('list', 'failed to list units', {});
  report();
  now += 29_999;
  report();
  t.equal(parts.lines.length, 1, 'once within 30 s');
  now += 1;
  report();
  t.same(parts.lines.map((l) => l.message), ['failed to list units', 'failed to list units (1 more like it since the last report)']);
});

t.test('closeOutbox closes the writer to a peer gone for good; a later send opens a new one', async (t) => {
  const { core, parts } = build();
  await core.send(secondary(3), { v: 1, t: 'ready', from: 'secondary-2', gen: 77 });
  core.closeOutbox(secondary(3));
  core.closeOutbox(secondary(4)); // none open: nothing to do
  t.same(parts.outboxesClosed(), ['secondary-3']);
  await core.send(secondary(3), { v: 1, t: 'ready', from: 'secondary-2', gen: 77 });
  core.release();
  t.same(parts.outboxesClosed(), ['secondary-3', 'secondary-3'], 'the new writer is closed on release');
});

t.test('each tick tells the marking mode whether work started or ran since the last tick', async (t) => {
  const seen: boolean[] = [];
  const { core } = build({ marking: { tick: (_now, worked) => seen.push(worked) } });
  core.ready();
  core.tick(1000);
  core.enter();
  core.leave();
  core.tick(2000);
  core.enter();
  core.tick(3000);
  core.tick(4000);
  core.leave();
  core.tick(5000);
  t.strictSame(seen, [false, true, true, true, false], 'quiet; a request that came and went; one that started; still running; quiet again');
});
