/**
 * The scoreboard file (/dev/shm/dispatchd.scoreboard, docs/SCOREBOARD.md): created whole
 * and linked into place, removed, and the errors of its I/O. The layout is
 * scoreboard-layout.ts; reading is ScoreboardReader, writing a slot SlotWriter.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DispatchError, errnoCode, reason } from './errors.js';
import { badLayout, checkHeader, encodeHeader, HEADER_BYTES, SCOREBOARD_BYTES } from './scoreboard-layout.js';

/**
 * A failed open, read, write, create or remove of the scoreboard file as a DispatchError:
 * SCOREBOARD_NO_SPACE (ENOSPC), SCOREBOARD_MISSING (ENOENT), SCOREBOARD_OPEN_FAILED (`open`)
 * or SCOREBOARD_IO, each saying what to do.
 */
export function scoreboardIoError(what: string, file: string, cause: unknown): DispatchError {
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
    throw badLayout(file, `${size} bytes, expected ${SCOREBOARD_BYTES}`);
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
    throw scoreboardIoError('create', file, err);
  }
}

function tryReadHeader(file: string): 'missing' | 'valid' | 'invalid' {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 'missing';
    throw scoreboardIoError('open', file, err);
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
    throw scoreboardIoError('read', file, err);
  } finally {
    fs.closeSync(fd);
  }
}

/** Removes the scoreboard; a missing one is fine. */
export function removeScoreboard(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch (err) {
    throw scoreboardIoError('remove', file, err);
  }
}

