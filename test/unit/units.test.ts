/**
 * The shipped units, tmpfiles.d, sysusers.d, polkit files and postinst, checked by the tools
 * that will read them, on copies laid out as the package installs them:
 * `systemd-analyze verify` on every unit (man pages included) and `systemd-analyze security
 * --offline` on every service with the shared drop-ins, systemd-tmpfiles and
 * systemd-sysusers on a scratch root, the postinst's enablement links made there, and the
 * polkit rule evaluated against the requests the watchdog makes and a few it must not be
 * granted. Names, paths, fd names, entry points and the instance bound are checked against
 * daemons/common/topology.ts.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import { HTTP_LIMITS } from '../../daemons/metrics/metrics-server.js';
import {
  clientSocketPath,
  DEFAULT_SECONDARIES,
  entryPoint,
  FD_NAMES,
  isSecondaryInstance,
  MAIN,
  mailboxPath,
  MAX_SECONDARIES,
  secondary,
  serviceUnit,
  socketUnits,
  SUITE_SLICE,
  SUITE_TARGET,
  suiteDaemons,
  unitsOf,
  WATCHDOG,
  type DaemonId,
  WORKER_SERVICE_TEMPLATE,
  WORKER_SOCKET_TEMPLATE,
  workerSocketPath,
} from '../../daemons/common/topology.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const UNITS = join(REPO, 'units');
const unitFiles = readdirSync(UNITS).filter((f) => /\.(service|socket|target|slice)$/.test(f)).sort();
/** The drop-in every dispatchd service shares (a prefix drop-in: systemd.unit(5)). */
const SHARED = 'dispatchd-.service.d';
const sharedDropIns = readdirSync(join(UNITS, SHARED)).filter((f) => f.endsWith('.conf')).sort();

const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** A scratch root with the files where the package puts them. */
function installedLayout(): string {
  const root = mkdtempSync(join(tmpdir(), 'dispatchd-units-'));
  const put = (from: string, dir: string, name?: string) => {
    mkdirSync(join(root, dir), { recursive: true });
    copyFileSync(from, join(root, dir, name ?? from.split('/').pop()!));
  };
  for (const f of unitFiles) put(join(UNITS, f), 'lib/systemd/system');
  for (const f of sharedDropIns) put(join(UNITS, SHARED, f), `lib/systemd/system/${SHARED}`);
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
    'dispatchd-worker@.service',
    'dispatchd-worker@.socket',
    'dispatchd.slice',
    'dispatchd.target',
  ]);
  t.same(sharedDropIns, ['10-hardening.conf', '10-slice.conf', '10-suite.conf'], 'and the drop-ins every service shares');
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

/**
 * A unit's text followed by the drop-ins that apply to it, as systemd reads them: the shared
 * ones (every dispatchd-*.service) and its own `UNIT.d/`.
 */
function effective(unit: string): string {
  const own = readFileSync(join(UNITS, unit), 'utf8');
  if (!/^dispatchd-.*\.service$/.test(unit)) return own;
  const ownDir = join(UNITS, `${unit}.d`);
  const ownDropIns = existsSync(ownDir) ? readdirSync(ownDir).filter((f) => f.endsWith('.conf')).sort().map((f) => readFileSync(join(ownDir, f), 'utf8')) : [];
  return [own, ...sharedDropIns.map((f) => readFileSync(join(UNITS, SHARED, f), 'utf8')), ...ownDropIns].join('\n');
}

