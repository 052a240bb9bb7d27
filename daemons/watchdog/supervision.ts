/**
 * The watchdog's supervision of one daemon (main or secondary N) as a state × event table:
 * {@link supervise} is a pure function from (state, event) to (state, actions). The watchdog
 * feeds it the events it sees (probe rounds, pongs, failed pings, the unit list, how a
 * restart call ended) and carries out the actions (ping, restart, kill, log, count); nothing
 * here does I/O or reads a clock (every event carries `now`, ms since the epoch).
 *
 *   state       what it means                                  left on
 *   probing     every ping answered                            a missed ping (suspect), a job (waiting), unit inactive (dormant/gone)
 *   suspect     1 or more pings in a row unanswered              a pong (probing); max_missed and then a unit list asked
 *                                                                after it showing the unit active with no job, or a failed
 *                                                                unit list (restarting); as probing otherwise
 *   restarting  RestartUnit ordered, not yet seen through        active again (probing), call failed/timed out (probing),
 *                                                                ESCALATE_AFTER_MS without coming back (escalated)
 *   escalated   its main process was killed (SIGKILL)          active again (probing)
 *   waiting     systemd runs a job on it (start, stop, reload)  active with no job (probing), inactive (dormant/gone)
 *   dormant     service inactive, its mailbox socket listening  active (probing), a job (waiting), socket stopped (gone)
 *   gone        not meant to run (unit and sockets stopped,      (final: the watchdog forgets the target)
 *               failed, or no longer listed)
 *
 * Dormant is issue 9 item 10: `systemctl stop dispatchd-secondary@N.service` (the service
 * only) leaves its sockets listening, and the README promises that the next write into its
 * mailbox FIFO (or connection to its client socket) starts it again: socket activation. But
 * nothing was meant to write there. Main never reserves on a secondary whose slot says
 * stopping or stopped, and the watchdog forgot a unit as soon as a unit list showed it not
 * `active`. A stopped secondary came back only by accident, when something reached one of
 * its sockets after its process had stopped reading them, and systemd found it there once
 * the service was inactive:
 *  - a client holding a lease granted just before the stop connects to secondary-N.sock
 *    while the secondary drains (up to 1.5 s with a request running; it has closed its
 *    listener, so the connection waits in the backlog of systemd's socket). Measured in the
 *    sandbox with the watchdog stopped and 20 clients: 2 of 3 stops came back this way (the
 *    new process refused those leases: LEASE_STALE), 1 of 3 stayed inactive; with no load,
 *    0 of 2 came back;
 *  - a watchdog ping written after the secondary closed its mailbox reader: only if the
 *    watchdog had not refreshed its unit list (every 2 s while all answer) during the drain.
 * Hence the 2 of 6 trials that recovered. A dormant daemon is now pinged on purpose, so
 * socket activation starts it whatever it was doing when it was stopped.
 *
 * A restart is ordered only when a unit list asked *after* the max_missed-th unanswered
 * ping still shows the unit active with no job. A daemon stopped on purpose (`systemctl
 * stop`, `dispatchctl scale`) stops answering while it drains and exits; when systemd was
 * slow to answer the unit list (a loaded machine: CI ran four sandboxes on two cores), the
 * table used to count max_missed before it heard of the stop job, and its RestartUnit
 * replaced that job: a scaled-down secondary came back with its sockets, and the watchdog
 * warned of a restart nobody needed. (The call is also TryRestartUnit in mode "fail"
 * (unit-manager.ts): it never starts a stopped unit nor replaces a queued job.)
 */

/** A restart not finished after this long (ms) is escalated to SIGKILL of the main process. */
export const ESCALATE_AFTER_MS = 3000;
/** Ping failures that a stopped socket unit explains: no reader on the FIFO, no FIFO at all. */
export const DEFERRED_PING_FAILURES: ReadonlySet<string> = new Set(['MAILBOX_NO_READER', 'MAILBOX_OPEN_FAILED']);
/** A dormant daemon that has not started this long (ms) after a wake-up ping is pinged again. */
export const WAKE_RETRY_MS = 3000;

