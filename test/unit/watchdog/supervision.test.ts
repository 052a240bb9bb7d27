/**
 * The watchdog's supervision table (daemons/watchdog/supervision.ts), state × event: every
 * state against every event, with the state it leads to and the actions it orders; then
 * the messages and fields of the actions that reach the journal.
 */
import t from 'tap';
import { ESCALATE_AFTER_MS, supervise, WAKE_RETRY_MS, type Rules, type SupervisionAction, type SupervisionEvent, type TargetState, type UnitView } from '../../../daemons/watchdog/supervision.js';

const NOW = 10_000;
const rules: Rules = { name: 'secondary-1', unit: 'dispatchd-secondary@1.service', maxMissed: 3, probeIntervalMs: 300 };

const unit = (activeState: string, jobPending = false, mailboxListening = true): UnitView => ({ activeState, jobPending, mailboxListening });

const states: Record<string, TargetState> = {
  probing: { s: 'probing', sent: 6, acked: 5, missed: 0, lastAnswerMs: 9_700 }, // ping 6 out
  suspect: { s: 'suspect', sent: 7, acked: 5, missed: 1, lastAnswerMs: 9_400 },
  'suspect, one short': { s: 'suspect', sent: 8, acked: 5, missed: 2, lastAnswerMs: 9_100 },
  'suspect, max_missed': { s: 'suspect', sent: 9, acked: 5, missed: 3, lastAnswerMs: 8_800, dueMs: NOW - 300 },
  'suspect, max_missed this round': { s: 'suspect', sent: 9, acked: 5, missed: 3, lastAnswerMs: 8_800, dueMs: NOW + 1 },
  restarting: { s: 'restarting', sinceMs: NOW - 1000, callDone: false, lastSeen: 'active', lastAnswerMs: 8_000 },
  'restarting, call done': { s: 'restarting', sinceMs: NOW - 1000, callDone: true, lastSeen: 'active', lastAnswerMs: 8_000 },
  'restarting, hung': { s: 'restarting', sinceMs: NOW - ESCALATE_AFTER_MS, callDone: true, lastSeen: 'deactivating', lastAnswerMs: 6_000 },
  escalated: { s: 'escalated', sinceMs: NOW - 4000 },
  waiting: { s: 'waiting' },
  'dormant, just woken': { s: 'dormant', wokeAtMs: NOW - 1000 },
  'dormant, woken long ago': { s: 'dormant', wokeAtMs: NOW - WAKE_RETRY_MS },
  gone: { s: 'gone' },
};

const events: Record<string, SupervisionEvent> = {
  tick: { e: 'tick', now: NOW, seq: 9 },
  'pong to the last ping': { e: 'pong', now: NOW, seq: 0 }, // seq: the state's `sent`, filled in below
  'old pong': { e: 'pong', now: NOW, seq: 2 },
  'ping: no reader': { e: 'ping-failed', code: 'MAILBOX_NO_READER', message: 'no reader' },
  'ping: no FIFO': { e: 'ping-failed', code: 'MAILBOX_OPEN_FAILED', message: 'ENOENT' },
  'ping: full': { e: 'ping-failed', code: 'MAILBOX_FULL', message: 'the pipe stayed full' },
  'listed active': { e: 'unit-listed', now: NOW, askedMs: NOW, seq: 9, unit: unit('active') },
  'listed in a job': { e: 'unit-listed', now: NOW, askedMs: NOW, seq: 9, unit: unit('deactivating', true) },
  'listed inactive, mailbox listening': { e: 'unit-listed', now: NOW, askedMs: NOW, seq: 9, unit: unit('inactive') },
  'listed inactive, mailbox stopped': { e: 'unit-listed', now: NOW, askedMs: NOW, seq: 9, unit: unit('inactive', false, false) },
  'listed failed': { e: 'unit-listed', now: NOW, askedMs: NOW, seq: 9, unit: unit('failed') },
  'not listed': { e: 'unit-missing' },
  'list failed': { e: 'list-failed', now: NOW },
  'restart ok': { e: 'restart-ok' },
  'restart failed': { e: 'restart-failed', message: 'no answer within 2500 ms' },
  'kill failed': { e: 'kill-failed', message: 'no answer within 2500 ms' },
};

/** What an action list looks like in the table below: `ping`, `log:warning`, … */
const shape = (actions: SupervisionAction[]) => actions.map((a) => (a.a === 'log' || a.a === 'incident' ? `${a.a}:${a.level}` : a.a)).join(' ');

