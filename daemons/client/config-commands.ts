/**
 * `dispatchctl types` and `dispatchctl check-config`, and the type names that completion
 * offers: the commands that read the configuration and the request types. Loaded only when
 * one of them runs.
 */
import fs from 'node:fs';
import { DEFAULT_CONFIG_PATH, loadConfig } from '../common/config.js';
import { missingConfigIsError } from '../common/config-path.js';
import { ScoreboardReader } from '../common/scoreboard-reader.js';
import { liveServedTypes, type ServedTypesFile } from '../common/served-types.js';
import { loadTypesFor, type TypeRegistry } from '../common/type-registry.js';
import { checkTypes, unservedTypes } from './check-types.js';
import { fail, writeStdout } from './cli-output.js';
import { pidExists } from './read-status.js';
import { formatTypesTable, typesReport } from './types-report.js';

/** The declared type names, for completion (read only then: not on every start); none when the configuration cannot be read. */
export function typeNames(): string[] {
  try {
    return loadTypesFor(loadConfig(DEFAULT_CONFIG_PATH)).names();
  } catch {
    return [];
  }
}

/** What every running secondary publishes about the types it serves (none when the suite is not running). */
function servedTypes(scoreboard: string): ServedTypesFile[] {
  try {
    const reader = new ScoreboardReader(scoreboard);
    try {
      return liveServedTypes(scoreboard, reader.read().slots, pidExists);
    } finally {
      reader.close();
    }
  } catch {
    return [];
  }
}

/** Runs `dispatchctl types [--json] [--config FILE]`. */
export async function runTypes(a: { json: boolean; config: string | undefined }): Promise<void> {
  let registry: TypeRegistry;
  let scoreboard: string;
  try {
    const config = loadConfig(a.config ?? DEFAULT_CONFIG_PATH, missingConfigIsError(a.config));
    registry = loadTypesFor(config);
    scoreboard = config.paths.scoreboard;
  } catch (err) {
    fail('failed to read the request types', err);
  }
  const rows = typesReport(registry, servedTypes(scoreboard));
  await writeStdout(Buffer.from(a.json ? JSON.stringify({ types: rows }, null, 2) + '\n' : formatTypesTable(rows)));
}

/** Runs `dispatchctl check-config [FILE]`: exit 78 (cli-output.ts fail) when something is invalid. */
export async function runCheckConfig(a: { file: string | undefined }): Promise<void> {
  const file = a.file ?? DEFAULT_CONFIG_PATH;
  const required = missingConfigIsError(file);
  // A missing optional file is the defaults (loadConfig); the message says it was absent.
  const absent = !required && !fs.existsSync(file);
  let types: TypeRegistry;
  let unserved: string[];
  try {
    const config = loadConfig(file, required);
    types = await checkTypes(config);
    unserved = unservedTypes(config, types);
  } catch (err) {
    fail('configuration refused', err);
  }
  for (const name of unserved) process.stderr.write(`dispatchctl: warning: type '${name}' is declared but no serve list names it ([secondary] serve, [secondary.instance.N] serve): no secondary will run it\n`);
  const what = absent ? `configuration '${file}' is absent: the defaults apply, and are valid` : `configuration '${file}' is valid`;
  await writeStdout(Buffer.from(`dispatchctl: ${what} (${types.size} request types: ${types.names().join(', ') || 'none'})\n`));
}
