/**
 * Stopping dispatchd.target under load stops every process within 5 s with result success,
 * the requests in flight are drained or fail with a clear error, the last lines each daemon
 * logs before it exits reach the journal (under its unit, every time), and nothing is left
 * behind (process, FIFO, socket, segment); stop then start again, 20 times, behaves the same
 * each time (and never trips the units' start limit).
 */
import t, { type Test } from 'tap';
import type { LoadReport } from '../chaos/lib/load.js';
import { clientScript, describeLoad, startLoadInside, tools, type RunningLoad } from './lib/inside.js';
import { DAEMONS, installedSuite, UNITS, until, untilUnits } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

if (sb) {
  const target = await tools(sb);
  /** What a request may end with while the suite stops under it: each says what happened. */
  const CLEAR = new Set(['SHUTTING_DOWN', 'CONNECT_FAILED', 'CONNECTION_LOST', 'UNAVAILABLE', 'BUSY', 'TIMEOUT']);
  let load: RunningLoad | undefined;
  t.teardown(() => load?.stop()); // a failed assertion must not leave its 600 s running
  let lastLines = 0;
  let cycles = 0;

  const unitList = UNITS.map((u) => `'${u}'`).join(' ');
  /** The invocation of each daemon's unit now, to find its last lines in the journal after the stop. */
  let ids: string[] = [];

  /**
   * Stops the suite and checks it in one script (each exec into the sandbox costs a process
   * start; under load they add up): how long until every unit is inactive, each unit's
   * Result=, what is left behind, and the daemons' last journal lines for their invocations.
   */
  const stopAndCheck = async (t: Test, label: string): Promise<boolean> => {
    const script = `
      t0=$(date +%s%3N)
      systemctl stop dispatchd.target || echo "stop-failed $?"
      # \`systemctl stop\` waits for the target's own job; the units stop right after it.
      for i in $(seq 1 100); do
        n=0; for u in ${unitList}; do [ "$(systemctl show -p ActiveState --value -- "$u")" = inactive ] || n=$((n+1)); done
        [ $n = 0 ] && break; sleep 0.05
      done
      echo "ms $(( $(date +%s%3N) - t0 )) still-active $n"
      for u in ${unitList}; do echo "result $u $(systemctl show -p Result --value -- "$u")"; done
      pgrep -a -u dispatchd 2>/dev/null | sed "s/^/left process: /" || true
      if [ -d /run/dispatchd ]; then ls -A /run/dispatchd | sed "s|^|left /run/dispatchd/|"; fi
      if [ -e /dev/shm/dispatchd.scoreboard ]; then echo "left /dev/shm/dispatchd.scoreboard"; fi
      journalctl --no-pager -q -o cat -g 'stopped cleanly' ${ids.map((id) => `_SYSTEMD_INVOCATION_ID=${id}`).join(' + ')} | sed 's/^/last /' || true`;
    const out = (await sb.out(script, { timeoutMs: 30_000 })).split('\n');
    const [, ms, active] = /^ms (\d+) still-active (\d+)$/.exec(out.find((l) => l.startsWith('ms ')) ?? '') ?? [];
    let ok = t.notOk(out.some((l) => l.startsWith('stop-failed')), `${label}: systemctl stop exits 0`);
    ok = t.ok(active === '0' && Number(ms) < 5_000, `${label}: every unit stopped in ${ms} ms (< 5000)`) && ok;
    const bad = out.filter((l) => l.startsWith('result ') && !/ (success)?$/.test(l));
    ok = t.same(bad, [], `${label}: every unit ended with Result=success`) && ok;
    ok = t.same(out.filter((l) => l.startsWith('left ')), [], `${label}: no process, FIFO, socket or segment left`) && ok;
    // The last line each daemon logs before it exits, in the journal under its unit's invocation.
    const last = out.filter((l) => l.startsWith('last ')).join('\n');
    const found = DAEMONS.filter((u) => last.includes(`${u} stopped cleanly`));
    lastLines += found.length;
    cycles++;
    ok = t.same(found, DAEMONS, `${label}: each daemon's last line ("… stopped cleanly") reached the journal under its unit`) && ok;
    return ok;
  };

  const startAndCheck = async (t: Test, label: string, underLoad = true): Promise<boolean> => {
    const r = await sb.sh(`
      systemctl start dispatchd.target
      for i in $(seq 1 200); do
        n=0; for u in ${unitList}; do [ "$(systemctl show -p ActiveState --value -- "$u")" = active ] || n=$((n+1)); done
        [ $n = 0 ] && break; sleep 0.05
      done
      [ $n = 0 ] || { echo "$n units not active" >&2; exit 1; }
      for u in ${DAEMONS.join(' ')}; do systemctl show -p InvocationID --value -- "$u"; done
      dispatchctl request echo '${label}'`);
    const out = r.stdout.toString().split('\n');
    ids = out.slice(0, DAEMONS.length);
    const ok = t.equal(r.code === 0 ? out[DAEMONS.length] : r.stderr.trim(), label, `${label}: started, every unit active, serving`);
    // Let the load run through this start before the next stop: its requests reach the
    // secondaries' counters (the scoreboard is new at each start).
    if (ok && underLoad) await until(`${label}: the load to be served`, 10_000, async () => ((await served()) >= 20 ? true : undefined), { everyMs: 50 });
    return ok;
  };

  /** Requests the secondaries served since the suite started (their scoreboard counters). */
  const served = async (): Promise<number> => {
    const s = JSON.parse(await sb.out('dispatchctl status --json')) as { daemons: Array<{ name: string; requests: number }> };
    return s.daemons.filter((d) => d.name.startsWith('secondary-')).reduce((n, d) => n + d.requests, 0);
  };

  const checkLoad = (t: Test, r: LoadReport): void => {
    t.comment(`load through the stops and starts: ${describeLoad(r)}`);
    t.ok(r.succeeded > 0, `requests were served between the stops (${r.succeeded})`);
    const unclear = Object.keys(r.failures).filter((c) => !CLEAR.has(c));
    t.same(unclear, [], `every failed request ended with a clear error (${Object.entries(r.failures).map(([c, n]) => `${c} ${n}`).join(', ') || 'none failed'})`);
    t.ok(r.longestRequestMs < 10_000, `no request hung: the longest took ${r.longestRequestMs} ms (budget 3 s plus retries' back-off)`);
  };

  t.test('systemctl stop dispatchd.target under load: within 5 s, Result=success, nothing left behind', async (t) => {
    ids = (await sb.out(`for u in ${DAEMONS.join(' ')}; do systemctl show -p InvocationID --value -- "$u"; done`)).trim().split('\n');
    load = await startLoadInside(target, { clients: 10, durationMs: 600_000, timeoutMs: 3000, types: 'sleep,echo,sha256', readyAfter: 50 });
    await stopAndCheck(t, 'stop');
  });

  t.test('stop, then start again, 20 times, under load: same behaviour each time', async (t) => {
    const t0 = Date.now();
    for (let i = 1; i <= 20; i++) {
      // Stop at the first bad cycle: the rest would only repeat its failure.
      if (!(await startAndCheck(t, `cycle ${i} start`))) break;
      if (!(await stopAndCheck(t, `cycle ${i} stop`))) break;
    }
    t.comment(`20 stop/start cycles in ${Date.now() - t0} ms; last log lines in the journal: ${lastLines} of ${cycles * DAEMONS.length}`);
    console.log(`# last log lines before exit reached the journal: ${lastLines} of ${cycles * DAEMONS.length} (${cycles} stops x ${DAEMONS.length} daemons)`);
    const limits = await sb.out("journalctl --no-pager -q -u 'dispatchd*' -g 'Start request repeated too quickly' || true");
    t.equal(limits.trim(), '', 'no unit hit its start limit');
    load!.stop();
    checkLoad(t, await load!.done);
  });

  t.test('stop;start back to back, 20 times, as a script would: no start limit tripped', async (t) => {
    // `systemctl stop` returns before the daemons have drained, so each start finds them
    // still stopping: systemd retries those starts, and every retry counts against the
    // units' start limit (this tripped a limit of 30 in 150 s after about 20 cycles).
    const r = await sb.sh('for i in $(seq 1 20); do systemctl stop dispatchd.target; systemctl start dispatchd.target || exit 1; done', { timeoutMs: 180_000 });
    t.equal(r.code, 0, `every start exited 0 (${r.stderr.trim()})`);
    await untilUnits(sb, UNITS, 'active', 10_000).catch((err: Error) => t.fail(err.message));
    const limits = await sb.out("journalctl --no-pager -q -u 'dispatchd*' -g 'Start request repeated too quickly' || true");
    t.equal(limits.trim(), '', 'no unit hit its start limit');
    t.equal((await sb.exec(['dispatchctl', 'request', 'echo', 'after'])).stdout.toString(), 'after', 'serving');
  });

  t.test('started once more, the suite serves', async (t) => {
    await startAndCheck(t, 'final', false);
  });

  t.test('a lease minted before the suite restarted is refused: the suite key is new at each start (LEASE_STALE, logged)', async (t) => {
    const key = '/dev/shm/dispatchd.scoreboard.lease-key';
    const before = await sb.out(`stat -c '%a %U %s' ${key} && sha256sum ${key}`);
    t.match(before, /^400 dispatchd 32\n/, 'the key: 32 bytes, mode 0400, owned by dispatchd');
    const r = await clientScript<{ code: string; message: string; after: string }>(
      sb,
      `
      const c = new lib.DispatchClient({ timeoutMs: 20000 });
      const g = await c.lease('echo');
      c.close();
      execSync('systemctl restart dispatchd.target');
      const after = execSync('dispatchctl request echo up').toString();
      try { await c.runOnLease(g, 'echo', Buffer.from('x'), 5000); console.log(JSON.stringify({ code: 'served', after })); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, after })); }`,
    );
    t.equal(r.after, 'up', 'the restarted suite serves');
    t.equal(r.code, 'LEASE_STALE', r.message);
    t.match(r.message, /minted with the key of an earlier start of the suite/);
    const after = await sb.out(`sha256sum ${key}`);
    t.not(after.split(' ')[0], before.split('\n')[1]!.split(' ')[0], 'a fresh key');
    const logged = await sb.out("journalctl --no-pager -q -u 'dispatchd-secondary@*' -o cat -g 'lease_fault=old-key|minted with the key of an earlier start' || true");
    t.ok(logged.trim().split('\n').filter(Boolean).length >= 1, `the refusal is logged: ${logged.trim().split('\n')[0]}`);
  });
}
