/**
 * The load generator: a closed loop of `concurrency` virtual clients, each sending its next
 * request as soon as the previous answer arrived, for a warm-up then a measured window.
 * Uses dispatchd's own client library (daemons/client/client.ts), so the client's costs are
 * part of every figure, dispatchd's and the baselines' alike.
 *
 * Modes:
 * - `session`: each virtual client opens one connection and sends every request on it. For
 *   dispatchd that is an established lease (one lease from main, then `run` frames on the
 *   secondary's connection); for a bare server one connection.
 * - `handshake`: each request is a new connection. For dispatchd the whole redirect with a
 *   new client per request (`new DispatchClient().request`: connect to main, lease, connect
 *   to the secondary, run, close both), so the figure stays comparable with runs before the
 *   client kept its main connection; for a bare server connect, request, close.
 * - `kept`: as `handshake`, but each virtual client is one `DispatchClient` for all its
 *   requests, so its connection to main is kept open between them (a new lease per request,
 *   several on one connection, docs/PROTOCOL.md §1.4) while each run is still a new
 *   connection to the secondary; for a bare server, as `handshake`.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connectFramed, DispatchClient, Session, exchange } from '../daemons/client/client.js';
import { DispatchError } from '../daemons/common/errors.js';
import { LatencyRecorder, type LatencySummary } from './stats.js';

export type TargetKind = 'bare' | 'dispatchd' | 'relay' | 'spawn';
export type LoadMode = 'session' | 'handshake' | 'kept';

export interface LoadOptions {
  /**
   * `bare`: a bench/bare-server.ts socket; `dispatchd`: a main server's socket; `relay`: the
   * front socket of bench/relay-floor.ts (the handshake's hops without dispatchd's logic);
   * `spawn`: no server, `socket` is a command line spawned per request from this process with
   * DATA on its standard input (the baseline of an exec handler).
   */
  target: TargetKind;
  socket: string;
  mode: LoadMode;
  /** Request type: echo, sha256, sleep. */
  type: string;
  /** DATA size in bytes (for sleep: ignored, DATA is "0"). */
  size: number;
  concurrency: number;
  /** Measured window, in ms. */
  durationMs: number;
  /** Warm-up before the window, in ms (requests run but are not counted). */
  warmupMs: number;
}

export interface LoadResult {
  /** Requests completed inside the measured window. */
  requests: number;
  /** Failed requests (any phase). */
  errors: number;
  firstError?: string;
  /** Length of the measured window, in s. */
  seconds: number;
  /** Requests per second. */
  rps: number;
  /** Request DATA per second, in MB/s (10^6 bytes, one direction). */
  mbps: number;
  /** Per-request latency inside the window, in ms. */
  latency: LatencySummary;
  /** Requests completed in the whole run, warm-up included (to divide a server's CPU time by). */
  totalRequests: number;
  /** CPU time of this load generator (user + system) per request in the window, in µs. */
  clientCpuUsPerRequest: number;
  /** Added by bench/run.ts for host targets: CPU time per request by process (µs). */
  cpuUsPerRequest?: Record<string, number>;
}

const MAX_RESULT_BYTES = 1024 * 1024 * 1024;
const TIMEOUT_MS = 30_000;

/** A request loop bound to one connection or one handshake per request. */
interface VirtualClient {
  request(): Promise<Buffer>;
  close(): void;
}

/** Runs `argv` once with `data` on standard input; its standard output. @throws Error on a non-zero exit. */
function spawnOnce(argv: string[], data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'ignore'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stdin.on('error', () => undefined);
    child.stdin.end(data);
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`'${argv.join(' ')}' exited with ${code}`))));
  });
}

