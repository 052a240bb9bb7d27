/**
 * The .deb under test: built by packaging/build-deb.sh once per change of what goes into it,
 * and shared by every system test file and `npm run bench`, even when they run in parallel
 * (a lock directory serialises the builders; the others wait, then reuse the result).
 *
 * Fresh means: the SHA-256 over the paths and contents of every input (INPUTS) equals the
 * one recorded next to the .deb when it was built. Times are not used: `npm run build`
 * rewrites build/ whatever changed, and a copy or checkout can make a stale .deb look newer.
 *
 * DISPATCHD_DEB=/path/to/dispatchd_…deb (or `ensureDeb(path)`) uses that file and builds nothing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { onCleanup } from './cleanup.js';
import { describe } from './command.js';
import { ROOT } from './paths.js';
import type { Sandbox } from './sandbox.js';

const LOCK = join(ROOT, 'build', '.deb-build.lock');
/** What goes into the package (packaging/build-deb.sh copies these): any change means "build again". */
export const INPUTS = ['build/daemons', 'units', 'packaging', 'docs', 'python/dispatchd', 'package.json', 'package-lock.json', 'README.md'] as const;
const BUILD_TIMEOUT_MS = 10 * 60_000;
/** Where the package goes inside a sandbox. */
export const DEB_DIR = '/root/dispatchd-deb';

/** Why this machine cannot build the .deb, or undefined when it can. */
export function cannotBuildDebReason(): string | undefined {
  if (spawnSync('sh', ['-c', 'command -v dpkg-buildpackage']).status !== 0) return 'no dpkg-buildpackage to build the .deb (apt-get install dpkg-dev debhelper)';
  return undefined;
}

/** The SHA-256 of every input file's path and contents, in a stable order. */
function inputsDigest(): string {
  const h = createHash('sha256');
  const add = (rel: string): void => {
    const abs = join(ROOT, rel);
    if (!existsSync(abs)) return;
    if (statSync(abs).isDirectory()) {
      for (const e of readdirSync(abs).sort()) add(join(rel, e));
      return;
    }
    h.update(`${rel}\0`);
    h.update(readFileSync(abs));
    h.update('\0');
  };
  for (const p of INPUTS) add(p);
  return h.digest('hex');
}

function debPath(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return join(ROOT, 'dist', `dispatchd_${pkg.version}_${arch}.deb`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(join(ROOT, 'build'), { recursive: true });
  const deadline = Date.now() + BUILD_TIMEOUT_MS;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A holder that died leaves its lock: take it over.
      let holder = NaN;
      try {
        holder = Number(readFileSync(join(LOCK, 'pid'), 'utf8'));
      } catch {
        // being created or removed right now
      }
      if (Number.isInteger(holder) && !pidAlive(holder)) rmSync(LOCK, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`waited ${BUILD_TIMEOUT_MS / 1000} s for the .deb build lock ${LOCK}; remove it if no build runs`);
      await sleep(250);
    }
  }
  const release = () => rmSync(LOCK, { recursive: true, force: true });
  const forget = onCleanup(release);
  try {
    return await fn();
  } finally {
    forget();
    release();
  }
}

function buildDeb(): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    // Its own process group, so that a clean-up can stop the whole build (dpkg-buildpackage, npm).
    const child = spawn(join(ROOT, 'packaging', 'build-deb.sh'), [], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const forget = onCleanup(() => process.kill(-child.pid!, 'SIGKILL'));
    let log = '';
    child.stdout.on('data', (b: Buffer) => (log += b.toString()));
    child.stderr.on('data', (b: Buffer) => (log += b.toString()));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), BUILD_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      forget();
      if (code === 0) resolvePromise(log);
      else reject(new Error(`packaging/build-deb.sh failed (exit ${code}):\n${log.slice(-6000)}`));
    });
  });
}

/**
 * Path of the .deb to test: `given`, else $DISPATCHD_DEB, else dist/dispatchd_<version>_<arch>.deb,
 * built (packaging/build-deb.sh) when missing or made from other inputs.
 * @throws Error when a given file is missing, build/ is not built, or the build fails.
 */
export async function ensureDeb(given = process.env.DISPATCHD_DEB): Promise<string> {
  if (given) {
    if (!existsSync(given)) throw new Error(`${given}: no such .deb (from --deb or DISPATCHD_DEB)`);
    return resolve(given);
  }
  if (!existsSync(join(ROOT, 'build', 'daemons', 'main-server', 'main.js'))) {
    throw new Error('build/daemons/main-server/main.js missing: run `npm run build` first (`npm test` does)');
  }
  const deb = debPath();
  const stamp = `${deb}.inputs-sha256`;
  return withLock(async () => {
    const digest = inputsDigest();
    const fresh = existsSync(deb) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === digest;
    if (!fresh) {
      rmSync(stamp, { force: true });
      await buildDeb();
      if (!existsSync(deb)) throw new Error(`packaging/build-deb.sh did not write ${deb}`);
      writeFileSync(stamp, `${digest}\n`);
    }
    return deb;
  });
}

/** Copies the .deb into the sandbox and `apt-get install`s it, as the contract's operator does. Returns its path inside. */
export async function installDeb(sb: Sandbox, deb: string): Promise<string> {
  await sb.copyIn(DEB_DIR, deb);
  const inside = `${DEB_DIR}/${deb.split('/').pop()!}`;
  await install(sb, inside);
  return inside;
}

/** `apt-get install ./the.deb` inside the sandbox (the file already there). @throws Error with apt's output. */
export async function install(sb: Sandbox, debInside: string): Promise<void> {
  const r = await sb.exec(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '--no-install-recommends', debInside], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(describe(`apt-get install ${debInside}`, r));
}
