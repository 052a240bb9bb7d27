/**
 * V8's incremental marking in a daemon (marking-mode.ts): off while it serves, on after
 * IDLE_MARKING_AFTER_MS without work, off again at the first tick that saw work. The real
 * flag is not touched here: the mode is given a recorder for v8.setFlagsFromString.
 */
import t from 'tap';
import { MARKING_FLAGS, MarkingMode } from '../../../daemons/common/marking-mode.js';
import { IDLE_MARKING_AFTER_MS, TICK_MS } from '../../../daemons/common/timing.js';

function mode(quietMs?: number) {
  const flags: string[] = [];
  const m = new MarkingMode((f) => flags.push(f), 0, quietMs);
  return { m, flags };
}

t.test('incremental marking is off from the start: the daemon serves', async (t) => {
  const { m, flags } = mode();
  t.equal(m.state, 'serving');
  t.strictSame(flags, ['--no-incremental-marking'], 'the flag is set before anything is served');
});

t.test('quiet for IDLE_MARKING_AFTER_MS: incremental marking goes back on, once', async (t) => {
  const { m, flags } = mode();
  for (let now = TICK_MS; now < IDLE_MARKING_AFTER_MS; now += TICK_MS) m.tick(now, false);
  t.equal(m.state, 'serving', 'still serving just before the quiet time is over');
  t.equal(flags.length, 1);
  m.tick(IDLE_MARKING_AFTER_MS, false);
  t.equal(m.state, 'idle');
  t.strictSame(flags, ['--no-incremental-marking', '--incremental-marking']);
  for (let i = 1; i <= 30; i++) m.tick(IDLE_MARKING_AFTER_MS + i * TICK_MS, false);
  t.equal(flags.length, 2, 'set once, not on every quiet tick');
});

t.test('work while idle turns it off at that tick, and the quiet time starts again', async (t) => {
  const { m, flags } = mode(5000);
  m.tick(5000, false);
  t.equal(m.state, 'idle');
  m.tick(6000, true);
  t.equal(m.state, 'serving');
  t.equal(flags.at(-1), MARKING_FLAGS.serving);
  m.tick(10_999, false);
  t.equal(m.state, 'serving', 'the quiet time counts from the last tick with work (6000), not from the start');
  m.tick(11_000, false);
  t.equal(m.state, 'idle');
  t.strictSame(flags, ['--no-incremental-marking', '--incremental-marking', '--no-incremental-marking', '--incremental-marking']);
});

t.test('steady work keeps it serving, whatever the time', async (t) => {
  const { m, flags } = mode();
  for (let now = TICK_MS; now <= 10 * IDLE_MARKING_AFTER_MS; now += TICK_MS) m.tick(now, true);
  t.equal(m.state, 'serving');
  t.equal(flags.length, 1);
});

t.test('the flags are V8\'s own', async (t) => {
  // v8.setFlagsFromString ignores what it does not know, silently: check the spelling against
  // this Node.js's V8 (node --v8-options).
  const { execFileSync } = await import('node:child_process');
  const options = execFileSync(process.execPath, ['--v8-options'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  t.match(options, /^\s+--incremental-marking \(/m, 'V8 has --incremental-marking');
  t.same(MARKING_FLAGS, { serving: '--no-incremental-marking', idle: '--incremental-marking' }, 'and its negation, --no-…');
});
