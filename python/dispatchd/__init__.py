"""dispatchd for Python: send requests to a dispatchd suite and read its scoreboard.

Standard library only, Python ≥ 3.11. The whole API (docs/PYTHON.md)::

    import dispatchd
    dispatchd.request("echo", b"hello")                 # -> b"hello"
    client = dispatchd.Client(timeout_ms=10_000)
    with client.session(client.lease("sha256")) as s:   # an established lease
        s.run(b"a"); s.run(b"b")
    dispatchd.read_scoreboard().slots                   # every daemon's slot

Errors are :class:`DispatchError` with the stable codes of the TypeScript implementation;
:func:`exit_code_for` maps them to dispatchctl's exit codes.
"""

from .client import DEFAULT_SOCKET, RETRYABLE, Client, Lease, RequestInfo, Session, TimeBudget, backoff_ms, request
from .errors import ERROR_CODES, DispatchError, Exit, exit_code_for
from .frame import Frame, FrameDecoder, encode_frame
from .scoreboard import DEFAULT_SCOREBOARD, Slot, Snapshot, read_scoreboard, status_report

#: The dispatchd release this package belongs to (package.json's version; a test keeps them equal).
__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SCOREBOARD", "DEFAULT_SOCKET", "ERROR_CODES", "RETRYABLE", "Client", "DispatchError", "Exit", "Frame",
    "FrameDecoder", "Lease", "RequestInfo", "Session", "Slot", "Snapshot", "TimeBudget", "backoff_ms", "encode_frame",
    "exit_code_for", "read_scoreboard", "request", "status_report",
]
