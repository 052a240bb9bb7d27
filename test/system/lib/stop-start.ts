/**
 * Stop and start cycles of dispatchd.target under load, shared by test/system/stop-start.test.ts
 * and test/system/stop-start-cycles.test.ts (the 20 cycles run as two runs of 10, one per
 * file and sandbox, so that the system tier runs them side by side).
 *
 *   const cycles = await StopStartCycles.underLoad(sb);   // the load runs until stop()
 *   await cycles.stopAndCheck(t, 'stop');
 *   await cycles.run(t, 1, 10);                          // cycles 1 to 10: start, serve, stop
 *   cycles.checkLoad(t, await cycles.stopLoad());
 */
import type { Test } from 'tap';
import type { LoadReport } from '../../chaos/lib/load.js';
import type { Sandbox } from '../../helpers/index.js';
import { describeLoad, startLoadInside, tools, type RunningLoad } from './inside.js';
import { DAEMONS, UNITS, until } from './suite.js';

/** What a request may end with while the suite stops under it: each says what happened. */
const CLEAR = new Set(['SHUTTING_DOWN', 'CONNECT_FAILED', 'CONNECTION_LOST', 'UNAVAILABLE', 'BUSY', 'TIMEOUT']);
const UNIT_LIST = UNITS.map((u) => `'${u}'`).join(' ');

export class StopStartCycles {
  /** Last lines found in the journal, and stops checked, over this sandbox's cycles. */
  lastLines = 0;
  stops = 0;
  /** The invocation of each daemon's unit now, to find its last lines in the journal after the stop. */
  private ids: string[] = [];

  private constructor(private readonly sb: Sandbox, private readonly load: RunningLoad) {}

  /**
   * Starts 10 load clients inside (sleep, echo, sha256; 3 s per request, retries included)
   * and returns once 50 requests succeeded; the caller stops the load with {@link stopLoad}
   * (and {@link stop} in a teardown: a failed assertion must not leave its 600 s running).
   */
  static async underLoad(sb: Sandbox): Promise<StopStartCycles> {
    const ids = (await sb.out(`for u in ${DAEMONS.join(' ')}; do systemctl show -p InvocationID --value -- "$u"; done`)).trim().split('\n');
    const load = await startLoadInside(await tools(sb), { clients: 10, durationMs: 600_000, timeoutMs: 3000, types: 'sleep,echo,sha256', readyAfter: 50 });
    const c = new StopStartCycles(sb, load);
    c.ids = ids;
    return c;
  }

  /** Stops the load (a second call does nothing). */
  stop(): void {
    this.load.stop();
  }

  /** Stops the load and resolves with its report. */
  stopLoad(): Promise<LoadReport> {
    this.load.stop();
    return this.load.done;
  }

  /**
   * Stops the suite and checks it in one script (each exec into the sandbox costs a process
   * start; under load they add up): how long until every unit is inactive, each unit's
   * Result=, what is left behind, and the daemons' last journal lines for their invocations.
   */
  async stopAndCheck(t: Test, label: string): Promise<boolean> {
    const script = `
      t0=$(date +%s%3N)
      systemctl stop dispatchd.target || echo "stop-failed $?"
      # \`systemctl stop\` waits for the target's own job; the units stop right after it.
      for i in $(seq 1 100); do
        n=0; for u in ${UNIT_LIST}; do [ "$(systemctl show -p ActiveState --value -- "$u")" = inactive ] || n=$((n+1)); done
        [ $n = 0 ] && break; sleep 0.05
      done
      echo "ms $(( $(date +%s%3N) - t0 )) still-active $n"
      for u in ${UNIT_LIST}; do echo "result $u $(systemctl show -p Result --value -- "$u")"; done
      pgrep -a -u dispatchd 2>/dev/null | sed "s/^/left process: /" || true
      if [ -d /run/dispatchd ]; then ls -A /run/dispatchd | sed "s|^|left /run/dispatchd/|"; fi
      if [ -e /dev/shm/dispatchd.scoreboard ]; then echo "left /dev/shm/dispatchd.scoreboard"; fi
      journalctl --no-pager -q -o cat -g 'stopped cleanly' ${this.ids.map((id) => `_SYSTEMD_INVOCATION_ID=${id}`).join(' + ')} | sed 's/^/last /' || true`;
    const out = (await this.sb.out(script, { timeoutMs: 30_000 })).split('\n');
    const [, ms, active] = /^ms (\d+) still-active (\d+)$/.exec(out.find((l) => l.startsWith('ms ')) ?? '') ?? [];
    let ok = t.notOk(out.some((l) => l.startsWith('stop-failed')), `${label}: systemctl stop exits 0`);
    ok = t.ok(active === '0' && Number(ms) < 5_000, `${label}: every unit stopped in ${ms} ms (< 5000)`) && ok;
    const bad = out.filter((l) => l.startsWith('result ') && !/ (success)?$/.test(l));
    ok = t.same(bad, [], `${label}: every unit ended with Result=success`) && ok;
    ok = t.same(out.filter((l) => l.startsWith('left ')), [], `${label}: no process, FIFO, socket or segment left`) && ok;
    // The last line each daemon logs before it exits, in the journal under its unit's invocation.
    const last = out.filter((l) => l.startsWith('last ')).join('\n');
    const found = DAEMONS.filter((u) => last.includes(`${u} stopped cleanly`));
    this.lastLines += found.length;
    this.stops++;
    ok = t.same(found, DAEMONS, `${label}: each daemon's last line ("… stopped cleanly") reached the journal under its unit`) && ok;
    return ok;
  }

