/**
 * A request type: what a secondary runs for a request and under which limits. Types are
 * declared in TOML, one or more per file, under `[type.NAME]` (docs/TYPES.md):
 *
 *   [type.upper]
 *   handler = "exec"                          # "exec", "module" or "builtin"
 *   command = ["/usr/bin/tr", "a-z", "A-Z"]   # exec: argv, no shell
 *   deadline_ms = 5000                        # cap on one run (ms)
 *   max_payload_bytes = 16777216              # DATA accepted (bytes)
 *   max_result_bytes = 16777216               # result accepted from the handler (bytes)
 *   concurrency = 4                           # leases of this type one secondary holds at once
 *   idempotent = false                        # may the client library run it again after a lost answer?
 *
 * The built-in types (echo, sha256, sleep) are declared the same way, with
 * `handler = "builtin"`, by a file the package ships (packaging/types.d/00-builtin.toml):
 * every type takes the same path through main, the secondary and the client.
 */
import { z } from 'zod';
import { MAX_BODY_BYTES_CEILING } from './frame.js';
import { MAX_DEADLINE_MS } from './timing.js';
import type { WorkerId } from './topology.js';

/** A type's name: a lowercase letter, then up to 62 lowercase letters, digits or dashes. */
export const TYPE_NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** The built-in handlers a `handler = "builtin"` type may name. */
export const BUILTIN_HANDLERS = ['echo', 'sha256', 'sleep'] as const;
export type BuiltinHandler = (typeof BUILTIN_HANDLERS)[number];

/** The largest per-run deadline a type may declare, in ms (one hour, as the protocol's deadline_ms). */
export const MAX_TYPE_DEADLINE_MS = MAX_DEADLINE_MS;

const bytes = z.number().int().min(0).max(MAX_BODY_BYTES_CEILING);
const limits = {
  /** Cap on one run, in ms; a request's own deadline_ms is at most this. */
  deadline_ms: z.number().int().min(1).max(MAX_TYPE_DEADLINE_MS).optional(),
  /** The largest DATA accepted, in bytes. */
  max_payload_bytes: bytes.optional(),
  /** The largest result accepted from the handler, in bytes. */
  max_result_bytes: bytes.optional(),
  /** Leases of this type one secondary holds at once; more wait in main's admission queue. */
  concurrency: z.number().int().min(1).max(100_000).optional(),
  /** Whether running a request twice has the effect of running it once (retries after a lost answer). */
  idempotent: z.boolean().optional(),
  /** Free text shown by `dispatchctl types`. */
  description: z.string().max(200).optional(),
};

const argv0 = z.string().min(1).startsWith('/', { message: 'must be an absolute path (no shell, no PATH search)' });

/** The most persistent worker processes one type may run (`processes`). */
export const MAX_WORKER_PROCESSES = 64;

/**
 * The keys of a persistent exec type (`mode = "persistent"`, docs/WORKERS.md): how many
 * worker units, their protocol timeouts, and the settings the generator writes into each
 * worker unit's drop-in.
 */
