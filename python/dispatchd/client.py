"""The dispatchd client: ``dispatchd.request(type, data)`` and :class:`Client`.

One request is: ask the main server for a lease (a frame on main.sock), follow the redirect
to the secondary it names, present the lease with the payload, read the result. A failure
that leaves the request un-run (a refused lease, BUSY, UNAVAILABLE, a connection that failed
before the run frame was sent) is retried on a fresh lease, within a number of attempts and a
total time budget. Once the run frame was sent the request may have run: a lost answer is
retried only when the lease says the type is idempotent (at least once); otherwise it is
OUTCOME_UNKNOWN and never sent again (at most once).

Source: daemons/client/client.ts, which this module follows step for step; the protocol is
docs/PROTOCOL.md (§1 frames, §4 retries, §5 timeouts) and spec/ holds the vectors both run.
"""

from __future__ import annotations

import errno
import math
import os
import random
import socket as _socket
import stat
import time
from dataclasses import dataclass
from typing import Callable

from .errors import DispatchError
from .frame import MAX_BODY_BYTES_CEILING, Frame, FrameDecoder, encode_frame

#: The main server's socket.
DEFAULT_SOCKET = "/run/dispatchd/main.sock"

#: Codes after which a fresh lease may be asked for (client.ts RETRYABLE).
RETRYABLE = frozenset({
    "CONNECT_FAILED", "CONNECTION_LOST", "TIMEOUT", "UNAVAILABLE", "BUSY", "SHUTTING_DOWN",
    "LEASE_UNKNOWN", "LEASE_EXPIRED", "LEASE_STALE", "IDLE_TIMEOUT",
})

#: How much sooner than the client's own timeout main is asked to answer a queued lease, ms.
LEASE_ANSWER_MARGIN_MS = 250
#: Bytes asked of one recv(2), into a buffer each connection keeps (recv_into): a fresh
#: 256 KiB bytes object per answer cost an mmap, mremap and munmap each (bench: 78 → 29 µs of
#: client CPU per established-lease request with a kept 64 KiB buffer).
_RECV_BYTES = 64 * 1024
#: The protocol's bounds of ``wait_ms`` and ``deadline_ms``, in ms.
MAX_WAIT_MS = 3_600_000


@dataclass(frozen=True)
class Lease:
    """A lease granted by the main server (docs/PROTOCOL.md §1.2).

    Attributes:
        secondary: N of the secondary that holds it.
        socket: that secondary's socket path.
        lease: the token, opaque lowercase hex (2 … 256 digits; 82 today).
        generation: the secondary process's generation; the lease is good only for it.
        expires_in_ms: time left to present it, in ms.
        type: the request type it is for.
        idempotent: whether the type may be sent again after a lost answer (a required field
            of the answer: one without it is a PROTOCOL_ERROR).
    """

    secondary: int
    socket: str
    lease: str
    generation: int
    expires_in_ms: int
    type: str
    idempotent: bool


@dataclass(frozen=True)
class RequestInfo:
    """A result with where it came from: the secondary, its generation, and the attempts it took."""

    result: bytes
    secondary: int
    generation: int
    attempts: int


def _is_int(x: object, lo: int, hi: int) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and lo <= x <= hi


def _from_reply(header: dict, peer: str) -> DispatchError:
    """Converts an error frame's header into a DispatchError (PROTOCOL_ERROR if it is not one)."""
    from .errors import ERROR_CODES
    code, message = header.get("code"), header.get("message")
    if header.get("ok") is not False or code not in ERROR_CODES or not isinstance(message, str):
        return DispatchError("PROTOCOL_ERROR", f"failed to understand the answer of {peer}: not a dispatchd reply")
    ra = header.get("retry_after_ms")
    return DispatchError(code, message, retry_after_ms=ra if _is_int(ra, 0, 2**53) else None,
                         retryable=header.get("retryable") is True,
                         may_have_run=header.get("may_have_run") is True, fields={"peer": peer})


