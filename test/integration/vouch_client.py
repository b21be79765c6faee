#!/usr/bin/env python3
"""A deliberately misbehaving agent for vouchd's robustness tests: speaks TLS and the
framing by hand (protobuf encoded here, no library) and reports what vouchd answered.

  vouch_client.py HOST PORT CA MODE [ARGS...]
MODE:
  silent          connect (TCP only) and say nothing: vouchd must drop it
  silent-tls      TLS handshake, then nothing
  garbage         a frame whose payload is not an AgentMessage
  oversized       a length prefix over vouchd's frame limit
  truncated       half a frame, then close
  out-of-order    a QuoteAnswer before Hello
  bad-version     Hello with protocol version 99
  wrong-activate EK_PUB EK_CERT AK_PUB   enroll, then answer the credential with a wrong secret
Prints one line: what vouchd did ("error: <message>", "closed", "timeout") and exits 0.
"""
import socket
import ssl
import struct
import sys


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def read_varint(b, i):
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def fields(b):
    i, out = 0, {}
    while i < len(b):
        key, i = read_varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(b, i)
        elif wt == 2:
            n, i = read_varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, v)
    return out


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def recv_msg(s):
    hdr = recv_exact(s, 4)
    if hdr is None:
        return None
    body = recv_exact(s, struct.unpack(">I", hdr)[0])
    return None if body is None else fields(body)


def outcome(s):
    try:
        while True:
            m = recv_msg(s)
            if m is None:
                return "closed"
            if 15 in m:
                return "error: " + fields(m[15]).get(2, b"").decode(errors="replace")
            if 2 in m:
                return "activate"
    except socket.timeout:
        return "timeout"
    except (ConnectionError, ssl.SSLError, OSError):
        return "closed"


def main():
    host, port, ca, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    raw = socket.create_connection((host, port), timeout=30)
    if mode == "silent":
        try:
            print("closed" if raw.recv(1) == b"" else "data")
        except socket.timeout:
            print("timeout")
        return
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    s = ctx.wrap_socket(raw, server_hostname=host)
    if mode == "silent-tls":
        print(outcome(s))
    elif mode == "garbage":
        s.sendall(frame(b"\x0a\xff\xff\xff\xff\x0f\x01\x02"))
        print(outcome(s))
    elif mode == "oversized":
        s.sendall(struct.pack(">I", 0x7FFFFFFF) + b"x" * 16)
        print(outcome(s))
    elif mode == "truncated":
        s.sendall(struct.pack(">I", 100) + b"\x0a\x05")
        s.shutdown(socket.SHUT_WR)
        print(outcome(s))
    elif mode == "out-of-order":
        s.sendall(frame(field_bytes(3, field_bytes(1, b"n" * 32))))
        print(outcome(s))
    elif mode == "bad-version":
        s.sendall(frame(field_bytes(1, field_varint(1, 99))))
        print(outcome(s))
    elif mode == "wrong-activate":
        ek, cert, ak = (open(p, "rb").read() for p in sys.argv[5:8])
        hello = field_varint(1, 1) + field_bytes(3, ek) + field_bytes(4, cert) + field_bytes(6, ak)
        s.sendall(frame(field_bytes(1, hello)))
        first = outcome(s)
        if first != "activate":
            print("no credential challenge: " + first)
            return
        s.sendall(frame(field_bytes(2, field_bytes(1, b"\x00" * 32))))
        print(outcome(s))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
