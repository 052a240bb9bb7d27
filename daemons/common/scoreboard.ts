/**
 * The scoreboard: a POSIX shared-memory object (`shm_open("/dispatchd.scoreboard")`, the
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
import fs from 'node:fs';
import path from 'node:path';
import { DispatchError, errnoCode, reason } from './errors.js';
import { daemonIdOf, formatDaemonId, instanceOf, isSecondaryInstance, MAX_SECONDARIES as TOPOLOGY_MAX_SECONDARIES, SLOT_COUNT, slotIndexOf, type DaemonId } from './topology.js';

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

export const KIND = { free: 0, main: 1, secondary: 2, watchdog: 3 } as const;
export type Kind = keyof typeof KIND;
const KIND_NAMES: Kind[] = ['free', 'main', 'secondary', 'watchdog'];

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

/**
 * The daemon that owns a slot (topology.ts), as a scoreboard error when the instance is out
 * of range.
 * @throws DispatchError SCOREBOARD_BAD_LAYOUT for a secondary instance outside 1..62.
 */
function slotOwner(kind: Exclude<Kind, 'free'>, instance: number): DaemonId {
  if (kind === 'secondary' && !isSecondaryInstance(instance)) {
    throw new DispatchError('SCOREBOARD_BAD_LAYOUT', `failed to place secondary-${instance} on the scoreboard: instance must be 1..${TOPOLOGY_MAX_SECONDARIES}`);
  }
  return daemonIdOf(kind, instance);
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
 * Checks a header against this build's layout.
 * @throws DispatchError SCOREBOARD_BAD_LAYOUT naming the field that differs.
 */
export function checkHeader(b: Buffer, where: string): { createdMs: number } {
  const fail = (what: string) =>
    new DispatchError('SCOREBOARD_BAD_LAYOUT', `failed to read scoreboard '${where}': ${what}; restart the suite (systemctl restart dispatchd.target) to recreate it`);
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

function ioError(what: string, file: string, cause: unknown): DispatchError {
  const code = errnoCode(cause);
  if (code === 'ENOSPC') {
    return new DispatchError('SCOREBOARD_NO_SPACE', `failed to ${what} scoreboard '${file}': no space left in /dev/shm; free space or enlarge it`, { cause });
  }
  if (code === 'ENOENT') {
    return new DispatchError('SCOREBOARD_MISSING', `failed to ${what} scoreboard '${file}': it does not exist; is dispatchd.target running (systemctl start dispatchd.target)?`, { cause });
  }
  return new DispatchError(what === 'open' ? 'SCOREBOARD_OPEN_FAILED' : 'SCOREBOARD_IO', `failed to ${what} scoreboard '${file}': ${reason(cause)}`, { cause });
}

/**
 * Creates the scoreboard atomically: a zero-filled file is written next to it and linked
 * into place, so no reader ever sees a partial object and concurrent creators cannot
 * clobber each other's slots. An existing valid scoreboard is kept; one with another layout
 * is replaced only when `replaceInvalid` is set (at suite start, when no daemon runs).
 *
 * @param mode file mode (0644: anyone reads, the owner writes).
 * @returns true when this call created (or replaced) it.
 * @throws DispatchError SCOREBOARD_NO_SPACE, SCOREBOARD_OPEN_FAILED, SCOREBOARD_BAD_LAYOUT.
 */
export function createScoreboard(file: string, options: { mode?: number; replaceInvalid?: boolean; now?: number } = {}): boolean {
  const mode = options.mode ?? 0o644;
  const existing = tryReadHeader(file);
  if (existing === 'valid') return false;
  if (existing === 'invalid' && !options.replaceInvalid) {
    // Let checkHeader name the field that differs; a good header on a short file is the size.
    const b = Buffer.alloc(HEADER_BYTES);
    const fd = fs.openSync(file, 'r');
    let size: number;
    try {
      fs.readSync(fd, b, 0, HEADER_BYTES, 0);
      size = fs.fstatSync(fd).size;
    } finally {
      fs.closeSync(fd);
    }
    checkHeader(b, file);
    throw new DispatchError('SCOREBOARD_BAD_LAYOUT', `failed to read scoreboard '${file}': ${size} bytes, expected ${SCOREBOARD_BYTES}; restart the suite (systemctl restart dispatchd.target) to recreate it`);
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const content = Buffer.alloc(SCOREBOARD_BYTES);
  encodeHeader(options.now ?? Date.now()).copy(content, 0);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, mode);
    fs.fchmodSync(fd, mode); // the umask must not narrow it: other users read the scoreboard
    let off = 0;
    while (off < content.length) off += fs.writeSync(fd, content, off, content.length - off, off);
    fs.closeSync(fd);
    fd = undefined;
    if (existing === 'invalid') {
      fs.renameSync(tmp, file);
      return true;
    }
    try {
      fs.linkSync(tmp, file);
      return true;
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') return false; // someone else won the race: theirs is valid
      throw err;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    if (err instanceof DispatchError) throw err;
    throw ioError('create', file, err);
  }
}

function tryReadHeader(file: string): 'missing' | 'valid' | 'invalid' {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 'missing';
    throw ioError('open', file, err);
  }
  try {
    const b = Buffer.alloc(HEADER_BYTES);
    const n = fs.readSync(fd, b, 0, HEADER_BYTES, 0);
    const size = fs.fstatSync(fd).size;
    if (size < SCOREBOARD_BYTES) return 'invalid';
    checkHeader(b.subarray(0, n), file);
    return 'valid';
  } catch (err) {
    if (err instanceof DispatchError) return 'invalid';
    throw ioError('read', file, err);
  } finally {
    fs.closeSync(fd);
  }
}

/** Removes the scoreboard; a missing one is fine. */
export function removeScoreboard(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch (err) {
    throw ioError('remove', file, err);
  }
}

/** A snapshot of every used slot. */
export interface ScoreboardSnapshot {
  createdMs: number;
  slots: SlotData[];
}

/**
 * Reads the scoreboard without tearing (seqlock readers). Keeps the fd open, for daemons
 * that read it often.
 */
export class ScoreboardReader {
  private readonly fd: number;
  private readonly a = Buffer.alloc(SCOREBOARD_BYTES);
  private readonly b = Buffer.alloc(SCOREBOARD_BYTES);

  /** @throws DispatchError SCOREBOARD_MISSING, SCOREBOARD_OPEN_FAILED, SCOREBOARD_BAD_LAYOUT. */
  constructor(readonly file: string) {
    try {
      this.fd = fs.openSync(file, fs.constants.O_RDONLY);
    } catch (err) {
      throw ioError('open', file, err);
    }
    try {
      this.readRaw(this.a);
      checkHeader(this.a, file);
    } catch (err) {
      fs.closeSync(this.fd);
      throw err;
    }
  }

  private readRaw(into: Buffer): void {
    let n: number;
    try {
      n = fs.readSync(this.fd, into, 0, into.length, 0);
    } catch (err) {
      throw ioError('read', this.file, err);
    }
    if (n < into.length) {
      throw new DispatchError('SCOREBOARD_BAD_LAYOUT', `failed to read scoreboard '${this.file}': ${n} bytes, expected ${into.length}; restart the suite to recreate it`);
    }
  }

  /** Every used slot, each consistent (never half-written). */
  read(): ScoreboardSnapshot {
    this.readRaw(this.a);
    const { createdMs } = checkHeader(this.a, this.file);
    this.readRaw(this.b); // second copy: a slot whose seq changed, or was odd, is re-read
    const slots: SlotData[] = [];
    for (let i = 0; i < SLOT_COUNT; i++) {
      const off = HEADER_BYTES + i * SLOT_BYTES;
      let slot: Buffer = this.a.subarray(off, off + SLOT_BYTES);
      const s1 = slot.readUInt32LE(SLOT.seq);
      if (s1 === 0 && slot.readUInt32LE(SLOT.kind) === 0) continue;
      if (s1 % 2 === 1 || this.b.readUInt32LE(off + SLOT.seq) !== s1) slot = this.readSlotStable(i);
      const d = decodeSlot(slot);
      if (d) slots.push(d);
    }
    return { createdMs, slots };
  }

  /** One slot, read until a stable copy is seen (the writer holds the lock for microseconds). */
  readSlotStable(index: number): Buffer {
    const off = HEADER_BYTES + index * SLOT_BYTES;
    const copy = Buffer.alloc(SLOT_BYTES);
    const seq = Buffer.alloc(4);
    for (let attempt = 0; attempt < 10_000; attempt++) {
      fs.readSync(this.fd, copy, 0, SLOT_BYTES, off);
      fs.readSync(this.fd, seq, 0, 4, off);
      const s1 = copy.readUInt32LE(SLOT.seq);
      if (s1 % 2 === 0 && seq.readUInt32LE(0) === s1) return copy;
    }
    // A writer died between its two seq writes: the slot stays odd until it restarts. Its
    // content is the best there is; the heartbeat age tells the reader it is stale.
    return copy;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/**
 * The single writer of one slot. Keeps the slot's values in memory and publishes them
 * under the seqlock on {@link publish}.
 */
export class SlotWriter {
  private readonly fd: number;
  private readonly offset: number;
  private seq: number;
  private readonly body = Buffer.alloc(SLOT_BYTES);
  private readonly seqBuf = Buffer.alloc(4);
  readonly data: SlotData;

  /**
   * Opens the scoreboard for writing and claims the slot of `kind`/`instance`: counts this
   * start (`starts` + 1) and resets the per-process counters.
   *
   * @throws DispatchError SCOREBOARD_MISSING, SCOREBOARD_OPEN_FAILED, SCOREBOARD_BAD_LAYOUT, SCOREBOARD_IO.
   */
  constructor(readonly file: string, kind: Exclude<Kind, 'free'>, instance: number, init: { pid: number; generation: number; capacity?: number; now?: number }) {
    const owner = slotOwner(kind, instance);
    this.offset = HEADER_BYTES + slotIndexOf(owner) * SLOT_BYTES;
    try {
      this.fd = fs.openSync(file, fs.constants.O_RDWR);
    } catch (err) {
      throw ioError('open', file, err);
    }
    try {
      const header = Buffer.alloc(HEADER_BYTES);
      fs.readSync(this.fd, header, 0, HEADER_BYTES, 0);
      checkHeader(header, file);
      const size = fs.fstatSync(this.fd).size;
      if (size < SCOREBOARD_BYTES) {
        throw new DispatchError('SCOREBOARD_BAD_LAYOUT', `failed to open scoreboard '${file}': ${size} bytes, expected ${SCOREBOARD_BYTES}; restart the suite (systemctl restart dispatchd.target) to recreate it`);
      }
      const prev = Buffer.alloc(SLOT_BYTES);
      fs.readSync(this.fd, prev, 0, SLOT_BYTES, this.offset);
      const old = prev.readUInt32LE(SLOT.seq);
      this.seq = old % 2 === 1 ? old + 1 : old; // a writer that died mid-update left it odd
      const before = decodeSlot(prev);
      const now = init.now ?? Date.now();
      this.data = {
        kind,
        instance: instanceOf(owner),
        pid: init.pid,
        state: 'starting',
        generation: init.generation,
        starts: (before?.starts ?? 0) + 1,
        active: 0,
        capacity: init.capacity ?? 0,
        queued: 0,
        requests: 0,
        failures: 0,
        startedMs: now,
        heartbeatMs: now,
        incidents: 0,
        name: formatDaemonId(owner),
        latencySumUs: 0,
        latencyMaxUs: 0,
        running: 0,
      };
    } catch (err) {
      fs.closeSync(this.fd);
      if (err instanceof DispatchError) throw err;
      throw ioError('open', file, err);
    }
  }

  /** Writes the in-memory values to the slot under the seqlock. @throws DispatchError SCOREBOARD_IO. */
  publish(): void {
    try {
      this.seq = (this.seq + 1) >>> 0; // odd: being written
      this.seqBuf.writeUInt32LE(this.seq, 0);
      fs.writeSync(this.fd, this.seqBuf, 0, 4, this.offset);
      encodeSlot(this.data, this.body);
      fs.writeSync(this.fd, this.body, 4, SLOT_BYTES - 4, this.offset + 4);
      this.seq = (this.seq + 1) >>> 0; // even: stable
      this.seqBuf.writeUInt32LE(this.seq, 0);
      fs.writeSync(this.fd, this.seqBuf, 0, 4, this.offset);
    } catch (err) {
      throw ioError('write', this.file, err);
    }
  }

  /**
   * Counts one latency (a lease granted, a request served) into latencySumUs and
   * latencyMaxUs; published with the next {@link publish}.
   * @param us the latency in microseconds.
   */
  addLatency(us: number): void {
    this.data.latencySumUs += us;
    if (us > this.data.latencyMaxUs) this.data.latencyMaxUs = Math.min(0xffffffff, us);
  }

  /** Updates some values and publishes them. */
  update(values: Partial<SlotData>): void {
    Object.assign(this.data, values);
    this.publish();
  }

  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed: nothing to release
    }
  }
}
