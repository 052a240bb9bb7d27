/**
 * Where a key of a TOML text (https://toml.io/en/v1.0.0) is set: the line numbers the
 * configuration's and the types files' messages give. Pure text scanning, no TOML library.
 */

/** Splits a TOML key (`a.b`, `"a".b`, `'a'`) into its parts. */
function keyParts(key: string): string[] {
  return key.split('.').map((p) => p.trim().replace(/^"(.*)"$|^'(.*)'$/, '$1$2'));
}

const samePath = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The 1-based line of a TOML text where the value at `path` (e.g. ['main', 'queue_max']) is
 * set: under a `[main]` header, as a dotted key `main.queue_max =`, inside an inline table
 * `main = { queue_max = … }`, or, for a table, its `[main.sub]` header. Undefined when it
 * cannot be found (a multi-line value, say).
 */
export function lineOf(text: string, path: PropertyKey[]): number | undefined {
  const want = path.map(String);
  const lines = text.split('\n');
  let table: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!.trim();
    const header = /^\[\s*([^\]]+?)\s*\]/.exec(l);
    if (header && !l.startsWith('[[')) {
      table = keyParts(header[1]!);
      if (samePath(table, want)) return i + 1;
      continue;
    }
    const assign = /^((?:"[^"]*"|'[^']*'|[A-Za-z0-9_.\s-])+?)\s*=\s*(.*)$/.exec(l);
    if (!assign) continue;
    const full = [...table, ...keyParts(assign[1]!)];
    if (samePath(full, want)) return i + 1;
    // An inline table on this line holding the rest of the path: `main = { queue_max = -1 }`.
    if (full.length < want.length && samePath(full, want.slice(0, full.length)) && assign[2]!.startsWith('{')) {
      const rest = want.slice(full.length);
      if (new RegExp(`(^|[{,\\s])["']?${rest[0]!.replace(/[^A-Za-z0-9_-]/g, '')}["']?\\s*=`).test(assign[2]!)) return i + 1;
    }
  }
  return undefined;
}

/**
 * The line of a key, or of the nearest thing to it: an array element's array, a table whose
 * header starts with the path (`[types.x]` for `types`).
 */
export function findLine(text: string, keyPath: PropertyKey[]): number | undefined {
  const parts = keyPath.map(String);
  while (parts.length && /^[0-9]+$/.test(parts[parts.length - 1]!)) parts.pop();
  const exact = lineOf(text, parts);
  if (exact !== undefined) return exact;
  const lines = text.split('\n');
  const i = lines.findIndex((l) => {
    const h = /^\s*\[\s*([^\]]+?)\s*\]/.exec(l);
    return h !== null && h[1]!.split('.').map((x) => x.trim()).join('.').startsWith(parts.join('.'));
  });
  return i >= 0 ? i + 1 : undefined;
}
