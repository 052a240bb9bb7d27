import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { DispatchError } from '../../../daemons/common/errors.js';
import { MailboxReader, MailboxWriter, mkfifoCommand, openMailboxFd } from '../../../daemons/common/mailbox.js';
import type { MailboxMessage } from '../../../daemons/common/messages.js';
import { collect, firstLine, spawnTs } from '../lib/child.js';
import { isLarge, messageFor } from '../lib/mailbox-traffic.js';
import { SAMPLES } from '../lib/sample-messages.js';

const WRITER = fileURLToPath(new URL('./fixtures/mailbox-writer.ts', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-mailbox-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fifoPath = () => path.join(dir, `m${++n}.fifo`);

/** Collects what a reader emits; `until(k)` resolves once k messages arrived. */
function record(reader: MailboxReader) {
  const messages: MailboxMessage[] = [];
  const invalid: Array<{ error: DispatchError; preview: string }> = [];
  const errors: DispatchError[] = [];
  let want = Infinity;
  let done: (() => void) | undefined;
  const check = () => {
    if (messages.length + invalid.length >= want && done) done();
  };
  reader.on('message', (m) => {
    messages.push(m);
    check();
  });
  reader.on('invalid', (error, preview) => {
    invalid.push({ error, preview });
    check();
  });
  reader.on('error', (e) => errors.push(e));
  return {
    messages,
    invalid,
    errors,
    /** Resolves once `k` lines (valid or not) were decoded in all. */
    until(k: number): Promise<void> {
      want = k;
      return new Promise((resolve) => {
        done = resolve;
        check();
      });
    },
  };
}

/** Sends until the pipe is full: returns the promises of the messages sent; the last is still queued. */
function fill(w: MailboxWriter, make: (i: number) => MailboxMessage): Promise<void>[] {
  const sent: Promise<void>[] = [];
  for (let i = 0; w.queued === 0; i++) {
    if (i > 100_000) throw new Error('the pipe never filled');
    const p = w.send(make(i));
    p.catch(() => {}); // observed by the caller
    sent.push(p);
  }
  return sent;
}

/** JSON with sorted keys, to compare messages whatever their key order. */
const canonical = (m: object) => JSON.stringify(Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : 1))));

const ping = (seq: number): MailboxMessage => ({ v: 1, t: 'ping', from: 'watchdog', seq });

t.test('openMailboxFd creates a FIFO of mode 0600 and reuses an existing one', async (t) => {
  const p = fifoPath();
  const fd = openMailboxFd(p);
  const st = fs.statSync(p);
  t.ok(st.isFIFO(), 'a FIFO');
  t.equal(st.mode & 0o777, 0o600, 'mode 0600');
  const fd2 = openMailboxFd(p);
  t.not(fd2, fd, 'an existing FIFO is opened again');
  fs.closeSync(fd);
  fs.closeSync(fd2);

  let called = '';
  const p2 = fifoPath();
  const fd3 = openMailboxFd(p2, (q) => {
    called = q;
    mkfifoCommand(q);
  });
  t.equal(called, p2, 'the mkfifo function is called with the path');
  fs.closeSync(fd3);
});

t.test('openMailboxFd refuses what is not a FIFO', async (t) => {
  const file = path.join(dir, 'plain');
  fs.writeFileSync(file, '');
  t.throws(() => openMailboxFd(file), { code: 'MAILBOX_OPEN_FAILED', message: /plain.*not a FIFO/ });
  t.throws(() => openMailboxFd(path.join(dir, 'no-such-dir', 'x.fifo')), { code: 'MAILBOX_OPEN_FAILED', message: /no-such-dir/ });
});

