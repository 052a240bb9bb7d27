"""The scoreboard reader and the status report, on scoreboards written here by hand (struct)."""

from __future__ import annotations

import os
import struct
import tempfile
import unittest
from unittest import mock

from dispatchd import DispatchError, read_scoreboard, status_report
from dispatchd import scoreboard as sb

NOW = 1_700_000_000_000


def write_board(path: str, slots: dict[int, dict], *, magic=b"DSPSCORE", version=1, size=8256) -> None:
    """A scoreboard of layout version 1 with the given slots (index → fields)."""
    buf = bytearray(size)
    buf[0:8] = magic
    struct.pack_into("<IIIIQ", buf, 8, version, 64, 128, 64, NOW - 3_600_000)
    for i, f in slots.items():
        name = f.get("name", "").encode()
        struct.pack_into("<IIIIIIIIII QQQQQ 32s QI 4x", buf, 64 + i * 128,
                         f.get("seq", 2), f["kind"], f.get("instance", 0), f.get("pid", os.getpid()), f.get("state", 2),
                         f.get("generation", 7), f.get("starts", 1), f.get("active", 0), f.get("capacity", 0), f.get("queued", 0),
                         f.get("requests", 0), f.get("failures", 0), NOW - 60_000, f.get("heartbeat_ms", NOW - 100),
                         f.get("incidents", 0), name, f.get("latency_sum_us", 0), f.get("latency_max_us", 0))
    with open(path, "wb") as fh:
        fh.write(buf)


class ScoreboardTest(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "scoreboard")

    def tearDown(self) -> None:
        self.dir.cleanup()

    def test_reads_every_used_slot(self) -> None:
        write_board(self.path, {0: {"kind": 1, "name": "main", "requests": 5, "latency_sum_us": 5000, "latency_max_us": 2000},
                                1: {"kind": 3, "name": "watchdog"},
                                3: {"kind": 2, "instance": 2, "name": "secondary-2", "active": 1, "capacity": 32, "starts": 3}})
        snap = read_scoreboard(self.path)
        self.assertEqual(snap.created_ms, NOW - 3_600_000)
        self.assertEqual([(s.kind, s.name, s.instance) for s in snap.slots], [("main", "main", 0), ("watchdog", "watchdog", 0), ("secondary", "secondary-2", 2)])
        self.assertTrue(all(s.consistent for s in snap.slots))
        self.assertNotIn("inconsistent", status_report(self.path, snap, now_ms=NOW), "the key only when a slot is torn")
        self.assertEqual(snap.slots[2].capacity, 32)

    def test_odd_seq_is_read_a_bounded_number_of_times(self) -> None:
        write_board(self.path, {2: {"kind": 2, "instance": 1, "name": "secondary-1", "seq": 5}})
        reads = []
        real = os.pread
        with mock.patch.object(sb, "MAX_SEQ_READS", 50), mock.patch.object(sb.os, "pread", side_effect=lambda *a: reads.append(a) or real(*a)):
            snap = read_scoreboard(self.path)
        self.assertEqual(len(snap.slots), 1)
        self.assertFalse(snap.slots[0].consistent, "a slot whose seq stays odd is given as it is, marked inconsistent")
        self.assertLess(len(reads), 64 * 3 * 50 + 10, "bounded")
        with mock.patch.object(sb, "MAX_SEQ_READS", 50):
            r = status_report(self.path, read_scoreboard(self.path), now_ms=NOW, alive=lambda pid: True)
        self.assertEqual(r["inconsistent"], ["secondary-1"])
        self.assertIn("secondary-1's slot is inconsistent (its seq stayed odd: a writer died mid-update; shown as last read): "
                      "see systemctl status dispatchd-secondary@1.service", sb.problems(r))

    def test_missing_and_bad_layout(self) -> None:
        with self.assertRaises(DispatchError) as cm:
            read_scoreboard(self.path)
        self.assertEqual(cm.exception.code, "SCOREBOARD_MISSING")
        for kw, what in [({"magic": b"NOTSCORE"}, "bad magic"), ({"version": 2}, "layout version 2"), ({"size": 8000}, "8000 bytes")]:
            write_board(self.path, {}, **kw)
            with self.assertRaises(DispatchError) as cm:
                read_scoreboard(self.path)
            self.assertEqual(cm.exception.code, "SCOREBOARD_BAD_LAYOUT")
            self.assertIn(what, cm.exception.message)
            self.assertIn("restart the suite", cm.exception.message)

    def test_status_report_states(self) -> None:
        write_board(self.path, {0: {"kind": 1, "name": "main", "heartbeat_ms": NOW - 6000},
                                2: {"kind": 2, "instance": 1, "name": "secondary-1", "pid": 999_999_999 % 2**32},
                                3: {"kind": 2, "instance": 2, "name": "secondary-2", "state": 6, "pid": 999_999_999 % 2**32},
                                4: {"kind": 2, "instance": 3, "name": "secondary-3", "requests": 4, "latency_sum_us": 4002}})
        r = status_report(self.path, read_scoreboard(self.path), now_ms=NOW, alive=lambda pid: pid == os.getpid())
        self.assertEqual(set(r), {"scoreboard", "created_at", "daemons", "types"})
        self.assertEqual(r["created_at"], "2023-11-14T21:13:20.000Z")
        states = {d["name"]: d["state"] for d in r["daemons"]}
        self.assertEqual(states, {"main": "unresponsive", "secondary-1": "dead", "secondary-2": "stopped", "secondary-3": "ready", "watchdog": "absent"})
        self.assertEqual([d["name"] for d in r["daemons"]], ["main", "secondary-1", "secondary-2", "secondary-3", "watchdog"])
        s3 = r["daemons"][3]
        self.assertEqual(s3["latency_avg_ms"], 1.001)
        table = sb.format_table(r)
        self.assertRegex(table.splitlines()[0], r"^NAME\s+PID\s+STATE\s+ACTIVE\s+REQUESTS\s+FAILED\s+LATENCY\s+HEARTBEAT\s+RESTARTS$")
        self.assertRegex(table, r"watchdog\s+-\s+absent")
        self.assertEqual(sb.problems(r)[0], "main is unresponsive: see systemctl status dispatchd-main.service and journalctl -u dispatchd-main.service -p warning")


if __name__ == "__main__":
    unittest.main()
