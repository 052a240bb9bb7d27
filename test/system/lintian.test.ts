/**
 * lintian finds no error in the .deb. Its warnings are listed as comments: issue 5 is to
 * bring them to zero.
 */
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { ensureDeb } from './lib/deb.js';

const have = spawnSync('sh', ['-c', 'command -v lintian && command -v dpkg-buildpackage']).status === 0;

if (!have) {
  t.plan(0, 'skip: lintian or dpkg-buildpackage not installed (apt-get install lintian dpkg-dev debhelper)');
} else {
  t.test('lintian reports no error', async (t) => {
    const deb = await ensureDeb();
    const r = spawnSync('lintian', ['--pedantic', '--tag-display-limit', '0', deb], { encoding: 'utf8', timeout: 300_000 });
    const lines = r.stdout.split('\n').filter((l) => /^[EWIP]: /.test(l));
    const errors = lines.filter((l) => l.startsWith('E: '));
    const counts = new Map<string, number>();
    for (const l of lines) {
      const tag = l.split(' ').slice(0, 3).join(' ').replace(/:$/, '');
      counts.set(tag, (counts.get(tag) ?? 0) + 1);
    }
    for (const [tag, n] of [...counts].sort()) t.comment(`${n} x ${tag}`);
    t.same(errors, [], 'no lintian error');
  });
}
