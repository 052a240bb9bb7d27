/**
 * `dispatchctl check-config` for request types: besides what every daemon checks when it
 * loads them (file syntax, keys and values, owner and mode, a type declared twice, `serve`
 * lists naming declared types), it checks that each handler can run:
 *
 * - exec: the program exists, is a regular file and is executable by the user the
 *   secondaries run as (`dispatchd`; by mode bits, owner and groups, as execve(2) would);
 * - module: the module's file is readable by that user (by mode bits, owner and groups), and
 *   it imports in a throw-away worker thread and default-exports a function;
 * - a persistent type's `user` exists, looked up as systemd's User= is (NSS, `getent passwd`).
 *
 * Library code: throws DispatchError CONFIG_INVALID naming the type, its file and line.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import type { Config } from '../common/config.js';
import { findLine } from '../common/toml-lines.js';
import { DispatchError, reason } from '../common/errors.js';
import { isPersistent, type RequestType } from '../common/request-type.js';
import { checkServeLists, loadTypesFor, type TypeRegistry } from '../common/type-registry.js';
import { applyHint } from '../common/types-file.js';
import { checkModule } from '../secondary-server/handlers/module-handler.js';

/** The user the secondaries run as (units/dispatchd-secondary@.service User=). */
export const SERVICE_USER = 'dispatchd';

/**
 * Directories the secondaries' sandbox hides or replaces (the shared unit drop-in:
 * ProtectHome=yes, PrivateTmp=yes): a handler there exists for root's shell but not for them.
 */
export const HIDDEN_FROM_SECONDARIES = ['/home/', '/root/', '/run/user/', '/tmp/', '/var/tmp/'];

/** @throws DispatchError CONFIG_INVALID when `file` is in a directory the secondaries cannot see. */
function checkVisible(t: RequestType, file: string, key: string): void {
  const hidden = HIDDEN_FROM_SECONDARIES.find((d) => file.startsWith(d));
  if (hidden) {
    throw new DispatchError('CONFIG_INVALID', `type '${t.name}' (${where(t)}): '${file}' is under ${hidden}, which the secondaries' sandbox hides (ProtectHome=, PrivateTmp=); install it under /usr/local/lib or /opt instead (docs/TYPES.md §6); ${applyHint(isPersistent(t))}`, { fields: { type: t.name, key } });
  }
}

/** A user's ids, from /etc/passwd and /etc/group; undefined when the user does not exist. */
export function userIds(name: string, passwd = '/etc/passwd', group = '/etc/group'): { uid: number; gids: number[] } | undefined {
  let pw: string;
  let gr: string;
  try {
    pw = fs.readFileSync(passwd, 'utf8');
    gr = fs.readFileSync(group, 'utf8');
  } catch {
    return undefined;
  }
  const entry = pw.split('\n').map((l) => l.split(':')).find((f) => f[0] === name);
  if (!entry) return undefined;
  const gids = new Set([Number(entry[3])]);
  for (const f of gr.split('\n').map((l) => l.split(':'))) if (f.length >= 4 && f[3]!.split(',').includes(name)) gids.add(Number(f[2]));
  return { uid: Number(entry[2]), gids: [...gids] };
}

/** The permission bit of the owner, group or others class that applies to `user` (`bit`: 4 read, 1 execute). */
function permits(st: fs.Stats, user: { uid: number; gids: number[] }, bit: 4 | 1): boolean {
  if (st.uid === user.uid) return (st.mode & (bit << 6)) !== 0;
  if (user.gids.includes(st.gid)) return (st.mode & (bit << 3)) !== 0;
  return (st.mode & bit) !== 0;
}

/** Whether execve(2) would let this user run the file, by its mode bits (root: any x bit). */
export function executableBy(st: fs.Stats, user: { uid: number; gids: number[] }): boolean {
  if (user.uid === 0) return (st.mode & 0o111) !== 0;
  return permits(st, user, 1);
}

/** Whether open(2) for reading would let this user read the file, by its mode bits (root: always). */
export function readableBy(st: fs.Stats, user: { uid: number; gids: number[] }): boolean {
  return user.uid === 0 || permits(st, user, 4);
}

/** A file's mode and owner for a message: `mode 0640, owner 0:0`. */
function modeAndOwner(st: fs.Stats): string {
  return `mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, owner ${st.uid}:${st.gid}`;
}

function where(t: RequestType): string {
  return t.source.line === undefined ? `'${t.source.file}'` : `'${t.source.file}' line ${t.source.line}`;
}

