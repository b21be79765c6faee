#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpus of fuzz-verdict into corpus/fuzz-verdict/.

The first byte of each input picks the harness's target (0 SignedVerdict file, 1 keys
file, 2 Verdict bytes to be signed by the harness). Messages are encoded by hand from
proto/vouch.proto; signatures use the harness's test key with deterministic ECDSA
(RFC 6979), so rerunning the script changes nothing. Needs python3-cryptography.

Usage: make-verdict-corpus.py [OUTDIR]   (default: corpus/fuzz-verdict next to this script)
"""

import hashlib
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz-verdict")

# the test key of fuzz-verdict.c (public there too)
TEST_KEY = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgEj5oZihf6h7y6I+Z
F+YavYjFJQ8g6TLUiO5qRu/rwMChRANCAAQI9xX433qx3ZanXOC1Zl1on2l7iuMS
gAc131XVr9KU+T7KFLDCh9OimcuRsyPS76FZqmvhVaHzTAJeS6B9Utpr
-----END PRIVATE KEY-----
"""
NOW = 1795600800


def varint(v):
    v &= (1 << 64) - 1
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_varint(n, v):
    return varint(n << 3) + varint(v)


def field_bytes(n, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(n << 3 | 2) + varint(len(b)) + b


def finding(rule, pcr, event, etype, expected, actual, explanation):
    return (field_bytes(1, rule) + field_varint(2, pcr) + field_varint(3, event) + field_bytes(4, etype) +
            field_bytes(5, expected) + field_bytes(6, actual) + field_bytes(7, explanation))


def verdict(status, issued=NOW - 60, expires=NOW + 3600, findings=(), device="a" * 64):
    b = field_bytes(1, device) + field_varint(2, status)
    for f in findings:
        b += field_bytes(3, f)
    b += field_varint(4, issued) + field_varint(5, expires) + field_bytes(6, bytes(range(32)))
    b += field_bytes(7, "arch") + field_varint(8, 3) + field_varint(9, 7) + field_bytes(10, b"\x00\x0b" + bytes(32))
    b += field_varint(11, 42) + field_bytes(12, "verifier") + field_varint(13, 420)
    return b


def main():
    key = serialization.load_pem_private_key(TEST_KEY, None)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    key_id = hashlib.sha256(spki).hexdigest()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    other = ec.derive_private_key(12345, ec.SECP256R1())
    other_spki = other.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    other_pem = other.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(b):
        return key.sign(b, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))

    def signed(v, kid=key_id, sig=None):
        return field_bytes(1, v) + field_bytes(2, sig if sig is not None else sign(v)) + field_bytes(3, kid)

    def vkey(s, kid, active, not_after):
        return field_bytes(1, kid) + field_bytes(2, s) + field_varint(3, active) + field_varint(4, not_after)

    bad = finding("pcr4", 4, 23, "EV_EFI_BOOT_SERVICES_APPLICATION", "aa", "bb\x1b[31m",
                  "line one\nline two\t\x7f\u00e9")
    trusted = verdict(1)
    untrusted = verdict(2, findings=[bad, finding("attestation", -1, -1, "", "x", "", "quote\x00nul")])
    not_utf8 = verdict(2, findings=[finding(b"r\xff", 0, 0, b"\xc2\x9b2J", b"\xed\xa0\x80", b"\xc0\xaf",
                                            b"cut \xe2\x82")], device=b"dev\xf4\x90\x80\x80")
    files = {
        "signed-trusted.bin": b"\x00" + signed(trusted),
        "signed-untrusted.bin": b"\x00" + signed(untrusted),
        "signed-expired.bin": b"\x00" + signed(verdict(1, NOW - 7200, NOW - 3600)),
        "signed-future.bin": b"\x00" + signed(verdict(1, NOW + 3600, NOW + 7200)),
        "signed-other-key-id.bin": b"\x00" + signed(trusted, kid=hashlib.sha256(other_spki).hexdigest()),
        "signed-bad-signature.bin": b"\x00" + signed(trusted, sig=b"\x30\x06\x02\x01\x01\x02\x01\x01"),
        "signed-not-a-verdict.bin": b"\x00" + signed(b"\x0a\xff\xff"),
        "signed-json.json": b"\x00" + (
            '{"verdict": {"status": "TRUSTED"}, "verdict_bytes": "%s", "signature": "%s", "key_id": "%s"}\n' %
            (trusted.hex(), sign(trusted).hex(), key_id)).encode(),
        "signed-truncated.bin": b"\x00" + signed(trusted)[:50],
        "keys-pem.pem": b"\x01" + pem,
        "keys-pem-rotation.pem": b"\x01" + other_pem + pem,
        "keys-pem-twice.pem": b"\x01" + pem + pem,
        "keys-verdictkeys.bin": b"\x01" + field_bytes(1, vkey(spki, key_id, 1, 0)) +
        field_bytes(1, vkey(other_spki, hashlib.sha256(other_spki).hexdigest(), 0, NOW)),
        "keys-verdictkeys-bad-id.bin": b"\x01" + field_bytes(1, vkey(spki, "0" * 64, 1, 0)),
        "keys-empty.bin": b"\x01",
        "verdict-trusted.bin": b"\x02" + trusted,
        "verdict-untrusted-findings.bin": b"\x02" + untrusted,
        "verdict-unknown-status.bin": b"\x02" + verdict(77),
        "verdict-not-utf8.bin": b"\x02" + not_utf8,
        "verdict-garbage.bin": b"\x02\x0a\xff\xff\xff\x0f",
    }
    os.makedirs(OUT, exist_ok=True)
    for name, data in sorted(files.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
