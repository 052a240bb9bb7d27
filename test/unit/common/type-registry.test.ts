import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { defaultConfig, parseConfig } from '../../../daemons/common/config.js';
import { checkServeLists, loadTypeRegistry, loadTypesFor, serveListOf, servedTypes, typeDefaultsOf } from '../../../daemons/common/type-registry.js';
import { parseTypesFile } from '../../../daemons/common/types-file.js';

const DEFAULTS = typeDefaultsOf(defaultConfig());
const BUILTIN_DIR = fileURLToPath(new URL('../../../packaging/types.d', import.meta.url));

function dir(t: Test, files: Record<string, string>, mode = 0o644): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'types-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) {
    fs.writeFileSync(path.join(d, name), text);
    fs.chmodSync(path.join(d, name), mode); // not narrowed by the umask
  }
  return d;
}
const mine = [process.getuid!()];

t.test('the package\'s built-in file declares echo, sha256 and sleep, idempotent, as any other type', async (t) => {
  const r = loadTypeRegistry({ dirs: [BUILTIN_DIR], defaults: DEFAULTS, trustedOwners: mine });
  t.same(r.names(), ['echo', 'sha256', 'sleep']);
  for (const ty of r.list()) {
    t.equal(ty.handler, 'builtin');
    t.equal(ty.idempotent, true, `${ty.name} is idempotent`);
    t.match(ty.source.file, /00-builtin\.toml$/);
  }
  t.equal(r.get('sha256')!.max_result_bytes, 64, 'a limit the file sets');
  t.equal(r.get('echo')!.deadline_ms, defaultConfig().secondary.request_deadline_ms, 'a limit it leaves out is [secondary]\'s');
});

t.test('a declaration gets the defaults; declared types are not idempotent unless they say so', async (t) => {
  const [upper] = parseTypesFile('[type.upper]\nhandler = "exec"\ncommand = ["/usr/bin/tr", "a-z", "A-Z"]\ndeadline_ms = 5000\n', 'u.toml', DEFAULTS);
  t.match(upper, { name: 'upper', handler: 'exec', command: ['/usr/bin/tr', 'a-z', 'A-Z'], mode: 'per-request', deadline_ms: 5000, idempotent: false, concurrency: DEFAULTS.concurrency, max_payload_bytes: DEFAULTS.max_payload_bytes, source: { file: 'u.toml', line: 1 } });
  const [greet] = parseTypesFile('\n\n[type.greet]\nhandler = "module"\nmodule = "/usr/local/lib/greet/index.mjs"\nidempotent = true\n', 'g.toml', DEFAULTS);
  t.match(greet, { handler: 'module', max_heap_mb: 128, idempotent: true, source: { line: 3 } });
  t.equal(parseTypesFile('', 'empty.toml', DEFAULTS).length, 0, 'an empty file declares nothing');
});

t.test('bad declarations are refused with file, line and key', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['[type.Upper]\nhandler = "exec"\ncommand = ["/bin/cat"]\n', /line 1: 'Upper' is not a valid type name/],
    ['[type.x]\nhandler = "exec"\ncommand = ["cat"]\n', /line 3: key 'type\.x\.command\.0': must be an absolute path/],
    ['[type.x]\nhandler = "exec"\ncommand = []\n', /key 'type\.x\.command/],
    ['[type.x]\nhandler = "exec"\n', /line 1: key 'type\.x\.command' is required for handler "exec"/],
    ['[type.x]\nhandler = "exec"\ncommand = ["/bin/cat"]\nmodule = "/a.mjs"\n', /line 4: unknown key 'type\.x\.module'/],
    ['[type.x]\nhandler = "shell"\n', /'type\.x\.handler' must be "exec", "module" or "builtin"/],
    ['[type.x]\nhandler = "module"\nmodule = "/a.mjs"\nmax_heap_mb = 1\n', /line 4: key 'type\.x\.max_heap_mb'/],
    ['[type.x]\nhandler = "exec"\ncommand = ["/bin/cat"]\nconcurrency = 0\n', /line 4: key 'type\.x\.concurrency'/],
    ['[type.x]\nhandler = "exec"\ncommand = ["/bin/cat"]\ndeadline_ms = "5s"\n', /line 4: key 'type\.x\.deadline_ms'/],
    ['[types.x]\n', /line 1: unknown table or key 'types'/],
    ['[type.x\n', /failed to parse types file 'f\.toml' line 1/],
  ];
  for (const [text, message] of bad) t.throws(() => parseTypesFile(text, 'f.toml', DEFAULTS), { code: 'CONFIG_INVALID', message }, JSON.stringify(text));
});

