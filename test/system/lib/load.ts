/**
 * Request load inside a sandbox while a test upgrades, reloads or scales the suite:
 * lib/loadgen.mjs run as a transient systemd unit, its counts read back as JSON.
 */
import { join } from 'node:path';
import { REPO } from './repo.js';
import type { Sandbox } from './sandbox.js';
import { until } from './suite.js';

export interface LoadStats {
  ok: number;
  failed: number;
  wrong: number;
  retries: number;
  errors: Record<string, number>;
  retry_codes: Record<string, number>;
  done: boolean;
}

const DIR = '/root/loadgen';

/** Starts `workers` request loops under unit `name`; resolves once requests succeed. */
export async function startLoad(sb: Sandbox, name: string, workers = 4, pauseMs = 10): Promise<void> {
  await sb.copyIn(DIR, join(REPO, 'test', 'system', 'lib', 'loadgen.mjs'));
  await sb.out(`rm -f ${DIR}/${name}.json; systemd-run --quiet --unit=${name} --property=TimeoutStopSec=60 /usr/bin/node ${DIR}/loadgen.mjs ${DIR}/${name}.json ${workers} ${pauseMs} 300`);
  await until(`load '${name}' to serve requests`, 30_000, async () => ((await loadStats(sb, name)).ok >= 20 ? true : undefined), 200);
}

/** The counts so far. */
export async function loadStats(sb: Sandbox, name: string): Promise<LoadStats> {
  return JSON.parse(await sb.out(`cat ${DIR}/${name}.json`)) as LoadStats;
}

/** Stops the load (its in-flight requests finish) and returns the final counts. */
export async function stopLoad(sb: Sandbox, name: string): Promise<LoadStats> {
  await sb.out(`systemctl stop ${name}`, { timeoutMs: 90_000 });
  const s = await loadStats(sb, name);
  if (!s.done) throw new Error(`load '${name}' did not write its final counts: ${JSON.stringify(s)}`);
  return s;
}

/** One line for an assertion message. */
export function describeLoad(s: LoadStats): string {
  return `${s.ok} ok, ${s.failed} failed, ${s.wrong} wrong, ${s.retries} retries ${JSON.stringify(s.retry_codes)}; errors ${JSON.stringify(s.errors)}`;
}
