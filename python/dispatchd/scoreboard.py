"""Reading dispatchd's scoreboard, and the report ``python3 -m dispatchd status`` prints.

The scoreboard is the file ``/dev/shm/dispatchd.scoreboard`` (POSIX shared memory, layout
version 1): a 64-byte header and 64 slots of 128 bytes, little-endian, each slot written by
one daemon under a sequence lock. Source: docs/SCOREBOARD.md; daemons/common/scoreboard.ts
(the writer and the Node reader) and daemons/client/status.ts (the report).
"""

from __future__ import annotations

import datetime
import math
import os
import struct
import time
from dataclasses import dataclass

from .errors import DispatchError

DEFAULT_SCOREBOARD = "/dev/shm/dispatchd.scoreboard"
MAGIC = b"DSPSCORE"
VERSION = 1
HEADER_BYTES = 64
SLOT_BYTES = 128
SLOT_COUNT = 64
SCOREBOARD_BYTES = HEADER_BYTES + SLOT_BYTES * SLOT_COUNT  # 8256
#: Reads of one slot before a reader gives up waiting for an even ``seq`` (a writer that died
#: between its two ``seq`` writes leaves it odd until its next start).
MAX_SEQ_READS = 10_000
#: A running daemon whose heartbeat is older than this, in ms, is shown ``unresponsive``.
STALE_HEARTBEAT_MS = 3000

KINDS = ("free", "main", "secondary", "watchdog")
STATES = ("unknown", "starting", "ready", "busy", "full", "stopping", "stopped")
_SLOT = struct.Struct("<IIIIIIIIII QQQQQ 32s QI 4x")
_U32 = struct.Struct("<I")


@dataclass(frozen=True)
class Slot:
    """One used slot (kind ≠ free), decoded. Times in unix ms, latencies in µs.

    ``consistent`` is False when ``seq`` stayed odd for :data:`MAX_SEQ_READS` reads: the
    writer died mid-update; the copy is the best there is and its heartbeat shows it stale.
    """

    kind: str
    instance: int
    pid: int
    state: str
    generation: int
    starts: int
    active: int
    capacity: int
    queued: int
    requests: int
    failures: int
    started_ms: int
    heartbeat_ms: int
    incidents: int
    name: str
    latency_sum_us: int
    latency_max_us: int
    consistent: bool = True


@dataclass(frozen=True)
class Snapshot:
    """The scoreboard at one moment: when it was created (unix ms) and every used slot."""

    created_ms: int
    slots: list[Slot]


def decode_slot(raw: bytes, consistent: bool = True) -> Slot | None:
    """Decodes 128 bytes of a slot; None for a free slot (kind 0) or an unknown kind."""
    (_seq, kind, instance, pid, state, generation, starts, active, capacity, queued, requests, failures,
     started_ms, heartbeat_ms, incidents, name, lat_sum, lat_max) = _SLOT.unpack(raw)
    if not 0 < kind < len(KINDS):
        return None
    return Slot(KINDS[kind], instance, pid, STATES[state] if state < len(STATES) else "unknown", generation,
                starts, active, capacity, queued, requests, failures, started_ms, heartbeat_ms, incidents,
                name.split(b"\0", 1)[0].decode("utf-8", "replace"), lat_sum, lat_max, consistent)


def _bad(path: str, what: str) -> DispatchError:
    return DispatchError("SCOREBOARD_BAD_LAYOUT", f"failed to read scoreboard '{path}': {what}; if it is the suite's scoreboard, "
                         "restart the suite (systemctl restart dispatchd.target) to recreate it, else name the suite's "
                         "([paths] scoreboard, default /dev/shm/dispatchd.scoreboard)")