const RESTART = 'count log:warning restart';
const KILL = 'count log:warning kill';
const WAKE = 'log:notice ping';
type Row = [state: string, event: string, next: string, actions: string];
/** A daemon the unit list shows not meant to run (unit and sockets stopped, failed, not listed) is forgotten. */
const notMeantToRun = (state: string): Row[] => [
  [state, 'listed inactive, mailbox stopped', 'gone', ''],
  [state, 'listed failed', 'gone', ''],
  [state, 'not listed', 'gone', ''],
];
/** A kill call that failed is logged, whatever the state (a late answer to an earlier kill). */
const killFailed = (state: string, stays: string): Row => [state, 'kill failed', stays, 'log:error'];
/** The rows probing and suspect share ("as probing otherwise", supervision.ts): a full pipe, the unit list, a failed kill. */
const whileProbing = (state: string, stays: string): Row[] => [
  [state, 'ping: full', stays, 'incident:warning'],
  [state, 'listed in a job', 'waiting', ''],
  [state, 'listed inactive, mailbox listening', 'dormant', WAKE],
  ...notMeantToRun(state),
  killFailed(state, stays),
];
// [state, event, next state, actions]; anything not listed for a state: same state, no action.
const table: Row[] = [
  ['probing', 'tick', 'suspect', 'ping'],
  ['probing', 'pong to the last ping', 'probing', ''],
  ...whileProbing('probing', 'probing'),
  ['suspect', 'tick', 'suspect', 'ping'],
  ['suspect', 'pong to the last ping', 'probing', ''],
  ...whileProbing('suspect', 'suspect'),
  // max_missed: pinging on until a unit list asked from then on shows it meant to run.
  ['suspect, one short', 'tick', 'suspect', 'ping'],
  ['suspect, one short', 'pong to the last ping', 'probing', ''],
  ...whileProbing('suspect, one short', 'suspect'),
  ['suspect, max_missed', 'tick', 'suspect', 'ping'],
  ['suspect, max_missed', 'pong to the last ping', 'probing', ''],
  ['suspect, max_missed', 'listed active', 'restarting', RESTART],
  // systemd does not answer: on the count alone (TryRestartUnit never starts a stopped unit).
  ['suspect, max_missed', 'list failed', 'restarting', RESTART],
  ['suspect, max_missed this round', 'list failed', 'restarting', RESTART],
  ...whileProbing('suspect, max_missed', 'suspect'),
  ['suspect, max_missed this round', 'tick', 'suspect', 'ping'],
  ['suspect, max_missed this round', 'pong to the last ping', 'probing', ''],
  // A list asked before max_missed was reached says nothing of now (a stop since?).
  ...whileProbing('suspect, max_missed this round', 'suspect'),
  ['restarting', 'not listed', 'gone', ''],
  ['restarting', 'restart failed', 'probing', 'log:error'],
  killFailed('restarting', 'restarting'),
  ['restarting, call done', 'listed active', 'probing', 'log:notice'],
  ['restarting, call done', 'not listed', 'gone', ''],
  ['restarting, call done', 'restart failed', 'probing', 'log:error'],
  killFailed('restarting, call done', 'restarting'),
  ['restarting, hung', 'tick', 'escalated', KILL],
  ['restarting, hung', 'listed active', 'probing', 'log:notice'],
  ['restarting, hung', 'listed in a job', 'escalated', KILL],
  ['restarting, hung', 'listed inactive, mailbox listening', 'escalated', KILL],
  ['restarting, hung', 'listed inactive, mailbox stopped', 'escalated', KILL],
  ['restarting, hung', 'listed failed', 'escalated', KILL],
  ['restarting, hung', 'not listed', 'gone', ''],
  ['restarting, hung', 'restart failed', 'probing', 'log:error'],
  killFailed('restarting, hung', 'restarting'),
  ['escalated', 'listed active', 'probing', 'log:notice'],
  ['escalated', 'not listed', 'gone', ''],
  killFailed('escalated', 'escalated'),
  ['waiting', 'listed active', 'probing', ''],
  ['waiting', 'listed inactive, mailbox listening', 'dormant', WAKE],
  ...notMeantToRun('waiting'),
  killFailed('waiting', 'waiting'),
  ['dormant, just woken', 'listed active', 'probing', ''],
  ['dormant, just woken', 'listed in a job', 'waiting', ''],
  ...notMeantToRun('dormant, just woken'),
  killFailed('dormant, just woken', 'dormant'),
  ['dormant, woken long ago', 'listed active', 'probing', ''],
  ['dormant, woken long ago', 'listed in a job', 'waiting', ''],
  ['dormant, woken long ago', 'listed inactive, mailbox listening', 'dormant', WAKE],
  ...notMeantToRun('dormant, woken long ago'),
  killFailed('dormant, woken long ago', 'dormant'),
];