/** Every section `[name]` of an ini text, joined. */
const sectionOf = (text: string, name: string) => text.split(/^\[/m).filter((s) => s.startsWith(`${name}]`)).join('\n');

/** key=value lines (no comments) of an ini text. */
const settings = (text: string) => text.split('\n').filter((l) => /^[A-Za-z]+=/.test(l));

t.test('services: Type=notify, watchdog, restart policy, start limits in [Unit], hardening', async (t) => {
  for (const unit of unitFiles.filter((u) => u.endsWith('.service'))) {
    const text = effective(unit);
    const section = (name: string) => sectionOf(text, name);
    t.match(section('Unit'), /^StartLimitIntervalSec=/m, `${unit}: StartLimitIntervalSec= in [Unit]`);
    t.match(section('Unit'), /^StartLimitBurst=/m, `${unit}: StartLimitBurst= in [Unit]`);
    t.notMatch(section('Service'), /^StartLimit/m, `${unit}: no StartLimit*= in [Service] (ignored there)`);
    t.match(section('Unit'), /^PartOf=dispatchd\.target$/m, `${unit}: PartOf=dispatchd.target`);
    const worker = unit === WORKER_SERVICE_TEMPLATE;
    for (const line of [...(worker ? [] : ['User=dispatchd']), 'ProtectSystem=strict', 'NoNewPrivileges=yes', 'CapabilityBoundingSet=', 'RestrictAddressFamilies=AF_UNIX', 'ReadWritePaths=/dev/shm', 'SystemCallFilter=@system-service', `Slice=${SUITE_SLICE}`]) {
      t.match(section('Service'), new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), `${unit}: ${line}`);
    }
    t.notMatch(text, /^MemoryDenyWriteExecute=yes/m, `${unit}: no MemoryDenyWriteExecute= (it breaks V8's JIT)`);
    t.notMatch(text, /^RemoveIPC=yes/m, `${unit}: no RemoveIPC= (it would delete the scoreboard)`);
    if (unit === 'dispatchd-scoreboard.service') continue;
    if (worker) {
      // A persistent worker is the user's program, no daemon of the suite: a user of its own
      // (the generator's drop-in may name one), restarted whatever its end, no READY=1 expected.
      for (const line of ['DynamicUser=yes', 'Type=simple', 'Restart=always', `Sockets=dispatchd-worker@%i.socket`]) {
        t.match(section('Service'), new RegExp(`^${line.replace(/[.$]/g, '\\$&')}$`, 'm'), `${unit}: ${line}`);
      }
      continue;
    }
    // The metrics endpoint is no daemon of the dispatch path: no liveness pings, nothing to reload.
    const daemonOnly = unit === 'dispatchd-metrics.service' ? ['WatchdogSec=3s', 'ExecReload=/bin/kill -HUP $MAINPID'] : [];
    if (daemonOnly.length) t.notMatch(section('Service'), /^(WatchdogSec|ExecReload)=/m, `${unit}: no WatchdogSec=, no ExecReload=`);
    for (const line of ['Type=notify', 'NotifyAccess=main', 'WatchdogSec=3s', 'Restart=on-failure', 'RestartPreventExitStatus=64 78', 'ExecReload=/bin/kill -HUP $MAINPID'].filter((l) => !daemonOnly.includes(l))) {
      t.match(section('Service'), new RegExp(`^${line.replace(/[$]/g, '\\$')}$`, 'm'), `${unit}: ${line}`);
    }
  }
});

t.test('the shared drop-ins: written once, applied to every service, in dispatchd.slice', async (t) => {
  const shared = sharedDropIns.flatMap((f) => settings(readFileSync(join(UNITS, SHARED, f), 'utf8')));
  t.ok(shared.length >= 25, `${shared.length} shared settings`);
  t.ok(shared.includes(`Slice=${SUITE_SLICE}`), 'Slice= is shared');
  for (const unit of unitFiles.filter((u) => u.endsWith('.service'))) {
    const keys = new Set(settings(readFileSync(join(UNITS, unit), 'utf8')).map((l) => l.split('=')[0]));
    t.same(shared.filter((l) => keys.has(l.split('=')[0]!)), [], `${unit} repeats none of the shared settings`);
  }
  const slice = readFileSync(join(UNITS, SUITE_SLICE), 'utf8');
  t.match(sectionOf(slice, 'Unit'), /^Description=\S/m, `${SUITE_SLICE} describes itself`);
  t.notMatch(slice, /^\[Slice\]/m, 'it sets no resource limit of its own');
});

