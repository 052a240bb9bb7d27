/**
 * Hostile input for the system-level fuzzer: what a bad client can write into a stream socket
 * and what a bad local writer can write into a mailbox FIFO. Pure and seeded: the same seed
 * gives the same cases.
 *
 * Never a whole valid message: a fuzz case must not change the suite's state the way a real
 * peer would (a valid `credit` hands main leases, a valid lease request uses up a credit), so
 * what it shows is the handling of damage, not of load. A run frame may be whole, with a lease
 * the fuzzer cannot have minted (it does not hold the suite's key): lease tokens of the real
 * format (docs/PROTOCOL.md §2.2) with a random key id or MAC, another version, a wrong length.
 */
import { encodeFrame, FRAME_MAGIC, FRAME_PREFIX_BYTES, MAX_HEADER_BYTES } from '../../../daemons/common/frame.js';
import { LEASE_TOKEN_BYTES, LEASE_TOKEN_VERSION } from '../../../daemons/common/lease-token.js';
import { clientSocketPath, formatDaemonId, mailboxPath, suiteDaemons } from '../../../daemons/common/topology.js';

/** Linux PIPE_BUF. */
const PIPE_BUF = 4096;

export type Endpoint =
  | { kind: 'socket'; name: string; path: string; /** the server's largest body */ maxBody: number }
  | { kind: 'fifo'; name: string; path: string };

export interface FuzzCase {
  endpoint: Endpoint;
  /** What kind of damage, for the report. */
  label: string;
  /** Written in order; for a FIFO each chunk is one write(2). */
  chunks: Buffer[];
  /** Socket: pause between chunks, ms (a client dribbling bytes). */
  gapMs?: number;
  /** Socket: keep the connection open until the server closes it (an idle or half-frame client). */
  hold?: boolean;
  /** FIFO: write the chunks from two fds, alternating (two writers interleaving large writes). */
  twoWriters?: boolean;
}

export type Rnd = () => number;

