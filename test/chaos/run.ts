/**
 * npm run chaos -- [--duration S] [--sandbox NAME] [--clients N] [--seed N] [--json]
 *
 * Kills (SIGKILL) and freezes (SIGSTOP, then SIGCONT) random daemons at random times while
 * clients send idempotent requests through the client library, then reports requests sent,
 * succeeded and failed, and the longest outage. Exit 0 when no request failed.
 *
 * Without --sandbox it runs the suite as processes here (systemd imitated: socket activation,
 * Restart=, the watchdog). With --sandbox NAME it runs against the installed suite in that
 * running sandbox (`sudo ./install.sh --sandbox` makes one named "dispatchd"), under the real
 * systemd: faults go through `systemctl kill`, the load runs inside. As root.
 */
import { formatChaos, ProcessChaosTarget, runChaos, SystemdChaosTarget, type ChaosTarget } from './lib/chaos.js';
import { parseCli } from './lib/load.js';
import { ProcessSuite, reportFailure, Sandbox } from '../helpers/index.js';

const USAGE = 'usage: npm run chaos -- [--duration SECONDS (default 60)] [--sandbox NAME] [--clients N (default 20)] [--seed N] [--json]';

const args = parseCli(process.argv.slice(2), 'chaos', USAGE);
const durationMs = Number(args.get('duration') ?? 60) * 1000;
const clients = Number(args.get('clients') ?? 20);
const seed = Number(args.get('seed') ?? Date.now() % 1_000_000);
if (!(durationMs >= 5000) || !(clients >= 1)) {
  process.stderr.write(`chaos: --duration must be at least 5 and --clients at least 1\n${USAGE}\n`);
  process.exit(64);
}

let target: ChaosTarget;
let suite: ProcessSuite | undefined;
const sandbox = args.get('sandbox');
if (sandbox) {
  const t = new SystemdChaosTarget(Sandbox.attach(sandbox));
  await t.prepare();
  target = t;
} else {
  suite = new ProcessSuite();
  await suite.startAll();
  target = new ProcessChaosTarget(suite);
}
process.stderr.write(`chaos: ${target.label}, ${durationMs / 1000} s, ${clients} clients, seed ${seed}\n`);
try {
  const report = await runChaos(target, {
    durationMs,
    clients,
    seed,
    onFault: (f) => process.stderr.write(`chaos: ${(f.atMs / 1000).toFixed(1)} s: ${f.kind === 'kill' ? 'killed' : `froze for ${f.heldMs} ms`} ${f.daemon}${f.sent ? '' : ' (not sent: no main process)'}\n`),
  });
  process.stdout.write(args.has('json') ? JSON.stringify(report, null, 2) + '\n' : formatChaos(report) + '\n');
  process.exitCode = report.load.failed === 0 ? 0 : 1;
  if (report.load.failed > 0 && suite) reportFailure(suite.label, suite.diagnostics());
} finally {
  await suite?.shutdown();
}
