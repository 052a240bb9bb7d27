/**
 * Messages carried by the mailbox FIFOs between daemons (docs/PROTOCOL.md §2).
 *
 * Each message is one JSON object on one line (NDJSON), at most {@link PIPE_BUF} bytes
 * including the newline, so that one write(2) delivers it whole even with many writers on
 * the FIFO (POSIX write(2), Linux pipe(7): writes of at most PIPE_BUF bytes are atomic).
 */
import { z } from 'zod';
import { isDaemonName, MAX_SECONDARIES } from './topology.js';

/** Linux PIPE_BUF, in bytes: the largest write to a pipe that is atomic. */
export const PIPE_BUF = 4096;
/** Version of the mailbox message format; a message with another `v` is invalid. */
export const MAILBOX_VERSION = 1;

/** A daemon's name (topology.ts parseDaemonId): main, watchdog, secondary-1..62. */
const name = z.string().refine(isDaemonName, { message: `not a daemon of the suite: main, watchdog or secondary-N (N 1..${MAX_SECONDARIES})` });
/** A dispatchd 0.1 lease token in the legacy messages below: 32 lowercase hex digits (128 random bits). */
export const LEASE_TOKEN = /^[0-9a-f]{32}$/;
/** Most sequences one `credit` message lists as claimed, and most leases as ended: at its largest (every number at its bound) the message takes 3,538 (with its newline) of PIPE_BUF's 4,096 bytes. */
export const CREDIT_LIST_MAX = 50;
/** The largest lease sequence (lease-token.ts: uint48). */
const seq = z.number().int().min(1).max(2 ** 48 - 1);
const lease = z.string().regex(LEASE_TOKEN);
const id = z.string().min(1).max(64);
const uint = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const u32 = z.number().int().nonnegative().max(0xffffffff);

/**
 * secondary-N → main: credits and the end of leases, batched (docs/PROTOCOL.md §2.2). Grants
 * sequences `seq` … `seq + n − 1` (n may be 0), from which main mints one lease each, valid
 * until `exp` (unix ms); lists the sequences claimed by a client since the last message, and
 * the leases ended since, each as [sequence, requests served, requests failed].
 */
export const Credit = z.strictObject({
  v: z.literal(MAILBOX_VERSION),
  t: z.literal('credit'),
  from: name,
  gen: u32,
  seq,
  n: z.number().int().nonnegative().max(100_000),
  exp: uint,
  claimed: z.array(seq).max(CREDIT_LIST_MAX),
  ended: z.array(z.tuple([seq, uint, uint])).max(CREDIT_LIST_MAX),
});

/**
 * main → secondary-N: main holds no fresh credit of this process of secondary N (it started,
 * or lost them); `gen` is main's generation, `to` the secondary's. A secondary that hears it
 * from a main generation new to it grants its free capacity at once.
 */
export const Want = z.strictObject({
  v: z.literal(MAILBOX_VERSION),
  t: z.literal('want'),
  from: z.literal('main'),
  gen: u32,
  to: u32,
});

/** dispatchd 0.1 (decoded, no longer sent: a secondary now grants credits): main → secondary-N: hold a slot for this lease until `exp` (unix ms) unless claimed. */
export const Reserve = z.strictObject({
  v: z.literal(MAILBOX_VERSION),
  t: z.literal('reserve'),
  id,
  lease,
  /** generation of the secondary main believes it is talking to (from the scoreboard) */
  gen: u32,
  /** unix ms after which the reservation, and an unclaimed lease, are void */
  exp: uint,
  /**
   * The request type the lease is for (docs/TYPES.md): the secondary refuses a type it does
   * not serve, or one whose `concurrency` it holds already. Absent only from a main of
   * dispatchd 0.1 during a rolling upgrade: such a lease is bound to its first run's type.
   */
  type: z.string().min(1).max(64).optional(),
});

/** dispatchd 0.1 (decoded, no longer sent): secondary-N → main: the reservation is held. */
export const Reserved = z.strictObject({
  v: z.literal(MAILBOX_VERSION),
  t: z.literal('reserved'),
  id,
  from: name,
  gen: u32,
  lease,
});

/** dispatchd 0.1 (decoded, no longer sent): secondary-N → main: the reservation is refused (full, stopping, stale generation, expired, a type it does not serve). */
export const Refused = z.strictObject({
  v: z.literal(MAILBOX_VERSION),
  t: z.literal('refused'),
  id,
  from: name,
  gen: u32,
  reason: z.enum(['full', 'stopping', 'stale-generation', 'expired', 'unknown-type']),
});

