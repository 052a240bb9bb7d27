/**
 * The secondary's worker pool (handlers/worker-pool.ts) against fake workers: real Unix
 * sockets at the paths topology.ts names, each fake speaking the worker protocol as told
 * (or not at all), and a fake unit manager recording restarts. No systemd: the system test
 * (test/system/workers.test.ts) runs the real units.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { DispatchError } from '../../../../daemons/common/errors.js';
import { encodeFrame, FrameDecoder, type FrameHeader } from '../../../../daemons/common/frame.js';
import { workerSocketPath } from '../../../../daemons/common/topology.js';
import type { PersistentType } from '../../../../daemons/common/request-type.js';
import { WorkerPool } from '../../../../daemons/secondary-server/handlers/worker-pool.js';
import { capturingLogger, runContext, typeOf } from './lib.js';

/** What a fake worker does with a run frame. */
type Behaviour = 'echo' | 'die' | 'ignore' | 'fail' | 'lie';

interface FakeWorker {
  /** Run frames received (their DATA, as text). */
  runs: string[];
  cancels: number[];
  /** The most runs in flight at once. */
  maxInFlight: number;
  connections: number;
  behaviour: Behaviour;
  close(): void;
}

/**
 * A fake worker at worker K's socket: says hello (unless `hello` is false) with `concurrency`,
 * then answers each run by `behaviour` after `delayMs`.
 */
async function fakeWorker(t: Test, dir: string, type: string, k: number, o: { hello?: FrameHeader | false; concurrency?: number; behaviour?: Behaviour; delayMs?: number; garbage?: boolean } = {}): Promise<FakeWorker> {
  const w: FakeWorker = { runs: [], cancels: [], maxInFlight: 0, connections: 0, behaviour: o.behaviour ?? 'echo', close: () => undefined };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    w.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    const send = (h: FrameHeader, body?: Buffer) => {
      if (!s.destroyed) s.write(Buffer.concat(encodeFrame(h, body)));
    };
    if (o.garbage) {
      s.write('this is not a frame\n');
      return;
    }
    if (o.hello !== false) send(o.hello ?? { op: 'hello', protocol: 1, types: [type], concurrency: o.concurrency ?? 4 });
    const dec = new FrameDecoder(1 << 20);
    let inFlight = 0;
    s.on('data', (b: Buffer) => {
      dec.push(b);
      for (let r = dec.next(); r.kind === 'frame'; r = dec.next()) {
        const h = r.frame.header;
        if (h.op === 'cancel') {
          w.cancels.push(h.id as number);
          continue;
        }
        w.runs.push(r.frame.body.toString());
        inFlight++;
        w.maxInFlight = Math.max(w.maxInFlight, inFlight);
        const body = r.frame.body;
        const behaviour = w.behaviour;
        setTimeout(() => {
          inFlight--;
          if (behaviour === 'die') s.destroy();
          else if (behaviour === 'echo') send({ op: 'result', id: h.id }, body);
          else if (behaviour === 'fail') send({ op: 'error', id: h.id, message: 'the fake failed' });
          else if (behaviour === 'lie') send({ op: 'result', id: 999 }, body);
        }, o.delayMs ?? 5);
      }
    });
  });
  const p = workerSocketPath(dir, { type, index: k });
  await new Promise<void>((resolve) => server.listen(p, resolve));
  w.close = () => {
    server.close();
    for (const s of sockets) s.destroy();
  };
  t.teardown(() => w.close());
  return w;
}

function setup(t: Test, decl: Partial<{ processes: number; idempotent: boolean; start_timeout_ms: number; cancel_grace_ms: number }> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-pool-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const type = typeOf('resize', { handler: 'exec', mode: 'persistent', command: ['/bin/true'], processes: 1, start_timeout_ms: 300, cancel_grace_ms: 200, ...decl }) as PersistentType;
  const restarts: string[] = [];
  const { logger, lines } = capturingLogger();
  const make = () => {
    const pool = new WorkerPool(type, { logger, runtimeDir: dir, units: { restart: async (u) => void restarts.push(u) }, backoffMs: () => 50 });
    t.teardown(() => pool.close());
    return pool;
  };
  return { dir, type, restarts, lines, make };
}

async function run(pool: WorkerPool, data: string, deadlineMs = 5000): Promise<{ ok: true; value: string } | { ok: false; error: DispatchError | string }> {
  const ctx = runContext(deadlineMs);
  try {
    return { ok: true, value: (await pool.run(Buffer.from(data), ctx)).toString() };
  } catch (err) {
    return { ok: false, error: err instanceof DispatchError ? err : String(err) };
  } finally {
    ctx.dispose();
  }
}

