/**
 * Reading the scoreboard without tearing: a seqlock reader (docs/SCOREBOARD.md §4) over
 * pread(2) of the whole object, as daemons and `dispatchctl status` do.
 */
import fs from 'node:fs';
import { scoreboardIoError } from './scoreboard-file.js';
import { badLayout, checkHeader, decodeSlot, HEADER_BYTES, SCOREBOARD_BYTES, SLOT, SLOT_BYTES, SLOT_COUNT, type SlotData } from './scoreboard-layout.js';

/** How many times a reader reads a slot whose `seq` is odd or changing before it gives up (docs/SCOREBOARD.md §4). */
export const MAX_SEQ_READS = 10_000;

/** A snapshot of every used slot. */
export interface ScoreboardSnapshot {
  createdMs: number;
  slots: SlotData[];
  /**
   * The names of the slots whose `seq` stayed odd (or kept changing) for 10,000 reads: a
   * writer died mid-update, and the copy in `slots` is the last one read, as it is
   * (docs/SCOREBOARD.md §4). Absent when every slot was read consistent.
   */
  inconsistent?: string[];
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
      throw scoreboardIoError('open', file, err);
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
      throw scoreboardIoError('read', this.file, err);
    }
    if (n < into.length) {
      throw badLayout(this.file, `${n} bytes, expected ${into.length}`);
    }
  }

  /** Every used slot, each consistent (never half-written). */
  read(): ScoreboardSnapshot {
    this.readRaw(this.a);
    const { createdMs } = checkHeader(this.a, this.file);
    this.readRaw(this.b); // second copy: a slot whose seq changed, or was odd, is re-read
    const slots: SlotData[] = [];
    const inconsistent: string[] = [];
    for (let i = 0; i < SLOT_COUNT; i++) {
      const off = HEADER_BYTES + i * SLOT_BYTES;
      let slot: Buffer = this.a.subarray(off, off + SLOT_BYTES);
      let consistent = true;
      const s1 = slot.readUInt32LE(SLOT.seq);
      if (s1 === 0 && slot.readUInt32LE(SLOT.kind) === 0) continue;
      if (s1 % 2 === 1 || this.b.readUInt32LE(off + SLOT.seq) !== s1) ({ copy: slot, consistent } = this.readSlotStable(i));
      const d = decodeSlot(slot);
      if (!d) continue;
      slots.push(d);
      if (!consistent) inconsistent.push(d.name);
    }
    return inconsistent.length > 0 ? { createdMs, slots, inconsistent } : { createdMs, slots };
  }

  /**
   * One slot, read until a stable copy is seen (the writer holds the lock for microseconds),
   * at most 10,000 times; `consistent` is false when none was.
   */
  readSlotStable(index: number): { copy: Buffer; consistent: boolean } {
    const off = HEADER_BYTES + index * SLOT_BYTES;
    const copy = Buffer.alloc(SLOT_BYTES);
    const seq = Buffer.alloc(4);
    for (let attempt = 0; attempt < MAX_SEQ_READS; attempt++) {
      fs.readSync(this.fd, copy, 0, SLOT_BYTES, off);
      fs.readSync(this.fd, seq, 0, 4, off);
      const s1 = copy.readUInt32LE(SLOT.seq);
      if (s1 % 2 === 0 && seq.readUInt32LE(0) === s1) return { copy, consistent: true };
    }
    // A writer died between its two seq writes: the slot stays odd until it restarts. Its
    // content is the best there is; the heartbeat age tells the reader it is stale.
    return { copy, consistent: false };
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

