#!/usr/bin/python3
"""The bench's load generator for the Python client (issue 11, "Measured"): bench/load.ts's
closed loop, with the ``dispatchd`` Python package in place of daemons/client/client.ts.

    py_load.py --socket MAIN_SOCKET --mode session|handshake --type T --size BYTES
               --concurrency N --duration MS --warmup MS

``concurrency`` virtual clients, each sending its next request as soon as the previous answer
arrived, for a warm-up then a measured window; the modes are load.ts's, against a dispatchd
main server:

- ``session``: each virtual client asks one lease (``Client.lease``) and runs every request on
  it (``Client.session(...).run``): an established lease;
- ``handshake``: each virtual client holds one ``Client`` and calls ``Client.request`` per
  request: a new lease each time (connect to main, lease, connect to the secondary, run,
  close), as load.ts holds one ``DispatchClient`` and calls its ``request``.

The client is blocking, so a virtual client is a thread (load.ts's are promises on one event
loop); with the default of one client there is one thread. Prints the result as load.ts's
``LoadResult`` (JSON) on standard output, exit 0; exit 1 with a message on standard error
when no request succeeded in the window. Imports ``dispatchd`` from PYTHONPATH (the bench
sets it to the repository's python/) or from where it is installed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time

import dispatchd

#: As load.ts: the largest result accepted (bytes) and the budget of one request (ms).
MAX_RESULT_BYTES = 1024 * 1024 * 1024
TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_MS = 5000


def check(type: str, payload: bytes, result: bytes) -> None:
    """load.ts check(): echo gives DATA back, sha256 64 hex digits, anything else something."""
    if type == "echo":
        ok = len(result) == len(payload) and (len(result) == 0 or result[-1] == payload[-1])
    elif type == "sha256":
        ok = len(result) == 64
    else:
        ok = len(result) > 0
    if not ok:
        raise dispatchd.DispatchError("PROTOCOL_ERROR", f"wrong '{type}' result of {len(result)} bytes")


def quantile_sorted(v: list[float], q: float) -> float:
    """stats.ts quantileSorted: nearest rank; NaN when empty."""
    if not v:
        return math.nan
    return v[min(len(v) - 1, max(0, math.ceil(q * len(v)) - 1))]


def run_load(socket: str, mode: str, type: str, size: int, concurrency: int, duration_ms: float, warmup_ms: float) -> dict:
    """One load measurement; the LoadResult as a dict. Raises RuntimeError when nothing succeeded."""
    payload = b"0" if type == "sleep" else os.urandom(size)
    lock = threading.Lock()
    latencies: list[float] = []
    state = {"errors": 0, "first_error": None, "total": 0}
    t0 = time.perf_counter()
    window_start = t0 + warmup_ms / 1000
    window_end = window_start + duration_ms / 1000

    def fail(err: BaseException) -> None:
        with lock:
            state["errors"] += 1
            if state["first_error"] is None:
                state["first_error"] = str(err)

    def virtual_client() -> None:
        client = dispatchd.Client(socket, timeout_ms=TIMEOUT_MS)
        session: dispatchd.Session | None = None
        try:
            if mode == "session":
                session = dispatchd.Session(client.lease(type), max_result_bytes=MAX_RESULT_BYTES,
                                            connect_timeout_ms=CONNECT_TIMEOUT_MS)
                request = lambda: session.run(payload, timeout_ms=TIMEOUT_MS)  # noqa: E731
            else:
                request = lambda: client.request(type, payload)  # noqa: E731
            while True:
                start = time.perf_counter()
                if start >= window_end:
                    break
                try:
                    check(type, payload, request())
                except dispatchd.DispatchError as err:
                    fail(err)
                    if mode == "session":
                        return  # the connection is gone: this virtual client ends
                    continue
                end = time.perf_counter()
                with lock:
                    state["total"] += 1
                    # Completions inside the window count, as in load.ts.
                    if window_start <= end <= window_end:
                        latencies.append((end - start) * 1000)
        except dispatchd.DispatchError as err:
            fail(err)
        finally:
            if session is not None:
                session.close()

    threads = [threading.Thread(target=virtual_client, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    # CPU time of this whole process (every thread) over the window, as load.ts's process.cpuUsage().
    time.sleep(max(0.0, window_start - time.perf_counter()))
    cpu_start = time.process_time()
    time.sleep(max(0.0, window_end - time.perf_counter()))
    cpu_window = time.process_time() - cpu_start
    for t in threads:
        t.join()
    counted = len(latencies)
    if counted == 0:
        raise RuntimeError("no request succeeded in the measured window" + (f": {state['first_error']}" if state["first_error"] else ""))
    latencies.sort()
    seconds = duration_ms / 1000
    rps = counted / seconds
    result = {
        "requests": counted,
        "errors": state["errors"],
        "seconds": seconds,
        "rps": rps,
        "mbps": rps * (0 if type == "sleep" else size) / 1e6,
        "latency": {
            "p50": quantile_sorted(latencies, 0.5), "p90": quantile_sorted(latencies, 0.9),
            "p99": quantile_sorted(latencies, 0.99), "max": latencies[-1], "mean": sum(latencies) / counted,
        },
        "totalRequests": state["total"],
        "clientCpuUsPerRequest": cpu_window / counted * 1e6,
    }
    if state["first_error"] is not None:
        result["firstError"] = state["first_error"]
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--socket", default=dispatchd.DEFAULT_SOCKET, help="the main server's socket")
    p.add_argument("--mode", choices=("session", "handshake"), default="session")
    p.add_argument("--type", default="echo")
    p.add_argument("--size", type=int, default=1024, help="DATA bytes")
    p.add_argument("--concurrency", type=int, default=1, help="virtual clients (threads)")
    p.add_argument("--duration", type=float, default=5000, help="measured window, ms")
    p.add_argument("--warmup", type=float, default=1000, help="warm-up before the window, ms")
    a = p.parse_args()
    try:
        result = run_load(a.socket, a.mode, a.type, a.size, a.concurrency, a.duration, a.warmup)
    except RuntimeError as err:
        print(f"py_load: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