const codeOf = (r: Awaited<ReturnType<typeof run>>) => (r.ok ? 'ok' : r.error instanceof DispatchError ? r.error.code : r.error);

t.test('requests go to the workers that said hello, never more in flight than a hello asked for', async (t) => {
  const s = setup(t, { processes: 2 });
  const w1 = await fakeWorker(t, s.dir, 'resize', 1, { concurrency: 1, delayMs: 20 });
  const w2 = await fakeWorker(t, s.dir, 'resize', 2, { concurrency: 2, delayMs: 20 });
  const pool = s.make();
  const out = await Promise.all(Array.from({ length: 12 }, (_, i) => run(pool, `r${i}`)));
  t.same(out.map((r) => (r.ok ? r.value : 'error')), Array.from({ length: 12 }, (_, i) => `r${i}`), 'every request answered with its own DATA');
  t.equal(w1.maxInFlight, 1, 'worker 1 asked for 1');
  t.ok(w2.maxInFlight <= 2, 'worker 2 asked for 2');
  t.equal(w1.runs.length + w2.runs.length, 12, 'each request ran once');
  t.ok(w1.runs.length > 0 && w2.runs.length > 0, 'both workers served');
  t.ok(s.lines.some((l) => /the 'resize' worker resize-1 is ready \(concurrency 1\)/.test(l)), 'ready line');
  t.same(s.restarts, []);
});

t.test('an error answer is HANDLER_FAILED with the worker\'s message; the worker keeps serving', async (t) => {
  const s = setup(t);
  const w = await fakeWorker(t, s.dir, 'resize', 1, { behaviour: 'fail' });
  const pool = s.make();
  const r = await run(pool, 'x');
  t.equal(codeOf(r), 'HANDLER_FAILED');
  t.match(!r.ok && r.error instanceof DispatchError ? r.error.message : '', /the 'resize' handler failed: the fake failed/);
  w.behaviour = 'echo';
  t.same(await run(pool, 'y'), { ok: true, value: 'y' });
  t.equal(w.connections, 1, 'the same connection');
});

t.test('a worker that never says hello: HANDLER_FAILED at start_timeout_ms, an err line, its unit restarted; not waited on after', async (t) => {
  const s = setup(t, { start_timeout_ms: 200 });
  await fakeWorker(t, s.dir, 'resize', 1, { hello: false });
  const pool = s.make();
  const started = Date.now();
  const r = await run(pool, 'x');
  t.equal(codeOf(r), 'HANDLER_FAILED');
  t.match(!r.ok && r.error instanceof DispatchError ? r.error.message : '', /no 'resize' worker is ready: worker resize-1 \(dispatchd-worker@resize-1\.service\) failed: it did not say hello within start_timeout_ms \(200 ms\)/);
  t.ok(Date.now() - started < 2000, 'answered at the start timeout, not the deadline');
  t.same(s.restarts, ['dispatchd-worker@resize-1.service']);
  t.ok(s.lines.some((l) => /resize-1 failed: it did not say hello.*marked failed, restarting dispatchd-worker@resize-1\.service/.test(l) && /error/.test(l)), 'the err line');
});

t.test('a hello that does not name the type, or garbage on the socket: the worker is failed and restarted', async (t) => {
  for (const [name, o] of [
    ['hello for another type', { hello: { op: 'hello', protocol: 1, types: ['other'], concurrency: 1 } }],
    ['garbage', { garbage: true }],
  ] as const) {
    const s = setup(t);
    await fakeWorker(t, s.dir, 'resize', 1, o);
    const pool = s.make();
    t.equal(codeOf(await run(pool, 'x')), 'HANDLER_FAILED', `${name}: HANDLER_FAILED`);
    t.same(s.restarts.slice(0, 1), ['dispatchd-worker@resize-1.service'], `${name}: restarted`);
    await pool.close();
  }
});

t.test('a worker that breaks the protocol mid-request: HANDLER_CRASHED saying so (not "died"), an err line "it broke the worker protocol", its unit restarted', async (t) => {
  const s = setup(t);
  await fakeWorker(t, s.dir, 'resize', 1, { behaviour: 'lie' });
  const pool = s.make();
  const r = await run(pool, 'x');
  t.equal(codeOf(r), 'HANDLER_CRASHED');
  t.match(!r.ok && r.error instanceof DispatchError ? r.error.message : '', /^the 'resize' worker resize-1 \(dispatchd-worker@resize-1\.service\) broke the worker protocol \(it answered request id 999, which is not in flight\) while it ran the request, which may have run in part; not sent again: the type is not idempotent/);
  t.ok(s.lines.some((l) => /resize-1 failed: it broke the worker protocol: it answered request id 999, which is not in flight; marked failed, restarting dispatchd-worker@resize-1\.service/.test(l) && /error/.test(l)), 'the err line, with the documented phrase');
  t.same(s.restarts.slice(0, 1), ['dispatchd-worker@resize-1.service'], 'restarted');
  await pool.close();
});

