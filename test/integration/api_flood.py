#!/usr/bin/env python3
"""Connections that never finish their TLS handshake, against vouchd's API.

  api_flood.py HOST PORT trickle
      one connection that sends a TLS record header, then one byte every 2 s: prints how
      many seconds vouchd kept it open ("closed after N s", or "open after 40 s")
  api_flood.py HOST PORT hold N SECONDS
      opens N connections that say nothing and holds them SECONDS; prints "opened N"
      once they are all connected (the kernel's backlog accepts them even while vouchd
      does not), then sleeps
"""
import socket
import sys
import time


def trickle(host, port):
    s = socket.create_connection((host, port), timeout=5)
    t0 = time.monotonic()
    s.sendall(b"\x16\x03\x01\x40\x00")  # a handshake record of 16 KiB to come
    s.settimeout(2)
    while time.monotonic() - t0 < 40:
        try:
            if s.recv(4096) == b"":
                break
        except socket.timeout:
            pass
        except OSError:
            break
        try:
            s.sendall(b"\x01")
        except OSError:
            break
    else:
        print("open after 40 s")
        return
    print("closed after %d s" % round(time.monotonic() - t0))


def hold(host, port, n, seconds):
    socks = []
    for _ in range(n):
        socks.append(socket.create_connection((host, port), timeout=10))
    print("opened %d" % len(socks), flush=True)
    time.sleep(seconds)


def main():
    host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "trickle":
        trickle(host, port)
    elif mode == "hold":
        hold(host, port, int(sys.argv[4]), float(sys.argv[5]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
