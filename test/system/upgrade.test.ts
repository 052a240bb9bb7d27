/**
 * Installing a newer .deb over a running one leaves every unit that was running active,
 * on the new version (restarted after the new files were unpacked).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import t from 'tap';
import { ensureDeb } from './lib/deb.js';
import { REPO } from './lib/repo.js';
import { describe } from './lib/sandbox.js';
import { DEB_DIR, install, installedSuite, journalErrors, SERVICES, SOCKETS } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

/** The same package under a higher version: what an upgrade looks like to dpkg. */
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
  const path = join(dir, `dispatchd_${version}.deb`);
  run('dpkg-deb', ['--root-owner-group', '-b', tree, path]);
  return { path, version };
}

if (sb) {
  const pids = async (): Promise<Record<string, string>> => {
    const rec: Record<string, string> = {};
    for (const unit of SERVICES.filter((u) => u !== 'dispatchd-scoreboard.service')) rec[unit] = (await sb.show(unit, 'MainPID')).MainPID!;
    return rec;
  };

  t.test('a newer .deb over the running suite restarts every unit on the new version', async (t) => {
    const work = join(REPO, 'build', `system-test-upgrade-${process.pid}`);
    t.teardown(() => rmSync(work, { recursive: true, force: true }));
    const newer = newerDeb(await ensureDeb(), work);
    await sb.copyIn(DEB_DIR, newer.path);

    const before = await pids();
    t.equal((await sb.exec(['dispatchctl', 'request', 'echo', 'before'])).stdout.toString(), 'before', 'serving before');
    await install(sb, `${DEB_DIR}/${basename(newer.path)}`);

    t.equal((await sb.out("dpkg-query -W -f '${Version}' dispatchd")).trim(), newer.version, `dpkg has ${newer.version}`);
    for (const unit of [...SERVICES, ...SOCKETS, 'dispatchd.target']) {
      t.equal((await sb.show(unit, 'ActiveState')).ActiveState, 'active', `${unit} is active`);
    }
    const after = await pids();
    for (const [unit, pid] of Object.entries(after)) {
      t.not(pid, before[unit], `${unit} was restarted onto the new files (pid ${before[unit]} -> ${pid})`);
    }
    const r = await sb.exec(['dispatchctl', 'request', 'echo', 'after']);
    t.equal(r.stdout.toString(), 'after', describe('serving after the upgrade', r));
    t.equal(await journalErrors(sb, 'dispatchd-main'), '', 'no error logged by main');
  });
}
