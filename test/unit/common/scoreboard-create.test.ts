/** Creating the scoreboard (docs/SCOREBOARD.md §1): exact size and mode, atomic creation by concurrent creators, refusing or replacing another layout. */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createScoreboard } from '../../../daemons/common/scoreboard-file.js';
import { checkHeader, encodeHeader, SCOREBOARD_BYTES } from '../../../daemons/common/scoreboard-layout.js';
import { SlotWriter } from '../../../daemons/common/slot-writer.js';
import { collect, firstLine, spawnTs } from '../lib/child.js';
import { dir, FIXTURES, newFile, snapshot } from '../lib/scoreboard-files.js';

t.test('createScoreboard: exact size, mode 0644 whatever the umask, no temporary left', async (t) => {
  const file = newFile();
  const old = process.umask(0o077);
  let created: boolean;
  try {
    created = createScoreboard(file, { now: 1_700_000_000_000 });
  } finally {
    process.umask(old);
  }
  t.equal(created, true);
  const st = fs.statSync(file);
  t.equal(st.size, 64 + 64 * 128, 'exactly 8256 bytes');
  t.equal(st.mode & 0o777, 0o644, 'mode 0644 despite umask 077');
  const content = fs.readFileSync(file);
  t.same(checkHeader(content, file), { createdMs: 1_700_000_000_000 });
  t.ok(content.subarray(32).equals(Buffer.alloc(SCOREBOARD_BYTES - 32)), 'everything after the header fields is zero');
  t.same(fs.readdirSync(dir).filter((f) => f.includes(path.basename(file))), [path.basename(file)], 'no temporary file left behind');
  t.same(snapshot(file), { createdMs: 1_700_000_000_000, slots: [] });

  const custom = newFile();
  createScoreboard(custom, { mode: 0o640 });
  t.equal(fs.statSync(custom).mode & 0o777, 0o640, 'mode option');
});

t.test('createScoreboard keeps a valid scoreboard', async (t) => {
  const file = newFile();
  t.equal(createScoreboard(file, { now: 1 }), true);
  const w = new SlotWriter(file, 'main', 0, { pid: 10, generation: 20 });
  w.update({ requests: 99 });
  w.close();
  t.equal(createScoreboard(file, { now: 2 }), false, 'not created again');
  t.equal(createScoreboard(file, { now: 3, replaceInvalid: true }), false, 'not replaced either');
  const snap = snapshot(file);
  t.equal(snap.createdMs, 1, 'the original header');
  t.equal(snap.slots[0]?.requests, 99, 'the slot written before survives');
});

t.test('createScoreboard refuses another layout, or replaces it when asked', async (t) => {
  const cases: Array<[string, Buffer, RegExp]> = [
    ['version 2', (() => {
      const b = Buffer.alloc(SCOREBOARD_BYTES);
      encodeHeader(5).copy(b);
      b.writeUInt32LE(2, 8);
      return b;
    })(), /layout version 2/],
    ['not a scoreboard', Buffer.alloc(SCOREBOARD_BYTES, 'garbage'), /bad magic/],
    ['empty', Buffer.alloc(0), /bad magic|only 0 bytes/],
  ];
  for (const [what, bytes, re] of cases) {
    const file = newFile();
    fs.writeFileSync(file, bytes, { mode: 0o600 });
    t.throws(() => createScoreboard(file), { code: 'SCOREBOARD_BAD_LAYOUT', message: re }, `${what}: refused`);
    t.ok(fs.readFileSync(file).equals(bytes), `${what}: left untouched`);
    t.equal(createScoreboard(file, { replaceInvalid: true, now: 7 }), true, `${what}: replaced with replaceInvalid`);
    t.same(snapshot(file), { createdMs: 7, slots: [] }, `${what}: now a valid, empty scoreboard`);
    t.equal(fs.statSync(file).mode & 0o777, 0o644, `${what}: with mode 0644`);
  }
});

t.test('createScoreboard refuses a truncated scoreboard unless replaceInvalid is set', async (t) => {
  const file = newFile();
  const short = Buffer.alloc(1000);
  encodeHeader(5).copy(short);
  fs.writeFileSync(file, short);
  const r = (() => {
    try {
      return createScoreboard(file);
    } catch (e) {
      return e as Error & { code: string };
    }
  })();
  t.equal(typeof r === 'object' ? r.code : `returned ${String(r)}`, 'SCOREBOARD_BAD_LAYOUT', 'refused like any other invalid object');
  createScoreboard(file, { replaceInvalid: true });
  t.equal(fs.statSync(file).size, SCOREBOARD_BYTES, 'with replaceInvalid it is replaced by a full-size scoreboard');
  t.same(snapshot(file).slots, []);
});

t.test('concurrent creators end with one valid file and no clobbered slot', async (t) => {
  const CREATORS = 5;
  for (let round = 0; round < 1; round++) {
    const file = newFile();
    const children = Array.from({ length: CREATORS }, (_, k) => spawnTs(path.join(FIXTURES, 'scoreboard-create.ts'), [file, String(k + 1)]));
    await Promise.all(children.map((c) => firstLine(c)));
    const results = children.map((c) => collect(c));
    for (const c of children) c.stdin!.end('go\n');
    const outs = await Promise.all(results);
    for (const o of outs) t.equal(o.code, 0, `creator exited 0 ${o.stderr.trim()}`);
    t.equal(outs.filter((o) => o.stdout.includes('created true')).length, 1, `round ${round}: exactly one creator created it`);
    t.equal(fs.statSync(file).size, SCOREBOARD_BYTES);
    const snap = snapshot(file);
    t.same(
      snap.slots.map((s) => [s.name, s.requests, s.generation]),
      Array.from({ length: CREATORS }, (_, k) => [`secondary-${k + 1}`, k + 1, 1001 + k]),
      `round ${round}: every creator's slot is there`,
    );
    t.same(fs.readdirSync(dir).filter((f) => f.includes(`${path.basename(file)}.`)), [], `round ${round}: no temporary files left`);
  }
});
