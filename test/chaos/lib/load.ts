/**
 * A load generator built on the client library: N concurrent clients, each sending one
 * request after another (echo, sha256, sleep: the idempotent built-in types) and checking
 * every result byte for byte. It reports what a user sees: requests sent, succeeded, failed
 * (by code), the retries the library made, and the longest outage (the longest time during
 * which no request completed).
 *
 * Used in-process by the chaos and fuzz runners, and as a program inside a sandbox next to the
 * installed suite (its imports then resolve to the installed library):
 *
 *   node load.js --socket /run/dispatchd/main.sock --clients 20 --requests 1000
 *
 * prints `{"event":"started","pid":N}` once the clients run, `{"event":"ready"}` once
 * `--ready-after N` requests (default 1) have succeeded, then one `{"event":"report",…}` line
 * when the requests are done, the duration is over, or it gets SIGTERM/SIGINT. Other options:
 * --requests, --duration-ms, --timeout-ms, --types echo,sha256,sleep, --seed, --max-payload
 * (bytes), --pause-ms (between a client's requests), --max-sleep-ms (longest `sleep` request).
 */
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { DispatchClient, DispatchError } from '../../../daemons/client/client.js';
import { BUILTIN_HANDLERS, type BuiltinHandler } from '../../../daemons/common/request-type.js';

/** The load checks each answer, so it sends the built-in types, whose results it knows (echo, sha256, sleep). */
export type LoadType = BuiltinHandler;

export interface LoadOptions {
  socket: string;
  /** Concurrent clients (default 20). */
  clients?: number;
  /** Stop after this many requests in all (default: no limit). */
  requests?: number;
  /** Stop starting requests after this long, in ms (default: no limit). */
  durationMs?: number;
  /** Request types to mix (default echo, sha256, sleep). */
  types?: LoadType[];
  /** The client library's total budget per request, retries included (default 60000, the library's). */
  timeoutMs?: number;
  /** Seed of the payload generator (default 1). */
  seed?: number;
  /** Largest echo/sha256 payload, bytes (default 4096). */
  maxPayload?: number;
  /** Pause of each client between two requests, in ms (default 0: one after another). */
  pauseMs?: number;
  /** Longest `sleep` request, in ms: each sleeps a random 0 to this (default 30). */
  maxSleepMs?: number;
  /** Called once, when this many requests in all have succeeded (see `readyAfter`). */
  onReady?: () => void;
  /** How many successes make the load ready (default 1). */
  readyAfter?: number;
}

export interface LoadReport {
  sent: number;
  succeeded: number;
  failed: number;
  /** Failures by error code (WRONG_RESULT: an answer that was not the right one). */
  failures: Record<string, number>;
  /** The first few failures, with their messages. */
  examples: string[];
  /** Retries the client library made, by the code of the failure it retried. */
  retries: Record<string, number>;
  /** Longest time in which no request completed, ms. */
  longestOutageMs: number;
  /** When that outage began, ms after the start. */
  longestOutageAtMs: number;
  /** Longest single request, retries included, ms. */
  longestRequestMs: number;
  p50Ms: number;
  p99Ms: number;
  durationMs: number;
}

/** Counts by code (failures, retries) as `CODE n, CODE n`, or 'none'. */
export function countsText(counts: Record<string, number>): string {
  return Object.entries(counts).map(([c, n]) => `${c} ${n}`).join(', ') || 'none';
}

/** One line for a test message: what the clients saw. */
export function describeLoad(r: LoadReport): string {
  return `${r.sent} sent, ${r.succeeded} succeeded, ${r.failed} failed (${countsText(r.failures)}); retries: ${countsText(r.retries)}; longest outage ${r.longestOutageMs} ms, longest request ${r.longestRequestMs} ms${r.examples.length ? `; e.g. ${r.examples.slice(0, 2).join(' | ')}` : ''}`;
}

/** A small, fast, seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A running load: `stop()` ends it early; `done` resolves with the report. */
export interface Load {
  stop(): void;
  done: Promise<LoadReport>;
}

