/**
 * lintian on the .deb: no error and no warning (pedantic and informational tags are listed
 * as comments). Every override the package carries is preceded by a comment line that
 * justifies it, and every override is still needed (lintian reports none as unused).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ensureDeb, ROOT as REPO } from '../helpers/index.js';

const have = spawnSync('sh', ['-c', 'command -v lintian && command -v dpkg-buildpackage']).status === 0;
const OVERRIDES = join(REPO, 'packaging', 'debian', 'dispatchd.lintian-overrides');

t.test('every lintian override carries a one-line justification', async (t) => {
  const lines = readFileSync(OVERRIDES, 'utf8').split('\n');
  const overrides = lines.map((l, i) => ({ l, i })).filter(({ l }) => /^dispatchd: /.test(l));
  t.ok(overrides.length > 0, 'the file lists overrides');
  for (const { l, i } of overrides) {
    t.match(lines[i - 1] ?? '', /^# \S.{20,}/, `override on line ${i + 1} (${l}) follows a comment that says why`);
  }
});

if (!have) {
  t.test('lintian', { skip: 'lintian or dpkg-buildpackage not installed (apt-get install lintian dpkg-dev debhelper)' }, async () => {});
} else {
  t.test('lintian reports no error and no warning', async (t) => {
    const deb = await ensureDeb();
    const r = spawnSync('lintian', ['--pedantic', '--info', '--show-overrides', '--tag-display-limit', '0', deb], { encoding: 'utf8', timeout: 300_000 });
    const lines = r.stdout.split('\n').filter((l) => /^[EWIPOX]: /.test(l));
    const counts = new Map<string, number>();
    for (const l of lines) {
      const tag = l.split(' ').slice(0, 3).join(' ').replace(/:$/, '');
      counts.set(tag, (counts.get(tag) ?? 0) + 1);
    }
    for (const [tag, n] of [...counts].sort()) t.comment(`${n} x ${tag}`);
    t.same(lines.filter((l) => l.startsWith('E: ')), [], 'no lintian error');
    t.same(lines.filter((l) => l.startsWith('W: ')), [], 'no lintian warning');
    t.same(lines.filter((l) => /unused-override/.test(l)), [], 'no unused override');
    t.ok(lines.some((l) => l.startsWith('O: ')), 'the overrides are applied (shown as O:)');
  });
}
