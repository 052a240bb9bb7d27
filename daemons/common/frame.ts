/**
 * Framing for dispatchd's stream sockets (client ↔ main, client ↔ secondary).
 *
 * A frame (all integers big-endian, see docs/PROTOCOL.md §1):
 *
 * ```
 *  0      2      3      4              8              12            12+H          12+H+B
 *  +------+------+------+--------------+--------------+-------------+-------------+
 *  | "DQ" | ver  | flags| header len H | body len B   | header JSON | body bytes  |
 *  +------+------+------+--------------+--------------+-------------+-------------+
 * ```
 *
 * `ver` is {@link FRAME_VERSION}, `flags` must be 0, H is 2..{@link MAX_HEADER_BYTES}, B is
 * 0..the decoder's `maxBodyBytes`. The header is a UTF-8 JSON object; the body is opaque.
 * A length-prefixed stream cannot resynchronise after damage, so a decoding error is final
 * for the connection: the peer gets one error frame and is disconnected.
 */
import { DispatchError } from './errors.js';

export const FRAME_MAGIC = 0x4451; // "DQ"
export const FRAME_VERSION = 1;
export const FRAME_PREFIX_BYTES = 12;
/** Hard maximum of a frame's JSON header, in bytes. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** Hard ceiling on any body, in bytes (the configured maximum may only be lower). */
export const MAX_BODY_BYTES_CEILING = 1024 * 1024 * 1024;

export type FrameHeader = Record<string, unknown>;

export interface Frame {
  header: FrameHeader;
  body: Buffer;
}

/** What {@link FrameDecoder.next} found: a whole frame, a need for more bytes, or an error. */
export type DecodeResult =
  | { kind: 'frame'; frame: Frame }
  | { kind: 'need-more' }
  | { kind: 'error'; error: DispatchError };

/**
 * Encodes one frame. Returns two buffers (prefix+header, body) so that a large body is never
 * copied; write both with one `socket.cork()`/`uncork()` or `writev`.
 *
 * @throws DispatchError FRAME_TOO_LARGE when the header exceeds MAX_HEADER_BYTES.
 */
export function encodeFrame(header: FrameHeader, body: Buffer = EMPTY): [Buffer, Buffer] {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  if (json.length > MAX_HEADER_BYTES) {
    throw new DispatchError('FRAME_TOO_LARGE', `failed to encode frame: header of ${json.length} bytes exceeds ${MAX_HEADER_BYTES} bytes`);
  }
  const head = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + json.length);
  head.writeUInt16BE(FRAME_MAGIC, 0);
  head.writeUInt8(FRAME_VERSION, 2);
  head.writeUInt8(0, 3);
  head.writeUInt32BE(json.length, 4);
  head.writeUInt32BE(body.length, 8);
  json.copy(head, FRAME_PREFIX_BYTES);
  return [head, body];
}

const EMPTY = Buffer.alloc(0);

