import t from 'tap';
import { AdmissionQueue } from '../../../daemons/main-server/admission-queue.js';

/** Settles a promise into a tagged outcome so that order can be recorded. */
function track(q: Promise<boolean>, tag: string, log: string[]): Promise<boolean> {
  return q.then((woken) => {
    log.push(`${tag}:${woken ? 'woken' : 'timeout'}`);
    return woken;
  });
}

t.test('bounded: full once max requests wait', async (t) => {
  const q = new AdmissionQueue(2);
  t.equal(q.length, 0);
  t.notOk(q.full);
  const a = q.wait(10_000);
  t.notOk(q.full);
  const b = q.wait(10_000);
  t.equal(q.length, 2);
  t.ok(q.full, 'max reached: callers refuse at once');
  q.clear();
  t.same(await Promise.all([a, b]), [false, false]);
  t.ok(new AdmissionQueue(0).full, 'max 0: always full');
});

t.test('wake(count) wakes the oldest first (first come, first served)', async (t) => {
  const q = new AdmissionQueue(10);
  const log: string[] = [];
  const ps = ['a', 'b', 'c', 'd'].map((tag) => track(q.wait(10_000), tag, log));
  q.wake(1);
  await ps[0];
  t.same(log, ['a:woken']);
  t.equal(q.length, 3);
  q.wake(2);
  await Promise.all([ps[1], ps[2]]);
  t.same(log, ['a:woken', 'b:woken', 'c:woken']);
  t.equal(q.length, 1);
  q.wake(); // all by default
  await ps[3];
  t.same(log, ['a:woken', 'b:woken', 'c:woken', 'd:woken']);
  t.equal(q.length, 0);
  q.wake(5);
  t.equal(q.length, 0, 'waking an empty queue is harmless');
});

t.test('a timeout resolves false and leaves the queue', async (t) => {
  const q = new AdmissionQueue(10);
  const log: string[] = [];
  const long = track(q.wait(10_000), 'long', log);
  const short = track(q.wait(20), 'short', log);
  t.equal(q.length, 2);
  t.equal(await short, false);
  t.equal(q.length, 1, 'the timed-out waiter is gone');
  q.wake(1);
  t.equal(await long, true, 'the next wake goes to the one still waiting');
  t.same(log, ['short:timeout', 'long:woken']);
});

t.test('a zero or negative timeout resolves false promptly', async (t) => {
  const q = new AdmissionQueue(10);
  t.equal(await q.wait(0), false);
  t.equal(await q.wait(-5), false);
  t.equal(q.length, 0);
});

t.test('a woken waiter does not time out later, and its timer is released', async (t) => {
  const q = new AdmissionQueue(10);
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  const p = q.wait(60_000);
  t.equal(timers(), before + 1);
  q.wake();
  t.equal(await p, true);
  t.equal(timers(), before, 'no timer left behind (the process can exit)');
});

t.test('clear() releases every waiter as timed out', async (t) => {
  const q = new AdmissionQueue(10);
  const ps = [q.wait(60_000), q.wait(60_000), q.wait(60_000)];
  q.clear();
  t.same(await Promise.all(ps), [false, false, false]);
  t.equal(q.length, 0);
  t.notOk(q.full);
});

t.test('max may change while running (configuration reload)', async (t) => {
  const q = new AdmissionQueue(1);
  const a = q.wait(60_000);
  t.ok(q.full);
  q.max = 3;
  t.notOk(q.full, 'a larger max makes room');
  const b = q.wait(60_000);
  q.max = 1;
  t.ok(q.full, 'a smaller max: full, the ones already waiting stay');
  t.equal(q.length, 2);
  q.wake();
  t.same(await Promise.all([a, b]), [true, true]);
});
