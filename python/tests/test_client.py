"""Client details that spec/exchanges.json does not pin down: back-off, wait_ms, deadline_ms."""

from __future__ import annotations

import unittest

from dispatchd import Client, DispatchError, backoff_ms

from .fake_servers import FakeSuite

L = "ab" * 16


def lease_grant(type: str, *, idempotent: bool) -> dict:
    """Main's answer granting lease L on the fake secondary (generation 7) for ``type``."""
    return {"ok": True, "op": "lease", "secondary": 1, "socket": "$SECONDARY_SOCKET", "lease": L, "generation": 7,
            "expires_in_ms": 3000, "type": type, "idempotent": idempotent}


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
        grant = lease_grant("echo", idempotent=True)
        result = {"ok": True, "op": "result", "type": "echo", "elapsed_ms": 0.1}
        s = FakeSuite({"main": [{"expect": {}, "reply": grant, "then": "close"}] * 2,
                       "secondary": [{"expect": {}, "reply": result, "then": "keep"}] * 2})
        self.addCleanup(s.close)
        Client(s.main_socket).request("echo", b"x")
        Client(s.main_socket, deadline_ms=1500).request("echo", b"x")
        self.assertNotIn("deadline_ms", s.secondary.received[0])
        self.assertEqual(s.secondary.received[1]["deadline_ms"], 1500)
        self.assertEqual(s.secondary.received[1], {"op": "run", "lease": L, "generation": 7, "type": "echo", "deadline_ms": 1500})


class SessionClosedTest(unittest.TestCase):
    def test_run_after_close_sends_nothing_and_says_so(self) -> None:
        grant = lease_grant("charge", idempotent=False)
        result = {"ok": True, "op": "result", "type": "charge", "elapsed_ms": 0.1}
        s = FakeSuite({"main": [{"expect": {}, "reply": grant, "then": "close"}],
                       "secondary": [{"expect": {}, "reply": result, "then": "keep"}] * 2})
        self.addCleanup(s.close)
        c = Client(s.main_socket)
        with c.session(c.lease("charge")) as session:
            session.run(b"1", timeout_ms=1000)
        with self.assertRaises(DispatchError) as caught:
            session.run(b"2", timeout_ms=1000)
        e = caught.exception
        self.assertEqual(e.code, "CONNECTION_LOST")
        self.assertFalse(e.may_have_run, "nothing was sent: it did not run")
        self.assertRegex(e.message, r"^the session on secondary-1 is closed \(its lease ended\): nothing was sent; run the 'charge' request on a new lease$")
        self.assertEqual(len(s.secondary.received), 1, "the second run frame never reached the secondary")


class OptionsTest(unittest.TestCase):
    def test_out_of_range_options_are_refused_before_anything_is_sent(self) -> None:
        for options, name in [({"timeout_ms": 0}, "timeout_ms"), ({"timeout_ms": -1}, "timeout_ms"), ({"timeout_ms": float("nan")}, "timeout_ms"),
                              ({"timeout_ms": True}, "timeout_ms"), ({"answer_timeout_ms": 0}, "answer_timeout_ms"),
                              ({"attempts": 0}, "attempts"), ({"attempts": 1.5}, "attempts"),
                              ({"deadline_ms": 0}, "deadline_ms"), ({"deadline_ms": 3_600_001}, "deadline_ms"), ({"deadline_ms": 1.5}, "deadline_ms"),
                              ({"max_result_bytes": -1}, "max_result_bytes")]:
            with self.subTest(options=options):
                with self.assertRaises(DispatchError) as caught:
                    Client("/nonexistent.sock", **options)
                self.assertEqual(caught.exception.code, "BAD_REQUEST")
                self.assertTrue(caught.exception.message.startswith(f"{name} must be "), caught.exception.message)
        Client("/nonexistent.sock", timeout_ms=1, answer_timeout_ms=1, attempts=1, deadline_ms=3_600_000, max_result_bytes=0)

    def test_a_run_deadline_out_of_range_is_refused_before_the_run_frame(self) -> None:
        grant = lease_grant("echo", idempotent=True)
        s = FakeSuite({"main": [{"expect": {}, "reply": grant, "then": "close"}], "secondary": []})
        self.addCleanup(s.close)
        c = Client(s.main_socket)
        with c.session(c.lease("echo")) as session:
            for bad in (0, 3_600_001):
                with self.assertRaises(DispatchError) as caught:
                    session.run(b"x", deadline_ms=bad)
                self.assertEqual(caught.exception.code, "BAD_REQUEST")
                self.assertFalse(caught.exception.may_have_run)
        self.assertEqual(s.secondary.received, [], "no run frame sent")
