#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The policy-engine API against a running vouchd, as other people's software sees it
(issue 20, "Standard forms"). Nothing of vouch's is used but proto/vouch.proto (compiled
here with protoc) and docs/openapi.yaml:

  json       every JSON body the API answers (verdicts, pages, keys, devices, certificates,
             decisions, errors, watch lines) is read by google.protobuf.json_format.Parse,
             strictly, as its message; it is exactly the proto3 JSON mapping of that message
             (bytes base64, 64-bit integers strings, enum names: what MessageToJson writes,
             fields at their default may be left out), and the same message as the protobuf
             answer to the same request
  http       every path with every method: the status's own reason phrase, 405 with an Allow
             header, an Error body (protobuf, or JSON when asked for) and never an HTML page;
             unknown query parameters and format= values are 400 naming them; a write's body
             read by its Content-Type, an empty or malformed one 400
  watch      an idle stream carries a heartbeat within a few seconds (an empty frame, an
             empty JSON line); since= past the head of the stream is 400
  openapi    docs/openapi.yaml lists exactly the server's endpoints (the route table that
             api-routes prints), and every status the server answered in the runs above is
             one the description lists for that path and method, with its content type

Usage: api_conformance.py --server HOST:PORT --ca CA --clients DIR (admin, reader, nobody
.crt/.key) --trusted ID --untrusted ID --proto FILE --openapi FILE --routes FILE
"""
import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time

try:
    from google.protobuf import json_format
    import yaml
except ImportError as e:
    sys.exit(f"api_conformance: {e} (apt-get install python3-protobuf protobuf-compiler python3-yaml)")

failures = 0
checks = 0


def check(ok, what):
    global failures, checks
    checks += 1
    if not ok:
        failures += 1
        print("FAIL " + what)
    return ok


ARGS = {}
PB = None  # the compiled vouch_pb2
SEEN = {}  # (method, route path) -> {status: set(content types)}: what the server answered
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           413: "Content Too Large", 415: "Unsupported Media Type", 503: "Service Unavailable"}
ROUTES = []  # (method, path pattern)


def route_of(method, path):
    """The route (method, pattern) a request path falls under, by the server's table."""
    parts = path.split("?")[0].split("/")
    for m, pat in ROUTES:
        pp = pat.split("/")
        if len(pp) == len(parts) and all(a == b or a == "{id}" for a, b in zip(pp, parts)):
            return pat
    return None


def context(who):
    ctx = ssl.create_default_context(cafile=ARGS["ca"])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    if who:
        d = ARGS["clients"]
        ctx.load_cert_chain(os.path.join(d, who + ".crt"), os.path.join(d, who + ".key"))
    return ctx


