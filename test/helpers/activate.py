"""Imitates systemd socket activation for component tests, the bench and worker tests.

Usage: activate.py [--fdnames NAMES] SOCKET_PATH PROGRAM [ARG ...]

Binds and listens on the unix stream socket SOCKET_PATH as fd 3, sets LISTEN_FDS (one fd
per colon-separated name in NAMES), LISTEN_PID (this pid, which the program keeps across
exec) and LISTEN_FDNAMES=NAMES, and execs PROGRAM. NAMES is `client:mailbox` by default: a
daemon's service with ListenStream= and ListenFIFO=, whose mailbox FIFO the parent has
already opened as fd 4; `worker` is a persistent worker (dispatchd-worker@TYPE-K.socket),
fd 3 alone. (A Node parent cannot hold a listening socket without accepting on it, hence
this helper.)
"""
import os
import socket
import sys

args = sys.argv[1:]
names = "client:mailbox"
if args[:1] == ["--fdnames"]:
    names, args = args[1], args[2:]
path, argv = args[0], args[1:]
count = len(names.split(":"))
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
for inherited in range(3, 3 + count):
    os.set_inheritable(inherited, True)
os.environ.update(LISTEN_FDS=str(count), LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES=names)
os.execv(argv[0], argv)
