/**
 * The single writer of one scoreboard slot: claims it, then publishes its values under the
 * slot's sequence lock with pwrite(2) (docs/SCOREBOARD.md §4).
 */
import fs from 'node:fs';
import { DispatchError } from './errors.js';
import { scoreboardIoError } from './scoreboard-file.js';
import { badLayout, checkHeader, decodeSlot, encodeSlot, HEADER_BYTES, SCOREBOARD_BYTES, SLOT, SLOT_BYTES, type Kind, type SlotData } from './scoreboard-layout.js';
import { daemonIdOf, formatDaemonId, instanceOf, isSecondaryInstance, MAX_SECONDARIES, slotIndexOf, type DaemonId } from './topology.js';

/**
 * The daemon that owns a slot (topology.ts), as a scoreboard error when the instance is out
 * of range.
 * @throws DispatchError SCOREBOARD_BAD_LAYOUT for a secondary instance outside 1..62.
 */
function slotOwner(kind: Exclude<Kind, 'free'>, instance: number): DaemonId {
  if (kind === 'secondary' && !isSecondaryInstance(instance)) {
    throw new DispatchError('SCOREBOARD_BAD_LAYOUT', `failed to place secondary-${instance} on the scoreboard: instance must be 1..${MAX_SECONDARIES}`);
  }
  return daemonIdOf(kind, instance);
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
      throw scoreboardIoError('open', file, err);
    }
    try {
      const header = Buffer.alloc(HEADER_BYTES);
      fs.readSync(this.fd, header, 0, HEADER_BYTES, 0);
      checkHeader(header, file);
      const size = fs.fstatSync(this.fd).size;
      if (size < SCOREBOARD_BYTES) {
        throw badLayout(file, `${size} bytes, expected ${SCOREBOARD_BYTES}`);
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
      throw scoreboardIoError('open', file, err);
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
      throw scoreboardIoError('write', this.file, err);
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
