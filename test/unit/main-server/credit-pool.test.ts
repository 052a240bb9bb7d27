/** The credits main holds and mints leases from (credit-pool.ts), checked by the secondary's own signer. */
import t from 'tap';
import { LeaseSigner } from '../../../daemons/common/lease-token.js';
import type { Credit } from '../../../daemons/common/messages.js';
import { CreditPool } from '../../../daemons/main-server/credit-pool.js';

const KEY = Buffer.alloc(32, 9);
const TTL = 3000;
const credit = (gen: number, seq: number, n: number, exp: number): Credit => ({ v: 1, t: 'credit', from: 'secondary-2', gen, seq, n, exp, claimed: [], ended: [] });

t.test('mints one lease per credit, in order, that the secondary verifies by itself; none once they are used up', async (t) => {
  const pool = new CreditPool(KEY);
  pool.add(2, credit(7, 10, 2, 10_000));
  const a = pool.mint(2, 7, 'echo', 1000, TTL)!;
  const b = pool.mint(2, 7, 'sha256', 1000, TTL)!;
  t.match([a, b], [{ seq: 10, exp: 4000 }, { seq: 11, exp: 4000 }]);
  const secondary = new LeaseSigner(KEY, 2, 7);
  t.match(secondary.verify(a.lease, 'echo', 1000), { ok: true, claims: { seq: 10, exp: 4000 } });
  t.match(secondary.verify(b.lease, 'sha256', 1000), { ok: true, claims: { seq: 11 } });
  t.match(new LeaseSigner(KEY, 2, 8).verify(a.lease, 'echo', 1000), { ok: false, fault: 'bad-mac' }, 'not good for another generation');
  t.match(new LeaseSigner(KEY, 3, 7).verify(a.lease, 'echo', 1000), { ok: false, fault: 'bad-mac' }, 'nor for another secondary');
  t.equal(pool.mint(2, 7, 'echo', 1000, TTL), undefined, 'out of credits');
  t.equal(pool.usable(2, 7, 1000, TTL), 0);
});

t.test('a credit is used only while it has a whole lease lifetime left', async (t) => {
  const pool = new CreditPool(KEY);
  pool.add(2, credit(7, 1, 1, 5000));
  pool.add(2, credit(7, 2, 1, 9000));
  t.equal(pool.usable(2, 7, 1000, TTL), 2);
  t.equal(pool.usable(2, 7, 2001, TTL), 1, 'the first batch is too old for a lease of 3000 ms');
  t.match(pool.mint(2, 7, 'echo', 2001, TTL), { seq: 2, exp: 5001 });
});

t.test("another generation's credits are not minted from; keepOnly forgets stopped and restarted secondaries", async (t) => {
  const pool = new CreditPool(KEY);
  pool.add(2, credit(7, 1, 4, 10_000));
  t.equal(pool.mint(2, 8, 'echo', 0, TTL), undefined, 'the lease would be for a process that did not grant it');
  t.ok(pool.heard(2, 7));
  t.notOk(pool.heard(2, 8));
  pool.keepOnly(new Map([[2, 8]]));
  t.equal(pool.usable(2, 7, 0, TTL), 0, 'generation 7 restarted: its credits are gone');
  t.notOk(pool.heard(2, 7));
  pool.add(2, credit(8, 1, 1, 10_000));
  pool.keepOnly(new Map());
  t.equal(pool.usable(2, 8, 0, TTL), 0, 'stopped');
});

t.test('asks for credits when it holds none usable, at most once per interval', async (t) => {
  const pool = new CreditPool(KEY);
  t.ok(pool.shouldWant(1, 5, 0, TTL, 500), 'none held: ask');
  t.notOk(pool.shouldWant(1, 5, 499, TTL, 500), 'asked 499 ms ago');
  t.ok(pool.shouldWant(1, 5, 500, TTL, 500));
  pool.add(1, { ...credit(5, 1, 1, 10_000), from: 'secondary-1' });
  t.notOk(pool.shouldWant(1, 5, 2000, TTL, 500), 'a usable credit: no need');
  t.ok(pool.shouldWant(1, 5, 7001, TTL, 500), 'the credit is too old to mint from');
});
