/**
 * What runs a request of one type: a {@link Handler} per declared type, made by
 * {@link createHandler} from its declaration (docs/TYPES.md):
 *
 * | handler   | runs                                                     | file               |
 * | --------- | -------------------------------------------------------- | ------------------ |
 * | `builtin` | echo, sha256, sleep, in the secondary's event loop       | builtin-handler.ts |
 * | `exec`    | a program per request, DATA on stdin, result on stdout   | exec-handler.ts    |
 * | `module`  | an ES module's default export, in a pool of worker threads | module-handler.ts |
 * | `exec`, `mode = "persistent"` | worker units over the worker protocol | worker-pool.ts |
 *
 * Every handler honours `ctx.signal`: when it fires (reason `'deadline'` or `'stopping'`)
 * the run is stopped (a timer cleared, a process group killed, a worker thread terminated)
 * and the returned promise rejects promptly; the secondary turns that into
 * DEADLINE_EXCEEDED or SHUTTING_DOWN. A handler's own failure is a DispatchError
 * HANDLER_FAILED or RESULT_TOO_LARGE whose message the client sees.
 */
import type { Logger } from '../../common/logger.js';
import type { RequestType } from '../../common/request-type.js';
import { BuiltinHandler } from './builtin-handler.js';
import { ExecHandler } from './exec-handler.js';
import { ModuleHandler } from './module-handler.js';
import { WorkerPool, type UnitRestarter } from './worker-pool.js';

/** Why a run's signal fired. */
export type AbortReason = 'deadline' | 'stopping';

/** One run of a request. */
export interface RunContext {
  /** Fires at the run's deadline (`'deadline'`) or when the secondary stops (`'stopping'`). */
  signal: AbortSignal;
  /** The run's deadline, in ms from its start. */
  deadlineMs: number;
  /** The lease it runs on (for logs and the handler's environment). */
  lease: string;
  /** The secondary that runs it: `secondary-N`. */
  secondary: string;
}

export interface Handler {
  /**
   * Runs one request: DATA in, the result's bytes out.
   * @throws DispatchError HANDLER_FAILED, RESULT_TOO_LARGE, BAD_REQUEST; rejects with any
   *   value once `ctx.signal` fired (the caller reads the signal's reason).
   */
  run(data: Buffer, ctx: RunContext): Promise<Buffer>;
  /** Whether a run can outlast one turn of the event loop (and so needs a deadline timer). */
  readonly waits: boolean;
  /** Releases what the handler holds (worker threads); runs in progress finish first. */
  close(): Promise<void>;
}

/** What a persistent type's pool needs beyond the logger. */
export interface HandlerParts {
  /** The worker sockets' directory (the configuration's runtime_dir; default /run/dispatchd). */
  runtimeDir?: string;
  /** Restarts worker units (default: systemd over D-Bus, connected on first use). */
  units?: UnitRestarter;
}

/** The one D-Bus connection of this process's worker pools, made on the first restart. */
let sharedUnits: UnitRestarter | undefined;
function dbusUnits(): UnitRestarter {
  sharedUnits ??= {
    restart: async (unit: string) => {
      const { DbusUnitManager } = await import('../../watchdog/unit-manager.js');
      const m = new DbusUnitManager();
      sharedUnits = m;
      await m.restart(unit);
    },
  };
  return sharedUnits;
}

/** Makes the handler of a declared type. */
export function createHandler(type: RequestType, logger: Logger, parts: HandlerParts = {}): Handler {
  switch (type.handler) {
    case 'builtin':
      return new BuiltinHandler(type.builtin);
    case 'exec':
      if (type.mode === 'persistent') return new WorkerPool(type, { logger, runtimeDir: parts.runtimeDir ?? '/run/dispatchd', units: parts.units ?? dbusUnits() });
      return new ExecHandler(type);
    case 'module':
      return new ModuleHandler(type, logger);
  }
}
