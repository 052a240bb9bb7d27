/**
 * `dispatchctl request TYPE [DATA]`: sends one request and writes the result's bytes to
 * standard output. Loaded by itself for the command line's fast path (request-argv.ts), so
 * it imports only what a request needs: the client library, and the configuration's
 * `max_payload_bytes` (payload-limit.ts) only when DATA comes from standard input.
 */
import fs from 'node:fs';
import { DEFAULT_CONFIG_PATH } from '../common/config-path.js';
import { DispatchError } from '../common/errors.js';
import { MAX_BODY_BYTES_CEILING } from '../common/frame.js';
import { formatDaemonId, isSecondaryInstance, secondary } from '../common/topology.js';
import { fail, writeStdout } from './cli-output.js';
import { DispatchClient } from './client.js';

/** A parsed `dispatchctl request` command line. */
export interface RequestCommand {
  /** The main server's socket. */
  socket: string;
  type: string;
  /** DATA as given; undefined: read standard input. */
  data: string | undefined;
  /** Total time budget, retries included (ms). */
  timeout: number;
  /** Deadline for running the request on the secondary (ms); undefined: the server's. */
  deadline: number | undefined;
  /** --config: the configuration whose max_payload_bytes caps standard input. */
  config: string | undefined;
  verbose: boolean;
}

/**
 * Reads standard input whole, but stops at the first byte past `maxBytes` (bytes): a 1 GiB
 * pipe into a server that takes 64 MiB is refused at once, not after buffering all of it.
 *
 * @throws DispatchError PAYLOAD_TOO_LARGE past `maxBytes`; the stream's error otherwise.
 */
function readStdin(maxBytes: number, limitSource: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        process.stdin.off('data', onData);
        process.stdin.destroy();
        reject(new DispatchError('PAYLOAD_TOO_LARGE', `standard input is over the ${maxBytes}-byte request limit (${limitSource})`, { fields: { max_bytes: maxBytes } }));
        return;
      }
      chunks.push(c);
    };
    process.stdin.on('data', onData);
    process.stdin.on('end', () => resolve(Buffer.concat(chunks, size)));
    process.stdin.on('error', reject);
  });
}

/**
 * The most a request may carry, from the configuration's `[secondary] max_payload_bytes`
 * (payload-limit.ts: that key alone, without the schema library). A missing default file
 * means the default; an unreadable or invalid one leaves the check to the server (the
 * protocol's ceiling); a missing or bad file named with --config throws.
 *
 * @throws DispatchError CONFIG_UNREADABLE, CONFIG_INVALID (only for an explicit file).
 */
async function payloadLimit(file: string | undefined): Promise<{ maxBytes: number; source: string }> {
  const path = file ?? DEFAULT_CONFIG_PATH;
  try {
    const { loadPayloadLimit } = await import('../common/payload-limit.js');
    const { maxBytes, from } = loadPayloadLimit(path, file !== undefined);
    const source = { file: `max_payload_bytes, from ${path}`, default: `the default max_payload_bytes; ${path} does not set it`, 'no file': `the default max_payload_bytes; ${path} is absent` };
    return { maxBytes, source: source[from] };
  } catch (err) {
    if (file !== undefined) throw err;
    return { maxBytes: MAX_BODY_BYTES_CEILING, source: "the protocol's ceiling" };
  }
}

/**
 * The bytes of DATA given as an argument, as the shell passed them. Node.js decodes argv as
 * UTF-8 and replaces bytes that are not UTF-8 with U+FFFD, so `dispatchctl request sha256
 * $'\xff'` would hash EF BF BD. Such an argument is taken from /proc/self/cmdline instead
 * (proc(5): the process's argv, NUL-separated, as exec(2) received it), where it is the
 * argument that decodes to `data`; a DATA of valid UTF-8 is encoded back unchanged.
 */
function argumentBytes(data: string): Buffer {
  const utf8 = Buffer.from(data, 'utf8');
  if (!data.includes('\uFFFD')) return utf8;
  const raw: Buffer[] = [];
  try {
    // Each argument ends with a NUL.
    const cmdline = fs.readFileSync('/proc/self/cmdline');
    for (let start = 0, end; (end = cmdline.indexOf(0, start)) !== -1; start = end + 1) raw.push(cmdline.subarray(start, end));
  } catch {
    return utf8; // no /proc: the argument as Node.js decoded it
  }
  const matches = raw.filter((b) => b.toString('utf8') === data);
  // One argument decodes to DATA (or several, all the same bytes): those bytes.
  return matches.length > 0 && matches.every((b) => b.equals(matches[0]!)) ? Buffer.from(matches[0]!) : utf8;
}

/** Whether standard input is a directory (`dispatchctl request sha256 < /`); false when fd 0 cannot be examined. */
function stdinIsDirectory(): boolean {
  try {
    return fs.fstatSync(0).isDirectory();
  } catch {
    return false; // closed or unusable: reading it reports the error
  }
}

/** Runs `dispatchctl request`; on failure writes one line and exits (cli-output.ts fail). */
export async function runRequest(a: RequestCommand): Promise<void> {
  let data: Buffer;
  try {
    if (a.data === undefined) {
      // A directory reads as nothing in Node.js: refuse it rather than send empty DATA.
      if (stdinIsDirectory()) throw new DispatchError('BAD_REQUEST', "standard input is a directory; redirect a file into dispatchctl, or give DATA as an argument");
      const limit = await payloadLimit(a.config);
      data = await readStdin(limit.maxBytes, limit.source);
    } else {
      data = argumentBytes(a.data);
    }
  } catch (err) {
    fail(`'${a.type}' request not sent`, err);
  }
  const client = new DispatchClient({
    socket: a.socket,
    timeoutMs: a.timeout,
    deadlineMs: a.deadline,
    onRetry: a.verbose ? ({ attempt, error, waitMs }) => process.stderr.write(`dispatchctl: attempt ${attempt} failed: ${error.message} [${error.code}]; retrying in ${waitMs} ms\n`) : undefined,
  });
  try {
    const info = await client.requestWithInfo(a.type, data);
    if (a.verbose) process.stderr.write(`dispatchctl: served by ${isSecondaryInstance(info.secondary) ? formatDaemonId(secondary(info.secondary)) : `secondary ${info.secondary}`} (generation ${info.generation}) in ${info.attempts} attempt${info.attempts === 1 ? '' : 's'}\n`);
    await writeStdout(info.result);
  } catch (err) {
    fail(`'${a.type}' request failed`, err);
  }
  // Done once the result is handed to the system: the session's orderly close with the
  // secondary (its end of the connection) and the kept connection to main end with the
  // process, as the kernel closes them. Waiting for them took 1.6–2 ms in a traced run of a
  // ~40 ms command (0.6 ms of the median over 60 runs).
  process.exit(0);
}