/** @throws DispatchError CONFIG_INVALID when the command cannot be run by the service user. */
export function checkCommand(t: Extract<RequestType, { handler: 'exec' }>, user = userIds(SERVICE_USER)): void {
  const program = t.command[0]!;
  checkVisible(t, program, `type.${t.name}.command`);
  const refuse = (why: string) => new DispatchError('CONFIG_INVALID', `type '${t.name}' (${where(t)}): command '${program}' ${why}; ${applyHint(isPersistent(t), "'command' in that file")}`, { fields: { type: t.name, key: `type.${t.name}.command` } });
  let st: fs.Stats;
  try {
    st = fs.statSync(program);
  } catch (err) {
    throw refuse(`cannot be found: ${reason(err)}`);
  }
  if (!st.isFile()) throw refuse('is not a regular file');
  if (user ? !executableBy(st, user) : (st.mode & 0o111) === 0) {
    throw refuse(`is not executable by user '${SERVICE_USER}' (${modeAndOwner(st)}); chmod a+x it, or make it executable by that user`);
  }
}

/**
 * @throws DispatchError CONFIG_INVALID when the module's file cannot be read by the service
 *   user: `check-config` imports it as whoever runs it (often root), the secondaries as
 *   `dispatchd`. Only the file named by `module` is checked, not what it imports.
 */
export function checkModuleFile(t: Extract<RequestType, { handler: 'module' }>, user = userIds(SERVICE_USER)): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(t.module);
  } catch {
    return; // checkModule's import names what is wrong with a missing module
  }
  if (!user || !st.isFile() || readableBy(st, user)) return;
  throw new DispatchError('CONFIG_INVALID', `type '${t.name}' (${where(t)}): module '${t.module}' is not readable by user '${SERVICE_USER}' (${modeAndOwner(st)}), so the secondaries cannot import it; chmod a+r it, or make it readable by that user; ${applyHint(false, "'module' in that file")}`, { fields: { type: t.name, key: `type.${t.name}.module` } });
}

/**
 * Whether a user exists, by NSS as systemd resolves User= (getent(1) passwd NAME: exit 0
 * found, 2 not found); undefined when getent cannot tell (not installed, or another status).
 */
export function userExists(name: string): boolean | undefined {
  const r = spawnSync('getent', ['passwd', name], { stdio: 'ignore', timeout: 10_000 });
  if (r.status === 0) return true;
  if (r.status === 2) return false;
  return undefined;
}

/** The line of `key` in the type's file, else the type's own line. */
function lineOfKey(t: RequestType, key: string[]): number | undefined {
  try {
    return findLine(fs.readFileSync(t.source.file, 'utf8'), key) ?? t.source.line;
  } catch {
    return t.source.line;
  }
}

/**
 * @throws DispatchError CONFIG_INVALID when a persistent type's `user` does not exist (its
 *   worker would fail with status 217/USER and never say hello).
 */
export function checkWorkerUser(t: Extract<RequestType, { handler: 'exec' }>, exists = userExists): void {
  if (!isPersistent(t) || t.worker.user === undefined) return;
  const user = t.worker.user;
  if (exists(user) !== false) return;
  const key = ['type', t.name, 'user'];
  const line = lineOfKey(t, key);
  throw new DispatchError('CONFIG_INVALID', `type '${t.name}' ('${t.source.file}'${line ? ` line ${line}` : ''}): key '${key.join('.')}' names user '${user}', which does not exist on this system (\`getent passwd ${user}\` finds nothing), so its workers would fail with status 217/USER; create the user, or remove 'user' to run the workers as a dynamic user; ${applyHint(true)}`, { fields: { type: t.name, file: t.source.file, key: key.join('.') } });
}

/**
 * The types no `serve` list names (neither `[secondary] serve`, nor a `[secondary.instance.N]`
 * one): declared, but no secondary will run them (a warning, not an error).
 */
export function unservedTypes(config: Config, registry: TypeRegistry): string[] {
  const lists = [config.secondary.serve, ...Object.values(config.secondary.instance).map((o) => o.serve)];
  if (lists.some((l) => l.includes('*'))) return [];
  return registry.names().filter((n) => !lists.some((l) => l.includes(n)));
}

/**
 * Loads the configuration's types and checks that every handler can run.
 * @throws DispatchError CONFIG_INVALID, CONFIG_UNREADABLE.
 */
export async function checkTypes(config: Config): Promise<TypeRegistry> {
  const registry = loadTypesFor(config);
  checkServeLists(config, registry);
  const user = userIds(SERVICE_USER);
  for (const t of registry.list()) {
    if (t.handler === 'exec') {
      checkCommand(t, user);
      checkWorkerUser(t);
    }
    else if (t.handler === 'module') {
      checkVisible(t, t.module, `type.${t.name}.module`);
      checkModuleFile(t, user);
      try {
        await checkModule(t.module, t.name);
      } catch (err) {
        throw new DispatchError('CONFIG_INVALID', `${reason(err)} (declared in ${where(t)})`, { cause: err, fields: { type: t.name, key: `type.${t.name}.module` } });
      }
    }
  }
  return registry;
}