const persistentKeys = {
  /** How many worker processes (units dispatchd-worker@NAME-1 … -N) run. */
  processes: z.number().int().min(1).max(MAX_WORKER_PROCESSES).optional(),
  /** How long a worker has to say hello after the secondary connects, ms. */
  start_timeout_ms: z.number().int().min(100).max(600_000).optional(),
  /** After a cancel at the deadline, how long the worker has to answer before its unit is restarted, ms. */
  cancel_grace_ms: z.number().int().min(0).max(600_000).optional(),
  /** User= of the worker units; absent: DynamicUser=yes (a fresh unprivileged user). */
  user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, { message: 'must be a user name ([a-z_][a-z0-9_-]{0,31})' }).optional(),
  /** MemoryMax= of each worker unit, MiB. */
  memory_max_mb: z.number().int().min(8).max(1_048_576).optional(),
  /** TasksMax= of each worker unit. */
  tasks_max: z.number().int().min(1).max(100_000).optional(),
  /** Restart= of each worker unit. */
  restart: z.enum(['always', 'on-failure']).optional(),
  /** ReadWritePaths= of each worker unit (the sandbox is otherwise read-only). */
  read_write_paths: z.array(z.string().min(1).startsWith('/', { message: 'must be an absolute path' }).regex(/^[^\s%$"'\\]+$/, { message: 'must not contain spaces, quotes, %, $ or backslashes' })).max(32).optional(),
};

/** `[type.NAME]` as written in a file (before defaults). */
export const TypeDeclaration = z.discriminatedUnion('handler', [
  z.strictObject({
    handler: z.literal('exec'),
    /** argv: the program (absolute path) and its arguments; no shell. */
    command: z.tuple([argv0], z.string()),
    /** "per-request" (one process per request) or "persistent" (worker units, docs/WORKERS.md). */
    mode: z.enum(['per-request', 'persistent']).optional(),
    ...persistentKeys,
    ...limits,
  }).superRefine((d, ctx) => {
    if (d.mode === 'persistent') return;
    for (const key of Object.keys(persistentKeys)) {
      if (key in d) ctx.addIssue({ code: 'custom', path: [key], message: 'is a key of mode = "persistent" only' });
    }
  }),
  z.strictObject({
    handler: z.literal('module'),
    /** Absolute path of an ES module whose default export is `async (data, ctx) => result`. */
    module: z.string().min(1).startsWith('/', { message: 'must be an absolute path' }),
    /** Heap limit of each worker thread, in MiB (V8's maxOldGenerationSizeMb). */
    max_heap_mb: z.number().int().min(8).max(16_384).optional(),
    ...limits,
  }),
  z.strictObject({
    handler: z.literal('builtin'),
    /** Which built-in handler runs it. */
    builtin: z.enum(BUILTIN_HANDLERS),
    ...limits,
  }),
]);
export type TypeDeclaration = z.infer<typeof TypeDeclaration>;

/** One file of declarations: only `[type.NAME]` tables. */
export const TypesFile = z.strictObject({
  /** Names are checked one by one (type-registry.ts), to name the bad one with its line. */
  type: z.record(z.string(), z.unknown()).optional(),
});

/** Where a type was declared, for messages. */
export interface TypeSource {
  file: string;
  /** 1-based line of its `[type.NAME]` header, when found. */
  line?: number;
}

/** The limits every type falls back to when its declaration leaves one out (from [secondary] of the configuration). */
export interface TypeDefaults {
  deadline_ms: number;
  max_payload_bytes: number;
  max_result_bytes: number;
  concurrency: number;
}

interface Common {
  name: string;
  deadline_ms: number;
  max_payload_bytes: number;
  max_result_bytes: number;
  concurrency: number;
  idempotent: boolean;
  description?: string;
  source: TypeSource;
}

/** A persistent exec type's worker settings, every default applied (docs/WORKERS.md). */
export interface WorkerSettings {
  processes: number;
  start_timeout_ms: number;
  cancel_grace_ms: number;
  /** Absent: DynamicUser=yes. */
  user?: string;
  memory_max_mb?: number;
  tasks_max?: number;
  restart: 'always' | 'on-failure';
  read_write_paths: string[];
}

/** Defaults of a persistent type's worker keys. */
export const WORKER_DEFAULTS = { processes: 1, start_timeout_ms: 5000, cancel_grace_ms: 2000, restart: 'always' } as const;

/** A request type with every default applied: what the secondary runs and main routes. */
export type RequestType =
  | (Common & { handler: 'exec'; command: string[]; mode: 'per-request' })
  | (Common & { handler: 'exec'; command: string[]; mode: 'persistent'; worker: WorkerSettings })
  | (Common & { handler: 'module'; module: string; max_heap_mb: number })
  | (Common & { handler: 'builtin'; builtin: BuiltinHandler });

/** An exec type run by persistent workers (`mode = "persistent"`, docs/WORKERS.md). */
export type PersistentType = Extract<RequestType, { mode: 'persistent' }>;

/** Whether a type is run by persistent workers. */
export function isPersistent(t: RequestType): t is PersistentType {
  return t.handler === 'exec' && t.mode === 'persistent';
}

/** A persistent type's workers: TYPE-1 … TYPE-N (N = `processes`), each one unit pair. */
export function workerIds(t: PersistentType): WorkerId[] {
  return Array.from({ length: t.worker.processes }, (_, i) => ({ type: t.name, index: i + 1 }));
}

/** A module handler's heap limit when its declaration gives none, in MiB. */
export const DEFAULT_MAX_HEAP_MB = 128;

/** Applies the defaults to a checked declaration. */
export function resolveType(name: string, d: TypeDeclaration, defaults: TypeDefaults, source: TypeSource): RequestType {
  const common: Common = {
    name,
    deadline_ms: d.deadline_ms ?? defaults.deadline_ms,
    max_payload_bytes: d.max_payload_bytes ?? defaults.max_payload_bytes,
    max_result_bytes: d.max_result_bytes ?? defaults.max_result_bytes,
    concurrency: d.concurrency ?? defaults.concurrency,
    idempotent: d.idempotent ?? false,
    source,
  };
  if (d.description !== undefined) common.description = d.description;
  switch (d.handler) {
    case 'exec': {
      if (d.mode !== 'persistent') return { ...common, handler: 'exec', command: [...d.command], mode: 'per-request' };
      const worker: WorkerSettings = {
        processes: d.processes ?? WORKER_DEFAULTS.processes,
        start_timeout_ms: d.start_timeout_ms ?? WORKER_DEFAULTS.start_timeout_ms,
        cancel_grace_ms: d.cancel_grace_ms ?? WORKER_DEFAULTS.cancel_grace_ms,
        restart: d.restart ?? WORKER_DEFAULTS.restart,
        read_write_paths: [...(d.read_write_paths ?? [])],
      };
      if (d.user !== undefined) worker.user = d.user;
      if (d.memory_max_mb !== undefined) worker.memory_max_mb = d.memory_max_mb;
      if (d.tasks_max !== undefined) worker.tasks_max = d.tasks_max;
      return { ...common, handler: 'exec', command: [...d.command], mode: 'persistent', worker };
    }
    case 'module':
      return { ...common, handler: 'module', module: d.module, max_heap_mb: d.max_heap_mb ?? DEFAULT_MAX_HEAP_MB };
    case 'builtin':
      return { ...common, handler: 'builtin', builtin: d.builtin };
  }
}

/** What runs a type, in one line: the command, the module path, or `builtin:NAME`. */
export function handlerTarget(t: RequestType): string {
  return t.handler === 'exec' ? t.command.join(' ') : t.handler === 'module' ? t.module : `builtin:${t.builtin}`;
}

/** Whether two resolved types run the same thing under the same limits (a reload keeps unchanged ones). */
export function sameType(a: RequestType, b: RequestType): boolean {
  const strip = (t: RequestType) => JSON.stringify({ ...t, source: undefined });
  return strip(a) === strip(b);
}
