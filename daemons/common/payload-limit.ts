/**
 * The configuration's `[secondary] max_payload_bytes` read by itself, without the schema
 * library: for `dispatchctl request` with DATA on standard input, which caps what it reads
 * at the limit the secondaries refuse beyond (request-command.ts). Loading config.ts and
 * its zod schema for that one number cost a request from standard input ~100 ms of CPU
 * (Node.js 20, whole runs: 0.16–0.19 s of user CPU against 0.06–0.07 s with DATA as an
 * argument; docs/BENCHMARKS.md "Command line"). That cost is the only reason this check is
 * code of our own, as paths-section.ts is for `[paths]`: config.ts's ConfigSchema takes its
 * default and bounds from here and stays the reference for the whole file, and
 * test/unit/common/config.test.ts checks that both read the key alike.
 *
 * Only this key is checked: a file wrong elsewhere is the daemons' to refuse
 * (`dispatchctl check-config FILE` checks all of it).
 *
 * The file is TOML (https://toml.io/en/v1.0.0), read with smol-toml as config.ts reads it.
 */
import { DispatchError } from './errors.js';
import { MAX_BODY_BYTES_CEILING } from './frame.js';
import { parseConfigToml, readConfigText } from './paths-section.js';
import { lineOf } from './toml-lines.js';

/** `max_payload_bytes` when the file does not set it (bytes). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;
/** The smallest `max_payload_bytes` a file may set (bytes); the largest is the frame's ceiling. */
export const MIN_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

/**
 * `max_payload_bytes` of a parsed file's `[secondary]` section (`section`: its value,
 * undefined when absent), checked as ConfigSchema checks that key: an integer from
 * {@link MIN_MAX_PAYLOAD_BYTES} to MAX_BODY_BYTES_CEILING, defaulted. Returns the limit in
 * bytes (`set`: whether the file gave it), or what is wrong.
 */
export function checkPayloadLimit(section: unknown): { maxBytes: number; set: boolean } | { problem: string } {
  if (section === undefined) return { maxBytes: DEFAULT_MAX_PAYLOAD_BYTES, set: false };
  if (section === null || typeof section !== 'object' || Array.isArray(section)) return { problem: "'secondary' is not a table" };
  const v = (section as Record<string, unknown>).max_payload_bytes;
  if (v === undefined) return { maxBytes: DEFAULT_MAX_PAYLOAD_BYTES, set: false };
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < MIN_MAX_PAYLOAD_BYTES || v > MAX_BODY_BYTES_CEILING) {
    return { problem: `key 'secondary.max_payload_bytes': an integer from ${MIN_MAX_PAYLOAD_BYTES} to ${MAX_BODY_BYTES_CEILING} (bytes) is required` };
  }
  return { maxBytes: v, set: true };
}

/**
 * The request limit of configuration `file` (bytes), and where it comes from: the file, the
 * default (the file does not set it), or the default for want of a file (`no file`; an error
 * when `explicit`, named with --config).
 * @throws DispatchError CONFIG_UNREADABLE (the file cannot be read), CONFIG_INVALID (it is not
 *   TOML, or the key is wrong).
 */
export function loadPayloadLimit(file: string, explicit: boolean): { maxBytes: number; from: 'file' | 'default' | 'no file' } {
  const text = readConfigText(file, explicit);
  if (text === undefined) return { maxBytes: DEFAULT_MAX_PAYLOAD_BYTES, from: 'no file' };
  const r = checkPayloadLimit(parseConfigToml(text, file, `fix the file (dispatchctl check-config ${file})`).secondary);
  if ('problem' in r) {
    const line = lineOf(text, ['secondary', 'max_payload_bytes']) ?? lineOf(text, ['secondary']);
    throw new DispatchError('CONFIG_INVALID', `failed to load configuration '${file}'${line ? ` line ${line}` : ''}: ${r.problem}; fix the file (dispatchctl check-config ${file})`, { fields: { config: file, key: 'secondary.max_payload_bytes' } });
  }
  return { maxBytes: r.maxBytes, from: r.set ? 'file' : 'default' };
}
