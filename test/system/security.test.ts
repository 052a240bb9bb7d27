/**
 * Least privilege, checked on the installed suite under the real systemd:
 *  - owners and modes of every socket, FIFO, the segment and the configuration match the
 *    table in docs/ARCHITECTURE.md (parsed from it), and nothing undocumented lies there;
 *  - `systemd-analyze security` rates every dispatchd service 2.5 or lower;
 *  - an unprivileged local user cannot write a mailbox FIFO, alter or replace the
 *    scoreboard, plant a socket or FIFO, impersonate the watchdog (restart units over
 *    D-Bus, signal or notify for a daemon) or a secondary, nor send a request; a member of
 *    dispatchd-clients can send requests and nothing more;
 *  - the polkit rule lets user dispatchd (the watchdog) restart and kill main and the
 *    secondaries, and nothing else.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { describe, ROOT as REPO } from '../helpers/index.js';
import { installedSuite, journalNow, SERVICES, until } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

/** Rows of the "Users, owners and modes" table that name paths and a mode. */
function documentedModes(): Array<{ paths: string[]; owner: string; mode: string }> {
  const text = readFileSync(join(REPO, 'docs', 'ARCHITECTURE.md'), 'utf8');
  const section = text.split('## Users, owners and modes')[1]!.split('\n## ')[0]!;
  const rows: Array<{ paths: string[]; owner: string; mode: string }> = [];
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 5 || !/^0[0-7]{3}$/.test(cells[3]!)) continue;
    const names = [...cells[1]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    const dir = names[0]!.endsWith('/') ? names[0]! : names[0]!.slice(0, names[0]!.lastIndexOf('/') + 1);
    const paths = names.map((n) => (n.startsWith('/') ? n : dir + n)).flatMap((p) => (p.includes('N') && /-N\./.test(p) ? ['1', '2'].map((i) => p.replace('-N.', `-${i}.`)) : [p]));
    rows.push({ paths: paths.map((p) => p.replace(/\/$/, '')), owner: cells[2]!.replace(/`/g, '').split(' ')[0]!, mode: cells[3]!.replace(/^0/, '') });
  }
  return rows;
}

/** Runs a Python snippet as `user`; it prints one line per attempt: "what: OK" or "what: ERRNO". */
const PROBE = `
import errno, os, socket, sys
def attempt(what, fn):
    try:
        fn()
        print(what + ": OK")
    except OSError as e:
        print(what + ": " + errno.errorcode.get(e.errno, str(e.errno)))
def unix(op, path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        getattr(s, op)(path)
    finally:
        s.close()
SB = "/dev/shm/dispatchd.scoreboard"
for f in ("main", "secondary-1", "secondary-2", "watchdog"):
    attempt("write " + f + ".fifo", lambda f=f: os.close(os.open("/run/dispatchd/" + f + ".fifo", os.O_WRONLY | os.O_NONBLOCK)))
attempt("read scoreboard", lambda: os.close(os.open(SB, os.O_RDONLY)))
attempt("open scoreboard for writing", lambda: os.close(os.open(SB, os.O_RDWR)))
attempt("truncate scoreboard", lambda: os.truncate(SB, 0))
attempt("remove scoreboard", lambda: os.unlink(SB))
def replace():
    own = "/dev/shm/fake-scoreboard-" + str(os.getpid())
    with open(own, "wb") as f:
        f.write(b"DSPSCORE" + bytes(8248))
    try:
        os.rename(own, SB)
    finally:
        if os.path.exists(own):
            os.unlink(own)
attempt("replace scoreboard", replace)
attempt("plant a FIFO in /run/dispatchd", lambda: os.mkfifo("/run/dispatchd/secondary-9.fifo"))
attempt("plant a socket in /run/dispatchd", lambda: unix("bind", "/run/dispatchd/secondary-9.sock"))
attempt("remove main.sock", lambda: os.unlink("/run/dispatchd/main.sock"))
attempt("connect main.sock", lambda: unix("connect", "/run/dispatchd/main.sock"))
attempt("connect secondary-1.sock", lambda: unix("connect", "/run/dispatchd/secondary-1.sock"))
`;

if (sb) {
  const probe = async (user: string): Promise<Record<string, string>> => {
    const out = await sb.out(`runuser -u ${user} -- /usr/bin/python3 -c '${PROBE.replace(/'/g, "'\\''")}'`);
    return Object.fromEntries(out.trim().split('\n').map((l) => l.split(': ') as [string, string]));
  };
  const busctl = (user: string, method: string, ...args: string[]) =>
    sb.exec(['runuser', '-u', user, '--', 'busctl', 'call', 'org.freedesktop.systemd1', '/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager', method, ...args]);
  const mainPid = async () => (await sb.show('dispatchd-main.service', 'MainPID')).MainPID;

  t.before(async () => {
    await sb.out('useradd --no-create-home --shell /bin/sh mallory && useradd --no-create-home --shell /bin/sh --groups dispatchd-clients alice');
  });

  t.test('owners and modes are those of the table in docs/ARCHITECTURE.md', async (t) => {
    const rows = documentedModes();
    t.ok(rows.length >= 5, `${rows.length} rows with a mode`);
    const covered = new Set<string>();
    for (const row of rows) {
      const out = await sb.out(`for p in ${row.paths.join(' ')}; do stat -c '%n %U:%G %a' "$p"; done`);
      const lines = out.trim().split('\n');
      t.ok(lines.length >= row.paths.length, `${row.paths.join(', ')} exist`);
      for (const l of lines) {
        const [path, owner, mode] = l.split(' ');
        covered.add(path!);
        t.equal(`${owner} ${mode}`, `${row.owner} ${row.mode}`, `${path}: ${row.owner} 0${row.mode}`);
      }
    }
    const present = (await sb.out('ls -d /run/dispatchd/* /dev/shm/dispatchd*')).trim().split('\n');
    t.same(present.filter((p) => !covered.has(p)), [], 'nothing undocumented in /run/dispatchd or /dev/shm');
    t.match(await sb.out('getent passwd dispatchd'), /^dispatchd:x:\d{1,3}:\d+:[^:]*:\/:\/usr\/sbin\/nologin$/m, 'dispatchd is a system user (uid < 1000) with no login');
  });

  t.test('systemd-analyze security: exposure 2.5 or lower for every dispatchd service', async (t) => {
    // dispatchd-metrics.service is installed but off by default: analyzed all the same.
    for (const unit of [...SERVICES, 'dispatchd-metrics.service']) {
      const out = await sb.out(`systemd-analyze security --no-pager ${unit}`);
      const m = /Overall exposure level for \S+: ([\d.]+)/.exec(out);
      t.ok(m, `${unit}: an overall exposure level`);
      const level = Number(m?.[1]);
      t.comment(`${unit}: exposure ${level}`);
      t.ok(level <= 2.5, `${unit}: exposure ${level} <= 2.5`);
    }
  });

  t.test('an unprivileged user: no FIFO, no scoreboard write, no planted file, no request; may read the status', async (t) => {
    const r = await probe('mallory');
    for (const f of ['main', 'secondary-1', 'secondary-2', 'watchdog']) t.equal(r[`write ${f}.fifo`], 'EACCES', `cannot write ${f}.fifo (so cannot forge a reservation, a ready, a ping or a pong)`);
    t.equal(r['read scoreboard'], 'OK', 'can read the scoreboard');
    t.equal(r['open scoreboard for writing'], 'EACCES', 'cannot open the scoreboard for writing (so cannot claim a secondary slot)');
    t.equal(r['truncate scoreboard'], 'EACCES', 'cannot truncate it');
    t.equal(r['remove scoreboard'], 'EPERM', 'cannot remove it (/dev/shm is sticky)');
    t.equal(r['replace scoreboard'], 'EPERM', 'cannot replace it with a forged one');
    t.equal(r['plant a FIFO in /run/dispatchd'], 'EACCES', 'cannot plant a FIFO');
    t.equal(r['plant a socket in /run/dispatchd'], 'EACCES', 'cannot plant a socket (impersonate a secondary)');
    t.equal(r['remove main.sock'], 'EACCES', 'cannot remove a socket');
    t.equal(r['connect main.sock'], 'EACCES', 'cannot connect to main.sock');
    t.equal(r['connect secondary-1.sock'], 'EACCES', 'cannot connect to a secondary directly');

    const req = await sb.exec(['runuser', '-u', 'mallory', '--', 'dispatchctl', 'request', 'echo', 'hi']);
    t.equal(req.code, 69, 'dispatchctl request exits 69 (unavailable)');
    t.match(req.stderr, /permission denied: run as root or as a member of the dispatchd-clients group/, 'and says why and what to do');
    const st = await sb.exec(['runuser', '-u', 'mallory', '--', 'dispatchctl', 'status', '--json']);
    t.equal(st.code, 0, describe('dispatchctl status works for anyone', st));
    t.equal((await sb.exec(['runuser', '-u', 'mallory', '--', 'dispatchctl', 'scale', '5'])).code, 1, 'dispatchctl scale is refused');
    t.equal((await sb.out('dispatchctl scale')).trim(), 'secondaries: 2 enabled (1 2), running: 1 2', 'still 2 secondaries');
  });

  t.test('an unprivileged user cannot impersonate the watchdog or speak for a daemon', async (t) => {
    const pid = await mainPid();
    const restart = await busctl('mallory', 'RestartUnit', 'ss', 'dispatchd-main.service', 'replace');
    t.not(restart.code, 0, 'RestartUnit dispatchd-main.service over D-Bus is refused');
    t.match(restart.stderr, /Interactive authentication required|Access denied/, restart.stderr.trim());
    const kill = await busctl('mallory', 'KillUnit', 'ssi', 'dispatchd-main.service', 'main', '9');
    t.not(kill.code, 0, 'KillUnit is refused');
    const signal = await sb.exec(['runuser', '-u', 'mallory', '--', 'kill', '-STOP', pid]);
    t.not(signal.code, 0, 'kill -STOP of main is refused');
    const from = await journalNow(sb);
    const notify = await sb.exec(['runuser', '-u', 'mallory', '--', 'env', 'NOTIFY_SOCKET=/run/systemd/notify', 'systemd-notify', `--pid=${pid}`, 'STATUS=forged by mallory', 'WATCHDOG=trigger']);
    t.equal(notify.code, 0, describe('the forged message was sent', notify));
    // systemd received it and says it dropped it: the sender is not main's process.
    const dropped = await until('systemd to drop the forged message', 10_000, async () => {
      const j = await sb.out(`journalctl --no-pager -q --since '${from}' _PID=1 -g 'notify(cation)? message (of|from) PID' -o cat || true`);
      return j.trim() ? j.trim() : undefined;
    });
    t.match(dropped, /Cannot find unit for notify message of PID \d+, ignoring|reception only permitted for main PID/, dropped.split('\n')[0]!);
    t.notMatch((await sb.show('dispatchd-main.service', 'StatusText')).StatusText, /forged/, "an sd_notify message sent for main's pid is not credited to main (NotifyAccess=main)");
    t.equal(await mainPid(), pid, 'main is the same process');
    t.equal((await sb.show('dispatchd-main.service', 'ActiveState')).ActiveState, 'active');
  });

  t.test('a member of dispatchd-clients sends requests, and can do nothing more', async (t) => {
    const r = await sb.exec(['runuser', '-u', 'alice', '--', 'dispatchctl', 'request', 'echo', 'from alice']);
    t.equal(r.stdout.toString(), 'from alice', describe('alice is served', r));
    const p = await probe('alice');
    t.equal(p['connect main.sock'], 'OK', 'may connect to main.sock');
    t.equal(p['connect secondary-1.sock'], 'OK', 'may connect to a secondary (it still needs a lease from main)');
    for (const f of ['main', 'secondary-1', 'secondary-2', 'watchdog']) t.equal(p[`write ${f}.fifo`], 'EACCES', `cannot write ${f}.fifo`);
    t.equal(p['open scoreboard for writing'], 'EACCES', 'cannot write the scoreboard');
    t.equal(p['plant a socket in /run/dispatchd'], 'EACCES', 'cannot plant a socket');
    const forged = await sb.sh(`runuser -u alice -- /usr/bin/python3 -c '
import json, socket, struct
h = json.dumps({"op": "run", "lease": "0" * 32, "generation": 1, "type": "echo"}).encode()
s = socket.socket(socket.AF_UNIX); s.connect("/run/dispatchd/secondary-1.sock")
s.sendall(b"DQ\\x01\\x00" + struct.pack(">II", len(h), 2) + h + b"hi")
hdr = s.recv(12); n = struct.unpack(">I", hdr[4:8])[0]; print(s.recv(n).decode())'`);
    t.match(forged.stdout.toString(), /"code":\s*"LEASE_(STALE|UNKNOWN)"/, 'a made-up lease presented to a secondary is refused');
  });

  t.test('polkit: user dispatchd (the watchdog) may try-restart and kill main and the secondaries, nothing else', async (t) => {
    await sb.out("printf '[Service]\\nType=oneshot\\nRemainAfterExit=yes\\nExecStart=/bin/true\\n' > /etc/systemd/system/victim.service && systemctl daemon-reload && systemctl start victim.service");
    const before = (await sb.show('dispatchd-secondary@2.service', 'MainPID')).MainPID;
    const ok = await busctl('dispatchd', 'TryRestartUnit', 'ss', 'dispatchd-secondary@2.service', 'fail');
    t.equal(ok.code, 0, describe('TryRestartUnit dispatchd-secondary@2.service is allowed', ok));
    await until('secondary 2 restarted', 10_000, async () => {
      const s = await sb.show('dispatchd-secondary@2.service', 'MainPID', 'ActiveState');
      return s.ActiveState === 'active' && s.MainPID !== before && s.MainPID !== '0' ? true : undefined;
    });
    // What the watchdog may do cannot bring back a secondary the operator stopped.
    const stopped = await busctl('dispatchd', 'TryRestartUnit', 'ss', 'dispatchd-secondary@7.service', 'fail');
    t.equal(stopped.code, 0, describe('TryRestartUnit of a secondary that is not running is allowed', stopped));
    t.equal((await sb.show('dispatchd-secondary@7.service', 'ActiveState')).ActiveState, 'inactive', 'and starts nothing');
    const cont = await busctl('dispatchd', 'KillUnit', 'ssi', 'dispatchd-main.service', 'main', '18');
    t.equal(cont.code, 0, describe('KillUnit dispatchd-main.service (SIGCONT) is allowed', cont));
    const refused: Array<[string, ...string[]]> = [
      ['RestartUnit', 'ss', 'dispatchd-secondary@2.service', 'replace'], // would start a stopped one
      ['TryRestartUnit', 'ss', 'victim.service', 'fail'],
      ['RestartUnit', 'ss', 'victim.service', 'replace'],
      ['KillUnit', 'ssi', 'victim.service', 'main', '18'],
      ['StopUnit', 'ss', 'dispatchd-main.service', 'replace'],
      ['StartUnit', 'ss', 'dispatchd-secondary@7.service', 'replace'],
      ['TryRestartUnit', 'ss', 'dispatchd-watchdog.service', 'fail'],
      ['RestartUnit', 'ss', 'dispatchd-scoreboard.service', 'replace'],
      ['RestartUnit', 'ss', 'dispatchd-main.socket', 'replace'],
      ['RestartUnit', 'ss', 'dispatchd.target', 'replace'],
    ];
    for (const [method, ...args] of refused) {
      const r = await busctl('dispatchd', method, ...args);
      t.not(r.code, 0, `${method} ${args[1]} is refused (${r.stderr.trim()})`);
    }
    t.equal((await sb.show('dispatchd-main.service', 'ActiveState')).ActiveState, 'active', 'main still runs');
    t.equal((await sb.exec(['dispatchctl', 'request', 'echo', 'still'])).stdout.toString(), 'still', 'the suite still serves');
  });
}
