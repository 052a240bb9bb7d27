"""A persistent worker for dispatchd's ``mode = "persistent"`` types (docs/WORKERS.md).

A worker is a few lines::

    from dispatchd.worker import Worker

    worker = Worker(concurrency=4)

    @worker.handler("upper")
    def upper(data: bytes, ctx) -> bytes:
        return data.upper()

    worker.run()

:meth:`Worker.run` takes the listening socket systemd passes (``LISTEN_FDS``, fd name
``worker``, from ``dispatchd-worker@TYPE-K.socket``; sd_listen_fds(3)) and serves every
secondary that connects, each connection in a thread of its own with up to ``concurrency``
requests at once in a thread pool: hello first, then a ``run`` frame calls the type's
function with the request's DATA and answers ``result`` (the bytes it returns; a ``str`` is
sent as UTF-8) or ``error`` (an exception's message: the client gets HANDLER_FAILED). A
``cancel`` (the deadline passed) sets ``ctx.cancelled``; a function that does not return
within the type's ``cancel_grace_ms`` after it gets its unit restarted.

The protocol never uses standard output: ``print`` freely, it goes to the journal
(``journalctl -u dispatchd-worker@TYPE-K``), a line at a time (run() line-buffers standard
output and error). The frames are docs/PROTOCOL.md §1's; the
messages docs/WORKERS.md §3's (the TypeScript side: daemons/common/worker-protocol.ts).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from .errors import DispatchError
from .frame import FrameDecoder, encode_frame

#: The worker protocol's version, sent in hello.
WORKER_PROTOCOL_VERSION = 1
#: The most requests one connection may ask for at once.
MAX_WORKER_CONCURRENCY = 1024
#: The longest error message a secondary keeps, in characters.
MAX_WORKER_ERROR_CHARS = 4096
#: The fd name of the worker's socket (FileDescriptorName= of dispatchd-worker@.socket).
WORKER_FD_NAME = "worker"
SD_LISTEN_FDS_START = 3
_TYPE_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")


@dataclass
class Context:
    """What a type's function gets besides its DATA."""

    #: The request's type.
    type: str
    #: The run's deadline, ms from when the secondary sent it.
    deadline_ms: int
    #: Set when the secondary cancels the run (its deadline passed) or the connection ends.
    cancelled: threading.Event = field(default_factory=threading.Event)


Function = Callable[[bytes, Context], "bytes | bytearray | memoryview | str"]


class _Stopping(BaseException):
    """Raised by run()'s SIGTERM and SIGINT handler out of accept()."""


def _bad(what: str) -> DispatchError:
    return DispatchError("PROTOCOL_ERROR", f"failed to read a worker protocol frame: {what} (docs/WORKERS.md §3)")


def _id(h: dict) -> int:
    v = h.get("id")
    if type(v) is not int or v < 1 or v > 2**53 - 1:
        raise _bad(f"'id' must be a whole number from 1, got {v!r}")
    return v


def parse_secondary_message(h: dict) -> dict:
    """Checks a frame header a secondary sent: ``run`` or ``cancel``.

    Raises:
        DispatchError: PROTOCOL_ERROR naming what is wrong.
    """
    op = h.get("op")
    if op == "run":
        t = h.get("type")
        if not isinstance(t, str) or not _TYPE_NAME.fullmatch(t):
            raise _bad(f"run's 'type' must be a type name, got {t!r}")
        d = h.get("deadline_ms")
        if type(d) is not int or d < 1:
            raise _bad(f"run's 'deadline_ms' must be a whole number from 1, got {d!r}")
        return {"op": "run", "id": _id(h), "type": t, "deadline_ms": d}
    if op == "cancel":
        return {"op": "cancel", "id": _id(h)}
    raise _bad(f"'op' must be \"run\" or \"cancel\", got {op!r}")


