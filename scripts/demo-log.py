#!/usr/bin/env python3
"""Writes a small, well-formed crypto-agile TCG event log (SHA-1 + SHA-256) of a plausible
UEFI boot, for the demo when the real logs of ../shared are not at hand."""
import hashlib
import struct
import sys

ALGS = [(0x0004, 20, hashlib.sha1), (0x000B, 32, hashlib.sha256)]


def header():
    spec = b"Spec ID Event03\0" + struct.pack("<IBBBBI", 0, 0, 2, 0, 2, len(ALGS))
    spec += b"".join(struct.pack("<HH", a, n) for a, n, _ in ALGS) + b"\0"
    return struct.pack("<II", 0, 3) + bytes(20) + struct.pack("<I", len(spec)) + spec


def event(pcr, etype, data, measured=None):
    m = data if measured is None else measured
    out = struct.pack("<III", pcr, etype, len(ALGS))
    for alg, _, h in ALGS:
        out += struct.pack("<H", alg) + h(m).digest()
    return out + struct.pack("<I", len(data)) + data


def variable(guid, name, data):
    n = name.encode("utf-16-le")
    return guid + struct.pack("<QQ", len(name), len(data)) + n + data


GLOBAL = bytes.fromhex("61dfe48bca93d211aa0d00e098032b8c")
log = header()
log += event(0, 0x08, "vouch demo firmware 1.0\0".encode("utf-16-le"))
log += event(0, 0x80000008, struct.pack("<QQ", 0xFFE00000, 0x200000), measured=b"firmware volume")
log += event(7, 0x80000001, variable(GLOBAL, "SecureBoot", b"\x01"))
for pcr in range(8):
    log += event(pcr, 0x04, b"\0\0\0\0")
log += event(4, 0x80000007, b"Calling EFI Application from Boot Option")
log += event(4, 0x80000003, struct.pack("<QQQQ", 0x7000000, 0x100000, 0, 0), measured=b"boot loader image")
log += event(5, 0x80000007, b"Exit Boot Services Invocation")
cmdline = b"/vmlinuz root=/dev/vda1 ro quiet"
log += event(8, 0x0D, b"kernel_cmdline: " + cmdline + b"\0", measured=cmdline)
sys.stdout.buffer.write(log)
