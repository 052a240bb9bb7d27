/**
 * The worker-thread side of `handler = "module"` (module-handler.ts runs it in a piscina
 * pool). Each task imports the type's ES module once per thread (cached), calls its default
 * export `async (data: Buffer, ctx) => Buffer | Uint8Array | string`, and hands the result
 * back by transfer, not copy. `ctx` (docs/TYPES.md "module handlers"):
 *
 *   ctx.type        the request type's name
 *   ctx.lease       the lease the request runs on
 *   ctx.secondary   secondary-N
 *   ctx.deadlineMs  the run's deadline, ms from its start
 *   ctx.signal      an AbortSignal that fires at the deadline (a handler that ignores it is
 *                   terminated with its thread)
 *   ctx.log         .debug/.info/.notice/.warning/.error(message, fields?): a journal line
 *                   of the secondary's, with TYPE=, LEASE= and SECONDARY= fields
 */
import { BroadcastChannel } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';

/** What the secondary sends for one run. */
export interface ModuleTask {
  module: string;
  data: Uint8Array;
  type: string;
  lease: string;
  secondary: string;
  deadlineMs: number;
  /** The BroadcastChannel that carries ctx.log lines to the secondary's logger. */
  logChannel: string;
}

/** One ctx.log line, as posted to the secondary. */
export interface HandlerLogLine {
  level: 'debug' | 'info' | 'notice' | 'warning' | 'error';
  message: string;
  type: string;
  lease: string;
  /** secondary-N, for the line's SECONDARY= field. */
  secondary: string;
  fields?: Record<string, string | number | boolean>;
}

type HandlerFn = (data: Buffer, ctx: unknown) => unknown;

const loaded = new Map<string, Promise<HandlerFn>>();
let channel: BroadcastChannel | undefined;

async function load(module: string): Promise<HandlerFn> {
  const mod = (await import(pathToFileURL(module).href)) as { default?: unknown };
  if (typeof mod.default !== 'function') throw new TypeError(`module '${module}' has no function as its default export`);
  return mod.default as HandlerFn;
}

function logger(task: ModuleTask) {
  channel ??= new BroadcastChannel(task.logChannel);
  const post = (level: HandlerLogLine['level']) => (message: unknown, fields?: Record<string, string | number | boolean>) => {
    const line: HandlerLogLine = { level, message: String(message), type: task.type, lease: task.lease, secondary: task.secondary };
    if (fields && typeof fields === 'object') line.fields = fields;
    channel!.postMessage(line);
  };
  return { debug: post('debug'), info: post('info'), notice: post('notice'), warning: post('warning'), error: post('error') };
}

export default async function runModuleTask(task: ModuleTask): Promise<unknown> {
  let fn = loaded.get(task.module);
  if (!fn) {
    fn = load(task.module);
    loaded.set(task.module, fn);
  }
  const handler = await fn;
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`the deadline of ${task.deadlineMs} ms passed`)), task.deadlineMs);
  try {
    const ctx = Object.freeze({ type: task.type, lease: task.lease, secondary: task.secondary, deadlineMs: task.deadlineMs, signal: ac.signal, log: logger(task) });
    const data = Buffer.from(task.data.buffer, task.data.byteOffset, task.data.byteLength);
    let out: unknown;
    try {
      out = await handler(data, ctx);
    } catch (err) {
      // piscina marks a task that succeeded with `error: null`, so a handler's `throw null`
      // would come back as a success without a result: it is a failure like any other throw.
      if (err === null) throw new Error('the handler threw null');
      throw err;
    }
    let bytes: Uint8Array;
    if (typeof out === 'string') bytes = Buffer.from(out, 'utf8');
    else if (out instanceof Uint8Array) bytes = out;
    else throw new TypeError(`the handler returned ${out === null ? 'null' : typeof out}; it must return a Buffer, a Uint8Array or a string`);
    // A view of a larger (or shared) buffer cannot be transferred whole: copy it out.
    if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength || !(bytes.buffer instanceof ArrayBuffer)) bytes = new Uint8Array(bytes);
    return Piscina.move(bytes);
  } finally {
    clearTimeout(timer);
  }
}
