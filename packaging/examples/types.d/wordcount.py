#!/usr/bin/python3
"""A dispatchd exec handler in Python: counts lines, words and bytes of DATA.

DATA arrives on standard input; the result is what this writes to standard output; exit
status 0 is success. Anything else (an exception, exit 1) reaches the client as
HANDLER_FAILED with the end of standard error. The environment names the request:
DISPATCHD_TYPE, DISPATCHD_DEADLINE_MS, DISPATCHD_LEASE, DISPATCHD_SECONDARY.
"""
import json
import sys

data = sys.stdin.buffer.read()
if not data.strip():
    print("wordcount: DATA is empty; send some text", file=sys.stderr)
    sys.exit(2)
text = data.decode("utf-8", errors="replace")
json.dump({"lines": text.count("\n"), "words": len(text.split()), "bytes": len(data)}, sys.stdout)
sys.stdout.write("\n")
