"""A fake main server and secondary on unix sockets that play spec/exchanges.json's scripts."""

from __future__ import annotations

import os
import socket
import tempfile
import threading

from dispatchd.frame import FrameDecoder, encode_frame

SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "spec")


def subst(value, socket_path: str):
    """Replaces "$SECONDARY_SOCKET" anywhere in a JSON value."""
    if value == "$SECONDARY_SOCKET":
        return socket_path
    if isinstance(value, dict):
        return {k: subst(v, socket_path) for k, v in value.items()}
    if isinstance(value, list):
        return [subst(v, socket_path) for v in value]
    return value


class ScriptedServer:
    """Accepts connections on `path`; each received frame takes the next step of `steps`."""

    def __init__(self, path: str, steps: list, secondary_socket: str, max_body: int) -> None:
        self.path = path
        self.steps = list(steps)
        self.secondary_socket = secondary_socket
        self.max_body = max_body
        self.frames = 0
        self.connections = 0
        self.problems: list[str] = []
        self.received: list[dict] = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        dec = FrameDecoder(self.max_body)
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                dec.push(chunk)
                while (f := dec.next()) is not None:
                    with self.lock:
                        self.frames += 1
                        self.received.append(f.header)
                        step = self.steps.pop(0) if self.steps else None
                    if step is None:
                        self.problems.append(f"{self.path}: a frame beyond the script: {f.header}")
                        return
                    for k, v in step["expect"].items():
                        if f.header.get(k) != v:
                            self.problems.append(f"{self.path}: expected {k}={v!r}, got {f.header.get(k)!r}")
                    if f.header.get("op") == "lease":
                        w = f.header.get("wait_ms")
                        if not (isinstance(w, int) and 0 <= w <= 3_600_000):
                            self.problems.append(f"{self.path}: wait_ms {w!r} is not an integer 0..3600000")
                    expected = step["expect_body"] if isinstance(step.get("expect_body"), bytes) else step.get("expect_body", "").encode()
                    if "expect_body" in step and f.body != expected:
                        self.problems.append(f"{self.path}: expected body {step['expect_body']!r}, got {f.body!r}")
                    if step.get("reply") is not None:
                        body = step.get("reply_body", "").encode()
                        conn.sendall(encode_frame(subst(step["reply"], self.secondary_socket), body))
                    if step.get("then") == "close":
                        return

    def close(self) -> None:
        self.sock.close()


class FakeSuite:
    """A fake main and secondary for one exchange; `.main_socket`, `.main`, `.secondary`."""

    def __init__(self, exchange: dict) -> None:
        self.dir = tempfile.mkdtemp(prefix="dispatchd-spec-")
        self.main_socket = os.path.join(self.dir, "main.sock")
        sec = os.path.join(self.dir, "secondary-1.sock")
        self.secondary = ScriptedServer(sec, exchange["secondary"], sec, 1 << 20)
        self.main = ScriptedServer(self.main_socket, exchange["main"], sec, 0)

    def close(self) -> None:
        self.main.close()
        self.secondary.close()
        for n in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, n))
        os.rmdir(self.dir)