def call(method, path, who="reader", body=None, headers=None):
    """One request: (status, reason, headers dict (lower-case names), body). Recorded in SEEN."""
    host, port = ARGS["server"].rsplit(":", 1)
    c = http.client.HTTPSConnection(host, int(port), context=context(who), timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
    except (OSError, http.client.HTTPException) as e:  # a stream where an answer was due, say
        c.close()
        return 0, f"no answer: {e}", {}, b""
    h = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    pat = route_of(method, path)
    if pat is not None:
        SEEN.setdefault((method.lower() if method != "HEAD" else "get", pat), {}).setdefault(
            r.status, set()).add(h.get("content-type", "").split(";")[0].strip())
    return r.status, r.reason, h, data


# ---- the proto3 JSON mapping ----


def same(got, want, where):
    """got (the server's JSON) is want (MessageToJson's with every default) but for fields
    at their default left out; reports the first difference."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return f"{where}: {type(got).__name__}, expected an object"
        for k in got:
            if k not in want:
                return f"{where}.{k}: not a field"
        for k, v in want.items():
            if k not in got:
                if v not in ("", 0, "0", False, [], {}) and not (isinstance(v, str) and v.endswith("UNSPECIFIED")) \
                        and v != "EK_ANCHOR_CERTIFICATE":
                    return f"{where}.{k}: left out, but not at its default ({v!r})"
                continue
            d = same(got[k], v, f"{where}.{k}")
            if d:
                return d
        return None
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return f"{where}: {got!r:.80}, expected a list of {len(want)}"
        for i, (a, b) in enumerate(zip(got, want)):
            d = same(a, b, f"{where}[{i}]")
            if d:
                return d
        return None
    if type(got) is not type(want) or got != want:
        return f"{where}: {got!r:.80} ({type(got).__name__}), the mapping says {want!r:.80} ({type(want).__name__})"
    return None


def parse_json(data, cls, what, pb=None):
    """data, a JSON body, as message cls: strictly parsed, canonical, and equal to the protobuf
    form pb (bytes) when given. The message, or None."""
    try:
        text = data.decode("utf-8")
        msg = json_format.Parse(text, cls())
    except Exception as e:  # noqa: BLE001 -- any parse error is the finding
        check(False, f"{what}: json_format.Parse as {cls.DESCRIPTOR.name}: {e}: {data[:200]!r}")
        return None
    want = json.loads(json_format.MessageToJson(msg, preserving_proto_field_name=True,
                                                including_default_value_fields=True))
    d = same(json.loads(text), want, cls.DESCRIPTOR.name)
    check(d is None, f"{what}: not the proto3 JSON mapping: {d}")
    if pb is not None:
        try:
            m2 = cls.FromString(pb)
            check(m2 == msg, f"{what}: the JSON and the protobuf answers differ")
        except Exception as e:  # noqa: BLE001
            check(False, f"{what}: the protobuf answer does not parse: {e}")
    return msg


def expect(status, method, path, who="reader", body=None, headers=None, json_error=None, contains=None):
    """A request that must be refused with status: an Error body (JSON when the request asked
    for it, else protobuf) whose message contains `contains`. Returns the Error."""
    s, reason, h, data = call(method, path, who, body, headers)
    what = f"{method} {path} as {who}"
    if not check(s == status, f"{what}: {s}, expected {status} ({data[:160]!r})"):
        return None
    ct = h.get("content-type", "")
    if json_error is None:
        json_error = "format=json" in path or "format=jwks" in path or "jwks.json" in path or "decision" in path
    if json_error:
        check(ct == "application/json", f"{what}: Content-Type {ct}, expected application/json")
        e = parse_json(data, PB.Error, what) if method != "HEAD" else PB.Error()
    else:
        check(ct == "application/x-protobuf", f"{what}: Content-Type {ct}, expected application/x-protobuf")
        try:
            e = PB.Error.FromString(data)
        except Exception as ex:  # noqa: BLE001
            check(False, f"{what}: the body is not an Error: {ex}: {data[:100]!r}")
            return None
    if e is not None and contains and method != "HEAD":
        check(contains in e.message, f"{what}: the Error says {e.message!r}, not {contains!r}")
    return e


# ---- json ----


def test_json():
    t, u = ARGS["trusted"], ARGS["untrusted"]
    pairs = [  # path (no format=), message, who
        (f"/v1/devices/{t}/verdict", PB.SignedVerdict, "reader"),
        (f"/v1/devices/{u}/verdict", PB.SignedVerdict, "reader"),
        ("/v1/verdicts", PB.VerdictPage, "reader"),
        ("/v1/verdicts?status=UNTRUSTED", PB.VerdictPage, "reader"),
        ("/v1/verdicts?page_size=1", PB.VerdictPage, "reader"),
        ("/v1/keys", PB.VerdictKeys, "reader"),
        ("/v1/devices", PB.DevicePage, "admin"),
        (f"/v1/devices/{t}/certificates", PB.DeviceCertificates, "reader"),
    ]
    for path, cls, who in pairs:
        s1, _, h1, pb = call("GET", path, who)
        sep = "&" if "?" in path else "?"
        s2, _, h2, js = call("GET", path + sep + "format=json", who)
        what = f"GET {path}{sep}format=json"
        if check(s1 == 200 and s2 == 200, f"{what}: {s1} / {s2}: {js[:200]!r}"):
            check(h2.get("content-type") == "application/json", f"{what}: Content-Type {h2.get('content-type')}")
            m = parse_json(js, cls, what, pb)
            if m is not None and cls is PB.DeviceCertificates:
                check(len(m.certificates) == 1 and m.certificates[0].der[:1] == b"\x30" and
                      m.certificates[0].not_after > m.certificates[0].not_before,
                      f"{what}: the device's certificate (DER), its dates")
            if m is not None and cls is PB.SignedVerdict:
                v = PB.Verdict.FromString(m.verdict)
                check(v.device_id in (t, u), f"{what}: the base64 verdict decodes to device {v.device_id!r}")
                if v.device_id == u:
                    check(v.status == PB.UNTRUSTED and len(v.findings) > 0, f"{what}: UNTRUSTED with findings")
                # the Verdict itself renders (its int64s, bytes and enums) and reads back
                back = json_format.Parse(json_format.MessageToJson(v), PB.Verdict())
                check(back == v, f"{what}: the Verdict's JSON round trip")
    # the admin answers: DeviceInfo, JSON and protobuf
    for fmt in ("", "?format=json"):
        s, _, h, data = call("POST", f"/v1/devices/{t}/approve{fmt}", "admin")
        if check(s == 200, f"POST approve{fmt}: {s} {data[:200]!r}"):
            if fmt:
                parse_json(data, PB.DeviceInfo, f"POST approve{fmt}")
            else:
                PB.DeviceInfo.FromString(data)
        s, _, h, data = call("PUT", f"/v1/devices/{t}/golden{fmt}", "admin", body=b'{"golden": ""}',
                             headers={"Content-Type": "application/json"})
        if check(s == 200, f"PUT golden{fmt} (a JSON body): {s} {data[:200]!r}"):
            m = parse_json(data, PB.DeviceInfo, f"PUT golden{fmt}") if fmt else PB.DeviceInfo.FromString(data)
            check(m is not None and m.id == t and m.golden == "", f"PUT golden{fmt}: the DeviceInfo")
    # decisions: a Decision, always JSON, allow and deny
    for path, hdr, status in ((f"/v1/devices/{t}/decision", {}, 200), (f"/v1/devices/{u}/decision", {}, 403),
                              ("/v1/decision", {"X-Vouch-Device": t}, 200), ("/v1/decision", {}, 403),
                              ("/v1/devices/0000/decision", {}, 403)):
        s, _, h, data = call("GET", path, "reader", headers=hdr)
        if check(s == status, f"GET {path} {hdr}: {s}, expected {status}"):
            m = parse_json(data, PB.Decision, f"GET {path}")
            if m is not None:
                check(m.decision == ("allow" if s == 200 else "deny") and m.reason == h.get("x-vouch-reason"),
                      f"GET {path}: the Decision {m} and its headers")
    # errors in JSON: a few of each status
    for st, method, path, who, kw in (
            (400, "GET", "/v1/verdicts?format=json&status=GOOD", "reader", {}),
            (403, "GET", "/v1/devices?format=json", "reader", {}),
            (403, "GET", "/v1/keys?format=json", "nobody", {}),
            (404, "GET", "/v1/nothing?format=json", "reader", {}),
            (404, "GET", f"/v1/devices/{'f' * 64}/verdict?format=json", "reader", {}),
            (405, "DELETE", "/v1/keys?format=json", "reader", {}),
            (415, "PUT", f"/v1/devices/{t}/golden?format=json", "admin", {"body": b"x"}),
            (400, "GET", "/.well-known/jwks.json?format=pem", "reader", {})):
        expect(st, method, path, who, json_error=True, **kw)


# ---- http ----

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


def concrete(pat):
    return pat.replace("{id}", ARGS["trusted"])


def test_http():
    t = ARGS["trusted"]
    allowed = {}
    for m, pat in ROUTES:
        allowed.setdefault(pat, set()).add(m.upper())
    for pat, ms in sorted(allowed.items()):
        path = concrete(pat)
        for method in METHODS:
            ok_method = method in ms or (method == "HEAD" and "GET" in ms)
            if pat == "/v1/watch" and method == "GET":
                continue  # a stream (test_watch)
            body, hdr = None, {}
            if method == "PUT" and pat.endswith("/golden"):
                body, hdr = b"\x0a\x00", {"Content-Type": "application/x-protobuf"}
            s, reason, h, data = call(method, path, "admin", body, hdr)
            what = f"{method} {path}"
            check(reason == REASONS.get(s), f"{what}: reason phrase {reason!r} for {s}")
            check(not data.lstrip().lower().startswith((b"<html", b"<!doctype")), f"{what}: an HTML page")
            if method == "HEAD":
                check(data == b"", f"{what}: a body in the answer to HEAD")
            if not ok_method:
                if check(s == 405, f"{what}: {s}, expected 405"):
                    want = ", ".join(x + (", HEAD" if x == "GET" else "") for x in
                                     sorted(ms, key=lambda x: ("GET", "POST", "PUT").index(x)))
                    check(h.get("allow") == want, f"{what}: Allow {h.get('allow')!r}, expected {want!r}")
                    if method != "HEAD":
                        expect_body_error(data, h, what)
            elif s == 403 and pat.endswith("decision") and method != "HEAD":
                check(parse_json(data, PB.Decision, what) is not None, f"{what}: a Decision")
            elif s >= 400 and method != "HEAD":
                expect_body_error(data, h, what)
        # unknown query parameters: 400 naming them, on every endpoint
        sep = "&" if "?" in path else "?"
        for m in ms:
            if m == "GET":
                expect(400, m, path + sep + "colour=blue", "admin", contains='"colour"')
                expect(400, m, path + sep + "format=xml", "admin", contains='"xml"')
                expect(400, m, path + sep + "format=json&format=json", "admin", json_error=True,
                       contains="more than once")
    # format= values an endpoint does not offer
    for path in ("/healthz?format=json", "/metrics?format=pem", "/v1/verdicts?format=pem", "/v1/watch?format=ear",
                 "/v1/crl?format=json", f"/v1/devices/{t}/verdict?format=pem", "/v1/keys?format=ear"):
        expect(400, "GET", path, "reader", contains="is not offered by")
    # HEAD on the wire: the headers GET has (Content-Length its body's), and nothing after
    # them (http.client would not read a body that is there)
    for path in ("/v1/keys", "/healthz", "/v1/nothing", f"/v1/devices/{t}/verdict?format=json"):
        host, port = ARGS["server"].rsplit(":", 1)
        sock = context("admin").wrap_socket(socket.create_connection((host, int(port)), timeout=10),
                                            server_hostname=host)
        sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        raw = read_until(sock, lambda b: False, 3)
        sock.close()
        head, _, after = raw.partition(b"\r\n\r\n")
        s, _, h, data = call("GET", path, "admin")
        lengths = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")]
        # (an error names the method: HEAD's message is its own)
        check(after == b"" and (lengths == [str(len(data)).encode()] if s == 200 else len(lengths) == 1),
              f"HEAD {path}: {len(after)} bytes after the headers, Content-Length {lengths} (GET: {len(data)})")
    # other HTTP methods and odd paths: an Error, never a page
    for method, path in (("TRACE", "/v1/keys"), ("GET", "/"), ("GET", "/v1"), ("GET", "/v1/devices/x/y/z"),
                         ("POST", "/nothing"), ("GET", "//v1/keys")):
        s, reason, h, data = call(method, path, "admin")
        what = f"{method} {path}"
        check(s in (404, 405) and reason == REASONS[s], f"{what}: {s} {reason}")
        expect_body_error(data, h, what)
    # a write's body: by its Content-Type; empty or malformed 400; no type 415
    g = f"/v1/devices/{t}/golden"
    expect(400, "PUT", g, "admin", body=b"", headers={"Content-Type": "application/x-protobuf"},
           contains="an empty body")
    expect(400, "PUT", g + "?format=json", "admin", body=b"", headers={"Content-Type": "application/json"},
           contains="an empty body")
    expect(400, "PUT", g, "admin", body=b"{}", headers={"Content-Type": "application/json"})
    expect(400, "PUT", g, "admin", body=b'{"golden": 1}', headers={"Content-Type": "application/json"})
    expect(400, "PUT", g, "admin", body=b"\xff\xff", headers={"Content-Type": "application/x-protobuf"})
    expect(400, "PUT", g + "?format=json", "admin", body=b'{"golden": ""}',
           headers={"Content-Type": "application/x-protobuf"})  # JSON sent as protobuf: not one
    expect(415, "PUT", g, "admin", body=b'{"golden": ""}', contains="Content-Type")
    expect(415, "PUT", g, "admin", body=b"\x0a\x00", headers={"Content-Type": "text/plain"})
    expect(400, "POST", f"/v1/devices/{t}/revoke", "admin", body=b"{}",
           headers={"Content-Type": "application/json"}, contains="takes no body")
    expect(413, "PUT", g, "admin", body=b"\x0a" * (65 * 1024), headers={"Content-Type": "application/x-protobuf"})
    s, _, h, data = call("PUT", g + "?format=json", "admin", body=b"\x0a\x00",
                         headers={"Content-Type": "application/x-protobuf"})
    check(s == 200 and h.get("content-type") == "application/json",
          f"PUT golden: a protobuf body with ?format=json: {s} {h.get('content-type')}")


def expect_body_error(data, h, what):
    ct = h.get("content-type", "")
    try:
        if ct == "application/json":
            json_format.Parse(data.decode(), PB.Error())
        elif ct == "application/x-protobuf":
            PB.Error.FromString(data)
        else:
            check(False, f"{what}: Content-Type {ct!r} for an error ({data[:80]!r})")
    except Exception as e:  # noqa: BLE001
        check(False, f"{what}: not an Error ({ct}): {e}: {data[:80]!r}")


# ---- watch ----


def open_watch(query):
    host, port = ARGS["server"].rsplit(":", 1)
    sock = context("reader").wrap_socket(socket.create_connection((host, int(port)), timeout=15),
                                         server_hostname=host)
    sock.sendall(("GET /v1/watch?%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (query, host)).encode())
    return sock


def read_until(sock, want, seconds):
    buf, end = b"", time.time() + seconds
    sock.settimeout(0.5)
    while time.time() < end:
        try:
            d = sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            continue
        if not d:
            break
        buf += d
        if want(buf):
            break
    return buf


def dechunk(raw):
    """The body of a chunked response read so far (whole chunks)."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    out = b""
    while b"\r\n" in rest:
        line, _, after = rest.partition(b"\r\n")
        n = int(line.split(b";")[0], 16)
        if len(after) < n + 2:
            break
        out += after[:n]
        rest = after[n + 2:]
    return head, out


def head_seq():
    """The largest global sequence in the verdicts served now."""
    s, _, _, data = call("GET", "/v1/verdicts?page_size=1000")
    page = PB.VerdictPage.FromString(data)
    return max((PB.Verdict.FromString(v.verdict).global_sequence for v in page.verdicts), default=0)


def test_watch():
    last = head_seq()
    n = 0
    for fmt in ("", "&format=json"):
        # from 0: every verdict (each a SignedVerdict), then idle: a heartbeat within 5 s + 2
        sock = open_watch(f"since=0{fmt}")
        t0 = time.time()

        def done(buf):
            _, body = dechunk(buf)
            if fmt:
                return b"\n\n" in body or body.startswith(b"\n")
            return b"\x00\x00\x00\x00" in frames_tail(body)
        raw = read_until(sock, done, 12)
        sock.close()
        print(f"     watch since=0{fmt}: the verdicts and a heartbeat in {time.time() - t0:.1f} s")
        head, body = dechunk(raw)
        what = f"GET /v1/watch?since=0{fmt}"
        check(b" 200 " in head.split(b"\r\n")[0], f"{what}: {head[:60]!r}")
        if fmt:
            check(head.lower().find(b"content-type: application/x-ndjson") >= 0, f"{what}: Content-Type")
            lines = body.split(b"\n")
            verdicts = [ln for ln in lines if ln.strip()]
            for ln in verdicts:
                m = parse_json(ln, PB.SignedVerdict, what + " (a line)")
                if m is not None:
                    n += 1
            check(len(verdicts) > 0 and b"" in lines[:-1], f"{what}: {len(verdicts)} verdicts, then an empty line "
                                                            f"(a heartbeat) within {time.time() - t0:.1f} s")
        else:
            frames, rest = [], body
            while len(rest) >= 4:
                ln = int.from_bytes(rest[:4], "big")
                if len(rest) < 4 + ln:
                    break
                frames.append(rest[4:4 + ln])
                rest = rest[4 + ln:]
            seqs = [PB.Verdict.FromString(PB.SignedVerdict.FromString(f).verdict).global_sequence for f in frames if f]
            check(seqs and seqs == sorted(seqs) and seqs[-1] >= last, f"{what}: the verdicts in order up to {last}")
            check(b"" in frames, f"{what}: no empty frame (a heartbeat) within {time.time() - t0:.1f} s")
    check(n > 0, "watch JSON lines parsed")
    # a stream at the head, idle: heartbeats keep coming, every API_HEARTBEAT_SECONDS
    sock = open_watch(f"since={last}")
    raw = read_until(sock, lambda b: dechunk(b)[1].count(b"\x00\x00\x00\x00") >= 2, 14)
    sock.close()
    _, body = dechunk(raw)
    check(body.count(b"\x00\x00\x00\x00") >= 2 and len(body) % 4 == 0,
          f"an idle stream at the head: two heartbeats within 14 s ({body[:40]!r})")
    # since= past the head: 400, an Error, not a silent stream
    expect(400, "GET", f"/v1/watch?since={last + 1000000}", contains="past the head")
    expect(400, "GET", f"/v1/watch?since=9223372036854775807&format=json", contains="past the head")


def frames_tail(body):
    """The frames of a uint32be-delimited body, each as its 4-byte header plus payload, joined
    back only for the empty ones: 4 zero bytes for each heartbeat."""
    out, rest = b"", body
    while len(rest) >= 4:
        ln = int.from_bytes(rest[:4], "big")
        if len(rest) < 4 + ln:
            break
        if ln == 0:
            out += b"\x00\x00\x00\x00"
        rest = rest[4 + ln:]
    return out


# ---- openapi ----


def test_openapi():
    spec = yaml.safe_load(open(ARGS["openapi"]))
    check(str(spec.get("openapi", "")).startswith("3."), "openapi: not an OpenAPI 3 document")
    documented = set()
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options"):
                documented.add((method, path))
    served = {(m.lower(), p) for m, p in ROUTES}
    for m, p in sorted(served - documented):
        check(False, f"openapi: {m.upper()} {p} is served but not described")
    for m, p in sorted(documented - served):
        check(False, f"openapi: {m.upper()} {p} is described but not served")
    # every answer seen: a status (and content type) the description lists
    for (m, p), statuses in sorted(SEEN.items()):
        op = spec.get("paths", {}).get(p, {}).get(m)
        if op is None:
            continue  # a method the path does not take: 405 (components/responses; checked below)
        responses = op.get("responses", {})
        for st, types in sorted(statuses.items()):
            r = responses.get(str(st))
            if not check(r is not None, f"openapi: {m.upper()} {p} answered {st}, which the description does not list"):
                continue
            if "$ref" in r:
                r = resolve(spec, r["$ref"])
            listed = set((r.get("content") or {}).keys())
            for ct in types:
                check(ct in listed or (not ct and not listed) or (m == "get" and not listed),
                      f"openapi: {m.upper()} {p} {st} answered {ct!r}, the description lists {sorted(listed)}")
    # 405 on a path: described for the path as a whole (x-vouch-other-methods)
    for (m, p), statuses in SEEN.items():
        if (m, p) not in documented and p in spec.get("paths", {}):
            check(set(statuses) <= {405, 403}, f"openapi: {m.upper()} {p} answered {sorted(statuses)}, not 405")
    # every described operation was walked, and its 200 (or the decision's 403) seen
    for m, p in sorted(documented):
        st = SEEN.get((m, p), {})
        ok = {s for s in st if s < 300} or (p.endswith("decision") and 403 in st)
        check(ok or p == "/v1/watch", f"openapi: {m.upper()} {p}: no success seen in the walk ({sorted(st)})")


def resolve(spec, ref):
    node = spec
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def main():
    global PB
    i = 1
    while i < len(sys.argv):
        ARGS[sys.argv[i].lstrip("-")] = sys.argv[i + 1]
        i += 2
    for line in open(ARGS["routes"]):
        if line.strip():
            m, p = line.split()[:2]
            ROUTES.append((m, p))
    with tempfile.TemporaryDirectory() as out:
        proto = ARGS["proto"]
        subprocess.run(["protoc", "-I", os.path.dirname(proto), "--python_out", out, proto], check=True)
        sys.path.insert(0, out)
        import vouch_pb2  # noqa: E402 -- generated just now
        PB = vouch_pb2
        for name, fn in (("json", test_json), ("http", test_http), ("watch", test_watch), ("openapi", test_openapi)):
            before = failures
            fn()
            print(("ok   " if failures == before else "FAIL ") + name)
    print(f"{checks} checks, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
