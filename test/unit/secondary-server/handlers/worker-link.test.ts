/**
 * One worker link (handlers/worker-link.ts) on fakes: an in-memory stream for the worker's
 * socket, a fake pool (WorkerLinkOwner) recording what the link tells it, and a fake unit
 * manager. The hello within start_timeout_ms, the concurrency it asks for, the cancel at the
 * deadline and the restart after cancel_grace_ms, a worker dying with a request in flight,
 * and close. No sockets, no systemd (worker-pool.test.ts runs the pool on real sockets).
 */
import type net from 'node:net';
import { Duplex } from 'node:stream';
import t, { type Test } from 'tap';
import { encodeFrame, FrameDecoder, type FrameHeader } from '../../../../daemons/common/frame.js';
import { WorkerLink, type PendingRun, type WorkerLinkOwner } from '../../../../daemons/secondary-server/handlers/worker-link.js';
import type { PersistentType } from '../../../../daemons/common/request-type.js';
import { capturingLogger, runContext, typeOf } from './lib.js';

/** The worker's end of the link: what the link wrote to it, and a way to answer. */
class FakeWorkerSocket extends Duplex {
  readonly received: FrameHeader[] = [];
  private readonly dec = new FrameDecoder(1 << 20);
  private onReceived: (() => void) | undefined;

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.dec.push(chunk);
    for (let r = this.dec.next(); r.kind === 'frame'; r = this.dec.next()) this.received.push(r.frame.header);
    this.onReceived?.();
    done();
  }

  /** The worker sends a frame to the secondary. */
  answer(h: FrameHeader, body?: Buffer): void {
    this.push(Buffer.concat(encodeFrame(h, body)));
  }

  /** Resolves once the link has written `n` frames in all. */
  async frames(n: number): Promise<FrameHeader[]> {
    while (this.received.length < n) await new Promise<void>((resolve) => (this.onReceived = resolve));
    return this.received;
  }
}

/** Resolves once what a fake worker pushed has reached the link (a stream delivers it at once or on the next tick). */
const delivered = () => new Promise<void>((resolve) => setImmediate(resolve));

function setup(t: Test, decl: Partial<{ start_timeout_ms: number; cancel_grace_ms: number }> = {}) {
  const type = typeOf('resize', { handler: 'exec', mode: 'persistent', command: ['/bin/true'], processes: 1, start_timeout_ms: 60_000, cancel_grace_ms: 60_000, ...decl }) as PersistentType;
  const sockets: FakeWorkerSocket[] = [];
  const paths: string[] = [];
  const restarts: string[] = [];
  let restarted: (() => void) | undefined;
  const told = { dispatch: 0, failedOne: 0, crashed: [] as PendingRun[], settled: [] as PendingRun[] };
  const { logger, lines } = capturingLogger();
  const owner: WorkerLinkOwner = {
    type,
    parts: {
      logger,
      runtimeDir: '/run/fake',
      units: { restart: async (u) => void (restarts.push(u), restarted?.()) },
      connect: (p) => {
        paths.push(p);
        const s = new FakeWorkerSocket();
        sockets.push(s);
        return s as unknown as net.Socket;
      },
      backoffMs: () => 60_000,
    },
    dispatch: () => void told.dispatch++,
    failedOne: () => void told.failedOne++,
    crashed: (p) => void told.crashed.push(p),
    settle: (p) => void told.settled.push(p),
  };
  const link = new WorkerLink(owner, { type: 'resize', index: 2 });
  t.teardown(() => link.close());
  const restart = () => new Promise<void>((resolve) => (restarted = resolve));
  /** A request as the pool makes it; `result` settles with its outcome. */
  const pending = (data: string, deadlineMs = 10_000) => {
    const ctx = runContext(deadlineMs);
    t.teardown(() => ctx.dispose());
    let settle!: (r: { ok: boolean; value: unknown }) => void;
    const result = new Promise<{ ok: boolean; value: unknown }>((resolve) => (settle = resolve));
    const p: PendingRun = { data: Buffer.from(data), ctx, resolve: (b) => settle({ ok: true, value: b.toString() }), reject: (e) => settle({ ok: false, value: e }), tried: new Set(), onAbort: () => undefined };
    return { p, result };
  };
  /** Connects the link and has the worker say hello with `concurrency`. */
  const ready = async (concurrency = 2) => {
    link.connect();
    const s = sockets.at(-1)!;
    s.emit('connect');
    s.answer({ op: 'hello', protocol: 1, types: ['resize'], concurrency });
    await delivered();
    return s;
  };
  return { link, sockets, paths, restarts, restart, told, lines, pending, ready };
}

