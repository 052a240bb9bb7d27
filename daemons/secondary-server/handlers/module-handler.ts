/**
 * `handler = "module"`: an ES module's default export, run in a pool of worker threads
 * inside the secondary (piscina), so that a CPU-bound or blocking handler never delays the
 * secondary's event loop: its other clients, its pongs to the watchdog, its WATCHDOG=1.
 *
 * - a throw: HANDLER_FAILED with the error's message;
 * - the deadline (or the secondary stopping): the task is aborted; a thread still running it
 *   is terminated and replaced (piscina); the caller answers DEADLINE_EXCEEDED;
 * - past `max_heap_mb`: V8 stops the thread (ERR_WORKER_OUT_OF_MEMORY), HANDLER_FAILED
 *   saying so; the pool replaces it;
 * - a result over `max_result_bytes`: RESULT_TOO_LARGE;
 * - ctx.log lines reach the secondary's journal with TYPE=, LEASE=, SECONDARY=.
 *
 * ES modules cannot be unloaded: a changed module file is used by the fresh pool a reload
 * makes (module-handler pools are never reused across reloads).
 *
 * piscina is imported when the first module handler is made, not with this file: a secondary
 * that serves no module type never loads it (about 20 ms of CPU at start and 7 MiB of RSS,
 * docs/BENCHMARKS.md "Start of the suite, again").
 */
import { BroadcastChannel } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import { Worker } from 'node:worker_threads';
import { DispatchError, errnoCode, reason } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { RequestType } from '../../common/request-type.js';
import type { Handler, RunContext } from './handler.js';
import type { HandlerLogLine, ModuleTask } from './module-worker.js';

type ModuleType = Extract<RequestType, { handler: 'module' }>;

/** An idle worker thread is ended after this long (ms). */
const IDLE_THREAD_MS = 60_000;
/** How long check-config gives a module to import, in ms. */
export const MODULE_CHECK_TIMEOUT_MS = 5000;

/**
 * A worker file: beside this module under build/daemons, found from the tree this code runs
 * from, whether it is this module compiled, the secondary's bundle (build/daemons/
 * secondary-server/main.js, see package.json `build:daemons`) or the source (the tests; its
 * compiled copy, as worker threads run JavaScript only and `npm test` builds first).
 */
function workerFile(name: string): URL {
  const here = import.meta.url;
  const root = here.slice(0, here.lastIndexOf('/daemons/'));
  return new URL(`${here.endsWith('.ts') ? `${root}/build` : root}/daemons/secondary-server/handlers/${name}.js`);
}
const WORKER = workerFile('module-worker');
const CHECK_WORKER = workerFile('module-check-worker');

/** One channel per process carries every module handler's ctx.log lines. */
const LOG_CHANNEL = `dispatchd-handler-log-${process.pid}`;
let logListeners = 0;
let logChannel: BroadcastChannel | undefined;
let logSink: Logger | undefined;

function listenForLogs(logger: Logger): void {
  logSink = logger;
  if (logListeners++ > 0) return;
  logChannel = new BroadcastChannel(LOG_CHANNEL);
  logChannel.unref();
  logChannel.onmessage = (ev: unknown) => {
    const line = (ev as { data: HandlerLogLine }).data;
    if (!line || typeof line.message !== 'string') return;
    const level = ['debug', 'info', 'notice', 'warning', 'error'].includes(line.level) ? line.level : 'info';
    logSink?.log(level, `[${line.type}] ${line.message.slice(0, 4096)}`, { ...(line.fields ?? {}), type: line.type, lease: line.lease, secondary: line.secondary });
  };
}

let piscina: Promise<typeof Piscina> | undefined;

/** piscina's pool class, imported once, by the first module handler. */
function loadPiscina(): Promise<typeof Piscina> {
  return (piscina ??= import('piscina').then((m) => m.Piscina));
}

function stopListening(): void {
  if (--logListeners > 0) return;
  logChannel?.close();
  logChannel = undefined;
}