t.test('every state × every event: the next state and the actions', async (t) => {
  const expected = new Map(table.map(([s, e, next, actions]) => [`${s} × ${e}`, { next, actions }]));
  t.equal(expected.size, table.length, 'no row twice');
  const unknown = table.filter(([s, e]) => !states[s] || !events[e]).map(([s, e]) => `${s} × ${e}`);
  t.same(unknown, [], 'every row names a state and an event of the fixtures');
  let cells = 0;
  for (const [sName, state] of Object.entries(states)) {
    for (const [eName, event] of Object.entries(events)) {
      const ev = eName === 'pong to the last ping' && 'sent' in state ? { ...event, seq: state.sent } : event;
      const want = expected.get(`${sName} × ${eName}`) ?? { next: state.s, actions: '' };
      const step = supervise(state, ev, rules);
      t.equal(`${step.state.s}: ${shape(step.actions)}`, `${want.next}: ${want.actions}`, `${sName} × ${eName}`);
      cells++;
    }
  }
  t.equal(cells, Object.keys(states).length * Object.keys(events).length, 'every cell checked');
});

t.test('the table is pure: the same step twice gives the same result, the input untouched', async (t) => {
  for (const [sName, state] of Object.entries(states)) {
    const before = JSON.stringify(state);
    for (const event of Object.values(events)) t.same(supervise(state, event, rules), supervise(state, event, rules));
    t.equal(JSON.stringify(state), before, `${sName} not mutated`);
  }
});

t.test('probing: pings carry the round seq, missed pings count up to max_missed, a unit list asked after it confirms the restart', async (t) => {
  let s: TargetState = { s: 'probing', sent: 0, acked: 0, missed: 0, lastAnswerMs: 1000 };
  const seen: string[] = [];
  for (let seq = 1; seq <= 5; seq++) {
    const step = supervise(s, { e: 'tick', now: 1000 + seq * 300, seq }, rules);
    s = step.state;
    seen.push(`${s.s}${'missed' in s ? `/${s.missed}` : ''}:${shape(step.actions)}`);
    if (seq === 1) t.same(step.actions, [{ a: 'ping', seq: 1 }], 'the first ping carries the round seq');
  }
  t.same(seen, ['probing/0:ping', 'suspect/1:ping', 'suspect/2:ping', 'suspect/3:ping', 'suspect/4:ping'], 'max_missed = 3 unanswered pings: no restart on the count alone');
  t.equal('dueMs' in s && s.dueMs, 2200, 'due since the round that counted the third');
  const early = supervise(s, { e: 'unit-listed', now: 2500, askedMs: 2199, seq: 5, unit: unit('active') }, rules);
  t.same(early, { state: s, actions: [] }, 'a list asked before then (the stop may have come since): not enough');
  const stopping = supervise(s, { e: 'unit-listed', now: 2500, askedMs: 2400, seq: 5, unit: unit('deactivating', true) }, rules);
  t.same(stopping, { state: { s: 'waiting' }, actions: [] }, 'a stop job (systemctl stop, dispatchctl scale): no restart, no warning');
  const restart = supervise(s, { e: 'unit-listed', now: 2500, askedMs: 2200, seq: 5, unit: unit('active') }, rules);
  t.equal(restart.state.s, 'restarting', 'active with no job, asked from then on: restarted');
  t.same(restart.actions[1], {
    a: 'log',
    level: 'warning',
    message: 'dispatchd-secondary@1.service missed 4 pings in a row (no answer for 1500 ms): restarting it',
    fields: { unit: 'dispatchd-secondary@1.service', reason: 'missed-pings', missed: 4, silent_ms: 1500, action: 'restart' },
  }, 'the journal line, with its fields');
  t.same(shape(restart.actions), RESTART);
  const answered = supervise(s, { e: 'pong', now: 2500, seq: 5 }, rules).state;
  t.same(answered, { s: 'probing', sent: 5, acked: 5, missed: 0, lastAnswerMs: 2500 }, 'a pong before the list: forgiven, nothing due any more');
});

