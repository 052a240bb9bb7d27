/**
 * Pure encoder and incremental decoder for mailbox messages (docs/PROTOCOL.md §2).
 *
 * The decoder accepts bytes split and merged arbitrarily, as a FIFO delivers them. Damage
 * (a line over PIPE_BUF, bad JSON, an unknown message) costs only the damaged bytes: the
 * decoder resynchronises at the next newline, which is why mailboxes are newline-delimited
 * rather than length-prefixed. And because every well-behaved writer writes a whole line in
 * one atomic write(2), a valid message can only be damaged by bytes glued *in front of it*
 * (a bad writer's line without its newline, or a non-atomic write over PIPE_BUF): so when a
 * line does not decode, its suffix from the last `{"v":` is tried as a message of its own,
 * and a valid one is recovered rather than lost with the garbage before it.
 */
import { DispatchError } from './errors.js';
import { isCredit, isPing, isPong, MailboxMessage, PIPE_BUF } from './messages.js';

const NEWLINE = 0x0a;
/** Every message starts so (every daemon builds its messages with `v` first, and JSON.stringify keeps the order); where a damaged line is retried. */
const MESSAGE_START = Buffer.from('{"v":');
/** A message's bytes without its newline are at most this long. */
const MAX_MESSAGE_BYTES = PIPE_BUF - 1;

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
  /** While skipping: the line's last bytes (at most a message's worth), where a valid message may end it. */
  private tail: Buffer = Buffer.alloc(0);

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
        // The end of an over-long line (already reported): a valid message may end it.
        this.skipping = false;
        const recovered = recoverSuffix(lastBytes(Buffer.concat([this.tail, piece]), MAX_MESSAGE_BYTES));
        this.tail = Buffer.alloc(0);
        if (recovered) out.push(recovered);
        continue;
      }
      let line = piece;
      if (this.pendingBytes > 0) {
        line = Buffer.concat([...this.pending, piece], this.pendingBytes + piece.length);
        this.pending = [];
        this.pendingBytes = 0;
      }
      const decoded = decodeLine(line);
      out.push(decoded);
      if (decoded.kind === 'invalid') {
        const recovered = recoverSuffix(line);
        if (recovered) out.push(recovered);
      }
    }
    const rest = chunk.subarray(start);
    if (rest.length > 0 && this.skipping) {
      this.tail = keepTail(this.tail, rest);
    } else if (rest.length > 0) {
      if (this.pendingBytes + rest.length >= PIPE_BUF) {
        // No newline within PIPE_BUF bytes: this line can never be valid. Report it once
        // and drop everything up to the next newline but the last message's worth of bytes
        // (a valid message may still end the line), keeping memory bounded.
        const all = this.pending.length ? Buffer.concat([...this.pending, rest]) : rest;
        const preview = previewOf(all);
        this.tail = keepTail(Buffer.alloc(0), all);
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

/** A copy of the last message's worth of `prev` followed by `more` (bounded, never holds a chunk). */
function keepTail(prev: Buffer, more: Buffer): Buffer {
  if (more.length >= MAX_MESSAGE_BYTES) return Buffer.from(lastBytes(more, MAX_MESSAGE_BYTES));
  return Buffer.from(lastBytes(Buffer.concat([prev, more]), MAX_MESSAGE_BYTES));
}

/** The last `n` bytes of `b` (all of it when shorter). */
function lastBytes(b: Buffer, n: number): Buffer {
  return b.length > n ? b.subarray(b.length - n) : b;
}

/**
 * A damaged line's last chance: its suffix from the last `{"v":` (not at its start, which was
 * just tried), decoded as a message of its own. Returns the message, or undefined.
 */
function recoverSuffix(line: Buffer): MailboxDecoded | undefined {
  const at = line.lastIndexOf(MESSAGE_START);
  if (at <= 0 || line.length - at > MAX_MESSAGE_BYTES) return undefined;
  const d = decodeLine(line.subarray(at));
  return d.kind === 'message' ? d : undefined;
}

/**
 * The error of a line that is not one JSON object at all (blank, binary, cut short): shared, so
 * that rejecting such a line costs no exception, no stack trace and no JSON parse. A writer
 * flooding a mailbox with them (say 64 KiB of newlines) must not stall the reader's event loop.
 */
const NOT_AN_OBJECT = new DispatchError('MESSAGE_INVALID', 'failed to decode mailbox message: not valid JSON (a message is one JSON object on one line)');
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

function decodeLine(line: Buffer): MailboxDecoded {
  if (line.length + 1 > PIPE_BUF) {
    return { kind: 'invalid', preview: previewOf(line), error: new DispatchError('MESSAGE_TOO_LARGE', `failed to decode mailbox message: line of ${line.length + 1} bytes exceeds PIPE_BUF (${PIPE_BUF} bytes)`) };
  }
  // encodeMessage writes JSON.stringify's output: '{' first and '}' last, no whitespace.
  if (line.length < 2 || line[0] !== OPEN_BRACE || line[line.length - 1] !== CLOSE_BRACE) {
    return { kind: 'invalid', preview: previewOf(line), error: NOT_AN_OBJECT };
  }
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch (cause) {
    return { kind: 'invalid', preview: previewOf(line), error: new DispatchError('MESSAGE_INVALID', 'failed to decode mailbox message: not valid JSON', { cause }) };
  }
  // The common messages (main's `credit`, one per few leases; `ping` and `pong`, one per
  // probe round all day) are checked by hand; the rest, and what those checks refuse, by zod.
  if (isCredit(value) || isPing(value) || isPong(value)) return { kind: 'message', message: value };
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
