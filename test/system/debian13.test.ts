/**
 * The .deb on Debian 13 (trixie) with nothing but Debian's own packages: a minimal Debian 13
 * root debootstrapped from Debian's archive, booted with systemd-nspawn (packaging/sandbox.sh
 * over that root instead of the host's /), the package installed there with apt so that
 * nodejs, dbus and polkitd come from Debian 13; dispatchd.target must be active and
 * `dispatchctl request echo hello` answer.
 *
 * The root is made once per machine and kept in ${DISPATCHD_TEST_CACHE:-/var/cache/dispatchd-test}/debian13
 * (with Debian 13's package lists and the .debs that the package's dependencies need, so
 * that the sandbox itself needs no network); delete that directory to make it again.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import t from 'tap';
import { cannotBootReason, ensureDeb, onCleanup } from '../helpers/index.js';
import { SANDBOX_SH } from '../helpers/paths.js';

const CACHE = process.env.DISPATCHD_TEST_CACHE ?? '/var/cache/dispatchd-test';
const ROOT = join(CACHE, 'debian13');
const STAMP = join(ROOT, '.dispatchd-test-root');
const MIRROR = 'http://deb.debian.org/debian';
/** What the package will pull from Debian 13, downloaded into the root's apt cache once. */
const DEPENDENCIES = ['nodejs', 'dbus', 'polkitd', 'libsystemd0'];

interface Run {
  code: number | null;
  out: string;
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: Buffer; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

async function must(what: string, r: Promise<Run>): Promise<string> {
  const done = await r;
  if (done.code !== 0) throw new Error(`${what}: exit ${done.code}: ${done.out.slice(-3000)}`);
  return done.out;
}

/** Makes the cached Debian 13 root unless it is there already. */
async function ensureRoot(): Promise<void> {
  if (existsSync(STAMP)) return;
  const tmp = `${ROOT}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  await must('debootstrap trixie', run('debootstrap', ['--variant=minbase', '--include=systemd,systemd-sysv,dbus,ca-certificates', 'trixie', tmp, MIRROR], { timeoutMs: 1_200_000 }));
  // Package lists and the dependencies' .debs, so that apt in the sandbox works offline.
  writeFileSync(join(tmp, 'etc/apt/sources.list'), `deb ${MIRROR} trixie main\ndeb ${MIRROR} trixie-updates main\ndeb ${MIRROR}-security trixie-security main\n`);
  await must('apt-get update in the root', run('chroot', [tmp, 'apt-get', 'update', '-qq'], { timeoutMs: 600_000 }));
  await must('apt-get download of the dependencies', run('chroot', [tmp, 'apt-get', 'install', '-y', '-qq', '--download-only', '--no-install-recommends', ...DEPENDENCIES], { timeoutMs: 600_000 }));
  writeFileSync(join(tmp, '.dispatchd-test-root'), `debootstrap trixie ${MIRROR}, ${new Date().toISOString()}\n`);
  rmSync(ROOT, { recursive: true, force: true });
  renameSync(tmp, ROOT);
}

const reason = cannotBootReason() ?? (spawnSync('sh', ['-c', 'command -v debootstrap']).status === 0 ? undefined : 'no debootstrap (apt-get install debootstrap, as .ci/run does)');
if (reason) {
  t.plan(0, `skip: ${reason}`);
} else {
  const deb = await ensureDeb();
  await ensureRoot();
  const name = `dt-debian13-${process.pid}`;
  const sandbox = (args: string[], input?: Buffer) => run(SANDBOX_SH, args, { env: { DISPATCHD_SANDBOX_LOWER: ROOT }, ...(input ? { input } : {}) });
  const inside = (script: string) => sandbox(['exec', name, 'bash', '-euo', 'pipefail', '-c', script]);
  const forget = onCleanup(() => void spawnSync(SANDBOX_SH, ['stop', name], { stdio: 'ignore', timeout: 60_000 }));
  t.teardown(async () => {
    await sandbox(['stop', name]);
    forget();
  });
  await must(`boot the Debian 13 sandbox ${name}`, sandbox(['boot', name]));

  t.test('apt installs the .deb on Debian 13 with Debian 13 nodejs, dbus and polkitd; the suite serves', async (t) => {
    t.match(await must('os-release', inside('cat /etc/os-release')), /VERSION_ID="13"/, 'the sandbox runs Debian 13');
    await must('copy the .deb in', sandbox(['copy-in', name, '/root', deb]));
    const install = await inside(`DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends /root/${basename(deb)}`);
    t.equal(install.code, 0, `apt-get install ./${basename(deb)}${install.code === 0 ? '' : `: ${install.out.slice(-2000)}`}`);
    const origins = await must('apt-cache policy', inside('for p in nodejs dbus polkitd; do printf "%s %s\\n" "$p" "$(dpkg-query -W -f \'${Version}\' "$p")"; done'));
    t.comment(origins.trim().replace(/\n/g, '; '));
    t.match(origins, /^nodejs 20\.\d+\.\d+\+dfsg/m, "nodejs is Debian 13's own (20.x+dfsg)");
    const active = await inside('systemctl is-active dispatchd.target');
    t.equal(active.out.trim(), 'active', `dispatchd.target is active (${active.out.trim()})`);
    const echo = await inside('dispatchctl request echo hello');
    t.equal(echo.out, 'hello', `dispatchctl request echo hello answers (${echo.out})`);
    const versions = await must('versions', inside('echo "nodejs $(node --version), $(systemctl --version | head -n 1), dispatchd $(dpkg-query -W -f \'${Version}\' dispatchd)"'));
    t.comment(`Debian 13: ${versions.trim()}`);
  });
}
