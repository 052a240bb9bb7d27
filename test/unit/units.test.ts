/**
 * The shipped units, tmpfiles.d, sysusers.d and polkit files, checked by the tools that
 * will read them, on copies laid out as the package installs them:
 * `systemd-analyze verify` on every unit (man pages included), systemd-tmpfiles and
 * systemd-sysusers on a scratch root, and the polkit rule evaluated against the requests
 * the watchdog makes and a few it must not be granted.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import t from 'tap';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const UNITS = join(REPO, 'units');
const unitFiles = readdirSync(UNITS).filter((f) => /\.(service|socket|target)$/.test(f)).sort();

const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** A scratch root with the files where the package puts them. */
function installedLayout(): string {
  const root = mkdtempSync(join(tmpdir(), 'dispatchd-units-'));
  const put = (from: string, dir: string, name?: string) => {
    mkdirSync(join(root, dir), { recursive: true });
    copyFileSync(from, join(root, dir, name ?? from.split('/').pop()!));
  };
  for (const f of unitFiles) put(join(UNITS, f), 'lib/systemd/system');
  put(join(UNITS, 'tmpfiles.d', 'dispatchd.conf'), 'usr/lib/tmpfiles.d');
  put(join(UNITS, 'sysusers.d', 'dispatchd.conf'), 'usr/lib/sysusers.d');
  put(join(UNITS, 'polkit', 'dispatchd.rules'), 'usr/share/polkit-1/rules.d');
  for (const page of readdirSync(join(REPO, 'docs', 'man'))) {
    const section = /\.(\d)$/.exec(page)?.[1];
    if (section) put(join(REPO, 'docs', 'man', page), `usr/share/man/man${section}`);
  }
  return root;
}

const root = installedLayout();
t.teardown(() => rmSync(root, { recursive: true, force: true }));

t.test('the package ships every unit of the architecture', async (t) => {
  t.same(unitFiles, [
    'dispatchd-main-mailbox.socket',
    'dispatchd-main.service',
    'dispatchd-main.socket',
    'dispatchd-metrics.service',
    'dispatchd-metrics.socket',
    'dispatchd-scoreboard.service',
    'dispatchd-secondary-mailbox@.socket',
    'dispatchd-secondary@.service',
    'dispatchd-secondary@.socket',
    'dispatchd-watchdog.service',
    'dispatchd-watchdog.socket',
    'dispatchd.target',
  ]);
});

t.test('systemd-analyze verify passes on every unit', { skip: have('systemd-analyze') ? false : 'systemd-analyze is not installed (apt-get install systemd)' }, async (t) => {
  for (const unit of unitFiles) {
    // verify also checks that the Documentation=man: pages exist: point man at ours.
    const r = spawnSync('systemd-analyze', ['verify', join(root, 'lib/systemd/system', unit)], {
      encoding: 'utf8',
      env: { ...process.env, MANPATH: join(root, 'usr/share/man'), SYSTEMD_LOG_LEVEL: 'notice' },
    });
    t.equal(r.status, 0, `${unit}: exit 0`);
    t.equal(r.stderr.trim(), '', `${unit}: nothing to report`);
  }
});

t.test('every unit has Description= and Documentation=man:dispatchd(8)', async (t) => {
  for (const unit of unitFiles) {
    const text = readFileSync(join(UNITS, unit), 'utf8');
    t.match(text, /^Description=\S/m, `${unit} has a Description=`);
    t.match(text, /^Documentation=man:dispatchd\(8\)/m, `${unit} points at dispatchd(8)`);
  }
});

