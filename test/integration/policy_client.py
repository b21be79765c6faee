#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A policy-engine client for the tests: vouchd's API (docs/API.md) over HTTPS with a
client certificate, protobuf decoded here by hand (no library), so the tests check the
wire format rather than trust the server's JSON.

  policy_client.py [--cert C --key K] --ca CA --server HOST:PORT COMMAND ...
    get PATH                 prints "STATUS CONTENT-TYPE" then the body to --out (or stdout);
                             --timeout SECONDS for the answer (default 10)
    verdict PATH             GET a SignedVerdict; prints it as JSON (decoded); --raw-dir DIR
                             writes verdict.bin, sig.der, record.pb there
    list PATH                GET a VerdictPage; prints JSON
    keys                     GET /v1/keys; prints JSON
    watch SINCE OUT [--count N] [--seconds S]
                             streams /v1/watch?since=SINCE, one JSON line per verdict to OUT
                             (gseq, device, status, sequence, record hex), flushed each line
    ear PATH OUTDIR          GET an EAR token; writes header.json, payload.json, input.txt,
                             sig.der (the ES256 signature in DER for openssl)
    tls-refused PATH         exits 0 if the TLS handshake (or the request) is refused
    watch-drop SINCE N       opens N watch streams one after another and drops each, in turn
                             protobuf and JSON, each way in turn: right after the response
                             headers, with stream data unread, with a TCP reset, after a TLS
                             close_notify; prints "N dropped, B body bytes"; exits 1 unless
                             every stream was answered 200
    decode FILE              prints a SignedVerdict file as JSON (no server needed)
