/**
 * A daemon's writers to its peers' mailboxes: one per peer, opened on the first message to
 * it, closed when the peer is gone for good or the daemon releases everything.
 */
import type { OutboxPort } from './daemon-ports.js';
import type { MailboxMessage } from './messages.js';
import { formatDaemonId, type DaemonId } from './topology.js';

export class PeerOutboxes {
  private readonly open = new Map<string, OutboxPort>();

  /** @param opener opens a writer to a peer's mailbox (openDaemonPorts' `outbox`, or a fake). */
  constructor(private readonly opener: (peer: DaemonId) => OutboxPort) {}

  /** Sends a message to a peer's mailbox. @throws DispatchError MAILBOX_* (rejects), see MailboxWriter.send. */
  send(peer: DaemonId, m: MailboxMessage): Promise<void> {
    const key = formatDaemonId(peer);
    let w = this.open.get(key);
    if (!w) this.open.set(key, (w = this.opener(peer)));
    return w.send(m);
  }

  /** Closes the writer to one peer, if open; a later {@link send} opens a new one. */
  close(peer: DaemonId): void {
    const key = formatDaemonId(peer);
    this.open.get(key)?.close();
    this.open.delete(key);
  }

  closeAll(): void {
    for (const w of this.open.values()) w.close();
    this.open.clear();
  }
}
