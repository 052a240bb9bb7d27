/**
 * A short run of `npm run chaos` against the daemons as processes (systemd imitated): main
 * and the secondaries killed and frozen at random under 20 clients; no request of the
 * idempotent built-in types may fail. The real thing runs under systemd: test/system/hostile.
 */
import t from 'tap';
import { formatChaos, ProcessChaosTarget, runChaos } from '../chaos/lib/chaos.js';
import { closeAfter, ProcessSuite } from '../helpers/index.js';

const suite = new ProcessSuite();
closeAfter(t, suite);
t.before(() => suite.startAll());

t.test('10 s of kills and freezes under load: 0 requests fail, the suite is whole again after', async (t) => {
  const r = await runChaos(new ProcessChaosTarget(suite), { durationMs: 10_000, clients: 20, seed: 42, gapMs: [800, 2000] });
  t.comment(formatChaos(r));
  console.log(`# chaos (processes, 10 s): ${r.load.sent} sent, ${r.load.failed} failed, longest outage ${r.load.longestOutageMs} ms, ${r.faults.filter((f) => f.sent).length} faults`);
  t.ok(r.faults.filter((f) => f.sent).length >= 4, `faults were injected (${r.faults.filter((f) => f.sent).length})`);
  // That the 20 clients kept sending through the faults; how many requests that makes depends
  // on the machine's load (1,000 to 3,000 alone, 332 seen with four test files at a time and a
  // benchmark beside them), so the bound is low: the assertion that matters is the next one.
  t.ok(r.load.sent >= 200, `under load (${r.load.sent} requests)`);
  t.equal(r.load.failed, 0, `0 failed: ${r.load.examples.slice(0, 3).join('; ')}`);
});
