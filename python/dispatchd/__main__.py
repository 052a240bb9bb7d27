"""``python3 -m dispatchd``: dispatchctl's ``request`` and ``status`` in Python.

    python3 -m dispatchd [--socket PATH] request TYPE [DATA] [--timeout MS] [--deadline MS] [-v]
    python3 -m dispatchd status [--json] [--scoreboard PATH]

DATA comes from the argument, or from standard input when it is ``-`` or absent; the result's
bytes go to standard output. Errors: one line on standard error,
``dispatchd: <what>: <message> [CODE]``, and dispatchctl's exit code (README "Exit codes").
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__
from .client import DEFAULT_SOCKET, Client
from .frame import MAX_BODY_BYTES_CEILING
from .errors import DispatchError, Exit, exit_code_for
from .scoreboard import DEFAULT_SCOREBOARD, format_table, problems, read_scoreboard, status_report

CONFIG = "/etc/dispatchd/dispatchd.conf"

#: What the user can do about an error, beyond what the server said (dispatchctl's hints).
HINTS = {
    "TIMEOUT": "raise --timeout (ms) if the request needs longer",
    "DEADLINE_EXCEEDED": "python3 -m dispatchd takes it as --deadline (ms)",
    "PAYLOAD_TOO_LARGE": "send less, or raise max_payload_bytes (a type's own where its file sets one, in /etc/dispatchd/types.d; "
    "the package's built-in types, in /usr/share/dispatchd/types.d, are not edited; "
    "else [secondary] max_payload_bytes in /etc/dispatchd/dispatchd.conf)",
    "BUSY": "retry later, or raise max_leases / add secondaries (dispatchctl scale N)",
}


def _one_line(s: str) -> str:
    """Control characters (C0 and DEL) written as JSON escapes (``\\n``, ``\\u001b``), as
    dispatchctl's: a type name, path or DATA quoted in a message stays on its line and cannot
    drive the terminal. Bytes that were not UTF-8 (surrogate escapes) are shown as ``\\xNN``."""
    out = []
    for c in s:
        o = ord(c)
        if o < 0x20 or o == 0x7F:
            out.append(json.dumps(c)[1:-1] if o != 0x7F else "\\u007f")
        elif 0xDC80 <= o <= 0xDCFF:
            out.append(f"\\x{o - 0xDC00:02x}")
        else:
            out.append(c)
    return "".join(out)


def error_line(what: str, err: BaseException) -> str:
    """One line saying what failed, why, what to do, and the error's stable code."""
    if isinstance(err, DispatchError):
        hint = HINTS.get(err.code)
        return _one_line(f"dispatchd: {what}: {err.message}{_with_hint(err.message, hint) if hint else ''} [{err.code}]")
    return _one_line(f"dispatchd: {what}: {err}")


def _with_hint(why: str, hint: str) -> str:
    """What ``hint`` adds to ``why``: nothing when it says it already, only the rest when the
    message already ends with the hint's first clause (the server's "...; send less"), else the
    whole hint after a semicolon (as dispatchctl's cli-output.ts)."""
    if hint in why:
        return ""
    first = hint.split(",")[0]
    return hint[len(first):] if first != hint and why.endswith(first) else f"; {hint}"


def _stdout_failed(err: OSError) -> int:
    """What a failed write to standard output ends with, as dispatchctl's (cli-output.ts): a
    reader that closed early (``| head``, EPIPE) is a quiet exit 0, the reader having taken
    what it wanted; any other failure (a full disk, EIO) one error line and exit 1."""
    # Python flushes stdout again at exit: point it at /dev/null so that cannot fail too
    # (https://docs.python.org/3/library/signal.html#note-on-sigpipe).
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except OSError:
        pass
    if isinstance(err, BrokenPipeError):
        return Exit.OK
    sys.stderr.write(f"dispatchd: failed to write to standard output: {err.strerror or err}\n")
    return Exit.FAILURE


def _flush_stdout(code: int) -> int:
    """Flushes standard output before the exit with ``code``; a failed write ends as
    :func:`_stdout_failed` says."""
    try:
        sys.stdout.flush()
    except OSError as err:
        return _stdout_failed(err)
    return code


