import t from 'tap';
import type { Done } from '../../../daemons/common/messages.js';
import { LeaseLedger, RESERVED_MEMORY } from '../../../daemons/main-server/lease-ledger.js';
import { fakeLogger } from '../lib/fake-daemon.js';
import { secondary as slot } from '../lib/slots.js';

const lease = (n: number) => n.toString(16).padStart(32, '0');
const done = (n: number, o: Partial<Done> = {}): Done => ({ v: 1, t: 'done', from: 'secondary-1', gen: 1, lease: lease(n), claimed: true, requests: 2, failed: 0, ...o });

t.test("own leases end silently; an earlier main's are adopted and reported in one line per batch", async (t) => {
  const { logger, lines } = fakeLogger();
  const ledger = new LeaseLedger(logger);
  ledger.record(lease(1), 1);
  ledger.record(lease(2), 2);
  t.equal(ledger.out, 2);
  ledger.done(done(1));
  t.equal(ledger.out, 1);
  t.same(lines, [], 'an own lease is not logged');
  ledger.done(done(100, { from: 'secondary-2', claimed: true, requests: 3, failed: 1 }));
  ledger.done(done(101, { from: 'secondary-1', claimed: false, requests: 0 }));
  t.equal(ledger.adopted, 2);
  t.same(lines, [], 'batched, not one line per lease');
  ledger.report();
  t.same(lines, [
    {
      level: 'info',
      message: 'accounted for 2 leases granted by an earlier main process, ended on secondary-1, secondary-2: 1 used, 3 requests served, 1 failed; 1 expired unused',
      fields: { adopted_leases: 2, adopted_requests: 3, adopted_failed: 1 },
    },
  ]);
  ledger.report();
  t.equal(lines.length, 1, 'nothing left to report');
  ledger.reportStop();
  t.same(lines[1], {
    level: 'info',
    message: "1 of this process's leases not yet ended: the next main process accounts for them as their secondaries report; 1 ended, 2 of an earlier process accounted for",
    fields: { leases_out: 1, leases_ended: 1, adopted_leases_total: 2 },
  });
});

t.test('the batch is reported by itself once its time is up', async (t) => {
  let reportedNow = () => {};
  const reported = new Promise<void>((resolve) => (reportedNow = resolve));
  const { logger, lines } = fakeLogger(() => reportedNow());
  const ledger = new LeaseLedger(logger, 10);
  ledger.done(done(7));
  ledger.done(done(8));
  t.equal(lines.length, 0);
  await reported;
  t.equal(lines.length, 1, 'one line for both');
  t.match(lines[0]!.message, /^accounted for 2 leases granted by an earlier main process/);
});

t.test('a forgotten reservation (refused, never written) is not counted as out', async (t) => {
  const { logger } = fakeLogger();
  const ledger = new LeaseLedger(logger);
  ledger.record(lease(1), 1);
  ledger.forget(lease(1));
  t.equal(ledger.out, 0);
});

t.test('the memory of own leases is bounded, oldest forgotten first', async (t) => {
  const { logger } = fakeLogger();
  const ledger = new LeaseLedger(logger);
  for (let i = 0; i <= RESERVED_MEMORY; i++) ledger.record(lease(i), 1);
  t.equal(ledger.out, RESERVED_MEMORY);
  ledger.done(done(0));
  t.equal(ledger.adopted, 1, 'the oldest was forgotten: its done counts as adopted');
  ledger.report();
});

t.test("the adoption note of a restarted main names what it takes over", async (t) => {
  t.equal(LeaseLedger.adoptionNote(1, () => [slot(1)]), '', 'a first start adopts nothing');
  t.equal(
    LeaseLedger.adoptionNote(3, () => [slot(1, { active: 2, generation: 11 }), slot(2, { active: 1, generation: 12 })]),
    '; re-adopted the scoreboard (start 3 of this slot): 2 secondaries running (secondary-1 generation 11, secondary-2 generation 12), 3 leases held, which stay valid',
  );
  t.equal(
    LeaseLedger.adoptionNote(2, () => {
      throw new Error('EIO');
    }),
    '; failed to read the scoreboard to re-adopt it: EIO, retrying in 1000 ms',
  );
});
