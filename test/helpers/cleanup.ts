/**
 * Last-resort clean-up for a test process that ends without its teardown (a crash,
 * tap's timeout sending SIGTERM, Ctrl-C, the runner going away with SIGHUP): stop its
 * sandboxes, kill its package build, release its lock. Handlers must be synchronous.
 */
const handlers = new Set<() => void>();
let installed = false;

function runAll(): void {
  for (const fn of [...handlers]) {
    handlers.delete(fn);
    try {
      fn();
    } catch {
      // best effort: the process is going away
    }
  }
}

/** Registers `fn` to run once at exit or on SIGTERM, SIGINT or SIGHUP; returns its deregistration. */
export function onCleanup(fn: () => void): () => void {
  if (!installed) {
    installed = true;
    process.once('exit', runAll);
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      process.once(signal, () => {
        runAll();
        process.kill(process.pid, signal); // the default action, now that the handler is gone
      });
    }
  }
  handlers.add(fn);
  return () => handlers.delete(fn);
}
