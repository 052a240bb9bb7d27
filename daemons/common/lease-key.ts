/**
 * The suite's lease key file (docs/PROTOCOL.md §2.2, path: topology.ts leaseKeyPath): 32
 * random bytes, mode 0400, owned by the daemons' user. The scoreboard keeper makes a fresh one
 * at each start of the suite ({@link createLeaseKey}), so leases minted before a restart of
 * the suite are refused after it; a daemon that finds none (an upgrade from a version without
 * it, a development run) makes it once ({@link loadLeaseKey}, O_EXCL: two racing daemons get
 * the same key).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { DispatchError, errnoCode, reason } from './errors.js';
import { LEASE_KEY_BYTES } from './lease-token.js';

const MODE = 0o400;

function unusable(file: string, why: string, cause?: unknown): DispatchError {
  return new DispatchError('SCOREBOARD_IO', `failed to use the lease key '${file}': ${why}; restart the suite (systemctl restart dispatchd.target) to make a fresh one`, { cause });
}

/** Writes a fresh key, replacing any (write to a temporary file, then rename: readers see the old key or the new one). @throws DispatchError SCOREBOARD_IO. */
export function createLeaseKey(file: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, randomBytes(LEASE_KEY_BYTES), { mode: MODE, flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw unusable(file, `cannot write it: ${reason(err)}`, err);
  }
}

/** Removes the key (the suite stops). @throws DispatchError SCOREBOARD_IO. */
export function removeLeaseKey(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch (err) {
    throw unusable(file, `cannot remove it: ${reason(err)}`, err);
  }
}

/**
 * Reads the key, making it first when there is none.
 * @throws DispatchError SCOREBOARD_IO when it cannot be read or made, is not 32 bytes, or others than its owner may read it.
 */
export function loadLeaseKey(file: string): Buffer {
  try {
    fs.writeFileSync(file, randomBytes(LEASE_KEY_BYTES), { mode: MODE, flag: 'wx' });
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw unusable(file, `there is none and it cannot be made: ${reason(err)}`, err);
  }
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const st = fs.fstatSync(fd);
    if ((st.mode & 0o077) !== 0) throw unusable(file, `its mode is ${(st.mode & 0o777).toString(8)}: others than its owner may read it`);
    const key = fs.readFileSync(fd);
    if (key.length !== LEASE_KEY_BYTES) throw unusable(file, `it holds ${key.length} bytes, not ${LEASE_KEY_BYTES}`);
    return key;
  } catch (err) {
    if (err instanceof DispatchError) throw err;
    throw unusable(file, `cannot read it: ${reason(err)}`, err);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
