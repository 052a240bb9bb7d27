/**
 * dispatchctl and the daemons' command line, as a user runs them: results on stdout,
 * one-line errors on stderr, the documented exit codes; and a bad configuration refused
 * with the file, line and key named, exit 78 (the unit's RestartPreventExitStatus=).
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { EXIT } from '../../daemons/common/exit-codes.js';
import { DAEMON_KINDS, entryPoint } from '../../daemons/common/topology.js';
import { BUILD_DAEMONS as BUILD, BUILTIN_TYPES_DIR, closeAfter, DISPATCHCTL, ProcessSuite, ROOT, until } from '../helpers/index.js';

const suite = new ProcessSuite({ config: `[main]\nqueue_timeout_ms = 200\n`, secondaries: 1, restart: false });
closeAfter(t, suite);
t.before(async () => {
  await suite.start('secondary-1');
  await suite.start('main');
});

t.test('request: DATA from the argument, from stdin with -, and from stdin when absent', async (t) => {
  const a = await suite.dispatchctl(['request', 'echo', 'hello']);
  t.equal(a.code, 0);
  t.equal(a.stdout.toString(), 'hello', 'exactly the bytes, no newline added');
  const bin = randomBytes(1 << 20);
  const b = await suite.dispatchctl(['request', 'echo', '-'], bin);
  t.ok(b.stdout.equals(bin), '1 MiB of binary stdin echoes byte for byte');
  const c = await suite.dispatchctl(['request', 'sha256'], bin);
  t.equal(c.stdout.toString(), createHash('sha256').update(bin).digest('hex'));
  const dashed = await suite.dispatchctl(['request', 'echo', '--', '-n']);
  t.equal(dashed.stdout.toString(), '-n', "DATA starting with a dash goes after '--'");
  const undashed = await suite.dispatchctl(['request', 'echo', '-n']);
  t.equal(undashed.code, EXIT.USAGE, 'without it: a usage error (64)');
  t.match(undashed.stderr, /^dispatchctl: Unknown argument: n; DATA that starts with '-' goes after '--' \(dispatchctl request TYPE -- -DATA\); see 'dispatchctl --help'\n$/, 'which says where such DATA goes');
  const d = await suite.dispatchctl(['request', 'sleep', '10']);
  t.equal(d.stdout.toString(), 'slept 10');
});

/**
 * Runs dispatchctl with a module resolve hook (module.register) that logs every module it
 * loads with import or import() (the bundle's require() of built-ins excepted on Node.js
 * 20); resolves with the result and the module URLs.
 */
async function dispatchctlModules(args: string[], input = ''): Promise<{ code: number | null; stdout: string; modules: string[] }> {
  return modulesLoaded(DISPATCHCTL, args, input);
}

/** Runs `entry` with `args` under the module hook of {@link dispatchctlModules}. */
async function modulesLoaded(entry: string, args: string[], input = ''): Promise<{ code: number | null; stdout: string; modules: string[] }> {
  const dir = fs.mkdtempSync(path.join(suite.dir, 'modules-'));
  const log = path.join(dir, 'modules.log');
  fs.writeFileSync(path.join(dir, 'hooks.mjs'), "import fs from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); fs.appendFileSync(process.env.MODULE_LOG, r.url + '\\n'); return r; }\n");
  fs.writeFileSync(path.join(dir, 'register.mjs'), "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n");
  const r = spawnSync(process.execPath, ['--import', path.join(dir, 'register.mjs'), entry, ...args], { encoding: 'utf8', input, env: { ...process.env, MODULE_LOG: log, JOURNAL_STREAM: '' } });
  return { code: r.status, stdout: r.stdout, modules: fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : [] };
}

