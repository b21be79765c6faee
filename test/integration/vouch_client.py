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

A recording man in the middle and a replay of what it recorded (evidence replayed from an
earlier round must be rejected):
  record-proxy CERT KEY DIR [HOLD]   listen on 127.0.0.1 (a free port, written to DIR/port)
                  with CERT/KEY (the verifier's own server certificate, which the agent's
                  pinned CA accepts), relay each agent connection to HOST:PORT and append what
                  the agent sends to DIR/conn-N.agent; runs until killed. With HOLD (seconds),
                  each QuoteAnswer is held that long before it goes on (a slow TPM or link),
                  and DIR/holding gets a line each time one is held
  replay FILE ROUND [renonce]   connect as the device of the recording FILE (its Hello), and
                  answer the first challenge with the recording's QuoteAnswer number ROUND
                  (0: the first, -1: the last); with "renonce", its nonce field is set to the new
                  challenge's nonce (the quote itself is still the old one). Prints
                  "verdict: STATUS sequence N: EXPLANATION..." or what vouchd did instead.
  cert-proxy CERT KEY DIR DER...   record-proxy that also adds the DER certificates to each
                  verdict the verifier sends (VerdictNotice.device_certificates, issue 19), as
                  vouchd will for a device key
  certify-proxy CERT KEY DIR ATTEST SIG   record-proxy that puts the files ATTEST and SIG in
                  each QuoteAnswer as the device key's certify and its signature (fields 8, 9):
                  e.g. the proof of an earlier round, over its nonce
And, without a connection:
  vouch_client.py device-keys FILE OUTDIR   the device key proofs of each QuoteAnswer of the
                  recording FILE (see device_keys)
  vouch_client.py decode-verdict FILE [OUTDIR]   print a serialized SignedVerdict as
                  "STATUS sequence N golden NAME version V issued T" and one line per finding
                  ("  [rule] explanation"); with OUTDIR, write its verdict and signature there
                  (verdict.bin, verdict.sig) for openssl to verify.
"""
import os
import select
import socket
import ssl
import struct
import sys
import threading
import time


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


def fields_all(b):
    """Every field in order as (number, wire type, value): repeated fields kept."""
    i, out = 0, []
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
        out.append((num, wt, v))
    return out


def encode_fields(fl):
    return b"".join(field_varint(n, v) if wt == 0 else field_bytes(n, v) for n, wt, v in fl)


def split_frames(data):
    """The payloads of the complete frames in a recorded byte stream."""
    out, i = [], 0
    while i + 4 <= len(data):
        n = struct.unpack(">I", data[i:i + 4])[0]
        if i + 4 + n > len(data):
            break
        out.append(data[i + 4:i + 4 + n])
        i += 4 + n
    return out


STATUS = {0: "UNSPECIFIED", 1: "TRUSTED", 2: "UNTRUSTED", 3: "STALE", 4: "UNKNOWN"}


def describe_verdict(signed):
    """One line for a serialized SignedVerdict, then one per finding."""
    v = fields_all(fields(signed).get(1, b""))
    one = {}
    for n, _, val in v:
        one.setdefault(n, val)
    lines = ["%s sequence %d golden %s version %d issued %d" % (
        STATUS.get(one.get(2, 0), "?"), one.get(11, 0), one.get(7, b"").decode(errors="replace"),
        one.get(8, 0), one.get(4, 0))]
    for n, _, val in v:
        if n == 3:
            f = fields(val)
            lines.append("  [%s] %s" % (f.get(1, b"").decode(errors="replace"),
                                        f.get(7, b"").decode(errors="replace")))
    return lines


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


def with_certificates(payload, certs):
    """A VerifierMessage with certs (DER) added to its VerdictNotice as device_certificates
    (field 2); any other message as it is."""
    if not certs or payload[:1] != bytes([4 << 3 | 2]):
        return payload
    notice = fields(payload)[4]
    return field_bytes(4, notice + b"".join(field_bytes(2, c) for c in certs))


def with_fields(msg, swap):
    """msg with the fields numbered in swap (number: bytes) replaced by swap's bytes."""
    return encode_fields([(n, wt, swap.get(n, v)) for n, wt, v in fields_all(msg)])


def relay(agent, host, port, ca, record, hold=0.0, rdir=None, certs=None, swap=None):
    """Relays one agent connection to the verifier, appending the agent's bytes to record;
    with hold, each whole QuoteAnswer frame from the agent waits that long first; with
    certs, they are added to each verdict the verifier sends (with_certificates); with
    swap, the QuoteAnswer's fields numbered in it are replaced (with_fields)."""
    try:
        up = ssl.create_default_context(cafile=ca)
        up.minimum_version = ssl.TLSVersion.TLSv1_3
        v = up.wrap_socket(socket.create_connection((host, port), timeout=30), server_hostname=host)
        v.settimeout(None)
        agent.settimeout(None)
    except (OSError, ssl.SSLError):
        agent.close()
        return
    with open(record, "ab", buffering=0) as out:
        peers = {agent: v, v: agent}
        pending = down = b""
        try:
            while True:
                ready = [p for p in peers if p.pending()]
                if not ready:
                    ready, _, _ = select.select(list(peers), [], [])
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        raise ConnectionError("closed")
                    if src is not agent and not certs:
                        peers[src].sendall(data)
                        continue
                    if src is not agent:
                        down += data
                        for f in split_frames_prefix(down):
                            down = down[4 + len(f):]
                            agent.sendall(frame(with_certificates(f, certs)))
                        continue
                    out.write(data)
                    if not hold and not swap:
                        v.sendall(data)
                        continue
                    pending += data
                    for f in split_frames_prefix(pending):
                        pending = pending[4 + len(f):]
                        if f[:1] == bytes([3 << 3 | 2]) and hold:  # AgentMessage.quote_answer
                            with open(os.path.join(rdir, "holding"), "a") as h:
                                h.write("%f\n" % time.time())
                            time.sleep(hold)
                        if f[:1] == bytes([3 << 3 | 2]) and swap:
                            f = field_bytes(3, with_fields(fields(f)[3], swap))
                        v.sendall(frame(f))
        except (OSError, ssl.SSLError, ConnectionError):
            pass
    for p in (agent, v):
        try:
            p.close()
        except OSError:
            pass


