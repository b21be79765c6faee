#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# A stand-in for the TPM makers' EK certificate services, on 127.0.0.1 (test-real-devices.sh).
# Usage: ekcert_service.py DIR. It writes DIR/port once listening, appends every request
# path to DIR/requests.log, and answers from DIR/routes.json, re-read on every request:
#   {"/intel/KEY": {"kind": "json", "der": "FILE"}, "/amd/KEY": {"kind": "der", "der": "FILE"}}
# and, for any path, "mode" in DIR/mode (if present) overrides the answer:
#   slow (sleeps 8 s), huge (100 KiB), redirect (302 to another host), notfound (404).
import base64, http.server, json, os, socketserver, sys, time

DIR = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def send(self, code, ctype, body, extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with open(os.path.join(DIR, "requests.log"), "a") as f:
            f.write(self.path + "\n")
        mode = ""
        if os.path.exists(os.path.join(DIR, "mode")):
            mode = open(os.path.join(DIR, "mode")).read().strip()
        if mode == "slow":
            time.sleep(8)
            return self.send(404, "text/plain", b"too late")
        if mode == "huge":
            return self.send(200, "application/octet-stream", b"\x30" * (100 * 1024))
        if mode == "redirect":
            return self.send(302, "text/plain", b"", [("Location", "http://127.0.0.1:1/elsewhere")])
        routes = json.load(open(os.path.join(DIR, "routes.json")))
        r = routes.get(self.path)
        if mode == "notfound" or not r:
            return self.send(404, "text/plain", b"no certificate for this key")
        der = open(r["der"], "rb").read()
        if r["kind"] == "json":
            body = json.dumps({"pubhash": self.path.rsplit("/", 1)[1],
                               "certificate": base64.urlsafe_b64encode(der).decode().rstrip("=")}).encode()
            return self.send(200, "application/json", body)
        return self.send(200, "application/pkix-cert", der)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
with open(os.path.join(DIR, "port.tmp"), "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
srv.serve_forever()
