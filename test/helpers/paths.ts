/**
 * Where things are, whether a helper runs as TypeScript under tap (test/helpers/*.ts) or
 * compiled (build/test/helpers/*.js): the repository root is the nearest directory above
 * with dispatchd's package.json.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'dispatchd') return dir;
    if (path.dirname(dir) === dir) throw new Error(`failed to find the dispatchd repository above '${from}'`);
  }
}

/** The repository's root directory. */
export const ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));
/** The compiled daemons the process suite runs (`npm run build`). */
export const BUILD_DAEMONS = path.join(ROOT, 'build/daemons');
/** dispatchctl as /usr/bin/dispatchctl is: the bundle `npm run build` makes (daemons/client/launch.ts). */
export const DISPATCHCTL = path.join(BUILD_DAEMONS, 'client/dispatchctl.cjs');
/** The compiled test tools (fuzz, chaos) copied into a sandbox to run next to the installed suite. */
export const BUILD_TEST = path.join(ROOT, 'build/test');
/** Socket activation imitated: binds the listening socket as fd 3 and execs the daemon. */
export const ACTIVATE_PY = path.join(ROOT, 'test/helpers/activate.py');
/** The NOTIFY_SOCKET listener (sd_notify(3) messages as JSON lines). */
export const NOTIFY_LISTEN_PY = path.join(ROOT, 'test/helpers/notify-listen.py');
/** The throw-away systemd (systemd-nspawn over a tmpfs overlay of /). */
export const SANDBOX_SH = path.join(ROOT, 'packaging/sandbox.sh');

/** The package's built-in request types, as the repository has them (/usr/share/dispatchd/types.d when installed). */
export const BUILTIN_TYPES_DIR = path.join(ROOT, 'packaging/types.d');