def _parse_lease(h: dict, asked_type: str) -> Lease:
    """Validates a lease answer (protocol.ts LeaseGranted). Raises PROTOCOL_ERROR."""
    ok = (h.get("ok") is True and h.get("op") == "lease" and _is_int(h.get("secondary"), 1, 2**53)
          and isinstance(h.get("socket"), str) and 0 < len(h["socket"]) <= 4096
          and isinstance(h.get("lease"), str) and 2 <= len(h["lease"]) <= 256
          and all(c in "0123456789abcdef" for c in h["lease"])
          and _is_int(h.get("generation"), 0, 0xFFFFFFFF) and _is_int(h.get("expires_in_ms"), 0, 2**53)
          and isinstance(h.get("type"), str) and 0 < len(h["type"]) <= 64
          and isinstance(h.get("idempotent"), bool))
    if not ok:
        missing = (": it has no boolean `idempotent`" if not isinstance(h.get("idempotent"), bool)
                   else ": it has no `type`" if not isinstance(h.get("type"), str) else "")
        raise DispatchError("PROTOCOL_ERROR",
                            f"failed to understand the main server's answer: not a lease{missing} (docs/PROTOCOL.md §1.2)")
    if h["type"] != asked_type:
        raise DispatchError("PROTOCOL_ERROR", f"failed to use the main server's answer: a lease for '{h['type']}' requests, "
                            f"but '{asked_type}' was asked for (docs/PROTOCOL.md §1.2)")
    return Lease(secondary=h["secondary"], socket=h["socket"], lease=h["lease"], generation=h["generation"],
                 expires_in_ms=h["expires_in_ms"], type=h["type"], idempotent=h["idempotent"])


def _is_run_result(h: dict) -> bool:
    """protocol.ts RunResult: ok, op "result", type, elapsed_ms ≥ 0, optional secondary, generation."""
    el = h.get("elapsed_ms")
    return (h.get("ok") is True and h.get("op") == "result" and isinstance(h.get("type"), str)
            and isinstance(el, (int, float)) and not isinstance(el, bool) and math.isfinite(el) and el >= 0
            and (h.get("secondary") is None or _is_int(h["secondary"], 1, 2**53))
            and (h.get("generation") is None or _is_int(h["generation"], 0, 0xFFFFFFFF)))


@dataclass(frozen=True)
class TimeBudget:
    """A request's overall time budget, which a connect made for it must not outlast.

    A connect still pending when it runs out is TIMEOUT, not CONNECT_FAILED (docs/PROTOCOL.md §1.3).
    """

    #: When it runs out, as a time.monotonic() time in seconds.
    deadline: float
    #: The whole budget, in ms (for the message).
    total_ms: float


class _Connection:
    """A framed connection to a unix stream socket; every wait has a timeout."""

    def __init__(self, path: str, max_body_bytes: int, timeout_ms: float, budget: TimeBudget | None = None) -> None:
        """Connects within ``timeout_ms`` ms, and within ``budget`` (the request's overall one) when given.

        Raises CONNECT_FAILED (missing socket, refused, permission, no answer within
        ``timeout_ms``); TIMEOUT when ``budget`` ran out first (as client.ts connectFramed).
        """
        self.path = path
        self.decoder = FrameDecoder(max_body_bytes)
        self._rbuf = bytearray(_RECV_BYTES)
        self._rview = memoryview(self._rbuf)
        budget_left_ms = (budget.deadline - time.monotonic()) * 1000 if budget is not None else math.inf
        out_of_budget = budget_left_ms <= timeout_ms
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(max(min(timeout_ms, budget_left_ms), 1) / 1000)
        try:
            sock.connect(path)
        except TimeoutError:
            sock.close()
            if out_of_budget:
                assert budget is not None
                raise DispatchError("TIMEOUT", f"failed to connect to '{path}': no answer within {round(budget.total_ms)} ms, "
                                    "the request's time budget (timeout_ms, dispatchctl --timeout)", retryable=True) from None
            raise DispatchError("CONNECT_FAILED", f"failed to connect to '{path}': no answer within {round(timeout_ms)} ms", retryable=True) from None
        except OSError as err:
            sock.close()
            raise DispatchError("CONNECT_FAILED", f"failed to connect to '{path}': {_connect_hint(path, err)}", retryable=True) from err
        self.sock = sock

    def exchange(self, header: dict, body: bytes, timeout_ms: float, peer: str) -> Frame:
        """Sends one frame and waits up to ``timeout_ms`` for one frame back.

        Raises:
            DispatchError: TIMEOUT, CONNECTION_LOST, PROTOCOL_ERROR (a framing error in the answer).
        """
        deadline = time.monotonic() + timeout_ms / 1000
        try:
            self.sock.settimeout(max(timeout_ms, 1) / 1000)
            self.sock.sendall(encode_frame(header, body))
            while True:
                try:
                    frame = self.decoder.next()
                except DispatchError as err:
                    self.close()
                    raise DispatchError("PROTOCOL_ERROR", f"failed to read the answer of {peer}: {err.message}") from err
                if frame is not None:
                    return frame
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.sock.settimeout(left)
                n = self.sock.recv_into(self._rbuf)
                if n == 0:
                    self.close()
                    raise DispatchError("CONNECTION_LOST", f"failed to get an answer from {peer}: the connection closed", retryable=True)
                self.decoder.push(self._rview[:n])
        except TimeoutError:
            self.close()
            raise DispatchError("TIMEOUT", f"failed to get an answer from {peer} within {round(timeout_ms)} ms", retryable=True) from None
        except OSError as err:
            self.close()
            raise DispatchError("CONNECTION_LOST", f"failed to get an answer from {peer}: {err.strerror or err}", retryable=True) from err

    def close(self) -> None:
        """Closes the connection (idempotent)."""
        try:
            self.sock.close()
        except OSError:
            pass


