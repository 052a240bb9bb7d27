import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { checkCommand, checkModuleFile, checkWorkerUser, executableBy, HIDDEN_FROM_SECONDARIES, readableBy, unservedTypes, userExists } from '../../../daemons/client/check-types.js';
import { parseConfig } from '../../../daemons/common/config.js';
import { resolveType } from '../../../daemons/common/request-type.js';
import { TypeRegistry } from '../../../daemons/common/type-registry.js';

const DEFAULTS = { deadline_ms: 1000, max_payload_bytes: 1, max_result_bytes: 1, concurrency: 1 };
const exec = (name: string, program: string) => resolveType(name, { handler: 'exec', command: [program] }, DEFAULTS, { file: '/etc/dispatchd/types.d/x.toml', line: 2 }) as Extract<ReturnType<typeof resolveType>, { handler: 'exec' }>;

/** A file `name` with `text` in a temporary directory; `st(mode)` chmods it and returns its stat. */
function fileWithModes(t: Test, name: string, text: string): { f: string; st: (mode: number) => fs.Stats } {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'check-types-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  const f = path.join(d, name);
  fs.writeFileSync(f, text);
  return { f, st: (mode) => (fs.chmodSync(f, mode), fs.statSync(f)) };
}

t.test('a program in a directory the secondaries cannot see is refused, naming the sandbox', async (t) => {
  t.same(HIDDEN_FROM_SECONDARIES, ['/home/', '/root/', '/run/user/', '/tmp/', '/var/tmp/']);
  for (const program of ['/root/bin/mycat.sh', '/home/ada/h.sh', '/tmp/h.sh']) {
    t.throws(() => checkCommand(exec('h', program), { uid: 0, gids: [0] }), { code: 'CONFIG_INVALID', message: /which the secondaries' sandbox hides \(ProtectHome=, PrivateTmp=\); install it under \/usr\/local\/lib or \/opt/ }, program);
  }
  t.doesNotThrow(() => checkCommand(exec('cat', '/bin/cat'), { uid: 0, gids: [0] }));
});

t.test('executable by the service user: by owner, group or other bits, as execve(2) decides', async (t) => {
  const { st } = fileWithModes(t, 'h', '#!/bin/sh\n');
  const other = { uid: 4242, gids: [4242] };
  t.notOk(executableBy(st(0o750), other), '0750: not for others');
  t.ok(executableBy(st(0o755), other), '0755: for everyone');
  t.ok(executableBy(st(0o700), { uid: st(0o700).uid, gids: [] }), '0700: for its owner');
  t.ok(executableBy(st(0o100), { uid: 0, gids: [] }), 'root: any x bit');
  t.notOk(executableBy(st(0o644), { uid: 0, gids: [] }), 'root: no x bit at all');
});

t.test('a module the service user cannot read is refused by check-config, whoever runs it; by owner, group or other bits', async (t) => {
  const { f, st } = fileWithModes(t, 'h.mjs', 'export default async (d) => d;\n');
  const other = { uid: 4242, gids: [4242] };
  t.notOk(readableBy(st(0o640), other), '0640: not for others');
  t.ok(readableBy(st(0o644), other), '0644: for everyone');
  t.ok(readableBy(st(0o640), { uid: 4343, gids: [st(0o640).gid] }), '0640: for its group');
  t.ok(readableBy(st(0o600), { uid: st(0o600).uid, gids: [] }), '0600: for its owner');
  t.ok(readableBy(st(0o000), { uid: 0, gids: [] }), 'root: always');
  const mod = resolveType('secret', { handler: 'module', module: f }, DEFAULTS, { file: '/etc/dispatchd/types.d/x.toml', line: 3 }) as Extract<ReturnType<typeof resolveType>, { handler: 'module' }>;
  st(0o600);
  t.throws(() => checkModuleFile(mod, other), { code: 'CONFIG_INVALID', message: /type 'secret' \('\/etc\/dispatchd\/types.d\/x.toml' line 3\): module '.*h\.mjs' is not readable by user 'dispatchd' \(mode 0600, owner \d+:\d+\), so the secondaries cannot import it; chmod a\+r it/ }, '0600, owned by another user');
  st(0o644);
  t.doesNotThrow(() => checkModuleFile(mod, other), '0644 passes');
  fs.rmSync(f);
  t.doesNotThrow(() => checkModuleFile(mod, other), 'a missing module is left to the import check, which names it');
});

t.test('a declared type that no serve list names is reported (a warning)', async (t) => {
  const registry = new TypeRegistry([exec('a', '/bin/cat'), exec('b', '/bin/cat'), exec('c', '/bin/cat')]);
  t.same(unservedTypes(parseConfig('', 'c.conf'), registry), [], '"*" serves every type');
  t.same(unservedTypes(parseConfig('[secondary]\nserve = ["a"]\n[secondary.instance.2]\nserve = ["b"]\n', 'c.conf'), registry), ['c']);
});

t.test('a persistent type\'s user must exist (getent passwd), else CONFIG_INVALID with file, line and key', async (t) => {
  t.equal(userExists('root'), true);
  t.equal(userExists('nosuchuser-dispatchd-test'), false);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-user-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'w.toml');
  fs.writeFileSync(file, '[type.nouser]\nhandler = "exec"\nmode = "persistent"\nuser = "nosuchuser-dispatchd-test"\ncommand = ["/bin/cat"]\n');
  const declare = (user: string | undefined, mode: 'persistent' | 'per-request' = 'persistent') =>
    resolveType('nouser', { handler: 'exec', mode, command: ['/bin/cat'], ...(user === undefined ? {} : { user }) } as never, DEFAULTS, { file, line: 1 }) as Extract<ReturnType<typeof resolveType>, { handler: 'exec' }>;
  t.throws(() => checkWorkerUser(declare('nosuchuser-dispatchd-test')), {
    code: 'CONFIG_INVALID',
    message: new RegExp(`type 'nouser' \\('${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}' line 4\\): key 'type\\.nouser\\.user' names user 'nosuchuser-dispatchd-test', which does not exist on this system.*217/USER`),
  });
  t.doesNotThrow(() => checkWorkerUser(declare('root')), 'an existing user');
  t.doesNotThrow(() => checkWorkerUser(declare(undefined)), 'no user: a dynamic user');
  t.doesNotThrow(() => checkWorkerUser(declare(undefined, 'per-request'), () => false), 'not persistent: no user to check');
});