"""
import http.client
import json
import os
import socket
import ssl
import struct
import sys
import time
import base64

# ---- protobuf, just enough ----


def varint(b, i):
    n = shift = 0
    while True:
        if i >= len(b):
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def fields(b):
    """field number -> list of values (int for varints, bytes for length-delimited)"""
    out = {}
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i)
            if i + n > len(b):
                raise ValueError("truncated field")
            v = b[i:i + n]
            i += n
        elif wt == 1:
            v = b[i:i + 8]
            i += 8
        elif wt == 5:
            v = b[i:i + 4]
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def one(f, n, default=None):
    return f[n][0] if n in f else default


def sint(v):
    return v - (1 << 64) if v >= 1 << 63 else v


STATUS = {0: "UNSPECIFIED", 1: "TRUSTED", 2: "UNTRUSTED", 3: "STALE", 4: "UNKNOWN"}


def decode_verdict(b):
    f = fields(b)
    findings = []
    for fb in f.get(3, []):
        ff = fields(fb)
        findings.append({
            "rule": one(ff, 1, b"").decode(),
            "pcr": sint(one(ff, 2, 0)),
            "event": sint(one(ff, 3, 0)),
            "event_type": one(ff, 4, b"").decode(),
            "expected": one(ff, 5, b"").decode(errors="replace"),
            "actual": one(ff, 6, b"").decode(errors="replace"),
            "explanation": one(ff, 7, b"").decode(errors="replace"),
        })
    return {
        "device_id": one(f, 1, b"").decode(),
        "status": STATUS.get(one(f, 2, 0), "?"),
        "findings": findings,
        "issued_at": one(f, 4, 0),
        "expires_at": one(f, 5, 0),
        "nonce": one(f, 6, b"").hex(),
        "golden_name": one(f, 7, b"").decode(),
        "golden_version": one(f, 8, 0),
        "boot_count": one(f, 9, 0),
        "ak_name": one(f, 10, b"").hex(),
        "sequence": one(f, 11, 0),
        "verifier_id": one(f, 12, b"").decode(),
        "global_sequence": one(f, 13, 0),
        "ek_anchor": {0: "EK_ANCHOR_CERTIFICATE", 1: "EK_ANCHOR_KEY"}.get(one(f, 14, 0), "?"),
    }


def decode_signed(b):
    f = fields(b)
    vb = one(f, 1, b"")
    return {"verdict": decode_verdict(vb), "verdict_bytes": vb.hex(), "signature": one(f, 2, b"").hex(),
            "key_id": one(f, 3, b"").decode()}


# ---- HTTPS ----


def context(args):
    ctx = ssl.create_default_context(cafile=args["ca"])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if args.get("cert"):
        ctx.load_cert_chain(args["cert"], args["key"])
    return ctx


def connect(args, timeout=10):
    host, port = args["server"].rsplit(":", 1)
    return http.client.HTTPSConnection(host, int(port), context=context(args), timeout=timeout)


def request(args, path, method="GET", body=None):
    c = connect(args, float(args.get("timeout", 10)))
    headers = {"Content-Type": "application/x-protobuf"} if body is not None else {}
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type", ""), data


def need_ok(status, ctype, data, path):
    if status != 200:
        msg = data.decode(errors="replace")
        if "protobuf" in ctype:
            try:
                f = fields(data)
                msg = "code %d: %s" % (one(f, 1, 0), one(f, 2, b"").decode())
            except ValueError:
                pass
        sys.exit("%s: HTTP %d: %s" % (path, status, msg))


def b64url_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def der_int(n):
    b = n.to_bytes(33, "big").lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b


def main(argv):
    args = {}
    rest = []
    i = 0
    opts = {"--cert": "cert", "--key": "key", "--ca": "ca", "--server": "server", "--out": "out", "--timeout": "timeout",
            "--raw-dir": "raw", "--count": "count", "--seconds": "seconds", "--method": "method",
            "--body-hex": "body"}
    while i < len(argv):
        if argv[i] in opts:
            args[opts[argv[i]]] = argv[i + 1]
            i += 2
        else:
            rest.append(argv[i])
            i += 1
    cmd, rest = rest[0], rest[1:]
    if cmd == "decode":
        print(json.dumps(decode_signed(open(rest[0], "rb").read())))
        return 0
    if cmd == "get":
        body = bytes.fromhex(args["body"]) if "body" in args else None
        try:
            status, ctype, data = request(args, rest[0], args.get("method", "GET"), body)
        except (ssl.SSLError, ConnectionError, OSError) as e:
            print("TLS-REFUSED %s" % e.__class__.__name__)
            return 0
        print("%d %s" % (status, ctype))
        if "out" in args:
            with open(args["out"], "wb") as f:
                f.write(data)
        return 0
    if cmd == "decode":
        print(json.dumps(decode_signed(open(rest[0], "rb").read())))
        return 0
    if cmd == "tls-refused":
        try:
            status, _, _ = request(args, rest[0])
        except (ssl.SSLError, ConnectionError, OSError) as e:
            print("refused: %s" % e)
            return 0
        print("not refused: HTTP %d" % status)
        return 1
    if cmd == "verdict":
        status, ctype, data = request(args, rest[0])
        need_ok(status, ctype, data, rest[0])
        sv = decode_signed(data)
        if "raw" in args:
            os.makedirs(args["raw"], exist_ok=True)
            open(os.path.join(args["raw"], "verdict.bin"), "wb").write(bytes.fromhex(sv["verdict_bytes"]))
            open(os.path.join(args["raw"], "sig.der"), "wb").write(bytes.fromhex(sv["signature"]))
            open(os.path.join(args["raw"], "record.pb"), "wb").write(data)
        print(json.dumps(sv))
        return 0
    if cmd == "list":
        status, ctype, data = request(args, rest[0])
        need_ok(status, ctype, data, rest[0])
        f = fields(data)
        print(json.dumps({"verdicts": [decode_signed(v) for v in f.get(1, [])],
                          "next_page_token": one(f, 2, b"").decode()}))
        return 0
    if cmd == "keys":
        status, ctype, data = request(args, "/v1/keys")
        need_ok(status, ctype, data, "/v1/keys")
        keys = []
        for kb in fields(data).get(1, []):
            k = fields(kb)
            keys.append({"key_id": one(k, 1, b"").decode(), "spki": one(k, 2, b"").hex(),
                         "active": bool(one(k, 3, 0)), "not_after": one(k, 4, 0)})
        print(json.dumps({"keys": keys}))
        return 0
    if cmd == "ear":
        status, ctype, data = request(args, rest[0])
        need_ok(status, ctype, data, rest[0])
        h, p, s = data.decode().split(".")
        os.makedirs(rest[1], exist_ok=True)
        open(os.path.join(rest[1], "header.json"), "wb").write(b64url_dec(h))
        open(os.path.join(rest[1], "payload.json"), "wb").write(b64url_dec(p))
        open(os.path.join(rest[1], "input.txt"), "wb").write((h + "." + p).encode())
        open(os.path.join(rest[1], "token"), "wb").write(data)
        raw = b64url_dec(s)
        if len(raw) != 64:
            sys.exit("ES256 signature of %d bytes" % len(raw))
        r, s_ = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        body = der_int(r) + der_int(s_)
        open(os.path.join(rest[1], "sig.der"), "wb").write(b"\x30" + bytes([len(body)]) + body)
        print(ctype)
        return 0
    if cmd == "watch-drop":
        since, n = rest[0], int(rest[1])
        host, port = args["server"].rsplit(":", 1)
        ctx = context(args)
        body = 0
        for i in range(n):
            q = "since=%s%s" % (since, "&format=json" if i % 2 else "")
            how = (i // 2) % 4  # every way with both formats
            sock = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host)
            sock.sendall(("GET /v1/watch?%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (q, host)).encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = sock.recv(65536)
                if not d:
                    sys.exit("watch-drop %d: closed before the response headers" % i)
                buf += d
            head, rest_ = buf.split(b"\r\n\r\n", 1)
            if int(head.split(b" ", 2)[1]) != 200:
                sys.exit("watch-drop %d: %s" % (i, head.split(b"\r\n")[0].decode(errors="replace")))
            if how == 1:  # some of the stream read, the rest left unread in the socket
                sock.settimeout(2)
                try:
                    while not rest_:
                        rest_ = sock.recv(100)
                except (socket.timeout, ssl.SSLError, OSError):
                    pass
            elif how == 2:  # a reset: no TLS close, no FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif how == 3:
                sock.settimeout(2)
                try:
                    sock = sock.unwrap()
                except (socket.timeout, ssl.SSLError, OSError):
                    pass
            body += len(rest_)
            sock.close()
        print("%d dropped, %d body bytes" % (n, body))
        return 0
    if cmd == "watch":
        since, out = rest[0], rest[1]
        count = int(args.get("count", "0"))
        deadline = time.time() + float(args.get("seconds", "3600"))
        host, port = args["server"].rsplit(":", 1)
        raw = socket.create_connection((host, int(port)), timeout=10)
        sock = context(args).wrap_socket(raw, server_hostname=host)
        sock.sendall(("GET /v1/watch?since=%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (since, host)).encode())
        sock.settimeout(0.5)
        buf = b""

        def fill():
            nonlocal buf
            while True:
                if time.time() >= deadline:
                    return False
                try:
                    d = sock.recv(65536)
                except (socket.timeout, ssl.SSLWantReadError):
                    continue
                if not d:
                    return False
                buf += d
                return True

        while b"\r\n\r\n" not in buf:
            if not fill():
                sys.exit("watch: no response headers")
        head, buf = buf.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            sys.exit("watch: HTTP %d" % status)
        if b"chunked" not in head.lower():
            sys.exit("watch: not a chunked response")
        body = b""  # de-chunked bytes not yet parsed into frames
        n = 0
        with open(out, "a") as f:
            while count == 0 or n < count:
                # one chunk: HEX\r\n DATA \r\n
                while b"\r\n" not in buf:
                    if not fill():
                        return 0
                line, rest_ = buf.split(b"\r\n", 1)
                size = int(line.split(b";")[0], 16)
                while len(rest_) < size + 2:
                    buf = line + b"\r\n" + rest_
                    if not fill():
                        return 0
                    line, rest_ = buf.split(b"\r\n", 1)
                if size == 0:
                    return 0
                body += rest_[:size]
                buf = rest_[size + 2:]
                while len(body) >= 4 and (count == 0 or n < count):
                    ln = int.from_bytes(body[:4], "big")
                    if ln > 1 << 20:
                        sys.exit("watch: frame of %d bytes" % ln)
                    if len(body) < 4 + ln:
                        break
                    rec, body = body[4:4 + ln], body[4 + ln:]
                    if ln == 0:  # a heartbeat on an idle stream (docs/API.md)
                        continue
                    v = decode_signed(rec)["verdict"]
                    f.write(json.dumps({"gseq": v["global_sequence"], "device": v["device_id"],
                                        "status": v["status"], "sequence": v["sequence"],
                                        "expires_at": v["expires_at"], "record": rec.hex()}) + "\n")
                    f.flush()
                    n += 1
        sock.close()
        return 0
    sys.exit("unknown command %s" % cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