export class ModuleHandler implements Handler {
  readonly waits = true;
  /** The pool, once piscina is loaded; rejects if it cannot be (each run is then HANDLER_FAILED). */
  private readonly pool: Promise<Piscina>;

  constructor(private readonly type: ModuleType, logger: Logger) {
    this.pool = loadPiscina().then((P) => this.makePool(P, logger));
    this.pool.catch(() => undefined); // reported by run(), not as an unhandled rejection
    listenForLogs(logger);
  }

  private makePool(P: typeof Piscina, logger: Logger): Piscina {
    const type = this.type;
    const pool = new P({
      filename: WORKER.href,
      minThreads: 0,
      maxThreads: type.concurrency,
      idleTimeout: IDLE_THREAD_MS,
      resourceLimits: { maxOldGenerationSizeMb: type.max_heap_mb },
      // Handlers may leave timers or I/O behind a resolved task: let them run between tasks.
      atomics: 'disabled',
      recordTiming: false,
      // Not the secondary's own V8 flags or loaders: a handler thread is plain Node.
      execArgv: [],
    });
    // A thread that dies outside a task (it cannot: a failed task is the task's error) is logged, not thrown.
    pool.on('error', (err: unknown) => logger.error(`a worker thread of the '${type.name}' module handler failed: ${reason(err)}`, { type: type.name, code: 'HANDLER_FAILED' }));
    return pool;
  }

  async run(data: Buffer, ctx: RunContext): Promise<Buffer> {
    const t = this.type;
    const task: ModuleTask = { module: t.module, data, type: t.name, lease: ctx.lease, secondary: ctx.secondary, deadlineMs: ctx.deadlineMs, logChannel: LOG_CHANNEL };
    let out: unknown;
    try {
      out = await (await this.pool).run(task, { signal: ctx.signal });
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      throw this.failure(err);
    }
    const bytes = out instanceof Uint8Array ? out : new Uint8Array(0);
    if (bytes.byteLength > t.max_result_bytes) {
      throw new DispatchError('RESULT_TOO_LARGE', `the '${t.name}' handler returned ${bytes.byteLength} bytes, more than max_result_bytes (${t.max_result_bytes} bytes); raise max_result_bytes in its types.d file or return less`, { fields: { type: t.name } });
    }
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private failure(err: unknown): DispatchError {
    const t = this.type;
    if (errnoCode(err) === 'ERR_WORKER_OUT_OF_MEMORY') {
      return new DispatchError('HANDLER_FAILED', `the '${t.name}' handler ran out of memory: its worker thread passed max_heap_mb (${t.max_heap_mb} MiB) and was terminated and replaced; raise max_heap_mb in its types.d file or use less memory`, { fields: { type: t.name } });
    }
    return new DispatchError('HANDLER_FAILED', `the '${t.name}' handler failed: ${reason(err)}`, { fields: { type: t.name } });
  }

  async close(): Promise<void> {
    stopListening();
    const pool = await this.pool.catch(() => undefined);
    await pool?.close();
  }
}

/**
 * Checks in a throw-away worker thread that a module handler imports and default-exports a
 * function.
 * @throws DispatchError CONFIG_INVALID saying what is wrong with the module.
 */
export function checkModule(module: string, typeName: string, timeoutMs = MODULE_CHECK_TIMEOUT_MS): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (why: string) => new DispatchError('CONFIG_INVALID', `type '${typeName}': module '${module}' cannot serve requests: ${why}`, { fields: { type: typeName } });
    const w = new Worker(CHECK_WORKER, { workerData: { module }, stdout: true, stderr: true, execArgv: [] });
    const timer = setTimeout(() => {
      void w.terminate();
      reject(fail(`importing it did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    w.once('message', (m: { ok: boolean; error?: string }) => {
      clearTimeout(timer);
      void w.terminate();
      if (m.ok) resolve();
      else reject(fail(m.error ?? 'unknown'));
    });
    w.once('error', (err) => {
      clearTimeout(timer);
      reject(fail(reason(err)));
    });
    w.once('exit', () => {
      clearTimeout(timer);
      reject(fail('its worker thread exited before it answered'));
    });
  });
}