def parse_worker_message(h: dict) -> dict:
    """Checks a frame header a worker sent: ``hello``, ``result`` or ``error`` (a secondary's side).

    Raises:
        DispatchError: PROTOCOL_ERROR naming what is wrong.
    """
    op = h.get("op")
    if op == "hello":
        if type(h.get("protocol")) is not int or h.get("protocol") != WORKER_PROTOCOL_VERSION:
            raise _bad(f"hello's 'protocol' must be {WORKER_PROTOCOL_VERSION}, got {h.get('protocol')!r}")
        types = h.get("types")
        if not isinstance(types, list) or not types or not all(isinstance(t, str) and _TYPE_NAME.fullmatch(t) for t in types):
            raise _bad(f"hello's 'types' must be a non-empty list of type names, got {types!r}")
        c = h.get("concurrency")
        if type(c) is not int or not 1 <= c <= MAX_WORKER_CONCURRENCY:
            raise _bad(f"hello's 'concurrency' must be a whole number 1 … {MAX_WORKER_CONCURRENCY}, got {c!r}")
        return {"op": "hello", "protocol": WORKER_PROTOCOL_VERSION, "types": list(dict.fromkeys(types)), "concurrency": c}
    if op == "result":
        return {"op": "result", "id": _id(h)}
    if op == "error":
        m = h.get("message")
        if not isinstance(m, str):
            raise _bad(f"error's 'message' must be a string, got {m!r}")
        return {"op": "error", "id": _id(h), "message": m[:MAX_WORKER_ERROR_CHARS]}
    raise _bad(f"'op' must be \"hello\", \"result\" or \"error\", got {op!r}")


def listen_fd(name: str = WORKER_FD_NAME, env: dict | None = None, pid: int | None = None) -> int:
    """The fd systemd passed under ``name`` (sd_listen_fds(3)); LISTEN_* are removed from ``env``.

    Raises:
        DispatchError: LISTEN_FDS_MISSING when there is not exactly one.
    """
    env = os.environ if env is None else env
    fds, lpid, names = env.pop("LISTEN_FDS", None), env.pop("LISTEN_PID", None), env.pop("LISTEN_FDNAMES", "")
    found: list[int] = []
    if fds is not None and lpid is not None and lpid.isdigit() and int(lpid) == (os.getpid() if pid is None else pid) and fds.isdigit():
        listed = names.split(":") if names else []
        found = [SD_LISTEN_FDS_START + i for i in range(int(fds)) if (listed[i] if i < len(listed) else "unknown") == name]
    if len(found) != 1:
        raise DispatchError("LISTEN_FDS_MISSING", f"failed to find the socket-activated fd '{name}': {len(found)} passed; "
                                                  "start the worker through its unit dispatchd-worker@TYPE-K.service (docs/WORKERS.md)")
    return found[0]