t.test('a worker that dies mid-request: HANDLER_CRASHED, not sent again for a type that is not idempotent', async (t) => {
  const s = setup(t, { processes: 2 });
  const w1 = await fakeWorker(t, s.dir, 'resize', 1, { behaviour: 'die' });
  const w2 = await fakeWorker(t, s.dir, 'resize', 2, { behaviour: 'die' });
  const pool = s.make();
  const r = await run(pool, 'x');
  t.equal(codeOf(r), 'HANDLER_CRASHED');
  t.match(!r.ok && r.error instanceof DispatchError ? r.error.message : '', /not sent again: the type is not idempotent/);
  t.equal(w1.runs.length + w2.runs.length, 1, 'it ran once');
  t.same(s.restarts, [], 'systemd restarts a worker that exits (Restart=), not the secondary');
});

t.test('idempotent: sent once more, to another worker; a request that kills every worker kills two, then HANDLER_CRASHED', async (t) => {
  const s = setup(t, { processes: 3, idempotent: true });
  const ws = [await fakeWorker(t, s.dir, 'resize', 1, { behaviour: 'die' }), await fakeWorker(t, s.dir, 'resize', 2, { behaviour: 'die' }), await fakeWorker(t, s.dir, 'resize', 3, { behaviour: 'die' })];
  const pool = s.make();
  const r = await run(pool, 'poison');
  t.equal(codeOf(r), 'HANDLER_CRASHED');
  t.match(!r.ok && r.error instanceof DispatchError ? r.error.message : '', /sent to 2 workers, each died \(retried at most once\)/);
  t.equal(ws.reduce((n, w) => n + w.runs.length, 0), 2, 'two workers got it, the third did not');
  t.equal(s.lines.filter((l) => /sending the 'resize' request again, to another worker/.test(l)).length, 1, 'one retry line');
});

t.test('idempotent: a request whose first worker dies is answered by another', async (t) => {
  const s = setup(t, { processes: 2, idempotent: true });
  const w1 = await fakeWorker(t, s.dir, 'resize', 1, { behaviour: 'die', concurrency: 1 });
  const w2 = await fakeWorker(t, s.dir, 'resize', 2, { behaviour: 'echo', concurrency: 1 });
  const pool = s.make();
  // Two at once: one lands on each worker; the one on worker 1 is retried on worker 2.
  const out = await Promise.all([run(pool, 'a'), run(pool, 'b')]);
  t.same(out.map(codeOf), ['ok', 'ok']);
  t.equal(w1.runs.length, 1);
  t.equal(w2.runs.length, 2, 'worker 2 ran its own and the retried one');
});

t.test('the deadline: a cancel to the worker; no answer within cancel_grace_ms restarts its unit', async (t) => {
  const s = setup(t, { cancel_grace_ms: 100 });
  const w = await fakeWorker(t, s.dir, 'resize', 1, { behaviour: 'ignore' });
  const pool = s.make();
  const r = await run(pool, 'x', 100);
  t.equal(codeOf(r), 'deadline', 'rejected with the signal\'s reason (the type runner makes it DEADLINE_EXCEEDED)');
  const until = Date.now() + 3000;
  while (s.restarts.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.same(w.cancels, [1], 'the worker got a cancel for request 1');
  t.same(s.restarts, ['dispatchd-worker@resize-1.service'], 'restarted after the grace');
  t.ok(s.lines.some((l) => /did not answer the cancel of request id 1 within cancel_grace_ms \(100 ms\)/.test(l)));
});

t.test('the deadline, and the worker answers the cancel in time: not restarted, it keeps serving', async (t) => {
  const s = setup(t, { cancel_grace_ms: 1000 });
  const w = await fakeWorker(t, s.dir, 'resize', 1, { behaviour: 'echo', delayMs: 150, concurrency: 1 });
  const pool = s.make();
  t.equal(codeOf(await run(pool, 'slow', 50)), 'deadline');
  t.same(await run(pool, 'next'), { ok: true, value: 'next' }, 'the next request waits for the late answer (room), then runs');
  t.same(s.restarts, []);
  t.equal(w.connections, 1);
});
