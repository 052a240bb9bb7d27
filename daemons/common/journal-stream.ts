/**
 * Whether stderr is connected to the journal: systemd sets JOURNAL_STREAM to "dev:inode" of
 * the stream it connects a unit's stdout/stderr to (systemd.exec(5)). Then a line may start
 * with a `<N>` syslog priority (sd-daemon(3)). No dependencies, so that short-lived tools
 * (dispatchctl, the scoreboard keeper) can ask without loading the logger.
 */
import fs from 'node:fs';

/** True when stderr is the journal's stream. */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const js = env.JOURNAL_STREAM;
  if (!js) return false;
  try {
    const st = fs.fstatSync(2);
    return js === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}
