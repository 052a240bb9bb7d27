/**
 * The served-types table: each secondary publishes which request types it serves, their
 * limits and their per-type counters in a small JSON file beside the scoreboard
 * (topology.servedTypesPath: /dev/shm/dispatchd.scoreboard.secondary-N.types), replaced
 * atomically (write a temporary file, rename(2) over the old one) so a reader in any language
 * sees a whole file. Main routes leases by it (a type only to a secondary that serves it);
 * `dispatchctl types` and `status` read it. Format: docs/SCOREBOARD.md §6.
 *
 * Its lifetime is the scoreboard's: dispatchd-scoreboard.service removes every one when the
 * suite stops.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DispatchError, errnoCode, reason } from './errors.js';
import type { SlotData } from './scoreboard-layout.js';
import { secondary, servedTypesPath } from './topology.js';

/** The format's version; a reader ignores a file of another version. */
export const SERVED_TYPES_VERSION = 1;

const count = z.number().int().nonnegative();

export const ServedType = z.object({
  name: z.string().min(1).max(64),
  handler: z.enum(['builtin', 'exec', 'module']),
  idempotent: z.boolean(),
  /** Leases of this type the secondary holds at once. */
  concurrency: count,
  deadline_ms: count,
  max_payload_bytes: count,
  max_result_bytes: count,
  /** Leases of this type held now. */
  leases: count,
  /** Requests of this type served, failed, and their run time (µs), by this process. */
  requests: count,
  failures: count,
  latency_sum_us: count,
  latency_max_us: count,
});
export type ServedType = z.infer<typeof ServedType>;

export const ServedTypesFile = z.object({
  version: z.literal(SERVED_TYPES_VERSION),
  /** N of secondary-N. */
  secondary: z.number().int().min(1),
  /** The publishing process's generation (as in its scoreboard slot). */
  generation: z.number().int().nonnegative(),
  pid: z.number().int().nonnegative(),
  /** When the file was written, unix ms. */
  updated_ms: count,
  types: z.array(ServedType),
});
export type ServedTypesFile = z.infer<typeof ServedTypesFile>;

/**
 * Replaces the file atomically, mode 0644 (anyone may read it, as the scoreboard).
 * @throws DispatchError SCOREBOARD_IO (SCOREBOARD_NO_SPACE when /dev/shm is full).
 */
export function writeServedTypes(file: string, content: ServedTypesFile): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, JSON.stringify(content) + '\n', { mode: 0o644 });
    fs.chmodSync(tmp, 0o644);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    const code = errnoCode(err) === 'ENOSPC' ? 'SCOREBOARD_NO_SPACE' : 'SCOREBOARD_IO';
    throw new DispatchError(code, `failed to publish the served types to '${file}': ${reason(err)}`, { cause: err });
  }
}

/**
 * Reads a secondary's served types; undefined when the file is missing, unreadable or not
 * of this format (a reader then treats the secondary as serving nothing known).
 */
export function readServedTypes(file: string): ServedTypesFile | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = ServedTypesFile.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Removes every secondary's served-types file beside a scoreboard (the keeper, at suite stop). */
export function removeServedTypes(scoreboardFile: string): void {
  const dir = path.dirname(scoreboardFile);
  const prefix = `${path.basename(scoreboardFile)}.secondary-`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) if (n.startsWith(prefix) && n.endsWith('.types')) fs.rmSync(path.join(dir, n), { force: true });
}

/**
 * The served types of every running secondary on a scoreboard snapshot: a file counts only
 * while its writer runs (its slot is not stopped, its pid exists) and is the same process
 * (same generation).
 * @param alive tells whether a pid exists (a /proc look-up; never a signal).
 */
export function liveServedTypes(scoreboardFile: string, slots: readonly SlotData[], alive: (pid: number) => boolean): ServedTypesFile[] {
  const out: ServedTypesFile[] = [];
  for (const d of slots) {
    if (d.kind !== 'secondary' || d.state === 'stopped' || !alive(d.pid)) continue;
    const f = readServedTypes(servedTypesPath(scoreboardFile, secondary(d.instance)));
    if (f && f.generation === d.generation) out.push(f);
  }
  return out;
}