t.test('systemd-analyze security --offline: every service 2.5 or lower with the shared drop-ins, far worse without', { skip: have('systemd-analyze') ? false : 'systemd-analyze is not installed' }, async (t) => {
  const exposure = (dir: string, unit: string): number => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', `--root=${dir}`, '--no-pager', unit], { encoding: 'utf8' });
    const m = /Overall exposure level for \S+: ([\d.]+)/.exec(r.stdout);
    t.ok(m, `${unit}: an overall exposure level (${r.stderr.trim()})`);
    return Number(m?.[1]);
  };
  const services = ['dispatchd-scoreboard.service', ...suiteDaemons(1).map(serviceUnit)];
  for (const unit of services) {
    const level = exposure(root, unit);
    t.comment(`${unit}: exposure ${level}`);
    t.ok(level <= 2.5, `${unit}: exposure ${level} <= 2.5`);
  }
  // The same units without the drop-ins: the hardening really comes from them.
  const bare = installedLayout();
  t.teardown(() => rmSync(bare, { recursive: true, force: true }));
  rmSync(join(bare, 'lib/systemd/system', SHARED), { recursive: true });
  t.ok(exposure(bare, serviceUnit(MAIN)) > 5, 'without the drop-ins main would be exposed');
});

/** The unit file that defines a unit: itself, or its template for an instance. */
const unitFile = (unit: string) => readFileSync(join(UNITS, unit.replace(/@[^.]+\./, '@.')), 'utf8');
/** A setting of a unit, with %i replaced by the instance. */
function setting(unit: string, key: string): string[] {
  const instance = /@([^.]+)\./.exec(unit)?.[1] ?? '';
  return [...unitFile(unit).matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!.replaceAll('%i', instance));
}

t.test('the units name the sockets, FIFOs, fds and entry points of topology.ts', async (t) => {
  const dir = '/run/dispatchd';
  const ids: DaemonId[] = [MAIN, WATCHDOG, secondary(1), secondary(MAX_SECONDARIES)];
  for (const id of ids) {
    const service = serviceUnit(id);
    t.same(setting(service, 'Sockets').join(' ').split(' '), socketUnits(id), `${service}: Sockets= are topology's socket units`);
    t.match(setting(service, 'ExecStart')[0], `/usr/lib/dispatchd/build/${entryPoint(id.kind)} `, `${service}: runs topology's entry point`);
    const [client, mailbox] = id.kind === 'watchdog' ? [undefined, socketUnits(id)[0]!] : socketUnits(id);
    if (client && id.kind !== 'watchdog') {
      t.same(setting(client, 'ListenStream'), [clientSocketPath(dir, id)], `${client}: the client socket`);
      t.same(setting(client, 'FileDescriptorName'), [FD_NAMES.client]);
      t.same(setting(client, 'Service'), [service]);
    }
    t.same(setting(mailbox!, 'ListenFIFO'), [mailboxPath(dir, id)], `${mailbox}: the mailbox FIFO`);
    t.same(setting(mailbox!, 'FileDescriptorName'), [FD_NAMES.mailbox]);
    t.same(setting(mailbox!, 'Service'), [service]);
  }
  const target = readFileSync(join(UNITS, SUITE_TARGET), 'utf8');
  for (const id of [MAIN, WATCHDOG]) for (const unit of unitsOf(id)) t.match(target, new RegExp(`^Wants=.*\\b${unit.replace(/[.]/g, '\\.')}\\b`, 'm'), `${SUITE_TARGET} wants ${unit}`);
});

t.test('the instance bound of the units is topology.ts MAX_SECONDARIES', async (t) => {
  for (const unit of unitFiles) {
    for (const m of readFileSync(join(UNITS, unit), 'utf8').matchAll(/\b1\.\.(\d+)\b/g)) t.equal(Number(m[1]), MAX_SECONDARIES, `${unit}: "${m[0]}"`);
  }
});

const postinstSkip = !have('systemctl') ? 'systemctl is not installed' : false;

