/**
 * The Python package's unit tests (python/tests, the stdlib unittest: spec/ vectors, client,
 * scoreboard reader, command line), run with Debian's interpreter, /usr/bin/python3 — the
 * one python3-dispatchd installs for — never a python3 found first on PATH (pyenv, a venv).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';

const PYTHON = '/usr/bin/python3';
const DIR = path.join(import.meta.dirname, '..', '..', 'python');

t.test('python/tests pass under /usr/bin/python3 (>= 3.11)', { skip: existsSync(PYTHON) ? false : `${PYTHON} is missing (apt-get install python3)` }, async (t) => {
  const v = spawnSync(PYTHON, ['-c', 'import sys; print(sys.version_info >= (3, 11))'], { encoding: 'utf8' });
  t.equal(v.stdout.trim(), 'True', `${PYTHON} is Python 3.11 or newer`);
  const r = spawnSync(PYTHON, ['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.', '-v'], {
    cwd: DIR,
    encoding: 'utf8',
    timeout: 240_000,
    // Only the package under test, no user site-packages, no bytecode left in the tree.
    env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', PYTHONNOUSERSITE: '1', PYTHONDONTWRITEBYTECODE: '1', TMPDIR: process.env.TMPDIR ?? '/tmp' },
  });
  const ran = /^Ran (\d+) tests?/m.exec(r.stderr);
  t.comment(r.stderr.split('\n').filter((l) => / \.\.\. (ok|FAIL|ERROR|skipped)/.test(l)).length + ' Python test methods');
  t.ok(ran && Number(ran[1]) > 0, 'unittest found and ran the tests');
  t.equal(r.status, 0, `unittest passed:\n${r.stderr.slice(-4000)}`);
});
