/**
 * Hostile input and chaos against the installed suite under the real systemd:
 *
 * - a short run of the system-level fuzzer (`npm run fuzz -- --sandbox NAME` runs 100,000
 *   cases) into every socket and FIFO: no crash, no stuck peer, others served, each kind of
 *   bad peer logged once per interval;
 * - 1,000 idle and half-frame clients at once: cut off after the idle timeout (5 s by
 *   default), normal requests meanwhile delayed by less than the documented bound;
 * - a short run of `npm run chaos`: random daemons killed and frozen through systemctl kill
 *   under 20 clients, 0 requests failed.
 */
import t from 'tap';
import type { IdleReport } from '../fuzz/lib/idle.js';
import { formatChaos, runChaos, SystemdChaosTarget } from '../chaos/lib/chaos.js';
import { formatFuzz, runFuzz, SandboxFuzzTarget } from '../fuzz/lib/fuzz.js';
import { tools } from './lib/inside.js';
import { DAEMONS, installedSuite, journalNow, untilUnits } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

if (sb) {
  const target = await tools(sb);
  /** README "Limits": the default idle timeout, and the most idle clients may delay a normal request. */
  const IDLE_MS = 5000;
  const IDLE_DELAY_BOUND_MS = 1000;

  t.test('fuzzing every socket and FIFO of the installed suite', async (t) => {
    const v = await runFuzz(new SandboxFuzzTarget(target), { cases: 2000, seed: 20_251_130 });
    t.comment(formatFuzz(v));
    t.same(v.problems, [], 'no crash, no stuck peer, others served, incidents logged once per interval');
    t.ok(v.load.succeeded > 0, `${v.load.succeeded} normal requests served meanwhile`);
    // Bad peers are warnings and errors of their own kind, not the daemons' failures: the
    // journal has them, but no unit failed or restarted (checked above by pid and NRestarts).
  });

  t.test('1,000 idle and half-frame clients at once are cut off after the idle timeout; nobody else waits', async (t) => {
    const tool = target.tool<IdleReport & { event: string }>('fuzz/lib/idle.js', ['--connections', '1000', '--idle-timeout-ms', String(IDLE_MS)], 'idle');
    const r = await tool.result;
    t.comment(JSON.stringify(r));
    console.log(`# 1000 idle clients under systemd: cut off after ${r.cutOffMinMs}-${r.cutOffMaxMs} ms (idle timeout ${IDLE_MS} ms); normal requests p50 ${r.baseline.p50Ms.toFixed(1)} -> ${r.during.p50Ms.toFixed(1)} ms, worst ${r.during.maxMs.toFixed(1)} ms (+${r.addedMaxMs} ms)`);
    t.equal(r.cutOff, 1000, `every one got IDLE_TIMEOUT and was closed (otherwise: ${JSON.stringify(r.otherwiseHow)})`);
    t.ok(r.cutOffMinMs >= IDLE_MS - 50 && r.cutOffMaxMs < IDLE_MS + 2000, `after the idle timeout: ${r.cutOffMinMs} … ${r.cutOffMaxMs} ms`);
    t.equal(r.during.failed, 0, `every normal request meanwhile succeeded (${r.during.requests})`);
    t.ok(r.addedMaxMs < IDLE_DELAY_BOUND_MS, `a normal request was delayed by at most ${r.addedMaxMs} ms (bound ${IDLE_DELAY_BOUND_MS} ms)`);
  });

  t.test('chaos under systemd: random daemons killed and frozen under load, 0 requests fail', async (t) => {
    await untilUnits(sb, DAEMONS, 'active', 10_000);
    const from = await journalNow(sb);
    const chaos = new SystemdChaosTarget(target);
    await chaos.prepare();
    const r = await runChaos(chaos, { durationMs: 15_000, clients: 20, seed: 7, gapMs: [1000, 2500] });
    t.comment(formatChaos(r));
    console.log(`# chaos (systemd, 15 s): ${r.load.sent} sent, ${r.load.failed} failed, longest outage ${r.load.longestOutageMs} ms, ${r.faults.filter((f) => f.sent).length} faults`);
    t.ok(r.faults.filter((f) => f.sent).length >= 4, `faults were injected (${r.faults.filter((f) => f.sent).length})`);
    t.equal(r.load.failed, 0, `0 failed: ${r.load.examples.slice(0, 3).join('; ')}`);
    await untilUnits(sb, DAEMONS, 'active', 15_000);
    const errors = await sb.out(`journalctl --no-pager -q --since '${from}' -u dispatchd-watchdog -p err -o cat`);
    t.equal(errors.trim(), '', 'the watchdog logged no error: every restart it ordered went through');
  });
}