def read_scoreboard(path: str | None = None) -> Snapshot:
    """Reads every used slot of the scoreboard at ``path`` (None: /dev/shm/dispatchd.scoreboard),
    each one consistent (never half-written).

    Each slot is read under its sequence lock: ``seq`` first (4 bytes), then the 128-byte
    copy, then ``seq`` again; the copy counts only if ``seq`` was even and unchanged. An odd
    or changed ``seq`` is read again, at most :data:`MAX_SEQ_READS` times.

    Raises:
        DispatchError: SCOREBOARD_MISSING (no file: the suite is not running),
            SCOREBOARD_OPEN_FAILED (permission, I/O), SCOREBOARD_BAD_LAYOUT (magic, version,
            size or geometry not layout version 1).
    """
    path = path or DEFAULT_SCOREBOARD
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise DispatchError("SCOREBOARD_MISSING", f"failed to open scoreboard '{path}': it does not exist; is dispatchd.target running (systemctl start dispatchd.target)?") from None
    except OSError as err:
        raise DispatchError("SCOREBOARD_OPEN_FAILED", f"failed to open scoreboard '{path}': {err.strerror or err}") from err
    try:
        head = os.pread(fd, HEADER_BYTES, 0)
        size = os.fstat(fd).st_size
        if size != SCOREBOARD_BYTES:
            raise _bad(path, f"{size} bytes, expected {SCOREBOARD_BYTES}")
        if head[0:8] != MAGIC:
            raise _bad(path, "bad magic, not a dispatchd scoreboard")
        version, header_size, slot_size, slot_count = struct.unpack_from("<IIII", head, 8)
        if version != VERSION:
            raise _bad(path, f"layout version {version}, this reader reads {VERSION}")
        if (header_size, slot_size, slot_count) != (HEADER_BYTES, SLOT_BYTES, SLOT_COUNT):
            raise _bad(path, "header, slot size or slot count differ from layout version 1")
        created_ms = struct.unpack_from("<Q", head, 24)[0]
        slots = []
        for i in range(SLOT_COUNT):
            slot = decode_slot(*_read_slot(fd, HEADER_BYTES + i * SLOT_BYTES))
            if slot is not None:
                slots.append(slot)
        return Snapshot(created_ms, slots)
    except OSError as err:
        raise DispatchError("SCOREBOARD_OPEN_FAILED", f"failed to read scoreboard '{path}': {err.strerror or err}") from err
    finally:
        os.close(fd)


def _read_slot(fd: int, off: int) -> tuple[bytes, bool]:
    """One slot under its seqlock: (copy, consistent)."""
    raw = b""
    for _ in range(MAX_SEQ_READS):
        s1 = _U32.unpack(os.pread(fd, 4, off))[0]
        if s1 % 2 == 1:
            continue  # being written: the writer holds the lock for microseconds
        raw = os.pread(fd, SLOT_BYTES, off)
        if _U32.unpack(os.pread(fd, 4, off))[0] == s1:
            return raw, True
    return raw or os.pread(fd, SLOT_BYTES, off), False


def _alive(pid: int) -> bool:
    """Whether a process exists (a /proc look-up; never a signal)."""
    return pid > 0 and os.path.exists(f"/proc/{pid}")


