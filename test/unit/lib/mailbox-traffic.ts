/**
 * The traffic mailbox.test.ts's writer processes send. Message i of writer W has id "wW-i:"
 * followed by padding, so the reader can check that nothing was lost, duplicated, reordered
 * or corrupted. Every fifth message is large (~1000 … 4091 bytes on the wire): its id is too
 * long for the schema, so the reader reports it as invalid with the id in its preview, which
 * still proves the line arrived whole (a torn or interleaved line is not valid JSON).
 */
import type { MailboxMessage } from '../../../daemons/common/messages.js';

const LEASE = '0123456789abcdef0123456789abcdef';

export function isLarge(i: number): boolean {
  return i % 5 === 4;
}

export function messageFor(w: number, i: number): MailboxMessage {
  const tag = `w${w}-${i}:`;
  if (isLarge(i)) {
    const size = 1000 + ((i * 7919 + w * 104729) % 3000); // 1000 … 3999 bytes of id
    return { id: tag + 'x'.repeat(size - tag.length), v: 1, t: 'reserve', lease: LEASE, gen: w, exp: i } as MailboxMessage;
  }
  // Control characters are escaped as \u0001 (6 bytes each): valid ids of varying size.
  const pad = '\u0001'.repeat((i * 31 + w) % (64 - tag.length));
  return { id: tag + pad, v: 1, t: 'reserve', lease: LEASE, gen: w, exp: i } as MailboxMessage;
}
