/**
 * `dispatchctl status --watch`: renders a snapshot every interval. On a terminal each
 * snapshot replaces the previous one in place (log-update: ANSI cursor movement and line
 * erasure, the cursor hidden meanwhile); anywhere else (a pipe, a file) every snapshot is
 * written after the previous one, so that a reader gets one per interval.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { createLogUpdate } from 'log-update';

export interface WatchOptions {
  /** Produces the text of one snapshot (a table, a JSON line, an OpenMetrics exposition). */
  render: () => Promise<string>;
  /** Time between snapshots, in ms. */
  intervalMs: number;
  /** Where to write (process.stdout). */
  out: NodeJS.WriteStream;
  /** Redraw in place (a terminal) or append (anything else). */
  tty: boolean;
  /** Stop after this many snapshots (default: until `signal` aborts). */
  count?: number;
  /** Ends the watch (SIGINT, SIGTERM, a closed pipe). */
  signal: AbortSignal;
}

/** Waits `ms`, or less if `signal` aborts first (then resolves too). */
const sleep = (ms: number, signal: AbortSignal): Promise<void> => delay(ms, undefined, { signal }).catch(() => undefined);

/** Writes snapshots until `count` is reached or `signal` aborts; resolves when it stopped. */
export async function watchStatus(o: WatchOptions): Promise<void> {
  // A pseudo-terminal without a size (script(1), some CI runners) says 0 columns and rows,
  // which would clip every snapshot away: count such a terminal as 80 x 24.
  const screen = {
    isTTY: true,
    get columns() {
      return o.out.columns || 80;
    },
    get rows() {
      return o.out.rows || 24;
    },
    write: (chunk: string) => o.out.write(chunk),
  };
  const redraw = o.tty ? createLogUpdate(screen as unknown as NodeJS.WriteStream, { showCursor: false }) : undefined;
  try {
    for (let n = 0; !o.signal.aborted && (o.count === undefined || n < o.count); n++) {
      if (n > 0) await sleep(o.intervalMs, o.signal);
      if (o.signal.aborted) break;
      const text = await o.render();
      if (redraw) redraw(text.replace(/\n$/, ''));
      else if (!o.out.write(text)) await new Promise((resolve) => o.out.once('drain', resolve));
    }
  } finally {
    redraw?.done();
  }
}
