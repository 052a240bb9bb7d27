import fs from 'node:fs';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { stderrIsJournal } from '../../../daemons/common/journal-stream.js';
import { closeLogger, createLogger, formatFields, IncidentLimiter, journalFieldName, logLastLine, PRIORITY, type LoggerOptions } from '../../../daemons/common/logger.js';

const stderrId = (() => {
  const st = fs.fstatSync(2);
  return `${st.dev}:${st.ino}`;
})();

/** Runs `fn` with some environment variables set (undefined removes one), then restores them. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T> | T): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

/** Logs through a stream logger and returns the lines it wrote. */
async function lines(options: Omit<LoggerOptions, 'stream' | 'journal'>, log: (l: ReturnType<typeof createLogger>) => void): Promise<string[]> {
  const stream = new PassThrough();
  let out = '';
  stream.on('data', (c: Buffer) => (out += c.toString()));
  const logger = createLogger({ ...options, journal: false, stream });
  log(logger);
  await closeLogger(logger);
  return out.split('\n').filter((l) => l !== '');
}

t.test('PRIORITY follows syslog(3)', async (t) => {
  t.same(PRIORITY, { emerg: 0, alert: 1, crit: 2, error: 3, warning: 4, notice: 5, info: 6, debug: 7 });
});

t.test('journalFieldName', async (t) => {
  t.equal(journalFieldName('lease'), 'LEASE');
  t.equal(journalFieldName('exit_status'), 'EXIT_STATUS');
  t.equal(journalFieldName('retryAfterMs'), 'RETRYAFTERMS');
  t.equal(journalFieldName('peer-addr'), 'PEER_ADDR', 'other characters become _');
  t.equal(journalFieldName('a.b c'), 'A_B_C');
  t.equal(journalFieldName('_PID'), 'PID', 'no leading _: those fields are trusted, set by journald');
  t.equal(journalFieldName('__x'), 'X');
  t.equal(journalFieldName('9lives'), undefined, 'a field cannot start with a digit');
  t.equal(journalFieldName(''), undefined);
  t.equal(journalFieldName('___'), undefined);
  t.equal(journalFieldName('k'.repeat(64)), 'K'.repeat(64));
  t.equal(journalFieldName('k'.repeat(65)), undefined, 'at most 64 characters');
  for (const k of ['lease', 'peer-addr', '_x', 'ünïcode', 'a b']) {
    const name = journalFieldName(k);
    if (name !== undefined) t.match(name, /^[A-Z][A-Z0-9_]{0,63}$/, `${k} → ${name} is a valid journal field name`);
  }
});

t.test('formatFields', async (t) => {
  t.equal(formatFields({}), '');
  t.equal(formatFields({ lease: 'ab12', peer: 'secondary-1' }), 'lease=ab12 peer=secondary-1');
  t.equal(formatFields({ n: 3, ok: true, none: null }), 'n=3 ok=true none=null');
  t.equal(formatFields({ msg: 'two words' }), 'msg="two words"', 'a value with a space is quoted');
  t.equal(formatFields({ q: 'say "hi"' }), 'q="say \\"hi\\""', 'quotes are escaped');
  t.equal(formatFields({ e: 'a=b' }), 'e="a=b"', 'a value with = is quoted');
  t.equal(formatFields({ nl: 'a\nb' }), 'nl="a\\nb"', 'a newline cannot break the line');
  t.equal(formatFields({ o: { a: 1 } }), 'o="{\\"a\\":1}"', 'an object as quoted JSON');
  t.equal(formatFields({ list: [1, 2] }), 'list=[1,2]');
});

t.test('IncidentLimiter: once per interval per key, with the count it suppressed', async (t) => {
  const l = new IncidentLimiter(10_000);
  t.equal(l.shouldLog('mailbox:MESSAGE_INVALID', 1_000), 0, 'the first is logged, nothing suppressed');
  t.equal(l.shouldLog('mailbox:MESSAGE_INVALID', 1_001), undefined);
  t.equal(l.shouldLog('mailbox:MESSAGE_INVALID', 10_999), undefined, 'still within the interval');
  t.equal(l.shouldLog('peer:FRAME_BAD_MAGIC', 2_000), 0, 'keys are independent');
  t.equal(l.shouldLog('mailbox:MESSAGE_INVALID', 11_000), 2, 'after the interval: logged, with 2 suppressed');
  t.equal(l.shouldLog('mailbox:MESSAGE_INVALID', 11_001), undefined);
  t.equal(l.shouldLog('mailbox:MESSAGE_INVALID', 30_000), 1, 'the count restarts after each report');
  t.equal(l.shouldLog('mailbox:MESSAGE_INVALID', 50_000), 0);

  let logged = 0;
  const flood = new IncidentLimiter(10_000);
  for (let i = 0; i < 100_000; i++) if (flood.shouldLog('garbage', 5_000 + (i % 9_000)) !== undefined) logged++;
  t.equal(logged, 1, '100 000 incidents within one interval cost one line');
});

