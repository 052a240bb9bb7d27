/**
 * The scoreboard's layout and codec: the header, the slot offsets and the encoding of a
 * slot's values (no I/O here).
 *
 * The scoreboard is a POSIX shared-memory object (`shm_open("/dispatchd.scoreboard")`, the
 * file /dev/shm/dispatchd.scoreboard) with one fixed-size slot per daemon. Layout version 1,
 * little-endian, documented byte by byte in docs/SCOREBOARD.md so that C or Python can read
 * it with mmap.
 *
 * Each slot has exactly one writer (its daemon) and is written under a sequence lock: the
 * writer makes `seq` odd, writes the slot, makes `seq` even again; a reader copies the slot
 * and accepts it only if `seq` was even and unchanged across the copy (the Linux seqlock
 * pattern). Writes go through pwrite(2), never through a mapping, so a full /dev/shm is an
 * ENOSPC error at creation rather than a SIGBUS later; the whole object is written with real
 * zeros when created, which reserves its pages.
 */
import { DispatchError } from './errors.js';
import { DAEMON_KINDS, SLOT_COUNT } from './topology.js';

export const SCOREBOARD_MAGIC = 'DSPSCORE';
export const SCOREBOARD_VERSION = 1;
export const HEADER_BYTES = 64;
export const SLOT_BYTES = 128;
/**
 * Slot 0 main, slot 1 watchdog, slots 2..63 secondaries 1..62 (topology.ts: the bound and
 * the slot of each daemon are facts of the topology; the layout reads them from there).
 */
export { SLOT_COUNT } from './topology.js';
/** The whole object, in bytes. */
export const SCOREBOARD_BYTES = HEADER_BYTES + SLOT_COUNT * SLOT_BYTES;
export const NAME_BYTES = 32;

/** Byte offsets inside a slot (docs/SCOREBOARD.md §3). */
export const SLOT = {
  seq: 0,
  kind: 4,
  instance: 8,
  pid: 12,
  state: 16,
  generation: 20,
  starts: 24,
  active: 28,
  capacity: 32,
  queued: 36,
  requests: 40,
  failures: 48,
  startedMs: 56,
  heartbeatMs: 64,
  incidents: 72,
  name: 80,
  latencySumUs: 112,
  latencyMaxUs: 120,
  running: 124,
} as const;

/** A slot's `kind` field: 0 free, then topology's DAEMON_KINDS (1 main, 2 secondary, 3 watchdog). */
const KIND_NAMES = ['free', ...DAEMON_KINDS] as const;
export type Kind = (typeof KIND_NAMES)[number];
export const KIND = Object.freeze(Object.fromEntries(KIND_NAMES.map((k, i) => [k, i]))) as { readonly [K in Kind]: number };

export const STATE = { unknown: 0, starting: 1, ready: 2, busy: 3, full: 4, stopping: 5, stopped: 6 } as const;
export type State = keyof typeof STATE;
const STATE_NAMES: State[] = ['unknown', 'starting', 'ready', 'busy', 'full', 'stopping', 'stopped'];

/** A daemon's published state, as read from its slot. Times are unix ms. */
export interface SlotData {
  kind: Kind;
  /** N for secondary-N, 0 otherwise. */
  instance: number;
  pid: number;
  state: State;
  /** Random per process start; leases carry it. */
  generation: number;
  /** How many times this daemon started since the segment was created. */
  starts: number;
  /** Leases held (secondary) or requests in progress (main). */
  active: number;
  /** Most leases a secondary holds at once; 0 for main and watchdog. */
  capacity: number;
  /** Requests waiting in main's admission queue. */
  queued: number;
  /** Requests served by this process. */
  requests: number;
  /** Requests that failed in this process. */
  failures: number;
  startedMs: number;
  heartbeatMs: number;
  /** Watchdog: restarts it ordered; others: incidents (bad peers) logged. */
  incidents: number;
  name: string;
  /**
   * Main: total time from lease request to lease granted, over the `requests` leases it
   * granted; secondary: total run time of the `requests` requests it served; in
   * microseconds. Average = latencySumUs / requests. Formerly reserved bytes: 0 from an
   * older writer.
   */
  latencySumUs: number;
  /** The largest single one of those latencies, in microseconds (saturates at 2^32 − 1). */
  latencyMaxUs: number;
  /**
   * Secondary: requests running now (a lease may be held between requests); 0 for main and
   * the watchdog. Formerly reserved bytes: 0 from an older writer.
   */
  running: number;
}

/** Encodes the 64-byte header. */
export function encodeHeader(createdMs: number): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  b.write(SCOREBOARD_MAGIC, 0, 'latin1');
  b.writeUInt32LE(SCOREBOARD_VERSION, 8);
  b.writeUInt32LE(HEADER_BYTES, 12);
  b.writeUInt32LE(SLOT_BYTES, 16);
  b.writeUInt32LE(SLOT_COUNT, 20);
  b.writeBigUInt64LE(BigInt(createdMs), 24);
  return b;
}

/**
 * SCOREBOARD_BAD_LAYOUT for the file `where`, saying `what` differs, and what to do: the
 * suite's own scoreboard is recreated by a restart; any other file was the wrong one to name.
 */
