#!/usr/bin/node
/**
 * /usr/bin/dispatchctl. `npm run build` bundles this module, dispatchctl.ts and everything
 * `dispatchctl request` loads into one CommonJS file, build/daemons/client/dispatchctl.cjs
 * (esbuild; the `build:cli` script), which is what the package installs as the command: a
 * request then starts by compiling one ~50 kB script, where the ES modules took ~20 module
 * resolutions and loads (Node.js 20, plain suite: 58 ms before the bundle, 40 ms with it,
 * `node -e 0` 24–26 ms; docs/BENCHMARKS.md "Command line"). Every other command,
 * `--version`, and the reader of the configuration's `max_payload_bytes` (`request` with
 * DATA on standard input) stay ES modules beside the bundle (dispatchctl-cli.ts, version.ts,
 * payload-limit.ts), loaded with import() when used. No module is both in the bundle and
 * loaded beside it except the small shared ones (errors.ts and its like), and nothing but
 * strings, numbers and DispatchErrors (errors.ts: recognised across copies) passes between
 * the two.
 *
 * This module turns on Node.js's on-disk compile cache where the running Node.js has one
 * (module.enableCompileCache(), Node.js 22.1 and later), then loads dispatchctl. The cache
 * keeps V8's compiled code of what is loaded after it (the ES modules above and their
 * libraries: yargs, zod, smol-toml, prom-client, ...) between runs, so a command starts
 * without compiling them again. On Node.js 20 this does nothing and dispatchctl runs as before.
 * Run unbundled (build/daemons/client/launch.js), dispatchctl's modules must be compiled
 * after the cache is on, so they are loaded with a dynamic import.
 *
 * The cache directory: NODE_COMPILE_CACHE when set (Node.js's own variable), else
 * $XDG_CACHE_HOME/dispatchd/node-compile-cache or ~/.cache/dispatchd/node-compile-cache,
 * the user's own (never a shared directory such as /tmp). A directory that cannot be
 * created or written (a system user without a home) only means no cache; Node.js checks
 * each entry against the source it was compiled from. NODE_DISABLE_COMPILE_CACHE=1 turns
 * it off.
 *
 * Where that is in practice: a user's `dispatchctl` caches in ~/.cache/dispatchd/
 * node-compile-cache (root's, /root/.cache/..., under sudo, which sets HOME to the target
 * user's). Under systemd nothing goes through this launcher: the units' ExecReload= run
 * `node .../dispatchctl.js check-config` directly, as user dispatchd, whose home is / (not
 * writable), so they run without a cache, as on Node.js 20; a reload is rare enough that
 * a cache directory (CacheDirectory=) for it would not pay.
 */
import module from 'node:module';
import os from 'node:os';
import path from 'node:path';

/** The compile cache directory for this user (see above). */
function compileCacheDir(env: NodeJS.ProcessEnv, home: string): string {
  if (env.NODE_COMPILE_CACHE) return env.NODE_COMPILE_CACHE;
  const cache = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(home, '.cache');
  return path.join(cache, 'dispatchd', 'node-compile-cache');
}

// @types/node follows the oldest supported line (20), which has no enableCompileCache.
const enableCompileCache = (module as { enableCompileCache?: (dir?: string) => unknown }).enableCompileCache;
if (typeof enableCompileCache === 'function') {
  try {
    enableCompileCache(compileCacheDir(process.env, os.homedir()));
  } catch {
    // no cache: dispatchctl works the same, only its start is slower
  }
}

// Not awaited: the bundle is CommonJS, which has no top-level await.
void import('./dispatchctl.js');
