/** How a secondary hands its capacity to main as batched credits (credit-issuer.ts), on a fake clock and mailbox. */
import t from 'tap';
import { DispatchError } from '../../../daemons/common/errors.js';
import { CREDIT_LIST_MAX, Credit } from '../../../daemons/common/messages.js';
import { CreditIssuer, MAX_OUTSTANDING } from '../../../daemons/secondary-server/credit-issuer.js';
import { CreditWindow } from '../../../daemons/secondary-server/credit-window.js';
import { CLAIM_REPORT_GRACE_MS } from '../../../daemons/main-server/lease-ledger.js';
import { CLAIM_REPORT_MS, CREDIT_BATCH_MS, CREDIT_GATHER_MS } from '../../../daemons/common/timing.js';

function build(o: { maxLeases?: number | (() => number); fail?: () => DispatchError | undefined } = {}) {
  let now = 1000;
  let inUse = 0;
  let stopping = false;
  const sent: Credit[] = [];
  const waiters: Array<(m: Credit) => void> = [];
  const failures: string[] = [];
  const window = new CreditWindow(3000, 6000);
  const issuer = new CreditIssuer({
    from: 'secondary-4',
    generation: 9,
    window,
    maxLeases: () => (typeof o.maxLeases === 'function' ? o.maxLeases() : (o.maxLeases ?? 4)),
    inUse: () => inUse,
    stopping: () => stopping,
    send: async (m) => {
      Credit.parse(m); // every message is a valid mailbox message
      const err = o.fail?.();
      if (err) throw err;
      sent.push(m);
      waiters.shift()?.(m);
    },
    failed: (err) => void failures.push(err.code),
    now: () => now,
  });
  t.teardown(() => issuer.close());
  return {
    issuer,
    window,
    sent,
    /** The next message sent. */
    next: () => new Promise<Credit>((resolve) => waiters.push(resolve)),
    failures,
    set: (x: { now?: number; inUse?: number; stopping?: boolean }) => {
      now = x.now ?? now;
      inUse = x.inUse ?? inUse;
      stopping = x.stopping ?? stopping;
    },
  };
}

t.test('the first flush grants the whole capacity; claims are batched without new credits while enough are fresh', async (t) => {
  const { issuer, window, sent, set } = build();
  issuer.flush();
  t.match(sent, [{ t: 'credit', from: 'secondary-4', gen: 9, seq: 1, n: 4, exp: 7000, claimed: [], ended: [] }]);
  window.claim(1, 1001);
  window.claim(2, 1001);
  set({ inUse: 2 });
  issuer.claim(1);
  issuer.claim(2);
  issuer.flush();
  t.match(sent[1], { n: 0, claimed: [1, 2], ended: [] }, 'two in use, two fresh at main: nothing to grant');
  set({ inUse: 1 });
  issuer.end(1, 5, 1);
  issuer.flush();
  t.match(sent[2], { seq: 5, n: 1, claimed: [], ended: [[1, 5, 1]] }, 'a lease ended: its capacity goes back as a credit');
  issuer.flush();
  t.equal(sent.length, 3, 'nothing gathered, nothing due: no message');
});

t.test("a claim goes to main with its lease's end, in one message; the claims of leases still held go with it", async (t) => {
  const { issuer, sent, next, set } = build();
  issuer.flush();
  for (let s = 1; s <= 3; s++) issuer.claim(s);
  set({ inUse: 2 });
  issuer.end(2, 1, 0);
  const m = await next();
  t.same(m.ended, [[2, 1, 0]]);
  t.same(m.claimed, [1, 3], 'lease 2 is not listed as claimed: its end says so');
  t.equal(sent.length, 2, 'one message for the three claims and the end');
});

t.test(`a claim whose lease is still held reaches main without an end (after CLAIM_REPORT_MS, well within main's ${CLAIM_REPORT_GRACE_MS} ms grace)`, async (t) => {
  t.ok(CLAIM_REPORT_MS * 2 <= CLAIM_REPORT_GRACE_MS, 'main does not count a held lease as expired unused before its claim can arrive');
  const { issuer, sent, next } = build();
  issuer.flush();
  issuer.claim(1);
  issuer.claim(2);
  const m = await next();
  t.same(m.claimed, [1, 2]);
  t.same(m.ended, []);
  t.equal(sent.length, 2);
  issuer.end(1, 4, 0);
  t.same((await next()).ended, [[1, 4, 0]], 'its end follows on its own');
  t.same(sent[2]!.claimed, [], 'the claim is not reported twice');
});

