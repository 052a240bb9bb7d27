/**
 * The worker libraries (TypeScript and Python) at SIGTERM (what `systemctl stop` or a restart
 * of its unit sends): a request running is answered, then every connection is closed, and the
 * process exits by itself — not kept alive by the secondaries' connections until systemd's
 * SIGKILL. Each worker runs as its unit would start it (test/helpers/activate.py --fdnames worker).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { encodeFrame } from '../../../daemons/common/frame.js';
import { until } from '../../helpers/index.js';
import { ACTIVATE_PY, ROOT } from '../../helpers/paths.js';
import { frameReader } from '../lib/frame-reader.js';

const lib = pathToFileURL(path.join(ROOT, 'build/daemons/worker/worker.js')).href;
/** Each library's worker: 'hold' answers once its DATA's number of ms passed, after saying on stdout that it runs. */
const WORKERS = {
  TypeScript: {
    file: 'w.mjs',
    argv: (f: string) => [process.execPath, f],
    code: `import { createWorker } from '${lib}';
const worker = createWorker({ concurrency: 2 });
worker.handle('hold', async (data) => {
  console.log('running');
  await new Promise((r) => setTimeout(r, Number(data)));
  return 'done';
});
await worker.run();
`,
  },
  Python: {
    file: 'w.py',
    argv: (f: string) => ['/usr/bin/env', 'python3', f],
    code: `import time
from dispatchd.worker import Worker

worker = Worker(concurrency=2)

@worker.handler("hold")
def hold(data, ctx):
    print("running", flush=True)
    time.sleep(int(data) / 1000)
    return b"done"

worker.run()
`,
  },
};

for (const [lang, w] of Object.entries(WORKERS)) t.test(`${lang}: at SIGTERM the running request is answered, the connections closed, the process exits 0`, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-stop-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, w.file), w.code);
  const sock = path.join(dir, 'w.sock');
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONPATH: path.join(ROOT, 'python') };
  const proc = spawn('python3', [ACTIVATE_PY, '--fdnames', 'worker', sock, ...w.argv(path.join(dir, w.file))], { stdio: ['ignore', 'pipe', 'inherit'], env });
  t.teardown(() => void proc.kill('SIGKILL'));
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | string | null>((resolve) => proc.on('exit', (code, signal) => resolve(signal ?? code)));
  await until('the worker socket', 10_000, () => fs.existsSync(sock));

  const busy = net.createConnection(sock);
  const idle = net.createConnection(sock);
  t.teardown(() => {
    busy.destroy();
    idle.destroy();
  });
  const [nextBusy, nextIdle] = [frameReader(busy), frameReader(idle)];
  t.match(await nextBusy(), { header: { op: 'hello' } });
  t.match(await nextIdle(), { header: { op: 'hello' } });
  busy.write(Buffer.concat(encodeFrame({ op: 'run', id: 1, type: 'hold', deadline_ms: 10_000 }, Buffer.from('300'))));
  await until('the request to run', 10_000, () => out.includes('running'));
  proc.kill('SIGTERM');

  t.equal(await nextIdle(), 'closed', 'an idle connection is closed at once');
  const answer = await nextBusy();
  t.match(answer, { header: { op: 'result', id: 1 } }, 'the running request is answered');
  t.equal(answer !== 'closed' && answer.body.toString(), 'done');
  t.equal(await nextBusy(), 'closed', 'then its connection is closed');
  t.equal(await exited, 0, 'the process exits by itself, status 0');
});
