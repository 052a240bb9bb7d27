/**
 * Persistent workers (`mode = "persistent"`, docs/WORKERS.md) under the sandbox's systemd,
 * with both .debs installed: Python workers written with dispatchd.worker, their units made
 * by the generator at `systemctl daemon-reload`, serving requests; then each fault — a
 * worker killed (SIGKILL of its process) mid-request, frozen (SIGSTOP), over its MemoryMax=,
 * printing garbage to standard output, never saying hello — with the client's error code,
 * the journal line (`journalctl -u` of the worker unit), the worker restarted, and the
 * other types served meanwhile; and a request that kills every worker it touches, retried
 * at most once.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ROOT } from '../helpers/paths.js';
import { installedSuite, installPythonPackage, journalNow, until } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

if (sb) {
  await installPythonPackage(sb);

  const DIR = '/usr/local/lib/dispatchd-test';
  // One worker script, a behaviour per argv[1]. Each fault sleeps after its signal: a
  // signal to its own process is delivered to some thread, not at once to the one sending it.
  await sb.out(`
    mkdir -p ${DIR}
    cat > ${DIR}/worker.py <<'EOF'
#!/usr/bin/python3
"""A test worker serving its unit's type (DISPATCHD_TYPE), a behaviour per argv[1]."""
import os, signal, sys, time
from dispatchd.worker import Worker

kind = sys.argv[1]
worker = Worker(concurrency=2)

@worker.handler(os.environ["DISPATCHD_TYPE"])
def run(data: bytes, ctx) -> bytes:
    if data == b"whoami":
        return os.environ["DISPATCHD_WORKER"].encode()
    if kind == "crash" and data == b"die":
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(3600)
    if kind == "crash" and data == b"hang":
        print("running hang", flush=True)
        time.sleep(3600)
    if kind == "freeze" and data == b"freeze":
        os.kill(os.getpid(), signal.SIGSTOP)
        time.sleep(3600)
    if kind == "mem" and data == b"hog":
        hog = [bytes([i % 251]) * (1 << 20) for i in range(512)]
        return str(len(hog)).encode()
    if kind == "garbage":
        sys.stdout.buffer.write(b"\\x00\\x00\\x00\\x10{not a frame\\xff garbage on stdout\\n")
        sys.stdout.flush()
        print("more garbage with print()")
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

  // docs/WORKERS.md §1's examples, as written: the Python worker `shout`, the JavaScript one
  // `lower` (importing the installed library) and their types file.
  const docs = fs.readFileSync(join(ROOT, 'docs/WORKERS.md'), 'utf8');
  const block = (lang: string, has: string) => [...docs.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].find((m) => m[1] === lang && m[2]!.includes(has))![2]!;
  const staging = fs.mkdtempSync(join(ROOT, 'build', 'workers-examples-'));
  t.teardown(() => fs.rmSync(staging, { recursive: true, force: true }));
  fs.writeFileSync(join(staging, 'shout.py'), block('python', 'dispatchd.worker'));
  fs.writeFileSync(join(staging, 'lower.mjs'), block('js', 'createWorker'));
  fs.writeFileSync(join(staging, 'examples.toml'), block('toml', 'mode = "persistent"'));
  await sb.copyIn('/usr/local/lib/dispatchd', join(staging, 'shout.py'), join(staging, 'lower.mjs'));
  await sb.copyIn('/etc/dispatchd/types.d', join(staging, 'examples.toml'));
  await sb.out('chmod 644 /etc/dispatchd/types.d/examples.toml /usr/local/lib/dispatchd/*; systemctl daemon-reload; systemctl start dispatchd.target; systemctl reload dispatchd.target');

  const service = (worker: string) => `dispatchd-worker@${worker}.service`;
  const mainPid = async (worker: string) => Number((await sb.show(service(worker), 'MainPID')).MainPID);
  const request = (type: string, data: string) => sb.exec(['dispatchctl', 'request', type, data], { timeoutMs: 60_000 });
  const answers = async (type: string, data: string) => (await request(type, data)).stdout.toString() === data;
  /** `journalctl -a -u UNIT --since SINCE`, the lines containing `text` (-a: unprintable bytes too). */
  const journal = async (since: string, unit: string, text: string) => {
    const r = await sb.exec(['journalctl', '--no-pager', '-q', '-a', '-u', unit, '--since', since]);
    return r.stdout.toString().split('\n').filter((l) => l.includes(text));
  };
  /** Another Python worker type, the TypeScript one and a built-in type answer (run while a fault is in progress). */
  const othersServed = async (t: Test) => {
    const [a, b, c] = await Promise.all([request('pyecho', 'still'), request('lower', 'STILL'), request('echo', 'still')]);
    t.equal(a.stdout.toString(), 'still', 'another Python worker type is served');
    t.equal(b.stdout.toString(), 'still', 'a TypeScript worker type is served');
    t.equal(c.stdout.toString(), 'still', 'a built-in type is served');
  };

  t.test('the generator made a socket and a service per worker, wanted by dispatchd.target, each a user of its own', async (t) => {
    const made = (await sb.out('ls /run/systemd/generator/dispatchd.target.wants/')).trim().split('\n').sort();
    const workers = ['lower-1', 'pycrash-1', 'pycrash-2', 'pyecho-1', 'pyecho-2', 'pyfreeze-1', 'pygarbage-1', 'pykill-1', 'pymem-1', 'pysilent-1', 'shout-1', 'shout-2'];
    t.same(made, workers.flatMap((w) => [`dispatchd-worker@${w}.service`, `dispatchd-worker@${w}.socket`]).sort());
    const show = await sb.show(service('pymem-1'), 'Slice', 'MemoryMax', 'MemorySwapMax', 'DynamicUser', 'ExecStart');
    t.equal(show.Slice, 'dispatchd.slice');
    t.equal(show.MemoryMax, String(64 * 1024 * 1024), 'memory_max_mb became MemoryMax=');
    t.equal(show.MemorySwapMax, '0');
    t.equal(show.DynamicUser, 'yes', 'no user key: DynamicUser=yes');
    t.match(show.ExecStart, /argv\[\]=\/usr\/bin\/python3 \/usr\/local\/lib\/dispatchd-test\/worker\.py mem /);
  });

  t.test('a Python worker type (processes = 2) serves requests, and each of its workers does', async (t) => {
    await until('pyecho to answer', 30_000, () => answers('pyecho', 'hello'));
    const r = await sb.sh('for i in $(seq 1 10); do (out=$(dispatchctl request pyecho "n$i"); echo "$out") & done; wait', { timeoutMs: 60_000 });
    t.equal(r.code, 0, `every request exit 0 (stderr: ${r.stderr.toString().trim()})`);
    t.same(r.stdout.toString().trim().split('\n').sort(), Array.from({ length: 10 }, (_, i) => `n${i + 1}`).sort(), 'each its own answer');
    // With worker 1 stopped (and its socket), worker 2 serves; with it back, worker 1 again.
    await sb.out(`systemctl stop dispatchd-worker@pyecho-1.socket ${service('pyecho-1')}`);
    t.equal((await request('pyecho', 'whoami')).stdout.toString(), 'pyecho-2', 'worker 1 gone: worker 2 serves');
    await sb.out(`systemctl start dispatchd-worker@pyecho-1.socket`);
    await sb.out(`systemctl stop dispatchd-worker@pyecho-2.socket ${service('pyecho-2')}`);
    t.equal(await until('worker 1 to serve again', 30_000, async () => {
      const out = (await request('pyecho', 'whoami')).stdout.toString();
      return out === 'pyecho-1' && out;
    }), 'pyecho-1', 'worker 2 gone: worker 1 serves');
    await sb.out(`systemctl start dispatchd-worker@pyecho-2.socket`);
  });

  t.test('docs/WORKERS.md\'s examples, as written, under systemd: the Python worker and the TypeScript one', async (t) => {
    const since = await journalNow(sb);
    t.equal(await until('shout to answer', 30_000, async () => (await request('shout', 'hello')).stdout.toString() || false), 'HELLO');
    t.equal((await request('lower', 'HeLLo')).stdout.toString(), 'hello');
    await until('its print in the journal', 10_000, async () => (await journal(since, 'dispatchd-worker@shout-*', 'shout: 5 bytes')).length > 0);
    t.pass('journalctl -u dispatchd-worker@shout-* has what the function printed');
  });

  t.test('a worker killed (SIGKILL) mid-request: HANDLER_CRASHED, not sent again (not idempotent), the worker restarted', async (t) => {
    await until('pykill to answer', 30_000, () => answers('pykill', 'x'));
    const since = await journalNow(sb);
    const pid = await mainPid('pykill-1');
    const pending = request('pykill', 'hang');
    await until('the worker to run the request', 30_000, async () => (await journal(since, service('pykill-1'), 'running hang')).length > 0);
    await sb.out(`kill -KILL ${pid}`);
    const [r] = await Promise.all([pending, othersServed(t)]);
    t.equal(r.code, 70, 'exit 70');
    t.match(r.stderr, /\[HANDLER_CRASHED\]/);
    t.match(r.stderr, /pykill-1 \(dispatchd-worker@pykill-1\.service\) died while it ran the request, which may have run in part; not sent again: the type is not idempotent/);
    t.ok((await journal(since, service('pykill-1'), 'Main process exited, code=killed, status=9/KILL')).length > 0, 'journalctl -u dispatchd-worker@pykill-1: status=9/KILL');
    t.ok((await journal(since, 'dispatchd-secondary@*', "the 'pykill' worker pykill-1 closed its connection (it exited or was restarted) with 1 request in flight")).length > 0, 'the secondary\'s journal line');
    const byField = await sb.exec(['journalctl', '--no-pager', '-q', '--since', since, 'WORKER_UNIT=dispatchd-worker@pykill-1.service']);
    t.match(byField.stdout.toString(), /pykill-1 closed its connection/, 'found by its WORKER_UNIT= field, as docs/WORKERS.md §5 says');
    await until('pykill-1 to serve again', 30_000, () => answers('pykill', 'back'));
    const now = await mainPid('pykill-1');
    t.ok(now !== 0 && now !== pid, 'systemd restarted the worker (a new process)');
  });

  t.test('a request that kills every worker it touches: retried once on another (idempotent), then HANDLER_CRASHED; no loop, the pool comes back', async (t) => {
    await until('both pycrash workers to answer', 30_000, async () => (await request('pycrash', 'whoami')).code === 0 && (await mainPid('pycrash-1')) !== 0 && (await mainPid('pycrash-2')) !== 0);
    const since = await journalNow(sb);
    const [r] = await Promise.all([request('pycrash', 'die'), othersServed(t)]);
    t.equal(r.code, 70);
    t.match(r.stderr, /\[HANDLER_CRASHED\]/);
    t.match(r.stderr, /sent to 2 workers, each died \(retried at most once\)/);
    t.equal((await journal(since, 'dispatchd-secondary@*', "sending the 'pycrash' request again, to another worker")).length, 1, 'one retry in the journal');
    const deaths = await journal(since, 'dispatchd-worker@pycrash-*', 'status=9/KILL');
    t.equal(deaths.length, 2, 'exactly two workers died: no loop');
    t.ok(deaths.some((l) => l.includes('pycrash-1')) && deaths.some((l) => l.includes('pycrash-2')), 'one each');
    await until('pycrash to serve again', 30_000, () => answers('pycrash', 'back'));
    t.equal((await journal(since, 'dispatchd-worker@pycrash-*', 'status=9/KILL')).length, 2, 'and none died since');
  });

  t.test('a worker that never says hello: HANDLER_FAILED, not waited on; an err line; its unit restarted', async (t) => {
    const since = await journalNow(sb);
    const [r] = await Promise.all([request('pysilent', 'x'), othersServed(t)]);
    t.equal(r.code, 70);
    t.match(r.stderr, /\[HANDLER_FAILED\]/);
    t.match(r.stderr, /no 'pysilent' worker is ready: .*did not say hello within start_timeout_ms \(1000 ms\)/);
    await until('the err line and the restart', 30_000, async () => {
      const res = await sb.exec(['journalctl', '--no-pager', '-q', '-p', 'err', '-u', 'dispatchd-secondary@*', '--since', since]);
      const line = res.stdout.toString().includes("the 'pysilent' worker pysilent-1 failed: it did not say hello within start_timeout_ms (1000 ms)");
      const restarted = (await journal(since, service('pysilent-1'), 'Stopping dispatchd-worker@pysilent-1.service')).length > 0;
      return line && restarted;
    });
    t.pass('the secondary logged it at err; journalctl -u dispatchd-worker@pysilent-1 shows the restart');
  });

  t.test('a frozen worker (SIGSTOP): DEADLINE_EXCEEDED, a cancel, its unit restarted after cancel_grace_ms', async (t) => {
    await until('pyfreeze to answer', 30_000, () => answers('pyfreeze', 'x'));
    const since = await journalNow(sb);
    const pid = await mainPid('pyfreeze-1');
    const [r] = await Promise.all([request('pyfreeze', 'freeze'), othersServed(t)]);
    t.equal(r.code, 124);
    t.match(r.stderr, /\[DEADLINE_EXCEEDED\]/);
    await until('pyfreeze-1 to be restarted', 30_000, async () => {
      const p = await mainPid('pyfreeze-1');
      return p !== 0 && p !== pid;
    });
    const lines = await journal(since, 'dispatchd-secondary@*', 'did not answer the cancel');
    t.match(lines.join('\n'), /pyfreeze-1 failed: it did not answer the cancel of request id \d+ within cancel_grace_ms \(1000 ms\) after its deadline; marked failed, restarting dispatchd-worker@pyfreeze-1\.service/, 'the secondary\'s journal line');
    t.ok((await journal(since, service('pyfreeze-1'), 'Stopping dispatchd-worker@pyfreeze-1.service')).length > 0, 'journalctl -u dispatchd-worker@pyfreeze-1 shows the restart');
    await until('pyfreeze to serve again', 30_000, () => answers('pyfreeze', 'back'));
  });

  // systemd inside the sandbox enforces MemoryMax= only where it has the memory controller:
  // on a host with cgroup v1 controllers, systemd-nspawn mounts them read-only inside.
  const memoryCurrent = (await sb.show(service('pymem-1'), 'MemoryCurrent')).MemoryCurrent;
  const noMemoryController = memoryCurrent === undefined || memoryCurrent === '[not set]'
    ? `this sandbox's systemd has no memory controller (MemoryCurrent=${memoryCurrent}; a cgroup v1 host): MemoryMax= is set but not enforced here`
    : false;
  t.test('a worker over its MemoryMax=: killed by the kernel, HANDLER_CRASHED, restarted', { skip: noMemoryController }, async (t) => {
    await until('pymem to answer', 30_000, () => answers('pymem', 'x'));
    const since = await journalNow(sb);
    const pid = await mainPid('pymem-1');
    const [r] = await Promise.all([request('pymem', 'hog'), othersServed(t)]);
    t.equal(r.code, 70);
    t.match(r.stderr, /\[HANDLER_CRASHED\]/);
    await until('systemd to log the OOM kill', 30_000, async () => (await journal(since, service('pymem-1'), 'oom')).length > 0);
    t.pass('journalctl -u dispatchd-worker@pymem-1 names the OOM kill');
    await until('pymem to serve again', 30_000, () => answers('pymem', 'back'));
    t.not(await mainPid('pymem-1'), pid, 'restarted (a new process)');
  });

  t.test('a worker printing garbage to standard output: served, the garbage in its journal, not restarted', async (t) => {
    await until('pygarbage to answer', 30_000, () => answers('pygarbage', 'x'));
    const since = await journalNow(sb);
    const pid = await mainPid('pygarbage-1');
    const r = await request('pygarbage', 'clean');
    t.equal(r.code, 0);
    t.equal(r.stdout.toString(), 'clean', 'the client gets its result, untouched');
    await until('the garbage in the journal', 10_000, async () => (await journal(since, service('pygarbage-1'), 'more garbage with print()')).length > 0);
    t.ok((await journal(since, service('pygarbage-1'), 'garbage on stdout')).length > 0, 'the bytes that look like a frame prefix too');
    t.equal(await mainPid('pygarbage-1'), pid, 'not restarted: its standard output is not the protocol');
    await othersServed(t);
  });
}
