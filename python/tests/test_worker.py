"""spec/worker.json, the worker protocol's vectors, against the Python side: the message
checks and the worker library (dispatchd.worker) driven by a scripted secondary over a
socket pair. test/unit/worker/worker-spec.test.ts runs the same file against TypeScript."""

from __future__ import annotations

import json
import os
import socket
import threading
import unittest

from dispatchd import DispatchError
from dispatchd.frame import FrameDecoder, encode_frame
from dispatchd.worker import Worker, listen_fd, parse_secondary_message, parse_worker_message

from .fake_servers import SPEC


def load() -> dict:
    with open(os.path.join(SPEC, "worker.json"), encoding="utf-8") as fh:
        return json.load(fh)


def _fail(data: bytes, ctx) -> bytes:
    raise RuntimeError("boom")


def _wait_cancel(data: bytes, ctx) -> bytes:
    ctx.cancelled.wait(10)
    raise RuntimeError("cancelled")


FUNCTIONS = {
    "echo": lambda data, ctx: data,
    "upper": lambda data, ctx: data.decode("utf-8").upper(),
    "fail": _fail,
    "wait-cancel": _wait_cancel,
}


def contains(got: dict, want: dict) -> bool:
    return all(k in got and got[k] == v for k, v in want.items())


class MessageVectors(unittest.TestCase):
    def check(self, vectors: list, parse) -> None:
        for v in vectors:
            with self.subTest(v["name"]):
                if "error" in v:
                    with self.assertRaises(DispatchError) as cm:
                        parse(v["header"])
                    self.assertEqual(cm.exception.code, v["error"])
                else:
                    self.assertEqual(parse(v["header"]), v["message"])

    def test_worker_messages(self) -> None:
        self.check(load()["worker_messages"], parse_worker_message)

    def test_secondary_messages(self) -> None:
        self.check(load()["secondary_messages"], parse_secondary_message)


class Sessions(unittest.TestCase):
    def test_sessions(self) -> None:
        for s in load()["sessions"]:
            with self.subTest(s["name"]):
                self.run_session(s)

    def run_session(self, s: dict) -> None:
        worker = Worker(concurrency=s["worker"]["concurrency"])
        for name in s["worker"]["functions"]:
            worker.handle(name, FUNCTIONS[name])
        ours, theirs = socket.socketpair()
        server = threading.Thread(target=worker.serve, args=(theirs,), daemon=True)
        server.start()
        ours.settimeout(10)
        dec = FrameDecoder(1 << 20)
        try:
            for i, step in enumerate(s["steps"]):
                if "send" in step:
                    snd = step["send"]
                    ours.sendall(bytes.fromhex(snd["raw_hex"]) if "raw_hex" in snd
                                 else encode_frame(snd["header"], bytes.fromhex(snd.get("body_hex", ""))))
                    continue
                frame = None
                while (frame := dec.next()) is None:
                    chunk = ours.recv(65536)
                    if not chunk:
                        break
                    dec.push(chunk)
                if step.get("expect_close"):
                    self.assertIsNone(frame, f"step {i}: the worker closed the connection")
                    continue
                self.assertIsNotNone(frame, f"step {i}: the connection closed")
                want = step["expect"]
                self.assertTrue(contains(frame.header, want["header"]), f"step {i}: {frame.header} contains {want['header']}")
                self.assertEqual(frame.body.hex(), want.get("body_hex", ""), f"step {i}: body")
                if "message_contains" in want:
                    self.assertIn(want["message_contains"], frame.header["message"])
        finally:
            ours.close()
            server.join(10)


class Library(unittest.TestCase):
    def test_refusals(self) -> None:
        with self.assertRaises(ValueError):
            Worker(concurrency=0)
        with self.assertRaises(ValueError):
            Worker().handle("Bad", FUNCTIONS["echo"])
        with self.assertRaises(DispatchError) as cm:
            listen_fd(env={})
        self.assertEqual(cm.exception.code, "LISTEN_FDS_MISSING")

    def test_listen_fd_by_name(self) -> None:
        env = {"LISTEN_FDS": "2", "LISTEN_PID": "77", "LISTEN_FDNAMES": "other:worker"}
        self.assertEqual(listen_fd(env=env, pid=77), 4)
        self.assertNotIn("LISTEN_FDS", env)


if __name__ == "__main__":
    unittest.main()
