/**
 * npm run fuzz -- [--cases N (default 100000)] [--seed N] [--sandbox NAME] [--json]
 *
 * Writes random, oversized (> PIPE_BUF, > the frame maximum), truncated and interleaved
 * messages into every socket and FIFO of a running suite while normal clients keep sending
 * requests; exit 0 when no daemon crashed or got stuck, every normal request was served and
 * every kind of bad peer was logged at most once per interval (test/fuzz/lib/fuzz.ts).
 *
 * Without --sandbox: the suite as processes here (systemd imitated). With --sandbox NAME: the
 * installed suite in that running sandbox (`sudo ./install.sh --sandbox` makes "dispatchd"),
 * the fuzz cases sent from inside it. As root.
 */
import { parseCli } from '../chaos/lib/load.js';
import { ProcessSuite, reportFailure, Sandbox } from '../helpers/index.js';
import { formatFuzz, ProcessFuzzTarget, runFuzz, SandboxFuzzTarget, type FuzzTarget } from './lib/fuzz.js';

const USAGE = 'usage: npm run fuzz -- [--cases N (default 100000)] [--seed N] [--sandbox NAME] [--json]';
/** The process harness's idle timeout: short, so that held-open cases end quickly. */
const IDLE_MS = 1000;

const args = parseCli(process.argv.slice(2), 'fuzz', USAGE);
const cases = Number(args.get('cases') ?? 100_000);
const seed = Number(args.get('seed') ?? Date.now() % 1_000_000);
if (!(cases >= 1)) {
  process.stderr.write(`fuzz: --cases must be at least 1\n${USAGE}\n`);
  process.exit(64);
}

let target: FuzzTarget;
let suite: ProcessSuite | undefined;
const sandbox = args.get('sandbox');
if (sandbox) {
  const sb = Sandbox.attach(sandbox);
  await sb.installTools();
  target = new SandboxFuzzTarget(sb);
} else {
  let t: ProcessFuzzTarget | undefined;
  suite = new ProcessSuite({
    config: `[main]\nclient_idle_timeout_ms = ${IDLE_MS}\n[secondary]\nclient_idle_timeout_ms = ${IDLE_MS}\n`,
    onLog: (d, l) => t?.onLog(d, l),
  });
  t = new ProcessFuzzTarget(suite, IDLE_MS);
  await suite.startAll();
  target = t;
}
process.stderr.write(`fuzz: ${target.label}, ${cases} cases, seed ${seed}\n`);
try {
  const v = await runFuzz(target, { cases, seed, onProgress: (n) => (n % 10_000 === 0 ? process.stderr.write(`fuzz: ${n} cases\n`) : undefined) });
  process.stdout.write(args.has('json') ? JSON.stringify(v, null, 2) + '\n' : formatFuzz(v) + '\n');
  process.exitCode = v.problems.length === 0 ? 0 : 1;
  if (v.problems.length && suite) reportFailure(suite.label, suite.diagnostics(15));
} finally {
  await suite?.shutdown();
}