t.test('services: Type=notify, watchdog, restart policy, start limits in [Unit], hardening', async (t) => {
  for (const unit of unitFiles.filter((u) => u.endsWith('.service'))) {
    const text = readFileSync(join(UNITS, unit), 'utf8');
    const section = (name: string) => text.split(/^\[/m).find((s) => s.startsWith(`${name}]`)) ?? '';
    t.match(section('Unit'), /^StartLimitIntervalSec=/m, `${unit}: StartLimitIntervalSec= in [Unit]`);
    t.match(section('Unit'), /^StartLimitBurst=/m, `${unit}: StartLimitBurst= in [Unit]`);
    t.notMatch(section('Service'), /^StartLimit/m, `${unit}: no StartLimit*= in [Service] (ignored there)`);
    t.match(section('Unit'), /^PartOf=dispatchd\.target$/m, `${unit}: PartOf=dispatchd.target`);
    // The metrics endpoint only reads the scoreboard: /dev/shm read-only for it.
    const shm = unit === 'dispatchd-metrics.service' ? 'ReadOnlyPaths=/dev/shm' : 'ReadWritePaths=/dev/shm';
    for (const line of ['User=dispatchd', 'ProtectSystem=strict', 'NoNewPrivileges=yes', 'CapabilityBoundingSet=', 'RestrictAddressFamilies=AF_UNIX', shm, 'SystemCallFilter=@system-service']) {
      t.match(section('Service'), new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), `${unit}: ${line}`);
    }
    t.notMatch(text, /^MemoryDenyWriteExecute=yes/m, `${unit}: no MemoryDenyWriteExecute= (it breaks V8's JIT)`);
    t.notMatch(text, /^RemoveIPC=yes/m, `${unit}: no RemoveIPC= (it would delete the scoreboard)`);
    if (unit === 'dispatchd-scoreboard.service') continue;
    // The metrics endpoint is no daemon of the dispatch path: no liveness pings, nothing to reload.
    const daemonOnly = unit === 'dispatchd-metrics.service' ? ['WatchdogSec=3s', 'ExecReload=/bin/kill -HUP $MAINPID'] : [];
    if (daemonOnly.length) t.notMatch(section('Service'), /^(WatchdogSec|ExecReload)=/m, `${unit}: no WatchdogSec=, no ExecReload=`);
    for (const line of ['Type=notify', 'NotifyAccess=main', 'WatchdogSec=3s', 'Restart=on-failure', 'RestartPreventExitStatus=64 78', 'ExecReload=/bin/kill -HUP $MAINPID'].filter((l) => !daemonOnly.includes(l))) {
      t.match(section('Service'), new RegExp(`^${line.replace(/[$]/g, '\\$')}$`, 'm'), `${unit}: ${line}`);
    }
  }
});

t.test('sockets: RemoveOnStop=yes and the documented names, owners and modes', async (t) => {
  for (const unit of unitFiles.filter((u) => u.endsWith('.socket'))) {
    const text = readFileSync(join(UNITS, unit), 'utf8');
    t.match(text, /^PartOf=dispatchd\.target$/m, `${unit}: PartOf=dispatchd.target`);
    if (unit === 'dispatchd-metrics.socket') {
      // A TCP port, loopback only; nothing in the file system to remove.
      t.match(text, /^ListenStream=127\.0\.0\.1:10391$/m, `${unit}: 127.0.0.1:10391`);
      t.match(text, /^FileDescriptorName=http$/m, `${unit}: the http fd`);
      t.notMatch(text, /^ListenStream=(0\.0\.0\.0:|\[::\]:|\d+$)/m, `${unit}: never on every address`);
      continue;
    }
    t.match(text, /^RemoveOnStop=yes$/m, `${unit}: RemoveOnStop=yes`);
    if (/^ListenFIFO=/m.test(text)) {
      t.match(text, /^FileDescriptorName=mailbox$/m, `${unit}: the mailbox fd`);
      t.match(text, /^SocketUser=dispatchd\nSocketGroup=dispatchd\nSocketMode=0600$/m, `${unit}: dispatchd:dispatchd 0600`);
    } else {
      t.match(text, /^FileDescriptorName=client$/m, `${unit}: the client fd`);
      t.match(text, /^SocketUser=root\nSocketGroup=dispatchd-clients\nSocketMode=0660$/m, `${unit}: root:dispatchd-clients 0660`);
    }
  }
});

const tmpfilesSkip = !have('systemd-tmpfiles')
  ? 'systemd-tmpfiles is not installed'
  : process.getuid?.() !== 0
    ? 'systemd-tmpfiles needs root to give /run/dispatchd its owner'
    : false;

