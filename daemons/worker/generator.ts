#!/usr/bin/node
/**
 * dispatchd's systemd generator (systemd.generator(7)), installed as
 * /usr/lib/systemd/system-generators/dispatchd-worker-generator. systemd runs it at boot and
 * at every `systemctl daemon-reload` with its output directories as arguments; it reads
 * /etc/dispatchd/dispatchd.conf and the types directories and writes, into the first
 * ("normal") directory, each persistent worker's drop-in and dispatchd.target.wants/ links
 * (worker-units.ts). A types file it cannot read (or that declares a type an earlier file
 * declares) is skipped: its types get no worker unit, the other files' types keep theirs, and
 * the file is named on standard error (the journal) with its line and key, exit 1 (systemd
 * logs "failed with exit status 1" and uses what was written). A configuration file it cannot
 * read makes no worker unit at all (it names the types directories), also exit 1. The
 * secondaries refuse a reload on the same file with the line and key.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../common/config.js';
import { reason, type DispatchError } from '../common/errors.js';
import { loadTypesFor } from '../common/type-registry.js';
import { generatedFiles } from './worker-units.js';

/**
 * Writes the files under `dir` (which systemd empties before each run) for the types of every
 * types file that loads; each one that does not is skipped and passed to `onBadFile`.
 * @returns how many files (drop-ins and links) were written.
 * @throws DispatchError CONFIG_INVALID, CONFIG_UNREADABLE when the configuration file cannot be read.
 */
export function writeGenerated(dir: string, configFile: string | undefined, onBadFile: (file: string, err: DispatchError) => void, trustedOwners?: readonly number[]): number {
  const config = loadConfig(configFile, configFile !== undefined);
  const files = generatedFiles(loadTypesFor(config, trustedOwners, onBadFile).list());
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
  let bad = 0;
  try {
    writeGenerated(dir, undefined, (file, err) => {
      bad++;
      process.stderr.write(`dispatchd-worker-generator: skipped '${file}': its types get no worker unit (the other files' types keep theirs): ${reason(err)}\n`);
    });
  } catch (err) {
    process.stderr.write(`dispatchd-worker-generator: made no worker unit: ${reason(err)}\n`);
    process.exit(1);
  }
  if (bad > 0) process.exit(1);
}
