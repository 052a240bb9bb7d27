/**
 * The Python package's unit tests (python/tests, the stdlib unittest: spec/ vectors, client,
 * scoreboard reader, command line), run with Debian's interpreter, /usr/bin/python3 — the
 * one python3-dispatchd installs for — never a python3 found first on PATH (pyenv, a venv).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { statusReport } from '../../daemons/client/status.js';
import { ERROR_CODES } from '../../daemons/common/errors.js';
import { EXIT, exitCodeFor } from '../../daemons/common/exit-codes.js';
import { createScoreboard } from '../../daemons/common/scoreboard-file.js';
import { ScoreboardReader } from '../../daemons/common/scoreboard-reader.js';
import { SlotWriter } from '../../daemons/common/slot-writer.js';

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
  if (r.status !== 0) t.comment(r.stderr.slice(-4000));
  t.equal(r.status, 0, 'unittest passed');
});

t.test('python3 -m dispatchd status --json reads a scoreboard Node wrote as dispatchctl status does', { skip: existsSync(PYTHON) ? false : `${PYTHON} is missing` }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'py-status-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'scoreboard');
  createScoreboard(file);
  const main = new SlotWriter(file, 'main', 0, { pid: process.pid, generation: 11 });
  main.data.state = 'ready';
  main.data.requests = 3;
  main.data.latencySumUs = 4501;
  main.data.latencyMaxUs = 2000;
  main.publish();
  const sec = new SlotWriter(file, 'secondary', 2, { pid: process.pid, generation: 0xfffffff0, capacity: 32 });
  sec.data.state = 'busy';
  sec.data.active = 5;
  sec.data.requests = 2 ** 40;
  sec.publish();
  const r = spawnSync(PYTHON, ['-m', 'dispatchd', 'status', '--json', '--scoreboard', file], { cwd: DIR, encoding: 'utf8', env: { PATH: '/usr/bin:/bin', PYTHONDONTWRITEBYTECODE: '1' } });
  t.equal(r.status, 0, r.stderr);
  const reader = new ScoreboardReader(file);
  const want = statusReport(file, reader.read(), Date.now(), () => true);
  reader.close();
  const got = JSON.parse(r.stdout) as typeof want;
  // The heartbeat's age depends on when each looked.
  const strip = (x: typeof want) => ({ ...x, daemons: x.daemons.map((d) => ({ ...d, heartbeat_age_ms: 0 })) });
  t.same(strip(got), strip(want), 'the same report, field for field');
  t.equal(got.daemons.find((d) => d.name === 'secondary-2')?.requests, 2 ** 40, '64-bit counters');
});

t.test('the Python package has the same error codes, exit codes and mapping as daemons/common', { skip: existsSync(PYTHON) ? false : `${PYTHON} is missing` }, async (t) => {
  const dump = 'import json, dispatchd as d; print(json.dumps({"codes": list(d.ERROR_CODES), "exit": {e.name: int(e) for e in d.Exit}, "map": {c: int(d.exit_code_for(c)) for c in d.ERROR_CODES}}))';
  const r = spawnSync(PYTHON, ['-c', dump], { cwd: DIR, encoding: 'utf8', env: { PATH: '/usr/bin:/bin', PYTHONDONTWRITEBYTECODE: '1' } });
  t.equal(r.status, 0, r.stderr);
  const py = JSON.parse(r.stdout) as { codes: string[]; exit: Record<string, number>; map: Record<string, number> };
  t.same(py.codes, [...ERROR_CODES], 'ERROR_CODES, in order');
  t.same(py.exit, { ...EXIT, TIMED_OUT: EXIT.TIMED_OUT }, 'Exit = EXIT');
  t.same(py.map, Object.fromEntries(ERROR_CODES.map((c) => [c, exitCodeFor(c)])), 'exit_code_for = exitCodeFor for every code');
});

t.test('python3 -m dispatchd --version is package.json\'s version', { skip: existsSync(PYTHON) ? false : `${PYTHON} is missing` }, async (t) => {
  const r = spawnSync(PYTHON, ['-m', 'dispatchd', '--version'], { cwd: DIR, encoding: 'utf8', env: { PATH: '/usr/bin:/bin', PYTHONDONTWRITEBYTECODE: '1' } });
  const pkg = JSON.parse(readFileSync(path.join(DIR, '..', 'package.json'), 'utf8')) as { version: string };
  t.equal(r.status, 0);
  t.equal(r.stdout.trim(), pkg.version);
});
