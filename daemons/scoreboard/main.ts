#!/usr/bin/node
/**
 * dispatchd-scoreboard create|remove: run by dispatchd-scoreboard.service at the start and
 * the end of the suite, so the segment's lifetime is the suite's, owned by systemd.
 * `create` keeps a valid existing scoreboard and replaces one of another layout (an upgrade);
 * `remove` deletes it. Exit codes: 0, 64 usage, 78 bad configuration, 1 failure.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DEFAULT_CONFIG_PATH, loadPaths } from '../common/config.js';
import { DispatchError, reason } from '../common/errors.js';
import { EXIT, exitCodeFor } from '../common/exit-codes.js';
import { stderrIsJournal } from '../common/logger.js';
import { createScoreboard, removeScoreboard } from '../common/scoreboard.js';

const argv = await yargs(hideBin(process.argv))
  .scriptName('dispatchd-scoreboard')
  .command('create', 'create the scoreboard (keeps a valid one)')
  .command('remove', 'remove the scoreboard')
  .demandCommand(1, 1)
  .option('config', { type: 'string', default: DEFAULT_CONFIG_PATH, describe: 'configuration file (TOML)' })
  .strict()
  .version(false)
  .fail((msg, err) => {
    process.stderr.write(`dispatchd-scoreboard: ${msg ?? reason(err)}\n`);
    process.exit(EXIT.USAGE);
  })
  .parseAsync();

const journal = stderrIsJournal();
try {
  const { paths, problem } = loadPaths(argv.config, argv.config !== DEFAULT_CONFIG_PATH);
  if (problem) {
    // <4> is the journal's priority prefix (warning), shown only when stderr is the journal.
    process.stderr.write(`${journal ? '<4>' : ''}dispatchd-scoreboard: ${problem}; using scoreboard '${paths.scoreboard}' (the daemons refuse to start until the file is fixed)\n`);
  }
  const file = paths.scoreboard;
  if (argv._[0] === 'create') {
    const created = createScoreboard(file, { replaceInvalid: true });
    process.stdout.write(created ? `created scoreboard ${file}\n` : `kept the existing scoreboard ${file}\n`);
  } else {
    removeScoreboard(file);
    process.stdout.write(`removed scoreboard ${file}\n`);
  }
} catch (err) {
  // <3> is the journal's priority prefix (err), shown only when stderr is the journal.
  process.stderr.write(`${journal ? '<3>' : ''}dispatchd-scoreboard: ${reason(err)}\n`);
  process.exit(err instanceof DispatchError ? exitCodeFor(err.code) : EXIT.FAILURE);
}
