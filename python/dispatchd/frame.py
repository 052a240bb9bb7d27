"""Frames of dispatchd's stream sockets (client ↔ main, client ↔ secondary).

A frame, all integers big-endian (docs/PROTOCOL.md §1; daemons/common/frame.ts)::

     0      2     3      4              8              12           12+H         12+H+B
     +------+-----+------+--------------+--------------+------------+------------+
     | "DQ" | ver | flags| header len H | body len B   | header JSON| body bytes |
     +------+-----+------+--------------+--------------+------------+------------+

``ver`` is 1, ``flags`` 0, H is 2 … 65536 bytes of a UTF-8 JSON object, B is 0 … the
receiver's limit. Every decoding error is final for the connection.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

from .errors import DispatchError

FRAME_MAGIC = 0x4451  # "DQ"
FRAME_VERSION = 1
FRAME_PREFIX_BYTES = 12
#: Largest JSON header, in bytes.
MAX_HEADER_BYTES = 64 * 1024
#: Ceiling of any body, in bytes (a receiver's limit may only be lower).
MAX_BODY_BYTES_CEILING = 1024 * 1024 * 1024

_PREFIX = struct.Struct(">HBBII")


@dataclass
class Frame:
    """One decoded frame: its JSON header (a dict) and its body (bytes)."""

    header: dict
    body: bytes = field(default=b"")


def encode_frame(header: dict, body: bytes = b"") -> bytes:
    """Encodes one frame: the header as compact UTF-8 JSON, the body as is.

    Raises:
        DispatchError: FRAME_TOO_LARGE when the header exceeds 65536 bytes.
    """
    js = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(js) > MAX_HEADER_BYTES:
        raise DispatchError("FRAME_TOO_LARGE", f"failed to encode frame: header of {len(js)} bytes exceeds {MAX_HEADER_BYTES} bytes")
    return _PREFIX.pack(FRAME_MAGIC, FRAME_VERSION, 0, len(js), len(body)) + js + bytes(body)


def _no_constant(name: str) -> object:
    """NaN and ±Infinity are not JSON (RFC 8259): refused, as JavaScript's JSON.parse does."""
    raise ValueError(f"{name} is not JSON")


class FrameDecoder:
    """Incremental frame decoder: :meth:`push` bytes in any split, take frames with :meth:`next`.

    Memory is bounded: a prefix announcing a header over 65536 bytes or a body over
    ``max_body_bytes`` is an error before either is read. After an error every call to
    :meth:`next` raises it again (a length-prefixed stream cannot resynchronise).
    """

    def __init__(self, max_body_bytes: int) -> None:
        """``max_body_bytes``: the largest body accepted, 0 … 1 GiB."""
        if not 0 <= max_body_bytes <= MAX_BODY_BYTES_CEILING:
            raise ValueError(f"max_body_bytes must be 0..{MAX_BODY_BYTES_CEILING}, got {max_body_bytes}")
        self.max_body_bytes = max_body_bytes
        self._buf = bytearray()
        self._failed: DispatchError | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buf)

    def push(self, chunk: bytes | bytearray | memoryview) -> None:
        """Adds received bytes."""
        if self._failed is None:
            self._buf += chunk

    def next(self) -> Frame | None:
        """Returns the next whole frame, or None when more bytes are needed.

        Raises:
            DispatchError: FRAME_BAD_MAGIC, FRAME_BAD_VERSION, FRAME_BAD_HEADER (flags ≠ 0,
                H < 2, not UTF-8, not JSON, not an object), FRAME_TOO_LARGE (H > 65536),
                PAYLOAD_TOO_LARGE (B over the limit). The error is final.
        """
        if self._failed is not None:
            raise self._failed
        buf = self._buf
        if len(buf) >= 2 and (buf[0] << 8 | buf[1]) != FRAME_MAGIC:
            magic = buf[0] << 8 | buf[1]
            self._fail(DispatchError("FRAME_BAD_MAGIC", f'failed to decode frame: bad magic 0x{magic:04x}, expected 0x4451 ("DQ"); the peer does not speak the dispatchd protocol'))
        if len(buf) < FRAME_PREFIX_BYTES:
            return None
        _, version, flags, hlen, blen = _PREFIX.unpack_from(buf, 0)
        if version != FRAME_VERSION:
            self._fail(DispatchError("FRAME_BAD_VERSION", f"failed to decode frame: version {version} is not supported (this side speaks {FRAME_VERSION}); upgrade the older side"))
        if flags != 0:
            self._fail(DispatchError("FRAME_BAD_HEADER", f"failed to decode frame: reserved flags byte is {flags}, expected 0"))
        if hlen < 2:
            self._fail(DispatchError("FRAME_BAD_HEADER", f"failed to decode frame: header length {hlen} is below 2 bytes (the shortest JSON object, {{}})"))
        if hlen > MAX_HEADER_BYTES:
            self._fail(DispatchError("FRAME_TOO_LARGE", f"failed to decode frame: header of {hlen} bytes exceeds {MAX_HEADER_BYTES} bytes"))
        if blen > self.max_body_bytes:
            what = "this receiver takes no payload" if self.max_body_bytes == 0 else f"the maximum is {self.max_body_bytes} bytes"
            self._fail(DispatchError("PAYLOAD_TOO_LARGE", f"failed to accept a request: its payload of {blen} bytes is too large ({what})",
                                     fields={"max_bytes": self.max_body_bytes, "size": blen}))
        total = FRAME_PREFIX_BYTES + hlen + blen
        if len(buf) < total:
            return None
        raw = bytes(buf[FRAME_PREFIX_BYTES:FRAME_PREFIX_BYTES + hlen])
        body = bytes(buf[FRAME_PREFIX_BYTES + hlen:total])
        del buf[:total]
        try:
            header = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
        except UnicodeDecodeError:
            self._fail(DispatchError("FRAME_BAD_HEADER", "failed to decode frame: header is not valid UTF-8"))
        except ValueError:
            self._fail(DispatchError("FRAME_BAD_HEADER", "failed to decode frame: header is not valid JSON"))
        if not isinstance(header, dict):
            self._fail(DispatchError("FRAME_BAD_HEADER", "failed to decode frame: header is not a JSON object"))
        return Frame(header, body)

    def _fail(self, err: DispatchError) -> None:
        self._failed = err
        self._buf = bytearray()
        raise err
