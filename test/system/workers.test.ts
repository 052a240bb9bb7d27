/**
 * Persistent workers (`mode = "persistent"`, docs/WORKERS.md) under the sandbox's systemd,
 * with both .debs installed: Python workers written with dispatchd.worker, their units made
 * by the generator at `systemctl daemon-reload`, serving requests; then each fault — a
 * worker killed mid-request, frozen (SIGSTOP), over its MemoryMax=, printing garbage to
 * standard output, never saying hello — with the client's error code, the journal line, the
 * worker restarted, and the other types unaffected.
 */
import { basename, dirname, join } from 'node:path';
import t, { type Test } from 'tap';
import { ensureDeb } from '../helpers/index.js';
import { DEB_DIR, install, installedSuite, journalNow, until } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

if (sb) {
  const deb = await ensureDeb();
  const pydeb = join(dirname(deb), `python3-dispatchd_${basename(deb).split('_')[1]!}_all.deb`);
  await sb.copyIn(DEB_DIR, pydeb);
  await install(sb, `${DEB_DIR}/${basename(pydeb)}`);

  const DIR = '/usr/local/lib/dispatchd-test';
  await sb.out(`
    mkdir -p ${DIR}
    cat > ${DIR}/worker.py <<'EOF'
#!/usr/bin/python3
"""One worker script, a behaviour per argv[1], serving its unit's type (DISPATCHD_TYPE)."""
import os, signal, sys
from dispatchd.worker import Worker

kind = sys.argv[1]
worker = Worker(concurrency=2)

@worker.handler(os.environ["DISPATCHD_TYPE"])
def run(data: bytes, ctx) -> bytes:
    if kind == "crash" and data == b"die":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "freeze" and data == b"freeze":
        os.kill(os.getpid(), signal.SIGSTOP)
    if kind == "mem" and data == b"hog":
        hog = [bytearray(1 << 20) for _ in range(512)]
        return str(len(hog)).encode()
    if kind == "garbage":
        sys.stdout.buffer.write(b"\\x00\\xffgarbage on stdout\\n")
        sys.stdout.flush()
    return data

worker.run()
EOF
    cat > ${DIR}/silent.py <<'EOF'
#!/usr/bin/python3
# Never says hello: takes the socket and sleeps.
import time
time.sleep(3600)
EOF
    cat > /etc/dispatchd/types.d/workers.toml <<'EOF'
[type.pyecho]
handler = "exec"
mode = "persistent"
processes = 2
command = ["/usr/bin/python3", "${DIR}/worker.py", "echo"]
[type.pycrash]
handler = "exec"
mode = "persistent"
processes = 2
idempotent = true
command = ["/usr/bin/python3", "${DIR}/worker.py", "crash"]
[type.pykill]
handler = "exec"
mode = "persistent"
command = ["/usr/bin/python3", "${DIR}/worker.py", "crash"]
[type.pyfreeze]
handler = "exec"
mode = "persistent"
deadline_ms = 1000
cancel_grace_ms = 1000
command = ["/usr/bin/python3", "${DIR}/worker.py", "freeze"]
[type.pymem]
handler = "exec"
mode = "persistent"
memory_max_mb = 64
command = ["/usr/bin/python3", "${DIR}/worker.py", "mem"]
[type.pygarbage]
handler = "exec"
mode = "persistent"
command = ["/usr/bin/python3", "${DIR}/worker.py", "garbage"]
[type.pysilent]
handler = "exec"
mode = "persistent"
start_timeout_ms = 1000
command = ["/usr/bin/python3", "${DIR}/silent.py"]
EOF
    dispatchctl check-config
    systemctl daemon-reload
    systemctl start dispatchd.target
    systemctl reload dispatchd.target`);

  const mainPid = async (unit: string) => Number((await sb.show(unit, 'MainPID')).MainPID);
  const request = (type: string, data: string) => sb.sh(`dispatchctl request ${type} '${data}'`, { timeoutMs: 60_000 });
  const unaffected = async (t: Test) => {
    const [a, b] = await Promise.all([request('pyecho', 'still'), request('echo', 'still')]);
    t.equal(a.stdout.toString(), 'still', 'another persistent type is served');
    t.equal(b.stdout.toString(), 'still', 'a built-in type is served');
  };
  const journal = async (since: string, unit: string, grep: string) =>
    (await sb.out(`journalctl --no-pager -q -u '${unit}' --since '${since}' | grep -E -- '${grep}' || true`)).trim();

  t.test('the generator made one unit per worker, in dispatchd.slice, each its own user', async (t) => {
    const units = (await sb.out("systemctl list-units --plain --no-legend 'dispatchd-worker@*.service' | awk '{ print $1 }'")).trim().split('\n').sort();
    t.same(units, ['pycrash-1', 'pycrash-2', 'pyecho-1', 'pyecho-2', 'pyfreeze-1', 'pygarbage-1', 'pykill-1', 'pymem-1', 'pysilent-1'].map((i) => `dispatchd-worker@${i}.service`));
    const show = await sb.show('dispatchd-worker@pymem-1.service', 'Slice', 'MemoryMax', 'DynamicUser', 'ActiveState');
    t.equal(show.Slice, 'dispatchd.slice');
    t.equal(show.MemoryMax, String(64 * 1024 * 1024), 'memory_max_mb became MemoryMax=');
    t.equal(show.DynamicUser, 'yes');
    t.equal(show.ActiveState, 'active');
  });

  t.test('a Python worker type serves requests, on both workers', async (t) => {
    await until('pyecho to answer', 30_000, async () => (await request('pyecho', 'hello')).stdout.toString() === 'hello');
    const r = await sb.sh(`for i in $(seq 1 20); do dispatchctl request pyecho "n$i" & done; wait`);
    t.equal(r.code, 0);
    t.equal(r.stdout.toString().split(/(?=n\d)/).length, 20, 'twenty answers');
    const lines = await sb.out(`journalctl --no-pager -q -u 'dispatchd-secondary@*' -o cat | grep -c "the 'pyecho' worker pyecho-[12] is ready" || true`);
    t.ok(Number(lines.trim()) >= 2, 'both workers said hello (journal)');
  });

  t.test('a worker killed mid-request: HANDLER_CRASHED, not retried (pykill is not idempotent), the worker restarted', async (t) => {
    await until('pykill to answer', 30_000, async () => (await request('pykill', 'x')).code === 0);
    const since = await journalNow(sb);
    const pid = await mainPid('dispatchd-worker@pykill-1.service');
    const r = await request('pykill', 'die');
    t.equal(r.code, 70, 'exit 70');
    t.match(r.stderr, /\[HANDLER_CRASHED\]/);
    t.match(r.stderr, /not sent again: the type is not idempotent/);
    t.match(await journal(since, 'dispatchd-secondary@*', "the 'pykill' worker pykill-1 closed its connection"), /pykill-1/, 'the secondary\'s journal line');
    await until('pykill-1 to come back', 30_000, async () => (await request('pykill', 'back')).stdout.toString() === 'back');
    t.not(await mainPid('dispatchd-worker@pykill-1.service'), pid, 'systemd restarted the worker (a new process)');
    await unaffected(t);
  });

  t.test('a request that kills every worker it touches: retried once on another (idempotent), then HANDLER_CRASHED; the pool comes back', async (t) => {
    await until('pycrash to answer', 30_000, async () => (await request('pycrash', 'x')).code === 0);
    const since = await journalNow(sb);
    const r = await request('pycrash', 'die');
    t.equal(r.code, 70);
    t.match(r.stderr, /\[HANDLER_CRASHED\]/);
    t.match(r.stderr, /sent to 2 workers, each died \(retried at most once\)/);
    t.match(await journal(since, 'dispatchd-secondary@*', 'sending the .pycrash. request again, to another worker'), /pycrash/, 'one retry in the journal');
    const deaths = await sb.out(`journalctl --no-pager -q -u 'dispatchd-worker@pycrash-*' --since '${since}' | grep -c 'status=9/KILL' || true`);
    t.equal(Number(deaths.trim()), 2, 'exactly two workers died: no loop');
    await until('pycrash to come back', 30_000, async () => (await request('pycrash', 'back')).stdout.toString() === 'back');
    await unaffected(t);
  });

  t.test('a worker that never says hello: HANDLER_FAILED at once, an error line, its unit restarted', async (t) => {
    const since = await journalNow(sb);
    const r = await request('pysilent', 'x');
    t.equal(r.code, 70);
    t.match(r.stderr, /\[HANDLER_FAILED\]/);
    t.match(r.stderr, /no 'pysilent' worker is ready: .*did not say hello within start_timeout_ms \(1000 ms\)/);
    await until('the error line and the restart', 30_000, async () => {
      const line = await sb.out(`journalctl --no-pager -q -p err -u 'dispatchd-secondary@*' --since '${since}' | grep 'pysilent-1 failed: it did not say hello' || true`);
      const restarted = await sb.out(`journalctl --no-pager -q -u 'dispatchd-worker@pysilent-1.service' --since '${since}' | grep -E 'Stopped|Started' || true`);
      return line.trim() !== '' && /Started/.test(restarted);
    });
    t.pass('the secondary logged it at err and restarted dispatchd-worker@pysilent-1.service');
    await unaffected(t);
  });

  t.test('a frozen worker (SIGSTOP): DEADLINE_EXCEEDED, a cancel, its unit restarted after cancel_grace_ms', async (t) => {
    await until('pyfreeze to answer', 30_000, async () => (await request('pyfreeze', 'x')).code === 0);
    const since = await journalNow(sb);
    const pid = await mainPid('dispatchd-worker@pyfreeze-1.service');
    const r = await request('pyfreeze', 'freeze');
    t.equal(r.code, 124);
    t.match(r.stderr, /\[DEADLINE_EXCEEDED\]/);
    await until('pyfreeze-1 to be restarted', 30_000, async () => {
      const p = await mainPid('dispatchd-worker@pyfreeze-1.service');
      return p !== 0 && p !== pid;
    });
    t.match(await journal(since, 'dispatchd-secondary@*', 'did not answer the cancel'), /pyfreeze-1.*cancel_grace_ms \(1000 ms\).*restarting dispatchd-worker@pyfreeze-1\.service/, 'the journal line');
    await until('pyfreeze to come back', 30_000, async () => (await request('pyfreeze', 'back')).stdout.toString() === 'back');
    await unaffected(t);
  });

  t.test('a worker over its MemoryMax=: killed by the kernel, HANDLER_CRASHED, restarted', async (t) => {
    await until('pymem to answer', 30_000, async () => (await request('pymem', 'x')).code === 0);
    const since = await journalNow(sb);
    const r = await request('pymem', 'hog');
    t.equal(r.code, 70);
    t.match(r.stderr, /\[HANDLER_CRASHED\]/);
    await until('systemd to log the OOM kill', 30_000, async () => /oom/i.test(await journal(since, 'dispatchd-worker@pymem-1.service', 'oom|OOM')));
    t.pass('journalctl -u dispatchd-worker@pymem-1 names the OOM kill');
    await until('pymem to come back', 30_000, async () => (await request('pymem', 'back')).stdout.toString() === 'back');
    await unaffected(t);
  });

  t.test('a worker printing garbage to standard output: served, the garbage in its journal, not restarted', async (t) => {
    await until('pygarbage to answer', 30_000, async () => (await request('pygarbage', 'x')).code === 0);
    const since = await journalNow(sb);
    const pid = await mainPid('dispatchd-worker@pygarbage-1.service');
    const r = await request('pygarbage', 'clean');
    t.equal(r.code, 0);
    t.equal(r.stdout.toString(), 'clean', 'the client gets its result, untouched');
    await until('the garbage in the journal', 10_000, async () => /garbage on stdout/.test(await journal(since, 'dispatchd-worker@pygarbage-1.service', 'garbage')));
    t.equal(await mainPid('dispatchd-worker@pygarbage-1.service'), pid, 'not restarted');
    await unaffected(t);
  });
}