t.test('a worker that says hello is ready with the concurrency it asked for; a run goes to it and its result settles the request', async (t) => {
  const h = setup(t);
  t.equal(h.link.state, 'connecting');
  const s = await h.ready(3);
  t.equal(h.paths[0], '/run/fake/worker-resize-2.sock', "worker 2's socket under the runtime directory");
  t.equal(h.link.state, 'ready');
  t.equal(h.link.concurrency, 3);
  t.equal(h.link.room, 3);
  t.equal(h.told.dispatch, 1, 'the pool is told to send what waits');
  const { p, result } = h.pending('hello');
  h.link.send(p);
  t.equal(h.link.room, 2);
  const [run] = (await s.frames(1)).slice(-1);
  t.match(run, { op: 'run', id: 1, type: 'resize', deadline_ms: 10_000 });
  s.answer({ op: 'result', id: 1 }, Buffer.from('HELLO'));
  t.same(await result, { ok: true, value: 'HELLO' });
  t.same(h.told.settled, [p]);
  t.equal(h.link.room, 3);
});

t.test('no hello within start_timeout_ms: the link fails and the unit is restarted', async (t) => {
  const h = setup(t, { start_timeout_ms: 100 });
  const restarted = h.restart();
  h.link.connect();
  h.sockets[0]!.emit('connect');
  t.equal(h.link.state, 'greeting');
  await restarted;
  t.same(h.restarts, ['dispatchd-worker@resize-2.service']);
  t.equal(h.link.state, 'failed');
  t.match(h.link.lastFailure, /did not say hello within start_timeout_ms \(100 ms\)/);
  t.equal(h.told.failedOne, 1);
});

t.test('a hello naming other types fails the link', async (t) => {
  const h = setup(t);
  const restarted = h.restart();
  h.link.connect();
  h.sockets[0]!.emit('connect');
  h.sockets[0]!.answer({ op: 'hello', protocol: 1, types: ['thumbnail'], concurrency: 1 });
  await restarted;
  t.equal(h.link.state, 'failed');
  t.match(h.link.lastFailure, /names the types thumbnail, not 'resize'/);
});

t.test('a request cancelled at its deadline takes room until answered; unanswered after cancel_grace_ms, the unit is restarted', async (t) => {
  const h = setup(t, { cancel_grace_ms: 100 });
  const s = await h.ready(1);
  const { p } = h.pending('slow');
  h.link.send(p);
  h.link.cancel(p);
  const frames = await s.frames(2);
  t.match(frames[1], { op: 'cancel', id: 1 });
  t.equal(h.link.room, 0, 'the cancelled request still holds its place');
  const restarted = h.restart();
  await restarted;
  t.equal(h.link.state, 'failed');
  t.match(h.link.lastFailure, /did not answer the cancel of request id 1 within cancel_grace_ms \(100 ms\)/);
});

t.test('a cancelled request answered within the grace frees its place; the link stays ready', async (t) => {
  const h = setup(t, { cancel_grace_ms: 60_000 });
  const s = await h.ready(1);
  const { p } = h.pending('slow');
  h.link.send(p);
  h.link.cancel(p);
  await s.frames(2);
  const dispatched = h.told.dispatch;
  s.answer({ op: 'result', id: 1 }, Buffer.from('late'));
  await delivered();
  t.equal(h.link.room, 1);
  t.equal(h.link.state, 'ready');
  t.equal(h.told.dispatch, dispatched + 1);
  t.same(h.restarts, []);
});

t.test('a worker that closes its connection with a request in flight: the pool gets it as crashed, the link reconnects', async (t) => {
  const h = setup(t);
  const s = await h.ready(2);
  const { p } = h.pending('boom');
  h.link.send(p);
  await s.frames(1);
  const closed = new Promise<void>((resolve) => s.once('close', () => setImmediate(resolve)));
  s.destroy();
  await closed;
  t.same(h.told.crashed, [p]);
  t.equal(p.link, undefined);
  t.equal(h.link.state, 'connecting');
  t.same(h.restarts, [], 'a worker that exited is not restarted by the link (systemd starts it on the next connect)');
});

t.test('a closed link stays closed: connecting again does nothing', async (t) => {
  const h = setup(t);
  await h.ready(1);
  h.link.close();
  t.equal(h.link.state, 'closed');
  t.equal(h.sockets[0]!.destroyed, true);
  h.link.connect();
  t.equal(h.sockets.length, 1, 'no new connection');
  t.equal(h.link.state, 'closed');
});