t.test('messages from 4 concurrent writer processes: none corrupt, none lost', async (t) => {
  const WRITERS = 4;
  const COUNT = 2000;
  const p = fifoPath();
  const reader = new MailboxReader(openMailboxFd(p), p);
  t.teardown(() => reader.close());
  const got = record(reader);

  const children = Array.from({ length: WRITERS }, (_, w) => spawnTs(WRITER, [p, String(w + 1), String(COUNT)]));
  await Promise.all(children.map((c) => firstLine(c)));
  const results = children.map((c) => collect(c));
  for (const c of children) c.stdin!.end('go\n'); // all start together
  const arrived = got.until(WRITERS * COUNT);
  const outcomes = await Promise.all(results);
  for (const [i, o] of outcomes.entries()) {
    t.equal(o.code, 0, `writer ${i + 1} exited 0`);
    t.match(o.stdout, `sent ${COUNT} failed 0`, `writer ${i + 1} sent everything`);
  }
  await arrived;

  t.equal(got.errors.length, 0, 'no read error');
  const torn = got.invalid.filter((x) => x.error.code !== 'MESSAGE_INVALID' || !/'id'/.test(x.error.message));
  t.equal(torn.length, 0, 'every invalid line is a whole large message refused for its id (no bad JSON, nothing too long)');
  if (torn.length) t.comment(torn.slice(0, 3).map((x) => `${x.error.message} ${x.preview}`).join('\n'));

  // Per writer: every message exactly once, in the order sent, byte for byte.
  const seen = new Map<number, number[]>();
  let corrupt = 0;
  for (const m of got.messages) {
    if (m.t !== 'reserve') {
      corrupt++;
      continue;
    }
    const tag = /^w(\d+)-(\d+):/.exec(m.id);
    if (!tag) {
      corrupt++;
      continue;
    }
    const w = Number(tag[1]);
    const i = Number(tag[2]);
    if (canonical(m) !== canonical(messageFor(w, i))) corrupt++;
    seen.set(w, [...(seen.get(w) ?? []), i]);
  }
  for (const x of got.invalid) {
    const tag = /^\{"id":"w(\d+)-(\d+):x+/.exec(x.preview);
    if (!tag) {
      corrupt++;
      continue;
    }
    const w = Number(tag[1]);
    const i = Number(tag[2]);
    if (!isLarge(i)) corrupt++;
    seen.set(w, [...(seen.get(w) ?? []), i]);
  }
  t.equal(corrupt, 0, '0 corrupt');
  let lost = 0;
  let disorder = 0;
  for (let w = 1; w <= WRITERS; w++) {
    const valid = got.messages.filter((m) => m.t === 'reserve' && m.id.startsWith(`w${w}-`)).map((m) => Number(/-(\d+):/.exec((m as { id: string }).id)![1]));
    for (let k = 1; k < valid.length; k++) if (valid[k]! <= valid[k - 1]!) disorder++;
    const all = new Set(seen.get(w) ?? []);
    for (let i = 0; i < COUNT; i++) if (!all.has(i)) lost++;
    t.equal((seen.get(w) ?? []).length, COUNT, `writer ${w}: ${COUNT} messages, no duplicate`);
  }
  t.equal(lost, 0, '0 lost');
  t.equal(disorder, 0, "each writer's messages arrive in the order it sent them");
  t.equal(got.messages.length, WRITERS * COUNT * 0.8, 'every valid message decoded');
});

t.test('a writer to a FIFO with no reader fails with MAILBOX_NO_READER, and reaches a reader that appears later', async (t) => {
  const p = fifoPath();
  mkfifoCommand(p);
  const w = new MailboxWriter(p);
  t.teardown(() => w.close());
  await t.rejects(w.send(ping(1)), { code: 'MAILBOX_NO_READER', message: /no reader/ });
  const reader = new MailboxReader(openMailboxFd(p), p);
  t.teardown(() => reader.close());
  const got = record(reader);
  await w.send(ping(2));
  await got.until(1);
  t.same(got.messages, [ping(2)], 'the writer reopened the FIFO');
});

t.test('a writer to a missing path fails with MAILBOX_OPEN_FAILED', async (t) => {
  const p = path.join(dir, 'missing.fifo');
  const w = new MailboxWriter(p);
  t.teardown(() => w.close());
  const err = await w.send(ping(1)).then(
    () => undefined,
    (e: DispatchError) => e,
  );
  t.equal(err?.code, 'MAILBOX_OPEN_FAILED');
  t.match(err?.message, p, 'names the path');
  t.equal(err?.fields.mailbox, p);
});

t.test('a reader that goes away: MAILBOX_NO_READER, then the writer reopens once it is back', async (t) => {
  const p = fifoPath();
  const readFd = openMailboxFd(p);
  const w = new MailboxWriter(p);
  t.teardown(() => w.close());
  await w.send(ping(1));
  fs.closeSync(readFd); // the only reader (and the O_RDWR writer it held) is gone
  await t.rejects(w.send(ping(2)), { code: 'MAILBOX_NO_READER', message: /reader closed it/ });
  const readFd2 = openMailboxFd(p);
  t.teardown(() => fs.closeSync(readFd2));
  await w.send(ping(3));
  const buf = Buffer.alloc(4096);
  const nread = fs.readSync(readFd2, buf, 0, buf.length, null);
  t.same(JSON.parse(buf.toString('utf8', 0, nread)), ping(3), 'the new reader gets the next message');
});

t.test('a full pipe: MAILBOX_FULL after the backpressure timeout', async (t) => {
  const p = fifoPath();
  const fd = openMailboxFd(p); // open for reading, never read
  t.teardown(() => fs.closeSync(fd));
  const w = new MailboxWriter(p, { backpressureTimeoutMs: 100 });
  t.teardown(() => w.close());
  const start = Date.now(); // the last message is sent after this: its deadline is ≥ start + 100
  const sent = fill(w, ping);
  t.ok(sent.length > 10, `${sent.length - 1} messages filled the pipe`);
  await Promise.all(sent.slice(0, -1));
  t.equal(w.queued, 1, 'the last one waits for room');
  const err = await sent[sent.length - 1]!.then(
    () => undefined,
    (e: DispatchError) => e,
  );
  const waited = Date.now() - start;
  t.equal(err?.code, 'MAILBOX_FULL');
  t.match(err?.message, /stayed full for 100 ms/);
  t.ok(waited >= 100, `it waited for the timeout (${waited} ms)`);
  t.equal(w.queued, 0);
});

t.test('a full pipe: messages queued behind keep their order', async (t) => {
  const p = fifoPath();
  const fd = openMailboxFd(p);
  const realNow = Date.now;
  let skew = 0;
  Date.now = () => realNow() + skew; // the writer's deadlines follow this clock
  t.teardown(() => {
    Date.now = realNow;
  });
  const w = new MailboxWriter(p, { backpressureTimeoutMs: 60_000 });
  t.teardown(() => w.close());
  const sent = fill(w, ping);
  const head = sent[sent.length - 1]!; // seq sent.length - 1, waiting for room
  skew += 30_000;
  const behind = [1, 2, 3, 4, 5].map((k) => w.send(ping(100_000 + k)));
  const order: number[] = [];
  behind.forEach((b, k) => void b.then(() => order.push(k + 1), () => order.push(-(k + 1))));
  t.equal(w.queued, 6);
  skew += 31_000; // the head's deadline has passed, those behind it still have 29 s
  await t.rejects(head, { code: 'MAILBOX_FULL' }, 'the head of the queue times out');
  t.equal(w.queued, 5, 'the ones behind still wait');

  const reader = new MailboxReader(fd, p); // now the pipe drains
  t.teardown(() => reader.close());
  const got = record(reader);
  await Promise.all(behind);
  t.same(order, [1, 2, 3, 4, 5], 'they are written in the order they were sent');
  await got.until(sent.length - 1 + 5);
  const seqs = got.messages.map((m) => (m as { seq: number }).seq);
  t.same(seqs, [...Array.from({ length: sent.length - 1 }, (_, i) => i), 100_001, 100_002, 100_003, 100_004, 100_005], 'the reader gets everything but the timed-out one, in order');
});

t.test('close() fails what is queued; send after close fails', async (t) => {
  const p = fifoPath();
  const fd = openMailboxFd(p);
  t.teardown(() => fs.closeSync(fd));
  const w = new MailboxWriter(p, { backpressureTimeoutMs: 60_000 });
  const sent = fill(w, ping);
  const behind = w.send(ping(999_999));
  w.close();
  await t.rejects(sent[sent.length - 1]!, { code: 'MAILBOX_WRITE_FAILED' });
  await t.rejects(behind, { code: 'MAILBOX_WRITE_FAILED' });
  await t.rejects(w.send(ping(1)), { code: 'MAILBOX_WRITE_FAILED', message: /closed/ });
});

t.test('send refuses a message over PIPE_BUF', async (t) => {
  const p = fifoPath();
  const fd = openMailboxFd(p);
  t.teardown(() => fs.closeSync(fd));
  const w = new MailboxWriter(p);
  t.teardown(() => w.close());
  await t.rejects(w.send({ ...SAMPLES[0]!, id: 'x'.repeat(5000) } as MailboxMessage), { code: 'MESSAGE_TOO_LARGE' });
  t.equal(w.queued, 0);
  await w.send(ping(1));
  const buf = Buffer.alloc(8192);
  t.equal(fs.readSync(fd, buf, 0, buf.length, null), JSON.stringify(ping(1)).length + 1, 'nothing of the large one reached the pipe');
});

t.test('garbage in the FIFO is reported via invalid; later messages still arrive', async (t) => {
  const p = fifoPath();
  const reader = new MailboxReader(openMailboxFd(p), p);
  t.teardown(() => reader.close());
  const got = record(reader);
  const raw = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  fs.writeSync(raw, 'GET / HTTP/1.0\n{"v":1,"t":"nope"}\n\u0000\u0001\u0002\n');
  fs.writeSync(raw, Buffer.alloc(10_000, '#')); // an over-long line
  fs.writeSync(raw, '\n');
  fs.closeSync(raw);
  const w = new MailboxWriter(p);
  t.teardown(() => w.close());
  await w.send(SAMPLES[5]!);
  await got.until(5);
  t.same(
    got.invalid.map((x) => x.error.code),
    ['MESSAGE_INVALID', 'MESSAGE_INVALID', 'MESSAGE_INVALID', 'MESSAGE_TOO_LARGE'],
    'each damaged line is reported once',
  );
  t.equal(got.invalid[0]!.preview, 'GET / HTTP/1.0');
  t.same(got.messages, [SAMPLES[5]], 'the message after the garbage arrives');
  t.equal(got.errors.length, 0);
});

t.test('the reader never ends on EOF when the last writer closes', async (t) => {
  const p = fifoPath();
  const reader = new MailboxReader(openMailboxFd(p), p);
  t.teardown(() => reader.close());
  const got = record(reader);
  for (let round = 1; round <= 3; round++) {
    const w = new MailboxWriter(p);
    await w.send(ping(round));
    w.close(); // the last external writer goes away each round
    await got.until(round);
  }
  // A raw writer too: open, write, close.
  const raw = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  fs.writeSync(raw, JSON.stringify(ping(4)) + '\n');
  fs.closeSync(raw);
  await got.until(4);
  const w = new MailboxWriter(p);
  t.teardown(() => w.close());
  await w.send(ping(5));
  await got.until(5);
  t.same(got.messages.map((m) => (m as { seq: number }).seq), [1, 2, 3, 4, 5], 'every round is read');
  t.equal(got.errors.length, 0);
});

t.test('close() stops reading and releases the fd', async (t) => {
  const p = fifoPath();
  const reader = new MailboxReader(openMailboxFd(p), p);
  const w = new MailboxWriter(p);
  t.teardown(() => w.close());
  await w.send(ping(1));
  const socket = (reader as unknown as { socket: net.Socket }).socket;
  const closed = once(socket, 'close');
  reader.close();
  await closed;
  await t.rejects(w.send(ping(2)), { code: 'MAILBOX_NO_READER' }, 'no reader is left on the FIFO');
});