t.test('stale credits are replaced; a `want` from a main process new to it gets the whole free capacity', async (t) => {
  const { issuer, sent, set } = build();
  issuer.flush();
  set({ now: 4000 });
  issuer.flush();
  t.match(sent[1], { seq: 5, n: 4, exp: 10_000 }, 'the first four went stale (main mints only from fresh ones)');
  issuer.want(77);
  issuer.flush();
  t.match(sent[2], { seq: 9, n: 4 }, 'a new main: its predecessor held the fresh ones');
  issuer.want(77);
  issuer.flush();
  t.equal(sent.length, 3, 'the same main again, its credits fresh: nothing');
  issuer.want(78);
  issuer.flush();
  t.match(sent[3], { seq: 13, n: 4 }, 'another new main: 12 fresh now');
  issuer.want(79);
  issuer.flush();
  t.equal(sent.length, 4, `unused fresh credits stay within ${MAX_OUTSTANDING} × max_leases`);
});

t.test('after a reload lowers max_leases, the credits granted under the old limit do not hold back new ones', async (t) => {
  // Issue seen from outside: max_leases 32 → 1 by reload under load; the credits granted
  // before, stale but still valid, counted against 3 × the new limit, so a lease that ended
  // freed capacity that main was never given: BUSY until they lapsed (two lease lifetimes).
  let max = 32;
  const { issuer, sent, set } = build({ maxLeases: () => max });
  issuer.flush();
  t.match(sent[0], { n: 32 }, 'the whole capacity under the old limit');
  max = 1;
  set({ now: 2500, inUse: 1 }); // reloaded; one lease in use
  issuer.flush();
  t.equal(sent.length, 1, 'full under the new limit: nothing');
  set({ now: 4500, inUse: 0 }); // the 32 went stale at 4000 (valid until 7000); the lease ended
  issuer.flush();
  t.match(sent[1], { n: 1 }, 'the freed capacity goes to main as a credit at once');
});

t.test('a `want` from the main that read the first credits (a just-started secondary) gets no second capacity', async (t) => {
  const { issuer, sent } = build();
  issuer.grantedTo(77);
  issuer.flush();
  t.match(sent, [{ seq: 1, n: 4 }], 'the first credits');
  issuer.want(77); // crossed them in the FIFOs
  issuer.flush();
  t.equal(sent.length, 1, 'the same main: its credits are fresh, nothing more (they were granted twice: leases past max_leases refused BUSY)');
  issuer.want(78);
  issuer.flush();
  t.match(sent[1], { seq: 5, n: 4 }, 'another main (77 restarted): the whole free capacity');
});

t.test('no credits while stopping, but the ends of leases still reach main', async (t) => {
  const { issuer, sent, set } = build();
  set({ stopping: true, inUse: 1 });
  issuer.end(3, 1, 0);
  issuer.close();
  t.match(sent, [{ n: 0, ended: [[3, 1, 0]] }]);
  issuer.end(4, 1, 0);
  issuer.flush();
  t.equal(sent.length, 1, 'closed: nothing more');
});

t.test('a grant that cannot be written is taken back and reported', async (t) => {
  let failing = true;
  const { issuer, window, sent, failures } = build({ fail: () => (failing ? new DispatchError('MAILBOX_FULL', 'full') : undefined) });
  issuer.flush();
  await new Promise((r) => setImmediate(r));
  t.same(failures, ['MAILBOX_FULL']);
  t.equal(window.fresh(1000), 0, 'its credits are not counted as held by main');
  t.same(window.claim(1, 1000), { ok: false, fault: 'replayed' }, 'nor can a lease be minted from them');
  failing = false;
  issuer.flush();
  t.match(sent, [{ seq: 5, n: 4 }], 'granted again');
});

t.test('long lists are split so each message stays within PIPE_BUF', async (t) => {
  const { issuer, sent } = build({ maxLeases: 200 });
  issuer.flush();
  for (let s = 1; s <= CREDIT_LIST_MAX + 5; s++) issuer.claim(s);
  issuer.flush();
  t.equal(sent.length, 3);
  t.equal(sent[1]!.claimed.length, CREDIT_LIST_MAX);
  t.equal(sent[2]!.claimed.length, 5);
  t.ok(sent.every((m) => Buffer.byteLength(JSON.stringify(m)) + 1 <= 4096));
});

t.test('ends wait CREDIT_GATHER_MS to share a message while main holds half of max_leases or more in fresh credits; with fewer, CREDIT_BATCH_MS', async (t) => {
  const { issuer, window, next, set } = build();
  issuer.flush();
  t.equal(issuer.gatherMs(), CREDIT_GATHER_MS, 'all 4 credits fresh at main');
  for (let s = 1; s <= 2; s++) window.claim(s, 1000);
  t.equal(issuer.gatherMs(), CREDIT_GATHER_MS, '2 of 4 left');
  window.claim(3, 1000);
  set({ inUse: 3 });
  t.equal(issuer.gatherMs(), CREDIT_BATCH_MS, '1 of 4 left: main needs capacity back soon');
  issuer.end(1, 1, 0);
  issuer.end(2, 1, 0);
  set({ inUse: 1 });
  const m = await next();
  t.same(m.ended, [[1, 1, 0], [2, 1, 0]], 'gathered');
  t.match(m, { seq: 5, n: 2 }, 'their capacity back as credits');
});
