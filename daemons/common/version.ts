/**
 * The version of dispatchd that is running: package.json's `version`, read once from the
 * installed tree (/usr/lib/dispatchd/package.json next to build/) or the source tree. A
 * package built with packaging/build-deb.sh carries the same version as the .deb.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Walks up from this file to the first package.json named dispatchd; '0.0.0' if none. */
function findVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'dispatchd' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // no package.json here: look in the parent
    }
    const up = path.dirname(dir);
    if (up === dir) return '0.0.0';
    dir = up;
  }
}

/** dispatchd's version, e.g. `0.1.0`. */
export const VERSION = findVersion();
