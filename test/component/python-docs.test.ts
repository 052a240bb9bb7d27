/**
 * docs/PYTHON.md is a contract: every example on it runs, with Debian's /usr/bin/python3 and
 * the package from python/, against the daemons as processes (the request types from
 * packaging/types.d). A ```python block runs on its own; the ```text block right after it,
 * if any, is its standard output. A ```console block's `$ ` lines run in bash, each followed
 * by its output (standard output and error); `…` in an expected line stands for any text, a
 * line that is only `…` for any number of lines. The default socket and scoreboard are the
 * test suite's.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { closeAfter, ProcessSuite, ROOT } from '../helpers/index.js';

const PYTHON = '/usr/bin/python3';
const PAGE = path.join(ROOT, 'docs', 'PYTHON.md');

interface Block {
  lang: string;
  code: string;
  line: number;
}

function blocks(md: string): Block[] {
  const out: Block[] = [];
  const re = /^```(\w*)\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(md); m; m = re.exec(md)) out.push({ lang: m[1]!, code: m[2]!, line: md.slice(0, m.index).split('\n').length });
  return out;
}

/** Whether `actual` lines match `expected` lines (`…` a wildcard in a line, or a whole line for any lines). */
function matches(expected: string[], actual: string[]): boolean {
  if (expected.length === 0) return actual.length === 0;
  const [e, ...rest] = expected;
  if (e === '…') return actual.some((_, i) => matches(rest, actual.slice(i))) || matches(rest, []);
  if (actual.length === 0) return false;
  const re = new RegExp('^' + e!.split('…').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
  return re.test(actual[0]!) && matches(rest, actual.slice(1));
}

const suite = new ProcessSuite({ secondaries: 1, restart: false });
closeAfter(t, suite);

t.before(async () => {
  await suite.start('secondary-1');
  await suite.start('main');
});

const env = () => ({ PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', PYTHONPATH: path.join(ROOT, 'python'), PYTHONDONTWRITEBYTECODE: '1', PYTHONNOUSERSITE: '1' });

t.test('every example of docs/PYTHON.md runs as shown', { skip: fs.existsSync(PYTHON) ? false : `${PYTHON} is missing` }, async (t) => {
  const all = blocks(fs.readFileSync(PAGE, 'utf8'));
  const python = all.filter((b) => b.lang === 'python');
  const consoles = all.filter((b) => b.lang === 'console');
  t.ok(python.length >= 4 && consoles.length >= 1, 'the page has examples');
  // Point the package's defaults at this suite, as /run/dispatchd and /dev/shm are on a host.
  const prelude = `import dispatchd.client, dispatchd.scoreboard\ndispatchd.client.DEFAULT_SOCKET = ${JSON.stringify(suite.mainSocket)}\ndispatchd.scoreboard.DEFAULT_SCOREBOARD = ${JSON.stringify(suite.scoreboard)}\n`;
  for (const b of python) {
    const i = all.indexOf(b);
    const expected = all[i + 1]?.lang === 'text' ? all[i + 1]!.code : undefined;
    const r = spawnSync(PYTHON, ['-c', prelude + b.code], { encoding: 'utf8', env: env(), timeout: 60_000 });
    t.equal(r.status, 0, `the python example at docs/PYTHON.md:${b.line} runs${r.stderr ? `: ${r.stderr}` : ''}`);
    if (expected !== undefined) {
      const want = expected.replace(/\n$/, '').split('\n');
      const got = r.stdout.replace(/\n$/, '').split('\n');
      t.ok(matches(want, got), `docs/PYTHON.md:${b.line} prints what the page shows`, { found: got, wanted: want });
    }
  }
  for (const b of consoles) {
    const lines = b.code.replace(/\n$/, '').split('\n');
    for (let k = 0; k < lines.length; k++) {
      if (!lines[k]!.startsWith('$ ')) continue;
      const cmd = lines[k]!.slice(2)
        .replaceAll('python3 -m dispatchd request', `${PYTHON} -m dispatchd --socket ${suite.mainSocket} request`)
        .replaceAll('python3 -m dispatchd status', `${PYTHON} -m dispatchd status --scoreboard ${suite.scoreboard}`);
      const want: string[] = [];
      for (let j = k + 1; j < lines.length && !lines[j]!.startsWith('$ '); j++) want.push(lines[j]!);
      const r = spawnSync('bash', ['-c', `(${cmd}) 2>&1`], { encoding: 'utf8', env: env(), timeout: 60_000 });
      const got = r.stdout.replace(/\n$/, '').split('\n');
      t.ok(matches(want, got), `docs/PYTHON.md:${b.line + k + 1}: ${lines[k]}`, { found: got, wanted: want });
    }
  }
});
