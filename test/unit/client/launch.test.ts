/**
 * /usr/bin/dispatchctl (build/daemons/client/dispatchctl.cjs, launch.ts bundled): on a Node.js with
 * module.enableCompileCache (22.1 and later) it fills the user's compile cache, on Node.js
 * 20 it runs dispatchctl without one; either way dispatchctl answers. Runs on whichever
 * Node.js runs the tests (.ci/run runs this tier on the machine's Node.js and on 24).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import module from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const LAUNCH = join(REPO, 'build', 'daemons', 'client', 'dispatchctl.cjs');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const hasCache = typeof (module as { enableCompileCache?: unknown }).enableCompileCache === 'function';

function filesUnder(dir: string): number {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
}

function run(env: NodeJS.ProcessEnv) {
  const clean = { ...process.env };
  delete clean.NODE_COMPILE_CACHE;
  delete clean.NODE_DISABLE_COMPILE_CACHE;
  return spawnSync(process.execPath, [LAUNCH, '--version'], { encoding: 'utf8', env: { ...clean, ...env }, timeout: 60_000 });
}

t.test(`dispatchctl through the launcher on Node.js ${process.version}: ${hasCache ? 'compile cache filled' : 'no compile cache, still works'}`, async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'dispatchd-launch-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const r = run({ XDG_CACHE_HOME: join(home, 'cache') });
  t.equal(r.status, 0, `exit 0 (stderr: ${r.stderr})`);
  t.equal(r.stdout.trim(), VERSION, 'dispatchctl --version answers');
  const dir = join(home, 'cache', 'dispatchd', 'node-compile-cache');
  if (hasCache) t.ok(filesUnder(dir) > 0, `the cache under $XDG_CACHE_HOME/dispatchd/node-compile-cache holds ${filesUnder(dir)} files`);
  else t.notOk(existsSync(dir), 'no cache directory made on a Node.js without module.enableCompileCache');
  const again = run({ XDG_CACHE_HOME: join(home, 'cache') });
  t.equal(again.stdout.trim(), VERSION, 'a second run (from the cache, where there is one) answers the same');
});

t.test('NODE_COMPILE_CACHE wins over the default directory', { skip: hasCache ? false : `Node.js ${process.version} has no compile cache` }, async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'dispatchd-launch-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const r = run({ XDG_CACHE_HOME: join(home, 'cache'), NODE_COMPILE_CACHE: join(home, 'own') });
  t.equal(r.status, 0, `exit 0 (stderr: ${r.stderr})`);
  t.ok(filesUnder(join(home, 'own')) > 0, 'the cache is in $NODE_COMPILE_CACHE');
  t.equal(filesUnder(join(home, 'cache')), 0, 'and not in the default directory');
});

t.test('a cache directory that cannot be created costs nothing but the cache', async (t) => {
  // $XDG_CACHE_HOME is a file: mkdir fails with ENOTDIR, as it fails with EACCES for a
  // system user whose home is not writable.
  const home = mkdtempSync(join(tmpdir(), 'dispatchd-launch-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  writeFileSync(join(home, 'file'), '');
  const r = run({ XDG_CACHE_HOME: join(home, 'file') });
  t.equal(r.status, 0, `exit 0 (stderr: ${r.stderr})`);
  t.equal(r.stdout.trim(), VERSION, 'dispatchctl --version answers');
});