t.test('tmpfiles.d creates /run/dispatchd and removes stale files at boot', { skip: tmpfilesSkip }, async (t) => {
  mkdirSync(join(root, 'run/dispatchd'), { recursive: true });
  mkdirSync(join(root, 'dev/shm'), { recursive: true });
  for (const stale of ['run/dispatchd/main.fifo', 'run/dispatchd/main.sock', 'dev/shm/dispatchd.scoreboard']) {
    copyFileSync(join(UNITS, 'tmpfiles.d', 'dispatchd.conf'), join(root, stale));
  }
  const r = spawnSync('systemd-tmpfiles', [`--root=${root}`, '--create', '--remove', '--boot', join(root, 'usr/lib/tmpfiles.d/dispatchd.conf')], { encoding: 'utf8' });
  t.equal(r.status, 0, `exit 0 (${r.stderr.trim()})`);
  t.equal(r.stderr.trim(), '', 'no complaint about the file');
  t.same(readdirSync(join(root, 'run/dispatchd')), [], 'stale FIFO and socket removed');
  t.same(readdirSync(join(root, 'dev/shm')), [], 'stale scoreboard removed');
});

t.test('sysusers.d creates user dispatchd and group dispatchd-clients', { skip: have('systemd-sysusers') ? false : 'systemd-sysusers is not installed' }, async (t) => {
  mkdirSync(join(root, 'etc'), { recursive: true });
  const r = spawnSync('systemd-sysusers', [`--root=${root}`, join(root, 'usr/lib/sysusers.d/dispatchd.conf')], { encoding: 'utf8' });
  t.equal(r.status, 0, `exit 0 (${r.stderr.trim()})`);
  const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
  const group = readFileSync(join(root, 'etc/group'), 'utf8');
  t.match(passwd, /^dispatchd:x:\d+:\d+:[^:]*:\/:\/usr\/sbin\/nologin$/m, 'system user dispatchd, no login');
  t.match(group, /^dispatchd:x:\d+:$/m, 'group dispatchd');
  t.match(group, /^dispatchd-clients:x:\d+:$/m, 'group dispatchd-clients');
});

t.test('the polkit rule grants restart and kill of main and the secondaries to user dispatchd only', async (t) => {
  const rules: Array<(action: unknown, subject: unknown) => unknown> = [];
  const Result = { YES: 'yes', NO: 'no', NOT_HANDLED: null };
  runInNewContext(readFileSync(join(UNITS, 'polkit', 'dispatchd.rules'), 'utf8'), {
    polkit: { Result, addRule: (fn: (a: unknown, s: unknown) => unknown) => rules.push(fn), addAdminRule: () => undefined, log: () => undefined },
  });
  t.equal(rules.length, 1, 'one rule');
  const decide = (user: string, unit: string, verb: string, id = 'org.freedesktop.systemd1.manage-units') =>
    rules[0]!({ id, lookup: (k: string) => ({ unit, verb })[k] }, { user });
  const cases: Array<[string, string, string, string | null, string?]> = [
    ['dispatchd', 'dispatchd-main.service', 'restart', 'yes'],
    ['dispatchd', 'dispatchd-secondary@1.service', 'restart', 'yes'],
    ['dispatchd', 'dispatchd-secondary@2.service', 'kill', 'yes'],
    ['dispatchd', 'dispatchd-secondary@62.service', 'restart', 'yes'],
    ['dispatchd', 'dispatchd-watchdog.service', 'restart', null],
    ['dispatchd', 'dispatchd-scoreboard.service', 'restart', null],
    ['dispatchd', 'dispatchd-evil.service', 'restart', null],
    ['dispatchd', 'dispatchd-secondary@x.service', 'restart', null],
    ['dispatchd', 'dispatchd-secondary@1.socket', 'restart', null],
    ['dispatchd', 'dispatchd-main.service', 'stop', null],
    ['dispatchd', 'dispatchd-main.service', 'start', null],
    ['dispatchd', 'dispatchd-main.socket', 'restart', null],
    ['dispatchd', 'dispatchd.target', 'restart', null],
    ['dispatchd', 'ssh.service', 'restart', null],
    ['dispatchd', 'xdispatchd-main.service', 'restart', null],
    ['nobody', 'dispatchd-main.service', 'restart', null],
    ['dispatchd', 'dispatchd-main.service', 'restart', null, 'org.freedesktop.systemd1.manage-unit-files'],
  ];
  for (const [user, unit, verb, expected, id] of cases) {
    t.equal(decide(user, unit, verb, id) ?? null, expected, `${user} ${verb} ${unit}${id ? ` (${id})` : ''}: ${expected ?? 'not handled'}`);
  }
});
