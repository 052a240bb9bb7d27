/**
 * The open request-type registry: every type declared in the types directories
 * (`[types] dirs` of the configuration, by default /usr/share/dispatchd/types.d, the
 * package's built-ins, then /etc/dispatchd/types.d, the administrator's and other
 * packages' drop-ins). Files ending in `.toml` are read directory by directory, each
 * directory in lexical order of file names (as systemd and sudo read their drop-in
 * directories); other files are ignored. A type is a value looked up at run time by name.
 *
 * A types file must be owned by root and writable by nobody else (as sudo requires of
 * sudoers.d): it names programs the secondaries run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { findLine, type Config } from './config.js';
import { DispatchError, errnoCode, reason } from './errors.js';
import { resolveType, TYPE_NAME, TypeDeclaration, TypesFile, type RequestType, type TypeDefaults, type TypeSource } from './request-type.js';

/** The types every daemon and dispatchctl know, by name. Immutable: a reload builds a new one. */
export class TypeRegistry {
  private readonly byName: ReadonlyMap<string, RequestType>;

  constructor(types: Iterable<RequestType>) {
    const m = new Map<string, RequestType>();
    for (const t of types) m.set(t.name, t);
    this.byName = new Map([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** The type called `name`, or undefined. */
  get(name: string): RequestType | undefined {
    return this.byName.get(name);
  }

  /** Every type, by name. */
  list(): RequestType[] {
    return [...this.byName.values()];
  }

  /** Every type name, sorted. */
  names(): string[] {
    return [...this.byName.keys()];
  }

  get size(): number {
    return this.byName.size;
  }

  /** The registry restricted to some names (a secondary's `serve` list; `*` is every type). */
  only(serve: readonly string[]): TypeRegistry {
    if (serve.includes('*')) return this;
    return new TypeRegistry(this.list().filter((t) => serve.includes(t.name)));
  }
}

export interface LoadTypesOptions {
  /** Directories read in this order; a missing one is empty. */
  dirs: readonly string[];
  /** Limits a declaration leaves out. */
  defaults: TypeDefaults;
  /** Owners (uids) a types file may have; default root only. */
  trustedOwners?: readonly number[];
  /**
   * When given, a types directory or file that cannot be read, is refused or fails to parse
   * (or declares a type an earlier file declares) is skipped whole and passed here, and the
   * other files' types are kept (the worker generator). Without it, the first such error is
   * thrown (the daemons and check-config refuse the whole configuration).
   */
  onBadFile?: (file: string, err: DispatchError) => void;
}

/**
 * What to do after fixing a types file: a per-request type is applied by a reload; a
 * persistent type also needs the generator to run again and its units started (docs/WORKERS.md §2).
 */
export function applyHint(persistent: boolean, what = 'it'): string {
  return persistent
    ? `fix ${what}, then check with \`dispatchctl check-config\` and apply with \`systemctl daemon-reload && systemctl start dispatchd.target && systemctl reload dispatchd.target\` (a persistent type: the daemon-reload makes its worker units, docs/WORKERS.md §2)`
    : `fix ${what}, then check with \`dispatchctl check-config\` and apply with \`systemctl reload dispatchd.target\``;
}

function invalid(message: string, fields: Record<string, string> = {}, persistent = false): DispatchError {
  return new DispatchError('CONFIG_INVALID', `${message}; ${applyHint(persistent)}`, { fields });
}

/** Whether a types file's text declares (or means to declare) a persistent type. */
function mentionsPersistent(text: string): boolean {
  return /^\s*mode\s*=\s*["']persist/m.test(text);
}

/** Whether a type's raw table is (or means to be) a persistent type: its mode, or a worker key. */
function meantPersistent(body: unknown): boolean {
  if (typeof body !== 'object' || body === null) return false;
  const b = body as Record<string, unknown>;
  return (typeof b.mode === 'string' && b.mode.startsWith('persist')) || 'processes' in b || 'start_timeout_ms' in b;
}

function isPersistent(t: RequestType): boolean {
  return t.handler === 'exec' && t.mode === 'persistent';
}

/** The `.toml` files of one directory, in lexical order; none when the directory is missing. */
export function typesFiles(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw new DispatchError('CONFIG_UNREADABLE', `failed to read the types directory '${dir}': ${reason(err)}`, { cause: err });
  }
  return names
    .filter((n) => n.endsWith('.toml') && !n.startsWith('.'))
    .sort()
    .map((n) => path.join(dir, n));
}

/**
 * Refuses a types file that someone other than root could have written.
 * @throws DispatchError CONFIG_INVALID naming the file, its owner and mode, and the fix.
 */
export function checkTypesFileOwner(file: string, st: fs.Stats, trustedOwners: readonly number[] = [0]): void {
  if (!st.isFile()) throw invalid(`refused types file '${file}': not a regular file`, { file });
  if (!trustedOwners.includes(st.uid)) {
    throw invalid(`refused types file '${file}': owned by uid ${st.uid}, not root; it names programs the secondaries run, so only root may own it (chown root:root '${file}')`, { file });
  }
  if ((st.mode & 0o022) !== 0) {
    throw invalid(`refused types file '${file}': mode ${(st.mode & 0o777).toString(8).padStart(4, '0')} lets group or others write it (chmod go-w '${file}')`, { file });
  }
}

/**
 * Parses one types file's text into resolved types.
 * @throws DispatchError CONFIG_INVALID with file, line and key.
 */
export function parseTypesFile(text: string, file: string, defaults: TypeDefaults): RequestType[] {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (cause) {
    const line = (cause as { line?: number }).line;
    throw invalid(`failed to parse types file '${file}'${line ? ` line ${line}` : ''}: ${reason(cause).split('\n')[0]}`, { file }, mentionsPersistent(text));
  }
  const top = TypesFile.safeParse(raw);
  if (!top.success) {
    const issue = top.error.issues[0]!;
    const keyPath = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
    const line = findLine(text, keyPath);
    const what = issue.code === 'unrecognized_keys' ? `unknown table or key '${keyPath.join('.')}' (a types file holds only [type.NAME] tables)` : `'${keyPath.join('.')}': ${issue.message}`;
    throw invalid(`failed to load types file '${file}'${line ? ` line ${line}` : ''}: ${what}`, { file, key: keyPath.join('.') }, mentionsPersistent(text));
  }
  const out: RequestType[] = [];
  for (const [name, body] of Object.entries(top.data.type ?? {})) {
    const source: TypeSource = { file };
    const headerLine = findLine(text, ['type', name]);
    if (!TYPE_NAME.test(name)) {
      throw invalid(`failed to load types file '${file}'${headerLine ? ` line ${headerLine}` : ''}: '${name}' is not a valid type name (a lowercase letter, then up to 62 lowercase letters, digits or dashes)`, { file, key: `type.${name}` }, meantPersistent(body));
    }
    if (headerLine !== undefined) source.line = headerLine;
    const parsed = TypeDeclaration.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const keyPath = ['type', name, ...(issue.code === 'unrecognized_keys' ? [issue.keys[0]!] : issue.path.map(String))];
      const line = findLine(text, keyPath) ?? headerLine;
      const value = valueAt(body, issue.path);
      const missing = issue.code === 'invalid_type' && value === undefined;
      const what =
        issue.code === 'unrecognized_keys' ? `unknown key '${keyPath.join('.')}'`
        : issue.code === 'invalid_type' && !missing ? `key '${keyPath.join('.')}' must be ${expectedOf(body, issue.path, issue.expected)}, not ${tomlKind(value)} (${JSON.stringify(value)})`
        : missing ? `key '${keyPath.join('.')}' is required for handler "${String((body as { handler?: unknown }).handler)}" (docs/TYPES.md §2)`
        : issue.code === 'invalid_union' && (issue.path.length === 0 || issue.path[0] === 'handler') ? `'type.${name}.handler' must be "exec", "module" or "builtin"`
        : `key '${keyPath.join('.')}': ${issue.message}`;
      throw invalid(`failed to load types file '${file}'${line ? ` line ${line}` : ''}: ${what}`, { file, key: keyPath.join('.') }, meantPersistent(body));
    }
    out.push(resolveType(name, parsed.data, defaults, source));
  }
  return out;
}

/** The value at `p` in a raw table, or undefined. */
function valueAt(body: unknown, p: readonly PropertyKey[]): unknown {
  let v = body;
  for (const k of p) v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

/** A TOML value's kind, as the docs name them. */
function tomlKind(v: unknown): string {
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'boolean') return 'a boolean';
  if (typeof v === 'number' || typeof v === 'bigint') return Number.isInteger(Number(v)) ? 'an integer' : 'a float';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date) return 'a date';
  return 'a table';
}

/**
 * What a key of a type's table takes, from its schema (request-type.ts): "an integer 1…64",
 * "a boolean", …; `expected` (zod's word) when the key's schema is not found.
 */
function expectedOf(body: unknown, p: readonly PropertyKey[], expected: string): string {
  const handler = (body as { handler?: unknown }).handler;
  const option = TypeDeclaration.options.find((o) => o.shape.handler.value === handler);
  let schema = p.length === 1 && option ? (option.shape as Record<string, z.ZodType>)[String(p[0])] : undefined;
  if (schema instanceof z.ZodOptional) schema = schema.unwrap() as z.ZodType;
  if (schema instanceof z.ZodNumber) {
    const range = schema.minValue !== null && schema.maxValue !== null && Number.isFinite(schema.minValue) && Number.isFinite(schema.maxValue) ? ` ${schema.minValue}…${schema.maxValue}` : '';
    return `${schema.isInt ? 'an integer' : 'a number'}${range}`;
  }
  if (schema instanceof z.ZodBoolean) return 'a boolean (true or false)';
  if (schema instanceof z.ZodString || schema instanceof z.ZodEnum || schema instanceof z.ZodLiteral) return 'a string';
  if (schema instanceof z.ZodArray || schema instanceof z.ZodTuple) return 'an array';
  return expected === 'number' ? 'a number' : `a ${expected}`;
}

function where(s: TypeSource): string {
  return s.line === undefined ? `'${s.file}'` : `'${s.file}' line ${s.line}`;
}

/**
 * Reads every types directory into a registry.
 * @throws DispatchError CONFIG_INVALID (a bad file, an untrusted owner or mode, a type
 *   declared twice: both places named), CONFIG_UNREADABLE (a directory or file that cannot be read).
 */
export function loadTypeRegistry(o: LoadTypesOptions): TypeRegistry {
  const seen = new Map<string, RequestType>();
  for (const dir of o.dirs) {
    let files: string[];
    try {
      files = typesFiles(dir);
    } catch (err) {
      if (!o.onBadFile || !(err instanceof DispatchError)) throw err;
      o.onBadFile(dir, err);
      continue;
    }
    for (const file of files) {
      let types: RequestType[];
      try {
        types = loadTypesFile(file, o, seen);
      } catch (err) {
        if (!o.onBadFile || !(err instanceof DispatchError)) throw err;
        o.onBadFile(file, err);
        continue;
      }
      for (const t of types) seen.set(t.name, t);
    }
  }
  return new TypeRegistry(seen.values());
}

/**
 * One types file's types, checked against the types of the files read before it.
 * @throws DispatchError as {@link loadTypeRegistry}.
 */
function loadTypesFile(file: string, o: LoadTypesOptions, seen: ReadonlyMap<string, RequestType>): RequestType[] {
  let text: string;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      checkTypesFileOwner(file, fs.fstatSync(fd), o.trustedOwners);
      text = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    if (err instanceof DispatchError) throw err;
    const code = errnoCode(err);
    if (code === 'ELOOP') throw invalid(`refused types file '${file}': it is a symbolic link; put the file itself in the directory`, { file });
    throw new DispatchError('CONFIG_UNREADABLE', `failed to read types file '${file}': ${reason(err)}`, { cause: err });
  }
  const types = parseTypesFile(text, file, o.defaults);
  const mine = new Map<string, RequestType>();
  for (const t of types) {
    const before = seen.get(t.name) ?? mine.get(t.name);
    if (before) {
      throw invalid(`type '${t.name}' is declared twice: in ${where(before.source)} and in ${where(t.source)}; keep one of them`, { file, key: `type.${t.name}` }, isPersistent(before) || isPersistent(t));
    }
    mine.set(t.name, t);
  }
  return types;
}

