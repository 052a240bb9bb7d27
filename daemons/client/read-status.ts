/**
 * One status report read from the scoreboard, for `dispatchctl status` and for
 * dispatchd-metrics.service: opens the file read-only (O_RDONLY), reads one consistent
 * snapshot, closes it again.
 */
import fs from 'node:fs';
import { ScoreboardReader } from '../common/scoreboard.js';
import { statusReport, type StatusReport } from './status.js';

/**
 * The report of the scoreboard `file` as of now. A daemon's pid is looked up in /proc (never
 * signalled) to tell a dead daemon from a live one; a reader that cannot see the daemons'
 * processes (another user under ProtectProc=invisible) would report them dead.
 *
 * @throws DispatchError SCOREBOARD_MISSING (the suite is not running), SCOREBOARD_OPEN_FAILED,
 *   SCOREBOARD_BAD_LAYOUT, SCOREBOARD_IO.
 */
export function readStatusReport(file: string): StatusReport {
  const reader = new ScoreboardReader(file);
  try {
    return statusReport(file, reader.read(), Date.now(), (pid) => pid > 0 && fs.existsSync(`/proc/${pid}`));
  } finally {
    reader.close();
  }
}
