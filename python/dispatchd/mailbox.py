"""Mailbox messages: the lines daemons write to each other's FIFOs (docs/PROTOCOL.md §2).

A message is one JSON object followed by ``\\n``, at most PIPE_BUF = 4096 bytes in all,
written with one ``write(2)`` (atomic on a pipe). This module validates one line as the
daemons do (daemons/common/messages.ts, mailbox-codec.ts): clients never write mailboxes, but
a tool or a worker in another language may read or check them, and spec/mailbox.json's
vectors run against it.
"""

from __future__ import annotations

import json
import re

from .errors import DispatchError

#: Linux PIPE_BUF, in bytes: the largest write to a pipe that is atomic.
PIPE_BUF = 4096
MAILBOX_VERSION = 1
#: The most secondaries a suite runs (topology.ts MAX_SECONDARIES: 64 slots less main and the watchdog).
MAX_SECONDARIES = 62
_NAME = re.compile(r"^(main|watchdog|secondary-[1-9][0-9]?)\Z")
_LEASE = re.compile(r"^[0-9a-f]{32}\Z")
_MAX_SAFE = 2**53 - 1


def _uint(x: object, hi: int = _MAX_SAFE) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= hi


def _u32(x: object) -> bool:
    return _uint(x, 0xFFFFFFFF)


def _id(x: object) -> bool:
    return isinstance(x, str) and 1 <= len(x) <= 64


def _name(x: object) -> bool:
    m = isinstance(x, str) and _NAME.match(x)
    return bool(m) and (not x.startswith("secondary-") or int(x[10:]) <= MAX_SECONDARIES)


def _lease(x: object) -> bool:
    return isinstance(x, str) and _LEASE.match(x) is not None


def _type(x: object) -> bool:
    return isinstance(x, str) and 1 <= len(x) <= 64


def _seq(x: object) -> bool:
    """A lease sequence (lease-token.ts: uint48, from 1)."""
    return _uint(x, 2**48 - 1) and x >= 1


#: Most sequences a ``credit`` lists as claimed, and most leases as ended (messages.ts CREDIT_LIST_MAX).
CREDIT_LIST_MAX = 50


def _seq_list(x: object) -> bool:
    return isinstance(x, list) and len(x) <= CREDIT_LIST_MAX and all(_seq(s) for s in x)


def _ended_list(x: object) -> bool:
    return (isinstance(x, list) and len(x) <= CREDIT_LIST_MAX
            and all(isinstance(e, list) and len(e) == 3 and _seq(e[0]) and _uint(e[1]) and _uint(e[2]) for e in x))


# Each message kind: its fields and their checks (required unless listed in _OPTIONAL).
_FIELDS = {
    "credit": {"from": _name, "gen": _u32, "seq": _seq, "n": lambda x: _uint(x, 100_000), "exp": _uint,
               "claimed": _seq_list, "ended": _ended_list},
    "want": {"from": lambda x: x == "main", "gen": _u32, "to": _u32},
    "reserve": {"id": _id, "lease": _lease, "gen": _u32, "exp": _uint, "type": _type},
    "reserved": {"id": _id, "from": _name, "gen": _u32, "lease": _lease},
    "refused": {"id": _id, "from": _name, "gen": _u32,
                "reason": lambda x: x in ("full", "stopping", "stale-generation", "expired", "unknown-type")},
    "done": {"from": _name, "gen": _u32, "lease": _lease, "claimed": lambda x: isinstance(x, bool),
             "requests": _uint, "failed": _uint},
    "ready": {"from": _name, "gen": _u32},
    "ping": {"from": lambda x: x == "watchdog", "seq": _uint},
    "pong": {"from": _name, "seq": _uint, "pid": _uint, "gen": _u32},
}
_OPTIONAL = {("reserve", "type")}


def decode_line(line: bytes) -> dict:
    """Validates one mailbox line (without its newline) and returns the message.

    Raises:
        DispatchError: MESSAGE_TOO_LARGE (the line with its newline over PIPE_BUF),
            MESSAGE_INVALID (not one JSON object, ``v`` not 1, unknown ``t``, a missing,
            unknown or ill-typed field).
    """
    if len(line) + 1 > PIPE_BUF:
        raise DispatchError("MESSAGE_TOO_LARGE", f"failed to decode mailbox message: line of {len(line) + 1} bytes exceeds PIPE_BUF ({PIPE_BUF} bytes)")
    if len(line) < 2 or line[:1] != b"{" or line[-1:] != b"}":
        raise DispatchError("MESSAGE_INVALID", "failed to decode mailbox message: not valid JSON (a message is one JSON object on one line)")
    try:
        msg = json.loads(line.decode("utf-8"), parse_constant=_no_constant)
    except ValueError:
        raise DispatchError("MESSAGE_INVALID", "failed to decode mailbox message: not valid JSON") from None
    if not isinstance(msg, dict) or msg.get("v") != MAILBOX_VERSION or isinstance(msg.get("v"), bool):
        raise DispatchError("MESSAGE_INVALID", "failed to decode mailbox message: 'v' is not 1")
    t = msg.get("t")
    fields = _FIELDS.get(t) if isinstance(t, str) else None
    if fields is None:
        raise DispatchError("MESSAGE_INVALID", f"failed to decode mailbox message: unknown message type {t!r}")
    for key in msg:
        if key not in ("v", "t") and key not in fields:
            raise DispatchError("MESSAGE_INVALID", f"failed to decode mailbox message: unknown field '{key}' in '{t}'")
    for key, check in fields.items():
        if key not in msg:
            if (t, key) in _OPTIONAL:
                continue
            raise DispatchError("MESSAGE_INVALID", f"failed to decode mailbox message: '{t}' lacks '{key}'")
        if not check(msg[key]):
            raise DispatchError("MESSAGE_INVALID", f"failed to decode mailbox message: invalid '{key}' in '{t}'")
    return msg


#: Every message starts so; where a damaged line is tried again.
MESSAGE_START = b'{"v":'


def recover_suffix(line: bytes) -> dict | None:
    """A damaged line's last chance: its suffix from the last ``{"v":`` (not at its start),
    decoded as a message of its own. Every daemon writes a whole line in one atomic write, so
    a valid message can only be damaged by bytes glued in front of it. Returns the message or None."""
    at = line.rfind(MESSAGE_START)
    if at <= 0 or len(line) - at > PIPE_BUF - 1:
        return None
    try:
        return decode_line(line[at:])
    except DispatchError:
        return None


def encode_message(msg: dict) -> bytes:
    """Encodes a message as one line (``v`` and ``t`` first, as every daemon writes them).

    Raises:
        DispatchError: MESSAGE_TOO_LARGE when the line with its newline exceeds PIPE_BUF.
    """
    line = (json.dumps(msg, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
    if len(line) > PIPE_BUF:
        raise DispatchError("MESSAGE_TOO_LARGE", f"failed to encode mailbox message '{msg.get('t')}': {len(line)} bytes exceed PIPE_BUF ({PIPE_BUF})")
    return line


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
