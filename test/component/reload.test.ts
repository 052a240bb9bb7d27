/**
 * Configuration reload (SIGHUP, sent by the units' ExecReload=): a valid change takes effect
 * without a restart and without failing requests; an invalid file is refused with its line
 * and key named, and the daemon keeps serving with the configuration it had.
 */
import fs from 'node:fs';
import t from 'tap';
import { DispatchClient } from '../../daemons/client/client.js';
import { closeAfter, ProcessSuite, until } from '../helpers/index.js';

const suite = new ProcessSuite({ secondaries: 1, restart: false });
closeAfter(t, suite);
const base = fs.readFileSync(suite.configPath, 'utf8');
const logOf = (name: string) => suite.output(name).join('\n');

t.test('SIGHUP applies a new max_leases live; a bad file is refused and serving goes on', async (t) => {
  await suite.start('secondary-1');
  await suite.start('main');
  const pid = suite.pid('secondary-1');
  t.equal(suite.slot('secondary-1')!.capacity, 32);
  const c = new DispatchClient({ socket: suite.mainSocket, timeoutMs: 10_000 });
  // Keep requests flowing through the reloads: none may fail.
  let stop = false;
  let ok = 0;
  const load = (async () => {
    while (!stop) {
      await c.request('echo', Buffer.from('x'));
      ok++;
    }
  })();

  fs.writeFileSync(suite.configPath, `${base}\n[secondary]\nmax_leases = 5\n`);
  suite.signal('secondary-1', 'SIGHUP');
  await until('the new capacity on the scoreboard', 5000, () => suite.slot('secondary-1')!.capacity === 5 && /reloaded configuration/.test(logOf('secondary-1')));
  t.match(logOf('secondary-1'), /notice: reloaded configuration '.*': applied secondary.max_leases/);
  t.equal(suite.pid('secondary-1'), pid, 'same process: no restart');

  fs.writeFileSync(suite.configPath, `${base}\n[secondary]\nmax_leases = "many"\n`);
  suite.signal('secondary-1', 'SIGHUP');
  await until('the refusal', 5000, () => /failed to reload configuration/.test(logOf('secondary-1')));
  const badLine = fs.readFileSync(suite.configPath, 'utf8').split('\n').findIndex((l) => l.startsWith('max_leases')) + 1;
  t.match(logOf('secondary-1'), new RegExp(`error: failed to reload configuration: failed to load configuration '.*' line ${badLine}: key 'secondary.max_leases'.*keeping the running configuration`));
  t.equal(suite.slot('secondary-1')!.capacity, 5, 'the running configuration stays');

  fs.writeFileSync(suite.configPath, base.replace(/runtime_dir = ".*"/, 'runtime_dir = "/elsewhere"'));
  suite.signal('main', 'SIGHUP');
  await until('the path warning', 5000, () => /needs a restart to take effect: paths.runtime_dir/.test(logOf('main')));

  const before = ok;
  await until('requests to keep succeeding', 5000, () => ok > before + 20);
  stop = true;
  await load; // throws if any request failed
  t.ok(ok > 20, `${ok} requests, none failed`);
});