def _fail(what: str, err: BaseException) -> int:
    sys.stderr.write(error_line(what, err) + "\n")
    return exit_code_for(err.code) if isinstance(err, DispatchError) else Exit.FAILURE


class _Parser(argparse.ArgumentParser):
    """Usage errors end with exit 64 (EX_USAGE) and one line, as dispatchctl's."""

    def _print_message(self, message: str, file=None) -> None:  # type: ignore[no-untyped-def]
        # argparse ignores a failed write (--version > /dev/full would exit 0 having printed
        # nothing): let it reach run(), which says so.
        if message:
            (file or sys.stderr).write(message)

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(_one_line(f"dispatchd: {message}; see 'python3 -m dispatchd --help'") + "\n")
        sys.exit(Exit.USAGE)


def _ms(lo: int, hi: int):
    def parse(s: str) -> int:
        try:
            v = int(s, 10)
        except ValueError:
            v = None
        if v is None or not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"takes a whole number of milliseconds from {lo} to {hi}, got '{s}'")
        return v
    return parse


def _config() -> dict | None:
    """/etc/dispatchd/dispatchd.conf parsed (tomllib), or None when there is no such file.

    :raises OSError: when it cannot be read.
    :raises ValueError: (tomllib.TOMLDecodeError) when it is not TOML.
    """
    import tomllib
    try:
        with open(CONFIG, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return None


def _default_scoreboard() -> str:
    """The scoreboard named by /etc/dispatchd/dispatchd.conf's [paths] scoreboard, else the default."""
    try:
        paths = (_config() or {}).get("paths")
    except (OSError, ValueError):
        return DEFAULT_SCOREBOARD
    path = paths.get("scoreboard") if isinstance(paths, dict) else None
    return path if isinstance(path, str) and path else DEFAULT_SCOREBOARD


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    p = _Parser(prog="python3 -m dispatchd", description="Send requests to dispatchd and show its scoreboard.")
    p.add_argument("--socket", default=DEFAULT_SOCKET, help="the main server's socket (default %(default)s)")
    p.add_argument("--version", action="version", version=__version__)
    sub = p.add_subparsers(dest="command", metavar="{request,status}", parser_class=_Parser)
    # --socket before or after the command, as dispatchctl's global option.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--socket", default=argparse.SUPPRESS, help="the main server's socket")
    r = sub.add_parser("request", parents=[common], help="send one request; DATA from the argument, or standard input when it is - or absent")
    r.add_argument("type", help="request type (dispatchctl types lists them)")
    r.add_argument("data", nargs="?", help="request data, or '-' for standard input (DATA starting with '-' goes after '--')")
    r.add_argument("--timeout", type=_ms(1, 24 * 3_600_000), default=60_000, help="total time budget, retries included (ms)")
    r.add_argument("--deadline", type=_ms(1, 3_600_000), help="deadline for running the request on the secondary (ms)")
    r.add_argument("-v", "--verbose", action="store_true", help="report retries, and which secondary served the request")
    s = sub.add_parser("status", parents=[common], help="show every daemon from the scoreboard")
    s.add_argument("--json", action="store_true", help="one JSON object with a daemons array")
    s.add_argument("--scoreboard", help=f"the scoreboard file (default: from {CONFIG})")
    # Options may stand between TYPE and DATA (`request echo -v hi`), as dispatchctl (yargs)
    # takes them: argparse reads the positionals in one run, so the ones after an option are
    # left over and fill DATA here; anything else left over is an error, as parse_args says.
    a, rest = p.parse_known_args(argv)
    if a.command == "request" and a.data is None and len(rest) == 1 and not rest[0].startswith("-"):
        a.data, rest = rest[0], []
    if rest:
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    if a.command is None:
        p.error("name a command: request or status")
    if a.command == "request":
        if a.type == "":
            p.error("TYPE is empty: name a request type (dispatchctl types lists them)")
        return _request(a)
    return _status(a)


#: [secondary] max_payload_bytes when the configuration does not set it, and its least (bytes).
DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
MIN_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024


def _stdin_limit() -> tuple[int, str]:
    """The most DATA from standard input may hold (bytes), and where that comes from, as
    dispatchctl request reads it (daemons/common/payload-limit.ts): ``[secondary]
    max_payload_bytes`` of /etc/dispatchd/dispatchd.conf; its default when the file is absent
    or does not set it; the protocol's ceiling (the server then refuses) when the file cannot
    be read or the key is bad."""
    try:
        config = _config()
    except (OSError, ValueError):
        return MAX_BODY_BYTES_CEILING, "the protocol's ceiling"
    if config is None:
        return DEFAULT_MAX_PAYLOAD_BYTES, f"the default max_payload_bytes; {CONFIG} is absent"
    section = config.get("secondary", {})
    v = section.get("max_payload_bytes") if isinstance(section, dict) else "bad"
    if v is None:
        return DEFAULT_MAX_PAYLOAD_BYTES, f"the default max_payload_bytes; {CONFIG} does not set it"
    if type(v) is not int or not MIN_MAX_PAYLOAD_BYTES <= v <= MAX_BODY_BYTES_CEILING:
        return MAX_BODY_BYTES_CEILING, "the protocol's ceiling"
    return v, f"max_payload_bytes, from {CONFIG}"


def _read_stdin() -> bytes:
    """Standard input, whole, but no further than the first byte past :func:`_stdin_limit`: an
    endless pipe is refused at once rather than read into memory.

    :raises DispatchError: PAYLOAD_TOO_LARGE past the limit, BAD_REQUEST when standard input
        is closed.
    :raises OSError: when it cannot be read.
    """
    if sys.stdin is None:
        raise DispatchError("BAD_REQUEST", "standard input is closed; give DATA as an argument, or redirect a file into it")
    limit, source = _stdin_limit()
    chunks: list[bytes] = []
    size = 0
    while chunk := sys.stdin.buffer.read1(1 << 20):
        size += len(chunk)
        if size > limit:
            raise DispatchError("PAYLOAD_TOO_LARGE", f"standard input is over the {limit}-byte request limit ({source})")
        chunks.append(chunk)
    return b"".join(chunks)


def _request(a: argparse.Namespace) -> int:
    try:
        # os.fsencode: the argument's bytes as the shell passed them, UTF-8 or not (PEP 383).
        data = _read_stdin() if a.data is None or a.data == "-" else os.fsencode(a.data)
    except (OSError, DispatchError) as err:
        return _fail(f"'{a.type}' request not sent", err)
    retry = None
    if a.verbose:
        def retry(attempt: int, err: DispatchError, wait_ms: int) -> None:
            sys.stderr.write(f"dispatchd: attempt {attempt} failed: {err.message} [{err.code}]; retrying in {wait_ms} ms\n")
    client = Client(a.socket, timeout_ms=a.timeout, deadline_ms=a.deadline, on_retry=retry)
    try:
        info = client.request_with_info(a.type, data)
    except DispatchError as err:
        return _fail(f"'{a.type}' request failed", err)
    if a.verbose:
        sys.stderr.write(f"dispatchd: served by secondary-{info.secondary} (generation {info.generation}) in {info.attempts} attempt{'' if info.attempts == 1 else 's'}\n")
    try:
        sys.stdout.buffer.write(info.result)
        sys.stdout.buffer.flush()
    except OSError as err:
        return _stdout_failed(err)
    return Exit.OK


def _status(a: argparse.Namespace) -> int:
    path = a.scoreboard or _default_scoreboard()
    try:
        report = status_report(path, read_scoreboard(path))
    except DispatchError as err:
        return _fail("failed to read the status", err)
    if a.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(format_table(report))
        for line in problems(report):
            sys.stderr.write(f"dispatchd: {line}\n")
    return Exit.OK


def run() -> int:
    """:func:`main`, with what it wrote flushed (``--version`` too, which argparse ends with
    SystemExit): a failed write to standard output is not left to the interpreter's exit,
    which would report it as a traceback or not at all."""
    if sys.stdout is None:  # started with standard output closed (>&-): as Node.js, /dev/null
        sys.stdout = open(os.devnull, "w")
    try:
        code = main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (Exit.OK if e.code is None else Exit.FAILURE)
    except OSError as err:  # a write to standard output (help, version, status) failed
        return _stdout_failed(err)
    return _flush_stdout(code)


if __name__ == "__main__":
    sys.exit(run())
