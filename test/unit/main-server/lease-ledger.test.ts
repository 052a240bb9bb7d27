import t from 'tap';
import type { Credit } from '../../../daemons/common/messages.js';
import { CLAIM_REPORT_GRACE_MS, LeaseLedger, RESERVED_MEMORY } from '../../../daemons/main-server/lease-ledger.js';
import { fakeLogger } from '../lib/fake-daemon.js';
import { secondary as slot } from '../lib/slots.js';

const credit = (o: Partial<Credit> = {}): Credit => ({ v: 1, t: 'credit', from: 'secondary-1', gen: 1, seq: 1, n: 0, exp: 0, claimed: [], ended: [], ...o });

t.test("own leases end silently; an earlier main's are adopted and reported in one line per batch", async (t) => {
  const { logger, lines } = fakeLogger();
  const ledger = new LeaseLedger(logger);
  ledger.record('secondary-1', 1, 1, 5000);
  ledger.record('secondary-2', 1, 1, 5000);
  t.equal(ledger.out, 2);
  ledger.credit(credit({ claimed: [1], ended: [[1, 2, 0]] }));
  t.equal(ledger.out, 1);
  t.same(lines, [], 'an own lease is not logged');
  ledger.credit(credit({ from: 'secondary-2', gen: 2, ended: [[100, 3, 1]] }));
  ledger.credit(credit({ from: 'secondary-1', ended: [[101, 0, 0]] }));
  t.equal(ledger.adopted, 2, 'the same sequence of another generation, or one never minted, is adopted');
  t.equal(ledger.out, 1);
  t.same(lines, [], 'batched, not one line per lease');
  ledger.report();
  t.same(lines, [
    {
      level: 'info',
      message: 'accounted for 2 leases granted by an earlier main process, ended on secondary-1, secondary-2: 2 used, 3 requests served, 1 failed',
      fields: { adopted_leases: 2, adopted_requests: 3, adopted_failed: 1 },
    },
  ]);
  ledger.report();
  t.equal(lines.length, 1, 'nothing left to report');
  ledger.reportStop();
  t.same(lines[1], {
    level: 'info',
    message: "1 of this process's leases not yet ended: the next main process accounts for them as their secondaries report; 1 ended, 0 expired unused, 2 of an earlier process accounted for",
    fields: { leases_out: 1, leases_ended: 1, leases_expired_unused: 0, adopted_leases_total: 2 },
  });
});

t.test('a lease no secondary reported claimed by its expiry expired unused; a claimed one stays out', async (t) => {
  const { logger } = fakeLogger();
  const ledger = new LeaseLedger(logger);
  ledger.record('secondary-1', 1, 1, 1000);
  ledger.record('secondary-1', 1, 2, 1000);
  ledger.record('secondary-1', 1, 3, 9000);
  ledger.credit(credit({ claimed: [2] }));
  ledger.sweep(1000 + CLAIM_REPORT_GRACE_MS);
  t.equal(ledger.out, 3, 'not before the grace is over');
  ledger.sweep(1001 + CLAIM_REPORT_GRACE_MS);
  t.equal(ledger.out, 2, 'lease 1 expired unused; 2 is in use, 3 not expired');
  t.equal(ledger.expiredUnused, 1);
  ledger.credit(credit({ ended: [[2, 5, 0]] }));
  t.equal(ledger.out, 1);
  t.equal(ledger.adopted, 0);
});

t.test('the batch is reported by itself once its time is up', async (t) => {
  let reportedNow = () => {};
  const reported = new Promise<void>((resolve) => (reportedNow = resolve));
  const { logger, lines } = fakeLogger(() => reportedNow());
  const ledger = new LeaseLedger(logger, 10);
  ledger.credit(credit({ ended: [[7, 1, 0], [8, 1, 0]] }));
  t.equal(lines.length, 0);
  await reported;
  t.equal(lines.length, 1, 'one line for both');
  t.match(lines[0]!.message, /^accounted for 2 leases granted by an earlier main process/);
});

t.test('the memory of own leases is bounded, oldest forgotten first', async (t) => {
  const { logger } = fakeLogger();
  const ledger = new LeaseLedger(logger);
  for (let i = 1; i <= RESERVED_MEMORY + 1; i++) ledger.record('secondary-1', 1, i, 1e15);
  t.equal(ledger.out, RESERVED_MEMORY);
  ledger.credit(credit({ ended: [[1, 0, 0]] }));
  t.equal(ledger.adopted, 1, 'the oldest was forgotten: its end counts as adopted');
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
