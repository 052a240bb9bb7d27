/**
 * The daemons as real processes (socket activation imitated): requests are served end to
 * end through the redirect, payloads are byte-exact, load is spread, and SIGTERM stops each
 * daemon cleanly (exit 0, slot "stopped").
 */
import { createHash, randomBytes } from 'node:crypto';
import t from 'tap';
import { DispatchClient } from '../../daemons/client/client.js';
import { closeAfter, ProcessSuite, until } from '../helpers/index.js';

const suite = new ProcessSuite({ restart: false });
closeAfter(t, suite);

t.before(async () => {
  await suite.start('secondary-1');
  await suite.start('secondary-2');
  await suite.start('main');
});

const client = () => new DispatchClient({ socket: suite.mainSocket, timeoutMs: 20_000 });

t.test('echo, sha256 and sleep return what the contract says', async (t) => {
  const c = client();
  t.equal((await c.request('echo', Buffer.from('hello'))).toString(), 'hello');
  t.equal((await c.request('echo', Buffer.alloc(0))).length, 0, 'empty DATA echoes as empty');
  t.equal((await c.request('sha256', Buffer.from('abc'))).toString(), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  t.equal((await c.request('sleep', Buffer.from('20'))).toString(), 'slept 20');
});

t.test('a 16 MiB binary payload survives echo byte for byte and hashes like crypto', async (t) => {
  const data = randomBytes(16 * 1024 * 1024);
  const c = client();
  const echoed = await c.request('echo', data);
  t.equal(echoed.length, data.length);
  t.ok(echoed.equals(data), 'echo is byte-exact');
  t.equal((await c.request('sha256', data)).toString(), createHash('sha256').update(data).digest('hex'));
});

t.test('200 concurrent requests all succeed and both secondaries serve', async (t) => {
  const before1 = suite.slot('secondary-1')!.requests;
  const before2 = suite.slot('secondary-2')!.requests;
  const c = client();
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => c.request('echo', Buffer.from(`n${i}`))));
  t.same(results.map(String), Array.from({ length: 200 }, (_, i) => `n${i}`));
  await until('the scoreboard to count 200 requests', 5000, () => suite.slot('secondary-1')!.requests + suite.slot('secondary-2')!.requests - before1 - before2 === 200);
  t.ok(suite.slot('secondary-1')!.requests > before1, 'secondary-1 served some');
  t.ok(suite.slot('secondary-2')!.requests > before2, 'secondary-2 served some');
});

t.test('several requests run on one established lease', async (t) => {
  const c = client();
  const grant = await c.lease('echo');
  const { Session } = await import('../../daemons/client/client.js');
  const s = await Session.open(grant, 1 << 20, 2000);
  for (let i = 0; i < 5; i++) t.equal((await s.run('echo', Buffer.from(`r${i}`), 2000)).toString(), `r${i}`);
  s.close();
});

t.test('the scoreboard shows every daemon ready with its pid', async (t) => {
  for (const name of ['main', 'secondary-1', 'secondary-2']) {
    const s = suite.slot(name)!;
    t.equal(s.pid, suite.pid(name), `${name} pid`);
    t.ok(['ready', 'busy'].includes(s.state), `${name} state ${s.state}`);
    t.ok(Date.now() - s.heartbeatMs < 3000, `${name} heartbeat fresh`);
  }
  t.equal(suite.slot('secondary-1')!.capacity, 32);
});

t.test('SIGTERM stops each daemon with exit 0 and marks its slot stopped', async (t) => {
  for (const name of ['main', 'secondary-1', 'secondary-2']) {
    const r = await suite.stop(name);
    t.same(r, { code: 0, signal: null }, `${name} exits 0`);
    t.equal(suite.slot(name)!.state, 'stopped', `${name} slot stopped`);
  }
});
