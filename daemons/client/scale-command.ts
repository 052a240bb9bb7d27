/** `dispatchctl scale [N]`: shows, or sets, the number of secondaries. Loaded only when that command runs. */
import { fail, writeStdout } from './cli-output.js';
import { scale, scaleState, type ScaleState } from './scale.js';

/** `dispatchctl scale` output: how many, which are enabled, which run. */
function describeScale(s: ScaleState): string {
  const list = (xs: number[]) => (xs.length ? xs.join(' ') : 'none');
  return `secondaries: ${s.enabled.length} enabled (${list(s.enabled)}), running: ${list(s.running)}${s.suiteActive ? '' : ' (dispatchd.target is not active)'}\n`;
}

/** Runs `dispatchctl scale [count]`; on failure writes one line and exits (cli-output.ts fail). */
export async function runScale(a: { count: number | undefined }): Promise<void> {
  try {
    if (a.count === undefined) {
      await writeStdout(Buffer.from(describeScale(await scaleState())));
      return;
    }
    const { after } = await scale(a.count);
    await writeStdout(Buffer.from(describeScale(after)));
  } catch (err) {
    fail(a.count === undefined ? 'failed to read the number of secondaries' : `failed to scale to ${a.count} secondaries`, err);
  }
}
