import { PassThrough } from 'node:stream';
import t from 'tap';
import { watchStatus } from '../../../daemons/client/status-watch.js';

function sink(tty: boolean) {
  const out = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number; rows?: number };
  if (tty) Object.assign(out, { isTTY: true, columns: 80, rows: 24 });
  let text = '';
  out.on('data', (b: Buffer) => (text += b.toString()));
  return { out: out as unknown as NodeJS.WriteStream, text: () => text };
}

t.test('a pipe gets one whole snapshot per interval, appended', async (t) => {
  const s = sink(false);
  let n = 0;
  const t0 = Date.now();
  await watchStatus({ render: async () => `snapshot ${++n}\n`, intervalMs: 100, out: s.out, tty: false, count: 3, signal: new AbortController().signal });
  t.equal(s.text(), 'snapshot 1\nsnapshot 2\nsnapshot 3\n', 'every snapshot, in order, no escape sequence');
  t.ok(Date.now() - t0 >= 200, 'the interval is waited between snapshots');
});

t.test('a terminal gets each snapshot drawn over the previous one (ANSI)', async (t) => {
  const s = sink(true);
  let n = 0;
  await watchStatus({ render: async () => `line a ${++n}\nline b ${n}\n`, intervalMs: 100, out: s.out, tty: true, count: 2, signal: new AbortController().signal });
  const text = s.text();
  t.match(text, 'line a 1', 'first snapshot drawn');
  t.match(text, 'line b 2', 'second snapshot drawn');
  // log-update erases the previous lines before drawing: cursor up (ESC [ 1 A or ESC [ A) and erase line (ESC [ 2 K).
  t.match(text.slice(text.indexOf('line b 1')), /\u001b\[2K/, 'the previous snapshot is erased');
});

t.test('a terminal that reports no size (0 x 0) still gets the snapshots', async (t) => {
  const s = sink(true);
  Object.assign(s.out, { columns: 0, rows: 0 });
  await watchStatus({ render: async () => 'visible\n', intervalMs: 100, out: s.out, tty: true, count: 1, signal: new AbortController().signal });
  t.match(s.text(), 'visible');
});

t.test('an abort ends the watch promptly', async (t) => {
  const s = sink(false);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 150);
  const t0 = Date.now();
  await watchStatus({ render: async () => 'x\n', intervalMs: 10_000, out: s.out, tty: false, signal: ac.signal });
  t.ok(Date.now() - t0 < 2_000, 'stopped during the wait, not after the interval');
  t.equal(s.text(), 'x\n');
});
