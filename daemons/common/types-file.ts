/**
 * One types file (docs/TYPES.md): who may own it, and its TOML parsed into resolved request
 * types, each error naming the file, line and key and what to do. The registry of every
 * types directory is type-registry.ts.
 */
import type fs from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import './zod-messages.js'; // range errors worded as dispatchd's ("must be at least 1")
import { findLine } from './toml-lines.js';
import { DispatchError, reason } from './errors.js';
import { resolveType, TYPE_NAME, TypeDeclaration, TypesFile, type RequestType, type TypeDefaults, type TypeSource } from './request-type.js';

/**
 * What to do after fixing a types file: a per-request type is applied by a reload; a
 * persistent type also needs the generator to run again and its units started (docs/WORKERS.md §2).
 */
export function applyHint(persistent: boolean, what = 'it'): string {
  return persistent
    ? `fix ${what}, then check with \`dispatchctl check-config\` and apply with \`systemctl daemon-reload && systemctl start dispatchd.target && systemctl reload dispatchd.target\` (a persistent type: the daemon-reload makes its worker units, docs/WORKERS.md §2)`
    : `fix ${what}, then check with \`dispatchctl check-config\` and apply with \`systemctl reload dispatchd.target\``;
}

/** A CONFIG_INVALID error about a types file, with what to do after the fix. */
export function typesFileInvalid(message: string, fields: Record<string, string> = {}, persistent = false): DispatchError {
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

/**
 * Refuses a types file that someone other than root could have written.
 * @throws DispatchError CONFIG_INVALID naming the file, its owner and mode, and the fix.
 */
export function checkTypesFileOwner(file: string, st: fs.Stats, trustedOwners: readonly number[] = [0]): void {
  if (!st.isFile()) throw typesFileInvalid(`refused types file '${file}': not a regular file`, { file });
  if (!trustedOwners.includes(st.uid)) {
    throw typesFileInvalid(`refused types file '${file}': owned by uid ${st.uid}, not root; it names programs the secondaries run, so only root may own it (chown root:root '${file}')`, { file });
  }
  if ((st.mode & 0o022) !== 0) {
    throw typesFileInvalid(`refused types file '${file}': mode ${(st.mode & 0o777).toString(8).padStart(4, '0')} lets group or others write it (chmod go-w '${file}')`, { file });
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
    throw typesFileInvalid(`failed to parse types file '${file}'${line ? ` line ${line}` : ''}: ${reason(cause).split('\n')[0]}`, { file }, mentionsPersistent(text));
  }
  const top = TypesFile.safeParse(raw);
  if (!top.success) {
    const issue = top.error.issues[0]!;
    const keyPath = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
    const line = findLine(text, keyPath);
    const what = issue.code === 'unrecognized_keys' ? `unknown table or key '${keyPath.join('.')}' (a types file holds only [type.NAME] tables)` : `'${keyPath.join('.')}': ${issue.message}`;
    throw typesFileInvalid(`failed to load types file '${file}'${line ? ` line ${line}` : ''}: ${what}`, { file, key: keyPath.join('.') }, mentionsPersistent(text));
  }
  const out: RequestType[] = [];
  for (const [name, body] of Object.entries(top.data.type ?? {})) {
    const source: TypeSource = { file };
    const headerLine = findLine(text, ['type', name]);
    if (!TYPE_NAME.test(name)) {
      throw typesFileInvalid(`failed to load types file '${file}'${headerLine ? ` line ${headerLine}` : ''}: '${name}' is not a valid type name (a lowercase letter, then up to 62 lowercase letters, digits or dashes)`, { file, key: `type.${name}` }, meantPersistent(body));
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
      throw typesFileInvalid(`failed to load types file '${file}'${line ? ` line ${line}` : ''}: ${what}`, { file, key: keyPath.join('.') }, meantPersistent(body));
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