def _connect_hint(path: str, err: OSError) -> str:
    """What a failed connect means and what to do (as client.ts connectFramed)."""
    if err.errno == errno.ENOENT:
        return "no such socket: dispatchd is not running; see 'systemctl status dispatchd.target' (start it with systemctl start dispatchd.target)"
    if err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied: run as root or as a member of the dispatchd-clients group"
    if err.errno in (errno.ECONNREFUSED, errno.ENOTSOCK):
        try:
            if not stat.S_ISSOCK(os.stat(path).st_mode):
                return "it is not a socket; pass the main server's socket with --socket (default /run/dispatchd/main.sock)"
        except OSError:
            pass
        if err.errno == errno.ECONNREFUSED:
            return "connection refused: nobody listens there; see 'systemctl status dispatchd.target'"
    return err.strerror or str(err)


def backoff_ms(attempt: int) -> int:
    """Back-off before retry number ``attempt`` (1, 2, …), in ms: base = min(1000, 25·2^(attempt−1)),
    uniformly jittered in [base/2, base]. Not added to a BUSY's ``retry_after_ms``, which replaces it."""
    base = min(1000, 25 * 2 ** (attempt - 1))
    return math.floor(base / 2 + random.random() * (base / 2) + 0.5)  # Math.round


def _check_ms(name: str, value: object, low: float, high: float, *, integer: bool = False) -> None:
    """Raises DispatchError BAD_REQUEST (nothing sent) unless ``value`` is a number of ms in [low, high] (an integer when asked)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value) and low <= value <= high
    if ok and integer:
        ok = float(value).is_integer()
    if not ok:
        bound = f"{low:g} … {high:,.0f} ms" if high != math.inf else f"at least {low:g} ms"
        raise DispatchError("BAD_REQUEST", f"{name} must be {'an integer' if integer else 'a number'} of {bound}, not {value!r}; nothing was sent")


class Session:
    """A connection to a secondary holding a claimed lease ("established lease").

    Several requests may run on it one after the other; every run frame repeats the lease and
    its generation. The lease ends when the session closes. Use as a context manager::

        with client.session(client.lease("echo")) as s:
            s.run(b"one"); s.run(b"two")
    """

    def __init__(self, lease: Lease, *, max_result_bytes: int = MAX_BODY_BYTES_CEILING,
                 connect_timeout_ms: float = 5000, budget: TimeBudget | None = None) -> None:
        """Connects to the lease's secondary within ``connect_timeout_ms`` ms (and ``budget``).

        Raises DispatchError CONNECT_FAILED; TIMEOUT when ``budget`` ran out during the connect.
        """
        self.lease = lease
        self._conn = _Connection(lease.socket, max_result_bytes, connect_timeout_ms, budget)
        self.ran = False
        self._closed = False

    def run(self, data: bytes = b"", *, timeout_ms: float = 60_000, deadline_ms: int | None = None) -> bytes:
        """Runs one request of the lease's type and returns the result's bytes.

        Args:
            data: the request's DATA (bytes).
            timeout_ms: how long to wait for the answer, in ms.
            deadline_ms: the run's deadline sent to the secondary, 1 … 3,600,000 ms (capped
                there by the type's ``deadline_ms``); None for the type's default.

        Raises:
            DispatchError: the secondary's error code (LEASE_*, HANDLER_FAILED,
                DEADLINE_EXCEEDED, …); CONNECTION_LOST or TIMEOUT with ``may_have_run`` once
                the run frame was sent; CONNECTION_LOST without it when the session was
                closed already (nothing sent); BAD_REQUEST for a ``timeout_ms`` or
                ``deadline_ms`` out of range (nothing sent); PROTOCOL_ERROR.
        """
        if self._closed:
            raise DispatchError("CONNECTION_LOST", f"the session on secondary-{self.lease.secondary} is closed (its lease ended): nothing was sent; run the '{self.lease.type}' request on a new lease",
                                retryable=True)
        _check_ms("timeout_ms", timeout_ms, 1, math.inf)
        if deadline_ms is not None:
            _check_ms("deadline_ms", deadline_ms, 1, MAX_WAIT_MS, integer=True)
        header: dict = {"op": "run", "lease": self.lease.lease, "generation": self.lease.generation, "type": self.lease.type}
        if deadline_ms is not None:
            header["deadline_ms"] = deadline_ms
        peer = f"secondary-{self.lease.secondary}"
        self.ran = True
        try:
            f = self._conn.exchange(header, bytes(data), timeout_ms, peer)
        except DispatchError as err:
            if err.code in ("CONNECTION_LOST", "TIMEOUT"):
                # The run frame was sent: the request may have run before the answer was lost.
                raise DispatchError(err.code, f"{err.message}; the '{self.lease.type}' request may or may not have run",
                                    retryable=True, may_have_run=True, fields={**err.fields, "may_have_run": True}) from err
            raise
        if f.header.get("ok") is not True:
            raise _from_reply(f.header, peer)
        if not _is_run_result(f.header):
            raise DispatchError("PROTOCOL_ERROR", f"failed to understand the answer of {peer}: not a result")
        gen = f.header.get("generation")
        if gen is not None and gen != self.lease.generation:
            raise DispatchError("LEASE_STALE", f"failed to use the answer of {peer}: it came from generation {gen}, the lease is for generation {self.lease.generation}; ask the main server for a new lease",
                                retryable=True, may_have_run=True)  # a process ran it, or may have: not proof it did not
        return f.body

    def close(self) -> None:
        """Closes the connection, which ends the lease (idempotent); a later :meth:`run` raises CONNECTION_LOST."""
        self._closed = True
        self._conn.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Client:
    """A client of one dispatchd suite. Holds no connection between requests.

    Args:
        socket: the main server's socket (None: :data:`DEFAULT_SOCKET`, /run/dispatchd/main.sock).
        timeout_ms: total time budget for one request, retries included, in ms.
        attempts: most attempts for one request.
        answer_timeout_ms: how long to wait for the main server's answer to a lease, in ms.
        deadline_ms: per-request deadline sent to the secondary, in ms (None: the type's).
        max_result_bytes: largest result accepted, in bytes.
        on_retry: called before each retry as ``on_retry(attempt, error, wait_ms)``.
    """

    def __init__(self, socket: str | None = None, *, timeout_ms: int = 60_000, attempts: int = 10,
                 answer_timeout_ms: int = 5000, deadline_ms: int | None = None,
                 max_result_bytes: int = MAX_BODY_BYTES_CEILING,
                 on_retry: Callable[[int, DispatchError, int], None] | None = None) -> None:
        _check_ms("timeout_ms", timeout_ms, 1, math.inf)
        _check_ms("answer_timeout_ms", answer_timeout_ms, 1, math.inf)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise DispatchError("BAD_REQUEST", f"attempts must be an integer of at least 1, not {attempts!r}")
        if deadline_ms is not None:
            _check_ms("deadline_ms", deadline_ms, 1, MAX_WAIT_MS, integer=True)
        if isinstance(max_result_bytes, bool) or not isinstance(max_result_bytes, int) or not 0 <= max_result_bytes <= MAX_BODY_BYTES_CEILING:
            raise DispatchError("BAD_REQUEST", f"max_result_bytes must be an integer of 0 … {MAX_BODY_BYTES_CEILING} bytes, not {max_result_bytes!r}")
        self.socket = socket or DEFAULT_SOCKET
        self.timeout_ms = timeout_ms
        self.attempts = attempts
        self.answer_timeout_ms = answer_timeout_ms
        self.deadline_ms = deadline_ms
        self.max_result_bytes = max_result_bytes
        self.on_retry = on_retry

    def lease(self, type: str, *, timeout_ms: float | None = None, budget: TimeBudget | None = None) -> Lease:
        """Asks the main server for a lease for one request of ``type``.

        ``wait_ms`` sent to main is the time left minus a margin (250 ms, or a quarter of it
        when shorter), capped at 3,600,000 ms, so main answers BUSY while the client listens.
        ``budget`` is the request's overall time budget: a connect it cuts short is TIMEOUT.

        Raises:
            DispatchError: CONNECT_FAILED, TIMEOUT, CONNECTION_LOST, BUSY (with
                ``retry_after_ms``), UNAVAILABLE, UNKNOWN_TYPE, SHUTTING_DOWN, PROTOCOL_ERROR.
        """
        timeout_ms = self.answer_timeout_ms if timeout_ms is None else timeout_ms
        started = time.monotonic()
        conn = _Connection(self.socket, 0, timeout_ms, budget)
        try:
            left = max(1.0, timeout_ms - (time.monotonic() - started) * 1000)
            wait_ms = min(MAX_WAIT_MS, max(0, int(left - min(LEASE_ANSWER_MARGIN_MS, left // 4))))
            f = conn.exchange({"op": "lease", "type": type, "wait_ms": wait_ms}, b"", left, "the main server")
            if f.header.get("ok") is not True:
                raise _from_reply(f.header, "the main server")
            return _parse_lease(f.header, type)
        finally:
            conn.close()

    def session(self, lease: Lease) -> Session:
        """Opens an established-lease session on ``lease``'s secondary. Raises CONNECT_FAILED."""
        return Session(lease, max_result_bytes=self.max_result_bytes,
                       connect_timeout_ms=min(self.timeout_ms, self.answer_timeout_ms))

    def request(self, type: str, data: bytes = b"") -> bytes:
        """Sends one request and returns the result's bytes, retrying on a fresh lease when safe.

        Raises:
            DispatchError: the last failure's code (README "Exit codes"); OUTCOME_UNKNOWN when
                the answer of a non-idempotent type was lost after its run frame was sent.
        """
        return self.request_with_info(type, data).result

    def request_with_info(self, type: str, data: bytes = b"") -> RequestInfo:
        """As :meth:`request`, and says which secondary (and generation) served it, after how many attempts."""
        deadline = time.monotonic() + self.timeout_ms / 1000
        # A connect cut short by this budget is TIMEOUT: the request ran out of time, the socket did not fail.
        budget = TimeBudget(deadline, self.timeout_ms)
        last: DispatchError | None = None
        for attempt in range(1, self.attempts + 1):
            left = (deadline - time.monotonic()) * 1000
            if left <= 0:
                break
            grant: Lease | None = None
            try:
                grant = self.lease(type, timeout_ms=min(self.answer_timeout_ms, left), budget=budget)
                with Session(grant, max_result_bytes=self.max_result_bytes,
                             connect_timeout_ms=min(max(1, (deadline - time.monotonic()) * 1000), self.answer_timeout_ms), budget=budget) as s:
                    result = s.run(data, timeout_ms=max(1, (deadline - time.monotonic()) * 1000), deadline_ms=self.deadline_ms)
                return RequestInfo(result, grant.secondary, grant.generation, attempt)
            except DispatchError as err:
                last = err
            if last.may_have_run and grant is not None and not grant.idempotent:
                raise _outcome_unknown(type, grant, last) from last
            if last.code not in RETRYABLE or attempt == self.attempts:
                break
            wait_ms = last.retry_after_ms if last.code == "BUSY" and last.retry_after_ms is not None else backoff_ms(attempt)
            if time.monotonic() + wait_ms / 1000 >= deadline:
                break
            if self.on_retry is not None:
                self.on_retry(attempt, last, wait_ms)
            time.sleep(wait_ms / 1000)
        e = last or DispatchError("TIMEOUT", f"failed to complete the '{type}' request within {self.timeout_ms} ms")
        raise DispatchError(e.code, e.message, retry_after_ms=e.retry_after_ms, retryable=e.code in RETRYABLE,
                            may_have_run=e.may_have_run, fields=e.fields) from e


def _outcome_unknown(type: str, grant: Lease, cause: DispatchError) -> DispatchError:
    """The answer of a request that may have run was lost, and its type is not idempotent."""
    return DispatchError(
        "OUTCOME_UNKNOWN",
        f"the '{type}' request may or may not have run on secondary-{grant.secondary} ({cause.code}: {cause.message}); "
        f"it was not sent again because '{type}' is not idempotent (at most once): check whether it took effect before sending it again",
        may_have_run=True, fields={**cause.fields, "type": type})


def request(type: str, data: bytes = b"", *, socket: str | None = None, timeout_ms: int = 60_000,
            deadline_ms: int | None = None) -> bytes:
    """Sends one request of ``type`` with ``data`` and returns the result's bytes.

    Args:
        type: a request type the suite serves (``dispatchctl types``), e.g. ``"echo"``.
        data: the request's DATA.
        socket: the main server's socket (None: /run/dispatchd/main.sock).
        timeout_ms: total time budget, retries included, in ms.
        deadline_ms: the run's deadline at the secondary, in ms (None: the type's).

    Raises:
        DispatchError: see :meth:`Client.request`.
    """
    return Client(socket, timeout_ms=timeout_ms, deadline_ms=deadline_ms).request(type, data)