  /**
   * Starts the suite, checks that every unit is active and that it serves; with `underLoad`,
   * waits until the load's requests reach the secondaries' counters (the scoreboard is new at
   * each start), so that the next stop finds it serving the load.
   */
  async startAndCheck(t: Test, label: string, underLoad = true): Promise<boolean> {
    const r = await this.sb.sh(`
      systemctl start dispatchd.target
      for i in $(seq 1 200); do
        n=0; for u in ${UNIT_LIST}; do [ "$(systemctl show -p ActiveState --value -- "$u")" = active ] || n=$((n+1)); done
        [ $n = 0 ] && break; sleep 0.05
      done
      [ $n = 0 ] || { echo "$n units not active" >&2; exit 1; }
      for u in ${DAEMONS.join(' ')}; do systemctl show -p InvocationID --value -- "$u"; done
      dispatchctl request echo '${label}'`);
    const out = r.stdout.toString().split('\n');
    this.ids = out.slice(0, DAEMONS.length);
    const ok = t.equal(r.code === 0 ? out[DAEMONS.length] : r.stderr.trim(), label, `${label}: started, every unit active, serving`);
    if (ok && underLoad) await until(`${label}: the load to be served`, 10_000, async () => ((await this.served()) >= 20 ? true : undefined), { everyMs: 50 });
    return ok;
  }

  /**
   * Cycles `from` to `to`: start (every unit active, serving, the load served), then stop
   * and check; ends at the first bad cycle (the rest would only repeat its failure).
   */
  async run(t: Test, from: number, to: number): Promise<void> {
    const t0 = Date.now();
    const lines0 = this.lastLines;
    const stops0 = this.stops;
    for (let i = from; i <= to; i++) {
      if (!(await this.startAndCheck(t, `cycle ${i} start`))) break;
      if (!(await this.stopAndCheck(t, `cycle ${i} stop`))) break;
    }
    const lines = this.lastLines - lines0;
    const expected = (this.stops - stops0) * DAEMONS.length;
    t.comment(`stop/start cycles ${from} to ${to} in ${Date.now() - t0} ms; last log lines in the journal: ${lines} of ${expected}`);
    console.log(`# last log lines before exit reached the journal: ${lines} of ${expected} (${this.stops - stops0} stops x ${DAEMONS.length} daemons)`);
  }

  /** Checks the load's report: requests were served, every failure was a clear one, none hung. */
  checkLoad(t: Test, r: LoadReport): void {
    t.comment(`load through the stops and starts: ${describeLoad(r)}`);
    t.ok(r.succeeded > 0, `requests were served between the stops (${r.succeeded})`);
    const unclear = Object.keys(r.failures).filter((c) => !CLEAR.has(c));
    t.same(unclear, [], `every failed request ended with a clear error (${Object.entries(r.failures).map(([c, n]) => `${c} ${n}`).join(', ') || 'none failed'})`);
    t.ok(r.longestRequestMs < 10_000, `no request hung: the longest took ${r.longestRequestMs} ms (budget 3 s plus retries' back-off)`);
  }

  /** Requests the secondaries served since the suite started (their scoreboard counters). */
  private async served(): Promise<number> {
    const s = JSON.parse(await this.sb.out('dispatchctl status --json')) as { daemons: Array<{ name: string; requests: number }> };
    return s.daemons.filter((d) => d.name.startsWith('secondary-')).reduce((n, d) => n + d.requests, 0);
  }
}