t.test('a pong resets the count; an old or future pong does not', async (t) => {
  const s: TargetState = { s: 'suspect', sent: 7, acked: 5, missed: 2, lastAnswerMs: 1000 };
  t.same(supervise(s, { e: 'pong', now: 5000, seq: 7 }, rules).state, { s: 'probing', sent: 7, acked: 7, missed: 0, lastAnswerMs: 5000 });
  t.same(supervise(s, { e: 'pong', now: 5000, seq: 6 }, rules).state, { s: 'probing', sent: 7, acked: 6, missed: 0, lastAnswerMs: 5000 }, 'a late answer is still an answer');
  t.equal(supervise(s, { e: 'pong', now: 5000, seq: 5 }, rules).state, s, 'already counted');
  t.equal(supervise(s, { e: 'pong', now: 5000, seq: 8 }, rules).state, s, 'to a ping never sent (an earlier watchdog process)');
});

t.test('a ping with no reader or no FIFO is reported only if the unit list still shows the unit meant to run', async (t) => {
  const s: TargetState = { s: 'probing', sent: 6, acked: 5, missed: 0, lastAnswerMs: 1000 };
  const failed = supervise(s, { e: 'ping-failed', code: 'MAILBOX_NO_READER', message: "failed to open mailbox 'x': no reader" }, rules);
  t.same(failed.actions, [], 'not at once');
  const stillMeant = supervise(failed.state, { e: 'unit-listed', now: 2000, askedMs: 2000, seq: 7, unit: unit('active') }, rules);
  t.same(stillMeant.actions, [
    { a: 'incident', key: 'ping:secondary-1:MAILBOX_NO_READER', level: 'warning', message: "failed to ping secondary-1: failed to open mailbox 'x': no reader; counting it as missed", fields: { unit: 'dispatchd-secondary@1.service', code: 'MAILBOX_NO_READER' } },
  ]);
  t.notOk('deferred' in stillMeant.state && stillMeant.state.deferred, 'reported once');
  const stopping = supervise(failed.state, { e: 'unit-listed', now: 2000, askedMs: 2000, seq: 7, unit: unit('deactivating', true) }, rules);
  t.same(stopping, { state: { s: 'waiting' }, actions: [] }, 'a unit being stopped: no warning');
  const noFifo = supervise(s, { e: 'ping-failed', code: 'MAILBOX_OPEN_FAILED', message: "failed to open mailbox 'x': ENOENT" }, rules);
  t.same(noFifo.actions, [], 'no FIFO (its socket unit stopped): not at once either');
  t.same(supervise(noFifo.state, { e: 'unit-listed', now: 2000, askedMs: 2000, seq: 7, unit: unit('inactive', false, false) }, rules), { state: { s: 'gone' }, actions: [] }, 'stopped with its sockets: no warning');
  t.equal(shape(supervise(noFifo.state, { e: 'unit-listed', now: 2000, askedMs: 2000, seq: 7, unit: unit('active') }, rules).actions), 'incident:warning', 'still active: reported');
});

