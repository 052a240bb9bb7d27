/** One valid example of every mailbox message type (docs/PROTOCOL.md §2). */
import type { MailboxMessage } from '../../../daemons/common/messages.js';

export const LEASE = '0123456789abcdef0123456789abcdef';

export const SAMPLES: MailboxMessage[] = [
  { v: 1, t: 'credit', from: 'secondary-2', gen: 3471550430, seq: 1, n: 32, exp: 1795995306000, claimed: [], ended: [] },
  { v: 1, t: 'credit', from: 'secondary-1', gen: 7, seq: 40, n: 0, exp: 1795995306000, claimed: [41, 42], ended: [[33, 1, 0], [2 ** 48 - 1, 12, 1]] },
  { v: 1, t: 'want', from: 'main', gen: 17, to: 3471550430 },
  { v: 1, t: 'reserve', id: '4bd3a1f2-17', lease: LEASE, gen: 3471550430, exp: 1795995301158 },
  { v: 1, t: 'reserved', id: '4bd3a1f2-17', from: 'secondary-1', gen: 3471550430, lease: LEASE },
  { v: 1, t: 'refused', id: 'r-2', from: 'secondary-12', gen: 1, reason: 'full' },
  { v: 1, t: 'refused', id: 'r-3', from: 'secondary-2', gen: 2, reason: 'stopping' },
  { v: 1, t: 'refused', id: 'r-4', from: 'secondary-3', gen: 3, reason: 'stale-generation' },
  { v: 1, t: 'refused', id: 'r-5', from: 'secondary-62', gen: 0xffffffff, reason: 'expired' },
  { v: 1, t: 'done', from: 'secondary-1', gen: 7, lease: LEASE, claimed: true, requests: 12, failed: 1 },
  { v: 1, t: 'done', from: 'secondary-1', gen: 7, lease: LEASE, claimed: false, requests: 0, failed: 0 },
  { v: 1, t: 'ready', from: 'secondary-4', gen: 99 },
  { v: 1, t: 'ping', from: 'watchdog', seq: 0 },
  { v: 1, t: 'ping', from: 'watchdog', seq: Number.MAX_SAFE_INTEGER },
  { v: 1, t: 'pong', from: 'main', seq: 5, pid: 4242, gen: 17 },
  { v: 1, t: 'pong', from: 'watchdog', seq: 5, pid: 1, gen: 0 },
];

/** Every `t` the protocol defines. */
export const TYPES = ['credit', 'want', 'reserve', 'reserved', 'refused', 'done', 'ready', 'ping', 'pong'] as const;
