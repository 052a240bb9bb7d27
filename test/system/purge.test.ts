/**
 * apt-get remove stops everything and leaves no process, FIFO or segment; apt-get purge
 * also removes /etc/dispatchd and every file the package installed.
 */
import t from 'tap';
import { installedSuite, leftovers } from './lib/suite.js';

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
  });
}
