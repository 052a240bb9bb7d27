#!/usr/bin/node
/**
 * The floor of a module handler's per-request thread hand-off: piscina (the pool the
 * secondary uses, daemons/secondary-server/handlers/module-handler.ts) running a module that
 * gives its 1 KiB DATA back, one request at a time, in this one process: no socket, no
 * framing, no lease. Prints µs per run and CPU µs per run (main thread and worker together)
 * for `atomics: 'disabled'` (as the secondary) and `'sync'` (piscina's default).
 *
 *   node build/bench/thread-handoff.js [--runs N]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Piscina } from 'piscina';
import { ROOT } from '../test/helpers/index.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '20000' } } });
const runs = Number(values.runs);
const data = Buffer.alloc(1024, 7);
for (const atomics of ['disabled', 'sync'] as const) {
  const pool = new Piscina({ filename: path.join(ROOT, 'bench/handlers/echo.mjs'), minThreads: 1, maxThreads: 32, atomics });
  try {
    for (let i = 0; i < 2000; i++) await pool.run(data); // warm-up: thread start, JIT
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    // As the secondary: an AbortSignal per run.
    for (let i = 0; i < runs; i++) await pool.run(data, { signal: new AbortController().signal });
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    process.stdout.write(`atomics '${atomics}': ${((ms * 1000) / runs).toFixed(1)} µs per run (${Math.round((runs / ms) * 1000)} runs/s), CPU ${((cpu.user + cpu.system) / runs).toFixed(1)} µs per run\n`);
  } finally {
    await pool.destroy();
  }
}
