/**
 * Self-verifying lease tokens (docs/PROTOCOL.md §2.2): main mints a lease that the secondary
 * checks by itself, with no message per lease between them.
 *
 * A token is 41 bytes, written as 82 lowercase hex digits:
 *
 *   0      1        5          11         17           25                       41
 *   | ver  | key id | sequence | expiry   | type tag   | MAC                      |
 *   | 0x01 | 4 B    | uint48   | uint48   | 8 B        | 16 B                     |
 *
 * - key id: the first 4 bytes of HMAC-SHA256(suite key, "dispatchd lease key id"): a token
 *   minted with the key of an earlier start of the suite is told from a forged one.
 * - sequence: a credit the secondary granted (credit-window.ts): each is used once.
 * - expiry: unix ms (big-endian) after which the lease is void.
 * - type tag: the first 8 bytes of SHA-256(type name, UTF-8): the lease is for that type only.
 * - MAC: the first 16 bytes of HMAC-SHA256(subkey, bytes 0 … 24), where subkey =
 *   HKDF-SHA256(ikm = suite key, salt = "dispatchd lease v1", info = "secondary-N generation G",
 *   32 bytes) (RFC 5869, RFC 2104): a token is good for one secondary process only, so a
 *   restarted secondary (a new generation) refuses its predecessor's leases without any list.
 *
 * Truncating HMAC-SHA256 to 128 bits follows RFC 2104 §5 and NIST SP 800-107 (§5.3.3): a
 * forger's chance per try is 2^-128. spec/leases.json has vectors.
 */
import { createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/** The suite key's length, in bytes. */
export const LEASE_KEY_BYTES = 32;
/** A token's length in bytes, and in hex digits. */
export const LEASE_TOKEN_BYTES = 41;
export const LEASE_TOKEN_HEX = LEASE_TOKEN_BYTES * 2;
/** The format version, the token's first byte. */
export const LEASE_TOKEN_VERSION = 1;
/** The largest sequence and expiry a token holds (uint48). */
export const UINT48_MAX = 2 ** 48 - 1;

const MAC_BYTES = 16;
const SIGNED_BYTES = LEASE_TOKEN_BYTES - MAC_BYTES;
const HEX_TOKEN = new RegExp(`^[0-9a-f]{${LEASE_TOKEN_HEX}}$`);

/** What a token says, once parsed (not yet verified). */
export interface LeaseClaims {
  keyId: string;
  seq: number;
  /** Unix ms. */
  exp: number;
  /** 16 hex digits: {@link typeTag} of the type. */
  tag: string;
}

/** Why a token is refused, each with its own code (docs/PROTOCOL.md §2.2). */
export type LeaseFault = 'malformed' | 'old-key' | 'bad-mac' | 'wrong-type' | 'expired';

/** The 4-byte key id of a suite key, as 8 hex digits. */
export function keyIdOf(key: Buffer): string {
  return createHmac('sha256', key).update('dispatchd lease key id').digest().subarray(0, 4).toString('hex');
}

/** The key of one secondary process: HKDF-SHA256 of the suite key, bound to secondary N's generation G. */
export function leaseSubkey(key: Buffer, instance: number, generation: number): Buffer {
  return Buffer.from(hkdfSync('sha256', key, 'dispatchd lease v1', `secondary-${instance} generation ${generation}`, 32));
}

/** The 8-byte tag of a request type, as 16 hex digits. */
export function typeTag(type: string): string {
  return createHash('sha256').update(type, 'utf8').digest().subarray(0, 8).toString('hex');
}

/** A token's bytes and its fields, unchecked; undefined when it is not 82 hex digits of version 1. */
function decodeLeaseToken(token: string): { bytes: Buffer; claims: LeaseClaims } | undefined {
  if (!HEX_TOKEN.test(token)) return undefined;
  const b = Buffer.from(token, 'hex');
  if (b[0] !== LEASE_TOKEN_VERSION) return undefined;
  return { bytes: b, claims: { keyId: b.subarray(1, 5).toString('hex'), seq: b.readUIntBE(5, 6), exp: b.readUIntBE(11, 6), tag: b.subarray(17, 25).toString('hex') } };
}

/** Parses a token's fields without checking them; undefined when it is not 82 hex digits of version 1. */
export function parseLeaseToken(token: string): LeaseClaims | undefined {
  return decodeLeaseToken(token)?.claims;
}

/**
 * Mints and verifies the leases of one secondary process (instance N, generation G): main
 * holds one per secondary it mints for, the secondary one for itself.
 */
export class LeaseSigner {
  readonly keyId: string;
  private readonly keyIdBytes: Buffer;
  private readonly subkey: Buffer;
  private readonly tags = new Map<string, string>();

  constructor(key: Buffer, readonly instance: number, readonly generation: number) {
    if (key.length !== LEASE_KEY_BYTES) throw new RangeError(`a lease key is ${LEASE_KEY_BYTES} bytes, not ${key.length}`);
    this.keyId = keyIdOf(key);
    this.keyIdBytes = Buffer.from(this.keyId, 'hex');
    this.subkey = leaseSubkey(key, instance, generation);
  }

  private tagOf(type: string): string {
    let tag = this.tags.get(type);
    if (tag === undefined) {
      tag = typeTag(type);
      if (this.tags.size < 1024) this.tags.set(type, tag);
    }
    return tag;
  }

  private mac(signed: Buffer): Buffer {
    return createHmac('sha256', this.subkey).update(signed).digest().subarray(0, MAC_BYTES);
  }

  /**
   * A token for one request of `type`, sequence `seq`, void after `exp` (unix ms).
   * @throws RangeError when seq or exp is not a uint48.
   */
  mint(seq: number, exp: number, type: string): string {
    if (!Number.isSafeInteger(seq) || seq < 0 || seq > UINT48_MAX) throw new RangeError(`lease sequence ${seq} is not a uint48`);
    if (!Number.isSafeInteger(exp) || exp < 0 || exp > UINT48_MAX) throw new RangeError(`lease expiry ${exp} is not a uint48`);
    const b = Buffer.allocUnsafe(LEASE_TOKEN_BYTES);
    b[0] = LEASE_TOKEN_VERSION;
    this.keyIdBytes.copy(b, 1);
    b.writeUIntBE(seq, 5, 6);
    b.writeUIntBE(exp, 11, 6);
    b.write(this.tagOf(type), 17, 'hex');
    this.mac(b.subarray(0, SIGNED_BYTES)).copy(b, SIGNED_BYTES);
    return b.toString('hex');
  }

  /**
   * Checks a token presented for a request of `type` at `now` (unix ms), in this order:
   * format, key id, MAC, type, expiry. Single use is the caller's (credit-window.ts).
   * @returns the claims, or the first fault found.
   */
  verify(token: string, type: string, now: number): { ok: true; claims: LeaseClaims } | { ok: false; fault: LeaseFault; claims?: LeaseClaims } {
    const decoded = decodeLeaseToken(token);
    if (!decoded) return { ok: false, fault: 'malformed' };
    const { bytes: b, claims } = decoded;
    if (claims.keyId !== this.keyId) return { ok: false, fault: 'old-key', claims };
    if (!timingSafeEqual(this.mac(b.subarray(0, SIGNED_BYTES)), b.subarray(SIGNED_BYTES))) return { ok: false, fault: 'bad-mac', claims };
    if (claims.tag !== this.tagOf(type)) return { ok: false, fault: 'wrong-type', claims };
    if (claims.exp < now) return { ok: false, fault: 'expired', claims };
    return { ok: true, claims };
  }
}