export function badLayout(where: string, what: string): DispatchError {
  return new DispatchError('SCOREBOARD_BAD_LAYOUT', `failed to read scoreboard '${where}': ${what}; if it is the suite's scoreboard, restart the suite (systemctl restart dispatchd.target) to recreate it, else name the suite's ([paths] scoreboard, default /dev/shm/dispatchd.scoreboard)`);
}

/**
 * Checks a header against this build's layout.
 * @throws DispatchError SCOREBOARD_BAD_LAYOUT naming the field that differs.
 */
export function checkHeader(b: Buffer, where: string): { createdMs: number } {
  const fail = (what: string) => badLayout(where, what);
  if (b.length < HEADER_BYTES) throw fail(`only ${b.length} bytes, expected at least ${HEADER_BYTES}`);
  if (b.toString('latin1', 0, 8) !== SCOREBOARD_MAGIC) throw fail('bad magic, not a dispatchd scoreboard');
  const version = b.readUInt32LE(8);
  if (version !== SCOREBOARD_VERSION) throw fail(`layout version ${version}, this build reads ${SCOREBOARD_VERSION}`);
  if (b.readUInt32LE(12) !== HEADER_BYTES || b.readUInt32LE(16) !== SLOT_BYTES || b.readUInt32LE(20) !== SLOT_COUNT) {
    throw fail('header, slot size or slot count differ from this build');
  }
  return { createdMs: Number(b.readBigUInt64LE(24)) };
}

/** Encodes a slot's body (everything but `seq`, which the writer manages). */
export function encodeSlot(d: SlotData, into: Buffer = Buffer.alloc(SLOT_BYTES)): Buffer {
  into.fill(0);
  into.writeUInt32LE(KIND[d.kind], SLOT.kind);
  into.writeUInt32LE(d.instance, SLOT.instance);
  into.writeUInt32LE(d.pid, SLOT.pid);
  into.writeUInt32LE(STATE[d.state], SLOT.state);
  into.writeUInt32LE(d.generation >>> 0, SLOT.generation);
  into.writeUInt32LE(d.starts >>> 0, SLOT.starts);
  into.writeUInt32LE(d.active >>> 0, SLOT.active);
  into.writeUInt32LE(d.capacity >>> 0, SLOT.capacity);
  into.writeUInt32LE(d.queued >>> 0, SLOT.queued);
  into.writeBigUInt64LE(BigInt(d.requests), SLOT.requests);
  into.writeBigUInt64LE(BigInt(d.failures), SLOT.failures);
  into.writeBigUInt64LE(BigInt(d.startedMs), SLOT.startedMs);
  into.writeBigUInt64LE(BigInt(d.heartbeatMs), SLOT.heartbeatMs);
  into.writeBigUInt64LE(BigInt(d.incidents), SLOT.incidents);
  into.write(d.name.slice(0, NAME_BYTES - 1), SLOT.name, NAME_BYTES - 1, 'utf8');
  into.writeBigUInt64LE(BigInt(Math.max(0, Math.round(d.latencySumUs))), SLOT.latencySumUs);
  into.writeUInt32LE(Math.min(0xffffffff, Math.max(0, Math.round(d.latencyMaxUs))), SLOT.latencyMaxUs);
  into.writeUInt32LE(d.running >>> 0, SLOT.running);
  return into;
}

/** Decodes a slot; returns undefined for a free (never written) slot. */
export function decodeSlot(b: Buffer): SlotData | undefined {
  const kind = KIND_NAMES[b.readUInt32LE(SLOT.kind)];
  if (kind === undefined || kind === 'free') return undefined;
  const nameEnd = b.indexOf(0, SLOT.name);
  return {
    kind,
    instance: b.readUInt32LE(SLOT.instance),
    pid: b.readUInt32LE(SLOT.pid),
    state: STATE_NAMES[b.readUInt32LE(SLOT.state)] ?? 'unknown',
    generation: b.readUInt32LE(SLOT.generation),
    starts: b.readUInt32LE(SLOT.starts),
    active: b.readUInt32LE(SLOT.active),
    capacity: b.readUInt32LE(SLOT.capacity),
    queued: b.readUInt32LE(SLOT.queued),
    requests: Number(b.readBigUInt64LE(SLOT.requests)),
    failures: Number(b.readBigUInt64LE(SLOT.failures)),
    startedMs: Number(b.readBigUInt64LE(SLOT.startedMs)),
    heartbeatMs: Number(b.readBigUInt64LE(SLOT.heartbeatMs)),
    incidents: Number(b.readBigUInt64LE(SLOT.incidents)),
    name: b.toString('utf8', SLOT.name, nameEnd === -1 || nameEnd > SLOT.name + NAME_BYTES ? SLOT.name + NAME_BYTES : nameEnd),
    latencySumUs: Number(b.readBigUInt64LE(SLOT.latencySumUs)),
    latencyMaxUs: b.readUInt32LE(SLOT.latencyMaxUs),
    running: b.readUInt32LE(SLOT.running),
  };
}

