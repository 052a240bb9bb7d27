/**
 * Configuration reload (SIGHUP, sent by the units' ExecReload=): a valid change takes effect
 * without a restart and without failing requests; an invalid file is refused with its line
 * and key named, and the daemon keeps serving with the configuration it had.
 */
import fs from 'node:fs';
import t from 'tap';
import { DispatchClient } from '../../daemons/client/client.js';
import { Suite } from './lib/suite.js';

const suite = new Suite();
t.teardown(() => suite.close());
const base = fs.readFileSync(suite.configPath, 'utf8');
const logOf = (name: string) => suite.daemons.get(name)!.output();

t.test('SIGHUP applies a new max_leases live; a bad file is refused and serving goes on', async (t) => {
  await suite.start('secondary-1');
  await suite.start('main');
  const pid = suite.daemons.get('secondary-1')!.child.pid;
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
  suite.daemons.get('secondary-1')!.child.kill('SIGHUP');
  await suite.waitFor(() => suite.slot('secondary-1')!.capacity === 5 && /reloaded configuration/.test(logOf('secondary-1')), 5000, 'the new capacity on the scoreboard');
  t.match(logOf('secondary-1'), /notice: reloaded configuration '.*': applied secondary.max_leases/);
  t.equal(suite.daemons.get('secondary-1')!.child.pid, pid, 'same process: no restart');

  fs.writeFileSync(suite.configPath, `${base}\n[secondary]\nmax_leases = "many"\n`);
  suite.daemons.get('secondary-1')!.child.kill('SIGHUP');
  await suite.waitFor(() => /failed to reload configuration/.test(logOf('secondary-1')), 5000, 'the refusal');
  const badLine = fs.readFileSync(suite.configPath, 'utf8').split('\n').findIndex((l) => l.startsWith('max_leases')) + 1;
  t.match(logOf('secondary-1'), new RegExp(`error: failed to reload configuration: failed to load configuration '.*' line ${badLine}: key 'secondary.max_leases'.*keeping the running configuration`));
  t.equal(suite.slot('secondary-1')!.capacity, 5, 'the running configuration stays');

  fs.writeFileSync(suite.configPath, base.replace(/runtime_dir = ".*"/, 'runtime_dir = "/elsewhere"'));
  suite.daemons.get('main')!.child.kill('SIGHUP');
  await suite.waitFor(() => /needs a restart to take effect: paths.runtime_dir/.test(logOf('main')), 5000, 'the path warning');

  const before = ok;
  await suite.waitFor(() => ok > before + 20, 5000, 'requests to keep succeeding');
  stop = true;
  await load; // throws if any request failed
  t.ok(ok > 20, `${ok} requests, none failed`);
});