t.test('postinst enables topology.ts DEFAULT_SECONDARIES through the templates [Install], once', { skip: postinstSkip }, async (t) => {
  const dir = installedLayout();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const postinst = join(REPO, 'packaging', 'debian', 'dispatchd.postinst');
  const run = (...args: string[]) => spawnSync('sh', [postinst, ...args], { encoding: 'utf8', env: { ...process.env, DPKG_ROOT: dir } });
  const wants = join(dir, 'etc/systemd/system', `${SUITE_TARGET}.wants`);
  const links = () =>
    readdirSync(wants)
      .sort()
      .map((f) => `${f} -> ${readlinkSync(join(wants, f))}`);

  const first = run('configure', '');
  t.equal(first.status, 0, `a first install configures (${first.stderr.trim()})`);
  const expected = Array.from({ length: DEFAULT_SECONDARIES }, (_, i) => unitsOf(secondary(i + 1)))
    .flat()
    .map((u) => `${u} -> /lib/systemd/system/${u.replace(/@[^.]+\./, '@.')}`)
    .sort();
  t.same(links(), expected, `secondaries 1..${DEFAULT_SECONDARIES} with their two sockets, linked to the templates`);

  // An administrator scaled to 1 (dispatchctl scale 1): an upgrade leaves that alone.
  for (const u of unitsOf(secondary(2))) rmSync(join(wants, u));
  t.equal(run('configure', '0.0.1').status, 0, 'an upgrade configures');
  t.same(links(), expected.filter((l) => l.includes('@1.')), "the administrator's number is kept");
});