const int = (rnd: Rnd, min: number, max: number) => min + Math.floor(rnd() * (max - min + 1));
const pick = <T>(rnd: Rnd, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

function bytes(rnd: Rnd, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

/** Random bytes without a newline. */
function bytesNoNewline(rnd: Rnd, n: number): Buffer {
  const b = bytes(rnd, n);
  for (let i = 0; i < n; i++) if (b[i] === 0x0a) b[i] = 0x20;
  return b;
}

function prefix(o: { magic?: number; version?: number; flags?: number; h: number; b: number }): Buffer {
  const p = Buffer.alloc(FRAME_PREFIX_BYTES);
  p.writeUInt16BE(o.magic ?? FRAME_MAGIC, 0);
  p.writeUInt8(o.version ?? 1, 2);
  p.writeUInt8(o.flags ?? 0, 3);
  p.writeUInt32BE(o.h >>> 0, 4);
  p.writeUInt32BE(o.b >>> 0, 8);
  return p;
}

function randomJson(rnd: Rnd, depth = 0): unknown {
  const r = rnd();
  if (depth > 3 || r < 0.3) return pick(rnd, [null, true, false, 0, -1, 1e308, 4294967296, 'echo', 'lease', 'run', '', 'x'.repeat(int(rnd, 0, 100)), '\u0000\u202e', '__proto__']);
  if (r < 0.6) return Array.from({ length: int(rnd, 0, 4) }, () => randomJson(rnd, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = int(rnd, 0, 5); i > 0; i--) o[pick(rnd, ['op', 'type', 'lease', 'generation', 'deadline_ms', 'id', 'v', 't', '__proto__', 'constructor', 'x'])] = randomJson(rnd, depth + 1);
  return o;
}

/**
 * A lease token of the real layout (version, key id, sequence, expiry, type tag, MAC) that no
 * secondary issued: random fields, or one of them damaged (another version, a cut or
 * lengthened token, a sequence or expiry at its bounds, a MAC of zeros).
 */
export function fuzzLeaseToken(rnd: Rnd): string {
  const b = bytes(rnd, LEASE_TOKEN_BYTES);
  b[0] = LEASE_TOKEN_VERSION;
  const damage = pick(rnd, ['random', 'version', 'short', 'long', 'seq-zero', 'seq-max', 'expiry-past', 'expiry-max', 'mac-zeros', 'upper-case']);
  if (damage === 'version') b[0] = pick(rnd, [0, 2, 0xff]);
  if (damage === 'seq-zero') b.fill(0, 5, 11);
  if (damage === 'seq-max') b.fill(0xff, 5, 11);
  if (damage === 'expiry-past') b.writeUIntBE(int(rnd, 0, Date.now()), 11, 6);
  if (damage === 'expiry-max') b.fill(0xff, 11, 17);
  if (damage === 'mac-zeros') b.fill(0, 25);
  const hex = b.toString('hex');
  if (damage === 'short') return hex.slice(0, 2 * int(rnd, 1, LEASE_TOKEN_BYTES - 1));
  if (damage === 'long') return hex + bytes(rnd, int(rnd, 1, 80)).toString('hex');
  if (damage === 'upper-case') return hex.toUpperCase();
  return hex;
}

/** A frame header that is a JSON object but not a valid request. */
function badRequestHeader(rnd: Rnd): Record<string, unknown> {
  const kinds: Array<() => Record<string, unknown>> = [
    () => randomJson(rnd, 1) as Record<string, unknown>,
    () => ({ op: 'lease', type: pick(rnd, ['', 'x'.repeat(65), 'frobnicate', 42, null]) }),
    () => ({ op: 'run', lease: bytes(rnd, 16).toString('hex'), generation: int(rnd, 0, 0xffffffff), type: pick(rnd, ['echo', 'sha256', 'sleep', 'nope']), deadline_ms: pick(rnd, [0, -1, 1e9, 1.5, 'x', 1]) }),
    () => ({ op: 'run', lease: 'NOT-A-LEASE', generation: -1, type: 'echo' }),
    () => ({ op: 'run', lease: fuzzLeaseToken(rnd), generation: pick(rnd, [-1, 2 ** 32, 1.5, '7']), type: 'echo' }),
    () => ({ op: pick(rnd, ['LEASE', 'status', 'restart', '']), type: 'echo' }),
  ];
  const h = pick(rnd, kinds)();
  return h !== null && typeof h === 'object' && !Array.isArray(h) ? h : { op: 'nope' };
}

/** A JSON text nested `depth` deep (arrays or objects), at most `max` bytes. */
function deepJson(rnd: Rnd, max: number): Buffer {
  const depth = int(rnd, 100, Math.floor((max - 16) / 6));
  const obj = rnd() < 0.5;
  const open = obj ? '{"a":' : '[';
  const close = obj ? '}' : ']';
  const n = Math.min(depth, Math.floor((max - 1) / (open.length + close.length)));
  return Buffer.from(open.repeat(n) + '1' + close.repeat(n));
}

/** Splits a buffer at random points into 1 … n pieces. */
function split(rnd: Rnd, b: Buffer, n: number): Buffer[] {
  const cuts = Array.from({ length: int(rnd, 0, n - 1) }, () => int(rnd, 1, Math.max(1, b.length - 1))).sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...new Set(cuts), b.length]) {
    if (c > prev) out.push(b.subarray(prev, c));
    prev = c;
  }
  return out.length ? out : [b];
}

function socketCase(rnd: Rnd, ep: Extract<Endpoint, { kind: 'socket' }>): FuzzCase {
  const valid = () => Buffer.concat(encodeFrame(ep.maxBody > 0 ? { op: 'run', lease: bytes(rnd, 16).toString('hex'), generation: int(rnd, 1, 0xffffffff), type: 'echo' } : { op: 'lease', type: 'echo' }, ep.maxBody > 0 ? bytes(rnd, int(rnd, 0, 2048)) : undefined));
  const gens: Array<[string, () => Partial<FuzzCase> & { chunks: Buffer[] }]> = [
    ['random-bytes', () => ({ chunks: [bytes(rnd, int(rnd, 1, 512))] })],
    ['oversized-random', () => ({ chunks: split(rnd, bytes(rnd, int(rnd, PIPE_BUF + 1, 200_000)), 4) })],
    ['bad-version', () => ({ chunks: [prefix({ version: int(rnd, 2, 255), h: 2, b: 0 }), Buffer.from('{}')] })],
    ['bad-flags', () => ({ chunks: [prefix({ flags: int(rnd, 1, 255), h: 2, b: 0 }), Buffer.from('{}')] })],
    ['header-length-over-max', () => ({ chunks: [prefix({ h: int(rnd, MAX_HEADER_BYTES + 1, 0xffffffff), b: 0 }), bytes(rnd, int(rnd, 0, 256))] })],
    ['header-length-under-min', () => ({ chunks: [prefix({ h: int(rnd, 0, 1), b: 0 }), Buffer.from('{}')] })],
    ['body-length-over-max', () => ({ chunks: [prefix({ h: 2, b: int(rnd, ep.maxBody + 1, 0xffffffff) }), Buffer.from('{}'), bytes(rnd, int(rnd, 0, 1024))] })],
    ['header-not-json', () => {
      const h = bytes(rnd, int(rnd, 2, 300));
      return { chunks: [prefix({ h: h.length, b: 0 }), h] };
    }],
    ['header-not-object', () => {
      const h = Buffer.from(JSON.stringify(pick(rnd, [[], [1, 2], 'lease', 42, null, true])));
      return { chunks: [prefix({ h: h.length, b: 0 }), h] };
    }],
    ['header-bad-request', () => ({ chunks: split(rnd, Buffer.concat(encodeFrame(badRequestHeader(rnd))), 3) })],
    ['header-deeply-nested', () => {
      const h = deepJson(rnd, MAX_HEADER_BYTES);
      return { chunks: [prefix({ h: h.length, b: 0 }), h] };
    }],
    ['header-over-max-real', () => {
      const h = Buffer.from(JSON.stringify({ op: 'lease', type: 'echo', id: 'x'.repeat(MAX_HEADER_BYTES) }));
      return { chunks: split(rnd, Buffer.concat([prefix({ h: h.length, b: 0 }), h]), 4) };
    }],
    ['truncated-frame', () => {
      const f = valid();
      return { chunks: split(rnd, f.subarray(0, int(rnd, 1, f.length - 1)), 3) };
    }],
    ['truncated-frame-held-open', () => {
      const f = valid();
      return { chunks: [f.subarray(0, int(rnd, 1, f.length - 1))], hold: true };
    }],
    ['nothing-held-open', () => ({ chunks: [], hold: true })],
    ['pipelined-bad-requests-then-garbage', () => ({ chunks: split(rnd, Buffer.concat([...Array.from({ length: int(rnd, 1, 5) }, () => Buffer.concat(encodeFrame(badRequestHeader(rnd)))), bytes(rnd, int(rnd, 1, 64))]), 5) })],
    ['dribbled-bytes', () => {
      const f = valid();
      return { chunks: Array.from(f.subarray(0, Math.min(f.length - 1, int(rnd, 2, 40))), (x) => Buffer.from([x])), gapMs: int(rnd, 1, 20) };
    }],
    ['frame-then-garbage', () => ({ chunks: [Buffer.concat(encodeFrame(badRequestHeader(rnd))), bytes(rnd, int(rnd, 1, 5000))] })],
  ];
  if (ep.maxBody > 0) {
    // A whole run frame presenting a lease no secondary issued: refused, nothing runs.
    const forged = () => ({ op: 'run', lease: fuzzLeaseToken(rnd), generation: int(rnd, 0, 0xffffffff), type: pick(rnd, ['echo', 'sha256', 'sleep']) });
    gens.push(['run-unissued-lease', () => ({ chunks: split(rnd, Buffer.concat(encodeFrame(forged(), bytes(rnd, int(rnd, 0, 2048)))), 3) })]);
    gens.push(['run-unissued-leases-pipelined', () => ({ chunks: split(rnd, Buffer.concat(Array.from({ length: int(rnd, 2, 6) }, () => Buffer.concat(encodeFrame(forged(), bytes(rnd, int(rnd, 0, 64))))).flat()), 4) })]);
  }
  if (ep.maxBody === 0) gens.push(['body-to-main', () => ({ chunks: [Buffer.concat(encodeFrame({ op: 'lease', type: 'echo' }, bytes(rnd, int(rnd, 1, 70_000))))] })]);
  // Cases that take the server's idle timeout or a dribble to end are rarer: they are slow to
  // run and exercise one code path each.
  const slow = new Set(['truncated-frame-held-open', 'nothing-held-open', 'dribbled-bytes']);
  const fast = gens.filter(([l]) => !slow.has(l));
  const [label, gen] = rnd() < 0.05 ? pick(rnd, gens.filter(([l]) => slow.has(l))) : pick(rnd, fast);
  return { endpoint: ep, label, ...gen() };
}

/** Encoded mailbox messages of every type, as templates to truncate. */
function messageTemplate(rnd: Rnd): string {
  const lease = bytes(rnd, 16).toString('hex');
  const gen = int(rnd, 1, 0xffffffff);
  return JSON.stringify(
    pick(rnd, [
      { v: 1, t: 'reserve', id: `${gen.toString(16)}-${int(rnd, 1, 1e6)}`, lease, gen, exp: Date.now() + 3000 },
      { v: 1, t: 'reserved', id: `${gen.toString(16)}-1`, from: 'secondary-1', gen, lease },
      { v: 1, t: 'refused', id: 'x-1', from: 'secondary-2', gen, reason: 'full' },
      { v: 1, t: 'done', from: 'secondary-1', gen, lease, claimed: true, requests: 1, failed: 0 },
      { v: 1, t: 'credit', from: 'secondary-1', gen, seq: int(rnd, 1, 1e6), n: int(rnd, 0, 64), exp: Date.now() + 6000, claimed: [int(rnd, 1, 1e6)], ended: [[int(rnd, 1, 1e6), 1, 0]] },
      { v: 1, t: 'want', from: 'main', gen, to: int(rnd, 1, 0xffffffff) },
      { v: 1, t: 'ready', from: 'secondary-2', gen },
      { v: 1, t: 'ping', from: 'watchdog', seq: int(rnd, 0, 1e9) },
      { v: 1, t: 'pong', from: 'main', seq: int(rnd, 0, 1e9), pid: int(rnd, 1, 1e6), gen },
    ]),
  );
}

function fifoCase(rnd: Rnd, ep: Extract<Endpoint, { kind: 'fifo' }>): FuzzCase {
  const gens: Array<[string, () => Partial<FuzzCase> & { chunks: Buffer[] }]> = [
    ['fifo-random-line', () => ({ chunks: [Buffer.concat([bytesNoNewline(rnd, int(rnd, 0, 300)), Buffer.from('\n')])] })],
    ['fifo-no-newline', () => ({ chunks: [bytesNoNewline(rnd, int(rnd, 1, 300))] })],
    ['fifo-truncated-message', () => {
      const m = messageTemplate(rnd);
      // Cut before the closing brace: never a whole message.
      return { chunks: [Buffer.from(m.slice(0, int(rnd, 1, m.length - 2)) + (rnd() < 0.5 ? '\n' : ''))] };
    }],
    ['fifo-oversized-line', () => ({ chunks: [Buffer.concat([bytesNoNewline(rnd, int(rnd, PIPE_BUF, 100_000)), Buffer.from(rnd() < 0.7 ? '\n' : '')])] })],
    ['fifo-wrong-schema', () => {
      const m = JSON.parse(messageTemplate(rnd)) as Record<string, unknown>;
      const mutate = pick(rnd, [() => (m.v = 2), () => (m.t = 'launch'), () => delete m.t, () => (m.extra = 1), () => (m.gen = -1), () => (m.from = 'secondary-0'), () => (m.lease = 'x'), () => (m.seq = 0), () => (m.n = -1), () => (m.claimed = Array.from({ length: 51 }, (_, i) => i + 1)), () => (m.ended = [[1, 'x', 0]]), () => (m.to = 2 ** 32)]);
      mutate();
      return { chunks: [Buffer.from(JSON.stringify(m) + '\n')] };
    }],
    ['fifo-not-an-object', () => ({ chunks: [Buffer.from(JSON.stringify(randomJson(rnd)) + '\n')] })],
    ['fifo-deeply-nested', () => ({ chunks: [Buffer.concat([deepJson(rnd, PIPE_BUF - 2), Buffer.from('\n')])] })],
    ['fifo-zeros', () => ({ chunks: [Buffer.alloc(int(rnd, 1, 8192))] })],
    ['fifo-newlines', () => ({ chunks: [Buffer.alloc(int(rnd, 1, 5000), '\n')] })],
    ['fifo-two-writers-interleaved', () => ({ chunks: Array.from({ length: int(rnd, 2, 6) }, () => bytesNoNewline(rnd, int(rnd, PIPE_BUF + 1, 16_384))), twoWriters: true })],
  ];
  const [label, gen] = pick(rnd, gens);
  return { endpoint: ep, label, ...gen() };
}

/** One random case against one of the endpoints (sockets twice as likely as FIFOs). */
export function makeCase(rnd: Rnd, endpoints: readonly Endpoint[]): FuzzCase {
  const sockets = endpoints.filter((e) => e.kind === 'socket');
  const fifos = endpoints.filter((e) => e.kind === 'fifo');
  if (fifos.length === 0 || (sockets.length > 0 && rnd() < 2 / 3)) return socketCase(rnd, pick(rnd, sockets) as Extract<Endpoint, { kind: 'socket' }>);
  return fifoCase(rnd, pick(rnd, fifos) as Extract<Endpoint, { kind: 'fifo' }>);
}

/** The endpoints of a suite whose runtime directory is `dir`. */
export function endpointsOf(dir: string, secondaries: number, maxPayload: number): Endpoint[] {
  const daemons = suiteDaemons(secondaries);
  const out: Endpoint[] = [];
  for (const id of daemons) {
    if (id.kind !== 'watchdog') out.push({ kind: 'socket', name: formatDaemonId(id), path: clientSocketPath(dir, id), maxBody: id.kind === 'main' ? 0 : maxPayload });
  }
  for (const id of daemons) out.push({ kind: 'fifo', name: formatDaemonId(id), path: mailboxPath(dir, id) });
  return out;
}