t.test('IncidentLimiter: the number of keys is bounded', async (t) => {
  const l = new IncidentLimiter(1000, 3);
  t.equal(l.shouldLog('a', 0), 0);
  t.equal(l.shouldLog('b', 0), 0);
  t.equal(l.shouldLog('c', 0), 0);
  t.equal(l.shouldLog('d', 10), undefined, 'a fourth key is not logged while three are fresh');
  t.equal(l.shouldLog('a', 20), undefined, 'known keys are still limited');
  t.equal(l.shouldLog('d', 1000), 0, 'once the others expire, room is made');
  for (const k of ['e', 'f']) t.equal(l.shouldLog(k, 1000), 0);
  t.equal(l.shouldLog('g', 1000), undefined, 'bounded again');

  // Memory: a flood of distinct keys never grows the table past maxKeys.
  const big = new IncidentLimiter(1000, 100);
  let logged = 0;
  for (let i = 0; i < 50_000; i++) if (big.shouldLog(`peer-${i}`, 0) !== undefined) logged++;
  t.equal(logged, 100, 'only maxKeys distinct keys are logged within an interval');
  t.ok((big as unknown as { seen: Map<string, unknown> }).seen.size <= 100, 'the table stays at maxKeys');
});

t.test('stderrIsJournal', async (t) => {
  t.equal(stderrIsJournal({}), false, 'no JOURNAL_STREAM');
  t.equal(stderrIsJournal({ JOURNAL_STREAM: '' }), false);
  t.equal(stderrIsJournal({ JOURNAL_STREAM: stderrId }), true, 'JOURNAL_STREAM names our stderr');
  t.equal(stderrIsJournal({ JOURNAL_STREAM: '1:2' }), false, 'JOURNAL_STREAM names another stream (inherited by a child whose stderr was redirected)');
  t.equal(stderrIsJournal({ JOURNAL_STREAM: 'garbage' }), false);
});

t.test('a stream logger writes one line per entry with key=value fields', async (t) => {
  const out = await withEnv({ JOURNAL_STREAM: undefined, DISPATCHD_LOG_LEVEL: undefined }, () =>
    lines({ identifier: 'dispatchd-main' }, (l) => {
      l.info('failed to decode a message, ignoring', { peer: 'secondary-1', code: 'MESSAGE_INVALID', n: 3 });
      l.warning('second', { note: 'a b' });
      l.debug('not shown at level info');
      l.error('plain');
    }),
  );
  t.equal(out.length, 3, 'one line per entry; debug is below the level');
  t.match(out[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z dispatchd-main info: failed to decode a message, ignoring peer=secondary-1 code=MESSAGE_INVALID n=3$/);
  t.match(out[1], /dispatchd-main warning: second note="a b"$/);
  t.match(out[2], /dispatchd-main error: plain$/, 'no trailing fields when there are none');
});

t.test('a message with a newline is still one line', async (t) => {
  const out = await withEnv({ JOURNAL_STREAM: undefined }, () =>
    lines({ identifier: 'dispatchd-main' }, (l) => l.error('failed to start: first\nsecond', { code: 'INTERNAL' })),
  );
  t.equal(out.length, 1, 'one entry, one line');
});

t.test('the stream logger carries the level: <N> prefixes when stderr is the journal', async (t) => {
  const out = await withEnv({ JOURNAL_STREAM: stderrId }, () =>
    lines({ identifier: 'dispatchd-secondary', level: 'debug' }, (l) => {
      l.error('e', { lease: 'ab' });
      l.warning('w');
      l.info('i');
      l.debug('d');
    }),
  );
  t.same(out, ['<3>e lease=ab', '<4>w', '<6>i', '<7>d'], 'sd-daemon(3) priority prefixes');
});

t.test('DISPATCHD_LOG_LEVEL sets the level when none is given', async (t) => {
  const out = await withEnv({ JOURNAL_STREAM: undefined, DISPATCHD_LOG_LEVEL: 'debug' }, () =>
    lines({ identifier: 'x' }, (l) => l.debug('shown')),
  );
  t.equal(out.length, 1);
  const quiet = await withEnv({ JOURNAL_STREAM: undefined, DISPATCHD_LOG_LEVEL: 'error' }, () =>
    lines({ identifier: 'x' }, (l) => {
      l.warning('hidden');
      l.error('shown');
    }),
  );
  t.equal(quiet.length, 1);
  t.match(quiet[0], /shown/);
});

t.test("logLastLine: a journal logger's last line goes to the stream systemd connected, a stream logger's through the logger", async (t) => {
  const journal = createLogger({ identifier: 'dispatchd-watchdog', journal: true });
  const written: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => written.push(chunk) > 0) as typeof process.stderr.write;
  try {
    logLastLine(journal, 'info', 'dispatchd-watchdog.service stopped cleanly');
    logLastLine(journal, 'warning', 'two\nlines');
  } finally {
    process.stderr.write = write;
  }
  await closeLogger(journal);
  t.same(written, ['<6>dispatchd-watchdog.service stopped cleanly\n', '<4>two\\nlines\n'], 'on stderr (the journal stream, which names its unit), with the priority prefix, one line');
  const out = await withEnv({ JOURNAL_STREAM: undefined }, () => lines({ identifier: 'dispatchd-main' }, (l) => logLastLine(l, 'info', 'dispatchd-main.service stopped cleanly')));
  t.match(out, [/dispatchd-main info: dispatchd-main.service stopped cleanly$/], 'not under the journal: an ordinary entry');
});

t.test('closeLogger resolves even if the logger never finishes', async (t) => {
  const stream = new PassThrough();
  const logger = createLogger({ identifier: 'x', journal: false, stream });
  logger.end = () => logger; // a transport that hangs
  const start = Date.now();
  await closeLogger(logger, 50);
  t.ok(Date.now() - start >= 40, 'after its timeout');
});
