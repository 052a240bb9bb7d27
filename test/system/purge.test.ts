/**
 * apt-get remove stops everything and leaves no process, FIFO or segment; apt-get purge
 * also removes /etc/dispatchd, every file the package installed and the enablement links
 * of the secondaries (a scaled-up one included); installing again after the purge gives a
 * working suite with its defaults.
 */
import { basename } from 'node:path';
import t from 'tap';
import { ensureDeb } from '../helpers/index.js';
import { DEB_DIR, install, installedSuite, leftovers, SERVICES, SOCKETS } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

if (sb) {
  const apt = (verb: string) =>
    sb.exec(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', verb, '-y', 'dispatchd'], { timeoutMs: 120_000 });
  let files: string[] = [];

  t.test('installed and serving', async (t) => {
    t.equal((await sb.exec(['dispatchctl', 'request', 'echo', 'hello'])).stdout.toString(), 'hello');
    // Files (not directories) the package installed, to look for after the purge.
    files = (await sb.out('dpkg -L dispatchd | while read -r f; do [ -d "$f" ] || echo "$f"; done')).trim().split('\n');
    t.ok(files.length > 20, `${files.length} files installed`);
    // A third secondary and an edited configuration: remove and purge must take them too.
    t.equal((await sb.out('dispatchctl scale 3')).trim(), 'secondaries: 3 enabled (1 2 3), running: 1 2 3', 'scaled to 3');
    await sb.out("sed -i 's/^#max_leases = 32/max_leases = 9/' /etc/dispatchd/dispatchd.conf");
  });

  t.test('apt-get remove stops every unit and leaves no process, FIFO or segment', async (t) => {
    const r = await apt('remove');
    t.equal(r.code, 0, `apt-get remove exits 0 (${r.stderr.trim()})`);
    t.same(await leftovers(sb), [], 'no process, FIFO, socket or segment');
    t.equal((await sb.sh('test -e /run/dispatchd')).code, 1, '/run/dispatchd is gone');
    // The enablement link of dispatchd.target stays until purge (Debian's rule for removed
    // packages), so systemd may still list the target, as not-found and inactive.
    const units = (await sb.out("systemctl list-units --all --plain --no-legend 'dispatchd*'")).trim();
    const running = units.split('\n').filter((l) => l !== '' && !/\snot-found\s+inactive\s+dead\b/.test(l));
    t.same(running, [], `no dispatchd unit is loaded and active (${units || 'none listed'})`);
    t.equal((await sb.sh('test -f /etc/dispatchd/dispatchd.conf')).code, 0, 'remove keeps the configuration');
  });

  t.test('apt-get purge leaves nothing', async (t) => {
    const r = await apt('purge');
    t.equal(r.code, 0, `apt-get purge exits 0 (${r.stderr.trim()})`);
    t.equal((await sb.sh('test -e /etc/dispatchd')).code, 1, '/etc/dispatchd is gone');
    const still = await sb.out(`for f in ${files.map((f) => `'${f}'`).join(' ')}; do if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi; done`);
    t.equal(still.trim(), '', 'none of the installed files is left');
    t.equal((await sb.out('ls /usr/lib/dispatchd /lib/systemd/system/dispatchd* /etc/systemd/system/*/dispatchd* 2>/dev/null || true')).trim(), '', 'no unit, no enablement link, no /usr/lib/dispatchd');
    t.same(await leftovers(sb), [], 'no process, FIFO, socket or segment');
    t.not((await sb.sh('dpkg -s dispatchd >/dev/null 2>&1')).code, 0, 'dpkg no longer knows the package');
    t.equal((await sb.out('ls /etc/systemd/system/multi-user.target.wants/ | grep dispatchd || true')).trim(), '', 'dispatchd.target is no longer enabled');
    t.equal((await sb.sh('test -e /etc/systemd/system/dispatchd.target.wants')).code, 1, 'no enablement link of a secondary is left');
  });

  t.test('installing again after the purge: enabled, active, serving, with the defaults', async (t) => {
    await install(sb, `${DEB_DIR}/${basename(await ensureDeb())}`);
    t.equal((await sb.out('systemctl is-enabled dispatchd.target')).trim(), 'enabled');
    for (const unit of ['dispatchd.target', ...SERVICES, ...SOCKETS]) t.equal((await sb.show(unit, 'ActiveState')).ActiveState, 'active', `${unit} is active`);
    t.equal((await sb.out('dispatchctl scale')).trim(), 'secondaries: 2 enabled (1 2), running: 1 2', 'the default 2 secondaries, not the 3 of before');
    t.notMatch(await sb.out('cat /etc/dispatchd/dispatchd.conf'), /^max_leases = 9/m, 'a fresh configuration file');
    t.match(await sb.out('id dispatchd'), /uid=\d+\(dispatchd\)/, 'the system user exists');
    t.equal((await sb.exec(['dispatchctl', 'request', 'echo', 'again'])).stdout.toString(), 'again', 'serving');
  });
}
