import t from 'tap';
import { DispatchError } from '../../../daemons/common/errors.js';
import type { MailboxMessage, Reserve } from '../../../daemons/common/messages.js';
import { secondary, type DaemonId } from '../../../daemons/common/topology.js';
import { MailboxRpc, type RpcRequest } from '../../../daemons/main-server/mailbox-rpc.js';
import { fakeLogger } from '../lib/fake-daemon.js';

const LEASE = 'a'.repeat(32);
const REQ: RpcRequest = { v: 1, t: 'reserve', lease: LEASE, gen: 5, exp: 9_999_999_999_999 };

function build(send?: (peer: DaemonId, m: MailboxMessage) => Promise<void>) {
  const sent: Array<{ peer: DaemonId; m: Reserve }> = [];
  const incidents: Array<{ key: string; message: string }> = [];
  const { logger, lines } = fakeLogger();
  const rpc = new MailboxRpc({
    send: send ?? (async (peer, m) => void sent.push({ peer, m: m as Reserve })),
    incident: (key, message) => void incidents.push({ key, message }),
    logger,
    generation: 0xabc,
  });
  return { rpc, sent, incidents, lines };
}

t.test('a call writes the message with a fresh id and resolves with the answer carrying it', async (t) => {
  const { rpc, sent } = build();
  const a = rpc.call(secondary(1), REQ, 10_000);
  const b = rpc.call(secondary(2), { ...REQ, lease: 'b'.repeat(32) }, 10_000);
  await new Promise((r) => setImmediate(r));
  t.same(sent.map((s) => s.m.id), ['abc-1', 'abc-2'], 'ids: generation in hex, then a sequence number');
  t.equal(rpc.waiting, 2);
  rpc.answer({ v: 1, t: 'refused', id: 'abc-2', from: 'secondary-2', gen: 5, reason: 'full' });
  rpc.answer({ v: 1, t: 'reserved', id: 'abc-1', from: 'secondary-1', gen: 5, lease: LEASE });
  t.match(await a, { t: 'reserved', lease: LEASE });
  t.match(await b, { t: 'refused', reason: 'full' });
  t.equal(rpc.waiting, 0);
});

t.test('no answer within the timeout resolves undefined; a late answer is ignored', async (t) => {
  const { rpc, lines } = build();
  t.equal(await rpc.call(secondary(1), REQ, 5), undefined);
  rpc.answer({ v: 1, t: 'reserved', id: 'abc-1', from: 'secondary-1', gen: 5, lease: LEASE });
  t.match(lines, [{ level: 'debug', message: 'late answer to reservation abc-1 from secondary-1, ignoring (its lease expires unclaimed)' }]);
});

t.test('an answer from another daemon or for another lease is an incident and ignored', async (t) => {
  const { rpc, incidents } = build();
  const call = rpc.call(secondary(1), REQ, 10_000);
  await new Promise((r) => setImmediate(r));
  rpc.answer({ v: 1, t: 'reserved', id: 'abc-1', from: 'secondary-3', gen: 5, lease: LEASE });
  rpc.answer({ v: 1, t: 'reserved', id: 'abc-1', from: 'secondary-1', gen: 5, lease: 'c'.repeat(32) });
  t.same(incidents.map((i) => i.key), ['mismatch:secondary-3', 'mismatch:secondary-1']);
  t.equal(rpc.waiting, 1, 'the call still waits for its own answer');
  rpc.answer({ v: 1, t: 'reserved', id: 'abc-1', from: 'secondary-1', gen: 5, lease: LEASE });
  t.match(await call, { from: 'secondary-1', lease: LEASE });
});

t.test('a failed write rejects the call with the writer error and leaves nothing waiting', async (t) => {
  const { rpc } = build(async () => {
    throw new DispatchError('MAILBOX_NO_READER', 'no reader');
  });
  await t.rejects(rpc.call(secondary(1), REQ, 10_000), { code: 'MAILBOX_NO_READER' });
  t.equal(rpc.waiting, 0);
});

t.test('close resolves every waiting call with undefined', async (t) => {
  const { rpc } = build();
  const calls = [rpc.call(secondary(1), REQ, 60_000), rpc.call(secondary(2), REQ, 60_000)];
  await new Promise((r) => setImmediate(r));
  rpc.close();
  t.same(await Promise.all(calls), [undefined, undefined]);
});