/** What one unit list says about a daemon. */
export interface UnitView {
  /** The service's ActiveState: active, activating, deactivating, reloading, inactive, failed. */
  activeState: string;
  /** A job (start, stop, restart, reload) is queued or running for the service. */
  jobPending: boolean;
  /** Its mailbox socket unit is active with no job: a write into the FIFO starts the service. */
  mailboxListening: boolean;
}

interface Probe {
  /** Seq of the last ping sent (0: none yet). */
  sent: number;
  /** Highest seq answered. */
  acked: number;
  /** Pings in a row unanswered. */
  missed: number;
  /** When the daemon last answered, or probing began (ms). */
  lastAnswerMs: number;
  /**
   * A ping found no FIFO or no reader on it (its socket unit is stopping or stopped):
   * reported only once a unit list shows the unit still meant to run.
   */
  deferred?: { code: string; message: string };
  /**
   * When max_missed was reached (ms): the restart waits for a unit list asked at or after
   * this time that shows the unit active with no job.
   */
  dueMs?: number;
}

export type TargetState =
  | ({ s: 'probing' | 'suspect' } & Probe)
  | { s: 'restarting'; sinceMs: number; callDone: boolean; lastSeen: string; lastAnswerMs: number }
  | { s: 'escalated'; sinceMs: number }
  | { s: 'waiting' }
  | { s: 'dormant'; wokeAtMs: number }
  | { s: 'gone' };

export type SupervisionEvent =
  /** A probe round: judge the last ping, send the next one with `seq`. */
  | { e: 'tick'; now: number; seq: number }
  | { e: 'pong'; now: number; seq: number }
  /** Writing a ping failed; {@link DEFERRED_PING_FAILURES} are judged after the next unit list. */
  | { e: 'ping-failed'; code: string; message: string }
  /**
   * The unit list shows the daemon; `askedMs` is when the list was asked for (ms), `seq`
   * the round's ping seq (for a wake-up ping).
   */
  | { e: 'unit-listed'; now: number; askedMs: number; seq: number; unit: UnitView }
  /** The unit list does not show the daemon at all. */
  | { e: 'unit-missing' }
  /** Asking systemd for the unit list failed or timed out. */
  | { e: 'list-failed'; now: number }
  | { e: 'restart-ok' }
  | { e: 'restart-failed'; message: string }
  | { e: 'kill-failed'; message: string };

export type LogLevel = 'notice' | 'warning' | 'error';

export type SupervisionAction =
  | { a: 'ping'; seq: number }
  | { a: 'restart' }
  | { a: 'kill' }
  | { a: 'log'; level: LogLevel; message: string; fields: Record<string, unknown> }
  /** A repeating problem: logged at most once per kind (`key`) per 30 s. */
  | { a: 'incident'; key: string; level: LogLevel; message: string; fields: Record<string, unknown> }
  /** One more restart or kill ordered (the watchdog's slot counts them as incidents). */
  | { a: 'count' };

export interface Rules {
  /** The daemon's name (`main`, `secondary-N`) and service unit, for messages. */
  name: string;
  unit: string;
  maxMissed: number;
  probeIntervalMs: number;
}

export interface Step {
  state: TargetState;
  actions: SupervisionAction[];
}

/** The state a newly listed daemon starts in: nothing known until its unit-listed event. */
export const INITIAL: TargetState = { s: 'waiting' };

/** A fresh probe: nothing sent, nothing missed. */
function probing(now: number): TargetState {
  return { s: 'probing', sent: 0, acked: 0, missed: 0, lastAnswerMs: now };
}

type Listing = 'running' | 'job' | 'dormant' | 'down';

