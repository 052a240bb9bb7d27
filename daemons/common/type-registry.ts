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
import type { Config } from './config.js';
import { DispatchError, errnoCode, reason } from './errors.js';
import { isPersistent, type RequestType, type TypeDefaults, type TypeSource } from './request-type.js';
import { checkTypesFileOwner, typesFileInvalid as invalid, parseTypesFile } from './types-file.js';

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
