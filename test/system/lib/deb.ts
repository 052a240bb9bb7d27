/**
 * The .deb under test: built once per change of its inputs and shared by every system test
 * file, even when tap runs them in parallel (a lock directory serialises the builders; the
 * others wait, then reuse the result).
 *
 * DISPATCHD_DEB=/path/to/dispatchd_…deb tests that file instead and builds nothing.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { onCleanup } from './cleanup.js';
import { REPO } from './repo.js';

const LOCK = join(REPO, 'build', '.system-test-deb.lock');
/** What goes into the package: a newer file than the .deb means "build again". */
const INPUTS = ['build/daemons', 'units', 'packaging', 'docs', 'python/dispatchd', 'package.json', 'package-lock.json', 'README.md'];
const BUILD_TIMEOUT_MS = 10 * 60_000;

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

function debPath(): string {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
  const arch = process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : process.arch;
  return join(REPO, 'dist', `dispatchd_${pkg.version}_${arch}.deb`);
}

function isFresh(deb: string): boolean {
  if (!existsSync(deb)) return false;
  const built = statSync(deb).mtimeMs;
  return INPUTS.every((p) => newestMtime(join(REPO, p)) <= built);
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
  mkdirSync(join(REPO, 'build'), { recursive: true });
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
      if (Date.now() > deadline) throw new Error(`waited ${BUILD_TIMEOUT_MS / 1000} s for the .deb build lock ${LOCK}`);
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
  return new Promise((resolve, reject) => {
    // Its own process group, so that a clean-up can stop the whole build (dpkg-buildpackage, npm).
    const child = spawn(join(REPO, 'packaging', 'build-deb.sh'), [], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const forget = onCleanup(() => process.kill(-child.pid!, 'SIGKILL'));
    let log = '';
    child.stdout.on('data', (b: Buffer) => (log += b.toString()));
    child.stderr.on('data', (b: Buffer) => (log += b.toString()));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), BUILD_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      forget();
      if (code === 0) resolve(log);
      else reject(new Error(`packaging/build-deb.sh failed (exit ${code}):\n${log.slice(-6000)}`));
    });
  });
}

/** Path of the .deb to test; builds it (packaging/build-deb.sh) when missing or stale. */
export async function ensureDeb(): Promise<string> {
  const given = process.env.DISPATCHD_DEB;
  if (given) {
    if (!existsSync(given)) throw new Error(`DISPATCHD_DEB=${given}: no such file`);
    return given;
  }
  if (!existsSync(join(REPO, 'build', 'daemons', 'main-server', 'main.js'))) {
    throw new Error('build/daemons/main-server/main.js missing: run `npm run build` first (`npm test` does)');
  }
  const deb = debPath();
  return withLock(async () => {
    if (!isFresh(deb)) await buildDeb();
    if (!existsSync(deb)) throw new Error(`packaging/build-deb.sh did not write ${deb}`);
    return deb;
  });
}