t.test('sockets: RemoveOnStop=yes and the documented names, owners and modes', async (t) => {
  for (const unit of unitFiles.filter((u) => u.endsWith('.socket'))) {
    const text = readFileSync(join(UNITS, unit), 'utf8');
    if (unit === 'dispatchd-metrics.socket') {
      // Stopped with the suite, started with it when enabled, but never restarted under its
      // running service (which holds the port): StopPropagatedFrom=, not PartOf=.
      t.match(text, /^StopPropagatedFrom=dispatchd\.target$/m, `${unit}: StopPropagatedFrom=dispatchd.target`);
      t.notMatch(text, /^PartOf=/m, `${unit}: no PartOf= (a restart of the suite would restart it)`);
      t.match(text, /^WantedBy=sockets\.target dispatchd\.target$/m, `${unit}: enabled, wanted at boot and by the suite`);
      // A TCP port, loopback only; nothing in the file system to remove.
      t.match(text, /^ListenStream=127\.0\.0\.1:10391$/m, `${unit}: 127.0.0.1:10391`);
      t.match(text, /^FileDescriptorName=http$/m, `${unit}: the http fd`);
      t.match(text, new RegExp(`^Backlog=${HTTP_LIMITS.backlog}$`, 'm'), `${unit}: Backlog= is the backlog the service listens with again (HTTP_LIMITS.backlog)`);
      t.notMatch(text, /^ListenStream=(0\.0\.0\.0:|\[::\]:|\d+$)/m, `${unit}: never on every address`);
      continue;
    }
    t.match(text, /^PartOf=dispatchd\.target$/m, `${unit}: PartOf=dispatchd.target`);
    t.match(text, /^RemoveOnStop=yes$/m, `${unit}: RemoveOnStop=yes`);
    if (unit === WORKER_SOCKET_TEMPLATE) {
      t.match(text, /^FileDescriptorName=worker$/m, `${unit}: the worker fd`);
      t.match(text, /^SocketUser=dispatchd\nSocketGroup=dispatchd\nSocketMode=0600$/m, `${unit}: dispatchd:dispatchd 0600 (only the secondaries connect)`);
      t.same(setting('dispatchd-worker@resize-3.socket', 'ListenStream'), [workerSocketPath('/run/dispatchd', { type: 'resize', index: 3 })], `${unit}: topology's worker socket`);
      continue;
    }
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

t.test('the polkit rule grants try-restart and kill of main and the secondaries to user dispatchd only', async (t) => {
  const rules: Array<(action: unknown, subject: unknown) => unknown> = [];
  const Result = { YES: 'yes', NO: 'no', NOT_HANDLED: null };
  runInNewContext(readFileSync(join(UNITS, 'polkit', 'dispatchd.rules'), 'utf8'), {
    polkit: { Result, addRule: (fn: (a: unknown, s: unknown) => unknown) => rules.push(fn), addAdminRule: () => undefined, log: () => undefined },
  });
  t.equal(rules.length, 1, 'one rule');
  const decide = (user: string, unit: string, verb: string, id = 'org.freedesktop.systemd1.manage-units') =>
    rules[0]!({ id, lookup: (k: string) => ({ unit, verb })[k] }, { user });
  const cases: Array<[string, string, string, string | null, string?]> = [
    ['dispatchd', 'dispatchd-main.service', 'try-restart', 'yes'],
    ['dispatchd', 'dispatchd-secondary@1.service', 'try-restart', 'yes'],
    ['dispatchd', 'dispatchd-secondary@2.service', 'kill', 'yes'],
    ['dispatchd', 'dispatchd-secondary@62.service', 'try-restart', 'yes'],
    ['dispatchd', 'dispatchd-watchdog.service', 'try-restart', null],
    ['dispatchd', 'dispatchd-scoreboard.service', 'try-restart', null],
    ['dispatchd', 'dispatchd-evil.service', 'try-restart', null],
    ['dispatchd', 'dispatchd-secondary@x.service', 'try-restart', null],
    ['dispatchd', 'dispatchd-secondary@1.socket', 'try-restart', null],
    ['dispatchd', 'dispatchd-main.service', 'stop', null],
    ['dispatchd', 'dispatchd-main.service', 'restart', null], // would start a stopped unit
    ['dispatchd', 'dispatchd-secondary@1.service', 'restart', null],
    ['dispatchd', 'dispatchd-worker@resize-1.service', 'restart', null],
    ['dispatchd', 'dispatchd-main.service', 'start', null],
    ['dispatchd', 'dispatchd-main.socket', 'try-restart', null],
    ['dispatchd', 'dispatchd.target', 'try-restart', null],
    ['dispatchd', 'ssh.service', 'try-restart', null],
    ['dispatchd', 'xdispatchd-main.service', 'try-restart', null],
    ['dispatchd', `dispatchd-secondary@${MAX_SECONDARIES + 1}.service`, 'try-restart', null],
    ['dispatchd', 'dispatchd-secondary@01.service', 'try-restart', null],
    ['nobody', 'dispatchd-main.service', 'try-restart', null],
    ['dispatchd', 'dispatchd-worker@resize-1.service', 'try-restart', 'yes'],
    ['dispatchd', 'dispatchd-worker@a-b-64.service', 'try-restart', 'yes'],
    ['dispatchd', 'dispatchd-worker@resize-1.service', 'kill', null],
    ['dispatchd', 'dispatchd-worker@resize-1.service', 'stop', null],
    ['dispatchd', 'dispatchd-worker@resize-1.socket', 'try-restart', null],
    ['dispatchd', 'dispatchd-worker@resize-65.service', 'try-restart', null],
    ['dispatchd', 'dispatchd-worker@resize-0.service', 'try-restart', null],
    ['dispatchd', 'dispatchd-worker@Resize-1.service', 'try-restart', null],
    ['nobody', 'dispatchd-worker@resize-1.service', 'try-restart', null],
    ['dispatchd', 'dispatchd-main.service', 'try-restart', null, 'org.freedesktop.systemd1.manage-unit-files'],
  ];
  for (const [user, unit, verb, expected, id] of cases) {
    t.equal(decide(user, unit, verb, id) ?? null, expected, `${user} ${verb} ${unit}${id ? ` (${id})` : ''}: ${expected ?? 'not handled'}`);
  }
  const granted = Array.from({ length: 1002 }, (_, n) => n).filter((n) => decide('dispatchd', `dispatchd-secondary@${n}.service`, 'try-restart') === 'yes');
  t.same(granted, Array.from({ length: 1002 }, (_, n) => n).filter(isSecondaryInstance), `exactly the secondaries 1..${MAX_SECONDARIES} of topology.ts`);
});
