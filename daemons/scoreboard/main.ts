#!/usr/bin/node
/**
 * dispatchd-scoreboard create|remove: run by dispatchd-scoreboard.service at the start and
 * the end of the suite, so the segment's lifetime is the suite's, owned by systemd.
 * `create` keeps a valid existing scoreboard and replaces one of another layout (an upgrade);
 * `create` also writes a fresh lease key beside it (lease-key.ts), so leases minted before the
 * suite restarted are refused after it; `remove` deletes the scoreboard, the key and the
 * secondaries' served-types files beside it. Exit codes: 0, 64 usage, 78 bad configuration, 1 failure.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG_PATH } from '../common/config-path.js';
import { loadPaths } from '../common/paths-section.js';
import { DispatchError, reason } from '../common/errors.js';
import { EXIT, exitCodeFor } from '../common/exit-codes.js';
import { stderrIsJournal } from '../common/journal-stream.js';
import { createLeaseKey, removeLeaseKey } from '../common/lease-key.js';
import { createScoreboard, removeScoreboard } from '../common/scoreboard-file.js';
import { leaseKeyPath } from '../common/topology.js';

// This runs before every daemon of the suite can start (they are ordered after it), so it
// loads no more than it needs: node:util's parseArgs, not yargs; the [paths] section alone
// (paths-section.ts), not the whole schema (zod); served-types.ts only to remove.
const USAGE = `usage: dispatchd-scoreboard create|remove [--config FILE]

  create    create the scoreboard (keeps a valid one)
  remove    remove the scoreboard
  --config  configuration file (TOML), default ${DEFAULT_CONFIG_PATH}
`;

let argv: { command: 'create' | 'remove'; config: string };
try {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { config: { type: 'string', default: DEFAULT_CONFIG_PATH }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(EXIT.OK);
  }
  const [command, ...extra] = positionals;
  if (command !== 'create' && command !== 'remove') throw new Error(command === undefined ? 'missing command: create or remove' : `unknown command '${command}': create or remove`);
  if (extra.length) throw new Error(`unexpected argument '${extra[0]}'`);
  argv = { command, config: values.config! };
} catch (err) {
  process.stderr.write(`dispatchd-scoreboard: ${reason(err)}\n${USAGE}`);
  process.exit(EXIT.USAGE);
}

const journal = stderrIsJournal();
try {
  const { paths, problem } = loadPaths(argv.config, argv.config !== DEFAULT_CONFIG_PATH);
  if (problem) {
    // <4> is the journal's priority prefix (warning), shown only when stderr is the journal.
    process.stderr.write(`${journal ? '<4>' : ''}dispatchd-scoreboard: ${problem}; using scoreboard '${paths.scoreboard}' (the daemons refuse to start until the file is fixed)\n`);
  }
  const file = paths.scoreboard;
  if (argv.command === 'create') {
    const created = createScoreboard(file, { replaceInvalid: true });
    createLeaseKey(leaseKeyPath(file));
    process.stdout.write(`${created ? `created scoreboard ${file}` : `kept the existing scoreboard ${file}`} and made a fresh lease key\n`);
  } else {
    removeScoreboard(file);
    (await import('../common/served-types.js')).removeServedTypes(file);
    removeLeaseKey(leaseKeyPath(file));
    process.stdout.write(`removed scoreboard ${file}, the lease key and the served-types files beside it\n`);
  }
} catch (err) {
  // <3> is the journal's priority prefix (err), shown only when stderr is the journal.
  process.stderr.write(`${journal ? '<3>' : ''}dispatchd-scoreboard: ${reason(err)}\n`);
  process.exit(err instanceof DispatchError ? exitCodeFor(err.code) : EXIT.FAILURE);
}
