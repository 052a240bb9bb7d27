"""spec/leases.json, the lease token vectors (docs/PROTOCOL.md §2.2), checked by a second,
independent implementation of the format with Python's standard library: HKDF-SHA256
(RFC 5869) written out from hmac, HMAC-SHA256 truncated to 128 bits (RFC 2104)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
import unittest

from .fake_servers import SPEC

TOKEN_BYTES = 41
SIGNED_BYTES = 25


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869: extract, then expand."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def key_id(key: bytes) -> str:
    return hmac.new(key, b"dispatchd lease key id", hashlib.sha256).digest()[:4].hex()


def subkey(key: bytes, instance: int, generation: int) -> bytes:
    return hkdf_sha256(key, b"dispatchd lease v1", f"secondary-{instance} generation {generation}".encode(), 32)


def type_tag(type_: str) -> str:
    return hashlib.sha256(type_.encode("utf-8")).digest()[:8].hex()


def uint48(b: bytes) -> int:
    return struct.unpack(">Q", b"\0\0" + b)[0]


def mint(key: bytes, instance: int, generation: int, seq: int, exp: int, type_: str) -> str:
    signed = (bytes([1]) + bytes.fromhex(key_id(key)) + struct.pack(">Q", seq)[2:]
              + struct.pack(">Q", exp)[2:] + bytes.fromhex(type_tag(type_)))
    return (signed + hmac.new(subkey(key, instance, generation), signed, hashlib.sha256).digest()[:16]).hex()


def verify(key: bytes, instance: int, generation: int, token: str, type_: str, now: int) -> str:
    """The first fault found, in the documented order (format, key id, MAC, type, expiry), or "ok"."""
    if len(token) != 2 * TOKEN_BYTES or any(c not in "0123456789abcdef" for c in token):
        return "malformed"
    b = bytes.fromhex(token)
    if b[0] != 1:
        return "malformed"
    if b[1:5].hex() != key_id(key):
        return "old-key"
    mac = hmac.new(subkey(key, instance, generation), b[:SIGNED_BYTES], hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(mac, b[SIGNED_BYTES:]):
        return "bad-mac"
    if b[17:25].hex() != type_tag(type_):
        return "wrong-type"
    if uint48(b[11:17]) < now:
        return "expired"
    return "ok"


class LeaseVectors(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        with open(os.path.join(SPEC, "leases.json"), encoding="utf-8") as fh:
            cls.spec = json.load(fh)
        cls.key = bytes.fromhex(cls.spec["key_hex"])

    def test_derived(self) -> None:
        s, d = self.spec, self.spec["derived"]
        self.assertEqual(key_id(self.key), d["key_id"])
        self.assertEqual(key_id(bytes.fromhex(s["old_key_hex"])), d["old_key_id"])
        self.assertEqual(subkey(self.key, s["instance"], s["generation"]).hex(), d["subkey_hex"])
        self.assertEqual(type_tag("echo"), d["type_tag_echo"])

    def test_vectors(self) -> None:
        s = self.spec
        self.assertGreaterEqual(len(s["vectors"]), 10)
        kinds = set()
        for v in s["vectors"]:
            with self.subTest(v["name"]):
                got = verify(self.key, s["instance"], s["generation"], v["token"], v["type"], s["now"])
                self.assertEqual(got, v["result"])
                kinds.add(got)
                if v["result"] == "ok":
                    self.assertEqual(mint(self.key, s["instance"], s["generation"], v["seq"], v["exp"], v["type"]), v["token"])
                    b = bytes.fromhex(v["token"])
                    self.assertEqual((uint48(b[5:11]), uint48(b[11:17])), (v["seq"], v["exp"]))
        self.assertEqual(kinds, {"ok", "malformed", "old-key", "bad-mac", "wrong-type", "expired"},
                         "the vectors cover every result")

    def test_any_changed_digit_is_refused(self) -> None:
        s = self.spec
        token = mint(self.key, s["instance"], s["generation"], 42, s["now"] + 3000, "echo")
        self.assertEqual(verify(self.key, s["instance"], s["generation"], token, "echo", s["now"]), "ok")
        for i in range(len(token)):
            changed = token[:i] + ("1" if token[i] == "0" else "0") + token[i + 1:]
            self.assertNotEqual(verify(self.key, s["instance"], s["generation"], changed, "echo", s["now"]), "ok", i)


if __name__ == "__main__":
    unittest.main()
