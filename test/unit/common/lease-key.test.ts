/** The suite's lease key file (lease-key.ts). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createLeaseKey, loadLeaseKey, removeLeaseKey } from '../../../daemons/common/lease-key.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lease-key-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

t.test('create makes a fresh 32-byte key, mode 0400, each time; load reads it', async (t) => {
  const file = path.join(dir, 'a.lease-key');
  createLeaseKey(file);
  t.equal(fs.statSync(file).mode & 0o777, 0o400);
  const k1 = loadLeaseKey(file);
  t.equal(k1.length, 32);
  createLeaseKey(file);
  const k2 = loadLeaseKey(file);
  t.not(k1.toString('hex'), k2.toString('hex'), 'a new start of the suite, a new key');
  t.same(fs.readdirSync(dir), ['a.lease-key'], 'no temporary file left');
  removeLeaseKey(file);
  t.notOk(fs.existsSync(file));
  removeLeaseKey(file);
});

t.test('load makes the key when there is none, the same one for every reader', async (t) => {
  const file = path.join(dir, 'b.lease-key');
  const k = loadLeaseKey(file);
  t.same(loadLeaseKey(file), k);
  t.equal(fs.statSync(file).mode & 0o777, 0o400);
});

t.test('a key others may read, or of the wrong size, is refused with SCOREBOARD_IO', async (t) => {
  const file = path.join(dir, 'c.lease-key');
  fs.writeFileSync(file, Buffer.alloc(32), { mode: 0o644 });
  t.throws(() => loadLeaseKey(file), { code: 'SCOREBOARD_IO', message: /mode is 644/ });
  fs.chmodSync(file, 0o600);
  fs.writeFileSync(file, Buffer.alloc(31));
  t.throws(() => loadLeaseKey(file), { code: 'SCOREBOARD_IO', message: /31 bytes/ });
  t.throws(() => loadLeaseKey(path.join(dir, 'missing', 'x')), { code: 'SCOREBOARD_IO', message: /cannot be made/ });
});
