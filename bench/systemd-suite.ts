/**
 * dispatchd as users run it: the .deb installed under a throw-away systemd
 * (packaging/sandbox.sh: systemd-nspawn over a tmpfs overlay of /), started by the package
 * as `apt-get install` leaves it. The load generator (build/bench/*.js) is copied next to the
 * installed program, /usr/lib/dispatchd/build/bench/, so that inside the sandbox it uses the
 * installed client library and Node modules, and reaches /run/dispatchd/*.sock.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { VERSION } from '../daemons/common/version.js';
import { ROOT } from './plain-suite.js';

const SANDBOX = path.join(ROOT, 'packaging/sandbox.sh');
const INSIDE_BENCH = '/usr/lib/dispatchd/build/bench';

/** Why the systemd measurements cannot run here, or undefined when they can. */
export function cannotBoot(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (it mounts an overlay and boots systemd with systemd-nspawn): run `sudo npm run bench`';
  if (!fs.existsSync('/lib/systemd/systemd')) return 'no /lib/systemd/systemd to boot';
  if (spawnSync('sh', ['-c', 'command -v systemd-nspawn || command -v apt-get']).status !== 0) return 'no systemd-nspawn (apt-get install systemd-container)';
  if (spawnSync('sh', ['-c', 'command -v dpkg-buildpackage']).status !== 0) return 'no dpkg-buildpackage to build the .deb (apt-get install dpkg-dev debhelper)';
  return undefined;
}

/** Runs a command; resolves with its output; rejects with its output when it fails. */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd: opts.cwd ?? ROOT });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-8000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${path.basename(cmd)} ${args.slice(0, 3).join(' ')} failed (${signal ?? `exit ${code}`}): ${err.trim() || out.trim().slice(-2000)}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

function newest(p: string): number {
  if (!fs.existsSync(p)) return 0;
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let m = st.mtimeMs;
  for (const e of fs.readdirSync(p)) m = Math.max(m, newest(path.join(p, e)));
  return m;
}

/**
 * The .deb to install: `given`, or dist/dispatchd_<version>_<arch>.deb rebuilt with
 * packaging/build-deb.sh when older than the sources that go into it.
 */
export async function ensureDeb(given?: string): Promise<string> {
  if (given) {
    if (!fs.existsSync(given)) throw new Error(`--deb ${given}: no such file`);
    return path.resolve(given);
  }
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const deb = path.join(ROOT, 'dist', `dispatchd_${VERSION}_${arch}.deb`);
  // The sources, not build/: `npm run bench` recompiles first, which renews build/'s times.
  const inputs = ['daemons', 'units', 'packaging', 'package.json', 'package-lock.json'].map((p) => newest(path.join(ROOT, p)));
  if (!fs.existsSync(deb) || Math.max(...inputs) > fs.statSync(deb).mtimeMs) {
    await run(path.join(ROOT, 'packaging/build-deb.sh'), [], { timeoutMs: 900_000 });
  }
  return deb;
}

export class SystemdSuite {
  private stopped = false;

  private constructor(readonly name: string) {}

  /** Boots a sandbox, installs the .deb and the load generator. @throws Error with the failing step. */
  static async boot(deb: string): Promise<SystemdSuite> {
    const s = new SystemdSuite(`bench-${process.pid}`);
    try {
      await run(SANDBOX, ['boot', s.name], { timeoutMs: 180_000 });
      await run(SANDBOX, ['copy-in', s.name, '/root/dispatchd-deb', deb]);
      await s.exec(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '--no-install-recommends', `/root/dispatchd-deb/${path.basename(deb)}`], 300_000);
      await run(SANDBOX, ['copy-in', s.name, path.dirname(INSIDE_BENCH), path.join(ROOT, 'build/bench')]);
    } catch (err) {
      s.stopSync();
      throw err;
    }
    return s;
  }

  exec(argv: string[], timeoutMs = 600_000): Promise<string> {
    return run(SANDBOX, ['exec', this.name, ...argv], { timeoutMs });
  }

  /** Runs build/bench/worker.js inside; resolves with its JSON. */
  async worker(args: string[], timeoutMs = 600_000): Promise<unknown> {
    const out = await this.exec(['node', `${INSIDE_BENCH}/worker.js`, ...args], timeoutMs);
    return JSON.parse(out.trim().split('\n').pop()!);
  }

  /** A line on the installed versions (dispatchd, systemd). */
  async versions(): Promise<string> {
    return (await this.exec(['sh', '-c', "echo \"dispatchd $(dpkg-query -W -f '${Version}' dispatchd), $(systemctl --version | head -n 1)\""])).trim();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await run(SANDBOX, ['stop', this.name], { timeoutMs: 90_000 });
  }

  /** For exit paths: stops synchronously. */
  stopSync(): void {
    if (this.stopped) return;
    this.stopped = true;
    spawnSync(SANDBOX, ['stop', this.name], { stdio: 'ignore', timeout: 90_000 });
  }
}
