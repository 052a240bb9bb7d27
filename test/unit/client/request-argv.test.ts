/**
 * dispatchctl's fast path (request-argv.ts) reads `dispatchctl request` exactly as yargs
 * does (dispatchctl-cli.ts), and leaves to yargs every command line it cannot read so: a
 * user sees the same request sent, the same help and the same usage errors either way.
 */
import t from 'tap';
import { DEFAULT_SOCKET } from '../../../daemons/client/client.js';
import { runCli } from '../../../daemons/client/dispatchctl-cli.js';
import { parseRequestArgv } from '../../../daemons/client/request-argv.js';
import type { RequestCommand } from '../../../daemons/client/request-command.js';

/** What yargs hands the request command for `args`. */
async function viaYargs(args: string[]): Promise<RequestCommand | undefined> {
  let got: RequestCommand | undefined;
  await runCli(args, { request: async (a) => void (got = a) });
  return got;
}

t.test('the common forms of request are taken by the fast path, read as yargs reads them', async (t) => {
  const taken: string[][] = [
    ['request', 'echo', 'x'],
    ['request', 'echo'],
    ['request', 'sleep', '10'],
    ['request', '123', '456'],
    ['request', 'echo', 'hello world'],
    ['request', 'echo', 'a=b'],
    ['request', 'echo', 'x', '--socket', '/tmp/main.sock'],
    ['--socket', '/tmp/main.sock', 'request', 'echo', 'x'],
    ['--socket=/tmp/main.sock', 'request', 'echo', 'x'],
    ['request', 'echo', 'x', '--timeout', '2000'],
    ['request', 'echo', 'x', '--timeout=86400000'],
    ['request', 'echo', 'x', '--timeout', '1', '--deadline', '3600000'],
    ['request', 'echo', '--deadline=5', 'x'],
    ['request', 'echo', 'x', '-v'],
    ['request', 'echo', 'x', '--verbose'],
    ['request', 'echo', '--config', '/etc/x.conf'],
    ['request', 'echo', 'x', '--socket', '/s', '--timeout', '5', '--deadline', '4', '--config', '/c', '-v'],
    ['request', '-v', 'echo', 'x'],
    ['request', '--timeout', '7', 'echo'],
    ['request', 'echo', '-'],
    ['request', 'echo', '-', '--config', '/etc/x.conf', '-v'],
  ];
  for (const args of taken) {
    const fast = parseRequestArgv(args);
    t.ok(fast, `fast path takes: ${args.join(' ')}`);
    t.strictSame(fast, await viaYargs(args), `same request as yargs reads: ${args.join(' ')}`);
  }
  t.equal(parseRequestArgv(['request', 'echo', 'x'])!.socket, DEFAULT_SOCKET, 'the default socket');
});

t.test('every other command line is left to yargs', async (t) => {
  const left: string[][] = [
    [],
    ['--version'],
    ['--help'],
    ['-h'],
    ['request', '--help'],
    ['request'],
    ['request', 'echo', 'x', 'y'],
    ['request', '-', 'x'],
    ['request', '-'],
    ['-', 'echo', 'x'],
    ['request', 'echo', 'x', '-'],
    ['request', 'echo', '--', '-n'],
    ['request', 'echo', '-5'],
    ['request', '', 'x'],
    ['request', 'echo', 'x', '--timeout', 'abc'],
    ['request', 'echo', 'x', '--timeout', '0'],
    ['request', 'echo', 'x', '--timeout', '010'],
    ['request', 'echo', 'x', '--timeout', '1e3'],
    ['request', 'echo', 'x', '--timeout', '1.5'],
    ['request', 'echo', 'x', '--timeout', '86400001'],
    ['request', 'echo', 'x', '--deadline', '3600001'],
    ['request', 'echo', 'x', '--timeout', '1', '--timeout', '2'],
    ['request', 'echo', 'x', '--timeout'],
    ['request', 'echo', 'x', '--socket', '--timeout', '5'],
    ['request', 'echo', 'x', '--socket='],
    ['request', 'echo', 'x', '-v', '-v'],
    ['request', 'echo', 'x', '-v', 'false'],
    ['request', 'echo', '-v', 'true'],
    ['request', 'echo', 'x', '-vv'],
    ['request', 'echo', 'x', '-vx'],
    ['request', 'echo', 'x', '--socket=-x'],
    ['request', 'echo', 'x', '--socket', '-'],
    ['request', 'echo', 'x', '--verbose=true'],
    ['request', 'echo', 'x', '--no-verbose'],
    ['request', 'echo', 'x', '--bogus'],
    ['request', 'echo', 'x', '-x'],
    ['status'],
    ['status', '--json'],
    ['scale', '3'],
    ['types'],
    ['check-config'],
    ['completion'],
    ['--get-yargs-completions', 'request', ''],
    ['echo', 'request', 'x'],
    // request's own options before the command name: yargs refuses them (usage error)
    ['-v', 'request', 'echo', 'x'],
    ['--config', '/etc/x.conf', 'request', 'echo'],
    ['--timeout', '5', 'request', 'echo', 'x'],
  ];
  for (const args of left) t.equal(parseRequestArgv(args), undefined, `left to yargs: ${JSON.stringify(args)}`);
});
