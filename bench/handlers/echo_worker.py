#!/usr/bin/python3
"""The bench's Python echo (issue 11, docs/WORKERS.md): one function, run three ways.

- ``echo_worker.py`` started by socket activation (``LISTEN_FDS``; the bench's
  test/helpers/activate-worker.py, or systemd): a persistent worker (dispatchd.worker) of
  type ``echo-py``;
- ``echo_worker.py`` without ``LISTEN_FDS``: one request, DATA on standard input, the result
  on standard output, as a per-request ``exec`` handler runs it (dispatchd.worker is not even
  imported then, so this baseline pays only for the interpreter);
- ``echo_worker.py --loop SECONDS SIZE``: the function called in-process from a Python loop
  for SECONDS on SIZE bytes (latency: per call, averaged over batches of 1000); prints the
  result as bench/load.ts's LoadResult (JSON).
"""
import json
import os
import sys
import time


def echo(data: bytes) -> bytes:
    return data


def loop(seconds: float, size: int) -> None:
    """Calls echo in batches of 1000 for `seconds`; a batch's time / 1000 is one latency sample."""
    payload = os.urandom(size)
    batches: list[float] = []
    cpu0 = time.process_time()
    start = now = time.perf_counter()
    while now < start + seconds:
        t0 = now
        for _ in range(1000):
            if echo(payload) is not payload:
                raise SystemExit("echo returned something else")
        now = time.perf_counter()
        batches.append((now - t0) * 1000 / 1000)
    elapsed = now - start
    n = len(batches) * 1000
    batches.sort()
    q = lambda p: batches[min(len(batches) - 1, int(p * len(batches)))]  # noqa: E731
    print(json.dumps({
        "requests": n, "errors": 0, "seconds": elapsed, "rps": n / elapsed, "mbps": n * size / elapsed / 1e6,
        "latency": {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": batches[-1], "mean": elapsed * 1000 / n},
        "totalRequests": n, "clientCpuUsPerRequest": (time.process_time() - cpu0) / n * 1e6,
    }))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--loop":
        loop(float(sys.argv[2]), int(sys.argv[3]))
    elif "LISTEN_FDS" in os.environ:
        from dispatchd.worker import Worker

        worker = Worker(concurrency=4)
        worker.handle(os.environ.get("DISPATCHD_TYPE", "echo-py"), lambda data, ctx: echo(data))
        worker.run()
    else:
        sys.stdout.buffer.write(echo(sys.stdin.buffer.read()))
