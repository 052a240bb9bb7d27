/**
 * dispatchd-scoreboard (the keeper run by dispatchd-scoreboard.service before every daemon):
 * `create` makes the scoreboard named by the configuration's [paths] and loads neither the
 * configuration's schema (zod) nor anything else it does not need, as it is on the path of
 * every cold start; `remove` deletes it.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { BUILD_DAEMONS } from '../helpers/index.js';

const KEEPER = path.join(BUILD_DAEMONS, 'scoreboard/main.js');

/** Runs the keeper with a resolve hook (module.register) logging every module it loads. */
function keeper(dir: string, args: string[]): { code: number | null; stdout: string; stderr: string; modules: string[] } {
  const log = path.join(dir, 'modules.log');
  fs.rmSync(log, { force: true });
  fs.writeFileSync(path.join(dir, 'hooks.mjs'), "import fs from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); fs.appendFileSync(process.env.MODULE_LOG, r.url + '\\n'); return r; }\n");
  fs.writeFileSync(path.join(dir, 'register.mjs'), "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n");
  const r = spawnSync(process.execPath, ['--import', path.join(dir, 'register.mjs'), KEEPER, ...args], { encoding: 'utf8', env: { ...process.env, MODULE_LOG: log } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, modules: fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : [] };
}

t.test('create makes the scoreboard of [paths] without loading zod; remove deletes it', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-keeper-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const scoreboard = path.join(dir, 'scoreboard');
  const config = path.join(dir, 'dispatchd.conf');
  // Another section is wrong: the daemons refuse it; the keeper still makes the scoreboard.
  fs.writeFileSync(config, `[paths]\nscoreboard = ${JSON.stringify(scoreboard)}\n[main]\nqueue_max = -1\n`);
  const created = keeper(dir, ['create', '--config', config]);
  t.equal(created.code, 0, `exit 0 (stderr: ${created.stderr})`);
  t.equal(created.stdout, `created scoreboard ${scoreboard} and made a fresh lease key\n`);
  t.equal(created.stderr, '', 'no warning: other sections are for the daemons to refuse');
  t.ok(fs.statSync(scoreboard).size > 0, 'the scoreboard exists');
  t.ok(created.modules.some((m) => m.endsWith('/common/scoreboard-file.js')), 'the hook saw the keeper load');
  t.strictSame(created.modules.filter((m) => /\/node_modules\/zod\/|\/common\/(config|served-types)\.js$/.test(m)), [], 'no zod, config.ts or served-types.ts');
  const kept = keeper(dir, ['create', '--config', config]);
  t.equal(kept.stdout, `kept the existing scoreboard ${scoreboard} and made a fresh lease key\n`, 'a second create keeps it');
  const removed = keeper(dir, ['remove', '--config', config]);
  t.equal(removed.code, 0, `exit 0 (stderr: ${removed.stderr})`);
  t.notOk(fs.existsSync(scoreboard), 'remove deletes it');
});