t.test('directories in order, files in lexical order; other files ignored; a missing directory is empty', async (t) => {
  const a = dir(t, { '20-b.toml': '[type.b]\nhandler = "builtin"\nbuiltin = "echo"\n', '10-a.toml': '[type.a]\nhandler = "builtin"\nbuiltin = "echo"\n', 'README': 'not toml', '.hidden.toml': '[type.h]\n' });
  const r = loadTypeRegistry({ dirs: ['/nonexistent/types.d', a], defaults: DEFAULTS, trustedOwners: mine });
  t.same(r.names(), ['a', 'b']);
  t.equal(r.get('nope'), undefined);
  t.same(r.only(['b']).names(), ['b']);
  t.same(r.only(['*']).names(), ['a', 'b']);
});

t.test('a type declared twice is refused naming both places', async (t) => {
  const a = dir(t, { '10-one.toml': '# one\n[type.dup]\nhandler = "builtin"\nbuiltin = "echo"\n' });
  const b = dir(t, { '50-two.toml': '[type.other]\nhandler = "builtin"\nbuiltin = "echo"\n\n[type.dup]\nhandler = "builtin"\nbuiltin = "sha256"\n' });
  t.throws(() => loadTypeRegistry({ dirs: [a, b], defaults: DEFAULTS, trustedOwners: mine }), {
    code: 'CONFIG_INVALID',
    message: new RegExp(`type 'dup' is declared twice: in '${a}/10-one.toml' line 2 and in '${b}/50-two.toml' line 5`),
  });
  t.throws(() => loadTypeRegistry({ dirs: [BUILTIN_DIR, dir(t, { 'echo.toml': '[type.echo]\nhandler = "exec"\ncommand = ["/bin/cat"]\n' })], defaults: DEFAULTS, trustedOwners: mine }), { message: /type 'echo' is declared twice: in '.*00-builtin\.toml' line \d+ and in/ }, 'a user cannot redeclare a built-in');
});