/** The limits a type falls back to: the `[secondary]` section's. */
export function typeDefaultsOf(config: Config): TypeDefaults {
  const s = config.secondary;
  return { deadline_ms: s.request_deadline_ms, max_payload_bytes: s.max_payload_bytes, max_result_bytes: s.max_payload_bytes, concurrency: s.max_leases };
}

/**
 * The registry a configuration names (its `[types] dirs`); `onBadFile` as {@link LoadTypesOptions}.
 * @throws DispatchError CONFIG_INVALID, CONFIG_UNREADABLE as {@link loadTypeRegistry}.
 */
export function loadTypesFor(config: Config, trustedOwners?: readonly number[], onBadFile?: LoadTypesOptions['onBadFile']): TypeRegistry {
  return loadTypeRegistry({ dirs: config.types.dirs, defaults: typeDefaultsOf(config), ...(trustedOwners ? { trustedOwners } : {}), ...(onBadFile ? { onBadFile } : {}) });
}

/** The `serve` list of secondary N: its `[secondary.instance.N]` override, else `[secondary] serve`. */
export function serveListOf(config: Config, instance: number): string[] {
  return config.secondary.instance[String(instance)]?.serve ?? config.secondary.serve;
}

/**
 * The types secondary N serves.
 * @throws DispatchError CONFIG_INVALID when a `serve` list names a type no file declares.
 */
export function servedTypes(config: Config, instance: number, registry: TypeRegistry): TypeRegistry {
  checkServeLists(config, registry);
  return registry.only(serveListOf(config, instance));
}

/**
 * Every `serve` list names declared types only.
 * @throws DispatchError CONFIG_INVALID naming the key and the unknown type.
 */
export function checkServeLists(config: Config, registry: TypeRegistry): void {
  const lists: Array<[string, string[]]> = [['secondary.serve', config.secondary.serve], ...Object.entries(config.secondary.instance).map(([n, o]): [string, string[]] => [`secondary.instance.${n}.serve`, o.serve])];
  for (const [key, serve] of lists) {
    for (const name of serve) {
      if (name !== '*' && !registry.get(name)) {
        throw invalid(`key '${key}' names type '${name}', which no types file declares (declared: ${registry.names().join(', ') || 'none'})`, { key });
      }
    }
  }
}
