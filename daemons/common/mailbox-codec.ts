/**
 * Pure encoder and incremental decoder for mailbox messages (docs/PROTOCOL.md §2).
 *
 * The decoder accepts bytes split and merged arbitrarily, as a FIFO delivers them. Damage
 * (a line over PIPE_BUF, bad JSON, an unknown message) costs only the damaged line: the
 * decoder resynchronises at the next newline, which is why mailboxes are newline-delimited
 * rather than length-prefixed.
 */
import { DispatchError } from './errors.js';
import { MailboxMessage, PIPE_BUF } from './messages.js';

const NEWLINE = 0x0a;

/**
 * Encodes one message as a line of at most PIPE_BUF bytes.
 *
 * @throws DispatchError MESSAGE_TOO_LARGE when the line would exceed PIPE_BUF bytes.
 */
export function encodeMessage(msg: MailboxMessage): Buffer {
  const line = Buffer.from(JSON.stringify(msg) + '\n', 'utf8');
  if (line.length > PIPE_BUF) {
    throw new DispatchError('MESSAGE_TOO_LARGE', `failed to encode mailbox message '${msg.t}': ${line.length} bytes exceed PIPE_BUF (${PIPE_BUF})`);
  }
  return line;
}

/** One outcome of decoding: a valid message, or one damaged line with its reason. */
export type MailboxDecoded =
  | { kind: 'message'; message: MailboxMessage }
  | { kind: 'invalid'; error: DispatchError; preview: string };

/** Incremental NDJSON decoder with a hard line limit of PIPE_BUF bytes. */
export class MailboxDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** True while dropping the rest of an over-long line, up to its newline. */
  private skipping = false;

  /** Decodes every complete line in `chunk` (plus what was pending) and returns the outcomes. */
  push(chunk: Buffer): MailboxDecoded[] {
    const out: MailboxDecoded[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, start);
      if (nl === -1) break;
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.skipping) {
        this.skipping = false;
        continue;
      }
      let line = piece;
      if (this.pendingBytes > 0) {
        line = Buffer.concat([...this.pending, piece], this.pendingBytes + piece.length);
        this.pending = [];
        this.pendingBytes = 0;
      }
      out.push(decodeLine(line));
    }
    const rest = chunk.subarray(start);
    if (rest.length > 0 && !this.skipping) {
      if (this.pendingBytes + rest.length >= PIPE_BUF) {
        // No newline within PIPE_BUF bytes: this line can never be valid. Report it once
        // and drop everything up to the next newline, keeping memory bounded.
        const preview = previewOf(this.pending.length ? Buffer.concat([...this.pending, rest]) : rest);
        this.pending = [];
        this.pendingBytes = 0;
        this.skipping = true;
        out.push({ kind: 'invalid', preview, error: new DispatchError('MESSAGE_TOO_LARGE', `failed to decode mailbox message: line exceeds PIPE_BUF (${PIPE_BUF} bytes) without a newline`) });
      } else {
        this.pending.push(rest);
        this.pendingBytes += rest.length;
      }
    }
    return out;
  }

  /** Bytes of an incomplete line held back, waiting for its newline. */
  get pendingLength(): number {
    return this.pendingBytes;
  }
}

function decodeLine(line: Buffer): MailboxDecoded {
  if (line.length + 1 > PIPE_BUF) {
    return { kind: 'invalid', preview: previewOf(line), error: new DispatchError('MESSAGE_TOO_LARGE', `failed to decode mailbox message: line of ${line.length + 1} bytes exceeds PIPE_BUF (${PIPE_BUF} bytes)`) };
  }
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch (cause) {
    return { kind: 'invalid', preview: previewOf(line), error: new DispatchError('MESSAGE_INVALID', 'failed to decode mailbox message: not valid JSON', { cause }) };
  }
  const parsed = MailboxMessage.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length ? ` at '${issue.path.join('.')}'` : '';
    return { kind: 'invalid', preview: previewOf(line), error: new DispatchError('MESSAGE_INVALID', `failed to decode mailbox message: ${issue?.message ?? 'does not match the protocol'}${where}`) };
  }
  return { kind: 'message', message: parsed.data };
}

/** A short, printable excerpt of damaged input for a log line (at most 64 characters). */
export function previewOf(bytes: Buffer): string {
  const s = bytes.subarray(0, 48).toString('latin1').replace(/[^\x20-\x7e]/g, '.');
  return bytes.length > 48 ? `${s}… (${bytes.length} bytes)` : s;
}
