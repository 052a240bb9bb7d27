"""The served-types files: which request types each secondary serves, with limits and counters.

Each secondary replaces ``/dev/shm/dispatchd.scoreboard.secondary-N.types`` atomically
(written aside, then renamed), so a reader sees a whole file. A file counts only while its
writer runs: its slot is not ``stopped``, its pid exists, and its ``generation`` is the
slot's. Format: docs/SCOREBOARD.md §6; source: daemons/common/served-types.ts.
"""

from __future__ import annotations

import json

from .scoreboard import _js_round

SERVED_TYPES_VERSION = 1
_COUNTS = ("concurrency", "deadline_ms", "max_payload_bytes", "max_result_bytes", "leases", "requests",
           "failures", "latency_sum_us", "latency_max_us")


def _count(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _valid_type(t: object) -> bool:
    return (isinstance(t, dict) and isinstance(t.get("name"), str) and 1 <= len(t["name"]) <= 64
            and t.get("handler") in ("builtin", "exec", "module") and isinstance(t.get("idempotent"), bool)
            and all(_count(t.get(k)) for k in _COUNTS))


def parse_served_types(text: str) -> dict | None:
    """The file's content if it is of this format (version 1, every field valid), else None:
    a reader then treats that secondary as serving nothing known (as the daemons do)."""
    try:
        f = json.loads(text)
    except ValueError:
        return None
    ok = (isinstance(f, dict) and f.get("version") == SERVED_TYPES_VERSION and not isinstance(f.get("version"), bool)
          and _count(f.get("secondary")) and f["secondary"] >= 1 and _count(f.get("generation"))
          and _count(f.get("pid")) and _count(f.get("updated_ms"))
          and isinstance(f.get("types"), list) and all(_valid_type(t) for t in f["types"]))
    return f if ok else None


def served_types_path(scoreboard: str, instance: int) -> str:
    """The file of secondary N beside a scoreboard."""
    return f"{scoreboard}.secondary-{instance}.types"


def read_served_types(path: str) -> dict | None:
    """Reads one file; None when missing, unreadable or not of this format."""
    try:
        with open(path, encoding="utf-8") as fh:
            return parse_served_types(fh.read())
    except (OSError, UnicodeDecodeError):
        return None


def live_served_types(scoreboard: str, slots, alive) -> list[dict]:
    """The files of the running secondaries on a snapshot (served-types.ts liveServedTypes):
    a file counts only while its slot is not stopped, its pid exists and the generation matches."""
    out = []
    for s in slots:
        if s.kind != "secondary" or s.state == "stopped" or not alive(s.pid):
            continue
        f = read_served_types(served_types_path(scoreboard, s.instance))
        if f is not None and f["generation"] == s.generation:
            out.append(f)
    return out


def type_statuses(served: list[dict]) -> list[dict]:
    """Per type, summed over the secondaries that serve it, sorted by name (status.ts typeStatuses)."""
    by: dict[str, dict] = {}
    for f in sorted(served, key=lambda f: f["secondary"]):
        for t in f["types"]:
            s = by.setdefault(t["name"], {"type": t["name"], "secondaries": [], "leases": 0, "requests": 0, "failures": 0,
                                          "latency_avg_ms": 0, "latency_max_ms": 0, "latency_sum_us": 0})
            s["secondaries"].append(f"secondary-{f['secondary']}")
            s["leases"] += t["leases"]
            s["requests"] += t["requests"]
            s["failures"] += t["failures"]
            s["latency_sum_us"] += t["latency_sum_us"]
            s["latency_max_ms"] = max(s["latency_max_ms"], t["latency_max_us"] / 1000)
    out = []
    for name in sorted(by):
        s = by[name]
        if s["requests"] > 0:
            s["latency_avg_ms"] = _js_round(s["latency_sum_us"] / s["requests"]) / 1000
        out.append(s)
    return out

