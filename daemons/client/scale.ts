/**
 * `dispatchctl scale [N]`: the number of secondary servers. It is systemd's own state:
 * instance N runs when dispatchd-secondary@N.service is enabled (linked into
 * dispatchd.target.wants/ by the template's [Install] section, its two sockets with it
 * through Also=). Scaling to N enables instances 1..N, starts them if the suite is running,
 * then stops and disables the instances above N. The main server notices the change on the
 * scoreboard (a new secondary claims its slot; a stopped one says so in its slot) and the
 * watchdog in systemd's unit list: neither restarts.
 *
 * Library code: throws DispatchError SCALE_FAILED; dispatchctl prints it.
 */
import { execFile } from 'node:child_process';
import { DispatchError } from '../common/errors.js';
import { isSecondaryInstance, MAX_SECONDARIES, SECONDARY_UNIT_GLOB, secondary, secondaryInstancesIn, serviceUnit, socketUnits, SUITE_TARGET } from '../common/topology.js';

/** Runs `systemctl ARGS…`; resolves with its output, whatever its exit status. */
export type Systemctl = (args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;

/** The real systemctl(1). */
export const systemctl: Systemctl = (args) =>
  new Promise((resolve, reject) => {
    execFile('systemctl', args, { encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new DispatchError('SCALE_FAILED', `failed to run 'systemctl ${args.join(' ')}': ${err.message}`, { cause: err }));
        return;
      }
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });

/** Where the secondaries stand: enabled (wanted by the target) and running instances, ascending. */
export interface ScaleState {
  enabled: number[];
  running: number[];
  /** Whether dispatchd.target is active (new instances are started only then). */
  suiteActive: boolean;
}

/** What scaling to N does, as systemctl arguments, in order. */
export interface ScalePlan {
  enable: string[];
  start: string[];
  stop: string[];
  disable: string[];
}

const service = (n: number) => serviceUnit(secondary(n));
const sockets = (n: number) => socketUnits(secondary(n));

/**
 * Plans scaling from `state` to `n` secondaries (pure). Enabling and starting are
 * idempotent, so 1..N are always named (this also repairs a missing socket link).
 */
export function planScale(state: ScaleState, n: number): ScalePlan {
  if (!isSecondaryInstance(n)) {
    throw new DispatchError('SCALE_FAILED', `failed to scale to ${n} secondaries: the number must be a whole number 1..${MAX_SECONDARIES}`);
  }
  const wanted = Array.from({ length: n }, (_, i) => i + 1);
  const extra = [...new Set([...state.enabled, ...state.running])].filter((i) => i > n).sort((a, b) => a - b);
  return {
    enable: wanted.map(service),
    start: state.suiteActive ? wanted.map(service) : [],
    // Every instance above N, running or only enabled: an enabled instance's sockets listen
    // while its service is not running (socket activation), and a connection would start it
    // again; stopping a unit that is not active does nothing.
    stop: extra.flatMap((i) => [service(i), ...sockets(i)]),
    disable: extra.map(service),
  };
}

async function run(sc: Systemctl, args: string[], what: string): Promise<string> {
  const r = await sc(args);
  if (r.code !== 0) {
    const why = r.stderr.trim().split('\n').pop() || `exit status ${r.code}`;
    const hint = /Access denied|authentication required|Permission denied/i.test(r.stderr) ? ' (run as root)' : '';
    throw new DispatchError('SCALE_FAILED', `failed to ${what}: systemctl ${args.join(' ')}: ${why}${hint}`);
  }
  return r.stdout;
}

/** Reads the secondaries' state from systemd. @throws DispatchError SCALE_FAILED. */
export async function scaleState(sc: Systemctl = systemctl): Promise<ScaleState> {
  const wants = await run(sc, ['show', '--property=Wants', '--value', SUITE_TARGET], `read what ${SUITE_TARGET} wants`);
  const units = await run(sc, ['list-units', '--plain', '--no-legend', '--all', '--state=active,activating,reloading,deactivating', SECONDARY_UNIT_GLOB], 'list the running secondaries');
  const active = (await sc(['is-active', '--quiet', SUITE_TARGET])).code === 0;
  return { enabled: secondaryInstancesIn(wants), running: secondaryInstancesIn(units.split('\n').map((l) => l.split(/\s+/)[0] ?? '').join(' ')), suiteActive: active };
}

/**
 * Scales to `n` secondaries: enable 1..N, start them (suite running), stop and disable the
 * rest. Returns the state before and after.
 * @throws DispatchError SCALE_FAILED naming the systemctl command that failed.
 */
export async function scale(n: number, sc: Systemctl = systemctl): Promise<{ before: ScaleState; after: ScaleState; plan: ScalePlan }> {
  const before = await scaleState(sc);
  const plan = planScale(before, n);
  await run(sc, ['enable', '--quiet', ...plan.enable], `enable ${n} secondaries`);
  if (plan.start.length) await run(sc, ['start', ...plan.start], `start ${n} secondaries`);
  if (plan.stop.length) await run(sc, ['stop', ...plan.stop], 'stop the secondaries above the new number');
  if (plan.disable.length) await run(sc, ['disable', '--quiet', ...plan.disable], 'disable the secondaries above the new number');
  return { before, after: await scaleState(sc), plan };
}
