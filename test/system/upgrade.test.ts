/**
 * Installing a newer .deb over a running suite, under request load: every unit that was
 * running is active again on the new version (its journal says which), no request fails,
 * and the sockets and the scoreboard are not restarted (clients wait in the backlog while
 * a daemon restarts). The newer version is the built package, rebuilt with a higher
 * version in its control file and its package.json (what the daemons report).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import t from 'tap';
import { describe, ensureDeb, ROOT as REPO } from '../helpers/index.js';
import { describeLoad, startLoadInside, stopLoadInside, tools } from './lib/inside.js';
import { DAEMONS, DEB_DIR, install, installedSuite, journalErrors, SERVICES, SOCKETS } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

/** The same package under a higher version: what an upgrade looks like to dpkg and to the daemons. */
function newerDeb(deb: string, dir: string): { path: string; version: string } {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const tree = join(dir, 'tree');
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  };
  run('dpkg-deb', ['-R', deb, tree]);
  const control = readFileSync(join(tree, 'DEBIAN', 'control'), 'utf8');
  const old = /^Version: (.+)$/m.exec(control)![1]!;
  const version = `${old}+upgradetest1`;
  writeFileSync(join(tree, 'DEBIAN', 'control'), control.replace(/^Version: .+$/m, `Version: ${version}`));
  // The daemons report package.json's version: stamp it, and keep md5sums true to the files.
  const pkgRel = 'usr/lib/dispatchd/package.json';
  const pkg = JSON.parse(readFileSync(join(tree, pkgRel), 'utf8')) as { version: string };
  pkg.version = version;
  const text = JSON.stringify(pkg, null, 2) + '\n';
  writeFileSync(join(tree, pkgRel), text);
  const md5 = createHash('md5').update(text).digest('hex');
  const sums = readFileSync(join(tree, 'DEBIAN', 'md5sums'), 'utf8').replace(new RegExp(`^[0-9a-f]{32}  ${pkgRel}$`, 'm'), `${md5}  ${pkgRel}`);
  writeFileSync(join(tree, 'DEBIAN', 'md5sums'), sums);
  const path = join(dir, `dispatchd_${version}.deb`);
  run('dpkg-deb', ['--root-owner-group', '-b', tree, path]);
  return { path, version };
}

if (sb) {
  const show = async (units: string[], prop: string): Promise<Record<string, string>> => {
    const rec: Record<string, string> = {};
    for (const unit of units) rec[unit] = (await sb.show(unit, prop))[prop]!;
    return rec;
  };

  t.test('a newer .deb over the running suite, under load: every daemon on the new version, no request failed', async (t) => {
    const work = join(REPO, 'build', `system-test-upgrade-${process.pid}`);
    t.teardown(() => rmSync(work, { recursive: true, force: true }));
    const newer = newerDeb(await ensureDeb(), work);
    await sb.copyIn(DEB_DIR, newer.path);

    const before = await show(DAEMONS, 'MainPID');
    const socketsBefore = await show(SOCKETS, 'ActiveEnterTimestampMonotonic');
    const createdBefore = (JSON.parse(await sb.out('dispatchctl status --json')) as { created_at: string }).created_at;
    const running = await startLoadInside(await tools(sb), { clients: 6, pauseMs: 10, types: 'echo', durationMs: 300_000, timeoutMs: 30_000, readyAfter: 20 });
    t.teardown(running.stop); // a failed assertion must not leave it running
    await install(sb, `${DEB_DIR}/${basename(newer.path)}`);
    const load = await stopLoadInside(running);

    t.equal((await sb.out("dpkg-query -W -f '${Version}' dispatchd")).trim(), newer.version, `dpkg has ${newer.version}`);
    for (const unit of [...SERVICES, ...SOCKETS, 'dispatchd.target']) {
      t.equal((await sb.show(unit, 'ActiveState')).ActiveState, 'active', `${unit} is active`);
    }
    const after = await show(DAEMONS, 'MainPID');
    for (const unit of DAEMONS) {
      t.not(after[unit], before[unit], `${unit} was restarted onto the new files (pid ${before[unit]} -> ${after[unit]})`);
      const started = await sb.out(`journalctl --no-pager -q -u ${unit} _PID=${after[unit]} -g 'started, dispatchd' -o cat`);
      t.match(started, `dispatchd ${newer.version}`, `${unit} (pid ${after[unit]}) runs ${newer.version}`);
    }
    t.same(await show(SOCKETS, 'ActiveEnterTimestampMonotonic'), socketsBefore, 'no socket unit was restarted: their backlogs and FIFOs stayed open');
    t.equal((JSON.parse(await sb.out('dispatchctl status --json')) as { created_at: string }).created_at, createdBefore, 'the scoreboard was kept');
    t.ok(load.succeeded > 50, `requests flowed during the upgrade (${load.succeeded})`);
    t.equal(load.failed, 0, `no request failed: ${describeLoad(load)}`);
    t.comment(`load during the upgrade: ${describeLoad(load)}`);
    const r = await sb.exec(['dispatchctl', 'request', 'echo', 'after']);
    t.equal(r.stdout.toString(), 'after', describe('serving after the upgrade', r));
    t.equal(await journalErrors(sb, 'dispatchd-main'), '', 'no error logged by main');
  });
}