export function startLoad(o: LoadOptions): Load {
  const clients = o.clients ?? 20;
  const types = o.types ?? [...BUILTIN_HANDLERS];
  const maxPayload = o.maxPayload ?? 4096;
  const rnd = prng(o.seed ?? 1);
  const started = Date.now();
  const endAt = o.durationMs !== undefined ? started + o.durationMs : Infinity;
  const r: LoadReport = { sent: 0, succeeded: 0, failed: 0, failures: {}, examples: [], retries: {}, longestOutageMs: 0, longestOutageAtMs: 0, longestRequestMs: 0, p50Ms: 0, p99Ms: 0, durationMs: 0 };
  const latencies: number[] = [];
  let lastSuccess = started;
  let stopped = false;
  const client = new DispatchClient({
    socket: o.socket,
    timeoutMs: o.timeoutMs ?? 60_000,
    onRetry: ({ error }) => {
      r.retries[error.code] = (r.retries[error.code] ?? 0) + 1;
    },
  });

  const fail = (code: string, message: string) => {
    r.failed++;
    r.failures[code] = (r.failures[code] ?? 0) + 1;
    if (r.examples.length < 10) r.examples.push(`${code}: ${message}`);
  };

  const one = async (): Promise<void> => {
    const type = types[Math.floor(rnd() * types.length)]!;
    let data: Buffer;
    let expected: Buffer;
    if (type === 'sleep') {
      const ms = Math.floor(rnd() * (o.maxSleepMs ?? 30));
      data = Buffer.from(String(ms));
      expected = Buffer.from(`slept ${ms}`);
    } else {
      data = randomBytes(Math.floor(rnd() * maxPayload));
      expected = type === 'echo' ? data : Buffer.from(createHash('sha256').update(data).digest('hex'));
    }
    r.sent++;
    const t0 = Date.now();
    try {
      const out = await client.request(type, data);
      const now = Date.now();
      if (!out.equals(expected)) {
        fail('WRONG_RESULT', `${type} of ${data.length} bytes answered ${out.length} bytes that differ`);
        return;
      }
      r.succeeded++;
      if (r.succeeded === (o.readyAfter ?? 1)) o.onReady?.();
      latencies.push(now - t0);
      r.longestRequestMs = Math.max(r.longestRequestMs, now - t0);
      if (now - lastSuccess > r.longestOutageMs) {
        r.longestOutageMs = now - lastSuccess;
        r.longestOutageAtMs = lastSuccess - started;
      }
      lastSuccess = Math.max(lastSuccess, now);
    } catch (err) {
      r.longestRequestMs = Math.max(r.longestRequestMs, Date.now() - t0);
      if (err instanceof DispatchError) fail(err.code, err.message);
      else fail('EXCEPTION', String(err));
    }
  };

  const more = () => !stopped && Date.now() < endAt && (o.requests === undefined || r.sent < o.requests);
  const loop = async () => {
    while (more()) {
      await one();
      if (o.pauseMs) await sleep(o.pauseMs);
    }
  };
  const done = Promise.all(Array.from({ length: clients }, loop)).then(() => {
    r.durationMs = Date.now() - started;
    latencies.sort((a, b) => a - b);
    r.p50Ms = latencies[Math.floor(latencies.length * 0.5)] ?? 0;
    r.p99Ms = latencies[Math.floor(latencies.length * 0.99)] ?? 0;
    return r;
  });
  return { stop: () => (stopped = true), done };
}

/** Parses `--key value` arguments (this program runs where yargs may not be installed). */
export function parseArgs(argv: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}'`);
    const eq = a.indexOf('=');
    if (eq !== -1) m.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) m.set(a.slice(2), argv[++i]!);
    else m.set(a.slice(2), 'true');
  }
  return m;
}

/**
 * A runner's command line: parseArgs, with `usage` printed on --help (exit 0) or after
 * `<tool>: <error>` on a bad argument (exit 64).
 */
export function parseCli(argv: string[], tool: string, usage: string): Map<string, string> {
  let args: Map<string, string>;
  try {
    args = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`${tool}: ${(err as Error).message}\n${usage}\n`);
    process.exit(64);
  }
  if (args.has('help')) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return args;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const num = (k: string) => (a.has(k) ? Number(a.get(k)) : undefined);
  const load = startLoad({
    socket: a.get('socket') ?? '/run/dispatchd/main.sock',
    clients: num('clients'),
    requests: num('requests'),
    durationMs: num('duration-ms'),
    timeoutMs: num('timeout-ms'),
    seed: num('seed'),
    maxPayload: num('max-payload'),
    pauseMs: num('pause-ms'),
    maxSleepMs: num('max-sleep-ms'),
    types: a.has('types') ? (a.get('types')!.split(',') as LoadType[]) : undefined,
    readyAfter: num('ready-after'),
    onReady: () => process.stdout.write(JSON.stringify({ event: 'ready' }) + '\n'),
  });
  process.on('SIGTERM', () => load.stop());
  process.on('SIGINT', () => load.stop());
  process.stdout.write(JSON.stringify({ event: 'started', pid: process.pid }) + '\n');
  const report = await load.done;
  process.stdout.write(JSON.stringify({ event: 'report', ...report }) + '\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
