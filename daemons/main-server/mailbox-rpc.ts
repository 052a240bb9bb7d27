/**
 * Request/reply over mailbox FIFOs (docs/PROTOCOL.md §2): main writes a `reserve` with a
 * fresh id to a secondary's mailbox, and the secondary's `reserved` or `refused` with that id
 * comes back on main's own mailbox. A call waits for its answer up to a deadline; an answer
 * from another daemon, or for another lease, is an incident and ignored; a late answer (its
 * call timed out) is ignored too.
 */
import type { DispatchError } from '../common/errors.js';
import type { IncidentLevel } from '../common/incident-log.js';
import type { Logger } from '../common/logger.js';
import type { MailboxMessage, Refused, Reserve, Reserved } from '../common/messages.js';
import { formatDaemonId, type DaemonId } from '../common/topology.js';

/** What a call asks: a reservation (the id is the call's). */
export type RpcRequest = Omit<Reserve, 'id'>;
/** What answers a call. */
export type RpcAnswer = Reserved | Refused;

export interface MailboxRpcOptions {
  /** Writes to a peer's mailbox (DaemonCore.send). @throws DispatchError MAILBOX_* (rejects). */
  send: (peer: DaemonId, m: MailboxMessage) => Promise<void>;
  incident: (key: string, message: string, fields: Record<string, unknown>, level?: IncidentLevel) => void;
  logger: Logger;
  /** Makes ids unique across processes: main's generation. */
  generation: number;
}

interface Pending {
  peer: string;
  request: RpcRequest;
  resolve: (m: RpcAnswer | undefined) => void;
}

export class MailboxRpc {
  private readonly pending = new Map<string, Pending>();
  private seq = 0;

  constructor(private readonly o: MailboxRpcOptions) {}

  /** Calls waiting for their answer. */
  get waiting(): number {
    return this.pending.size;
  }

  /**
   * Sends `message` with a fresh id to `target`'s mailbox and waits for its answer.
   * @param timeoutMs how long to wait for the answer once written (ms).
   * @returns the answer, or undefined when none came within `timeoutMs` (or on {@link close}).
   * @throws DispatchError MAILBOX_* when the message cannot be written (rejects).
   */
  async call(target: DaemonId, message: RpcRequest, timeoutMs: number): Promise<RpcAnswer | undefined> {
    const id = `${this.o.generation.toString(16)}-${++this.seq}`;
    const answer = new Promise<RpcAnswer | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.pending.set(id, {
        peer: formatDaemonId(target),
        request: message,
        resolve: (m) => {
          clearTimeout(timer);
          this.pending.delete(id);
          resolve(m);
        },
      });
    });
    try {
      await this.o.send(target, { ...message, id } as Reserve);
    } catch (err) {
      this.pending.get(id)?.resolve(undefined);
      throw err as DispatchError;
    }
    return answer;
  }

  /** Hands an answer from the mailbox to its call. */
  answer(m: RpcAnswer): void {
    const p = this.pending.get(m.id);
    if (!p) {
      this.o.logger.debug(`late answer to reservation ${m.id} from ${m.from}, ignoring (its lease expires unclaimed)`, { peer: m.from });
      return;
    }
    if (m.from !== p.peer || (m.t === 'reserved' && m.lease !== p.request.lease)) {
      this.o.incident(`mismatch:${m.from}`, `answer to reservation ${m.id} came from ${m.from} for another lease, ignoring`, { peer: m.from });
      return;
    }
    p.resolve(m);
  }

  /** Ends every call waiting: each resolves undefined. */
  close(): void {
    for (const p of [...this.pending.values()]) p.resolve(undefined);
  }
}