class Worker:
    """A worker: register a function per type with :meth:`handler`, then :meth:`run`."""

    def __init__(self, concurrency: int = 1, max_payload_bytes: int = 64 * 1024 * 1024) -> None:
        """``concurrency``: requests run at once on each connection (each secondary connects once), 1 … 1024."""
        if type(concurrency) is not int or not 1 <= concurrency <= MAX_WORKER_CONCURRENCY:
            raise ValueError(f"concurrency must be a whole number 1 … {MAX_WORKER_CONCURRENCY}, got {concurrency!r}")
        self.concurrency = concurrency
        self.max_payload_bytes = max_payload_bytes
        self._fns: dict[str, Function] = {}
        # Each open connection's closer (ends it once no request runs on it), see stop().
        self._open: set[Callable[[], None]] = set()
        self._open_lock = threading.Lock()
        self._stopping = False

    def handler(self, type_name: str) -> Callable[[Function], Function]:
        """A decorator registering the function of ``type_name``."""
        def register(fn: Function) -> Function:
            self.handle(type_name, fn)
            return fn
        return register

    def handle(self, type_name: str, fn: Function) -> None:
        """Registers the function of ``type_name``.

        Raises:
            ValueError: for a name that is no type name.
        """
        if not _TYPE_NAME.fullmatch(type_name):
            raise ValueError(f"'{type_name}' is not a type name ([a-z][a-z0-9-]{{0,62}})")
        self._fns[type_name] = fn

    def run(self) -> None:
        """Serves the socket systemd passed (fd name ``worker``) until SIGTERM or SIGINT.

        At SIGTERM (``systemctl stop``, a restart) it stops accepting, lets the requests running
        finish, closes each connection once idle (:meth:`stop`) and returns, so that the process
        exits (systemd sends SIGKILL after the unit's TimeoutStopSec=, 5 s).

        Raises:
            DispatchError: LISTEN_FDS_MISSING when not started by dispatchd-worker@.socket.
        """
        if not self._fns:
            raise ValueError("register at least one type with handler() before run()")
        server = socket.socket(fileno=listen_fd())
        # Standard output and error are the journal's stream, not a terminal: line-buffer
        # them, so that what a function prints is in the journal at once, not at exit.
        for stream in (sys.stdout, sys.stderr):
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(line_buffering=True)
        def on_signal(signum: int, frame: object) -> None:
            raise _Stopping()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        threads: list[threading.Thread] = []
        try:
            while True:
                conn, _ = server.accept()
                thread = threading.Thread(target=self.serve, args=(conn,), daemon=True)
                thread.start()
                threads = [t for t in threads if t.is_alive()] + [thread]
        except _Stopping:
            pass
        finally:
            server.close()
        self.stop()
        for thread in threads:
            thread.join()

    def stop(self) -> None:
        """Closes each connection as soon as no request runs on it (run() calls it at SIGTERM)."""
        with self._open_lock:
            self._stopping = True
            closers = list(self._open)
        for close in closers:
            close()

    def serve(self, conn: socket.socket) -> None:
        """Serves one secondary's connection until it closes (run() calls it per connection)."""
        lock = threading.Lock()
        running: dict[int, Context] = {}

        def close_if_idle() -> None:
            with lock:
                idle = not running
            if idle:
                try:
                    conn.shutdown(socket.SHUT_RDWR)  # the reader below sees the end
                except OSError:
                    pass

        with self._open_lock:
            self._open.add(close_if_idle)
            stopping = self._stopping
        if stopping:
            close_if_idle()

        def send(header: dict, body: bytes = b"") -> None:
            data = encode_frame(header, body)
            with lock:
                try:
                    conn.sendall(data)
                except OSError:
                    pass  # the connection is gone; the reader sees it

        def call(rid: int, fn: Function | None, data: bytes, ctx: Context) -> None:
            try:
                if fn is None:
                    raise DispatchError("UNKNOWN_TYPE", f"this worker does not serve '{ctx.type}'")
                out = fn(data, ctx)
                if isinstance(out, str):
                    out = out.encode("utf-8")
                if not isinstance(out, (bytes, bytearray, memoryview)):
                    raise TypeError(f"the '{ctx.type}' function must return bytes or a str, not {type(out).__name__}")
                header, body = {"op": "result", "id": rid}, bytes(out)
            except Exception as err:  # noqa: BLE001 - every failure is the client's HANDLER_FAILED
                header, body = {"op": "error", "id": rid, "message": str(err) or type(err).__name__}, b""
            data = encode_frame(header, body)
            with lock:
                if running.get(rid) is not ctx:
                    return
                # Sent before the request leaves `running`: close_if_idle never cuts it off.
                try:
                    conn.sendall(data)
                except OSError:
                    pass  # the connection is gone; the reader sees it
                del running[rid]
            if self._stopping:
                close_if_idle()

        send({"op": "hello", "protocol": WORKER_PROTOCOL_VERSION, "types": list(self._fns), "concurrency": self.concurrency})
        dec = FrameDecoder(self.max_payload_bytes)
        with conn, ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="dispatchd-worker") as pool:
            try:
                while chunk := conn.recv(256 * 1024):
                    dec.push(chunk)
                    while (f := dec.next()) is not None:
                        m = parse_secondary_message(f.header)
                        if m["op"] == "cancel":
                            with lock:
                                ctx = running.get(m["id"])
                            if ctx is not None:
                                ctx.cancelled.set()
                            continue
                        ctx = Context(m["type"], m["deadline_ms"])
                        with lock:
                            if m["id"] in running or len(running) >= self.concurrency:
                                raise _bad(f"request id {m['id']} is already running" if m["id"] in running
                                           else f"more than concurrency ({self.concurrency}) requests at once")
                            running[m["id"]] = ctx
                        pool.submit(call, m["id"], self._fns.get(m["type"]), f.body, ctx)
            except (DispatchError, OSError) as err:
                print(f"dispatchd worker: closed a secondary's connection: {err}", file=sys.stderr, flush=True)
            finally:
                with self._open_lock:
                    self._open.discard(close_if_idle)
                with lock:
                    for ctx in running.values():
                        ctx.cancelled.set()
                    running.clear()
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
