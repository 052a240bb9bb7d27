/**
 * Handlers that misbehave, under the sandbox's systemd with the installed .deb, written in
 * shell and in JavaScript: each gives its client a clear error with a stable code and exit
 * status, one journal line with type, lease and secondary; no daemon is restarted; the
 * capacity comes back (the next `concurrency` requests succeed); the other clients of the
 * secondary are not held up. A non-idempotent request whose secondary is killed mid-run ends
 * OUTCOME_UNKNOWN and ran exactly once; stopping a secondary's service drains its exec
 * handlers (a short one finishes, a long one is cut off with SHUTTING_DOWN); four busy-loop module handlers running longer than
 * WatchdogSec= leave every daemon active.
 */
import t, { type Test } from 'tap';
import { installedSuite, journalNow } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

if (sb) {
  const DIR = '/usr/local/lib/dispatchd-test';
  const restarts = async () => (await sb.out("for u in dispatchd-main dispatchd-secondary@1 dispatchd-secondary@2 dispatchd-watchdog; do systemctl show -p NRestarts --value $u.service; done")).trim();
  const active = async () => (await sb.out("for u in dispatchd-main dispatchd-secondary@1 dispatchd-secondary@2 dispatchd-watchdog; do systemctl is-active $u.service || true; done")).trim().split('\n');

  await sb.out(`
    mkdir -p ${DIR}
    cat > ${DIR}/fail.sh <<'EOF'
#!/bin/sh
cat >/dev/null
echo "fail.sh: the input was not what I wanted" >&2
exit 3
EOF
    cat > ${DIR}/killed.sh <<'EOF'
#!/bin/sh
kill -KILL $$
EOF
    cat > ${DIR}/noread.sh <<'EOF'
#!/bin/sh
echo ignored
EOF
    cat > ${DIR}/flood.sh <<'EOF'
#!/bin/sh
exec cat /dev/zero
EOF
    cat > ${DIR}/holder.sh <<'EOF'
#!/bin/sh
sleep 60 &
echo answered
EOF
    cat > ${DIR}/slow.sh <<'EOF'
#!/bin/sh
exec sleep 60
EOF
    cat > ${DIR}/count.sh <<'EOF'
#!/bin/sh
# A side effect to count: one line per run, then a long run (the test kills the secondary meanwhile).
echo run >> /dev/shm/dispatchd-test-count
sleep 30
EOF
    cat > ${DIR}/brief.sh <<'EOF'
#!/bin/sh
# Runs 0.7 s, less than a stopping secondary's 1.5 s drain.
echo run >> /dev/shm/dispatchd-test-brief
sleep 0.7
echo finished
EOF
    cat > ${DIR}/throws.mjs <<'EOF'
export default async () => { throw new Error('the handler threw on purpose'); };
EOF
    cat > ${DIR}/spin.mjs <<'EOF'
export default async () => { for (;;); };
EOF
    cat > ${DIR}/block.mjs <<'EOF'
// Synchronous blocking: sleeps on a futex that nobody wakes.
export default async () => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); return 'woke'; };
EOF
    cat > ${DIR}/hog.mjs <<'EOF'
export default async () => { const keep = []; for (;;) keep.push(new Array(1e5).fill(Math.random())); };
EOF
    chmod 0755 ${DIR}/*.sh
    cat > /etc/dispatchd/types.d/faults.toml <<'EOF'
[type.fail]
handler = "exec"
command = ["${DIR}/fail.sh"]
concurrency = 2
[type.killed]
handler = "exec"
command = ["${DIR}/killed.sh"]
concurrency = 2
[type.noread]
handler = "exec"
command = ["${DIR}/noread.sh"]
concurrency = 2
[type.flood]
handler = "exec"
command = ["${DIR}/flood.sh"]
max_result_bytes = 1048576
concurrency = 2
[type.holder]
handler = "exec"
command = ["${DIR}/holder.sh"]
concurrency = 2
[type.slow]
handler = "exec"
command = ["${DIR}/slow.sh"]
deadline_ms = 1000
concurrency = 2
[type.count]
handler = "exec"
command = ["${DIR}/count.sh"]
deadline_ms = 60000
[type.brief]
handler = "exec"
command = ["${DIR}/brief.sh"]
deadline_ms = 20000
[type.throws]
handler = "module"
module = "${DIR}/throws.mjs"
concurrency = 2
[type.spin]
handler = "module"
module = "${DIR}/spin.mjs"
deadline_ms = 4000
concurrency = 4
[type.block]
handler = "module"
module = "${DIR}/block.mjs"
deadline_ms = 1000
concurrency = 2
[type.hog]
handler = "module"
module = "${DIR}/hog.mjs"
max_heap_mb = 32
concurrency = 2
EOF
    dispatchctl check-config && systemctl reload dispatchd.target`);

  const initial = await restarts();

  const cases: Array<{ type: string; data?: string; exit: number; code: string; message: RegExp }> = [
    { type: 'fail', exit: 70, code: 'HANDLER_FAILED', message: /exited with status 3; its standard error ended with: fail\.sh: the input was not what I wanted/ },
    { type: 'killed', exit: 70, code: 'HANDLER_FAILED', message: /killed by signal SIGKILL/ },
    { type: 'flood', exit: 70, code: 'RESULT_TOO_LARGE', message: /more than max_result_bytes \(1048576 bytes\)/ },
    { type: 'slow', exit: 124, code: 'DEADLINE_EXCEEDED', message: /deadline of 1000 ms/ },
    { type: 'throws', exit: 70, code: 'HANDLER_FAILED', message: /the handler threw on purpose/ },
    { type: 'block', exit: 124, code: 'DEADLINE_EXCEEDED', message: /deadline of 1000 ms/ },
    { type: 'hog', exit: 70, code: 'HANDLER_FAILED', message: /ran out of memory.*max_heap_mb \(32 MiB\)/ },
  ];
  for (const c of cases) {
    t.test(`${c.type}: ${c.code}, exit ${c.exit}, one journal line, nothing restarted, capacity back`, async (t) => {
      const since = await journalNow(sb);
      // An echo client on the same secondaries meanwhile: not held up by the bad handler.
      const [r, echo] = await Promise.all([sb.sh(`dispatchctl request ${c.type} ${c.data ?? 'x'}`, { timeoutMs: 60_000 }), sb.sh('sleep 0.2; dispatchctl request echo meanwhile')]);
      t.equal(r.code, c.exit, `exit ${c.exit}`);
      t.match(r.stderr, c.message);
      t.match(r.stderr, new RegExp(`\\[${c.code}\\]`));
      t.equal(echo.stdout.toString(), 'meanwhile', 'another client of the suite was served meanwhile');
      const lines = (await sb.out(`journalctl --no-pager -q -o verbose -u 'dispatchd-secondary@*' --since '${since}' CODE=${c.code} TYPE=${c.type} | grep -E '^ +(LEASE|SECONDARY)=' || true`)).trim().split('\n').filter(Boolean);
      t.equal(lines.filter((l) => /LEASE=[0-9a-f]{82}\b/.test(l)).length, 1, 'one journal line with LEASE=');
      t.equal(lines.filter((l) => /SECONDARY=secondary-[12]/.test(l)).length, 1, 'and SECONDARY=');
      const again = await sb.sh(`for i in 1 2; do dispatchctl request noread x & done; wait`);
      t.equal(again.code, 0, 'the next requests on the secondaries succeed (capacity came back)');
      t.equal(await restarts(), initial, 'no daemon was restarted');
    });
  }

  t.test('a handler that never reads 16 MiB of input, and one that leaves a child holding its output, answer', async (t) => {
    const r = await sb.sh('head -c 16777216 /dev/zero | dispatchctl request noread');
    t.equal(r.code, 0, `exit 0 (${r.stderr.trim()})`);
    t.equal(r.stdout.toString(), 'ignored\n');
    const started = Date.now();
    const h = await sb.sh('dispatchctl request holder x');
    t.equal(h.stdout.toString(), 'answered\n');
    t.ok(Date.now() - started < 10_000, `without waiting for the background child (${Date.now() - started} ms)`);
    t.equal((await sb.out("pgrep -u dispatchd -f 'sleep 60' || true")).trim(), '', 'and the child did not outlive the request');
  });

  t.test('four busy-loop module handlers running longer than WatchdogSec= restart nothing', async (t) => {
    const r = await sb.sh(`for i in 1 2 3 4; do (dispatchctl request spin x >/dev/null 2>&1 && echo 'exit 0' || echo "exit $?") & done; wait`, { timeoutMs: 60_000 });
    t.same(r.stdout.toString().trim().split('\n').sort(), ['exit 124', 'exit 124', 'exit 124', 'exit 124'], 'the spins end at their deadline, 4 s > WatchdogSec=3s (DEADLINE_EXCEEDED, exit 124)');
    t.same(await active(), ['active', 'active', 'active', 'active'], 'every daemon is active');
    t.equal(await restarts(), initial, 'no daemon was restarted, not even by the watchdog');
    t.equal((await sb.sh('dispatchctl request echo alive')).stdout.toString(), 'alive');
  });

  t.test('a non-idempotent request whose secondary is killed mid-run: OUTCOME_UNKNOWN, exit 74, it ran exactly once', async (t) => {
    await sb.out('rm -f /dev/shm/dispatchd-test-count');
    const req = sb.sh('dispatchctl request count x', { timeoutMs: 60_000 });
    // Kill the secondary that runs it once the run has started (its side effect is written).
    await sb.out('for i in $(seq 1 100); do [ -s /dev/shm/dispatchd-test-count ] && break; sleep 0.1; done; [ -s /dev/shm/dispatchd-test-count ]');
    const pid = (await sb.out("pgrep -u dispatchd -f count.sh | head -n1")).trim();
    const unit = (await sb.out(`cat /proc/${pid}/cgroup | grep -o 'dispatchd-secondary@[0-9]*.service' | head -n1`)).trim();
    await sb.out(`systemctl kill -s SIGKILL ${unit}`);
    const r = await req;
    t.equal(r.code, 74, `exit 74 (${r.stderr.trim()})`);
    t.match(r.stderr, /may or may not have run .* not sent again because 'count' is not idempotent \(at most once\).*\[OUTCOME_UNKNOWN\]/);
    t.equal((await sb.out('cat /dev/shm/dispatchd-test-count')).trim().split('\n').length, 1, 'the side effect happened exactly once');
  });

  /** Starts `type`, waits until its script wrote `marker`, then stops (not kills) the secondary's service running it. */
  const stopMidRun = async (t: Test, type: string, marker: string, script: string) => {
    await sb.out(`rm -f ${marker}`);
    const req = sb.sh(`dispatchctl request ${type} x`, { timeoutMs: 60_000 });
    await sb.out(`for i in $(seq 1 100); do [ -s ${marker} ] && break; sleep 0.1; done; [ -s ${marker} ]`);
    const pid = (await sb.out(`pgrep -u dispatchd -f ${script} | head -n1`)).trim();
    const unit = (await sb.out(`cat /proc/${pid}/cgroup | grep -o 'dispatchd-secondary@[0-9]*.service' | head -n1`)).trim();
    const stopped = sb.sh(`systemctl stop ${unit}`, { timeoutMs: 60_000 });
    const r = await req;
    t.equal((await stopped).code, 0, `systemctl stop ${unit}`);
    return r;
  };

  t.test("stopping a secondary's service lets a running exec request finish within the drain", async (t) => {
    const r = await stopMidRun(t, 'brief', '/dev/shm/dispatchd-test-brief', 'brief.sh');
    t.equal(r.code, 0, `exit 0 (${r.stderr.trim()})`);
    t.equal(r.stdout.toString(), 'finished\n', 'the handler was not sent SIGTERM with the secondary');
    t.equal((await sb.out('cat /dev/shm/dispatchd-test-brief')).trim().split('\n').length, 1, 'it ran once');
    t.equal((await sb.sh('dispatchctl request echo back')).stdout.toString(), 'back', 'the suite still answers');
  });

  t.test("stopping a secondary's service cuts off a longer exec request after the drain: SHUTTING_DOWN, not a handler failure", async (t) => {
    const r = await stopMidRun(t, 'count', '/dev/shm/dispatchd-test-count', 'count.sh');
    t.equal(r.code, 74, `exit 74 (${r.stderr.trim()})`);
    t.match(r.stderr, /is stopping and cut off the 'count' request/);
    t.match(r.stderr, /\[OUTCOME_UNKNOWN\]/);
    t.notMatch(r.stderr, /HANDLER_FAILED|killed by signal/);
    t.equal((await sb.out('cat /dev/shm/dispatchd-test-count')).trim().split('\n').length, 1, 'it ran once (at most once: not sent again)');
    t.equal((await sb.out("pgrep -u dispatchd -f count.sh || true")).trim(), '', 'and its process group is gone');
  });
}
