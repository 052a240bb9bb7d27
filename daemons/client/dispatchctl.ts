#!/usr/bin/node
/**
 * dispatchctl: send requests to dispatchd and show its scoreboard. See dispatchctl(1).
 *
 *   dispatchctl [--socket PATH] request TYPE [DATA]   DATA from the argument, or stdin if '-' or absent
 *   dispatchctl status [--json | --format table|json|openmetrics] [--watch [--interval MS] [--count N]]
 *   dispatchctl scale [N]                             show, or set, the number of secondary servers
 *   dispatchctl types [--json]                        every request type, its limits and who serves it
 *   dispatchctl check-config [FILE]                   validate the configuration file and the types
 *   dispatchctl completion                            print the bash completion script
 *
 * Errors: one line on stderr, and the exit code of README "Exit codes".
 *
 * Each command loads only what it needs. `dispatchctl request` in its common forms, and
 * `dispatchctl --version`, are answered without loading yargs (request-argv.ts); every other
 * command line goes to yargs (dispatchctl-cli.ts), which loads the command's module when it
 * runs. /usr/bin/dispatchctl runs this module from a bundle with the request path
 * (dispatchctl.cjs, see launch.ts); the units' ExecReload= run it as is.
 */

import { writeStdout } from './cli-output.js';

/**
 * Runs the command line `args` (process.argv without node and the script). `request` and
 * `--version` write standard output with writeStdout (cli-output.ts), never creating
 * `process.stdout`; the other commands guard it in runCli.
 */
async function main(args: readonly string[]): Promise<void> {
  // --version first: it needs neither the argument parser nor the client library.
  const request = args.length === 1 && args[0] === '--version' ? undefined : (await import('./request-argv.js')).parseRequestArgv(args);
  if (request) {
    await (await import('./request-command.js')).runRequest(request);
  } else if (args.length === 1 && args[0] === '--version') {
    // As yargs's .version(): the version and a newline.
    await writeStdout(Buffer.from(`${(await import('../common/version.js')).VERSION}\n`));
  } else {
    await (await import('./dispatchctl-cli.js')).runCli(args);
  }
}

// Not awaited: bundled into CommonJS (launch.ts), which has no top-level await.
void main(process.argv.slice(2));