t.test('a types file that others could have written is refused, as sudo refuses sudoers.d files', async (t) => {
  const ok = '[type.a]\nhandler = "builtin"\nbuiltin = "echo"\n';
  t.throws(() => loadTypeRegistry({ dirs: [dir(t, { 'a.toml': ok }, 0o664)], defaults: DEFAULTS, trustedOwners: mine }), { code: 'CONFIG_INVALID', message: /mode 0664 lets group or others write it \(chmod go-w/ });
  t.throws(() => loadTypeRegistry({ dirs: [dir(t, { 'a.toml': ok }, 0o646)], defaults: DEFAULTS, trustedOwners: mine }), { message: /mode 0646/ });
  t.throws(() => loadTypeRegistry({ dirs: [dir(t, { 'a.toml': ok })], defaults: DEFAULTS, trustedOwners: [4242] }), { code: 'CONFIG_INVALID', message: new RegExp(`owned by uid ${process.getuid!()}, not root.*chown root:root`) });
  const d = dir(t, {});
  fs.writeFileSync(path.join(d, 'real'), ok, { mode: 0o644 });
  fs.symlinkSync(path.join(d, 'real'), path.join(d, 'link.toml'));
  t.throws(() => loadTypeRegistry({ dirs: [d], defaults: DEFAULTS, trustedOwners: mine }), { code: 'CONFIG_INVALID', message: /is a symbolic link/ });
});

t.test('[secondary] serve and [secondary.instance.N] serve pin types to secondaries; unknown names are refused', async (t) => {
  const types = dir(t, { 'heavy.toml': '[type.heavy]\nhandler = "builtin"\nbuiltin = "sha256"\n' });
  const config = parseConfig(`[types]\ndirs = ["${BUILTIN_DIR}", "${types}"]\n[secondary]\nserve = ["echo", "sha256", "sleep"]\n[secondary.instance.3]\nserve = ["heavy"]\n`, 'c.conf');
  const registry = loadTypesFor(config, mine);
  t.same(registry.names(), ['echo', 'heavy', 'sha256', 'sleep']);
  t.same(serveListOf(config, 1), ['echo', 'sha256', 'sleep']);
  t.same(servedTypes(config, 1, registry).names(), ['echo', 'sha256', 'sleep']);
  t.same(servedTypes(config, 3, registry).names(), ['heavy']);
  t.same(servedTypes(parseConfig(`[types]\ndirs = ["${BUILTIN_DIR}"]\n`, 'd.conf'), 7, registry).names(), registry.names(), 'the default serves every type');
  const unknown = parseConfig(`[secondary.instance.2]\nserve = ["nope"]\n`, 'e.conf');
  t.throws(() => checkServeLists(unknown, registry), { code: 'CONFIG_INVALID', message: /key 'secondary\.instance\.2\.serve' names type 'nope', which no types file declares/ });
  t.throws(() => parseConfig('[secondary]\nserve = ["Bad Name"]\n', 'f.conf'), { code: 'CONFIG_INVALID', message: /line 2: key 'secondary\.serve\.0'/ });
  t.throws(() => parseConfig('[secondary.instance.x]\nserve = ["echo"]\n', 'g.conf'), { code: 'CONFIG_INVALID' });
});

t.test('the fix hint of a bad persistent type names daemon-reload and start; a per-request type\'s names the reload only', async (t) => {
  const PERSISTENT = /apply with `systemctl daemon-reload && systemctl start dispatchd\.target && systemctl reload dispatchd\.target` \(a persistent type/;
  const RELOAD_ONLY = /apply with `systemctl reload dispatchd\.target`$/;
  const refused = (text: string) => {
    try {
      parseTypesFile(text, 'x.toml', DEFAULTS);
    } catch (err) {
      return (err as Error).message;
    }
    return t.fail('accepted') && '';
  };
  t.match(refused('[type.x]\nhandler = "exec"\nmode = "persistent"\nprocesesess = 2\ncommand = ["/bin/cat"]\n'), PERSISTENT, 'an unknown key in a persistent type');
  t.match(refused('[type.x]\nhandler = "exec"\nmode = "persistant"\ncommand = ["/bin/cat"]\n'), PERSISTENT, 'a misspelt mode');
  t.match(refused('[type.x]\nhandler = "exec"\nmode = "persistent"\ncommand = ["/bin/cat"\n'), PERSISTENT, 'a TOML syntax error in a file with a persistent type');
  t.match(refused('[type.x]\nhandler = "exec"\nprocesses = 2\ncommand = ["/bin/cat"]\n'), PERSISTENT, 'a worker key without the mode');
  t.match(refused('[type.x]\nhandler = "exec"\ncommand = "/bin/cat"\n'), RELOAD_ONLY, 'a per-request type');
  const a = dir(t, { 'a.toml': '[type.w]\nhandler = "exec"\nmode = "persistent"\ncommand = ["/bin/cat"]\n' });
  const b = dir(t, { 'b.toml': '[type.w]\nhandler = "exec"\ncommand = ["/bin/cat"]\n' });
  t.throws(() => loadTypeRegistry({ dirs: [a, b], defaults: DEFAULTS, trustedOwners: mine }), { message: PERSISTENT }, 'a persistent type declared twice');
});

t.test('a value of the wrong type is reported as such (what the key takes, what it got), not as a missing key', async (t) => {
  const head = '[type.x]\nhandler = "exec"\nmode = "persistent"\ncommand = ["/bin/cat"]\n';
  t.throws(() => parseTypesFile(`${head}processes = "2"\n`, 'x.toml', DEFAULTS), { code: 'CONFIG_INVALID', message: /^failed to load types file 'x\.toml' line 5: key 'type\.x\.processes' must be an integer 1…64, not a string \("2"\);/ });
  t.throws(() => parseTypesFile(`${head}idempotent = "yes"\n`, 'x.toml', DEFAULTS), { message: /line 5: key 'type\.x\.idempotent' must be a boolean \(true or false\), not a string/ });
  t.throws(() => parseTypesFile('[type.x]\nhandler = "exec"\ncommand = "/bin/cat"\n', 'x.toml', DEFAULTS), { message: /line 3: key 'type\.x\.command' must be an array, not a string/ });
  t.throws(() => parseTypesFile('[type.x]\nhandler = "exec"\n', 'x.toml', DEFAULTS), { message: /key 'type\.x\.command' is required for handler "exec"/ }, 'a key that is really missing');
});
