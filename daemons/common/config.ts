/**
 * Configuration: /etc/dispatchd/dispatchd.conf, TOML (https://toml.io/en/v1.0.0), every key
 * optional with the defaults below. Times in ms, sizes in bytes. A bad file is refused with
 * the file, line and key named; daemons then exit 78 (EXIT.CONFIG), which the units list in
 * RestartPreventExitStatus= so that a bad configuration does not crash-loop.
 */
import { z } from 'zod';
import './zod-messages.js'; // range errors worded as dispatchd's ("must be at least 1")
import { DEFAULT_CONFIG_PATH } from './config-path.js';
import { DEFAULT_PATHS, parseConfigToml, readConfigText } from './paths-section.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, MIN_MAX_PAYLOAD_BYTES } from './payload-limit.js';
import { DispatchError } from './errors.js';
import { findLine } from './toml-lines.js';
import { MAX_BODY_BYTES_CEILING } from './frame.js';
import { TYPE_NAME } from './request-type.js';
import { MAX_DEADLINE_MS, MAX_LEASE_TTL_MS, STALE_HEARTBEAT_MS } from './timing.js';
import { isSecondaryInstance, MAX_SECONDARIES } from './topology.js';

export { DEFAULT_CONFIG_PATH };

const ms = (min: number, max: number) => z.number().int().min(min).max(max);

const PathsSchema = z
  .strictObject({
    runtime_dir: z.string().startsWith('/').default(DEFAULT_PATHS.runtime_dir),
    scoreboard: z.string().startsWith('/').default(DEFAULT_PATHS.scoreboard),
  })
  .prefault({});

/** Where request types are declared: the package's built-ins, then the administrator's drop-ins. */
export const DEFAULT_TYPES_DIRS = ['/usr/share/dispatchd/types.d', '/etc/dispatchd/types.d'] as const;

/** A `serve` entry: a type name, or "*" for every declared type. */
const ServeEntry = z.string().refine((s) => s === '*' || TYPE_NAME.test(s), { message: 'a type name or "*"' });

/** A `[secondary.instance.N]` key: a secondary's number, within the suite's one bound (topology.ts). */
const InstanceKey = z.string().refine((s) => /^[1-9][0-9]*$/.test(s) && isSecondaryInstance(Number(s)), { message: `an instance is a whole number 1..${MAX_SECONDARIES}` });

export const ConfigSchema = z.strictObject({
  paths: PathsSchema,
  main: z
    .strictObject({
      reserve_timeout_ms: ms(10, 60_000).default(500),
      lease_ttl_ms: ms(100, MAX_LEASE_TTL_MS).default(3000),
      queue_timeout_ms: ms(0, 600_000).default(2000),
      queue_max: z.number().int().min(0).max(1_000_000).default(1024),
      client_idle_timeout_ms: ms(100, 3_600_000).default(5000),
      // At least two of the 1 s heartbeats: less would drop live secondaries between two.
      heartbeat_stale_ms: ms(2000, 600_000).default(STALE_HEARTBEAT_MS),
    })
    .prefault({}),
  secondary: z
    .strictObject({
      max_leases: z.number().int().min(1).max(100_000).default(32),
      request_deadline_ms: ms(10, MAX_DEADLINE_MS).default(30_000),
      max_payload_bytes: z.number().int().min(MIN_MAX_PAYLOAD_BYTES).max(MAX_BODY_BYTES_CEILING).default(DEFAULT_MAX_PAYLOAD_BYTES),
      client_idle_timeout_ms: ms(100, 3_600_000).default(5000),
      /** The request types every secondary serves: names, or "*" for every declared type. */
      serve: z.array(ServeEntry).min(1).default(['*']),
      /** Per-instance overrides: `[secondary.instance.3] serve = ["heavy"]` pins types to secondary 3. */
      instance: z.record(InstanceKey, z.strictObject({ serve: z.array(ServeEntry).min(1) })).default({}),
    })
    .prefault({}),
  types: z
    .strictObject({
      /** Directories of request-type declarations (*.toml), read in this order (docs/TYPES.md). */
      dirs: z.array(z.string().startsWith('/')).default([...DEFAULT_TYPES_DIRS]),
    })
    .prefault({}),
  watchdog: z
    .strictObject({
      // At most half of the shipped WatchdogSec=3s: the watchdog's WATCHDOG=1 comes from this
      // loop (a drop-in with a shorter WatchdogSec= is checked at start, checkProbeInterval).
      probe_interval_ms: ms(50, 1500).default(300),
      max_missed: z.number().int().min(1).max(100).default(3),
    })
    .prefault({}),
});

export type Config = z.infer<typeof ConfigSchema>;

/** The defaults: what an empty file means. */
export function defaultConfig(): Config {
  return ConfigSchema.parse({});
}

/**
 * Parses and validates configuration text.
 *
 * @param where the file name, for messages.
 * @throws DispatchError CONFIG_INVALID with file, line and key in the message.
 */
export function parseConfig(text: string, where: string): Config {
  const raw = parseConfigToml(text, where, 'fix the file, then reload or restart the suite (systemctl reload|restart dispatchd.target)');
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.path.map(String).join('.');
    let p = issue.path;
    if (issue.code === 'unrecognized_keys') p = [...issue.path, issue.keys[0]!];
    const line = findLine(text, p);
    // A refused record key (`[secondary.instance.N]`) says why in its inner issue.
    const message = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
    const what = issue.code === 'unrecognized_keys' ? `unknown key '${[...issue.path, ...issue.keys].join('.')}'` : `key '${key}': ${message}`;
    throw new DispatchError('CONFIG_INVALID', `failed to load configuration '${where}'${line ? ` line ${line}` : ''}: ${what}; fix the file, then reload or restart the suite (systemctl reload|restart dispatchd.target)`, {
      fields: { config: where, key: issue.code === 'unrecognized_keys' ? [...issue.path, ...issue.keys].join('.') : key },
    });
  }
  return parsed.data;
}

/**
 * Reads and validates the configuration file. A missing file at the default path means the
 * defaults; a missing file named explicitly is an error.
 *
 * @throws DispatchError CONFIG_UNREADABLE, CONFIG_INVALID.
 */
export function loadConfig(file: string = DEFAULT_CONFIG_PATH, explicit = false): Config {
  const text = readConfigText(file, explicit);
  return text === undefined ? defaultConfig() : parseConfig(text, file);
}

/** Every key whose value differs between two configurations, as `section.key`. */
export function changedKeys(before: Config, after: Config): string[] {
  const out: string[] = [];
  for (const section of Object.keys(after) as Array<keyof Config>) {
    const a = before[section] as Record<string, unknown>;
    const b = after[section] as Record<string, unknown>;
    for (const key of Object.keys(b)) if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) out.push(`${section}.${key}`);
  }
  return out;
}

/**
 * The result of applying a new configuration to a running daemon: which changed keys took
 * effect, and which need a restart (paths: the sockets and FIFOs are systemd's).
 */
export interface ReloadOutcome {
  applied: string[];
  needRestart: string[];
}

/**
 * Merges a reloaded configuration into a running one: everything but `paths` is taken.
 * Returns the merged configuration and what changed.
 */
export function mergeReload(running: Config, next: Config): { config: Config; outcome: ReloadOutcome } {
  const changed = changedKeys(running, next);
  const needRestart = changed.filter((k) => k.startsWith('paths.'));
  return { config: { ...next, paths: running.paths }, outcome: { applied: changed.filter((k) => !k.startsWith('paths.')), needRestart } };
}
