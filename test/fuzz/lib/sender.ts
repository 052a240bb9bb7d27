/**
 * Sends fuzz cases (cases.ts) into a suite's sockets and FIFOs, many at once, and records what
 * the servers did: which error each bad client was answered with, whether a server sent more
 * than one error frame on a connection it should have closed, and whether any server left a
 * connection hanging (a "stuck peer": neither answered nor closed in time).
 *
 * Runs in-process (component harness) or as a program inside a sandbox:
 *
 *   node sender.js --dir /run/dispatchd --secondaries 2 --cases 100000 --seed 1
 *
 * prints `{"event":"started","pid":N}`, then one `{"event":"fuzzed",…}` line.
 */
import fs from 'node:fs';
import net from 'node:net';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { FrameDecoder } from '../../../daemons/common/frame.js';
import { parseArgs, prng } from '../../chaos/lib/load.js';
import { endpointsOf, makeCase, type Endpoint, type FuzzCase } from './cases.js';

const { O_WRONLY, O_NONBLOCK } = fs.constants;

export interface SendOptions {
  endpoints: Endpoint[];
  cases: number;
  seed: number;
  /** Cases in flight at once (default 64). */
  concurrency?: number;
  /** The servers' idle timeout, ms: a held-open connection must be closed by then (plus slack). */
  idleTimeoutMs: number;
  /** Called every 1000 cases. */
  onProgress?: (done: number) => void;
}

export interface SendReport {
  cases: number;
  socketCases: number;
  fifoCases: number;
  byLabel: Record<string, number>;
  /** The first answer frame's code (or 'ok', or 'none' when the server closed without one), per server. */
  answers: Record<string, Record<string, number>>;
  /** Connections where a framing error was followed by more frames (it must end the connection). */
  extraFramesAfterError: number;
  /** Connections a server left open past its idle timeout plus slack. */
  stuck: number;
  stuckExamples: string[];
  /** FIFO writes refused with EAGAIN (pipe full: the reader is slow or stuck). */
  fifoFull: number;
  durationMs: number;
  longestCaseMs: number;
}

/** How long past the idle timeout a server may take to close a held connection. */
const SLACK_MS = 3000;

async function socketCase(c: FuzzCase & { endpoint: { kind: 'socket' } }, r: SendReport, idleTimeoutMs: number): Promise<void> {
  const s = net.createConnection({ path: c.endpoint.path });
  const dec = new FrameDecoder(64 * 1024 * 1024);
  let frames = 0;
  let first: string | undefined;
  let framingError = false;
  let extra = false;
  s.on('data', (b: Buffer) => {
    dec.push(b);
    for (let f = dec.next(); f.kind === 'frame'; f = dec.next()) {
      frames++;
      if (framingError) extra = true;
      const code = f.frame.header.ok === true ? 'ok' : String(f.frame.header.code);
      first ??= code;
      if (/^FRAME_|^IDLE_TIMEOUT$|^PAYLOAD_TOO_LARGE$/.test(code)) framingError = true;
    }
  });
  s.on('error', () => undefined); // reset by the server while writing: expected
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  const connected = await Promise.race([new Promise<boolean>((resolve) => s.once('connect', () => resolve(true))), closed.then(() => false)]);
  if (connected) {
    for (const chunk of c.chunks) {
      if (s.destroyed) break;
      s.write(chunk);
      if (c.gapMs) await sleep(c.gapMs);
    }
    // A held connection waits for the server to cut it off; otherwise we are done sending.
    if (!c.hold && !s.destroyed) s.end();
    const limit = (c.hold ? idleTimeoutMs : 0) + SLACK_MS;
    const timer = sleep(limit).then(() => 'late' as const);
    if ((await Promise.race([closed.then(() => 'closed' as const), timer])) === 'late') {
      r.stuck++;
      if (r.stuckExamples.length < 5) r.stuckExamples.push(`${c.label} to ${c.endpoint.name}: not closed ${limit} ms after the last byte (${frames} frames answered)`);
      s.destroy();
    }
  }
  const byServer = (r.answers[c.endpoint.name] ??= {});
  const code = first ?? (connected ? 'none' : 'connect-failed');
  byServer[code] = (byServer[code] ?? 0) + 1;
  if (extra) r.extraFramesAfterError++;
}

function writeSome(fd: number, b: Buffer, r: SendReport): void {
  try {
    fs.writeSync(fd, b);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EAGAIN') r.fifoFull++;
    else throw err;
  }
}

async function fifoCase(c: FuzzCase, r: SendReport): Promise<void> {
  const fullBefore = r.fifoFull;
  const fds = [fs.openSync(c.endpoint.path, O_WRONLY | O_NONBLOCK)];
  if (c.twoWriters) fds.push(fs.openSync(c.endpoint.path, O_WRONLY | O_NONBLOCK));
  try {
    for (let i = 0; i < c.chunks.length; i++) {
      writeSome(fds[i % fds.length]!, c.chunks[i]!, r);
      await tick();
    }
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
  // When this case found the pipe full, let the reader drain before the next FIFO case:
  // garbage, not a flood, is what is tested.
  if (r.fifoFull > fullBefore) await sleep(5);
}

export async function sendCases(o: SendOptions): Promise<SendReport> {
  const rnd = prng(o.seed);
  const r: SendReport = { cases: 0, socketCases: 0, fifoCases: 0, byLabel: {}, answers: {}, extraFramesAfterError: 0, stuck: 0, stuckExamples: [], fifoFull: 0, durationMs: 0, longestCaseMs: 0 };
  const started = Date.now();
  let next = 0;
  const worker = async () => {
    while (next < o.cases) {
      next++;
      const c = makeCase(rnd, o.endpoints);
      const t0 = Date.now();
      if (c.endpoint.kind === 'socket') {
        r.socketCases++;
        await socketCase(c as FuzzCase & { endpoint: { kind: 'socket' } }, r, o.idleTimeoutMs);
      } else {
        r.fifoCases++;
        await fifoCase(c, r);
      }
      r.longestCaseMs = Math.max(r.longestCaseMs, Date.now() - t0);
      r.byLabel[c.label] = (r.byLabel[c.label] ?? 0) + 1;
      if (++r.cases % 1000 === 0) o.onProgress?.(r.cases);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? 64 }, worker));
  r.durationMs = Date.now() - started;
  return r;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const dir = a.get('dir') ?? '/run/dispatchd';
  const endpoints = endpointsOf(dir, Number(a.get('secondaries') ?? 2), Number(a.get('max-payload') ?? 64 * 1024 * 1024));
  process.stdout.write(JSON.stringify({ event: 'started', pid: process.pid }) + '\n');
  const report = await sendCases({
    endpoints,
    cases: Number(a.get('cases') ?? 1000),
    seed: Number(a.get('seed') ?? 1),
    concurrency: a.has('concurrency') ? Number(a.get('concurrency')) : undefined,
    idleTimeoutMs: Number(a.get('idle-timeout-ms') ?? 5000),
    onProgress: (n) => process.stdout.write(JSON.stringify({ event: 'progress', cases: n }) + '\n'),
  });
  process.stdout.write(JSON.stringify({ event: 'fuzzed', ...report }) + '\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