async function openClient(o: LoadOptions, payload: Buffer): Promise<VirtualClient> {
  if (o.target === 'spawn') {
    const argv = o.socket.split(' ');
    return { request: () => spawnOnce(argv, payload), close: () => undefined };
  }
  if (o.target === 'bare') {
    if (o.mode === 'session') {
      const conn = await connectFramed(o.socket, MAX_RESULT_BYTES, 5000);
      const header = { op: 'run', type: o.type };
      return {
        request: async () => {
          const f = await exchange(conn, header, payload, TIMEOUT_MS, 'the bare server');
          if (f.header.ok !== true) throw new Error(`bare server answered ${JSON.stringify(f.header)}`);
          return f.body;
        },
        close: () => conn.end(100),
      };
    }
    return {
      request: async () => {
        const conn = await connectFramed(o.socket, MAX_RESULT_BYTES, 5000);
        try {
          const f = await exchange(conn, { op: 'run', type: o.type }, payload, TIMEOUT_MS, 'the bare server');
          if (f.header.ok !== true) throw new Error(`bare server answered ${JSON.stringify(f.header)}`);
          return f.body;
        } finally {
          conn.end(100);
        }
      },
      close: () => undefined,
    };
  }
  if (o.target === 'relay') {
    // As DispatchClient.request: ask the front where to go (on a connection kept between
    // requests in the kept mode, as DispatchClient keeps main's), then run there.
    let keptFront: Awaited<ReturnType<typeof connectFramed>> | undefined;
    const ask = async (c: Awaited<ReturnType<typeof connectFramed>>) => String((await exchange(c, { op: 'lease', type: o.type }, undefined, TIMEOUT_MS, 'the relay front')).header.socket);
    const where = async (): Promise<string> => {
      if (o.mode === 'kept') return ask((keptFront ??= await connectFramed(o.socket, 0, 5000)));
      const c = await connectFramed(o.socket, 0, 5000);
      try {
        return await ask(c);
      } finally {
        c.end(100);
      }
    };
    const run = async (conn: Awaited<ReturnType<typeof connectFramed>>) => (await exchange(conn, { op: 'run', type: o.type }, payload, TIMEOUT_MS, 'the relay back')).body;
    if (o.mode === 'session') {
      const conn = await connectFramed(await where(), MAX_RESULT_BYTES, 5000);
      return { request: () => run(conn), close: () => conn.end(100) };
    }
    return {
      request: async () => {
        const conn = await connectFramed(await where(), MAX_RESULT_BYTES, 5000);
        try {
          return await run(conn);
        } finally {
          conn.end(100);
        }
      },
      close: () => keptFront?.end(100),
    };
  }
  if (o.mode === 'session') {
    const client = new DispatchClient({ socket: o.socket, timeoutMs: TIMEOUT_MS });
    const grant = await client.lease(o.type);
    client.close();
    const session = await Session.open(grant, MAX_RESULT_BYTES, 5000);
    return { request: () => session.run(o.type, payload, TIMEOUT_MS), close: () => session.close() };
  }
  if (o.mode === 'kept') {
    const client = new DispatchClient({ socket: o.socket, timeoutMs: TIMEOUT_MS });
    return { request: () => client.request(o.type, payload), close: () => client.close() };
  }
  return {
    request: async () => {
      const client = new DispatchClient({ socket: o.socket, timeoutMs: TIMEOUT_MS });
      try {
        return await client.request(o.type, payload);
      } finally {
        client.close();
      }
    },
    close: () => undefined,
  };
}

function check(type: string, payload: Buffer, result: Buffer): void {
  // echo, and the bench's own types that give DATA back (echo-module, cat).
  const echoes = type === 'echo' || type === 'echo-module' || type === 'cat';
  const ok = echoes ? result.length === payload.length && (result.length === 0 || result[result.length - 1] === payload[payload.length - 1]) : type === 'sha256' ? result.length === 64 : result.length > 0;
  if (!ok) throw new DispatchError('PROTOCOL_ERROR', `wrong '${type}' result of ${result.length} bytes`);
}

/**
 * Runs one load measurement.
 *
 * @throws Error when no request at all succeeded (the message is the first failure).
 */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const payload = o.type === 'sleep' ? Buffer.from('0') : randomBytes(o.size);
  const lat = new LatencyRecorder();
  let errors = 0;
  let firstError: string | undefined;
  let counted = 0;
  let total = 0;
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  let cpuInWindow: NodeJS.CpuUsage | undefined;
  const t0 = performance.now();
  const windowStart = t0 + o.warmupMs;
  const windowEnd = windowStart + o.durationMs;
  const startTimer = setTimeout(() => (cpuAtStart = process.cpuUsage()), o.warmupMs);
  const endTimer = setTimeout(() => (cpuInWindow = process.cpuUsage(cpuAtStart)), o.warmupMs + o.durationMs);

  const loop = async (): Promise<void> => {
    let vc: VirtualClient | undefined;
    try {
      vc = await openClient(o, payload);
      for (;;) {
        const start = performance.now();
        if (start >= windowEnd) break;
        try {
          check(o.type, payload, await vc.request());
        } catch (err) {
          errors++;
          firstError ??= err instanceof Error ? err.message : String(err);
          if (o.mode === 'session') return; // the connection is gone: this virtual client ends
          continue;
        }
        const end = performance.now();
        total++;
        // Completions inside the window count (unbiased in a steady state, whatever the
        // requests' length); the last one straddling the window's end does not.
        if (end >= windowStart && end <= windowEnd) {
          counted++;
          lat.add(end - start);
        }
      }
    } catch (err) {
      errors++;
      firstError ??= err instanceof Error ? err.message : String(err);
    } finally {
      vc?.close();
    }
  };
  try {
    await Promise.all(Array.from({ length: o.concurrency }, loop));
  } finally {
    clearTimeout(startTimer);
    clearTimeout(endTimer);
  }
  cpuInWindow ??= process.cpuUsage(cpuAtStart);
  if (counted === 0) throw new Error(`no request succeeded in the measured window${firstError ? `: ${firstError}` : ''}`);
  const seconds = o.durationMs / 1000;
  const rps = counted / seconds;
  const result: LoadResult = {
    requests: counted,
    errors,
    seconds,
    rps,
    mbps: (rps * (o.type === 'sleep' ? 0 : o.size)) / 1e6,
    latency: lat.summary(),
    totalRequests: total,
    clientCpuUsPerRequest: (cpuInWindow.user + cpuInWindow.system) / counted,
  };
  if (firstError !== undefined) result.firstError = firstError;
  return result;
}
