/**
 * dispatchd-metrics as a real process with socket activation imitated as systemd does it
 * (a listening loopback TCP socket as fd 3, LISTEN_FDNAMES=http), next to a running main
 * and secondary: GET /metrics counts the requests served, in both formats; the scoreboard
 * gone answers 503; SIGTERM ends it cleanly (exit 0) with a connection still open.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t, { type Test } from 'tap';
import { BUILD_DAEMONS as BUILD, closeAfter, ProcessSuite } from '../helpers/index.js';

// Binds 127.0.0.1:0, prints the port, and execs the daemon with the socket as fd 3.
const ACTIVATE_TCP = `
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
fd = s.detach()
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="http")
os.execv(sys.argv[1], sys.argv[1:])
`;

const suite = new ProcessSuite({ secondaries: 1, restart: false });
closeAfter(t, suite);

async function startMetrics(t: Test) {
  const child = spawn('python3', ['-c', ACTIVATE_TCP, process.execPath, path.join(BUILD, 'metrics/main.js'), '--config', suite.configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NOTIFY_SOCKET: '', JOURNAL_STREAM: '' },
  });
  let out = '';
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  return { child, port, output: () => out };
}

const get = async (port: number, accept?: string) => {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: accept ? { accept } : {} });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
};

t.test('GET /metrics counts the requests served, in both formats', async (t) => {
  await suite.start('secondary-1');
  await suite.start('main');
  for (let i = 0; i < 4; i++) t.equal((await suite.dispatchctl(['request', 'echo', `x${i}`])).stdout.toString(), `x${i}`);
  const m = await startMetrics(t);
  // The socket is bound before the daemon runs: the first request waits in the backlog.
  const classic = await get(m.port);
  t.equal(classic.status, 200, m.output());
  t.match(classic.type, /^text\/plain; version=0\.0\.4/);
  t.match(classic.body, /^dispatchd_requests_total\{daemon="secondary-1"\} 4$/m, 'secondary-1 served 4');
  const om = await get(m.port, 'application/openmetrics-text');
  t.match(om.type, /^application\/openmetrics-text; version=1\.0\.0/);
  t.match(om.body, /^dispatchd_requests_total\{daemon="secondary-1"\} 4$/m);
  t.match(om.body, /# EOF\n$/);
  const cli = await suite.dispatchctl(['status', '--format', 'openmetrics', '--scoreboard', suite.scoreboard]);
  const families = (text: string) => [...text.matchAll(/^# TYPE .*$/gm)].map((x) => x[0]).join('\n');
  t.equal(families(om.body), families(cli.stdout.toString()), 'the families of dispatchctl status --format openmetrics');

  // SIGTERM with an idle keep-alive connection open: it still exits at once, cleanly.
  const idle = net.connect(m.port, '127.0.0.1');
  await once(idle, 'connect');
  m.child.kill('SIGTERM');
  const [code] = (await once(m.child, 'exit')) as [number | null];
  idle.destroy();
  t.equal(code, 0, `exit 0 on SIGTERM (${m.output().slice(-500)})`);
});

t.test('the scoreboard gone: 503, and the daemon keeps running', async (t) => {
  const m = await startMetrics(t);
  t.equal((await get(m.port)).status, 200);
  await suite.stop('main');
  await suite.stop('secondary-1');
  fs.renameSync(suite.scoreboard, `${suite.scoreboard}.away`);
  const r = await get(m.port);
  t.equal(r.status, 503);
  t.match(r.body, /does not exist; is dispatchd\.target running/, 'says why and what to do');
  t.equal(m.child.exitCode, null, 'still running');
  fs.renameSync(`${suite.scoreboard}.away`, suite.scoreboard);
  t.equal((await get(m.port)).status, 200, 'and answers again once the scoreboard is back');
});
