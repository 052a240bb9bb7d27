"""Imitates systemd socket activation for component tests.

Usage: activate.py SOCKET_PATH PROGRAM [ARG ...]

Binds and listens on the unix stream socket SOCKET_PATH as fd 3, expects the mailbox FIFO
already open as fd 4 (from the parent), sets LISTEN_FDS=2, LISTEN_PID (this pid, which the
program keeps across exec) and LISTEN_FDNAMES=client:mailbox, and execs PROGRAM: what
systemd does for a service with ListenStream= and ListenFIFO=. (A Node parent cannot hold
a listening socket without accepting on it, hence this helper.)
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
s.listen(1024)
fd = s.detach()
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
os.set_inheritable(4, True)
os.environ.update(LISTEN_FDS="2", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="client:mailbox")
os.execv(argv[0], argv)
