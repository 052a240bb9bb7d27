/**
 * spec/worker.json, the worker protocol's vectors, against the TypeScript side: the message
 * checks (common/worker-protocol.ts) and the worker library (daemons/worker/worker.ts) driven
 * by a scripted secondary over a real Unix socket. python/tests/test_worker.py runs the same
 * file against the Python library.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { DispatchError } from '../../../daemons/common/errors.js';
import { encodeFrame, FrameDecoder, type Frame, type FrameHeader } from '../../../daemons/common/frame.js';
import { parseSecondaryMessage, parseWorkerMessage } from '../../../daemons/common/worker-protocol.js';
import { Worker, type WorkerFunction } from '../../../daemons/worker/worker.js';

const SPEC = path.join(import.meta.dirname, '..', '..', '..', 'spec', 'worker.json');

interface MessageVector {
  name: string;
  header: FrameHeader;
  message?: unknown;
  error?: string;
}
interface Step {
  send?: { header?: FrameHeader; body_hex?: string; raw_hex?: string };
  expect?: { header: FrameHeader; body_hex?: string; message_contains?: string };
  expect_close?: boolean;
}
interface Session {
  name: string;
  worker: { concurrency: number; functions: string[] };
  steps: Step[];
}
const spec = JSON.parse(fs.readFileSync(SPEC, 'utf8')) as { worker_messages: MessageVector[]; secondary_messages: MessageVector[]; sessions: Session[] };

function checkMessages(t: Test, list: MessageVector[], parse: (h: FrameHeader) => unknown): void {
  for (const v of list) {
    if (v.error) {
      t.throws(() => parse(v.header), { code: v.error }, v.name);
    } else {
      t.same(parse(v.header), v.message, v.name);
    }
  }
}

t.test('worker_messages: the secondary\'s checks', async (t) => {
  t.ok(spec.worker_messages.length >= 10);
  checkMessages(t, spec.worker_messages, parseWorkerMessage);
});

t.test('secondary_messages: the worker library\'s checks', async (t) => {
  checkMessages(t, spec.secondary_messages, parseSecondaryMessage);
});

const FUNCTIONS: Record<string, WorkerFunction> = {
  echo: (data) => data,
  upper: (data) => data.toString('utf8').toUpperCase(),
  fail: () => {
    throw new Error('boom');
  },
  'wait-cancel': (_data, ctx) =>
    new Promise((_, reject) => {
      ctx.signal.addEventListener('abort', () => reject(new Error('cancelled')), { once: true });
    }),
};

/** The frames and the end of a connection, awaited one by one. */
class Reader {
  private readonly dec = new FrameDecoder(1 << 20);
  private readonly frames: Frame[] = [];
  private closed = false;
  private wake: (() => void) | undefined;
  constructor(socket: net.Socket) {
    socket.on('data', (b: Buffer) => {
      this.dec.push(b);
      for (let r = this.dec.next(); r.kind === 'frame'; r = this.dec.next()) this.frames.push(r.frame);
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }
  /** The next frame, or 'closed'. */
  async next(): Promise<Frame | 'closed'> {
    for (;;) {
      const f = this.frames.shift();
      if (f) return f;
      if (this.closed) return 'closed';
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

for (const s of spec.sessions) {
  t.test(`session: ${s.name}`, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-spec-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const worker = new Worker({ concurrency: s.worker.concurrency });
    for (const name of s.worker.functions) worker.handle(name, FUNCTIONS[name]!);
    const server = net.createServer((sock) => worker.serve(sock));
    await new Promise<void>((resolve) => server.listen(path.join(dir, 'w.sock'), resolve));
    t.teardown(() => server.close());
    const sock = net.createConnection(path.join(dir, 'w.sock'));
    t.teardown(() => sock.destroy());
    const reader = new Reader(sock);
    for (const [i, step] of s.steps.entries()) {
      if (step.send) {
        if (step.send.raw_hex !== undefined) sock.write(Buffer.from(step.send.raw_hex, 'hex'));
        else {
          const [a, b] = encodeFrame(step.send.header!, Buffer.from(step.send.body_hex ?? '', 'hex'));
          sock.write(Buffer.concat([a, b]));
        }
        continue;
      }
      const got = await reader.next();
      if (step.expect_close) {
        t.equal(got, 'closed', `step ${i}: the worker closed the connection`);
        continue;
      }
      if (got === 'closed') {
        t.fail(`step ${i}: the connection closed, expected ${JSON.stringify(step.expect)}`);
        return;
      }
      t.match(got.header, step.expect!.header, `step ${i}: header`);
      t.equal(got.body.toString('hex'), step.expect!.body_hex ?? '', `step ${i}: body`);
      if (step.expect!.message_contains) t.match(String(got.header.message), step.expect!.message_contains, `step ${i}: message`);
    }
  });
}

t.test('the library refuses what it cannot serve', async (t) => {
  t.throws(() => new Worker({ concurrency: 0 }), RangeError);
  t.throws(() => new Worker().handle('Bad', () => ''), RangeError);
  await t.rejects(new Worker().run(), RangeError, 'no function registered');
  const w = new Worker().handle('echo', (d) => d);
  const env = { ...process.env };
  delete process.env.LISTEN_FDS;
  t.teardown(() => Object.assign(process.env, env));
  const err = await w.run().then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof DispatchError && err.code === 'LISTEN_FDS_MISSING', 'not started by its socket unit: LISTEN_FDS_MISSING');
});
