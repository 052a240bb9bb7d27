"""``python3 -m dispatchd``: exit codes, one-line errors, DATA from standard input, status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest

from dispatchd import DispatchError
from dispatchd.__main__ import error_line

from .fake_servers import FakeSuite
from .test_scoreboard import write_board

PKG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
L = "ab" * 16


def cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": PKG, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "dispatchd", *args], input=stdin, capture_output=True, env=env, timeout=60)


def grant(idempotent: bool = True, type: str = "echo") -> dict:
    return {"ok": True, "op": "lease", "secondary": 1, "socket": "$SECONDARY_SOCKET", "lease": L, "generation": 7,
            "expires_in_ms": 3000, "type": type, "idempotent": idempotent}


def result(type: str = "echo") -> dict:
    return {"ok": True, "op": "result", "type": type, "elapsed_ms": 0.1, "secondary": 1, "generation": 7}


class CliTest(unittest.TestCase):
    def suite(self, main: list, secondary: list) -> FakeSuite:
        s = FakeSuite({"main": main, "secondary": secondary})
        self.addCleanup(s.close)
        return s

    def test_request_prints_the_result_bytes(self) -> None:
        s = self.suite([{"expect": {"op": "lease", "type": "echo"}, "reply": grant(), "then": "close"}],
                       [{"expect": {"op": "run"}, "expect_body": "hello", "reply": result(), "reply_body": "hello", "then": "keep"}])
        r = cli("--socket", s.main_socket, "request", "echo", "hello")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"hello", b""))

    def test_data_from_standard_input_and_socket_after_the_command(self) -> None:
        s = self.suite([{"expect": {"op": "lease"}, "reply": grant(), "then": "close"}],
                       [{"expect": {"op": "run"}, "expect_body": "from stdin\n", "reply": result(), "reply_body": "ok", "then": "keep"}])
        r = cli("request", "echo", "-", "--socket", s.main_socket, "-v", stdin=b"from stdin\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"ok")
        self.assertIn(b"dispatchd: served by secondary-1 (generation 7) in 1 attempt\n", r.stderr)

    def test_errors_are_one_line_with_the_code_and_exit_code(self) -> None:
        r = cli("--socket", "/nonexistent/main.sock", "request", "echo", "x")
        self.assertEqual(r.returncode, 69)
        self.assertRegex(r.stderr.decode(), r"^dispatchd: 'echo' request failed: failed to connect to '/nonexistent/main.sock': no such socket: .* \[CONNECT_FAILED\]\n$")
        s = self.suite([{"expect": {"op": "lease"}, "reply": {"ok": False, "code": "UNKNOWN_TYPE", "message": "unknown request type 'nope'"}, "then": "keep"}], [])
        r = cli("--socket", s.main_socket, "request", "nope", "x")
        self.assertEqual((r.returncode, r.stderr), (65, b"dispatchd: 'nope' request failed: unknown request type 'nope' [UNKNOWN_TYPE]\n"))

    def test_outcome_unknown_exits_74(self) -> None:
        s = self.suite([{"expect": {"op": "lease"}, "reply": grant(False, "charge"), "then": "close"}],
                       [{"expect": {"op": "run"}, "reply": None, "then": "close"}])
        r = cli("--socket", s.main_socket, "request", "charge", "x")
        self.assertEqual(r.returncode, 74)
        self.assertIn(b"it was not sent again because 'charge' is not idempotent (at most once)", r.stderr)
        self.assertTrue(r.stderr.endswith(b" [OUTCOME_UNKNOWN]\n"))

    def test_options_between_type_and_data(self) -> None:
        # As dispatchctl (yargs) takes them: `request echo -v hi`.
        s = self.suite([{"expect": {"op": "lease", "type": "echo"}, "reply": grant(), "then": "close"}],
                       [{"expect": {"op": "run"}, "expect_body": "hi", "reply": result(), "reply_body": "hi", "then": "keep"}])
        r = cli("--socket", s.main_socket, "request", "echo", "-v", "hi")
        self.assertEqual((r.returncode, r.stdout), (0, b"hi"), r.stderr)

    def test_usage_errors_exit_64(self) -> None:
        for args in (["bogus"], [], ["request"], ["request", "echo", "x", "--timeout", "0"], ["request", "echo", "x", "--deadline", "abc"],
                     ["request", "echo", "a", "b"], ["request", "echo", "-v", "a", "b"], ["request", "", "x"]):
            r = cli(*args)
            self.assertEqual(r.returncode, 64, args)
            self.assertRegex(r.stderr.decode(), r"^dispatchd: .*; see 'python3 -m dispatchd --help'\n$")

    def test_standard_output_failures_as_dispatchctl(self) -> None:
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": PKG, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        big = "x" * (1 << 20)

        def run(args: list, stdout) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "dispatchd", *args], stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE, env=env, timeout=60)

        with open("/dev/full", "wb") as full:
            v = run(["--version"], full)
            self.assertEqual((v.returncode, v.stderr), (1, b"dispatchd: failed to write to standard output: No space left on device\n"), "--version > /dev/full")
            s = self.suite([{"expect": {"op": "lease"}, "reply": grant(), "then": "close"}],
                           [{"expect": {"op": "run"}, "reply": result(), "reply_body": big, "then": "keep"}])
            r = run(["--socket", s.main_socket, "request", "echo", "x"], full)
            self.assertEqual((r.returncode, r.stderr), (1, b"dispatchd: failed to write to standard output: No space left on device\n"), "request > /dev/full")
        # A reader that takes one byte and goes (| head -c 1): a quiet exit 0.
        s = self.suite([{"expect": {"op": "lease"}, "reply": grant(), "then": "close"}],
                       [{"expect": {"op": "run"}, "reply": result(), "reply_body": big, "then": "keep"}])
        p = subprocess.Popen([sys.executable, "-m", "dispatchd", "--socket", s.main_socket, "request", "echo", "x"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert p.stdout is not None and p.stderr is not None
        self.assertEqual(p.stdout.read(1), b"x")
        p.stdout.close()
        self.assertEqual((p.wait(60), p.stderr.read()), (0, b""), "request | head -c 1")
        p.stderr.close()

    def test_data_that_is_not_utf8_is_sent_byte_for_byte(self) -> None:
        s = self.suite([{"expect": {"op": "lease"}, "reply": grant(), "then": "close"}],
                       [{"expect": {"op": "run"}, "expect_body": b"\xff\xfea\x80", "reply": result(), "reply_body": "ok", "then": "keep"}])
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": PKG, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        r = subprocess.run([os.fsencode(sys.executable), b"-m", b"dispatchd", b"--socket", os.fsencode(s.main_socket), b"request", b"echo", b"\xff\xfea\x80"],
                           capture_output=True, env=env, timeout=60)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"ok", b""))
        self.assertEqual(s.secondary.problems, [], "the secondary got the bytes as given")

    def test_standard_input_stops_at_the_request_limit(self) -> None:
        # No configuration in /etc here: the default 64 MiB. Nothing is sent (the socket is absent).
        r = cli("--socket", "/nonexistent/main.sock", "request", "echo", stdin=b"\0" * (64 * 1024 * 1024 + 1))
        self.assertEqual(r.returncode, 65, r.stderr)
        self.assertRegex(r.stderr.decode(), r"^dispatchd: 'echo' request not sent: standard input is over the 67108864-byte request limit \(the default max_payload_bytes; /etc/dispatchd/dispatchd.conf (is absent|does not set it)\); send less.* \[PAYLOAD_TOO_LARGE\]\n$")
        ok = cli("--socket", "/nonexistent/main.sock", "request", "echo", stdin=b"\0" * (64 * 1024 * 1024))
        self.assertEqual(ok.returncode, 69, "64 MiB exactly is read and sent (here: to no server)")
        closed = subprocess.run([sys.executable, "-m", "dispatchd", "request", "echo"], stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": PKG, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"},
                                preexec_fn=lambda: os.close(0))
        self.assertEqual((closed.returncode, closed.stderr), (65, b"dispatchd: 'echo' request not sent: standard input is closed; give DATA as an argument, or redirect a file into it [BAD_REQUEST]\n"))

    def test_status_json_and_table(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "scoreboard")
            write_board(path, {0: {"kind": 1, "name": "main"}})
            r = cli("status", "--json", "--scoreboard", path)
            self.assertEqual(r.returncode, 0, r.stderr)
            rep = json.loads(r.stdout)
            self.assertEqual(rep["scoreboard"], path)
            self.assertEqual([x["name"] for x in rep["daemons"]], ["main", "watchdog"])
            r = cli("status", "--scoreboard", path)
            self.assertEqual(r.returncode, 0)
            self.assertTrue(r.stdout.startswith(b"NAME "))
            self.assertIn(b"dispatchd: watchdog is absent: see systemctl status dispatchd-watchdog.service", r.stderr)
            r = cli("status", "--scoreboard", os.path.join(d, "none"))
            self.assertEqual(r.returncode, 69)
            self.assertTrue(r.stderr.endswith(b"[SCOREBOARD_MISSING]\n"))


if __name__ == "__main__":
    unittest.main()


class ErrorLineTest(unittest.TestCase):
    def test_the_servers_send_less_is_not_said_twice(self) -> None:
        line = error_line("'upper' request failed", DispatchError("PAYLOAD_TOO_LARGE", "the 'upper' request carries 2000000 bytes, more than its type's max_payload_bytes (1048576 bytes); send less"))
        self.assertEqual(line.count("send less"), 1, line)
        self.assertTrue(line.endswith("; send less, or raise max_payload_bytes (a type's own where its file sets one, in /etc/dispatchd/types.d; the package's built-in types, in /usr/share/dispatchd/types.d, are not edited; else [secondary] max_payload_bytes in /etc/dispatchd/dispatchd.conf) [PAYLOAD_TOO_LARGE]"), line)
        self.assertEqual(error_line("x", DispatchError("TIMEOUT", "no answer")), "dispatchd: x: no answer; raise --timeout (ms) if the request needs longer [TIMEOUT]")

    def test_control_characters_are_escaped_as_dispatchctl(self) -> None:
        line = error_line("'a\nb' request failed", DispatchError("CONNECT_FAILED", "failed to connect to '/x\r\ny\x1b[31m\x7f\udcff': no such socket"))
        self.assertTrue(line.startswith("dispatchd: 'a\\nb' request failed: failed to connect to '/x\\r\\ny\\u001b[31m\\u007f\\xff': no such socket"), line)
        self.assertIsNone(__import__("re").search(r"[\x00-\x1f\x7f]", line), line)
        self.assertEqual(error_line("x", ValueError("tab\there, é and ✓ stay")), "dispatchd: x: tab\\there, é and ✓ stay")
