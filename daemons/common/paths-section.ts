/**
 * The configuration's `[paths]` section read by itself, without the schema library: for
 * the scoreboard keeper (daemons/scoreboard/main.ts), which runs before every daemon of the
 * suite can start (they are ordered after it), so its start is on the path of every cold
 * start. Loading config.ts and its zod schema costs the keeper about 80 ms of CPU: measured
 * on Node.js 20, whole runs, importing the keeper's modules took 117 ms of CPU with config.ts
 * and 39 ms with this module instead (`node -e 0`: 24 ms). That cost is the only reason
 * these few checks are code of our own; config.ts's ConfigSchema stays the reference, and
 * test/unit/common/config.test.ts checks that both read `[paths]` alike.
 *
 * The file is TOML (https://toml.io/en/v1.0.0), read with smol-toml as config.ts reads it.
 */
import fs from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { DEFAULT_CONFIG_PATH } from './config-path.js';
import { DispatchError, reason } from './errors.js';

/** `[paths]`: absolute paths of the runtime directory and the scoreboard file. */
export interface Paths {
  runtime_dir: string;
  scoreboard: string;
}

/** The defaults of `[paths]` (config.ts's schema takes them from here). */
export const DEFAULT_PATHS: Readonly<Paths> = { runtime_dir: '/run/dispatchd', scoreboard: '/dev/shm/dispatchd.scoreboard' };

/** The most a configuration file may hold (bytes): the shipped one is ~3 KiB. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * The configuration file's text; undefined for a missing file at the default path (the
 * defaults apply). Read no further than {@link MAX_CONFIG_BYTES}, so that a wrong path
 * (`--config /dev/zero`, a log file) is refused rather than read into memory.
 * @throws DispatchError CONFIG_UNREADABLE, CONFIG_INVALID (larger than MAX_CONFIG_BYTES).
 */
export function readConfigText(file: string, explicit: boolean): string | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const buf = Buffer.allocUnsafe(MAX_CONFIG_BYTES + 1);
    let n = 0;
    for (let got = -1; got !== 0 && n < buf.length; n += got) got = fs.readSync(fd, buf, n, buf.length - n, null);
    if (n > MAX_CONFIG_BYTES) throw new DispatchError('CONFIG_INVALID', `failed to read configuration '${file}': it is larger than ${MAX_CONFIG_BYTES} bytes; is it the configuration file?`);
    return buf.toString('utf8', 0, n);
  } catch (cause) {
    if (cause instanceof DispatchError) throw cause;
    if (!explicit && (cause as { code?: string }).code === 'ENOENT') return undefined;
    throw new DispatchError('CONFIG_UNREADABLE', `failed to read configuration '${file}': ${reason(cause)}`, { cause });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Configuration text parsed as TOML (smol-toml), for every reader of the file (config.ts,
 * payload-limit.ts, {@link loadPaths}). `remedy` (what to do) follows the problem when given.
 * @throws DispatchError CONFIG_INVALID naming the file and the line of the TOML error.
 */
export function parseConfigToml(text: string, file: string, remedy?: string): Record<string, unknown> {
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (cause) {
    const line = (cause as { line?: number }).line;
    throw new DispatchError('CONFIG_INVALID', `failed to parse configuration '${file}'${line ? ` line ${line}` : ''}: ${reason(cause).split('\n')[0]}${remedy ? `; ${remedy}` : ''}`, { cause });
  }
}

/**
 * `[paths]` of a parsed file (`section`: its value, undefined when absent), checked as
 * ConfigSchema checks it: a table of only `runtime_dir` and `scoreboard`, each a string
 * starting with '/', each defaulted. Returns the paths, or what is wrong.
 */
export function checkPaths(section: unknown): { paths: Paths } | { problem: string } {
  if (section === undefined) return { paths: { ...DEFAULT_PATHS } };
  if (section === null || typeof section !== 'object' || Array.isArray(section)) return { problem: "'paths' is not a table" };
  const s = section as Record<string, unknown>;
  const unknown = Object.keys(s).find((k) => !(k in DEFAULT_PATHS));
  if (unknown !== undefined) return { problem: `unknown key 'paths.${unknown}'` };
  const paths = { ...DEFAULT_PATHS };
  for (const key of Object.keys(DEFAULT_PATHS) as Array<keyof Paths>) {
    const v = s[key];
    if (v === undefined) continue;
    if (typeof v !== 'string' || !v.startsWith('/')) return { problem: `key 'paths.${key}': an absolute path (a string starting with '/') is required` };
    paths[key] = v;
  }
  return { paths };
}

/**
 * Only the `[paths]` section, for the scoreboard keeper, which must create and remove the
 * segment even when the file is wrong (the daemons then refuse the file themselves, each in
 * its own journal, with the file, line and key; other sections are not checked here). Falls
 * back to the default paths when the file cannot be read or parsed, or `[paths]` itself is
 * wrong, and says why in `problem`.
 */
export function loadPaths(file: string = DEFAULT_CONFIG_PATH, explicit = false): { paths: Paths; problem?: string } {
  let raw: Record<string, unknown>;
  try {
    const text = readConfigText(file, explicit);
    if (text === undefined) return { paths: { ...DEFAULT_PATHS } };
    raw = parseConfigToml(text, file);
  } catch (err) {
    return { paths: { ...DEFAULT_PATHS }, problem: reason(err) };
  }
  const r = checkPaths(raw.paths);
  return 'paths' in r ? r : { paths: { ...DEFAULT_PATHS }, problem: `failed to load configuration '${file}': ${r.problem}` };
}
