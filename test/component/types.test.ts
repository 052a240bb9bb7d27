/**
 * User-defined request types through the real daemons (processes, socket activation
 * imitated): an exec handler and a module handler declared in the suite's types.d, routing
 * by the served types (UNKNOWN_TYPE from main reserving nothing, pinning to a secondary),
 * leases bound to their type, per-type concurrency, types added live by a reload, and a
 * non-idempotent request whose secondary dies mid-run: OUTCOME_UNKNOWN, run exactly once.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { DispatchClient, DispatchError, Session } from '../../daemons/client/client.js';
import { readServedTypes } from '../../daemons/common/served-types.js';
import { secondary, servedTypesPath } from '../../daemons/common/topology.js';
import { closeAfter, ProcessSuite, ROOT, until } from '../helpers/index.js';

const suite = new ProcessSuite({ secondaries: 2, restart: false, config: '[secondary.instance.2]\nserve = ["echo", "heavy", "upper", "greet", "once", "single"]\n[secondary]\nserve = ["echo", "sha256", "sleep", "upper", "greet", "once", "single"]\n' });
closeAfter(t, suite);
const sideEffects = path.join(suite.dir, 'once.log');
const write = (name: string, text: string) => {
  fs.writeFileSync(path.join(suite.typesDir, name), text);
  fs.chmodSync(path.join(suite.typesDir, name), 0o644);
};
write(
  '50-test.toml',
  `[type.upper]
handler = "exec"
command = ["/usr/bin/tr", "a-z", "A-Z"]
idempotent = true

[type.greet]
handler = "module"
module = "${path.join(ROOT, 'packaging/examples/types.d/greet.mjs')}"

[type.heavy]
handler = "builtin"
builtin = "sha256"

[type.once]
handler = "exec"
command = ["/bin/sh", "-c", "echo run >> ${sideEffects}; exec sleep 10"]

[type.single]
handler = "builtin"
builtin = "sleep"
concurrency = 1
`,
);

const client = () => new DispatchClient({ socket: suite.mainSocket, timeoutMs: 10_000 });

t.test('the suite starts with its types; each secondary publishes what it serves', async (t) => {
  await suite.startAll({ watchdog: false });
  const one = readServedTypes(servedTypesPath(suite.scoreboard, secondary(1)))!;
  const two = readServedTypes(servedTypesPath(suite.scoreboard, secondary(2)))!;
  t.same(one.types.map((x) => x.name), ['echo', 'greet', 'once', 'sha256', 'single', 'sleep', 'upper'], 'secondary 1: [secondary] serve');
  t.same(two.types.map((x) => x.name), ['echo', 'greet', 'heavy', 'once', 'single', 'upper'], 'secondary 2: its own serve list');
  t.equal(one.generation, suite.slot('secondary-1')!.generation, 'written by the running process');
});

t.test('an exec handler and a module handler answer through main and a secondary', async (t) => {
  t.equal((await client().request('upper', Buffer.from('hello'))).toString(), 'HELLO');
  t.equal((await client().request('greet', Buffer.from('Ada'))).toString(), 'hello, Ada\n');
});

t.test('a lease names its type and idempotency; a run of another type on it is LEASE_WRONG_TYPE and nothing runs', async (t) => {
  const c = client();
  const grant = await c.lease('upper');
  t.match(grant, { type: 'upper', idempotent: true });
  t.match(await c.lease('greet'), { type: 'greet', idempotent: false });
  const s = await Session.open(grant, 1 << 20, 2000);
  t.teardown(() => s.close());
  await t.rejects(s.run('greet', Buffer.from('x'), 5000), { code: 'LEASE_WRONG_TYPE', message: /this lease is not for 'greet' requests/ });
  t.equal((await s.run('upper', Buffer.from('still'), 5000)).toString(), 'STILL', 'the lease stays good for its own type');
});

t.test('main answers UNKNOWN_TYPE for a type nobody serves, reserving nothing', async (t) => {
  const before = [suite.slot('secondary-1')!.active, suite.slot('secondary-2')!.active];
  const r = await suite.dispatchctl(['request', 'nonesuch', 'x']);
  t.equal(r.code, 65, 'exit 65');
  t.match(r.stderr, /no secondary serves request type 'nonesuch'; the types served: echo, greet, heavy, once, sha256, single, sleep, upper.*\[UNKNOWN_TYPE\]/);
  const after = [suite.slot('secondary-1')!.active, suite.slot('secondary-2')!.active];
  t.ok(after[0]! <= before[0]! && after[1]! <= before[1]!, `no lease was held for it (leases before ${before}, after ${after})`);
});

t.test('a type pinned to secondary 2 runs there only', async (t) => {
  for (let i = 0; i < 6; i++) t.equal((await client().requestWithInfo('heavy', Buffer.from('abc'))).secondary, 2);
});

t.test("a type's concurrency caps its leases in use on a secondary: one more presented there is refused BUSY, nothing ran", async (t) => {
  const c = new DispatchClient({ socket: suite.mainSocket, timeoutMs: 10_000, attempts: 1 });
  // Hold `single` (a sleep, concurrency 1) on both secondaries: each lease claimed by a running request.
  const running: Array<Promise<unknown>> = [];
  const sessions: Session[] = [];
  const on = new Set<number>();
  while (on.size < 2) {
    const g = await c.lease('single');
    if (on.has(g.secondary)) continue; // an unused lease simply expires
    on.add(g.secondary);
    const s = await Session.open(g, 1024, 2000);
    sessions.push(s);
    running.push(s.run('single', Buffer.from('1500'), 5000));
  }
  await until('both to run', 3000, () => ['secondary-1', 'secondary-2'].every((n) => (suite.slot(n)?.running ?? 0) > 0));
  const third = await c.lease('single');
  const err = await c.runOnLease(third, 'single', Buffer.from('0'), 2000).then(() => undefined, (e: DispatchError) => e);
  t.match(err, { code: 'BUSY', retryable: true, retryAfterMs: 20 }, `a third presented on secondary-${third.secondary} is refused, retryable`);
  t.ok((await c.lease('echo')).lease, 'other types are not held up');
  t.same((await Promise.all(running)).map(String), ['slept 1500', 'slept 1500'], 'the two in use ran undisturbed');
  sessions.forEach((s) => s.close());
});

t.test('a reload adds a type live, without a restart', async (t) => {
  const pids = [suite.pid('secondary-1'), suite.pid('secondary-2')];
  write('60-added.toml', '[type.added]\nhandler = "exec"\ncommand = ["/usr/bin/rev"]\n');
  fs.appendFileSync(suite.configPath, '');
  const config = fs.readFileSync(suite.configPath, 'utf8').replace('serve = ["echo", "sha256", "sleep", "upper", "greet", "once", "single"]', 'serve = ["echo", "sha256", "sleep", "upper", "greet", "once", "single", "added"]');
  fs.writeFileSync(suite.configPath, config);
  suite.signal('secondary-1', 'SIGHUP');
  await until('secondary-1 to publish the added type', 5000, () => readServedTypes(servedTypesPath(suite.scoreboard, secondary(1)))?.types.some((x) => x.name === 'added'));
  t.equal((await client().request('added', Buffer.from('abc\n'))).toString(), 'cba\n');
  t.same([suite.pid('secondary-1'), suite.pid('secondary-2')], pids, 'no restart');
  t.match(suite.output('secondary-1').join('\n'), /reloaded configuration .*types added: added/);
});

t.test('a non-idempotent request whose secondary dies mid-run: OUTCOME_UNKNOWN, and it ran exactly once', async (t) => {
  const outcome = client()
    .requestWithInfo('once', Buffer.from('x'))
    .then(
      () => 'answered',
      (e: { code: string; message: string }) => e,
    );
  await until('the run to start', 5000, () => fs.existsSync(sideEffects));
  const running = ['secondary-1', 'secondary-2'].find((n) => (suite.slot(n)?.running ?? 0) > 0) ?? (await until('a secondary to show it running', 5000, () => ['secondary-1', 'secondary-2'].find((n) => (suite.slot(n)?.running ?? 0) > 0)));
  suite.signal(running, 'SIGKILL');
  const e = await outcome;
  t.match(e, { code: 'OUTCOME_UNKNOWN', message: /may or may not have run .*'once' is not idempotent \(at most once\)/ });
  t.equal(fs.readFileSync(sideEffects, 'utf8'), 'run\n', 'the side effect happened once');
});
