/**
 * Chaos: under a steady load of idempotent requests, kill (SIGKILL) and freeze (SIGSTOP, then
 * SIGCONT after a while) random daemons at random times, and report what the clients saw:
 * requests sent, succeeded, failed, and the longest outage (the longest time in which no
 * request completed). The target is either the suite as processes (ProcessSuite, systemd
 * imitated) or the installed suite in a sandbox under the real systemd.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { countsText, prng, startLoad, type LoadReport } from './load.js';
import { serviceUnitOf } from '../../../daemons/common/topology.js';
import { SANDBOX_DAEMONS, until, type ProcessSuite, type Sandbox } from '../../helpers/index.js';

export type Signal = 'SIGKILL' | 'SIGSTOP' | 'SIGCONT';

/** What chaos needs from a running suite. */
export interface ChaosTarget {
  /** What it is, for the report. */
  readonly label: string;
  /** The daemons faults may hit. */
  readonly daemons: readonly string[];
  signal(daemon: string, sig: Signal): Promise<boolean>;
  /** Starts the load generator; resolves once it runs. */
  load(o: { clients: number; durationMs: number; seed: number }): Promise<{ done: Promise<LoadReport>; stop: () => void }>;
  /** Resolves once every daemon is up again (or throws after timeoutMs). */
  settled(timeoutMs: number): Promise<void>;
  /** Restarts per daemon since the start (automatic and by the watchdog), for the report. */
  restarts(): Promise<Record<string, number>>;
}

export interface ChaosOptions {
  durationMs: number;
  /** Concurrent clients (default 20). */
  clients?: number;
  seed?: number;
  /** Time between faults, ms: uniform in [min, max] (default 1000 … 4000). */
  gapMs?: [number, number];
  /** How long a freeze lasts before SIGCONT, ms: uniform in [min, max] (default 200 … 2500). */
  freezeMs?: [number, number];
  /**
   * At most this many faults per daemon within 150 s (default 12): at most 24 in 300 s, 48 with
   * the watchdog's restarts of frozen ones, under the units' start limit of 60 in 300 s; a
   * crash loop that reaches that is a failure of its own (test/system/limits),
   * not what chaos measures.
   */
  maxPerDaemon?: number;
  /** Called for each fault, for progress output. */
  onFault?: (f: FaultRecord) => void;
}

export interface FaultRecord {
  atMs: number;
  daemon: string;
  kind: 'kill' | 'freeze';
  /** For a freeze: how long, ms. */
  heldMs?: number;
  sent: boolean;
}

export interface ChaosReport {
  target: string;
  durationMs: number;
  faults: FaultRecord[];
  faultCounts: Record<string, { kill: number; freeze: number }>;
  restarts: Record<string, number>;
  load: LoadReport;
  /** How long the suite took to be whole again after the last fault, ms. */
  settleMs: number;
}

export async function runChaos(target: ChaosTarget, o: ChaosOptions): Promise<ChaosReport> {
  const rnd = prng(o.seed ?? Date.now());
  const [gapMin, gapMax] = o.gapMs ?? [1000, 4000];
  const [holdMin, holdMax] = o.freezeMs ?? [200, 2500];
  const maxPer = o.maxPerDaemon ?? 12;
  const faults: FaultRecord[] = [];
  const frozen = new Set<string>();
  const pendingThaws: Array<Promise<void>> = [];

  const load = await target.load({ clients: o.clients ?? 20, durationMs: o.durationMs, seed: o.seed ?? 1 });
  const t0 = Date.now();
  const end = t0 + o.durationMs;
  // Leave the last second of load fault-free, so requests in flight can finish.
  while (Date.now() + gapMin < end - 1000) {
    await sleep(gapMin + rnd() * (gapMax - gapMin));
    if (Date.now() >= end - 1000) break;
    const now = Date.now();
    const eligible = target.daemons.filter((d) => !frozen.has(d) && faults.filter((f) => f.daemon === d && now - t0 - f.atMs < 150_000).length < maxPer);
    if (eligible.length === 0) continue;
    const daemon = eligible[Math.floor(rnd() * eligible.length)]!;
    const kind = rnd() < 0.5 ? 'kill' : 'freeze';
    const f: FaultRecord = { atMs: now - t0, daemon, kind, sent: false };
    faults.push(f);
    if (kind === 'kill') {
      f.sent = await target.signal(daemon, 'SIGKILL');
    } else {
      f.heldMs = Math.round(holdMin + rnd() * (holdMax - holdMin));
      f.sent = await target.signal(daemon, 'SIGSTOP');
      frozen.add(daemon);
      pendingThaws.push(
        sleep(f.heldMs).then(async () => {
          await target.signal(daemon, 'SIGCONT');
          frozen.delete(daemon);
        }),
      );
    }
    o.onFault?.(f);
  }
  await Promise.all(pendingThaws);
  const report = await load.done;
  const settleStart = Date.now();
  await target.settled(30_000);
  const faultCounts: ChaosReport['faultCounts'] = {};
  for (const d of target.daemons) faultCounts[d] = { kill: 0, freeze: 0 };
  for (const f of faults) if (f.sent) faultCounts[f.daemon]![f.kind]++;
  return { target: target.label, durationMs: Date.now() - t0, faults, faultCounts, restarts: await target.restarts(), load: report, settleMs: Date.now() - settleStart };
}

