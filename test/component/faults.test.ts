/**
 * Bad input and faults against the real daemons: garbage on sockets and FIFOs, idle and
 * half-frame clients, lease misuse, a full pool, a killed secondary, a request past its
 * deadline. In every case the offender gets a clear answer, the daemon logs it once, and
 * everyone else keeps being served.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import t from 'tap';
import { DispatchClient, Session } from '../../daemons/client/client.js';
import type { LeaseGranted } from '../../daemons/common/protocol.js';
import { DispatchError } from '../../daemons/common/errors.js';
import { encodeFrame } from '../../daemons/common/frame.js';
import { LeaseSigner } from '../../daemons/common/lease-token.js';
import { randomBytes } from 'node:crypto';
import { rawExchange, writeFifo } from './lib/raw.js';
import { closeAfter, ProcessSuite, until } from '../helpers/index.js';
import { watchedClient } from './lib/leases.js';

const IDLE_MS = 400;
const suite = new ProcessSuite({
  config: `[main]\nclient_idle_timeout_ms = ${IDLE_MS}\nqueue_timeout_ms = 300\nlease_ttl_ms = 300\n[secondary]\nclient_idle_timeout_ms = ${IDLE_MS}\nmax_leases = 2\nrequest_deadline_ms = 500\n`,
  restart: false, // a killed secondary stays down, as the last two tests need
});
closeAfter(t, suite);
t.before(async () => {
  await suite.start('secondary-1');
  await suite.start('secondary-2');
  await suite.start('main');
});
const client = (o = {}) => new DispatchClient({ socket: suite.mainSocket, timeoutMs: 10_000, ...o });
const sock = (name: string) => path.join(suite.dir, `${name}.sock`);
const fifo = (name: string) => path.join(suite.dir, `${name}.fifo`);
const errorOf = async (p: Promise<unknown>): Promise<DispatchError> => {
  try {
    await p;
  } catch (e) {
    if (e instanceof DispatchError) return e;
    throw e;
  }
  throw new Error('expected a DispatchError');
};
const count = (name: string, re: RegExp) => suite.output(name).filter((l) => re.test(l)).length;
const echoes = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

t.test('garbage on the main socket: one error frame, disconnected, logged once, others served', async (t) => {
  for (let i = 0; i < 5; i++) {
    const r = await rawExchange(suite.mainSocket, Buffer.from('GET / HTTP/1.1\r\n\r\n'), 2000);
    t.ok(r.closedByServer, 'closed by the server');
    t.equal(r.frames[0]?.header.code, 'FRAME_BAD_MAGIC');
  }
  t.equal(count('main', /error: failed to read a request from client#.*bad magic/), 1, 'logged once, not once per peer or byte');
  t.equal((await client().request('echo', Buffer.from('still'))).toString(), 'still');
});

t.test('a frame announcing a body to main is refused before the body is sent (main never carries payloads)', async (t) => {
  const [head] = encodeFrame({ op: 'lease', type: 'echo' }, Buffer.alloc(10));
  const r = await rawExchange(suite.mainSocket, head, 2000);
  t.equal(r.frames[0]?.header.code, 'PAYLOAD_TOO_LARGE');
  t.ok(r.closedByServer);
});

t.test('garbage on a secondary socket: error frame, others served', async (t) => {
  const r = await rawExchange(sock('secondary-1'), Buffer.alloc(64, 0xff), 2000);
  t.equal(r.frames[0]?.header.code, 'FRAME_BAD_MAGIC');
  t.equal((await client().request('echo', Buffer.from('ok'))).toString(), 'ok');
});

t.test('a valid frame with a bad header gets BAD_REQUEST and the connection stays usable', async (t) => {
  const [h1] = encodeFrame({ op: 'nope' });
  const [h2] = encodeFrame({ op: 'lease', type: 'echo' });
  const r = await rawExchange(suite.mainSocket, Buffer.concat([h1, h2]), IDLE_MS / 2);
  t.equal(r.frames[0]?.header.code, 'BAD_REQUEST');
  t.equal(r.frames[1]?.header.ok, true, 'the next request on the same connection is served');
});

t.test('garbage in every mailbox FIFO is logged and the suite keeps serving', async (t) => {
  for (const name of ['main', 'secondary-1', 'secondary-2']) {
    writeFifo(fifo(name), 'this is not json\n{"v":1,"t":"reserve"}\n' + 'x'.repeat(5000) + '\n');
  }
  await until('the damage to be logged', 3000, () => ['main', 'secondary-1', 'secondary-2'].every((n) => count(n, /failed to decode a message in mailbox/) >= 1));
  const c = client();
  const results = await Promise.all(echoes('g', 20).map((x) => c.request('echo', Buffer.from(x))));
  t.same(results.map(String), echoes('g', 20), 'every request served, each with its own answer');
  t.equal(count('main', /MESSAGE_TOO_LARGE|exceeds PIPE_BUF/), 1, 'the over-long line is reported, once');
});

t.test('a client that sends nothing, or half a frame, is cut off after the idle timeout', async (t) => {
  const silent = await rawExchange(suite.mainSocket, undefined, 5000);
  t.ok(silent.closedByServer, 'silent client closed');
  t.equal(silent.frames[0]?.header.code, 'IDLE_TIMEOUT');
  t.ok(silent.elapsedMs >= IDLE_MS - 50 && silent.elapsedMs < IDLE_MS + 1500, `cut after ${silent.elapsedMs} ms`);
  const [head] = encodeFrame({ op: 'lease', type: 'echo' });
  const half = await rawExchange(suite.mainSocket, head.subarray(0, 7), 5000);
  t.ok(half.closedByServer, 'half-frame client closed');
  t.equal(half.frames[0]?.header.code, 'IDLE_TIMEOUT');
  const sec = await rawExchange(sock('secondary-2'), Buffer.from([0x44, 0x51, 1]), 5000);
  t.equal(sec.frames[0]?.header.code, 'IDLE_TIMEOUT', 'secondaries too');
});

t.test('idle clients do not delay others (README: by less than 1 s)', async (t) => {
  const IDLERS = 50;
  let connected = 0;
  let allConnected: () => void = () => undefined;
  const connectedAll = new Promise<void>((resolve) => (allConnected = resolve));
  const idlers = Array.from({ length: IDLERS }, () => rawExchange(suite.mainSocket, undefined, 5000, () => ++connected === IDLERS && allConnected()));
  await connectedAll;
  const started = performance.now();
  t.equal((await client().request('echo', Buffer.from('through'))).toString(), 'through');
  const ms = performance.now() - started;
  t.ok(ms < 1000, `served in ${Math.round(ms)} ms with ${IDLERS} idle clients connected (bound: 1 s)`);
  const idle = await Promise.all(idlers);
  t.same(
    idle.map((r) => [r.closedByServer, r.frames[0]?.header.code]),
    idle.map(() => [true, 'IDLE_TIMEOUT']),
    'the idle clients were there all along, and each was cut off as idle',
  );
});

t.test('leases: unknown, forged, altered, old-key, reused, expired and stale are refused with their own codes, one log line per kind', async (t) => {
  const c = client();
  const g = await c.lease('echo');
  const on = `secondary-${g.secondary}`;
  const codeOf = async (lease: string, generation = g.generation) => (await errorOf(c.runOnLease({ ...g, lease, generation }, 'echo', Buffer.from('x'), 2000))).code;
  t.equal(await codeOf('0'.repeat(32)), 'LEASE_UNKNOWN', 'not a token of this format');
  t.equal(await codeOf('0'.repeat(32)), 'LEASE_UNKNOWN', 'again');
  t.equal(await codeOf(g.lease, (g.generation + 1) >>> 0), 'LEASE_STALE', 'another generation');
  // Hex digit 30 is in the expiry (bytes 11…16, docs/PROTOCOL.md §2.2): a later expiry, the MAC unchanged.
  const altered = g.lease.slice(0, 30) + (g.lease[30] === 'f' ? 'e' : 'f') + g.lease.slice(31);
  t.equal(await codeOf(altered), 'LEASE_UNKNOWN', 'altered: its MAC does not match');
  const forged = new LeaseSigner(randomBytes(32), g.secondary, g.generation).mint(1, Date.now() + 3000, 'echo');
  t.equal(await codeOf(g.lease.slice(0, 10) + forged.slice(10)), 'LEASE_UNKNOWN', 'forged with a guessed key id');
  t.equal(await codeOf(forged), 'LEASE_STALE', 'minted with another key (as before the suite restarted)');
  t.equal((await c.runOnLease(g, 'echo', Buffer.from('x'), 2000)).toString(), 'x', 'the real lease works once');
  t.equal((await errorOf(c.runOnLease(g, 'echo', Buffer.from('x'), 2000))).code, 'LEASE_UNKNOWN', 'not twice');
  const kinds = ['malformed', 'wrong-generation', 'forged', 'old-key', 'replayed'];
  const lines = (kind: string) => count(on, new RegExp(`refused a lease.*lease_fault=${kind}\\b`));
  await until('the refusals to reach the log', 2000, () => kinds.every((k) => lines(k) > 0));
  for (const kind of kinds) t.equal(lines(kind), 1, `one log line for ${kind}`);
  const late = await c.lease('echo');
  await new Promise((r) => setTimeout(r, 450)); // lease_ttl_ms is 300: let it lapse
  t.equal((await errorOf(c.runOnLease(late, 'echo', Buffer.from('x'), 2000))).code, 'LEASE_EXPIRED');
});

t.test('a client holding a stale lease gets a new one through the library', async (t) => {
  // The secondary that granted the lease restarts before the lease is used (systemctl restart):
  // the client now holds a lease of an earlier process.
  const { client: c, retried, first } = watchedClient(suite.mainSocket, (g: LeaseGranted) => suite.restartDaemon(`secondary-${g.secondary}`));
  const info = await c.requestWithInfo('sha256', Buffer.from(''));
  t.equal(info.result.toString(), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  t.same(retried, ['LEASE_STALE'], 'the stale lease was refused once, then a new one served it');
  t.not(info.generation, first()!.generation, 'served under another generation than the stale lease named');
  t.equal(info.generation, suite.slot(`secondary-${info.secondary}`)!.generation, 'by the current process of that secondary');
});

t.test('unknown type is refused by main without reserving anything', async (t) => {
  const c = client({ attempts: 1 });
  const secondaries = ['secondary-1', 'secondary-2'];
  // A secondary publishes a request's counters within 5 ms of it: two reads 20 ms apart that
  // agree have the earlier tests' requests all counted.
  let last = '';
  const before = await until("the secondaries' counters to settle", 2000, () => {
    const now = secondaries.map((n) => suite.slot(n)!);
    const key = JSON.stringify(now.map((s) => [s.pid, s.requests, s.failures, s.running]));
    const settled = key === last;
    last = key;
    return settled ? now : undefined;
  });
  // Every credit minted into a lease (2 secondaries × max_leases 2): a type main had to mint
  // for would wait in its queue and end BUSY. Minted leases hold nothing at a secondary until
  // a client presents them.
  const held: LeaseGranted[] = [];
  for (let i = 0; i < 4; i++) held.push(await c.lease('echo'));
  t.same(held.map((g) => g.secondary).sort(), [1, 1, 2, 2], "every secondary's credits minted");
  t.same(secondaries.map((n) => suite.slot(n)!.active), [0, 0], 'nothing in use at the secondaries before a lease is presented');
  const e = await errorOf(c.lease('frobnicate'));
  t.equal(e.code, 'UNKNOWN_TYPE', 'refused at once for its type, not queued for a lease');
  t.equal(suite.slot('main')!.queued, 0, 'it never waited in the admission queue');
  for (const g of held) t.equal((await c.runOnLease(g, 'echo', Buffer.from('x'), 2000)).toString(), 'x', 'the held leases are intact');
  // Their slots said active 0 before the runs as well: wait for the 4 requests to be counted.
  const counted = () => secondaries.reduce((sum, n, i) => sum + suite.slot(n)!.requests - before[i]!.requests, 0);
  await until('the secondaries to publish the 4 requests, their leases ended', 2000, () => counted() >= 4 && secondaries.every((n) => suite.slot(n)!.active === 0));
  const after = secondaries.map((n) => suite.slot(n)!);
  t.same(
    after.map((s, i) => [s.pid, s.requests - before[i]!.requests, s.failures - before[i]!.failures]),
    before.map((s) => [s.pid, 2, 0]),
    'the secondaries served exactly the 4 held leases and failed nothing: no lease was reserved or refused for the unknown type',
  );
});

t.test('sleep past the deadline is cut off, logged, and the secondary stays healthy', async (t) => {
  const e = await errorOf(client().request('sleep', Buffer.from('5000')));
  t.equal(e.code, 'DEADLINE_EXCEEDED');
  await until('the diagnostic', 2000, () => count('secondary-1', /cut off a 'sleep' request/) + count('secondary-2', /cut off a 'sleep' request/) === 1);
  const line = [...suite.output('secondary-1'), ...suite.output('secondary-2')].find((l) => /cut off a 'sleep'/.test(l))!;
  t.match(line, /deadline_ms=500/);
  t.match(line, /lease=[0-9a-f]{82}\b/);
  t.match(line, /secondary=secondary-\d/);
  t.equal((await client().request('echo', Buffer.from('alive'))).toString(), 'alive');
  t.equal((await errorOf(client().request('sleep', Buffer.from('abc')))).code, 'BAD_REQUEST');
});

t.test('every secondary full: requests wait in the admission queue, then BUSY with retry-after', async (t) => {
  // 2 secondaries × max_leases 2 = 4 leases; hold them all with open sessions.
  const c = client({ attempts: 1 });
  const held: Session[] = [];
  for (let i = 0; i < 4; i++) {
    const g = await c.lease('echo');
    const s = await Session.open(g, 1024, 2000);
    await s.run('echo', Buffer.from('hold'), 2000);
    held.push(s);
  }
  const e = await errorOf(c.lease('echo'));
  t.equal(e.code, 'BUSY');
  t.ok((e.retryAfterMs ?? 0) > 0, `retry after ${e.retryAfterMs} ms`);
  // A queued request is served as soon as a lease frees up.
  const queued = client({ attempts: 1 }).request('echo', Buffer.from('queued'));
  await until('the request to wait in the admission queue', 2000, () => suite.slot('main')!.queued === 1);
  held.pop()!.close();
  t.equal((await queued).toString(), 'queued');
  for (const s of held) s.close();
});

t.test('a killed secondary: requests keep succeeding on the other one', async (t) => {
  t.ok(suite.signal('secondary-2', 'SIGKILL'), 'secondary-2 killed');
  const c = client();
  const results = await Promise.all(Array.from({ length: 30 }, (_, i) => c.requestWithInfo('echo', Buffer.from(`k${i}`))));
  t.same(results.map((r) => r.result.toString()), echoes('k', 30), 'every request served, each with its own answer');
  t.same([...new Set(results.map((r) => r.secondary))], [1], 'all by secondary-1');
});

t.test('no secondary at all: UNAVAILABLE after the queue timeout', async (t) => {
  await suite.stop('secondary-1');
  await suite.stop('secondary-2');
  const e = await errorOf(client({ attempts: 1 }).request('echo', Buffer.from('x')));
  t.equal(e.code, 'UNAVAILABLE');
  t.match(e.message, /no secondary server is running/);
  await suite.start('secondary-1');
  t.equal((await client().request('echo', Buffer.from('back'))).toString(), 'back', 'served again once one is back');
});
