/**
 * Lease tokens (lease-token.ts) against spec/leases.json, the language-neutral vectors, and
 * their properties: what main mints the secondary accepts once bound to its process, type and
 * expiry, and any change to a token is refused.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { keyIdOf, LEASE_TOKEN_HEX, leaseSubkey, LeaseSigner, parseLeaseToken, typeTag, UINT48_MAX } from '../../../daemons/common/lease-token.js';

interface Vectors {
  key_hex: string;
  old_key_hex: string;
  instance: number;
  generation: number;
  now: number;
  derived: { key_id: string; old_key_id: string; subkey_hex: string; type_tag_echo: string };
  vectors: Array<{ name: string; token: string; type: string; result: string; seq?: number; exp?: number }>;
}

const spec = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '..', '..', '..', 'spec', 'leases.json'), 'utf8')) as Vectors;
const key = Buffer.from(spec.key_hex, 'hex');

t.test('spec/leases.json: derived values', async (t) => {
  t.equal(keyIdOf(key), spec.derived.key_id);
  t.equal(keyIdOf(Buffer.from(spec.old_key_hex, 'hex')), spec.derived.old_key_id);
  t.equal(leaseSubkey(key, spec.instance, spec.generation).toString('hex'), spec.derived.subkey_hex);
  t.equal(typeTag('echo'), spec.derived.type_tag_echo);
});

t.test('spec/leases.json: every vector verifies to its result, and good ones mint byte for byte', async (t) => {
  const signer = new LeaseSigner(key, spec.instance, spec.generation);
  t.ok(spec.vectors.length >= 10);
  for (const v of spec.vectors) {
    const r = signer.verify(v.token, v.type, spec.now);
    t.equal(r.ok ? 'ok' : r.fault, v.result, v.name);
    if (v.result === 'ok') {
      t.equal(signer.mint(v.seq!, v.exp!, v.type), v.token, `${v.name}: minted again`);
      t.match(parseLeaseToken(v.token), { seq: v.seq, exp: v.exp, keyId: spec.derived.key_id }, `${v.name}: parsed`);
    }
  }
});

t.test('a minted lease verifies, for its process and type only; any changed digit is refused', async (t) => {
  const k = Buffer.alloc(32, 7);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: UINT48_MAX }), fc.integer({ min: 0, max: UINT48_MAX }), fc.string({ minLength: 1, maxLength: 64 }), fc.nat(LEASE_TOKEN_HEX - 1), fc.integer({ min: 1, max: 0xffffffff }), (seq, exp, type, at, gen) => {
      const s = new LeaseSigner(k, 3, gen);
      const token = s.mint(seq, exp, type);
      t.equal(token.length, LEASE_TOKEN_HEX);
      const ok = s.verify(token, type, exp);
      if (!ok.ok || ok.claims.seq !== seq || ok.claims.exp !== exp) throw new Error(`minted lease refused: ${JSON.stringify(ok)}`);
      const digit = (parseInt(token[at]!, 16) ^ 1).toString(16);
      const changed = token.slice(0, at) + digit + token.slice(at + 1);
      const r = s.verify(changed, type, exp);
      if (r.ok) throw new Error(`changed digit ${at} accepted`);
      const other = new LeaseSigner(k, 3, gen === 1 ? 2 : gen - 1).verify(token, type, exp);
      if (other.ok || other.fault !== 'bad-mac') throw new Error('another generation accepted it');
      if (s.verify(token, type, exp + 1).ok) throw new Error('accepted after its expiry');
    }),
    { numRuns: 300 },
  );
});

t.test('mint refuses what a token cannot hold; a key must be 32 bytes', async (t) => {
  const s = new LeaseSigner(key, 1, 1);
  t.throws(() => s.mint(-1, 1, 'echo'), RangeError);
  t.throws(() => s.mint(1, UINT48_MAX + 1, 'echo'), RangeError);
  t.throws(() => s.mint(1.5, 1, 'echo'), RangeError);
  t.throws(() => new LeaseSigner(Buffer.alloc(16), 1, 1), RangeError);
});