def status_report(path: str, snap: Snapshot, now_ms: int | None = None, alive=_alive) -> dict:
    """The ``status --json`` object: ``scoreboard``, ``created_at``, ``daemons`` and ``types`` (status.ts).

    Every slot with kind ≠ 0 is listed (a secondary scaled away included), main first, then the
    secondaries by N, then the watchdog. ``state`` is the slot's, or ``dead`` (its pid is gone
    without having stopped), ``unresponsive`` (heartbeat older than STALE_HEARTBEAT_MS), or ``absent``
    (main or the watchdog never wrote its slot).
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    order = {"main": lambda s: 0, "secondary": lambda s: s.instance}
    daemons = []
    for s in sorted(snap.slots, key=lambda s: order.get(s.kind, lambda s: 10_000)(s)):
        age = max(0, now - s.heartbeat_ms)
        state = s.state
        if state != "stopped":
            if not alive(s.pid):
                state = "dead"
            elif age > STALE_HEARTBEAT_MS:
                state = "unresponsive"
        daemons.append({
            "name": s.name, "pid": s.pid, "state": state, "requests": s.requests, "failures": s.failures,
            "active": s.active, "capacity": s.capacity, "queued": s.queued, "heartbeat_age_ms": age,
            "restarts": max(0, s.starts - 1), "generation": s.generation, "started_at": _iso(s.started_ms),
            "incidents": s.incidents,
            "latency_avg_ms": _js_round(s.latency_sum_us / s.requests) / 1000 if s.requests > 0 else 0,
            "latency_max_ms": s.latency_max_us / 1000, "latency_sum_us": s.latency_sum_us,
        })
    for name in ("main", "watchdog"):
        if not any(d["name"] == name for d in daemons):
            row = {"name": name, "pid": 0, "state": "absent", "requests": 0, "failures": 0, "active": 0, "capacity": 0,
                   "queued": 0, "heartbeat_age_ms": 0, "restarts": 0, "generation": 0, "started_at": "", "incidents": 0,
                   "latency_avg_ms": 0, "latency_max_ms": 0, "latency_sum_us": 0}
            if name == "main":
                daemons.insert(0, row)
            else:
                daemons.append(row)
    from .served_types import live_served_types, type_statuses
    types = type_statuses(live_served_types(path, snap.slots, alive))
    report = {"scoreboard": path, "created_at": _iso(snap.created_ms), "daemons": daemons, "types": types}
    inconsistent = [s.name for s in snap.slots if not s.consistent]
    if inconsistent:
        report["inconsistent"] = inconsistent  # seq stayed odd: a writer died mid-update
    return report


def _js_round(x: float) -> int:
    """JavaScript's Math.round (half up), not Python's round (half to even)."""
    return math.floor(x + 0.5)


def _iso(ms: int) -> str:
    """Unix ms as JavaScript's Date.toISOString: 2026-12-07T04:13:05.123Z."""
    d = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def problems(report: dict) -> list[str]:
    """One line per daemon that is not running as it should, saying where to look."""
    out = []
    for d in report["daemons"]:
        if d["state"] in ("dead", "unresponsive", "absent"):
            unit = _unit_of(d["name"])
            out.append(f"{d['name']} is {d['state']}: see systemctl status {unit} and journalctl -u {unit} -p warning")
    for name in report.get("inconsistent", []):
        out.append(f"{name}'s slot is inconsistent (its seq stayed odd: a writer died mid-update; shown as last read): "
                   f"see systemctl status {_unit_of(name)}")
    return out


def _unit_of(name: str) -> str:
    if name.startswith("secondary-"):
        return f"dispatchd-secondary@{name[len('secondary-'):]}.service"
    return f"dispatchd-{name}.service"


def format_table(report: dict) -> str:
    """The report as the aligned table of ``dispatchctl status``."""
    rows = [["NAME", "PID", "STATE", "ACTIVE", "REQUESTS", "FAILED", "LATENCY", "HEARTBEAT", "RESTARTS"]]
    for d in report["daemons"]:
        if d["state"] == "absent":
            rows.append([d["name"], "-", d["state"], "-", "-", "-", "-", "-", "-"])
            continue
        lat = f"{_latency(d['latency_avg_ms'])}/{_latency(d['latency_max_ms'])}" if d["requests"] > 0 and d["name"] != "watchdog" else "-"
        active = f"{d['active']}/{d['capacity']}" if d["capacity"] else str(d["active"])
        rows.append([d["name"], str(d["pid"]), d["state"], active, str(d["requests"]), str(d["failures"]), lat,
                     f"{_age(d['heartbeat_age_ms'])} ago", str(d["restarts"])])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    left = {0, 2}
    lines = []
    for r in rows:
        cells = [c.ljust(widths[i]) if i in left else c.rjust(widths[i]) for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _age(ms: int) -> str:
    if ms < 10_000:
        return f"{ms / 1000:.1f}s"
    if ms < 3_600_000:
        return f"{_js_round(ms / 1000)}s"
    return f"{ms / 3_600_000:.1f}h"


def _latency(ms: float) -> str:
    if ms < 10:
        return f"{ms:.2f}ms"
    if ms < 1000:
        return f"{_js_round(ms)}ms"
    return f"{ms / 1000:.1f}s"


__all__ = ["Slot", "Snapshot", "read_scoreboard", "decode_slot", "status_report", "format_table", "problems"]
