"""Listens on NOTIFY_SOCKET as systemd does, for the process suite of the tests.

Usage: notify-listen.py SOCKET_PATH

Binds an AF_UNIX datagram socket at SOCKET_PATH (sd_notify(3): each datagram is one message
of newline-separated VAR=value assignments), prints {"listening": SOCKET_PATH} once it is
bound, then one JSON line per message: {"pid": sender, "state": "READY=1\\nSTATUS=..."}.
The sender's pid comes from SCM_CREDENTIALS (SO_PASSCRED), as systemd attributes a message
to a unit's process. Exits when its standard input closes (the test process went away).
Node has no AF_UNIX datagram sockets, hence this helper (like activate.py).
"""
import json
import os
import select
import socket
import struct
import sys

path = sys.argv[1]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
print(json.dumps({"listening": path}), flush=True)
CREDS = struct.Struct("iII")  # struct ucred: pid, uid, gid
while True:
    readable, _, _ = select.select([s, sys.stdin], [], [])
    if sys.stdin in readable and not os.read(sys.stdin.fileno(), 4096):
        break
    if s in readable:
        data, ancillary, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(CREDS.size))
        pid = 0
        for level, kind, cdata in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = CREDS.unpack(cdata[:CREDS.size])[0]
        print(json.dumps({"pid": pid, "state": data.decode("utf-8", "replace")}), flush=True)
os.unlink(path)