t.test('a restart: followed until the unit is active again, escalated to SIGKILL when it hangs', async (t) => {
  let s: TargetState = { s: 'restarting', sinceMs: 1000, callDone: false, lastSeen: 'active', lastAnswerMs: 100 };
  s = supervise(s, { e: 'unit-listed', now: 1500, askedMs: 1500, seq: 5, unit: unit('active') }, rules).state;
  t.equal(s.s, 'restarting', 'active, but the RestartUnit call has not returned: the same frozen process');
  s = supervise(s, { e: 'restart-ok' }, rules).state;
  t.equal(supervise(s, { e: 'unit-listed', now: 1200, askedMs: 1200, seq: 5, unit: unit('active') }, rules).state.s, 'restarting', 'not within one probe period of the order');
  const back = supervise(s, { e: 'unit-listed', now: 2400, askedMs: 2400, seq: 6, unit: unit('active') }, rules);
  t.same(back, {
    state: { s: 'probing', sent: 0, acked: 0, missed: 0, lastAnswerMs: 2400 },
    actions: [{ a: 'log', level: 'notice', message: 'dispatchd-secondary@1.service is active again 1400 ms after the restart', fields: { unit: 'dispatchd-secondary@1.service', action: 'restart', outcome: 'recovered', recovery_ms: 1400 } }],
  });
  const seen = supervise(s, { e: 'unit-listed', now: 3000, askedMs: 3000, seq: 7, unit: unit('deactivating', true) }, rules).state;
  const hung = supervise(seen, { e: 'tick', now: 1000 + ESCALATE_AFTER_MS, seq: 8 }, rules);
  t.equal(hung.state.s, 'escalated');
  t.same(hung.actions[1], {
    a: 'log',
    level: 'warning',
    message: `dispatchd-secondary@1.service has not come back ${ESCALATE_AFTER_MS} ms after the restart (state deactivating); killing its main process (SIGKILL) so that systemd restarts it`,
    fields: { unit: 'dispatchd-secondary@1.service', reason: 'restart-hung', action: 'kill' },
  });
  t.same(supervise(hung.state, { e: 'tick', now: 9000, seq: 9 }, rules).actions, [], 'killed once, not every round');
  const failed = supervise({ s: 'restarting', sinceMs: 1000, callDone: false, lastSeen: 'active', lastAnswerMs: 100 }, { e: 'restart-failed', message: "failed to restart dispatchd-secondary@1.service through systemd's D-Bus API: no answer within 2500 ms" }, rules);
  t.same(failed.actions, [{ a: 'log', level: 'error', message: "failed to restart dispatchd-secondary@1.service: failed to restart dispatchd-secondary@1.service through systemd's D-Bus API: no answer within 2500 ms; retrying after 3 more missed pings", fields: { unit: 'dispatchd-secondary@1.service', code: 'RESTART_FAILED' } }]);
  let retry = failed.state;
  const shapes: string[] = [];
  for (let seq = 10; seq < 14; seq++) {
    const step = supervise(retry, { e: 'tick', now: 2000 + seq * 300, seq }, rules);
    retry = step.state;
    shapes.push(shape(step.actions));
  }
  t.same(shapes, ['ping', 'ping', 'ping', 'ping'], 'pinging on');
  t.equal(shape(supervise(retry, { e: 'unit-listed', now: 6000, askedMs: 6000, seq: 14, unit: unit('active') }, rules).actions), RESTART, 'retried after max_missed more missed pings and a unit list');
});

t.test('dormant: a stopped service whose mailbox socket listens is pinged awake, again after WAKE_RETRY_MS', async (t) => {
  const woken = supervise({ s: 'waiting' }, { e: 'unit-listed', now: 5000, askedMs: 5000, seq: 12, unit: unit('inactive') }, rules);
  t.same(woken, {
    state: { s: 'dormant', wokeAtMs: 5000 },
    actions: [
      { a: 'log', level: 'notice', message: 'dispatchd-secondary@1.service is inactive but its mailbox socket is listening: pinging secondary-1 so that socket activation starts it again', fields: { unit: 'dispatchd-secondary@1.service', reason: 'stopped-service', action: 'wake' } },
      { a: 'ping', seq: 12 },
    ],
  });
  t.same(supervise(woken.state, { e: 'unit-listed', now: 5000 + WAKE_RETRY_MS - 1, askedMs: 5000 + WAKE_RETRY_MS - 1, seq: 13, unit: unit('inactive') }, rules).actions, [], 'one ping is enough while systemd starts it');
  t.equal(shape(supervise(woken.state, { e: 'unit-listed', now: 5000 + WAKE_RETRY_MS, askedMs: 5000 + WAKE_RETRY_MS, seq: 14, unit: unit('inactive') }, rules).actions), WAKE, 'pinged again if it did not start');
  t.same(supervise(woken.state, { e: 'unit-listed', now: 6000, askedMs: 6000, seq: 13, unit: unit('active') }, rules).state, { s: 'probing', sent: 0, acked: 0, missed: 0, lastAnswerMs: 6000 }, 'probed as any daemon once it runs');
  t.equal(supervise({ s: 'waiting' }, { e: 'unit-listed', now: 5000, askedMs: 5000, seq: 12, unit: unit('inactive', false, false) }, rules).state.s, 'gone', 'stopped with its sockets ("keep it stopped"): left alone');
  t.equal(supervise({ s: 'waiting' }, { e: 'unit-listed', now: 5000, askedMs: 5000, seq: 12, unit: unit('inactive', false, true) }, { ...rules, name: 'main', unit: 'dispatchd-main.service' }).state.s, 'dormant', 'main too');
  t.equal(supervise({ s: 'waiting' }, { e: 'unit-listed', now: 5000, askedMs: 5000, seq: 12, unit: unit('failed') }, rules).state.s, 'gone', 'a failed unit (start limit) is the operator\'s: not woken');
});
