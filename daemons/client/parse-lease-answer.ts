/**
 * The client's check of main's answer to a lease request.
 */
import { DispatchError } from '../common/errors.js';
import type { FrameHeader } from '../common/frame.js';
import { LeaseGranted } from '../common/protocol-replies.js';

/**
 * Checks a lease answer (docs/PROTOCOL.md §1.2): a LeaseGranted whose `idempotent` is a
 * boolean and whose `type` is the one asked for (a client decides how to retry by them).
 * @throws DispatchError PROTOCOL_ERROR otherwise.
 */
export function parseLeaseAnswer(header: FrameHeader, type: string): LeaseGranted {
  const g = LeaseGranted.safeParse(header);
  if (!g.success) {
    const missing = typeof header.idempotent !== 'boolean' ? ': it has no boolean `idempotent`' : typeof header.type !== 'string' ? ': it has no `type`' : '';
    throw new DispatchError('PROTOCOL_ERROR', `failed to understand the main server's answer: not a lease${missing} (docs/PROTOCOL.md §1.2)`);
  }
  if (g.data.type !== type) throw new DispatchError('PROTOCOL_ERROR', `failed to use the main server's answer: a lease for '${g.data.type}' requests, but '${type}' was asked for (docs/PROTOCOL.md §1.2)`);
  return g.data;
}
