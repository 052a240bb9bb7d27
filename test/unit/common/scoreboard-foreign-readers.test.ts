/** The scoreboard read by other languages, as docs/SCOREBOARD.md §4 shows: Python (mmap + struct) and C (mmap + seqlock). */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createScoreboard } from '../../../daemons/common/scoreboard-file.js';
import { SlotWriter } from '../../../daemons/common/slot-writer.js';
import { FIXTURES, newFile } from '../lib/scoreboard-files.js';

/** What Node writes for the cross-language readers, and what they must read (numbers per docs/SCOREBOARD.md). */
function writeForeignReaderFixture(file: string) {
  createScoreboard(file, { now: 1_700_000_000_123 });
  const main = new SlotWriter(file, 'main', 0, { pid: 1234, generation: 0xfffffffe, now: 1_700_000_000_200 });
  main.addLatency(1500);
  main.addLatency(2 ** 33 + 7); // a max past 2^32 − 1 µs saturates
  main.update({ state: 'ready', active: 3, queued: 7, requests: 2 ** 40 + 5, failures: 9, heartbeatMs: 1_700_000_001_234, incidents: 2 });
  const wd = new SlotWriter(file, 'watchdog', 0, { pid: 99, generation: 1, now: 1_700_000_000_300 });
  wd.update({ state: 'busy', requests: 123, incidents: 5, heartbeatMs: 1_700_000_000_301 });
  const s1 = new SlotWriter(file, 'secondary', 1, { pid: 4000, generation: 31337, capacity: 32, now: 1_700_000_000_400 });
  s1.addLatency(250);
  s1.addLatency(40);
  s1.update({ state: 'full', active: 32, running: 0xfffffffe, requests: 1000, failures: 1, heartbeatMs: 1_700_000_000_401 });
  const s62 = new SlotWriter(file, 'secondary', 62, { pid: 4062, generation: 62, capacity: 4, now: 1_700_000_000_500 });
  s62.update({ state: 'stopping', heartbeatMs: 1_700_000_000_501 });
  for (const w of [main, wd, s1, s62]) w.close();
  const slot = (index: number, o: Record<string, number | string>) => ({
    index, seq: 2, kind: 0, instance: 0, pid: 0, state: 0, generation: 0, starts: 1, active: 0, capacity: 0, queued: 0,
    requests: 0, failures: 0, started_ms: 0, heartbeat_ms: 0, incidents: 0, name: '', latency_sum_us: 0, latency_max_us: 0, running: 0, ...o,
  });
  return {
    header: { magic: 'DSPSCORE', version: 1, header_size: 64, slot_size: 128, slot_count: 64, created_ms: 1_700_000_000_123 },
    slots: [
      slot(0, { kind: 1, pid: 1234, state: 2, generation: 0xfffffffe, active: 3, queued: 7, requests: 2 ** 40 + 5, failures: 9, started_ms: 1_700_000_000_200, heartbeat_ms: 1_700_000_001_234, incidents: 2, name: 'main', latency_sum_us: 2 ** 33 + 1507, latency_max_us: 0xffffffff }),
      slot(1, { kind: 3, pid: 99, state: 3, generation: 1, requests: 123, incidents: 5, started_ms: 1_700_000_000_300, heartbeat_ms: 1_700_000_000_301, name: 'watchdog' }),
      slot(2, { kind: 2, instance: 1, pid: 4000, state: 4, generation: 31337, active: 32, capacity: 32, requests: 1000, failures: 1, started_ms: 1_700_000_000_400, heartbeat_ms: 1_700_000_000_401, name: 'secondary-1', latency_sum_us: 290, latency_max_us: 250, running: 0xfffffffe }),
      slot(63, { kind: 2, instance: 62, pid: 4062, state: 5, generation: 62, capacity: 4, started_ms: 1_700_000_000_500, heartbeat_ms: 1_700_000_000_501, name: 'secondary-62' }),
    ],
  };
}

const probe = spawnSync('python3', ['-c', 'import mmap, struct, json'], { encoding: 'utf8' });
const noPython = probe.error || probe.status !== 0 ? `python3 with mmap and struct is not available: ${probe.error?.message ?? probe.stderr}` : false;

t.test('read back from Python (mmap + struct, docs/SCOREBOARD.md §4)', { skip: noPython }, async (t) => {
  const file = newFile();
  const expected = writeForeignReaderFixture(file);
  const r = spawnSync('python3', [path.join(FIXTURES, 'scoreboard_reader.py'), file], { encoding: 'utf8' });
  t.equal(r.status, 0, `python reader exited 0 ${r.stderr}`);
  const got = JSON.parse(r.stdout) as Record<string, unknown> & { slots: Array<Record<string, unknown>> };
  const { slots, header_reserved, ...header } = got;
  t.same(header, expected.header, 'header');
  t.equal(header_reserved, '00'.repeat(32), 'reserved header bytes are zero');
  t.same(slots, expected.slots, 'every slot, field by field');
});

const cc = ['cc', 'gcc', 'clang'].find((c) => !spawnSync(c, ['--version']).error);

t.test('read back from C (mmap + seqlock, docs/SCOREBOARD.md §4)', { skip: cc ? false : 'no C compiler (cc, gcc or clang) on this machine' }, async (t) => {
  const exe = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dispatchd-cc-')), 'scoreboard-reader');
  t.teardown(() => fs.rmSync(path.dirname(exe), { recursive: true, force: true }));
  const build = spawnSync(cc!, ['-std=c11', '-O2', '-Wall', '-Werror', '-o', exe, path.join(FIXTURES, 'scoreboard-reader.c')], { encoding: 'utf8' });
  t.equal(build.status, 0, `compiled with ${cc} ${build.stderr}`);
  if (build.status !== 0) return;
  const file = newFile();
  const expected = writeForeignReaderFixture(file);
  const r = spawnSync(exe, [file], { encoding: 'utf8' });
  t.equal(r.status, 0, `C reader exited 0 ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  const h = expected.header;
  t.equal(lines[0], `header ${h.version} ${h.header_size} ${h.slot_size} ${h.slot_count} ${h.created_ms}`);
  const fields = ['seq', 'kind', 'instance', 'pid', 'state', 'generation', 'starts', 'active', 'capacity', 'queued', 'requests', 'failures', 'started_ms', 'heartbeat_ms', 'incidents', 'name', 'latency_sum_us', 'latency_max_us', 'running'] as const;
  t.same(
    lines.slice(1),
    expected.slots.map((s) => `slot ${s.index} ` + fields.map((f) => `${f}=${(s as Record<string, unknown>)[f]}`).join(' ')),
    'every slot, field by field',
  );
});
