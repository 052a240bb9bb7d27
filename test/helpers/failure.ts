/** Failure dumps: what a reader of a failed run needs first, printed one way for every harness. */

/** Something a harness runs that can say what state it is in and be shut down. */
export interface Harness {
  /** A short name for the dump's heading (a sandbox's, "processes in /tmp/…"). */
  readonly label: string;
  /** The states and last log lines to show when a test failed. */
  diagnostics(): string | Promise<string>;
  /** Releases everything (processes, sandboxes, files). */
  shutdown(): Promise<void>;
}

/** The parts of a tap Test these helpers use. */
export interface TestLike {
  teardown(fn: () => unknown): void;
  passing(): boolean;
}

/** Writes a failure dump to stderr under a heading that names its source. */
export function reportFailure(label: string, text: string): void {
  process.stderr.write(`\n===== ${label} =====\n${text.trimEnd()}\n===== end of ${label} =====\n`);
}

/** When the test failed, dumps the harness's diagnostics (a failure to get them is dumped instead). */
export async function dumpIfFailed(t: Pick<TestLike, 'passing'>, h: Pick<Harness, 'label' | 'diagnostics'>): Promise<void> {
  if (t.passing()) return;
  let text: string;
  try {
    text = await h.diagnostics();
  } catch (err) {
    text = `failed to collect diagnostics: ${err instanceof Error ? err.message : String(err)}`;
  }
  reportFailure(h.label, text);
}

/** At the end of `t`: the dump if it failed, then `h.shutdown()`. */
export function closeAfter(t: TestLike, h: Harness): void {
  t.teardown(async () => {
    await dumpIfFailed(t, h);
    await h.shutdown();
  });
}
