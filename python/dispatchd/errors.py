"""Typed errors and exit codes of dispatchd, as in the TypeScript implementation.

Every failure is a :class:`DispatchError` with a stable ``code`` (one of
:data:`ERROR_CODES`, the same strings servers send on the wire) and a message that says what
failed and what to do. Library code raises; only entry points (``python3 -m dispatchd``) map
a code to an exit code with :func:`exit_code_for`.

Source: daemons/common/errors.ts and daemons/common/exit-codes.ts (the one exit-code table,
repeated in README "Exit codes" and docs/PROTOCOL.md §4.1).
"""

from __future__ import annotations

import enum

#: Every stable error code dispatchd uses, in code and on the wire (errors.ts ERROR_CODES).
ERROR_CODES: tuple[str, ...] = (
    # configuration and start-up
    "CONFIG_UNREADABLE", "CONFIG_INVALID", "LISTEN_FDS_INVALID", "LISTEN_FDS_MISSING",
    # socket framing
    "FRAME_BAD_MAGIC", "FRAME_BAD_VERSION", "FRAME_TOO_LARGE", "FRAME_BAD_HEADER",
    # mailbox FIFOs
    "MESSAGE_TOO_LARGE", "MESSAGE_INVALID", "MAILBOX_NO_READER", "MAILBOX_OPEN_FAILED",
    "MAILBOX_FULL", "MAILBOX_WRITE_FAILED",
    # scoreboard
    "SCOREBOARD_OPEN_FAILED", "SCOREBOARD_BAD_LAYOUT", "SCOREBOARD_NO_SPACE", "SCOREBOARD_IO",
    # answers a server gives a client (also raised by the client library)
    "BAD_REQUEST", "UNKNOWN_TYPE", "PAYLOAD_TOO_LARGE", "UNAVAILABLE", "BUSY",
    "LEASE_UNKNOWN", "LEASE_EXPIRED", "LEASE_STALE", "DEADLINE_EXCEEDED", "SHUTTING_DOWN",
    "IDLE_TIMEOUT", "INTERNAL",
    # request types (docs/TYPES.md)
    "LEASE_WRONG_TYPE", "HANDLER_FAILED", "HANDLER_CRASHED", "RESULT_TOO_LARGE",
    # client side
    "CONNECT_FAILED", "CONNECTION_LOST", "TIMEOUT", "PROTOCOL_ERROR", "SCOREBOARD_MISSING",
    "OUTCOME_UNKNOWN",
    # supervision
    "RESTART_FAILED",
    # operation (dispatchctl scale)
    "SCALE_FAILED",
)


class DispatchError(Exception):
    """The one error class of dispatchd: a message for people and a stable ``code`` for programs.

    Attributes:
        code: one of :data:`ERROR_CODES`.
        message: one line: what failed, why, and what to do.
        retry_after_ms: for ``BUSY``, how long to wait before retrying, in ms (else None).
        retryable: True when the request did not run and may be sent again on a fresh lease.
        may_have_run: True when the request may have run, in whole or in part (its answer was
            lost or cut off after the run frame was sent).
        fields: short key=value context (peer, type, …).
    """

    def __init__(self, code: str, message: str, *, retry_after_ms: int | None = None,
                 retryable: bool = False, may_have_run: bool = False,
                 fields: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms
        self.retryable = retryable
        self.may_have_run = may_have_run
        self.fields = dict(fields or {})

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"DispatchError({self.code!r}, {self.message!r})"


class Exit(enum.IntEnum):
    """Exit codes of dispatchctl and ``python3 -m dispatchd`` (sysexits.h, and 124 as timeout(1))."""

    OK = 0
    #: An unexpected failure.
    FAILURE = 1
    #: Bad command line (EX_USAGE).
    USAGE = 64
    #: The request was rejected: bad type, bad data, too large, bad or stale lease (EX_DATAERR).
    REJECTED = 65
    #: No main server or no secondary could be reached (EX_UNAVAILABLE).
    UNAVAILABLE = 69
    #: The request's handler failed (EX_SOFTWARE).
    HANDLER_FAILED = 70
    #: The request may or may not have run and its type is not idempotent (EX_IOERR).
    OUTCOME_UNKNOWN = 74
    #: Every secondary is busy; retry later (EX_TEMPFAIL).
    BUSY = 75
    #: A peer spoke something that is not the dispatchd protocol (EX_PROTOCOL).
    PROTOCOL = 76
    #: Bad configuration (EX_CONFIG).
    CONFIG = 78
    #: The request, or the wait for an answer, took longer than its deadline.
    TIMED_OUT = 124


_EXIT_BY_CODE: dict[str, Exit] = {
    "CONFIG_INVALID": Exit.CONFIG, "CONFIG_UNREADABLE": Exit.CONFIG,
    "BAD_REQUEST": Exit.REJECTED, "UNKNOWN_TYPE": Exit.REJECTED,
    "PAYLOAD_TOO_LARGE": Exit.REJECTED, "LEASE_UNKNOWN": Exit.REJECTED,
    "LEASE_EXPIRED": Exit.REJECTED, "LEASE_STALE": Exit.REJECTED,
    "LEASE_WRONG_TYPE": Exit.REJECTED,
    "HANDLER_FAILED": Exit.HANDLER_FAILED, "HANDLER_CRASHED": Exit.HANDLER_FAILED,
    "RESULT_TOO_LARGE": Exit.HANDLER_FAILED,
    "OUTCOME_UNKNOWN": Exit.OUTCOME_UNKNOWN,
    "UNAVAILABLE": Exit.UNAVAILABLE, "CONNECT_FAILED": Exit.UNAVAILABLE,
    "CONNECTION_LOST": Exit.UNAVAILABLE, "SHUTTING_DOWN": Exit.UNAVAILABLE,
    "SCOREBOARD_MISSING": Exit.UNAVAILABLE,
    "BUSY": Exit.BUSY,
    "PROTOCOL_ERROR": Exit.PROTOCOL, "FRAME_BAD_MAGIC": Exit.PROTOCOL,
    "FRAME_BAD_VERSION": Exit.PROTOCOL, "FRAME_TOO_LARGE": Exit.PROTOCOL,
    "FRAME_BAD_HEADER": Exit.PROTOCOL,
    "TIMEOUT": Exit.TIMED_OUT, "DEADLINE_EXCEEDED": Exit.TIMED_OUT,
    "IDLE_TIMEOUT": Exit.TIMED_OUT,
}


def exit_code_for(code: str | None) -> Exit:
    """Maps an error code to the exit code dispatchctl ends with (exit-codes.ts exitCodeFor)."""
    return _EXIT_BY_CODE.get(code or "", Exit.FAILURE)
