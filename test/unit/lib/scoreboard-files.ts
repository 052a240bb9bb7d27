/**
 * Scoreboard files for the scoreboard unit tests: a fresh file on a tmpfs (like the real
 * /dev/shm when there is one), raw reads and writes, a snapshot, a sample slot.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { HEADER_BYTES, SLOT_BYTES, type SlotData } from '../../../daemons/common/scoreboard-layout.js';
import { ScoreboardReader } from '../../../daemons/common/scoreboard-reader.js';

/** The fixtures of the scoreboard tests (writer and reader processes). */
export const FIXTURES = fileURLToPath(new URL('../common/fixtures/', import.meta.url));
// A tmpfs like the real /dev/shm when there is one.
const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
/** The directory of this test file's scoreboards, removed at its end. */
export const dir = fs.mkdtempSync(path.join(base, 'dispatchd-scoreboard-test-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
/** A new file name in {@link dir}. */
export const newFile = (): string => path.join(dir, `sb${++n}`);

/** The raw seq of slot `index`. */
export function rawSeq(file: string, index: number): number {
  const b = Buffer.alloc(4);
  const fd = fs.openSync(file, 'r');
  fs.readSync(fd, b, 0, 4, HEADER_BYTES + index * SLOT_BYTES);
  fs.closeSync(fd);
  return b.readUInt32LE(0);
}

export function writeRaw(file: string, at: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, bytes, 0, bytes.length, at);
  fs.closeSync(fd);
}

export function snapshot(file: string) {
  const r = new ScoreboardReader(file);
  try {
    return r.read();
  } finally {
    r.close();
  }
}

export const sample = (o: Partial<SlotData> = {}): SlotData => ({
  kind: 'secondary',
  instance: 3,
  pid: 4321,
  state: 'busy',
  generation: 0xdeadbeef,
  starts: 2,
  active: 5,
  capacity: 32,
  queued: 0,
  requests: 2 ** 40 + 1,
  failures: 7,
  startedMs: 1_700_000_000_000,
  heartbeatMs: 1_700_000_000_500,
  incidents: 1,
  name: 'secondary-3',
  latencySumUs: 2 ** 40 + 3,
  latencyMaxUs: 123_456,
  running: 3,
  ...o,
});
