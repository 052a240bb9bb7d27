/**
 * Persistent types as declared (request-type.ts, type-registry.ts) and what the systemd
 * generator writes for them (worker-units.ts, generator.ts): one drop-in and two
 * dispatchd.target.wants/ links per worker, checked by systemd-analyze where installed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { parseTypesFile } from '../../../daemons/common/types-file.js';
import { writeGenerated } from '../../../daemons/worker/generator.js';
import type { PersistentType } from '../../../daemons/common/request-type.js';
import { generatedFiles, quoteExecArg, workerDropIn } from '../../../daemons/worker/worker-units.js';

const DEFAULTS = { deadline_ms: 30_000, max_payload_bytes: 1 << 20, max_result_bytes: 1 << 20, concurrency: 4 };

const TOML = `[type.resize]
handler = "exec"
mode = "persistent"
processes = 2
command = ["/usr/bin/python3", "/opt/resize/worker.py", "--quality=90%", "a \\"b\\" $HOME"]
user = "resizer"
memory_max_mb = 256
tasks_max = 16
restart = "on-failure"
read_write_paths = ["/var/lib/resize"]
[type.upper]
handler = "exec"
command = ["/usr/bin/tr", "a-z", "A-Z"]
`;

t.test('a persistent type: its keys with defaults; worker keys are refused without mode = "persistent"', async (t) => {
  const [resize, upper] = parseTypesFile(TOML, 'w.toml', DEFAULTS);
  t.match(resize, { name: 'resize', handler: 'exec', mode: 'persistent', worker: { processes: 2, start_timeout_ms: 5000, cancel_grace_ms: 2000, user: 'resizer', memory_max_mb: 256, tasks_max: 16, restart: 'on-failure', read_write_paths: ['/var/lib/resize'] } });
  t.match(upper, { mode: 'per-request' });
  t.throws(() => parseTypesFile('[type.x]\nhandler = "exec"\ncommand = ["/bin/cat"]\nprocesses = 2\n', 'x.toml', DEFAULTS), { code: 'CONFIG_INVALID', message: /x\.toml' line 4: key 'type\.x\.processes': is a key of mode = "persistent" only/ });
  t.throws(() => parseTypesFile('[type.x]\nhandler = "exec"\nmode = "persistent"\ncommand = ["/bin/cat"]\nprocesses = 65\n', 'x.toml', DEFAULTS), { code: 'CONFIG_INVALID', message: /processes/ });
  t.throws(() => parseTypesFile('[type.x]\nhandler = "exec"\nmode = "persistent"\ncommand = ["/bin/cat"]\nread_write_paths = ["/a b"]\n', 'x.toml', DEFAULTS), { code: 'CONFIG_INVALID', message: /read_write_paths/ });
});

t.test('ExecStart= arguments are quoted for systemd: quotes, backslashes, % and $', async (t) => {
  t.equal(quoteExecArg('/usr/bin/python3'), '"/usr/bin/python3"');
  t.equal(quoteExecArg('90%'), '"90%%"');
  t.equal(quoteExecArg('a "b" $HOME \\'), '"a \\"b\\" $$HOME \\\\"');
});

t.test('each worker: a drop-in with the command and the unit keys, and two links from dispatchd.target', async (t) => {
  const types = parseTypesFile(TOML, 'w.toml', DEFAULTS);
  const files = generatedFiles(types);
  t.same(files.map((f) => f.path), [
    'dispatchd-worker@resize-1.service.d/50-type.conf',
    'dispatchd.target.wants/dispatchd-worker@resize-1.socket',
    'dispatchd.target.wants/dispatchd-worker@resize-1.service',
    'dispatchd-worker@resize-2.service.d/50-type.conf',
    'dispatchd.target.wants/dispatchd-worker@resize-2.socket',
    'dispatchd.target.wants/dispatchd-worker@resize-2.service',
  ], 'the per-request type makes nothing');
  t.match(files[1], { symlinkTo: '/lib/systemd/system/dispatchd-worker@.socket' });
  const text = workerDropIn(types[0] as PersistentType, 2);
  for (const line of [
    'ExecStart=',
    'ExecStart="/usr/bin/python3" "/opt/resize/worker.py" "--quality=90%%" "a \\"b\\" $$HOME"',
    'Environment="DISPATCHD_TYPE=resize" "DISPATCHD_WORKER=resize-2"',
    'DynamicUser=no',
    'User=resizer',
    'MemoryMax=256M',
    'MemorySwapMax=0',
    'TasksMax=16',
    'Restart=on-failure',
    'ReadWritePaths=/var/lib/resize',
  ]) t.match(text, new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), line);
  const dynamic = workerDropIn(parseTypesFile('[type.d]\nhandler = "exec"\nmode = "persistent"\ncommand = ["/bin/cat"]\n', 'd.toml', DEFAULTS)[0] as PersistentType, 1);
  t.match(dynamic, /^DynamicUser=yes$/m, 'no user: DynamicUser=yes');
  t.notMatch(dynamic, /^(MemoryMax|TasksMax|User)=/m, 'no limits unless declared');
  t.match(dynamic, /^Restart=always$/m);
});

t.test('the generator writes them under its output directory; systemd-analyze accepts the result', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'generator-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const typesDir = path.join(root, 'types.d');
  fs.mkdirSync(typesDir);
  fs.writeFileSync(path.join(typesDir, 'w.toml'), TOML, { mode: 0o644 });
  const conf = path.join(root, 'dispatchd.conf');
  fs.writeFileSync(conf, `[types]\ndirs = ["${typesDir}"]\n`);
  const out = path.join(root, 'out');
  fs.mkdirSync(out);
  if (process.getuid?.() !== 0) {
    const bad: string[] = [];
    t.equal(writeGenerated(out, conf, (f, err) => bad.push(`${f}: ${err.code}`)), 0, 'a types file not owned by root is refused, as by the secondaries');
    t.same(bad, [`${path.join(typesDir, 'w.toml')}: CONFIG_INVALID`]);
    return;
  }
  t.equal(writeGenerated(out, conf, (f, err) => t.fail(`${f}: ${err.message}`)), 6);
  t.equal(fs.readlinkSync(path.join(out, 'dispatchd.target.wants/dispatchd-worker@resize-1.service')), '/lib/systemd/system/dispatchd-worker@.service');
  t.match(fs.readFileSync(path.join(out, 'dispatchd-worker@resize-1.service.d/50-type.conf'), 'utf8'), /^MemoryMax=256M$/m);
  const analyze = spawnSync('sh', ['-c', 'command -v systemd-analyze']).status === 0;
  if (!analyze) return;
  // The template plus the drop-in, as systemd would merge them.
  const units = path.join(root, 'units');
  fs.mkdirSync(path.join(units, 'dispatchd-worker@resize-1.service.d'), { recursive: true });
  const repo = path.join(import.meta.dirname, '..', '..', '..', 'units');
  fs.copyFileSync(path.join(repo, 'dispatchd-worker@.service'), path.join(units, 'dispatchd-worker@.service'));
  fs.copyFileSync(path.join(repo, 'dispatchd-worker@.socket'), path.join(units, 'dispatchd-worker@.socket'));
  fs.copyFileSync(path.join(out, 'dispatchd-worker@resize-1.service.d/50-type.conf'), path.join(units, 'dispatchd-worker@resize-1.service.d/50-type.conf'));
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', path.join(units, 'dispatchd-worker@resize-1.service')], { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_LEVEL: 'notice' } });
  t.notMatch(r.stderr, /ExecStart|bad unit file setting|Unknown key/, `systemd-analyze verify: ${r.stderr.trim()}`);
});

t.test('a types file that fails to load is skipped alone: the other files\' persistent types keep their units', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'generator-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const typesDir = path.join(root, 'types.d');
  fs.mkdirSync(typesDir);
  fs.writeFileSync(path.join(typesDir, 'a-bad.toml'), '[type.badkey]\nhandler = "exec"\nmode = "persistent"\nprocesesess = 2\ncommand = ["/bin/cat"]\n', { mode: 0o644 });
  fs.writeFileSync(path.join(typesDir, 'w.toml'), TOML, { mode: 0o644 });
  fs.writeFileSync(path.join(typesDir, 'z-twice.toml'), '[type.resize]\nhandler = "exec"\nmode = "persistent"\ncommand = ["/bin/cat"]\n[type.other]\nhandler = "exec"\nmode = "persistent"\ncommand = ["/bin/cat"]\n', { mode: 0o644 });
  const conf = path.join(root, 'dispatchd.conf');
  fs.writeFileSync(conf, `[types]\ndirs = ["${typesDir}"]\n`);
  const out = path.join(root, 'out');
  fs.mkdirSync(out);
  const bad: Array<{ file: string; code: string; message: string }> = [];
  const n = writeGenerated(out, conf, (file, err) => bad.push({ file, code: err.code, message: err.message }), [process.getuid!()]);
  t.equal(n, 6, 'the good file\'s two workers: a drop-in and two links each');
  t.ok(fs.existsSync(path.join(out, 'dispatchd-worker@resize-2.service.d/50-type.conf')));
  t.ok(fs.lstatSync(path.join(out, 'dispatchd.target.wants/dispatchd-worker@resize-1.service')).isSymbolicLink());
  t.notOk(fs.existsSync(path.join(out, 'dispatchd-worker@other-1.service.d')), 'a file that redeclares a type is skipped whole');
  t.match(bad, [
    { file: path.join(typesDir, 'a-bad.toml'), code: 'CONFIG_INVALID', message: /a-bad\.toml' line 4: unknown key 'type\.badkey\.procesesess'/ },
    { file: path.join(typesDir, 'z-twice.toml'), code: 'CONFIG_INVALID', message: /type 'resize' is declared twice/ },
  ]);
  t.equal(bad.length, 2);
});
