/** The replay window and credit batches of a secondary (credit-window.ts). */
import t from 'tap';
import { CreditWindow } from '../../../daemons/secondary-server/credit-window.js';

t.test('granted sequences are claimed once; others never', async (t) => {
  const w = new CreditWindow(1000, 2000);
  const g = w.grant(3, 0);
  t.same(g, { seq: 1, n: 3, exp: 2000 });
  t.same(w.claim(2, 10), { ok: true });
  t.same(w.claim(2, 11), { ok: false, fault: 'replayed' }, 'a second claim is a replay');
  t.same(w.claim(4, 12), { ok: false, fault: 'never-granted' }, 'beyond what was handed out');
  t.same(w.claim(0, 12), { ok: false, fault: 'never-granted' });
  t.same(w.claim(1, 13), { ok: true }, 'out of order is fine');
  t.equal(w.size, 1);
  t.same(w.grant(2, 20), { seq: 4, n: 2, exp: 2020 }, 'sequences keep counting up');
});

t.test('fresh credits: counted until freshMs after their grant, claimable until validMs', async (t) => {
  const w = new CreditWindow(1000, 2000);
  w.grant(4, 0);
  t.equal(w.fresh(0), 4);
  w.grant(2, 500);
  t.equal(w.fresh(500), 6);
  t.equal(w.nextStale(), 1000);
  w.claim(1, 600);
  t.equal(w.fresh(600), 5, 'a claimed credit is no longer fresh');
  t.equal(w.fresh(1000), 2, 'the first batch went stale');
  t.equal(w.nextStale(), 1500);
  t.same(w.claim(2, 1999), { ok: true }, 'a stale credit is still valid');
  t.same(w.claim(3, 2001), { ok: false, fault: 'replayed' }, 'a lapsed credit is refused');
  t.equal(w.fresh(1600), 0);
  t.equal(w.size, 2, 'the first batch lapsed: 5 and 6 of the second are left');
  w.fresh(2600);
  t.equal(w.size, 0, 'lapsed batches are dropped');
  t.equal(w.nextStale(), undefined);
});

t.test('a revoked grant (never reached main) is neither fresh nor claimable', async (t) => {
  const w = new CreditWindow(1000, 2000);
  const g = w.grant(3, 0);
  w.claim(1, 1);
  w.revoke(g, 2);
  t.equal(w.fresh(2), 0);
  t.same(w.claim(3, 3), { ok: false, fault: 'replayed' });
  t.equal(w.size, 0);
});

t.test('many small batches stay bounded', async (t) => {
  const w = new CreditWindow(10, 20);
  for (let now = 0; now < 100_000; now++) {
    const g = w.grant(1, now);
    if (now % 2) w.claim(g.seq, now);
  }
  t.ok(w.size <= 20, `${w.size} unused valid credits`);
  t.equal(w.fresh(100_000), 4, 'the last ten batches are fresh, the four unclaimed ones count');
  t.equal(w.fresh(100_010), 0);
});
