"""Imitates systemd socket activation of a persistent worker (dispatchd-worker@.socket).

Usage: activate-worker.py SOCKET_PATH PROGRAM [ARG ...]

Binds and listens on the unix stream socket SOCKET_PATH as fd 3, sets LISTEN_FDS=1,
LISTEN_PID (this pid, which the program keeps across exec) and LISTEN_FDNAMES=worker, and
execs PROGRAM: what systemd does for dispatchd-worker@TYPE-K.service. (A Node parent cannot
hold a listening socket without accepting on it, hence this helper.)
"""
import os
import socket
import sys

path, argv = sys.argv[1], sys.argv[2:]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(64)
fd = s.detach()
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="worker")
os.execv(argv[0], argv)