/** The suite as processes (systemd imitated by ProcessSuite): main and the secondaries. */
export class ProcessChaosTarget implements ChaosTarget {
  readonly label = 'processes (systemd imitated)';
  readonly daemons: readonly string[];

  constructor(private readonly suite: ProcessSuite) {
    this.daemons = suite.names;
  }

  async signal(daemon: string, sig: Signal): Promise<boolean> {
    return this.suite.signal(daemon, sig);
  }

  async load(o: { clients: number; durationMs: number; seed: number }) {
    return startLoad({ socket: this.suite.mainSocket, ...o });
  }

  async settled(timeoutMs: number): Promise<void> {
    await this.suite.untilHealthy(timeoutMs, 'every daemon to be up again');
  }

  async restarts(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const n of this.suite.names) out[n] = this.suite.totalRestarts(n);
    return out;
  }
}

/** The installed suite in a sandbox, faults sent by systemd (`systemctl kill`). */
export class SystemdChaosTarget implements ChaosTarget {
  readonly label: string;
  readonly daemons = SANDBOX_DAEMONS;
  private readonly starts = new Map<string, number>();

  constructor(private readonly sb: Sandbox) {
    this.label = `the installed suite under systemd (sandbox '${sb.name}')`;
  }

  /** Copies the tools in and notes each unit's start count (for the restarts in the report). */
  async prepare(): Promise<void> {
    await this.sb.installTools();
    for (const [d, n] of Object.entries(await this.startCounts())) this.starts.set(d, n);
  }

  /** How many times each daemon started since the scoreboard was created (its slot's `starts`). */
  private async startCounts(): Promise<Record<string, number>> {
    const status = JSON.parse(await this.sb.out('dispatchctl status --json')) as { daemons: Array<{ name: string; restarts?: number }> };
    const out: Record<string, number> = {};
    for (const d of status.daemons) out[d.name] = d.restarts ?? 0;
    return out;
  }

  async signal(daemon: string, sig: Signal): Promise<boolean> {
    return this.sb.signal(daemon, sig);
  }

  async load(o: { clients: number; durationMs: number; seed: number }) {
    return this.sb.startLoad(o);
  }

  async settled(timeoutMs: number): Promise<void> {
    const units = this.daemons.map(serviceUnitOf);
    let states = '';
    await until('the suite to be whole again (every unit active/running, a request served)', timeoutMs, async () => {
      states = (await this.sb.out(`for u in ${units.join(' ')}; do systemctl show -p ActiveState,SubState --value -- "$u" | paste -sd/; done`)).trim().replace(/\n/g, ', ');
      if (!states.split(', ').every((s) => s === 'active/running')) throw new Error(`units: ${states}`);
      const ok = await this.sb.exec(['dispatchctl', 'request', '--timeout', '5000', 'echo', 'settled'], { timeoutMs: 60_000 });
      return ok.code === 0 && ok.stdout.toString() === 'settled';
    }, { everyMs: 200 });
  }

  async restarts(): Promise<Record<string, number>> {
    const now = await this.startCounts();
    const out: Record<string, number> = {};
    for (const d of this.daemons) out[d] = (now[d] ?? 0) - (this.starts.get(d) ?? 0);
    return out;
  }
}

/** A human-readable summary of a chaos run. */
export function formatChaos(r: ChaosReport): string {
  const l = r.load;
  const faults = Object.entries(r.faultCounts)
    .map(([d, c]) => `${d}: ${c.kill} killed, ${c.freeze} frozen, ${r.restarts[d] ?? 0} restarts`)
    .join('\n  ');
  return [
    `chaos against ${r.target}, ${(r.durationMs / 1000).toFixed(1)} s`,
    `faults (${r.faults.filter((f) => f.sent).length}):\n  ${faults}`,
    `requests: ${l.sent} sent, ${l.succeeded} succeeded, ${l.failed} failed (${countsText(l.failures)})`,
    `retries by the client library: ${countsText(l.retries)}`,
    `longest outage (no request completed): ${l.longestOutageMs} ms, from ${(l.longestOutageAtMs / 1000).toFixed(1)} s`,
    `longest request (retries included): ${l.longestRequestMs} ms; p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms`,
    `the suite was whole again ${r.settleMs} ms after the load ended`,
    ...(l.examples.length ? ['first failures:', ...l.examples.map((e) => `  ${e}`)] : []),
  ].join('\n');
}
