/**
 * lintian on both .debs of the source package (dispatchd and python3-dispatchd): no error and no warning (pedantic and informational tags are listed
 * as comments). Every override the package carries is preceded by a comment line that
 * justifies it, and every override is still needed (lintian reports none as unused).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
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
  /** lintian's E:/W:/I:/P:/O: lines for one .deb, their counts as comments. */
  const lint = (t: { comment: (msg: string) => void }, deb: string): string[] => {
    const r = spawnSync('lintian', ['--pedantic', '--info', '--show-overrides', '--tag-display-limit', '0', deb], { encoding: 'utf8', timeout: 300_000 });
    const lines = r.stdout.split('\n').filter((l) => /^[EWIPOX]: /.test(l));
    const counts = new Map<string, number>();
    for (const l of lines) {
      const tag = l.split(' ').slice(0, 3).join(' ').replace(/:$/, '');
      counts.set(tag, (counts.get(tag) ?? 0) + 1);
    }
    for (const [tag, n] of [...counts].sort()) t.comment(`${n} x ${tag}`);
    return lines;
  };

  t.test('lintian reports no error and no warning', async (t) => {
    const deb = await ensureDeb();
    const lines = lint(t, deb);
    t.same(lines.filter((l) => l.startsWith('E: ')), [], 'no lintian error');
    t.same(lines.filter((l) => l.startsWith('W: ')), [], 'no lintian warning');
    t.same(lines.filter((l) => /unused-override/.test(l)), [], 'no unused override');
    t.ok(lines.some((l) => l.startsWith('O: ')), 'the overrides are applied (shown as O:)');
  });

  t.test('lintian reports no error and no warning on python3-dispatchd', async (t) => {
    const deb = await ensureDeb();
    // Built by the same dpkg-buildpackage run, beside dispatchd_<version>_<arch>.deb.
    const version = basename(deb).split('_')[1]!;
    const pydeb = join(dirname(deb), `python3-dispatchd_${version}_all.deb`);
    t.ok(existsSync(pydeb), `${pydeb} was built with ${basename(deb)}`);
    const lines = lint(t, pydeb);
    t.same(lines.filter((l) => l.startsWith('E: ')), [], 'no lintian error');
    t.same(lines.filter((l) => l.startsWith('W: ')), [], 'no lintian warning');
    const contents = spawnSync('dpkg-deb', ['--contents', pydeb], { encoding: 'utf8' }).stdout;
    t.match(contents, /\.\/usr\/lib\/python3\/dist-packages\/dispatchd\/client\.py\n/, "the modules are in Debian's python3 module path");
    t.notMatch(contents, /tests\/|__pycache__|\.pyc/, 'no tests and no bytecode (py3compile makes it at install)');
  });
}
