/**
 * One status report read from the scoreboard, for `dispatchctl status` and for
 * dispatchd-metrics.service: opens the file read-only (O_RDONLY), reads one consistent
 * snapshot, closes it again.
 */
import fs from 'node:fs';
import { ScoreboardReader } from '../common/scoreboard-reader.js';
import { liveServedTypes } from '../common/served-types.js';
import { statusReport, type StatusReport } from './status.js';

/** Whether a pid exists: a /proc look-up, never a signal. */
export function pidExists(pid: number): boolean {
  return pid > 0 && fs.existsSync(`/proc/${pid}`);
}

/**
 * The report of the scoreboard `file` as of now, with the per-type figures of the running
 * secondaries' served-types files beside it (docs/SCOREBOARD.md §6). A daemon's pid is looked up in /proc (never
 * signalled) to tell a dead daemon from a live one; a reader that cannot see the daemons'
 * processes (another user under ProtectProc=invisible) would report them dead.
 *
 * @throws DispatchError SCOREBOARD_MISSING (the suite is not running), SCOREBOARD_OPEN_FAILED,
 *   SCOREBOARD_BAD_LAYOUT, SCOREBOARD_IO.
 */
export function readStatusReport(file: string): StatusReport {
  const reader = new ScoreboardReader(file);
  try {
    const snap = reader.read();
    return statusReport(file, snap, Date.now(), pidExists, liveServedTypes(file, snap.slots, pidExists));
  } finally {
    reader.close();
  }
}
