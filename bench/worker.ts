#!/usr/bin/node
/**
 * One measurement of `npm run bench`, run as its own process (on the host, or inside the
 * throw-away systemd where the .deb is installed). Prints one JSON object on standard
 * output; exit 0 on success, 1 with a message on standard error otherwise.
 *
 *   worker.js load --target bare|dispatchd --socket PATH --mode session|handshake|kept
 *                  --type T --size BYTES --concurrency N --duration MS --warmup MS
 *   worker.js freeze --socket PATH      (under systemd) SIGSTOP main, time to the first answer
 *   worker.js start --socket PATH       (under systemd) stop the target, 1 s pause, time start → first answer
 *   worker.js idle --seconds S --units U1,U2,…   (under systemd) RSS and CPU of each unit's MainPID,
 *                  and of a bare node process holding one socket (the baseline)
 *   worker.js cli --socket PATH --dispatchctl PATH --runs N   wall and CPU time of whole runs of
 *                  `dispatchctl request echo x` and `dispatchctl --version` against `node -e 0`
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DispatchClient } from '../daemons/client/client.js';
import { DEFAULT_SECONDARIES, MAIN, SCOREBOARD_UNIT, serviceUnit, suiteDaemons } from '../daemons/common/topology.js';
// Inside the sandbox this resolves next to the installed build: SystemdSuite copies it in.
import { until } from '../test/helpers/until.js';
import { runLoad, type LoadMode, type TargetKind } from './load.js';
import { measureCliStart } from './cli-start.js';
import { measureIdle, startIdleReferences } from './proc-stats.js';

const { positionals, values: v } = parseArgs({
  allowPositionals: true,
  options: {
    target: { type: 'string', default: 'dispatchd' },
    socket: { type: 'string', default: '/run/dispatchd/main.sock' },
    mode: { type: 'string', default: 'session' },
    type: { type: 'string', default: 'echo' },
    size: { type: 'string', default: '1024' },
    concurrency: { type: 'string', default: '1' },
    duration: { type: 'string', default: '5000' },
    warmup: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '60' },
    units: { type: 'string', default: '' },
    dispatchctl: { type: 'string', default: '/usr/bin/dispatchctl' },
    runs: { type: 'string', default: '40' },
  },
});

const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
const mainPid = () => Number(sh('systemctl', 'show', '-p', 'MainPID', '--value', serviceUnit(MAIN)));
/** The suite's units as the package installs it (secondaries 1 and 2 enabled). */
/** The suite the package installs: the scoreboard keeper and main, the default secondaries and the watchdog. */
const SUITE_UNITS = [SCOREBOARD_UNIT, ...suiteDaemons(DEFAULT_SECONDARIES).map(serviceUnit)];

/**
 * Polls `systemctl is-active` until every unit of the suite is in one of `states`, at most `ms`.
 * @throws Error naming each unit's state when the time is up.
 */
async function untilUnits(states: string[], ms: number): Promise<void> {
  await until(`the suite's units to be ${states.join(' or ')}`, ms, () => {
    // One line per unit; exits non-zero unless all are active, which is not an error here.
    const now = spawnSync('systemctl', ['is-active', ...SUITE_UNITS], { encoding: 'utf8' }).stdout.trim().split('\n');
    if (now.length === SUITE_UNITS.length && now.every((x) => states.includes(x))) return true;
    throw new Error(SUITE_UNITS.map((u, i) => `${u} ${now[i] ?? '?'}`).join(', '));
  }, { everyMs: 50 });
}

/** Waits until a request succeeds (the suite serves), at most `ms`. */
async function untilServing(socket: string, ms: number): Promise<void> {
  const client = new DispatchClient({ socket, timeoutMs: ms });
  await client.request('echo', Buffer.from('x'));
}

