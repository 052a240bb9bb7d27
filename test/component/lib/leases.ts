/**
 * Leases for the component tests that break a secondary under a request: a request running
 * on a lease of its own, and a client that shows which lease it got first and what it retried.
 */
import { DispatchClient, Session } from '../../../daemons/client/client.js';
import type { LeaseGranted } from '../../../daemons/common/protocol.js';

/**
 * Starts a `sleep` of `sleepMs` on a new lease, one attempt and no retries. `outcome`
 * resolves with undefined when it completes, or with the error it failed with.
 */
export async function sleepOnNewLease(socket: string, sleepMs: number, timeoutMs: number): Promise<{ grant: LeaseGranted; session: Session; outcome: Promise<unknown> }> {
  const grant = await new DispatchClient({ socket, attempts: 1 }).lease('sleep');
  const session = await Session.open(grant, 1024, 2000);
  const outcome = session.run('sleep', Buffer.from(String(sleepMs)), timeoutMs).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { grant, session, outcome };
}

/**
 * A client (the library's retries on) that records the first lease it is granted and the
 * code of each failure it retries; `onFirst` runs with that first lease before it is used.
 */
export function watchedClient(socket: string, onFirst?: (g: LeaseGranted) => void | Promise<void>): { client: DispatchClient; retried: string[]; first: () => LeaseGranted | undefined } {
  let first: LeaseGranted | undefined;
  const retried: string[] = [];
  const client = new DispatchClient({
    socket,
    onLease: async (g) => {
      if (first) return;
      first = g;
      await onFirst?.(g);
    },
    onRetry: ({ error }) => retried.push(error.code),
  });
  return { client, retried, first: () => first };
}