/**
 * Incremental frame decoder: feed it chunks as they arrive, in any split, and take frames
 * out with {@link next}. Memory is bounded: a frame that announces a body larger than
 * `maxBodyBytes` is an error before its body is read.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed: DispatchError | undefined;

  /** @param maxBodyBytes largest accepted body, in bytes. */
  constructor(private readonly maxBodyBytes: number) {
    if (!(maxBodyBytes >= 0 && maxBodyBytes <= MAX_BODY_BYTES_CEILING)) {
      throw new RangeError(`maxBodyBytes must be 0..${MAX_BODY_BYTES_CEILING}, got ${maxBodyBytes}`);
    }
  }

  /** Bytes received but not yet returned as a frame. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Adds received bytes. */
  push(chunk: Buffer): void {
    if (this.failed || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Returns the next whole frame, `need-more`, or the (final) error. */
  next(): DecodeResult {
    if (this.failed) return { kind: 'error', error: this.failed };
    if (this.buffered < FRAME_PREFIX_BYTES) {
      // Check the magic as soon as two bytes are here, so garbage fails fast.
      if (this.buffered >= 2) {
        const err = this.checkMagic(this.peek(2));
        if (err) return this.fail(err);
      }
      return { kind: 'need-more' };
    }
    const prefix = this.peek(FRAME_PREFIX_BYTES);
    const bad = this.checkMagic(prefix);
    if (bad) return this.fail(bad);
    const version = prefix.readUInt8(2);
    if (version !== FRAME_VERSION) {
      return this.fail(new DispatchError('FRAME_BAD_VERSION', `failed to decode frame: version ${version} is not supported (this side speaks ${FRAME_VERSION}); upgrade the older side`));
    }
    if (prefix.readUInt8(3) !== 0) {
      return this.fail(new DispatchError('FRAME_BAD_HEADER', `failed to decode frame: reserved flags byte is ${prefix.readUInt8(3)}, expected 0`));
    }
    const headerLen = prefix.readUInt32BE(4);
    const bodyLen = prefix.readUInt32BE(8);
    if (headerLen < 2) {
      return this.fail(new DispatchError('FRAME_BAD_HEADER', `failed to decode frame: header length ${headerLen} is below 2 bytes (the shortest JSON object, {})`));
    }
    if (headerLen > MAX_HEADER_BYTES) {
      return this.fail(new DispatchError('FRAME_TOO_LARGE', `failed to decode frame: header of ${headerLen} bytes exceeds ${MAX_HEADER_BYTES} bytes`));
    }
    if (bodyLen > this.maxBodyBytes) {
      // The frame is well formed, the payload is just too big for this receiver: a refusal
      // of the request (PAYLOAD_TOO_LARGE, exit 65), not a protocol error.
      const what = this.maxBodyBytes === 0 ? 'this receiver takes no payload' : `the maximum is ${this.maxBodyBytes} bytes`;
      return this.fail(new DispatchError('PAYLOAD_TOO_LARGE', `failed to accept a request: its payload of ${bodyLen} bytes is too large (${what})`, { fields: { max_bytes: this.maxBodyBytes, size: bodyLen } }));
    }
    const total = FRAME_PREFIX_BYTES + headerLen + bodyLen;
    if (this.buffered < total) return { kind: 'need-more' };
    const all = this.take(total);
    let header: unknown;
    try {
      header = JSON.parse(all.toString('utf8', FRAME_PREFIX_BYTES, FRAME_PREFIX_BYTES + headerLen));
    } catch (cause) {
      return this.fail(new DispatchError('FRAME_BAD_HEADER', 'failed to decode frame: header is not valid JSON', { cause }));
    }
    if (header === null || typeof header !== 'object' || Array.isArray(header)) {
      return this.fail(new DispatchError('FRAME_BAD_HEADER', 'failed to decode frame: header is not a JSON object'));
    }
    const body = all.subarray(FRAME_PREFIX_BYTES + headerLen);
    return { kind: 'frame', frame: { header: header as FrameHeader, body } };
  }

  private checkMagic(b: Buffer): DispatchError | undefined {
    const magic = b.readUInt16BE(0);
    if (magic === FRAME_MAGIC) return undefined;
    return new DispatchError('FRAME_BAD_MAGIC', `failed to decode frame: bad magic 0x${magic.toString(16).padStart(4, '0')}, expected 0x4451 ("DQ"); the peer does not speak the dispatchd protocol`);
  }

  private fail(error: DispatchError): DecodeResult {
    this.failed = error;
    this.chunks = [];
    this.buffered = 0;
    return { kind: 'error', error };
  }

  /** The first n buffered bytes, without consuming them (n ≤ buffered). */
  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) {
      // Merge only the leading chunks needed, so a large body behind is never re-copied.
      let len = 0;
      let count = 0;
      while (len < n) len += this.chunks[count++]!.length;
      this.chunks.splice(0, count, Buffer.concat(this.chunks.slice(0, count), len));
    }
    return this.chunks[0]!.subarray(0, n);
  }

  /** Consumes and returns the first n buffered bytes (n ≤ buffered), copying only if split. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const joined = Buffer.concat(this.chunks, this.buffered);
      out = joined.subarray(0, n);
      this.chunks = joined.length > n ? [joined.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }
}
