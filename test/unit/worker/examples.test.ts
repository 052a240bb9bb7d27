/**
 * The worker examples of docs/WORKERS.md §1 and README.md, run as written: each Python
 * (dispatchd.worker) and JavaScript (createWorker) block is saved to a file and started the
 * way its unit starts it (socket activation imitated by test/helpers/activate.py --fdnames worker:
 * fd 3, LISTEN_FDNAMES=worker); this test then plays a secondary: the hello, a run, its
 * result, and what the worker printed. The TOML block must declare those types as
 * persistent, and the generator must make their units.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import t, { type Test } from 'tap';
import { encodeFrame } from '../../../daemons/common/frame.js';
import { parseTypesFile } from '../../../daemons/common/types-file.js';
import { generatedFiles } from '../../../daemons/worker/worker-units.js';
import { until } from '../../helpers/index.js';
import { ACTIVATE_PY, ROOT } from '../../helpers/paths.js';
import { frameReader } from '../lib/frame-reader.js';

const ACTIVATE = [ACTIVATE_PY, '--fdnames', 'worker'];
/** The installed library's path, as the examples import it; here the repository's build. */
const INSTALLED_LIB = '/usr/lib/dispatchd/build/daemons/worker/worker.js';
const BUILT_LIB = pathToFileURL(path.join(ROOT, 'build/daemons/worker/worker.js')).href;

/** What each example type answers to "Hello World". */
const EXPECTED: Record<string, string> = { shout: 'HELLO WORLD', lower: 'hello world' };
const DEFAULTS = { deadline_ms: 30_000, max_payload_bytes: 1 << 20, max_result_bytes: 1 << 20, concurrency: 4 };

interface Example {
  file: string;
  lang: 'python' | 'js' | 'toml';
  code: string;
}

function blocks(file: string): Example[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  return [...text.matchAll(/^```(python|js|toml)\n([\s\S]*?)^```$/gm)].map((m) => ({ file, lang: m[1] as Example['lang'], code: m[2]! }));
}

const all = [...blocks('docs/WORKERS.md'), ...blocks('README.md')];
const workers = all.filter((b) => (b.lang === 'python' && b.code.includes('dispatchd.worker')) || (b.lang === 'js' && b.code.includes('createWorker')));
const tomls = all.filter((b) => b.lang === 'toml' && /mode = "persistent"/.test(b.code));

t.ok(workers.some((b) => b.file === 'docs/WORKERS.md' && b.lang === 'python'), 'docs/WORKERS.md has a Python worker');
t.ok(workers.some((b) => b.file === 'docs/WORKERS.md' && b.lang === 'js'), 'docs/WORKERS.md has a JavaScript worker');
t.ok(workers.some((b) => b.file === 'README.md'), 'README.md has a worker');

async function start(t: Test, argv: string[], dir: string): Promise<{ sock: string; proc: ChildProcess; output: () => string }> {
  const sock = path.join(dir, 'worker.sock');
  // As under systemd: standard output a pipe (the journal's stream), not unbuffered.
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONPATH: path.join(ROOT, 'python') };
  delete env.PYTHONUNBUFFERED;
  const proc = spawn('python3', [...ACTIVATE, sock, ...argv], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  t.teardown(() => {
    proc.kill('SIGKILL');
  });
  await until(`the worker's socket ${sock}`, 10_000, () => fs.existsSync(sock));
  return { sock, proc, output: () => out };
}

for (const [i, ex] of workers.entries()) {
  t.test(`${ex.file}: the ${ex.lang === 'python' ? 'Python' : 'JavaScript'} worker example serves as written`, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `worker-example-${i}-`));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    let argv: string[];
    if (ex.lang === 'python') {
      fs.writeFileSync(path.join(dir, 'worker.py'), ex.code);
      argv = [which('python3'), path.join(dir, 'worker.py')];
    } else {
      t.ok(ex.code.includes(INSTALLED_LIB), 'imports the installed library by its path');
      fs.writeFileSync(path.join(dir, 'worker.mjs'), ex.code.replace(INSTALLED_LIB, BUILT_LIB));
      argv = [process.execPath, path.join(dir, 'worker.mjs')];
    }
    const { sock, output } = await start(t, argv, dir);
    const conn = net.createConnection(sock);
    t.teardown(() => conn.destroy());
    const read = frameReader(conn);
    const next = async () => {
      const f = await read();
      if (f === 'closed') throw new Error('the worker closed the connection');
      return f;
    };
    const hello = await next();
    t.match(hello.header, { op: 'hello', protocol: 1, concurrency: 4 }, 'hello first, with its concurrency');
    const types = hello.header.types as string[];
    t.equal(types.length, 1);
    const type = types[0]!;
    t.ok(type in EXPECTED, `serves a type of the TOML example: ${type}`);
    conn.write(Buffer.concat(encodeFrame({ op: 'run', id: 1, type, deadline_ms: 5000 }, Buffer.from('Hello World'))));
    const r = await next();
    t.match(r.header, { op: 'result', id: 1 });
    t.equal(r.body.toString(), EXPECTED[type], 'the result');
    if (/^\s*print\(/m.test(ex.code)) {
      await until('its print on standard output', 5000, () => output().includes('shout: 11 bytes'));
      t.pass('what it prints goes to its standard output (the journal), not to the secondary');
    }
  });
}

t.test('the TOML example declares the examples\' types as persistent; the generator makes their units', async (t) => {
  t.ok(tomls.length >= 1);
  const types = parseTypesFile(tomls[0]!.code, 'workers.toml', DEFAULTS);
  t.same(types.map((x) => x.name).sort(), Object.keys(EXPECTED).sort());
  const units = generatedFiles(types).map((f) => f.path).filter((p) => p.endsWith('/50-type.conf'));
  t.same(units, ['dispatchd-worker@shout-1.service.d/50-type.conf', 'dispatchd-worker@shout-2.service.d/50-type.conf', 'dispatchd-worker@lower-1.service.d/50-type.conf']);
});

/** The absolute path of `cmd` on PATH (execv does not search). */
function which(cmd: string): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  throw new Error(`failed to find ${cmd} on PATH`);
}

t.test('the persistent examples declare no type the shipped examples declare: README followed top to bottom gives no "declared twice"', async (t) => {
  const dir = path.join(ROOT, 'packaging/examples/types.d');
  const shipped = fs.readdirSync(dir).filter((f) => f.endsWith('.toml')).flatMap((f) => parseTypesFile(fs.readFileSync(path.join(dir, f), 'utf8'), f, DEFAULTS).map((x) => x.name));
  t.ok(shipped.includes('upper'), 'the README\'s first example, upper.toml');
  for (const b of tomls) {
    for (const x of parseTypesFile(b.code, b.file, DEFAULTS)) t.notOk(shipped.includes(x.name), `${b.file}: type '${x.name}' is not a shipped example's`);
  }
});
