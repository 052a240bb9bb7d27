/**
 * Slow and idle clients: opens N connections at once to a server's socket — half send nothing,
 * half send half a frame — and meanwhile measures normal requests (one after another) against
 * a baseline taken just before. Reports when the idle ones were cut off and how much they
 * delayed the normal requests.
 *
 *   node idle.js --socket /run/dispatchd/main.sock --connections 1000 --idle-timeout-ms 5000
 *
 * prints `{"event":"started","pid":N}`, then one `{"event":"idle",…}` line.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { DispatchClient } from '../../../daemons/client/client.js';
import { encodeFrame, FrameDecoder } from '../../../daemons/common/frame.js';
import { parseArgs } from '../../chaos/lib/load.js';

export interface IdleReport {
  connections: number;
  /** Connections that got an IDLE_TIMEOUT error frame and were closed by the server. */
  cutOff: number;
  /** Connections closed without that frame, or not at all (within the timeout plus 10 s). */
  otherwise: number;
  /** How those ended: an error code (ECONNREFUSED, EAGAIN, …), another answer, or a plain close. */
  otherwiseHow: Record<string, number>;
  /** When they were cut off, ms after they connected. */
  cutOffMinMs: number;
  cutOffMaxMs: number;
  /** Normal requests, one after another, before the idle connections (baseline) and while they were open. */
  baseline: { requests: number; p50Ms: number; maxMs: number };
  during: { requests: number; p50Ms: number; maxMs: number; failed: number };
  /** How much later a normal request completed while the idle connections were open: p50 and worst, ms. */
  addedP50Ms: number;
  addedMaxMs: number;
}

function stats(xs: number[]): { requests: number; p50Ms: number; maxMs: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { requests: s.length, p50Ms: s[Math.floor(s.length / 2)] ?? 0, maxMs: s[s.length - 1] ?? 0 };
}

/** One idle connection: resolves with how it ended and when. */
function idler(path: string, halfFrame: boolean, limitMs: number): Promise<{ cut: boolean; ms: number; how: string }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const s = net.createConnection({ path });
    const dec = new FrameDecoder(1024 * 1024);
    let code: unknown;
    let error: string | undefined;
    s.on('data', (b: Buffer) => {
      dec.push(b);
      const r = dec.next();
      if (r.kind === 'frame') code = r.frame.header.code;
    });
    s.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    if (halfFrame) s.once('connect', () => s.write(Buffer.concat(encodeFrame({ op: 'lease', type: 'echo' })).subarray(0, 7)));
    const t = setTimeout(() => s.destroy(), limitMs);
    s.once('close', () => {
      clearTimeout(t);
      resolve({ cut: code === 'IDLE_TIMEOUT', ms: Date.now() - started, how: code !== undefined ? String(code) : (error ?? 'closed without an answer') });
    });
  });
}

export async function measureIdle(o: { socket: string; connections: number; idleTimeoutMs: number; baselineRequests?: number }): Promise<IdleReport> {
  const client = new DispatchClient({ socket: o.socket, timeoutMs: 30_000 });
  const timed = async (): Promise<number | undefined> => {
    const t0 = performance.now();
    try {
      await client.request('echo', Buffer.from('normal'));
      return performance.now() - t0;
    } catch {
      return undefined;
    }
  };
  const base: number[] = [];
  for (let i = 0; i < (o.baselineRequests ?? 50); i++) {
    const ms = await timed();
    if (ms !== undefined) base.push(ms);
  }
  const idlers = Array.from({ length: o.connections }, (_, i) => idler(o.socket, i % 2 === 1, o.idleTimeoutMs + 10_000));
  let open = true;
  const all = Promise.all(idlers).finally(() => (open = false));
  const during: number[] = [];
  let failed = 0;
  // Normal requests the whole time the idle connections are open, including their cut-off.
  while (open) {
    const ms = await timed();
    if (ms === undefined) failed++;
    else during.push(ms);
    await sleep(5);
  }
  const ends = await all;
  const cut = ends.filter((e) => e.cut);
  const b = stats(base);
  const d = stats(during);
  return {
    connections: o.connections,
    cutOff: cut.length,
    otherwise: ends.length - cut.length,
    otherwiseHow: ends.filter((e) => !e.cut).reduce<Record<string, number>>((m, e) => ((m[e.how] = (m[e.how] ?? 0) + 1), m), {}),
    cutOffMinMs: Math.min(...cut.map((e) => e.ms)),
    cutOffMaxMs: Math.max(...cut.map((e) => e.ms)),
    baseline: b,
    during: { ...d, failed },
    addedP50Ms: Math.round(d.p50Ms - b.p50Ms),
    addedMaxMs: Math.round(d.maxMs - b.p50Ms),
  };
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  process.stdout.write(JSON.stringify({ event: 'started', pid: process.pid }) + '\n');
  const r = await measureIdle({
    socket: a.get('socket') ?? '/run/dispatchd/main.sock',
    connections: Number(a.get('connections') ?? 1000),
    idleTimeoutMs: Number(a.get('idle-timeout-ms') ?? 5000),
  });
  process.stdout.write(JSON.stringify({ event: 'idle', ...r }) + '\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
