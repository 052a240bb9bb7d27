/**
 * python3-dispatchd installed next to dispatchd under a real systemd, as the README says
 * (`apt-get install ./dist/python3-dispatchd_*.deb`): Debian's python3 finds the package,
 * byte-compiled at install; `python3 -m dispatchd request` and `status` answer as dispatchctl
 * does; removing the package leaves nothing behind.
 */
import t from 'tap';
import { installedSuite, installPythonPackage } from './lib/suite.js';

const sb = await installedSuite(t, import.meta.url);

if (sb) {
  await installPythonPackage(sb);

  t.test('Debian\'s python3 imports the package from dist-packages, byte-compiled', async (t) => {
    const where = await sb.out("/usr/bin/python3 -c 'import dispatchd; print(dispatchd.__file__)'");
    t.equal(where.trim(), '/usr/lib/python3/dist-packages/dispatchd/__init__.py');
    const pyc = await sb.out('ls /usr/lib/python3/dist-packages/dispatchd/__pycache__/');
    t.match(pyc, /client\.cpython-3\d+\.pyc/, 'py3compile compiled the modules at install');
  });

  t.test('python3 -m dispatchd request echo hello prints hello', async (t) => {
    const r = await sb.exec(['python3', '-m', 'dispatchd', 'request', 'echo', 'hello']);
    t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr.trim()})`);
    t.equal(r.stdout.toString(), 'hello');
    const sha = await sb.exec(['python3', '-m', 'dispatchd', 'request', 'sha256'], { input: 'hello' });
    t.equal(sha.stdout.toString(), '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', 'DATA from standard input');
  });

  t.test('an error: the same exit code as dispatchctl, one line with the code', async (t) => {
    const py = await sb.exec(['python3', '-m', 'dispatchd', 'request', 'no-such-type', 'x']);
    const ctl = await sb.exec(['dispatchctl', 'request', 'no-such-type', 'x']);
    t.equal(py.code, 65, 'UNKNOWN_TYPE is exit 65');
    t.equal(py.code, ctl.code, 'as dispatchctl');
    t.match(py.stderr, /^dispatchd: 'no-such-type' request failed: .* \[UNKNOWN_TYPE\]\n$/);
  });

  t.test('python3 -m dispatchd status --json lists what dispatchctl status --json lists', async (t) => {
    const py = JSON.parse(await sb.out('python3 -m dispatchd status --json')) as { scoreboard: string; daemons: Array<{ name: string; pid: number; state: string }> };
    const ctl = JSON.parse(await sb.out('dispatchctl status --json')) as typeof py;
    t.equal(py.scoreboard, '/dev/shm/dispatchd.scoreboard');
    const rows = (r: typeof py) => r.daemons.map((d) => [d.name, d.pid, d.state]);
    t.same(rows(py), rows(ctl), 'the same daemons, pids and states');
    t.ok(py.daemons.some((d) => d.name === 'secondary-1' && d.state !== 'dead'), 'secondary-1 is listed alive');
  });

  t.test('apt-get purge python3-dispatchd leaves no file behind', async (t) => {
    await sb.out('DEBIAN_FRONTEND=noninteractive apt-get purge -y python3-dispatchd');
    t.equal((await sb.sh('test -e /usr/lib/python3/dist-packages/dispatchd')).code, 1, 'the package directory is gone, __pycache__ included');
    t.equal((await sb.exec(['dispatchctl', 'request', 'echo', 'still'])).stdout.toString(), 'still', 'dispatchd still serves');
  });
}