t.test('each daemon starts from one bundled file: no other ES module is loaded, so no library is resolved and compiled file by file', async (t) => {
  // The native addons (sd-notify, systemd-journald, usocket) and piscina stay in
  // node_modules, loaded with require() or on first use; this run ends at the configuration
  // (exit 78), after every static import is loaded.
  const missing = path.join(suite.dir, 'no-such.conf');
  const entries = [...DAEMON_KINDS.map((kind) => entryPoint(kind).replace(/^daemons\//, '')), 'metrics/main.js'];
  const script = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['build:daemons'] ?? '';
  for (const entry of entries) t.ok(script.includes(`build/daemons/${entry} `), `package.json build:daemons bundles ${entry} (topology.ts names it)`);
  for (const entry of entries) {
    const r = await modulesLoaded(path.join(BUILD, entry), entry.startsWith('secondary') ? ['--instance', '1', '--config', missing] : ['--config', missing]);
    t.equal(r.code, EXIT.CONFIG, `${entry}: exit 78 on the missing configuration`);
    t.ok(r.modules.some((m) => m.endsWith(`/daemons/${entry}`)), `${entry}: the hook saw the entry point`);
    t.strictSame(r.modules.filter((m) => m.startsWith('file:') && !m.endsWith(`/daemons/${entry}`)), [], `${entry}: and no other file`);
  }
});

t.test('request runs from the bundle alone: no ES module, neither yargs nor the schema, TOML, metrics or terminal libraries; other commands go through yargs', async (t) => {
  const heavy = /\/node_modules\/(yargs|yargs-parser|zod|smol-toml|prom-client|log-update)\//;
  // The files loaded besides dispatchctl.cjs itself (which the hook sees as the entry point).
  const files = (modules: string[]) => modules.filter((m) => m.startsWith('file:') && !m.endsWith('/client/dispatchctl.cjs'));
  const r = await dispatchctlModules(['--socket', suite.mainSocket, 'request', 'echo', 'hello']);
  t.equal(r.code, 0);
  t.equal(r.stdout, 'hello', 'the request is served');
  t.ok(r.modules.some((m) => m.endsWith('/client/dispatchctl.cjs')), 'the hook saw the entry point');
  t.strictSame(files(r.modules), [], 'and no other file: the request path is in the bundle');
  const stdin = await dispatchctlModules(['--socket', suite.mainSocket, 'request', 'echo', '--config', suite.configPath], 'from stdin');
  t.equal(stdin.stdout, 'from stdin', 'DATA from standard input');
  t.ok(stdin.modules.some((m) => m.endsWith('/common/payload-limit.js')), 'loads the reader of max_payload_bytes beside the bundle, for the size limit');
  t.strictSame(stdin.modules.filter((m) => /\/node_modules\/(yargs|yargs-parser|zod|prom-client|log-update)\//.test(m) || m.endsWith('/common/config.js')), [], 'and not the configuration schema (zod) nor yargs');
  const dash = await dispatchctlModules(['--socket', suite.mainSocket, 'request', 'echo', '-'], 'from a dash');
  t.equal(dash.stdout, 'from a dash', "DATA '-': standard input");
  t.strictSame(dash.modules.filter((m) => /\/node_modules\/(yargs|yargs-parser|zod)\//.test(m)), [], "read by the fast path too, without yargs");
  const version = await dispatchctlModules(['--version']);
  t.strictSame(version.modules.filter((m) => heavy.test(m)), [], '--version loads none of them either');
  t.strictSame(files(version.modules).map((m) => path.basename(m)), ['version.js'], '--version loads version.js only');
  t.equal(version.stdout.trim(), (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version, 'and prints the version');
  const status = await dispatchctlModules(['status', '--format', 'openmetrics', '--scoreboard', suite.scoreboard]);
  t.equal(status.code, 0);
  t.ok(status.modules.some((m) => /\/node_modules\/yargs\//.test(m)), 'status is read by yargs');
  t.ok(status.modules.some((m) => /\/node_modules\/prom-client\//.test(m)), 'and loads prom-client for OpenMetrics');
});

t.test('errors: one line on stderr and the documented exit code', async (t) => {
  const unknown = await suite.dispatchctl(['request', 'nope', 'x']);
  t.equal(unknown.code, EXIT.REJECTED);
  t.match(unknown.stderr, /^dispatchctl: 'nope' request failed: no secondary serves request type 'nope'; the types served: echo, sha256, sleep \(dispatchctl types lists the declared ones\) \[UNKNOWN_TYPE\]\n$/);
  const usage = await suite.dispatchctl(['frobnicate']);
  t.equal(usage.code, EXIT.USAGE);
  t.equal(usage.stderr.trim().split('\n').length, 1, 'usage error is one line');
  const deadline = await suite.dispatchctl(['request', 'sleep', '2000', '--deadline', '100']);
  t.equal(deadline.code, EXIT.TIMED_OUT);
  t.match(deadline.stderr, /cut off/);
  const gone = spawnSync(process.execPath, [DISPATCHCTL, '--socket', path.join(suite.dir, 'nothing.sock'), 'request', 'echo', 'x', '--timeout', '2000'], { encoding: 'utf8' });
  t.equal(gone.status, EXIT.UNAVAILABLE);
  t.match(gone.stderr, /no such socket: dispatchd is not running; see 'systemctl status dispatchd.target'/);
  const notSocket = spawnSync(process.execPath, [DISPATCHCTL, '--socket', suite.configPath, 'request', 'echo', 'x', '--timeout', '2000'], { encoding: 'utf8' });
  t.equal(notSocket.status, EXIT.UNAVAILABLE, 'a --socket that is not a socket: exit 69');
  t.match(notSocket.stderr, /is not a socket; pass the main server's socket with --socket/);
  const badTimeout = await suite.dispatchctl(['request', 'echo', 'x', '--timeout', 'abc']);
  t.equal(badTimeout.code, EXIT.USAGE, 'a timeout that is not a number is a usage error');
  t.match(badTimeout.stderr, /--timeout takes a whole number of milliseconds from 1 to \d+, got 'abc'/, 'the value as typed, not NaN');
  const badDeadline = await suite.dispatchctl(['request', 'sleep', '1', '--deadline', '1.5']);
  t.equal(badDeadline.code, EXIT.USAGE);
  const empty = await suite.dispatchctl(['request', '', 'x']);
  t.equal(empty.code, EXIT.USAGE, 'an empty TYPE is a usage error, not sent');
  t.match(empty.stderr, /^dispatchctl: TYPE is empty: name a request type \(dispatchctl types lists them\); see 'dispatchctl --help'\n$/);
  // A number of ms is written plainly, as the fast path reads it: yargs refuses the rest too.
  for (const v of ['1e3', '0x10', '060', '60000.0', ' 100', '+5']) {
    const r = await suite.dispatchctl(['request', 'echo', 'x', `--timeout=${v}`]);
    t.equal(r.code, EXIT.USAGE, `--timeout=${v}: exit 64`);
    t.match(r.stderr, `got '${v}'`);
  }
  // --interval and --count mean something only with --watch.
  for (const o of ['--count', '--interval']) {
    const r = await suite.dispatchctl(['status', o, '500', '--scoreboard', suite.scoreboard]);
    t.equal(r.code, EXIT.USAGE, `status ${o} without --watch: exit 64`);
    t.match(r.stderr, `${o} goes with --watch`);
  }
  // An option given twice: the last one holds.
  const twice = await suite.dispatchctl(['request', 'echo', 'again', '--socket', path.join(suite.dir, 'nothing.sock'), '--socket', suite.mainSocket, '--timeout', '5', '--timeout', '60000']);
  t.equal(twice.code, 0, twice.stderr.toString());
  t.equal(twice.stdout.toString(), 'again', 'the last --socket and --timeout hold');
  const twiceBad = await suite.dispatchctl(['request', 'echo', 'x', '--timeout', '60000', '--timeout', '0']);
  t.equal(twiceBad.code, EXIT.USAGE);
  t.match(twiceBad.stderr, /--timeout takes a whole number of milliseconds from 1 to \d+, got '0'/, 'the value that holds is the one named');
  // An option with no value is a usage error, not its default (or '' for a file) taken silently.
  for (const args of [['request', 'echo', 'x', '--timeout'], ['request', 'echo', '--timeout'], ['request', 'echo', 'x', '--deadline'], ['request', 'echo', '--config'], ['status', '--scoreboard'], ['status', '--format'], ['status', '--watch', '--count'], ['types', '--config'], ['status', '--socket']]) {
    const r = await suite.dispatchctl(args);
    t.equal(r.code, EXIT.USAGE, `${args.join(' ')}: exit 64`);
    t.match(r.stderr, new RegExp(`^dispatchctl: Not enough arguments following: ${args.at(-1)!.slice(2)}; see 'dispatchctl --help'\n$`));
  }
  // DATA that is not UTF-8, as a shell passes it (Node.js cannot spawn with such bytes itself).
  const octal = '\\377\\376a\\200';
  for (const args of [['request', 'echo'], ['request', '-v', 'echo'], ['request', 'echo', '--']]) { // the fast path, and yargs (after --)
    const raw = spawnSync('/bin/sh', ['-c', `exec "$0" "$1" --socket "$2" ${args.join(' ')} "$(printf '${octal}')"`, process.execPath, DISPATCHCTL, suite.mainSocket]);
    t.equal(raw.status, 0, raw.stderr.toString());
    t.strictSame([...raw.stdout], [0xff, 0xfe, 0x61, 0x80], `${args.join(' ')}: DATA that is not UTF-8 is sent byte for byte`);
  }
  const hashed = spawnSync('/bin/sh', ['-c', `exec "$0" "$1" --socket "$2" request sha256 "$(printf '\\377')"`, process.execPath, DISPATCHCTL, suite.mainSocket], { encoding: 'utf8' });
  t.equal(hashed.stdout, createHash('sha256').update(Buffer.from([0xff])).digest('hex'), 'sha256 of the byte FF, not of U+FFFD');
  const numeric = await suite.dispatchctl(['request', 'echo', '--', '-5']);
  t.equal(numeric.stdout.toString(), '-5', "numeric DATA after '--' is sent as text");
  // dispatchctl told of a larger limit than the server's (64 MiB, the default), so that the
  // server is the one to refuse.
  const roomy = path.join(suite.dir, 'roomy.conf');
  fs.writeFileSync(roomy, `[secondary]\nmax_payload_bytes = ${128 * 1024 * 1024}\n`);
  const big = await suite.dispatchctl(['request', 'echo', '-', '--config', roomy], Buffer.alloc(64 * 1024 * 1024 + 1));
  t.equal(big.code, EXIT.REJECTED, 'a payload over the server\'s max_payload_bytes is refused (65), not a protocol error');
  t.match(big.stderr, /^dispatchctl: 'echo' request failed: /, 'by the server');
  t.match(big.stderr, /too large.*raise max_payload_bytes/);
  t.equal(big.stderr.split('send less').length - 1, 1, `the hint says "send less" once: ${big.stderr}`);
  t.equal((await suite.dispatchctl(['-h'])).code, 0, '-h is help');
  t.equal(gone.stderr.trim().split('\n').length, 1);
});

t.test('standard output that fails: a reader that goes away is a quiet exit 0, a full disk one error line', async (t) => {
  // A result far larger than a pipe holds, to a reader that closes its end at once.
  const child = spawn(process.execPath, [DISPATCHCTL, '--socket', suite.mainSocket, 'request', 'echo', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.destroy();
  child.stdin.end(Buffer.alloc(8 << 20, 0x61));
  const [code] = await once(child, 'close');
  t.equal(code, 0, 'exit 0: the reader took what it wanted');
  t.equal(stderr, '', 'and nothing on stderr (no stack trace)');
  const full = spawnSync(DISPATCHCTL, ['--socket', suite.mainSocket, 'request', 'echo', 'hello'], { stdio: ['ignore', fs.openSync('/dev/full', 'w'), 'pipe'], encoding: 'utf8' });
  t.equal(full.status, EXIT.FAILURE, 'a full disk: exit 1');
  t.match(full.stderr, /^dispatchctl: failed to write to standard output: .*ENOSPC.*\n$/, 'one line naming ENOSPC');
  const version = spawnSync(DISPATCHCTL, ['--version'], { stdio: ['ignore', fs.openSync('/dev/full', 'w'), 'pipe'], encoding: 'utf8' });
  t.match(version.stderr, /^dispatchctl: failed to write to standard output: .*ENOSPC.*\n$/, '--version alike');
  // What yargs prints (help, the completion script) alike: `completion > FILE` on a full disk is not a success.
  for (const args of [['--help'], ['status', '--help'], ['completion']]) {
    const r = spawnSync(DISPATCHCTL, args, { stdio: ['ignore', fs.openSync('/dev/full', 'w'), 'pipe'], encoding: 'utf8' });
    t.equal(r.status, EXIT.FAILURE, `${args.join(' ')} > /dev/full: exit 1`);
    t.match(r.stderr, /^dispatchctl: failed to write to standard output: .*ENOSPC.*\n$/);
  }
  const help = spawnSync(DISPATCHCTL, ['--help'], { encoding: 'utf8' });
  t.equal(help.status, 0);
  t.match(help.stdout, /^dispatchctl <command> \[options\]/, 'help still reaches a working stdout');
});

t.test('request: a result to a full non-blocking pipe (a parent made it so) still arrives whole, after the reader starts reading', async (t) => {
  // Python makes the pipe (os.set_blocking), starts dispatchctl with it as standard output,
  // reads nothing until the pipe holds all it can (FIONREAD = its capacity: dispatchctl's next
  // write(2) says EAGAIN) or dispatchctl ended, then reads everything.
  const script = [
    'import array, fcntl, os, subprocess, sys, termios, time',
    'r, w = os.pipe()',
    'os.set_blocking(w, False)',
    'size = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)',
    'p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=w, stderr=subprocess.PIPE)',
    'os.close(w)',
    'held = array.array("i", [0])',
    'while p.poll() is None and (fcntl.ioctl(r, termios.FIONREAD, held), held[0])[1] < size:',
    '    time.sleep(0.005)',
    'n = 0',
    'while True:',
    '    b = os.read(r, 1 << 16)',
    '    if not b: break',
    '    n += len(b)',
    'err = p.stderr.read().decode()',
    'print(n, p.wait(), repr(err))',
  ].join('\n');
  const size = 100_000; // more than a pipe holds (64 KiB), less than one argument may be (128 KiB)
  const r = spawnSync('python3', ['-c', script, process.execPath, DISPATCHCTL, '--socket', suite.mainSocket, 'request', 'echo', 'x'.repeat(size)], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout.trim(), `${size} 0 ''`, 'every byte of the result, exit 0, nothing on standard error');
});

t.test('request: a directory on standard input is refused, not sent as empty DATA', async (t) => {
  const r = spawnSync(DISPATCHCTL, ['--socket', suite.mainSocket, 'request', 'sha256'], { stdio: [fs.openSync(suite.dir, 'r'), 'pipe', 'pipe'], encoding: 'utf8' });
  t.equal(r.status, EXIT.REJECTED, 'exit 65');
  t.equal(r.stdout, '', 'no result');
  t.match(r.stderr, /^dispatchctl: 'sha256' request not sent: standard input is a directory; .*\[BAD_REQUEST\]\n$/);
});

t.test('request: standard input past max_payload_bytes is refused at once, not read whole', async (t) => {
  const config = path.join(suite.dir, 'small-payloads.conf');
  fs.writeFileSync(config, '[secondary]\nmax_payload_bytes = 16777216\n');
  const child = spawn(process.execPath, [DISPATCHCTL, '--socket', suite.mainSocket, 'request', 'echo', '--config', config], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = once(child, 'close');
  // An endless producer, as `cat /dev/zero | dispatchctl request echo` would be; stopped at
  // 256 MiB so that a dispatchctl reading everything fails this test instead of hanging it.
  const chunk = Buffer.alloc(1 << 20);
  let fed = 0;
  child.stdin.on('error', () => undefined); // EPIPE once dispatchctl has gone
  while (fed < 256 * chunk.length && child.exitCode === null) {
    const ok = await new Promise<boolean>((resolve) => child.stdin.write(chunk, (err) => resolve(!err)));
    if (!ok) break;
    fed += chunk.length;
  }
  child.stdin.end();
  const [code] = await exited;
  t.equal(code, EXIT.REJECTED, 'exit 65');
  t.match(stderr, /^dispatchctl: 'echo' request not sent: standard input is over the 16777216-byte request limit \(max_payload_bytes, from .*small-payloads\.conf\); send less, or raise max_payload_bytes .*\[PAYLOAD_TOO_LARGE\]\n$/);
  t.ok(fed < 32 * chunk.length, `reading stopped at the limit: ${fed / chunk.length} MiB taken from the producer`);

  const missing = await suite.dispatchctl(['request', 'echo', '--config', path.join(suite.dir, 'no.conf')], 'x');
  t.equal(missing.code, EXIT.CONFIG, 'a --config file that is not there: exit 78');
  t.match(missing.stderr, /failed to read configuration .*no\.conf/);
  const tooSmall = path.join(suite.dir, 'too-small.conf');
  fs.writeFileSync(tooSmall, '[secondary]\nmax_payload_bytes = 1024\n');
  const bad = await suite.dispatchctl(['request', 'echo', '--config', tooSmall], 'x');
  t.equal(bad.code, EXIT.CONFIG, 'a --config file with a bad max_payload_bytes: exit 78');
  t.match(bad.stderr, /too-small\.conf' line 2: key 'secondary\.max_payload_bytes': an integer from 16777216 to 1073741824 .*\[CONFIG_INVALID\]\n$/);
  const fromArg = await suite.dispatchctl(['request', 'echo', 'x', '--config', path.join(suite.dir, 'no.conf')]);
  t.equal(fromArg.code, 0, 'DATA from the argument does not need the configuration');
});

t.test('status: a table and JSON with the contract fields', async (t) => {
  const table = await suite.dispatchctl(['status', '--scoreboard', suite.scoreboard]);
  t.equal(table.code, 0);
  t.match(table.stdout.toString(), /^NAME\s+PID\s+STATE\s+ACTIVE\s+REQUESTS\s+FAILED\s+LATENCY\s+HEARTBEAT\s+RESTARTS\n/);
  t.match(table.stdout.toString(), /\nmain\s+\d+\s+ready/);
  const json = await suite.dispatchctl(['status', '--json', '--scoreboard', suite.scoreboard]);
  const report = JSON.parse(json.stdout.toString()) as { daemons: Array<Record<string, unknown>> };
  t.same(report.daemons.map((d) => d.name), ['main', 'secondary-1', 'watchdog']);
  t.equal(report.daemons[2]!.state, 'absent', 'the watchdog (not started here) is listed as absent');
  t.match(table.stderr, /watchdog is absent: see systemctl status dispatchd-watchdog.service/);
  for (const d of report.daemons.filter((x) => x.state !== 'absent')) {
    for (const k of ['name', 'pid', 'state', 'requests', 'heartbeat_age_ms', 'restarts']) t.ok(k in d, `${d.name} has ${k}`);
  }
  t.equal(report.daemons[0]!.pid, suite.pid('main'));
  const missing = await suite.dispatchctl(['status', '--scoreboard', path.join(suite.dir, 'none')]);
  t.equal(missing.code, EXIT.UNAVAILABLE);
  t.match(missing.stderr, /does not exist; is dispatchd.target running/);
});

t.test('a dead daemon shows as dead in status', async (t) => {
  suite.signal('secondary-1', 'SIGKILL');
  await until('secondary-1 to die', 5000, () => !suite.isRunning('secondary-1'));
  const json = JSON.parse((await suite.dispatchctl(['status', '--json', '--scoreboard', suite.scoreboard])).stdout.toString()) as { daemons: Array<{ name: string; state: string }> };
  t.equal(json.daemons.find((d) => d.name === 'secondary-1')!.state, 'dead');
});

t.test('a bad configuration is refused with file, line and key, exit 78', async (t) => {
  const conf = path.join(suite.dir, 'bad.conf');
  fs.writeFileSync(conf, '[main]\n# comment\nlease_ttl_ms = "soon"\n');
  const r = spawnSync(process.execPath, [path.join(BUILD, 'main-server/main.js'), '--config', conf], { encoding: 'utf8', env: { ...process.env, JOURNAL_STREAM: '' } });
  t.equal(r.status, EXIT.CONFIG);
  t.match(r.stderr, new RegExp(`failed to start dispatchd-main.service: failed to load configuration '${conf}' line 3: key 'main.lease_ttl_ms'`));
  t.match(r.stderr, /not restarted/);
  fs.writeFileSync(conf, '[secondary]\nmax_leasez = 3\n');
  const u = spawnSync(process.execPath, [path.join(BUILD, 'secondary-server/main.js'), '--instance', '1', '--config', conf], { encoding: 'utf8' });
  t.equal(u.status, EXIT.CONFIG);
  t.match(u.stderr, /line 2: unknown key 'secondary.max_leasez'/);
});

t.test('a daemon started without its sockets says which unit to use', async (t) => {
  const r = spawnSync(process.execPath, [path.join(BUILD, 'main-server/main.js'), '--config', suite.configPath], { encoding: 'utf8' });
  t.equal(r.status, EXIT.FAILURE);
  t.match(r.stderr, /failed to find the socket-activated fd 'client'.*start the daemon through dispatchd-main.socket/);
});

t.test('check-config: valid, invalid (line and key, exit 78), missing', async (t) => {
  const good = path.join(suite.dir, 'good.conf');
  fs.writeFileSync(good, `[secondary]\nmax_leases = 4\n[types]\ndirs = ["${BUILTIN_TYPES_DIR}"]\n`);
  const ok = await suite.dispatchctl(['check-config', good]);
  t.equal(ok.code, 0);
  t.equal(ok.stdout.toString(), `dispatchctl: configuration '${good}' is valid (3 request types: echo, sha256, sleep)\n`);
  const bad = path.join(suite.dir, 'bad-check.conf');
  fs.writeFileSync(bad, '[secondary]\n\nmax_leases = "many"\n');
  const r = await suite.dispatchctl(['check-config', bad]);
  t.equal(r.code, EXIT.CONFIG, 'exit 78');
  t.match(r.stderr, new RegExp(`^dispatchctl: configuration refused: failed to load configuration '${bad}' line 3: key 'secondary\\.max_leases'.*\\[CONFIG_INVALID\\]\\n$`));
  const missing = await suite.dispatchctl(['check-config', path.join(suite.dir, 'nope.conf')]);
  t.equal(missing.code, EXIT.CONFIG, 'a file named but missing is refused too');
});

t.test('status --format openmetrics and --watch on a pipe', async (t) => {
  const om = await suite.dispatchctl(['status', '--format', 'openmetrics', '--scoreboard', suite.scoreboard]);
  t.equal(om.code, 0);
  t.match(om.stdout.toString(), /^dispatchd_requests_total\{daemon="main"\} \d+$/m);
  t.ok(om.stdout.toString().endsWith('# EOF\n'));
  const watch = await suite.dispatchctl(['status', '--watch', '--json', '--interval', '100', '--count', '2', '--scoreboard', suite.scoreboard]);
  t.equal(watch.code, 0);
  t.equal(watch.stdout.toString().trim().split('\n').length, 2, 'two snapshots, one JSON line each');
  const missing = await suite.dispatchctl(['status', '--watch', '--interval', '100', '--count', '2', '--scoreboard', path.join(suite.dir, 'none.scoreboard')]);
  t.equal(missing.code, EXIT.UNAVAILABLE, 'a watch whose last snapshot failed ends with that failure (69), not 0');
  t.match(missing.stderr, /^dispatchctl: failed to read the status \(the last of 2 snapshots\): failed to open scoreboard .* \[SCOREBOARD_MISSING\]\n$/);
  t.equal(missing.stdout.toString().match(/retrying in 100 ms/g)?.length, 2, 'each failed snapshot is said where the snapshots go');
  const both = await suite.dispatchctl(['status', '--json', '--format', 'table']);
  t.equal(both.code, EXIT.USAGE, '--json and --format together are a usage error');
  t.equal((await suite.dispatchctl(['--version'])).stdout.toString().trim(), JSON.parse(fs.readFileSync(path.join(BUILD, '../../package.json'), 'utf8')).version, '--version');
});
