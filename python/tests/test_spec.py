"""spec/*.json, the language-neutral vectors, against the Python implementation."""

from __future__ import annotations

import json
import os
import time
import unittest

from dispatchd import Client, DispatchError, exit_code_for
from dispatchd.frame import FrameDecoder, encode_frame
from dispatchd.mailbox import PIPE_BUF, decode_line, encode_message, recover_suffix
from dispatchd.served_types import parse_served_types

from .fake_servers import SPEC, FakeSuite


def load(name: str) -> dict:
    with open(os.path.join(SPEC, name), encoding="utf-8") as fh:
        return json.load(fh)


def decode_all(data: bytes, max_body: int, step: int) -> tuple[list, str | None]:
    """Feeds `data` `step` bytes at a time; returns the frames and the error code, if any."""
    dec = FrameDecoder(max_body)
    frames: list = []
    for i in range(0, max(len(data), 1), step):
        dec.push(data[i:i + step])
        try:
            while (f := dec.next()) is not None:
                frames.append({"header": f.header, "body_hex": f.body.hex()})
        except DispatchError as err:
            return frames, err.code
    return frames, None


class FrameVectors(unittest.TestCase):
    def test_frames(self) -> None:
        vectors = load("frames.json")["vectors"]
        self.assertGreater(len(vectors), 30)
        for v in vectors:
            data = bytes.fromhex(v["hex"])
            for step in (len(data) or 1, 1):
                with self.subTest(v["name"], step=step):
                    frames, error = decode_all(data, v["max_body_bytes"], step)
                    self.assertEqual(frames, v["frames"])
                    self.assertEqual(error, v.get("error"))
            if v.get("encode"):
                with self.subTest(v["name"], encode=True):
                    f = v["frames"][0]
                    self.assertEqual(encode_frame(f["header"], bytes.fromhex(f["body_hex"])).hex(), v["hex"])


class MailboxVectors(unittest.TestCase):
    def test_lines(self) -> None:
        spec = load("mailbox.json")
        self.assertEqual(spec["pipe_buf"], PIPE_BUF)
        for v in spec["lines"]:
            with self.subTest(v["name"]):
                line = v["line"].encode("utf-8")
                if "error" in v:
                    with self.assertRaises(DispatchError) as cm:
                        decode_line(line)
                    self.assertEqual(cm.exception.code, v["error"])
                    self.assertEqual(recover_suffix(line), v.get("recovered"))
                else:
                    self.assertEqual(decode_line(line), v["message"])
                    self.assertLessEqual(len(encode_message(v["message"])), PIPE_BUF)


class ServedTypesVectors(unittest.TestCase):
    def test_files(self) -> None:
        for v in load("served-types.json")["files"]:
            with self.subTest(v["name"]):
                self.assertEqual(parse_served_types(v["text"]) is not None, v["valid"])


class ExchangeVectors(unittest.TestCase):
    def test_exchanges(self) -> None:
        for ex in load("exchanges.json")["exchanges"]:
            with self.subTest(ex["name"]):
                self.run_exchange(ex)

    def run_exchange(self, ex: dict) -> None:
        suite = FakeSuite(ex)
        try:
            client = Client(suite.main_socket, attempts=ex["client"]["attempts"], timeout_ms=ex["client"]["timeout_ms"])
            want = ex["outcome"]
            req = ex["request"]
            got: dict = {}
            try:
                if "session" in req:
                    with client.session(client.lease(req["type"])) as s:
                        got["results"] = [s.run(d.encode()).decode() for d in req["session"]]
                else:
                    info = client.request_with_info(req["type"], req["data"].encode())
                    got["result"] = info.result.decode()
                    got["attempts"] = info.attempts
            except DispatchError as err:
                got["error"] = err.code
                got["exit_code"] = int(exit_code_for(err.code))
                got["may_have_run"] = err.may_have_run
                got["attempts"] = want.get("attempts")  # not observable on a failure; the frame counts are
            # Let the servers finish with frames still in flight before counting.
            end = time.monotonic() + 2
            while (suite.main.steps or suite.secondary.steps) and time.monotonic() < end:
                time.sleep(0.01)
            for key in ("result", "results", "error", "exit_code", "attempts"):
                if key in want:
                    self.assertEqual(got.get(key), want[key], key)
            if "may_have_run" in want:
                self.assertEqual(got.get("may_have_run"), want["may_have_run"])
            self.assertEqual(suite.main.frames, want["leases"], "lease frames main received")
            self.assertEqual(suite.secondary.frames, want["runs"], "run frames the secondary received")
            if "connections" in want:
                self.assertEqual(suite.main.connections, want["connections"]["main"])
                self.assertEqual(suite.secondary.connections, want["connections"]["secondary"])
            self.assertEqual(suite.main.problems + suite.secondary.problems, [])
            self.assertEqual(suite.main.steps + suite.secondary.steps, [], "every step was used")
        finally:
            suite.close()


if __name__ == "__main__":
    unittest.main()