/** What a unit list says, in the table's terms. */
export function classify(u: UnitView): Listing {
  if (u.jobPending || u.activeState === 'activating' || u.activeState === 'deactivating' || u.activeState === 'reloading') return 'job';
  if (u.activeState === 'active') return 'running';
  if (u.activeState === 'inactive' && u.mailboxListening) return 'dormant';
  return 'down';
}

/** One step of the table. Pure: the same (state, event) always gives the same step. */
export function supervise(state: TargetState, ev: SupervisionEvent, r: Rules): Step {
  const same: Step = { state, actions: [] };
  if (state.s === 'gone') return same;
  if (ev.e === 'unit-missing') return { state: { s: 'gone' }, actions: [] };
  if (ev.e === 'kill-failed') return { state, actions: [log('error', `failed to kill ${r.unit}: ${ev.message}`, { unit: r.unit, code: 'RESTART_FAILED' })] };
  switch (state.s) {
    case 'probing':
    case 'suspect':
      return probe(state, ev, r);
    case 'restarting':
      return restarting(state, ev, r);
    case 'escalated':
      if (ev.e === 'unit-listed' && classify(ev.unit) === 'running') return recovered(ev.now - state.sinceMs, ev.now, r);
      return same;
    case 'waiting':
    case 'dormant':
      return ev.e === 'unit-listed' ? listed(state, ev, r) : same;
  }
}

function probe(p: Extract<TargetState, { s: 'probing' | 'suspect' }>, ev: SupervisionEvent, r: Rules): Step {
  switch (ev.e) {
    case 'tick': {
      const missed = p.sent > p.acked ? p.missed + 1 : p.missed;
      // max_missed reached: pinging on, the restart waits for a unit list asked from now on.
      const dueMs = p.dueMs ?? (missed >= r.maxMissed ? ev.now : undefined);
      return { state: { ...p, s: missed > 0 ? 'suspect' : 'probing', missed, sent: ev.seq, ...(dueMs === undefined ? {} : { dueMs }) }, actions: [{ a: 'ping', seq: ev.seq }] };
    }
    case 'pong': {
      if (ev.seq <= p.acked || ev.seq > p.sent) return { state: p, actions: [] }; // an old or foreign answer
      const { dueMs: _answered, ...rest } = p;
      return { state: { ...rest, s: 'probing', acked: ev.seq, missed: 0, lastAnswerMs: ev.now }, actions: [] };
    }
    case 'ping-failed':
      // No FIFO or no reader: the unit may be stopping with its sockets; judged after the
      // next unit list, so that a unit stopped on purpose draws no warning. The ping counts
      // as unanswered either way.
      if (DEFERRED_PING_FAILURES.has(ev.code)) return { state: { ...p, deferred: { code: ev.code, message: ev.message } }, actions: [] };
      return { state: p, actions: [pingIncident(ev.code, ev.message, r)] };
    case 'unit-listed': {
      if (classify(ev.unit) !== 'running') return listed(p, ev, r);
      if (p.dueMs !== undefined && ev.askedMs >= p.dueMs) return restart(p, ev.now, r);
      if (p.deferred === undefined) return { state: p, actions: [] };
      const { deferred, ...rest } = p;
      return { state: rest, actions: [pingIncident(deferred.code, deferred.message, r)] };
    }
    case 'list-failed':
      // systemd does not say: restart on the count alone. TryRestartUnit in mode "fail"
      // cannot start a stopped unit or replace a stop job, so an operator's stop still wins.
      return p.dueMs !== undefined ? restart(p, ev.now, r) : { state: p, actions: [] };
    default:
      return { state: p, actions: [] };
  }
}

/** max_missed pings unanswered and systemd says the unit is meant to run: restart it. */
function restart(p: Extract<TargetState, { s: 'probing' | 'suspect' }>, now: number, r: Rules): Step {
  const silentMs = now - p.lastAnswerMs;
  return {
    state: { s: 'restarting', sinceMs: now, callDone: false, lastSeen: 'active', lastAnswerMs: p.lastAnswerMs },
    actions: [
      { a: 'count' },
      log('warning', `${r.unit} missed ${p.missed} pings in a row (no answer for ${silentMs} ms): restarting it`, { unit: r.unit, reason: 'missed-pings', missed: p.missed, silent_ms: silentMs, action: 'restart' }),
      { a: 'restart' },
    ],
  };
}