/** dispatchd 0.1 (decoded, no longer sent: see {@link Credit}): secondary-N → main: a lease ended. */
export const Done = z.strictObject({
  v: z.literal(MAILBOX_VERSION),
  t: z.literal('done'),
  from: name,
  gen: u32,
  lease,
  claimed: z.boolean(),
  requests: uint,
  failed: uint,
});

/** secondary-N → main: this process of secondary N is ready for reservations (wakes main's queue). */
export const Ready = z.strictObject({
  v: z.literal(MAILBOX_VERSION),
  t: z.literal('ready'),
  from: name,
  gen: u32,
});

/** watchdog → any daemon: prove your event loop and mailbox work. */
export const Ping = z.strictObject({
  v: z.literal(MAILBOX_VERSION),
  t: z.literal('ping'),
  from: z.literal('watchdog'),
  seq: uint,
});

/** any daemon → watchdog: the answer to a ping. */
export const Pong = z.strictObject({
  v: z.literal(MAILBOX_VERSION),
  t: z.literal('pong'),
  from: name,
  seq: uint,
  pid: uint,
  gen: u32,
});

const isInt = (x: unknown, min: number, max: number): x is number => Number.isInteger(x) && (x as number) >= min && (x as number) <= max;
const isSeq = (x: unknown): x is number => isInt(x, 1, 2 ** 48 - 1);
const isUint = (x: unknown): x is number => isInt(x, 0, Number.MAX_SAFE_INTEGER);
/** The keys of a `credit` message: exactly these (the schema is strict). */
const CREDIT_KEYS = 9;

/**
 * `Credit.safeParse(x).success` for main's hot path (one `credit` per few leases), checked by
 * hand field by field against {@link Credit}, without zod's parse context. It accepts only
 * what the schema accepts (test/unit/common/messages.test.ts compares them); the mailbox
 * decoder sends whatever it refuses to zod, which says what is wrong.
 */
export function isCredit(x: unknown): x is Credit {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const m = x as Record<string, unknown>;
  if (m.v !== MAILBOX_VERSION || m.t !== 'credit' || Object.keys(m).length !== CREDIT_KEYS) return false;
  if (typeof m.from !== 'string' || !isDaemonName(m.from) || !isInt(m.gen, 0, 0xffffffff) || !isSeq(m.seq) || !isInt(m.n, 0, 100_000) || !isUint(m.exp)) return false;
  const { claimed, ended } = m;
  if (!Array.isArray(claimed) || claimed.length > CREDIT_LIST_MAX || !Array.isArray(ended) || ended.length > CREDIT_LIST_MAX) return false;
  for (const s of claimed) if (!isSeq(s)) return false;
  for (const e of ended) if (!Array.isArray(e) || e.length !== 3 || !isSeq(e[0]) || !isUint(e[1]) || !isUint(e[2])) return false;
  return true;
}

/** The keys of a `ping` and of a `pong`: exactly these (the schemas are strict). */
const PING_KEYS = 4;
const PONG_KEYS = 6;

/**
 * `Ping.safeParse(x).success` by hand, as {@link isCredit}: every daemon decodes one `ping`
 * per probe round (watchdog.probe_interval_ms, 300 ms by default) all its life, idle or not.
 */
export function isPing(x: unknown): x is Ping {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const m = x as Record<string, unknown>;
  return m.v === MAILBOX_VERSION && m.t === 'ping' && m.from === 'watchdog' && isUint(m.seq) && Object.keys(m).length === PING_KEYS;
}

/** `Pong.safeParse(x).success` by hand, as {@link isCredit}: the watchdog decodes one `pong` per probed daemon and round. */
export function isPong(x: unknown): x is Pong {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const m = x as Record<string, unknown>;
  return m.v === MAILBOX_VERSION && m.t === 'pong' && typeof m.from === 'string' && isDaemonName(m.from) && isUint(m.seq) && isUint(m.pid) && isInt(m.gen, 0, 0xffffffff) && Object.keys(m).length === PONG_KEYS;
}

export const MailboxMessage = z.discriminatedUnion('t', [Credit, Want, Reserve, Reserved, Refused, Done, Ready, Ping, Pong]);

export type Credit = z.infer<typeof Credit>;
export type Want = z.infer<typeof Want>;
export type Reserve = z.infer<typeof Reserve>;
export type Reserved = z.infer<typeof Reserved>;
export type Refused = z.infer<typeof Refused>;
export type Done = z.infer<typeof Done>;
export type Ready = z.infer<typeof Ready>;
export type Ping = z.infer<typeof Ping>;
export type Pong = z.infer<typeof Pong>;
export type MailboxMessage = z.infer<typeof MailboxMessage>;
