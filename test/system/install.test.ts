/**
 * Installing the .deb under a real systemd leaves the suite enabled, active and serving;
 * status lists every daemon; paths have the documented owners and modes; no errors logged.
 */
import t from 'tap';
import { DAEMONS, installedSuite, journalErrors, SERVICES, SOCKETS, UNITS } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

if (sb) {
  t.test('dispatchd.target is enabled and active after apt-get install', async (t) => {
    t.equal((await sb.out('systemctl is-enabled dispatchd.target')).trim(), 'enabled');
    t.equal((await sb.out('systemctl is-active dispatchd.target')).trim(), 'active');
    for (const unit of [...SERVICES, ...SOCKETS]) {
      const s = await sb.show(unit, 'ActiveState', 'SubState');
      t.equal(s.ActiveState, 'active', `${unit} is active (${s.SubState})`);
    }
    for (const unit of DAEMONS) {
      const s = await sb.show(unit, 'Type', 'NotifyAccess', 'WatchdogUSec', 'StatusText');
      t.equal(s.Type, 'notify', `${unit} is Type=notify`);
      t.equal(s.WatchdogUSec, '3s', `${unit} has WatchdogSec=3s`);
      t.not(s.StatusText, '', `${unit} keeps STATUS= current (${s.StatusText})`);
    }
  });

  t.test('dispatchctl request echo hello prints hello', async (t) => {
    const r = await sb.exec(['dispatchctl', 'request', 'echo', 'hello']);
    t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr.trim()})`);
    t.equal(r.stdout.toString(), 'hello');
    const piped = await sb.exec(['dispatchctl', 'request', 'echo'], { input: 'from stdin' });
    t.equal(piped.stdout.toString(), 'from stdin', 'DATA from standard input when absent');
  });

  t.test('status --json lists main, secondary-1, secondary-2 and watchdog with live pids', async (t) => {
    const r = await sb.exec(['dispatchctl', 'status', '--json']);
    t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr.trim()})`);
    const status = JSON.parse(r.stdout.toString()) as { daemons: Array<{ name: string; pid: number; state: string; requests: number; heartbeat_age_ms: number }> };
    const byName = new Map(status.daemons.map((d) => [d.name, d]));
    const units: Record<string, string> = {
      main: 'dispatchd-main.service',
      'secondary-1': 'dispatchd-secondary@1.service',
      'secondary-2': 'dispatchd-secondary@2.service',
      watchdog: 'dispatchd-watchdog.service',
    };
    for (const [name, unit] of Object.entries(units)) {
      const d = byName.get(name);
      if (!t.ok(d, `${name} is listed`) || !d) continue;
      const { MainPID } = await sb.show(unit, 'MainPID');
      t.equal(d.pid, Number(MainPID), `${name}'s pid is ${unit}'s MainPID`);
      t.equal((await sb.sh(`test -d /proc/${d.pid}`)).code, 0, `${name}'s pid ${d.pid} is alive`);
      for (const key of ['state', 'requests', 'heartbeat_age_ms'] as const) t.ok(key in d, `${name} has ${key}`);
    }
    const table = await sb.exec(['dispatchctl', 'status']);
    t.equal(table.code, 0, 'the table form exits 0 too');
    for (const name of Object.keys(units)) t.match(table.stdout.toString(), name, `the table names ${name}`);
  });

  t.test('paths have the documented owners and modes', async (t) => {
    const stat = async (path: string): Promise<string> => (await sb.out(`stat -c '%U:%G %a %F' ${path}`)).trim();
    t.equal(await stat('/run/dispatchd'), 'root:root 755 directory');
    for (const sock of ['main', 'secondary-1', 'secondary-2']) {
      t.equal(await stat(`/run/dispatchd/${sock}.sock`), 'root:dispatchd-clients 660 socket', `${sock}.sock`);
    }
    for (const fifo of ['main', 'secondary-1', 'secondary-2', 'watchdog']) {
      t.equal(await stat(`/run/dispatchd/${fifo}.fifo`), 'dispatchd:dispatchd 600 fifo', `${fifo}.fifo`);
    }
    t.match(await stat('/dev/shm/dispatchd.scoreboard'), /^dispatchd:dispatchd 644 regular/, 'scoreboard');
    t.equal(await stat('/etc/dispatchd/dispatchd.conf'), 'root:root 644 regular file', 'conffile');
    const users = await sb.out('id dispatchd; getent group dispatchd-clients');
    t.match(users, /uid=\d+\(dispatchd\)/, 'system user dispatchd exists');
  });

  t.test('every daemon runs as dispatchd, unprivileged', async (t) => {
    for (const unit of DAEMONS) {
      const { MainPID } = await sb.show(unit, 'MainPID');
      const st = await sb.out(`ps -o user:32=,comm= -p ${MainPID}; grep ^CapEff /proc/${MainPID}/status`);
      t.match(st, /^dispatchd\s+node/m, `${unit} runs node as dispatchd`);
      t.match(st, /CapEff:\s+0+$/m, `${unit} has no capabilities`);
    }
  });

  t.test('every service runs in dispatchd.slice, which systemd-cgls shows as one group', async (t) => {
    for (const unit of SERVICES) t.equal((await sb.show(unit, 'Slice')).Slice, 'dispatchd.slice', `${unit}: Slice=dispatchd.slice`);
    for (const unit of DAEMONS) {
      const { ControlGroup } = await sb.show(unit, 'ControlGroup');
      t.equal(ControlGroup, `/dispatchd.slice/${unit}`, `${unit}: its cgroup is under /dispatchd.slice`);
    }
    const slice = await sb.show('dispatchd.slice', 'ActiveState', 'ControlGroup');
    t.equal(slice.ActiveState, 'active', 'dispatchd.slice is active');
    const cgls = await sb.out('systemd-cgls --no-pager -u dispatchd.slice');
    for (const unit of DAEMONS) t.match(cgls, unit, `systemd-cgls -u dispatchd.slice lists ${unit}`);
    const dropIns = (await sb.show('dispatchd-secondary@2.service', 'DropInPaths')).DropInPaths;
    t.match(dropIns, /\/lib\/systemd\/system\/dispatchd-\.service\.d\/10-hardening\.conf/, 'an instance takes the shared hardening drop-in');
  });

  t.test('systemctl reload re-reads the configuration without a restart', async (t) => {
    const daemons = DAEMONS;
    const before = await Promise.all(daemons.map(async (u) => (await sb.show(u, 'MainPID')).MainPID));
    const r = await sb.exec(['systemctl', 'reload', ...daemons]);
    t.equal(r.code, 0, `systemctl reload exits 0 (${r.stderr.trim()})`);
    const after = await Promise.all(daemons.map(async (u) => (await sb.show(u, 'MainPID')).MainPID));
    t.same(after, before, 'same processes: reloaded, not restarted');
    t.equal((await sb.exec(['dispatchctl', 'request', 'echo', 'reloaded'])).stdout.toString(), 'reloaded', 'still serving');
  });

  t.test('without /etc/dispatchd/dispatchd.conf the defaults apply: check-config says so, and a reload succeeds', async (t) => {
    // README "Configuration": every key is optional, and a missing file means the defaults. The
    // units pass the path to check-config on reload, which refused it as a missing file.
    await sb.out('mv /etc/dispatchd/dispatchd.conf /etc/dispatchd/dispatchd.conf.away');
    try {
      for (const args of [['check-config'], ['check-config', '/etc/dispatchd/dispatchd.conf']]) {
        const check = await sb.exec(['dispatchctl', ...args]);
        t.equal(check.code, 0, `dispatchctl ${args.join(' ')} exits 0 (${check.stderr.toString().trim()})`);
        t.match(check.stdout.toString(), /^dispatchctl: configuration '\/etc\/dispatchd\/dispatchd\.conf' is absent: the defaults apply, and are valid \(\d+ request types: /, 'and says the file is absent');
      }
      const r = await sb.exec(['systemctl', 'reload', ...DAEMONS]);
      t.equal(r.code, 0, `systemctl reload exits 0 (${r.stderr.toString().trim()})`);
      t.equal((await sb.exec(['dispatchctl', 'request', 'echo', 'defaults'])).stdout.toString(), 'defaults', 'still serving');
    } finally {
      await sb.out('mv /etc/dispatchd/dispatchd.conf.away /etc/dispatchd/dispatchd.conf');
    }
  });

  t.test("each daemon's bundle has its source map beside it, mapping back to the TypeScript (node --enable-source-maps)", async (t) => {
    // A position in main's bundle (where class MailboxReader is defined) looked up in the
    // installed map, with Node.js's own SourceMap: what --enable-source-maps does for a trace.
    const script = [
      "import fs from 'node:fs';",
      "import { SourceMap } from 'node:module';",
      "const dir = '/usr/lib/dispatchd/build/daemons';",
      "for (const d of ['main-server', 'secondary-server', 'watchdog', 'metrics']) if (!fs.existsSync(`${dir}/${d}/main.js.map`)) throw new Error(`no ${d}/main.js.map`);",
      "const code = fs.readFileSync(`${dir}/main-server/main.js`, 'utf8');",
      "const at = code.indexOf('MailboxReader=class');",
      "const before = code.slice(0, at).split('\\n');",
      "const map = new SourceMap(JSON.parse(fs.readFileSync(`${dir}/main-server/main.js.map`, 'utf8')));",
      "const e = map.findEntry(before.length - 1, before.at(-1).length);",
      "console.log(`${e.originalSource}:${e.originalLine + 1}`);",
    ].join('\n');
    const r = await sb.exec(['node', '--input-type=module', '-e', script]);
    t.equal(r.code, 0, `the maps are installed (${r.stderr.toString().trim()})`);
    const out = r.stdout.toString().trim();
    t.match(out, /daemons\/common\/mailbox\.ts:\d+$/, `main.js's MailboxReader maps to daemons/common/mailbox.ts (${out})`);
  });

  t.test('no errors in the journal in normal operation', async (t) => {
    t.equal(await journalErrors(sb, 'dispatchd-main'), '', 'journalctl -u dispatchd-main -p err is empty');
    for (const unit of UNITS) t.equal(await journalErrors(sb, unit), '', `no errors from ${unit}`);
  });
}
