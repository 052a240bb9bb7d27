import t from 'tap';
import { IncidentLog } from '../../../daemons/common/incident-log.js';
import type { Logger } from '../../../daemons/common/logger.js';

function fakeLogger() {
  const entries: Array<{ level: string; message: string; fields: unknown }> = [];
  const logger = { log: (level: string, message: string, fields: unknown) => entries.push({ level, message, fields }) } as unknown as Logger;
  return { logger, entries };
}

t.test('an incident is logged once per interval per key, and counted', async (t) => {
  const { logger, entries } = fakeLogger();
  let counted = 0;
  const log = new IncidentLog(logger, () => counted++, 60_000);
  for (let i = 0; i < 1000; i++) log.report('mailbox:MESSAGE_INVALID', 'error', "failed to decode a message in mailbox '/run/dispatchd/main.fifo', ignoring", { code: 'MESSAGE_INVALID' });
  log.report('client-idle', 'info', 'client#3 idle', { peer: 'client#3' });
  t.same(entries, [
    { level: 'error', message: "failed to decode a message in mailbox '/run/dispatchd/main.fifo', ignoring", fields: { code: 'MESSAGE_INVALID' } },
    { level: 'info', message: 'client#3 idle', fields: { peer: 'client#3' } },
  ], '1000 incidents of one kind cost one line; another kind is logged on its own');
  t.equal(counted, 2, 'each logged incident is counted (for the scoreboard slot)');
});

t.test('the next report after the interval says how many were suppressed', async (t) => {
  const { logger, entries } = fakeLogger();
  const realNow = Date.now;
  let now = 1_700_000_000_000;
  Date.now = () => now; // the interval is measured with Date.now()
  t.teardown(() => {
    Date.now = realNow;
  });
  const log = new IncidentLog(logger, () => {}, 10_000);
  log.report('k', 'warning', 'bad peer');
  now += 1;
  log.report('k', 'warning', 'bad peer');
  now += 9_000;
  log.report('k', 'warning', 'bad peer');
  now += 1_000;
  log.report('k', 'warning', 'bad peer');
  t.same(entries.map((e) => e.message), ['bad peer', 'bad peer (2 more like it since the last report)']);
  t.same(entries[1]!.fields, {}, 'fields default to none');
});
