#!/usr/bin/node
/**
 * dispatchd's systemd generator (systemd.generator(7)), installed as
 * /usr/lib/systemd/system-generators/dispatchd-worker-generator. systemd runs it at boot and
 * at every `systemctl daemon-reload` with its output directories as arguments; it reads
 * /etc/dispatchd/dispatchd.conf and the types directories and writes, into the first
 * ("normal") directory, each persistent worker's drop-in and dispatchd.target.wants/ links
 * (worker-units.ts). A configuration or types file it cannot read makes no worker unit and
 * is reported on standard error (the journal), exit 1: the secondaries then refuse to start
 * on the same file with the line and key.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../common/config.js';
import { reason } from '../common/errors.js';
import { loadTypesFor } from '../common/type-registry.js';
import { generatedFiles } from './worker-units.js';

/** Writes the files under `dir` (which systemd empties before each run). */
export function writeGenerated(dir: string, configFile?: string): number {
  const config = loadConfig(configFile, configFile !== undefined);
  const files = generatedFiles(loadTypesFor(config).list());
  for (const f of files) {
    const p = path.join(dir, f.path);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if ('text' in f) fs.writeFileSync(p, f.text, { mode: 0o644 });
    else fs.symlinkSync(f.symlinkTo, p);
  }
  return files.length;
}

const isMain = process.argv[1] !== undefined && import.meta.url === `file://${fs.realpathSync(process.argv[1])}`;
if (isMain) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: dispatchd-worker-generator NORMAL_DIR [EARLY_DIR LATE_DIR] (systemd.generator(7))\n');
    process.exit(64);
  }
  try {
    writeGenerated(dir);
  } catch (err) {
    process.stderr.write(`dispatchd-worker-generator: made no worker unit: ${reason(err)}\n`);
    process.exit(1);
  }
}
