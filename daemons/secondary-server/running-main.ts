/**
 * Which main process is running now, as the scoreboard says (its slot's generation), for a
 * secondary that is about to grant its first credits: main reads them from its mailbox FIFO,
 * so a `want` from that same process later is not a new main (credit-issuer.ts).
 */
import { ScoreboardReader } from '../common/scoreboard-reader.js';

/**
 * The generation of the main process whose slot says it runs (starting, ready, busy, full,
 * stopping), or undefined when none does or the scoreboard cannot be read (then the first
 * `want` refills, as for a new main).
 */
export function runningMainGeneration(scoreboardFile: string): number | undefined {
  let reader: ScoreboardReader | undefined;
  try {
    reader = new ScoreboardReader(scoreboardFile);
    const main = reader.read().slots.find((s) => s.kind === 'main');
    return main && main.state !== 'stopped' && main.state !== 'unknown' ? main.generation : undefined;
  } catch {
    return undefined;
  } finally {
    reader?.close();
  }
}
