#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""notify-listen.py SOCKET: stands in for systemd's notification socket (sd_notify(3)):
binds a Unix datagram socket at SOCKET and prints each field of each message it gets as
"PID FIELD" (PID: the sender's, from SCM_CREDENTIALS), one per line, until SIGTERM."""
import os
import signal
import socket
import struct
import sys


def main():
    path = sys.argv[1]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    s.bind(path)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"{os.getpid()} LISTENING", flush=True)
    while True:
        data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize("3i")))
        pid = 0
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", value[:12])[0]
        for field in data.decode("utf-8", "replace").split("\n"):
            if field:
                print(f"{pid} {field}", flush=True)


if __name__ == "__main__":
    main()
