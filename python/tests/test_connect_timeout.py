"""A connect cut short by the request's time budget is TIMEOUT (exit 124), not CONNECT_FAILED.

A connect that fails for a reason of its own (no such socket, refused, no answer within the
answer timeout while budget is left) stays CONNECT_FAILED (exit 69), as in client.ts.
docs/PROTOCOL.md §1.3. A connect to a local unix socket completes or fails at once on Linux
(a full backlog is EAGAIN), so the connect that gets no answer is a fake socket's.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import unittest
from unittest import mock

from dispatchd import Client, DispatchError, Exit, exit_code_for
from dispatchd import client as client_module


class _NeverAnswers(socket.socket):
    """A socket whose connect gets no answer: it waits out its timeout, as connect(2) would."""

    connects = 0

    def connect(self, address: object) -> None:  # type: ignore[override]
        _NeverAnswers.connects += 1
        time.sleep(self.gettimeout() or 0)
        raise TimeoutError("timed out")


def _fail(client: Client) -> DispatchError:
    with mock.patch.object(client_module._socket, "socket", _NeverAnswers):
        with unittest.TestCase().assertRaises(DispatchError) as cm:
            client.request("sleep", b"100")
    return cm.exception


class ConnectTimeoutTest(unittest.TestCase):
    def test_budget_running_out_during_the_connect_is_timeout(self) -> None:
        e = _fail(Client("/run/dispatchd/main.sock", timeout_ms=50))
        self.assertEqual(e.code, "TIMEOUT")
        self.assertEqual(e.message, "failed to connect to '/run/dispatchd/main.sock': no answer within 50 ms, "
                                    "the request's time budget (timeout_ms, dispatchctl --timeout)")
        self.assertEqual(exit_code_for(e.code), Exit.TIMED_OUT)

    def test_answer_timeout_with_budget_left_stays_connect_failed(self) -> None:
        e = _fail(Client("/tmp/x.sock", timeout_ms=60_000, answer_timeout_ms=20, attempts=1))
        self.assertEqual(e.code, "CONNECT_FAILED")
        self.assertEqual(e.message, "failed to connect to '/tmp/x.sock': no answer within 20 ms")
        self.assertEqual(exit_code_for(e.code), Exit.UNAVAILABLE)

    def test_a_real_failure_stays_connect_failed_under_a_short_budget(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(DispatchError) as cm:
                Client(os.path.join(d, "missing.sock"), timeout_ms=50).request("echo")
            self.assertEqual(cm.exception.code, "CONNECT_FAILED")
            self.assertIn("no such socket", cm.exception.message)
            self.assertEqual(exit_code_for(cm.exception.code), Exit.UNAVAILABLE)


if __name__ == "__main__":
    unittest.main()
