#!/usr/bin/node
/**
 * Reads V8 CPU profiles (`node --cpu-prof`, or `npm run bench -- --cpu-prof DIR`) and prints
 * where the time went: the functions with the most self time and with the most total
 * (inclusive) time, in percent of the profile's samples. `--folded FILE` also writes the
 * stacks in the folded format of flamegraph.pl and speedscope (one `a;b;c count` line per
 * stack), from which a flame graph is drawn.
 *
 *   node build/bench/cpuprofile-top.js [--top N] [--folded FILE] PROFILE.cpuprofile…
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' }, folded: { type: 'string' } } });
const top = Number(values.top);
const folded: string[] = [];

function frameName(f: CallFrame): string {
  const file = f.url ? f.url.replace(/^file:\/\//, '').replace(/^.*\/(build|node_modules)\//, '$1/') : '';
  return `${f.functionName || '(anonymous)'}${file ? ` ${file}:${f.lineNumber + 1}` : ''}`;
}

for (const file of positionals) {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  let total = 0;
  for (const v of selfUs.values()) total += v;
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const names: string[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) names.push(frameName(byId.get(cur)!.callFrame));
    self.set(names[0]!, (self.get(names[0]!) ?? 0) + us);
    for (const n of new Set(names)) incl.set(n, (incl.get(n) ?? 0) + us);
    if (values.folded) folded.push(`${names.reverse().join(';')} ${Math.round(us)}`);
  }
  const idle = (self.get('(idle)') ?? 0) / total;
  const show = (title: string, m: Map<string, number>) => {
    console.log(`  ${title}`);
    for (const [n, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${((us / total) * 100).toFixed(1).padStart(5)}%  ${n}`);
  };
  console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled, ${(idle * 100).toFixed(1)}% idle`);
  show('self time', self);
  show('total time', incl);
}
if (values.folded) fs.writeFileSync(values.folded, `${folded.join('\n')}\n`);
