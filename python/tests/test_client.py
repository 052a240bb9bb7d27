"""Client details that spec/exchanges.json does not pin down: back-off, wait_ms, deadline_ms."""

from __future__ import annotations

import unittest

from dispatchd import Client, DispatchError, backoff_ms

from .fake_servers import FakeSuite

L = "ab" * 16


class BackoffTest(unittest.TestCase):
    def test_exponential_jittered_capped(self) -> None:
        for attempt, base in [(1, 25), (2, 50), (3, 100), (6, 800), (7, 1000), (10, 1000)]:
            seen = {backoff_ms(attempt) for _ in range(300)}
            self.assertGreaterEqual(min(seen), base // 2, attempt)
            self.assertLessEqual(max(seen), base, attempt)
            self.assertGreater(len(seen), 1, "jittered")


class FramesSentTest(unittest.TestCase):
    def test_wait_ms_is_the_answer_timeout_minus_a_margin(self) -> None:
        for answer_ms, lo, hi in [(5000, 4700, 4750), (400, 280, 300)]:
            s = FakeSuite({"main": [{"expect": {"op": "lease"}, "reply": {"ok": False, "code": "UNKNOWN_TYPE", "message": "x"}, "then": "close"}], "secondary": []})
            self.addCleanup(s.close)
            with self.assertRaises(DispatchError):
                Client(s.main_socket, answer_timeout_ms=answer_ms).lease("echo")
            wait = s.main.received[0]["wait_ms"]
            self.assertTrue(lo <= wait <= hi, (answer_ms, wait))

    def test_deadline_ms_is_sent_only_when_given(self) -> None:
        grant = {"ok": True, "op": "lease", "secondary": 1, "socket": "$SECONDARY_SOCKET", "lease": L, "generation": 7,
                 "expires_in_ms": 3000, "type": "echo", "idempotent": True}
        result = {"ok": True, "op": "result", "type": "echo", "elapsed_ms": 0.1}
        s = FakeSuite({"main": [{"expect": {}, "reply": grant, "then": "close"}] * 2,
                       "secondary": [{"expect": {}, "reply": result, "then": "keep"}] * 2})
        self.addCleanup(s.close)
        Client(s.main_socket).request("echo", b"x")
        Client(s.main_socket, deadline_ms=1500).request("echo", b"x")
        self.assertNotIn("deadline_ms", s.secondary.received[0])
        self.assertEqual(s.secondary.received[1]["deadline_ms"], 1500)
        self.assertEqual(s.secondary.received[1], {"op": "run", "lease": L, "generation": 7, "type": "echo", "deadline_ms": 1500})