def split_frames_prefix(b):
    """The whole frames at the start of b (payloads), leaving a partial one."""
    out, i = [], 0
    while len(b) - i >= 4:
        n = struct.unpack(">I", b[i:i + 4])[0]
        if len(b) - i - 4 < n:
            break
        out.append(b[i + 4:i + 4 + n])
        i += 4 + n
    return out


def record_proxy(host, port, ca, cert, key, rdir, hold=0.0, certs=None, swap=None):
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.minimum_version = ssl.TLSVersion.TLSv1_3
    srv.load_cert_chain(cert, key)
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    with open(os.path.join(rdir, "port.tmp"), "w") as f:
        f.write("%d\n" % lsock.getsockname()[1])
    os.rename(os.path.join(rdir, "port.tmp"), os.path.join(rdir, "port"))
    n = 0
    while True:
        raw, _ = lsock.accept()
        n += 1
        try:
            raw.settimeout(30)
            agent = srv.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            continue
        threading.Thread(target=relay, daemon=True,
                         args=(agent, host, port, ca, os.path.join(rdir, "conn-%d.agent" % n), hold, rdir,
                               certs, swap)).start()


def replay(s, record, round_no, renonce):
    frames = split_frames(open(record, "rb").read())
    hello = [f for f in frames if 1 in fields(f)]
    answers = [fields(f)[3] for f in frames if 3 in fields(f)]
    if not hello or round_no >= len(answers):
        return "the recording has no Hello or fewer than %d answers" % (round_no + 1)
    answer = answers[round_no]
    s.sendall(frame(hello[0]))
    try:
        while True:
            m = recv_msg(s)
            if m is None:
                return "closed"
            if 15 in m:
                return "error: " + fields(m[15]).get(2, b"").decode(errors="replace")
            if 2 in m:
                return "activate (the recorded device is not enrolled)"
            if 3 in m:
                if renonce:
                    nonce = fields(m[3]).get(1, b"")
                    answer = encode_fields([(n, wt, nonce if n == 1 else v) for n, wt, v in fields_all(answer)])
                s.sendall(frame(field_bytes(3, answer)))
            if 4 in m:
                lines = describe_verdict(fields(m[4]).get(1, b""))
                head = lines[0].split(" golden ")[0]
                return "verdict: %s: %s" % (head, " | ".join(l.strip() for l in lines[1:]))
    except socket.timeout:
        return "timeout"
    except (ConnectionError, ssl.SSLError, OSError):
        return "closed"


def device_keys(record, outdir):
    """The device key's proof in each QuoteAnswer of a recording (issue 19), as files for
    agent-tpm-test verify-certify: N.pub (the key's TPMT_PUBLIC as a TPM2B_PUBLIC), N.attest,
    N.sig, and N.qd, the hex of SHA-256("vouch device key certify" || the answer's nonce).
    Prints how many answers there were and how many carried the three fields."""
    import hashlib
    answers = [fields(f)[3] for f in split_frames(open(record, "rb").read()) if 3 in fields(f)]
    n = 0
    for a in answers:
        f = fields(a)
        if not (f.get(7) and f.get(8) and f.get(9)):
            continue
        base = os.path.join(outdir, str(n))
        for ext, data in ((".pub", struct.pack(">H", len(f[7])) + f[7]), (".attest", f[8]), (".sig", f[9])):
            with open(base + ext, "wb") as out:
                out.write(data)
        with open(base + ".qd", "w") as out:
            out.write(hashlib.sha256(b"vouch device key certify" + f.get(1, b"")).hexdigest() + "\n")
        n += 1
    print("%d answers, %d with the device key" % (len(answers), n))


def main():
    if sys.argv[1] == "decode-verdict":
        signed = open(sys.argv[2], "rb").read()
        print("\n".join(describe_verdict(signed)))
        if len(sys.argv) > 3:
            top = fields(signed)
            for name, num in (("verdict.bin", 1), ("verdict.sig", 2)):
                with open(os.path.join(sys.argv[3], name), "wb") as f:
                    f.write(top.get(num, b""))
        return
    if sys.argv[1] == "device-keys":
        device_keys(sys.argv[2], sys.argv[3])
        return
    host, port, ca, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if mode == "record-proxy":
        record_proxy(host, port, ca, *sys.argv[5:8], *(float(x) for x in sys.argv[8:9]))
        return
    if mode == "cert-proxy":
        certs = [open(p, "rb").read() for p in sys.argv[8:]]
        record_proxy(host, port, ca, *sys.argv[5:8], 0.0, certs)
        return
    if mode == "certify-proxy":  # ATTEST SIG: the device key's certify in each QuoteAnswer
        attest, sig = (open(p, "rb").read() for p in sys.argv[8:10])
        record_proxy(host, port, ca, *sys.argv[5:8], 0.0, None, {8: attest, 9: sig})
        return
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
    elif mode == "replay":
        print(replay(s, sys.argv[5], int(sys.argv[6]), len(sys.argv) > 7 and sys.argv[7] == "renonce"))
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