async function freeze(socket: string): Promise<object> {
  await untilServing(socket, 30_000);
  const frozen = mainPid();
  const client = new DispatchClient({ socket }); // every default: what `dispatchctl request` does
  const t0 = performance.now();
  spawnSync('systemctl', ['kill', '-s', 'SIGSTOP', serviceUnit(MAIN)]);
  const out = await client.request('echo', Buffer.from('x'));
  const ms = performance.now() - t0;
  if (out.toString() !== 'x') throw new Error('wrong answer after the freeze');
  const after = mainPid();
  // Let the suite settle before anything else runs: every unit active again (a restarted
  // main is active once it sent READY=1, after its first heartbeat), then serving.
  await untilUnits(['active'], 30_000);
  await untilServing(socket, 30_000);
  return { ms, frozenPid: frozen, newPid: after, restarted: after !== frozen };
}

async function start(socket: string): Promise<object> {
  sh('systemctl', 'stop', 'dispatchd.target');
  // The target is ordered after its services, so its stop job ends before theirs do and
  // `systemctl stop` can return while they are still stopping: wait until they are down.
  await untilUnits(['inactive', 'failed'], 30_000);
  // The pause of issue 12's measure: stopped for 1 s, as an operator's stop and start would be.
  await new Promise((r) => setTimeout(r, 1000));
  const client = new DispatchClient({ socket, timeoutMs: 10_000 });
  const t0 = performance.now();
  sh('systemctl', 'start', 'dispatchd.target');
  const started = performance.now() - t0;
  await client.request('echo', Buffer.from('x'));
  const served = performance.now() - t0;
  // Where the time went: each unit's activation, from leaving "inactive" to "active" (for a
  // Type=notify service: exec to READY=1), on systemd's monotonic clock, relative to the first.
  const stamps = SUITE_UNITS.map((u) => {
    const props = Object.fromEntries(sh('systemctl', 'show', '-p', 'InactiveExitTimestampMonotonic', '-p', 'ActiveEnterTimestampMonotonic', u).split('\n').map((l) => l.split('=') as [string, string]));
    return { unit: u, from: Number(props.InactiveExitTimestampMonotonic) / 1000, to: Number(props.ActiveEnterTimestampMonotonic) / 1000 };
  });
  const origin = Math.min(...stamps.map((x) => x.from));
  return { startReturnedMs: started, firstServedMs: served, units: stamps.map((x) => ({ unit: x.unit, startMs: x.from - origin, readyMs: x.to - origin })) };
}

async function idle(units: string[], seconds: number): Promise<object> {
  const pids: Record<string, number> = {};
  for (const u of units) pids[u] = Number(sh('systemctl', 'show', '-p', 'MainPID', '--value', u));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-idle-'));
  const refs = await startIdleReferences(dir);
  try {
    return { daemons: await measureIdle({ ...pids, ...refs.pids }, seconds) };
  } finally {
    refs.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** `dispatchctl request echo x` and `dispatchctl --version`, whole runs, against `node -e 0`. */
function cli(socket: string, dispatchctl: string, runs: number): object {
  return measureCliStart(
    {
      'node -e 0': [process.execPath, '-e', '0'],
      'dispatchctl request echo x': [dispatchctl, '--socket', socket, 'request', 'echo', 'x'],
      'dispatchctl --version': [dispatchctl, '--version'],
    },
    runs,
    3,
  );
}

async function main(): Promise<object> {
  switch (positionals[0]) {
    case 'load':
      return runLoad({
        target: v.target as TargetKind,
        socket: v.socket!,
        mode: v.mode as LoadMode,
        type: v.type!,
        size: Number(v.size),
        concurrency: Number(v.concurrency),
        durationMs: Number(v.duration),
        warmupMs: Number(v.warmup),
      });
    case 'freeze':
      return freeze(v.socket!);
    case 'start':
      return start(v.socket!);
    case 'idle':
      return idle(v.units!.split(',').filter(Boolean), Number(v.seconds));
    case 'cli':
      return cli(v.socket!, v.dispatchctl!, Number(v.runs));
    default:
      throw new Error(`unknown measurement '${positionals[0] ?? ''}' (load, freeze, start, idle, cli)`);
  }
}

try {
  process.stdout.write(`${JSON.stringify(await main())}\n`);
  process.exit(0);
} catch (err) {
  process.stderr.write(`bench worker: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