function restarting(st: Extract<TargetState, { s: 'restarting' }>, ev: SupervisionEvent, r: Rules): Step {
  switch (ev.e) {
    case 'restart-ok':
      return { state: { ...st, callDone: true }, actions: [] };
    case 'restart-failed':
      return {
        state: { s: 'probing', sent: 0, acked: 0, missed: 0, lastAnswerMs: st.lastAnswerMs },
        actions: [log('error', `failed to restart ${r.unit}: ${ev.message}; retrying after ${r.maxMissed} more missed pings`, { unit: r.unit, code: 'RESTART_FAILED' })],
      };
    case 'unit-listed': {
      const since = ev.now - st.sinceMs;
      // Done once the call returned and the unit is active with no job a probe period on.
      if (st.callDone && classify(ev.unit) === 'running' && since > r.probeIntervalMs) return recovered(since, ev.now, r);
      return escalateIfHung({ ...st, lastSeen: ev.unit.activeState }, ev.now, r);
    }
    case 'tick':
      return escalateIfHung(st, ev.now, r);
    default:
      return { state: st, actions: [] };
  }
}

function escalateIfHung(st: Extract<TargetState, { s: 'restarting' }>, now: number, r: Rules): Step {
  const since = now - st.sinceMs;
  if (since < ESCALATE_AFTER_MS) return { state: st, actions: [] };
  return {
    state: { s: 'escalated', sinceMs: st.sinceMs },
    actions: [
      { a: 'count' },
      log('warning', `${r.unit} has not come back ${since} ms after the restart (state ${st.lastSeen}); killing its main process (SIGKILL) so that systemd restarts it`, { unit: r.unit, reason: 'restart-hung', action: 'kill' }),
      { a: 'kill' },
    ],
  };
}

function recovered(since: number, now: number, r: Rules): Step {
  return {
    state: probing(now),
    actions: [log('notice', `${r.unit} is active again ${since} ms after the restart`, { unit: r.unit, action: 'restart', outcome: 'recovered', recovery_ms: since })],
  };
}

/** A unit list seen from probing, suspect, waiting or dormant. */
function listed(state: TargetState, ev: Extract<SupervisionEvent, { e: 'unit-listed' }>, r: Rules): Step {
  switch (classify(ev.unit)) {
    case 'running':
      return { state: state.s === 'waiting' || state.s === 'dormant' ? probing(ev.now) : state, actions: [] };
    case 'job':
      // Being started, stopped or restarted: systemd is on it, and it cannot answer.
      return { state: { s: 'waiting' }, actions: [] };
    case 'down':
      return { state: { s: 'gone' }, actions: [] };
    case 'dormant':
      if (state.s === 'dormant' && ev.now - state.wokeAtMs < WAKE_RETRY_MS) return { state, actions: [] };
      return {
        state: { s: 'dormant', wokeAtMs: ev.now },
        actions: [
          log('notice', `${r.unit} is inactive but its mailbox socket is listening: pinging ${r.name} so that socket activation starts it again`, { unit: r.unit, reason: 'stopped-service', action: 'wake' }),
          { a: 'ping', seq: ev.seq },
        ],
      };
  }
}

function log(level: LogLevel, message: string, fields: Record<string, unknown>): SupervisionAction {
  return { a: 'log', level, message, fields };
}

function pingIncident(code: string, message: string, r: Rules): SupervisionAction {
  return { a: 'incident', key: `ping:${r.name}:${code}`, level: 'warning', message: `failed to ping ${r.name}: ${message}; counting it as missed`, fields: { unit: r.unit, code } };
}
