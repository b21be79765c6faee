#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpus of the fuzz harnesses into corpus/fuzz-NAME/.

Every input is synthetic, built here from the specs (TCG PC Client PFP 1.05, UEFI 2.10,
TPM 2.0 Part 2): no shared data is copied into the project; the replay tests and
run-fuzzers.sh read real logs from the shared dir in place. The output is deterministic
(keys and signatures come from fixed seeds, in pure Python), so rerunning the script
changes nothing unless the script changed. Files this script does not write (crash
reproducers, crash-*/leak-*/timeout-*) are left alone.

Usage: make-corpus.py [OUTDIR]   (default: corpus/ next to this script)
"""

import hashlib
import os
import random
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

u8 = lambda v: struct.pack("<B", v)
le16 = lambda v: struct.pack("<H", v)
le32 = lambda v: struct.pack("<I", v)
le64 = lambda v: struct.pack("<Q", v)
be16 = lambda v: struct.pack(">H", v)
be32 = lambda v: struct.pack(">I", v)
be64 = lambda v: struct.pack(">Q", v)

written = {}


def write(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    written.setdefault(harness, []).append((name, len(data)))


# ---------------------------------------------------------------- algorithms

SHA1, SHA256, SHA384, SHA512, SM3 = 0x0004, 0x000B, 0x000C, 0x000D, 0x0012
ALGS = {SHA1: ("sha1", 20), SHA256: ("sha256", 32), SHA384: ("sha384", 48), SHA512: ("sha512", 64), SM3: ("sm3", 32)}
try:
    hashlib.new("sm3")
    HAVE_SM3 = True
except ValueError:
    HAVE_SM3 = False


def H(alg, data):
    return hashlib.new(ALGS[alg][0], data).digest()


# ---------------------------------------------------------------- UEFI helpers


def guid(s):
    """EFI_GUID from its text form: the first three fields little-endian."""
    p = s.split("-")
    return le32(int(p[0], 16)) + le16(int(p[1], 16)) + le16(int(p[2], 16)) + bytes.fromhex(p[3] + p[4])


def ucs2(s, nul=True):
    return (s + ("\0" if nul else "")).encode("utf-16-le")


EFI_GLOBAL = guid("8be4df61-93ca-11d2-aa0d-00e098032b8c")
IMAGE_SECURITY_DB = guid("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
CERT_X509 = guid("a5c059a1-94e4-4aa7-87b5-ab155c2bf072")
CERT_SHA256 = guid("c1c41626-504c-4092-aca9-41f936934328")
SHIM_LOCK = guid("605dab50-e046-4300-abb6-3dd810dd8b23")


def node(t, sub, body):
    return bytes([t, sub]) + le16(4 + len(body)) + body


END = node(0x7F, 0xFF, b"")
END_INSTANCE = node(0x7F, 0x01, b"")


def n_pciroot(uid=0):
    return node(2, 1, le32(0x0A0341D0) + le32(uid))


def n_pcieroot(uid=0):
    return node(2, 1, le32(0x0A0841D0) + le32(uid))


def n_acpi(hid, uid):
    return node(2, 1, le32(hid) + le32(uid))


def n_pci(dev, fn):
    return node(1, 1, bytes([fn, dev]))


def n_hd_gpt(part, start, size, sig):
    return node(4, 1, le32(part) + le64(start) + le64(size) + sig + bytes([2, 2]))


def n_hd_mbr(part, start, size, sig):
    return node(4, 1, le32(part) + le64(start) + le64(size) + le32(sig) + bytes(12) + bytes([1, 1]))


def n_file(path):
    return node(4, 4, ucs2(path))


def devpath_boot_disk():
    disk = guid("1b3e5a2c-7d4f-4e6a-9c8b-0123456789ab")
    return (n_pciroot(0) + n_pci(0x1D, 0) + node(3, 0x17, le32(1) + bytes(range(8))) +
            n_hd_gpt(1, 2048, 1048576, disk) + n_file("\\EFI\\BOOT\\BOOTX64.EFI") + END)


def devpath_all_nodes():
    """One of each node type the printer knows, two instances, and an unknown node."""
    return (n_pcieroot(1) + n_pci(2, 3) + node(1, 3, le32(11) + le64(0xFF000000) + le64(0xFFFFFFFF)) +
            node(1, 4, guid("2d6447ef-3bc9-41a0-ac19-4d51d01b4ce6") + b"\x01\x02") +
            n_acpi(0x0501D041, 7) + node(3, 1, bytes([0, 1]) + le16(3)) + node(3, 2, le16(1) + le16(2)) +
            node(3, 5, bytes([1, 0])) + node(3, 0x0B, bytes.fromhex("525400123456") + bytes(26) + b"\x01") +
            node(3, 0x0C, bytes([10, 0, 0, 2, 10, 0, 0, 1]) + le16(0) + le16(69) + le16(17) + b"\x00") +
            node(3, 0x0D, bytes(16) + bytes.fromhex("fe800000000000000000000000000001") + bytes(4)) +
            node(3, 0x10, guid("e0c14753-f9be-11d2-9a0c-0090273fc14d") + b"\x09") +
            node(3, 0x12, le16(0) + le16(0xFFFF) + le16(0)) + node(3, 0x18, b"http://192.0.2.1/boot.efi") +
            node(3, 0x1D, b"\x00") + END_INSTANCE +
            n_hd_mbr(2, 63, 4096, 0xDEADBEEF) + node(4, 2, le32(1) + le64(0) + le64(300)) +
            node(4, 3, guid("00000000-0000-0000-0000-000000000001") + b"v") +
            node(4, 5, guid("1e2ed096-30e2-4254-bd89-863bbef82325")) +
            node(4, 7, guid("8c8ce578-8a3d-4f1c-9935-896185c32dd3")) +
            node(4, 6, guid("7c04a583-9e3e-4f1c-ad65-e05268d0b4d1")) +
            node(4, 8, le32(0) + le64(0x1000) + le64(0x1fff)) + node(5, 1, le16(6) + le16(0) + b"Network\0") +
            node(0x42, 0x99, b"\xAA\xBB") + node(1, 0x01, b"") + END)


def efi_load_option(desc, devpath, attrs=1, optional=b""):
    return le32(attrs) + le16(len(devpath)) + ucs2(desc) + devpath + optional


def variable_data(vguid, name, data):
    """UEFI_VARIABLE_DATA, PFP 1.05 10.4.6: name length in characters, without NUL."""
    n = ucs2(name, nul=False)
    return vguid + le64(len(n) // 2) + le64(len(data)) + n + data


def signature_list(type_guid, owner, entries, entry_size):
    body = b"".join(owner + e for e in entries)
    return type_guid + le32(28 + len(body)) + le32(0) + le32(16 + entry_size) + body


def gpt_data(n_entries):
    hdr = bytearray(92)
    hdr[0:8] = b"EFI PART"
    hdr[8:12] = le32(0x00010000)
    hdr[12:16] = le32(92)
    hdr[24:32] = le64(1)
    hdr[56:72] = guid("1b3e5a2c-7d4f-4e6a-9c8b-0123456789ab")
    hdr[72:80] = le64(2)
    hdr[80:84] = le32(n_entries)
    hdr[84:88] = le32(128)
    entries = b""
    for i in range(n_entries):
        e = bytearray(128)
        e[0:16] = guid("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
        e[16:32] = guid("%08x-0000-4000-8000-000000000000" % (i + 1))
        e[32:40] = le64(2048 * (i + 1))
        e[40:48] = le64(2048 * (i + 2) - 1)
        name = ucs2("EFI System" if i == 0 else "Linux root")
        e[56:56 + len(name)] = name
        entries += bytes(e)
    return bytes(hdr) + le64(n_entries) + entries


def image_load_event(devpath, location=0x7E000000, length=0x160000):
    return le64(location) + le64(length) + le64(0) + le64(len(devpath)) + devpath


def handoff_tables(desc, tables):
    body = le64(len(tables)) + b"".join(guid(g) + le64(addr) for g, addr in tables)
    return (u8(len(desc)) + desc + body) if desc is not None else body


# ---------------------------------------------------------------- event logs

EV_PREBOOT_CERT, EV_POST_CODE, EV_NO_ACTION, EV_SEPARATOR, EV_ACTION = 0, 1, 3, 4, 5
EV_EVENT_TAG, EV_S_CRTM_CONTENTS, EV_S_CRTM_VERSION, EV_IPL = 6, 7, 8, 0x0D
EV_OMIT_BOOT_DEVICE_EVENTS, EV_POST_CODE2 = 0x12, 0x13
EV_EFI_VARIABLE_DRIVER_CONFIG, EV_EFI_VARIABLE_BOOT = 0x80000001, 0x80000002
EV_EFI_BOOT_SERVICES_APPLICATION, EV_EFI_BOOT_SERVICES_DRIVER = 0x80000003, 0x80000004
EV_EFI_RUNTIME_SERVICES_DRIVER, EV_EFI_GPT_EVENT, EV_EFI_ACTION = 0x80000005, 0x80000006, 0x80000007
EV_EFI_PLATFORM_FIRMWARE_BLOB, EV_EFI_HANDOFF_TABLES = 0x80000008, 0x80000009
EV_EFI_PLATFORM_FIRMWARE_BLOB2, EV_EFI_HANDOFF_TABLES2 = 0x8000000A, 0x8000000B
EV_EFI_VARIABLE_BOOT2, EV_EFI_GPT_EVENT2, EV_EFI_HCRTM_EVENT = 0x8000000C, 0x8000000D, 0x80000010
EV_EFI_VARIABLE_AUTHORITY, EV_EFI_SPDM_FIRMWARE_BLOB = 0x800000E0, 0x800000E1
EV_EFI_SPDM_DEVICE_POLICY = 0x800000E3

UNKNOWN_ALG = 0x0027  # not known to the verifier: declared, carried, not replayed


def spec_id_data(algs, vendor=b"", errata=2):
    """TCG_EfiSpecIDEvent, PFP 1.05 10.4.5.1. algs: [(alg, size)]."""
    d = b"Spec ID Event03\0" + le32(0) + bytes([0, 2, errata, 2]) + le32(len(algs))
    d += b"".join(le16(a) + le16(s) for a, s in algs)
    return d + u8(len(vendor)) + vendor


def event1(pcr, etype, data, digest=None):
    """TCG_PCR_EVENT: SHA-1 only."""
    if digest is None:
        digest = H(SHA1, data) if etype != EV_NO_ACTION else bytes(20)
    return le32(pcr) + le32(etype) + digest + le32(len(data)) + data


class Log:
    """A crypto-agile log: the Spec ID header, then TCG_PCR_EVENT2 events."""

    def __init__(self, algs, vendor=b""):
        self.algs = algs
        self.size = dict(algs)
        self.events = [event1(0, EV_NO_ACTION, spec_id_data(algs, vendor), bytes(20))]

    def digest(self, alg, measured):
        if alg in ALGS and (alg != SM3 or HAVE_SM3):
            return H(alg, measured)
        return hashlib.shake_256(measured).digest(self.size[alg])  # stands in for an unknown hash

    def add(self, pcr, etype, data, measured=None, banks=None, override=None):
        """measured: the bytes the digests are of (default: the event data); override:
        {alg: digest} for digests that are deliberately wrong."""
        if measured is None:
            measured = data
        banks = banks if banks is not None else [a for a, _ in self.algs]
        out = le32(pcr) + le32(etype) + le32(len(banks))
        for a in banks:
            if override and a in override:
                d = override[a]
            elif etype == EV_NO_ACTION:
                d = bytes(self.size[a])
            else:
                d = self.digest(a, measured)
            out += le16(a) + d
        self.events.append(out + le32(len(data)) + data)
        return self

    def bytes(self):
        return b"".join(self.events)


def full_agile_log(algs=((SHA1, 20), (SHA256, 32))):
    """A UEFI boot through shim and grub, one event of each kind the decoder knows."""
    L = Log(list(algs))
    firmware = bytes(range(256)) * 4
    L.add(0, EV_NO_ACTION, b"StartupLocality\0" + b"\x03")
    L.add(0, EV_S_CRTM_VERSION, ucs2("1.00"))
    L.add(0, EV_EFI_PLATFORM_FIRMWARE_BLOB, le64(0xFFC00000) + le64(0x400000), measured=firmware)
    L.add(0, EV_EFI_PLATFORM_FIRMWARE_BLOB2, u8(5) + b"DXEFV" + le64(0xFFD00000) + le64(0x200000),
          measured=firmware[:512])
    L.add(0, EV_POST_CODE, b"ACPI DATA", measured=firmware[:64])
    L.add(0, EV_S_CRTM_CONTENTS, le64(0xFFE00000) + le64(0x1000), measured=firmware[:32])
    L.add(0, EV_POST_CODE2, u8(3) + b"SEC" + le64(0xFFF00000) + le64(0x1000), measured=firmware[:16])
    L.add(0, EV_EFI_SPDM_FIRMWARE_BLOB, le64(0xFEE00000) + le64(0x100), measured=firmware[:8])
    L.add(1, EV_EFI_HANDOFF_TABLES2, handoff_tables(b"SMBIOS", [("eb9d2d31-2d88-11d3-9a16-0090273fc14d", 0x7F000)]),
          measured=b"smbios tables")
    L.add(1, EV_EFI_HANDOFF_TABLES, handoff_tables(None, [("8868e871-e4f1-11d3-bc22-0080c73c8881", 0x7E000),
                                                          ("eb9d2d30-2d88-11d3-9a16-0090273fc14d", 0x7D000)]),
          measured=b"acpi tables")
    L.add(1, EV_EFI_VARIABLE_BOOT, variable_data(EFI_GLOBAL, "BootOrder", le16(1) + le16(0)),
          measured=le16(1) + le16(0))  # EDK2: VariableData only
    L.add(1, EV_EFI_VARIABLE_BOOT, variable_data(EFI_GLOBAL, "Boot0001",
                                                 efi_load_option("debian", devpath_boot_disk())))
    L.add(1, EV_EFI_VARIABLE_BOOT2, variable_data(EFI_GLOBAL, "Boot0000",
                                                  efi_load_option("UiApp", node(4, 7, guid(
                                                      "7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1")) + END)))
    cert = b"\x30\x82\x01\x00" + bytes(range(256))  # DER-shaped filler, not parsed
    for name, data in (("SecureBoot", b"\x01"), ("PK", signature_list(CERT_X509, SHIM_LOCK, [cert], len(cert))),
                       ("KEK", signature_list(CERT_X509, SHIM_LOCK, [cert], len(cert))),
                       ("db", signature_list(CERT_X509, SHIM_LOCK, [cert], len(cert)) +
                        signature_list(CERT_SHA256, SHIM_LOCK, [bytes(32), b"\x11" * 32], 32)),
                       ("dbx", signature_list(CERT_SHA256, SHIM_LOCK, [b"\x22" * 32], 32))):
        vg = IMAGE_SECURITY_DB if name in ("db", "dbx") else EFI_GLOBAL
        L.add(7, EV_EFI_VARIABLE_DRIVER_CONFIG, variable_data(vg, name, data))
    L.add(7, EV_EFI_SPDM_DEVICE_POLICY, variable_data(guid("4a3823fb-4a8b-4a0e-9d82-8e5bc2b2c0a6"), "SpdmPolicy", b"\0"))
    for pcr in range(8):
        L.add(pcr, EV_SEPARATOR, b"\0\0\0\0")
    L.add(5, EV_EFI_GPT_EVENT, gpt_data(2))
    L.add(4, EV_EFI_ACTION, b"Calling EFI Application from Boot Option")
    L.add(2, EV_EFI_BOOT_SERVICES_DRIVER, image_load_event(n_pciroot() + n_pci(3, 0) + END), measured=b"option rom")
    L.add(4, EV_EFI_BOOT_SERVICES_APPLICATION, image_load_event(devpath_boot_disk()), measured=b"shimx64.efi")
    L.add(4, EV_EFI_RUNTIME_SERVICES_DRIVER, image_load_event(b""), measured=b"runtime driver")
    L.add(7, EV_EFI_VARIABLE_AUTHORITY, variable_data(IMAGE_SECURITY_DB, "db", SHIM_LOCK + cert))
    L.add(14, EV_IPL, b"MokList\0", measured=b"mok list contents")
    L.add(7, EV_EFI_VARIABLE_AUTHORITY, variable_data(SHIM_LOCK, "Shim", SHIM_LOCK + cert[:40]) + b"\0",
          measured=variable_data(SHIM_LOCK, "Shim", SHIM_LOCK + cert[:40]))  # old shim: one byte less
    L.add(4, EV_EFI_BOOT_SERVICES_APPLICATION, image_load_event(n_file("\\EFI\\debian\\grubx64.efi") + END),
          measured=b"grubx64.efi")
    L.add(8, EV_IPL, b"grub_cmd: linux /vmlinuz root=/dev/sda2 ro\0", measured=b"linux /vmlinuz root=/dev/sda2 ro")
    L.add(8, EV_IPL, b"kernel_cmdline: /vmlinuz root=/dev/sda2 ro\0", measured=b"/vmlinuz root=/dev/sda2 ro")
    L.add(8, EV_IPL, b"grub_cmd initrd /initrd.img\0", measured=b"initrd /initrd.img\0")  # RHEL 8: NUL measured
    L.add(9, EV_IPL, b"/boot/vmlinuz\0", measured=b"kernel image")
    L.add(12, EV_IPL, ucs2("console=ttyS0 quiet"))  # systemd-stub
    L.add(9, EV_EVENT_TAG, le32(0x8F3B22ED) + le32(18) + ucs2("root=/dev/sda2\0", nul=False)[:18],
          measured=b"load options")
    L.add(9, EV_EVENT_TAG, le32(0x8F3B22EC) + le32(6) + b"initrd", measured=b"initrd contents")
    L.add(0, EV_NO_ACTION, b"SP800-155 Event3" + bytes(range(40)))
    L.add(0, EV_NO_ACTION, b"NvIndexInstance\0" + le16(1) + bytes(6))
    L.add(VC_PCR_NONE, EV_EVENT_TAG, le32(0x40010001) + le32(4) + b"\x01\x00\x00\x00")  # Windows WBCL
    L.add(4, EV_OMIT_BOOT_DEVICE_EVENTS, b"boot attempts omitted")
    L.add(5, EV_EFI_ACTION, b"Exit Boot Services Invocation")
    L.add(5, EV_EFI_ACTION, b"Exit Boot Services Returned with Success")
    L.add(10, 0x0000BEEF, b"\x00\x01binary vendor event\xff", measured=b"something else")
    return L


VC_PCR_NONE = 0xFFFFFFFF


def eventlogs():
    h = "fuzz-eventlog"
    full = full_agile_log()
    write(h, "agile-sha1-sha256.bin", full.bytes())

    # Every bank the verifier knows, and one it does not (declared, carried, skipped).
    algs = [(SHA1, 20), (SHA256, 32), (SHA384, 48), (SHA512, 64), (UNKNOWN_ALG, 24)]
    if HAVE_SM3:
        algs.insert(4, (SM3, 32))
    L = Log(algs, vendor=b"vendor")
    L.add(0, EV_S_CRTM_VERSION, ucs2("2.7"))
    L.add(0, EV_EFI_PLATFORM_FIRMWARE_BLOB, le64(0) + le64(0x10000), measured=b"fw")
    L.add(7, EV_EFI_VARIABLE_DRIVER_CONFIG, variable_data(EFI_GLOBAL, "SecureBoot", b"\0"))
    for pcr in range(8):
        L.add(pcr, EV_SEPARATOR, b"\0\0\0\0")
    L.add(4, EV_EFI_ACTION, b"Calling EFI Application from Boot Option")
    write(h, "agile-all-banks.bin", L.bytes())

    # A sha256-only log, Spec ID errata 0 (PFP 1.05 errata level of early firmware).
    L = Log([(SHA256, 32)])
    L.events[0] = event1(0, EV_NO_ACTION, spec_id_data([(SHA256, 32)], errata=0), bytes(20))
    L.add(0, EV_S_CRTM_VERSION, le32(0) + bytes(12))  # a 16-byte GUID-like version, not text
    L.add(0, EV_POST_CODE, bytes(range(20)), measured=b"blob")
    for pcr in range(8):
        L.add(pcr, EV_SEPARATOR, b"\0\0\0\0")
    L.add(4, EV_EFI_BOOT_SERVICES_APPLICATION, image_load_event(devpath_all_nodes()), measured=b"app")
    write(h, "agile-sha256.bin", L.bytes())

    # H-CRTM: PCR 0 starts at locality 4 (PFP 1.05 10.4.5.3).
    L = Log([(SHA256, 32)])
    L.add(0, EV_NO_ACTION, b"StartupLocality\0" + b"\x04")
    L.add(0, EV_EFI_HCRTM_EVENT, b"HCRTM", measured=b"hcrtm measurement")
    L.add(0, EV_SEPARATOR, b"\0\0\0\0")
    write(h, "hcrtm.bin", L.bytes())

    # StartupLocality after PCR 0 was extended: parses, replay rejects it.
    L = Log([(SHA256, 32)])
    L.add(0, EV_SEPARATOR, b"\0\0\0\0")
    L.add(0, EV_NO_ACTION, b"StartupLocality\0" + b"\x03")
    L.add(1, EV_SEPARATOR, b"\0\0\0\0")
    write(h, "startup-locality-late.bin", L.bytes())

    # An event without the sha1 digest: the sha1 bank cannot be replayed and is dropped.
    L = Log([(SHA1, 20), (SHA256, 32)])
    L.add(0, EV_SEPARATOR, b"\0\0\0\0")
    L.add(1, EV_SEPARATOR, b"\0\0\0\0", banks=[SHA256])
    L.add(2, EV_SEPARATOR, b"\0\0\0\0")
    write(h, "missing-bank.bin", L.bytes())

    # Digests that do not match the data: MISMATCH (defined) vs NOT_CHECKED, partial banks.
    L = Log([(SHA1, 20), (SHA256, 32)])
    L.add(0, EV_SEPARATOR, b"\0\0\0\0", override={SHA256: b"\x55" * 32})
    L.add(1, EV_EFI_VARIABLE_BOOT, variable_data(EFI_GLOBAL, "Boot0002", efi_load_option("x", END)),
          override={SHA1: b"\x66" * 20, SHA256: b"\x77" * 32})
    L.add(4, EV_EFI_ACTION, b"action", measured=b"other")
    L.add(8, EV_IPL, b"grub_cmd: ls\0", measured=b"ls!")
    write(h, "digest-mismatch.bin", L.bytes())

    # vendorInfo not counted in the Spec ID eventSize (tpm2-tools' reader accepts it).
    spec = spec_id_data([(SHA1, 20), (SHA256, 32)], vendor=b"VENDOR")
    head = le32(0) + le32(EV_NO_ACTION) + bytes(20) + le32(len(spec) - 6) + spec
    L = Log([(SHA1, 20), (SHA256, 32)])
    L.events[0] = head
    L.add(0, EV_SEPARATOR, b"\0\0\0\0")
    write(h, "specid-vendorinfo-outside.bin", L.bytes())

    write(h, "header-only.bin", Log([(SHA256, 32)], vendor=b"\x01\x02").bytes())

    # A bank the verifier cannot compute, alone in an event: nothing to check.
    L = Log([(SHA256, 32), (UNKNOWN_ALG, 24)])
    L.add(0, EV_SEPARATOR, b"\0\0\0\0", banks=[UNKNOWN_ALG])
    L.add(1, EV_SEPARATOR, b"\0\0\0\0")
    write(h, "unknown-bank-only.bin", L.bytes())


    # Legacy SHA-1 log (TPM 1.2 style BIOS).
    leg = b"".join([
        event1(0, EV_S_CRTM_VERSION, ucs2("1.0")),
        event1(0, EV_POST_CODE, b"POST CODE", digest=H(SHA1, b"post code blob")),
        event1(0, EV_S_CRTM_CONTENTS, le64(0xF0000) + le64(0x10000), digest=H(SHA1, b"crtm")),
        event1(1, EV_EFI_HANDOFF_TABLES, handoff_tables(None, [("eb9d2d31-2d88-11d3-9a16-0090273fc14d", 0xF0000)])),
        event1(4, EV_ACTION, b"Calling INT 19h"),
        event1(4, EV_ACTION, b"Returned INT 19h"),
        event1(5, EV_EFI_GPT_EVENT, gpt_data(1)),
    ] + [event1(p, EV_SEPARATOR, b"\0\0\0\0") for p in range(8)] + [
        event1(4, EV_IPL, b"grub_cmd: boot\0", digest=H(SHA1, b"boot")),
        event1(VC_PCR_NONE, EV_EVENT_TAG, le32(1) + le32(0)),
        event1(8, EV_PREBOOT_CERT, b"", digest=bytes(20)),
    ])
    write(h, "legacy-sha1.bin", leg)

    # Malformed variants: each hits one rejection path of the parser.
    b = full.bytes()
    ev1 = len(full.events[0])
    write(h, "truncated-header.bin", b[:20])
    write(h, "truncated-specid.bin", b[:ev1 - 3])
    write(h, "truncated-event2-header.bin", b[:ev1 + 7])
    write(h, "truncated-event2-digest.bin", b[:ev1 + 12 + 2 + 10])
    write(h, "truncated-event2-data.bin", b[:ev1 + len(full.events[1]) - 1])
    write(h, "truncated-last-event.bin", b[:-5])
    write(h, "trailing-garbage.bin", b + b"\xff\xfe")
    # Padding after the last event (a copy of the firmware's log area): one byte, 0xFF or
    # 0x00, repeated is accepted; anything else is an error at its offset.
    small = Log([(SHA256, 32)]).add(0, EV_S_CRTM_VERSION, ucs2("1.0")).add(4, EV_SEPARATOR, b"\0\0\0\0").bytes()
    write(h, "padding-ff.bin", small + b"\xff" * 1024)
    write(h, "padding-00.bin", small + b"\x00" * 300)
    write(h, "padding-mixed.bin", small + b"\xff" * 16 + b"\x00" * 16)
    write(h, "padding-legacy-00.bin", event1(0, EV_S_CRTM_VERSION, b"abc") + b"\x00" * 64)
    # SeaBIOS (QEMU's legacy BIOS, src/tcgbios.c): SMBIOS and option ROM tags, actions, the
    # MBR, and separators in PCRs 0-7 logged with no data, measured as 0xFFFFFFFF.
    sb = Log([(SHA1, 20), (SHA256, 32)])
    sb.add(1, EV_EVENT_TAG, le32(1) + le32(20) + H(SHA1, b"smbios tables"))
    sb.add(2, EV_ACTION, b"Start Option ROM Scan")
    sb.add(2, EV_EVENT_TAG, le32(7) + le32(24) + le16(0) + le16(0) + H(SHA1, b"option rom"))
    sb.add(4, EV_ACTION, b"Calling INT 19h")
    for pcr in range(8):
        sb.add(pcr, EV_SEPARATOR, b"", measured=b"\xff" * 4)
    sb.add(4, EV_ACTION, b"Booting BCV device 80h (HDD)")
    sb.add(4, EV_IPL, b"MBR", measured=bytes(range(256)) + bytes(184))
    sb.add(5, 0x0E, b"MBR PARTITION_TABLE", measured=bytes(72))  # EV_IPL_PARTITION_DATA
    write(h, "seabios.bin", sb.bytes())
    # CCEL (TDX): Spec ID at register 1 (0 on early TDVF), SHA-384 only, registers 0-4.
    def ccel(spec_index=1, algs=((SHA384, 48),), last_index=4):
        L = Log(list(algs))
        L.events[0] = le32(spec_index) + L.events[0][4:]
        L.add(1, EV_EFI_HANDOFF_TABLES2, u8(8) + b"TdxTable" + le64(1) + guid("93bb96af-b9f2-4eb8-9462-e0ba74564236") + le64(0x809000))
        L.add(1, EV_EFI_VARIABLE_DRIVER_CONFIG, variable_data(EFI_GLOBAL, "SecureBoot", b"\x00"))
        L.add(1, EV_SEPARATOR, b"\0\0\0\0")
        L.add(2, EV_EFI_ACTION, b"Calling EFI Application from Boot Option")
        L.add(3, EV_IPL, b"grub_cmd: set timeout=0\0", measured=b"set timeout=0")
        L.add(0, EV_NO_ACTION, b"StartupLocality\0" + b"\x03")
        L.add(last_index, EV_EVENT_TAG, le32(1) + le32(2) + b"ok")
        return L.bytes()
    write(h, "ccel-tdx.bin", ccel())
    write(h, "ccel-tdx-padded.bin", ccel() + b"\xff" * 2048)
    write(h, "ccel-early-specid0.bin", ccel(spec_index=0) + b"\x00" * 100)
    write(h, "ccel-specid2.bin", ccel(spec_index=2))
    write(h, "ccel-register5.bin", ccel(last_index=5))
    write(h, "ccel-two-banks.bin", ccel(algs=((SHA256, 32), (SHA384, 48))))
    write(h, "ccel-sm3.bin", ccel(algs=((SM3, 32),)))
    write(h, "empty.bin", b"")

    def bad_spec(algs, **kw):
        return event1(0, EV_NO_ACTION, spec_id_data(algs, **kw), bytes(20))

    sep = Log([(SHA256, 32)]).add(0, EV_SEPARATOR, b"\0\0\0\0").events[1]
    write(h, "specid-no-algs.bin", bad_spec([]) + sep)
    write(h, "specid-9-algs.bin", bad_spec([(0x100 + i, 32) for i in range(9)]))
    write(h, "specid-dup-alg.bin", bad_spec([(SHA256, 32), (SHA256, 32)]) + sep)
    write(h, "specid-wrong-size.bin", bad_spec([(SHA256, 20)]) + sep)
    write(h, "specid-zero-size.bin", bad_spec([(UNKNOWN_ALG, 0)]) + sep)
    write(h, "specid-pcr1.bin", le32(1) + bad_spec([(SHA256, 32)])[4:] + sep)
    spec = spec_id_data([(SHA256, 32)])
    write(h, "specid-trailing.bin", le32(0) + le32(EV_NO_ACTION) + bytes(20) + le32(len(spec) + 2) + spec + b"xx")
    write(h, "event-pcr24.bin", Log([(SHA256, 32)]).add(24, EV_SEPARATOR, b"\0\0\0\0").bytes())
    write(h, "legacy-pcr24.bin", event1(24, EV_SEPARATOR, b"\0\0\0\0"))
    L = Log([(SHA256, 32)])
    L.events.append(le32(0) + le32(EV_SEPARATOR) + le32(0) + le32(4) + bytes(4))
    write(h, "event-no-digests.bin", L.bytes())
    L = Log([(SHA256, 32)])
    L.events.append(le32(0) + le32(EV_SEPARATOR) + le32(2) + (le16(SHA256) + bytes(32)) * 2 + le32(0))
    write(h, "event-too-many-digests.bin", L.bytes())
    L = Log([(SHA1, 20), (SHA256, 32)])
    L.events.append(le32(0) + le32(EV_SEPARATOR) + le32(2) + (le16(SHA256) + bytes(32)) * 2 + le32(0))
    write(h, "event-dup-digest.bin", L.bytes())
    L = Log([(SHA256, 32)])
    L.events.append(le32(0) + le32(EV_SEPARATOR) + le32(1) + le16(SHA384) + bytes(48) + le32(0))
    write(h, "event-undeclared-alg.bin", L.bytes())
    L = Log([(SHA256, 32)])
    L.events.append(le32(0) + le32(EV_SEPARATOR) + le32(1) + le16(SHA256) + bytes(32) + le32(0x00100001))
    write(h, "event-data-over-cap.bin", L.bytes())

    # Decoder rejection paths: well-formed events whose content is malformed.
    L = Log([(SHA256, 32)])
    L.add(7, EV_EFI_VARIABLE_DRIVER_CONFIG, EFI_GLOBAL + le64(1000) + le64(0) + b"Se")
    L.add(7, EV_EFI_VARIABLE_DRIVER_CONFIG, EFI_GLOBAL + le64(1) + le64(99) + b"x\0")
    L.add(4, EV_EFI_BOOT_SERVICES_APPLICATION, le64(0) * 3 + le64(100) + b"short")
    L.add(4, EV_EFI_BOOT_SERVICES_APPLICATION, image_load_event(node(4, 4, b"") [:2] + b"\x02\x00"))
    L.add(0, EV_EFI_PLATFORM_FIRMWARE_BLOB, bytes(15))
    L.add(0, EV_EFI_PLATFORM_FIRMWARE_BLOB2, u8(200) + bytes(16))
    L.add(0, EV_EFI_PLATFORM_FIRMWARE_BLOB2, b"")
    L.add(5, EV_EFI_GPT_EVENT, b"EFI PART" + bytes(84))
    L.add(5, EV_EFI_GPT_EVENT2, gpt_data(2)[:-10])
    L.add(1, EV_EFI_HANDOFF_TABLES, le64(5) + bytes(24))
    L.add(1, EV_EFI_HANDOFF_TABLES2, u8(50) + b"x")
    L.add(9, EV_EVENT_TAG, le32(1) + le32(100) + b"x")
    L.add(0, EV_NO_ACTION, b"Spec ID Event03\0" + bytes(4))
    L.add(0, EV_NO_ACTION, b"\x01\x02binary")
    L.add(0, EV_S_CRTM_VERSION, b"\x01\x00\xd8\x00")  # lone surrogate: not text
    L.add(1, EV_EFI_VARIABLE_BOOT, variable_data(EFI_GLOBAL, "Boot0003", le32(1) + le16(200) + ucs2("x")))
    L.add(1, EV_EFI_VARIABLE_BOOT, variable_data(EFI_GLOBAL, "Boot\U0001F600", b"\x01" * 8))
    L.add(1, EV_EFI_VARIABLE_BOOT, variable_data(EFI_GLOBAL, "BootOrder", b"\x01\x00\x02"))
    L.add(7, EV_EFI_VARIABLE_DRIVER_CONFIG, variable_data(EFI_GLOBAL, "PK", CERT_X509 + le32(20) + bytes(8)))
    write(h, "malformed-content.bin", L.bytes())


# ---------------------------------------------------------------- PCR files


def pcr_values(alg, pcrs, salt=b""):
    return {p: H(alg, salt + b"pcr %d" % p) for p in pcrs}


def pcrs_json(banks, prefix="", upper=False, name=None, indent=False):
    parts = []
    for alg, vals in banks:
        bank = name or ALGS[alg][0]
        items = []
        for p, v in sorted(vals.items()):
            hx = v.hex().upper() if upper else v.hex()
            items.append('"%d": "%s%s"' % (p, prefix, hx))
        sep = ",\n    " if indent else ", "
        parts.append('"%s": {%s}' % (bank, sep.join(items)))
    return ("{\n  " + ",\n  ".join(parts) + "\n}\n" if indent else "{" + ", ".join(parts) + "}").encode()


def pcrs_serialized(banks):
    """tpm2-tools 5.x `tpm2_quote -o`: TPML_PCR_SELECTION as in memory on x86-64, a UINT32
    count of TPML_DIGEST, each TPML_DIGEST a UINT32 count and 8 TPM2B_DIGESTs of 66 bytes."""
    sel = le32(len(banks))
    digests = []
    for alg, vals in banks:
        mask = 0
        for p in vals:
            mask |= 1 << p
        sel += le16(alg) + u8(3) + le32(mask)[:3] + b"\0" + b"\0"
        digests += [vals[p] for p in sorted(vals)]
    sel = sel.ljust(132, b"\0")
    lists = [digests[i:i + 8] for i in range(0, len(digests), 8)]
    out = sel + le32(len(lists))
    for l in lists:
        body = le32(len(l)) + b"".join(le16(len(d)) + d.ljust(64, b"\0") for d in l)
        out += body.ljust(532, b"\0")
    return out


def pcrfiles():
    h = "fuzz-pcrs"
    s256 = pcr_values(SHA256, range(24))
    s1 = pcr_values(SHA1, range(10))
    write(h, "sha256.json", pcrs_json([(SHA256, s256)], indent=True))
    write(h, "all-banks.json", pcrs_json([(SHA1, s1), (SHA256, pcr_values(SHA256, [0, 7])),
                                          (SHA384, pcr_values(SHA384, [23])), (SHA512, pcr_values(SHA512, [4])),
                                          (SM3, {9: bytes(32)})]))
    write(h, "names-prefix-upper.json", pcrs_json([(SHA1, s1)], prefix="0x", upper=True, name="SHA-1") + b"  \n")
    write(h, "empty-object.json", b"{}")
    write(h, "empty-bank.json", b' {"sha256": {}}')
    write(h, "bad-length.json", b'{"sha256": {"0": "00"}}')
    write(h, "bad-hex.json", b'{"sha1": {"0": "' + b"zz" * 20 + b'"}}')
    write(h, "bad-index.json", b'{"sha1": {"24": "' + b"00" * 20 + b'"}}')
    write(h, "bad-index-sign.json", b'{"sha1": {"-1": "' + b"00" * 20 + b'", "+1": "00"}}')
    write(h, "bad-bank.json", b'{"md5": {"0": "00"}}')
    write(h, "dup-bank.json", b'{"sha256": {}, "SHA256": {}}')
    write(h, "dup-pcr.json", b'{"sha1": {"1": "' + b"00" * 20 + b'", "01": "' + b"11" * 20 + b'"}}')
    write(h, "not-object.json", b'{"sha256": ["00"]}')
    write(h, "value-not-string.json", b'{"sha256": {"0": 0}}')
    write(h, "trailing.json", b'{"sha256": {}} x')
    write(h, "unterminated.json", b'{"sha256": {"0": "00')
    write(h, "deep.json", b"{" * 12 + b"}" * 12)
    write(h, "array.json", b"[1, 2, 3]")
    write(h, "serialized-sha256.bin", pcrs_serialized([(SHA256, pcr_values(SHA256, range(8)))]))
    ser = pcrs_serialized([(SHA1, s1), (SHA256, pcr_values(SHA256, range(10)))])
    write(h, "serialized-sha1-sha256.bin", ser)
    write(h, "serialized-truncated.bin", ser[:-100])
    write(h, "serialized-header-only.bin", ser[:136])
    bad = bytearray(ser)
    bad[4 + 2] = 5  # sizeofSelect 5
    write(h, "serialized-bad-sizeofselect.bin", bytes(bad))
    bad = bytearray(ser)
    bad[136:140] = le32(9)  # 9 digests in one TPML_DIGEST
    write(h, "serialized-bad-count.bin", bytes(bad))
    bad = bytearray(ser)
    bad[140:142] = le16(32)  # a 32-byte digest where sha1 is selected
    write(h, "serialized-bad-digest-size.bin", bytes(bad))
    write(h, "serialized-unknown-bank.bin", pcrs_serialized([(0x0027, {0: bytes(32)})]))


# ---------------------------------------------------------------- quotes

TPM_ALG_RSA, TPM_ALG_ECC, TPM_ALG_NULL = 0x0001, 0x0023, 0x0010
TPM_ALG_RSASSA, TPM_ALG_RSAPSS, TPM_ALG_ECDSA = 0x0014, 0x0016, 0x0018
TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE = 0xFF544347, 0x8018
# fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | restricted | sign
AK_ATTRIBUTES = 0x00000002 | 0x00000010 | 0x00000020 | 0x00000040 | 0x00010000 | 0x00040000


def tpm2b(b):
    return be16(len(b)) + b


def is_probable_prime(n, rng):
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(32):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def rsa_key(bits, seed):
    """A deterministic RSA key: test material only, generated from a fixed seed."""
    rng = random.Random(seed)
    e = 65537
    while True:
        ps = []
        while len(ps) < 2:
            c = rng.getrandbits(bits // 2) | (3 << (bits // 2 - 2)) | 1
            if is_probable_prime(c, rng) and (c - 1) % e:
                ps.append(c)
        p, q = ps
        n = p * q
        if n.bit_length() == bits and p != q:
            return n, e, pow(e, -1, (p - 1) * (q - 1))


def i2b(v, n):
    return v.to_bytes(n, "big")


DIGEST_INFO = {SHA1: bytes.fromhex("3021300906052b0e03021a05000414"),
               SHA256: bytes.fromhex("3031300d060960864801650304020105000420"),
               SHA384: bytes.fromhex("3041300d060960864801650304020205000430"),
               SHA512: bytes.fromhex("3051300d060960864801650304020305000440")}


def rsassa_sign(key, alg, msg):
    n, e, d = key
    k = (n.bit_length() + 7) // 8
    t = DIGEST_INFO[alg] + H(alg, msg)
    em = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return i2b(pow(int.from_bytes(em, "big"), d, n), k)


def mgf1(alg, seed, length):
    out = b""
    c = 0
    while len(out) < length:
        out += H(alg, seed + be32(c))
        c += 1
    return out[:length]


def rsapss_sign(key, alg, msg, salt):
    n, e, d = key
    mod_bits = n.bit_length()
    em_len = (mod_bits - 1 + 7) // 8
    mh = H(alg, msg)
    hh = H(alg, b"\0" * 8 + mh + salt)
    db = b"\0" * (em_len - len(salt) - len(hh) - 2) + b"\x01" + salt
    masked = bytearray(a ^ b for a, b in zip(db, mgf1(alg, hh, len(db))))
    masked[0] &= 0xFF >> (8 * em_len - (mod_bits - 1))
    em = bytes(masked) + hh + b"\xbc"
    return i2b(pow(int.from_bytes(em, "big"), d, n), (mod_bits + 7) // 8)


class Curve:
    """A NIST prime curve (FIPS 186-4 D.1.2), y^2 = x^3 - 3x + b, affine arithmetic."""

    def __init__(self, tpm_id, size, p, n, gx, gy):
        self.tpm_id, self.size, self.p, self.n, self.g = tpm_id, size, p, n, (gx, gy)

    def add(self, a, b):
        p = self.p
        if a is None:
            return b
        if b is None:
            return a
        if a[0] == b[0] and (a[1] + b[1]) % p == 0:
            return None
        if a == b:
            l = (3 * a[0] * a[0] - 3) * pow(2 * a[1], -1, p) % p
        else:
            l = (b[1] - a[1]) * pow(b[0] - a[0], -1, p) % p
        x = (l * l - a[0] - b[0]) % p
        return x, (l * (a[0] - x) - a[1]) % p

    def mul(self, k, pt):
        r = None
        while k:
            if k & 1:
                r = self.add(r, pt)
            pt = self.add(pt, pt)
            k >>= 1
        return r

    def sign(self, d, alg, msg, rng):
        """ECDSA; the hash is cut to the order's length (FIPS 186-4 6.4)."""
        e = H(alg, msg)
        z = int.from_bytes(e, "big") >> max(0, 8 * len(e) - self.n.bit_length())
        while True:
            k = rng.randrange(1, self.n)
            r = self.mul(k, self.g)[0] % self.n
            s = pow(k, -1, self.n) * (z + r * d) % self.n
            if r and s:
                return i2b(r, self.size), i2b(s, self.size)


P256 = Curve(0x0003, 32, 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
             0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
             0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
             0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)
P384 = Curve(0x0004, 48, (1 << 384) - (1 << 128) - (1 << 96) + (1 << 32) - 1,
             0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
             0xAA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A385502F25DBF55296C3A545E3872760AB7,
             0x3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C00A60B1CE1D7E819D7A431D7C90EA0E5F)
TPM_ECC_NIST_P521 = 0x0005


def tpmt_public_rsa(n, scheme=TPM_ALG_RSASSA, attrs=AK_ATTRIBUTES, name_alg=SHA256, exponent=0):
    scheme_b = be16(scheme) + (be16(SHA256) if scheme != TPM_ALG_NULL else b"")
    nb = i2b(n, (n.bit_length() + 7) // 8)
    return (be16(TPM_ALG_RSA) + be16(name_alg) + be32(attrs) + tpm2b(b"") + be16(TPM_ALG_NULL) + scheme_b +
            be16(n.bit_length()) + be32(exponent) + tpm2b(nb))


def tpmt_public_ecc(q, curve=None, size=32, attrs=AK_ATTRIBUTES, name_alg=SHA256, hash_alg=SHA256,
                    curve_id=None, scheme=TPM_ALG_ECDSA):
    curve_id = curve_id if curve_id is not None else curve.tpm_id
    size = curve.size if curve else size
    scheme_b = be16(scheme) + (be16(hash_alg) if scheme != TPM_ALG_NULL else b"")
    return (be16(TPM_ALG_ECC) + be16(name_alg) + be32(attrs) + tpm2b(b"") + be16(TPM_ALG_NULL) +
            scheme_b + be16(curve_id) + be16(TPM_ALG_NULL) +
            tpm2b(i2b(q[0], size)) + tpm2b(i2b(q[1], size)))


def der(tag, body):
    n = len(body)
    if n < 0x80:
        ln = bytes([n])
    else:
        lb = n.to_bytes((n.bit_length() + 7) // 8, "big")
        ln = bytes([0x80 | len(lb)]) + lb
    return bytes([tag]) + ln + body


def der_int(v):
    b = v.to_bytes(v.bit_length() // 8 + 1, "big")
    return der(0x02, b)


def pem_rsa_public(n, e):
    import base64
    rsa_key_der = der(0x30, der_int(n) + der_int(e))
    alg = der(0x30, der(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
    spki = der(0x30, alg + der(0x03, b"\x00" + rsa_key_der))
    b64 = base64.b64encode(spki).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return ("-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n").encode()


def name_of(tpmt, name_alg=SHA256):
    return be16(name_alg) + H(name_alg, tpmt)


def tpms_attest(qsigner, nonce, selections, pcr_digest, magic=TPM_GENERATED_VALUE, st=TPM_ST_ATTEST_QUOTE,
                attested=None):
    """selections: [(alg, [pcr...])], TPM 2.0 Part 2 10.12.8 / 10.12.1; attested: the body
    of another attestation type instead of TPMS_QUOTE_INFO."""
    head = (be32(magic) + be16(st) + tpm2b(qsigner) + tpm2b(nonce) + be64(0x1234567) + be32(3) + be32(0) + u8(1) +
            be64(0x2000000000000))
    if attested is not None:
        return head + attested
    sel = be32(len(selections))
    for alg, pcrs in selections:
        mask = 0
        for p in pcrs:
            mask |= 1 << p
        sel += be16(alg) + u8(3) + bytes([mask & 0xFF, (mask >> 8) & 0xFF, (mask >> 16) & 0xFF])
    return head + sel + tpm2b(pcr_digest)


def pcr_digest(sig_alg, selections, values):
    return H(sig_alg, b"".join(values[alg][p] for alg, pcrs in selections for p in sorted(pcrs)))


def quote_input(flags, tweak, ak, attest, sig, nonce, pcrfile):
    return (bytes([flags, tweak]) + le16(len(ak)) + le16(len(attest)) + le16(len(sig)) + u8(len(nonce)) + ak +
            attest + sig + nonce + pcrfile)


F_QSIGNER, F_REPLAYED, F_CHANGED, F_MISSING, F_NO_BANK, F_ALLOW_SHA1 = 1, 2, 4, 8, 16, 32


def quotes():
    h = "fuzz-quote"
    rng = random.Random(0x5EED)
    key = rsa_key(2048, 0xA11CE)
    n, e, _ = key
    values = {SHA1: pcr_values(SHA1, range(24)), SHA256: pcr_values(SHA256, range(24)),
              SHA384: pcr_values(SHA384, range(24))}
    # the PCRs the quotes below select, and some they do not
    json_all = pcrs_json([(SHA1, {p: values[SHA1][p] for p in range(10)}), (SHA256, values[SHA256]),
                          (SHA384, {p: values[SHA384][p] for p in list(range(8)) + [14]})])
    nonce = bytes(range(1, 17))

    # RSA AK (TPMT_PUBLIC), RSASSA-SHA256, sha256 PCRs 0-7; the Name as qualifiedSigner.
    pub = tpmt_public_rsa(n)
    sel = [(SHA256, range(8))]
    att = tpms_attest(name_of(pub), nonce, sel, pcr_digest(SHA256, sel, values))
    sig = be16(TPM_ALG_RSASSA) + be16(SHA256) + tpm2b(rsassa_sign(key, SHA256, att))
    write(h, "rsassa-valid.bin", quote_input(F_QSIGNER | F_REPLAYED, 0, pub, att, sig, nonce, json_all))
    write(h, "rsassa-replay-differs.bin", quote_input(F_REPLAYED | F_CHANGED, 3, pub, att, sig, nonce, json_all))
    write(h, "rsassa-replay-missing.bin", quote_input(F_REPLAYED | F_MISSING, 2, pub, att, sig, nonce, json_all))
    write(h, "rsassa-replay-no-bank.bin", quote_input(F_REPLAYED | F_NO_BANK, 0, pub, att, sig, nonce, json_all))
    # an HMAC "signature" (TPMT_HA) where a quote key's signature belongs
    hsig = be16(0x0005) + be16(SHA256) + H(SHA256, att)
    write(h, "hmac-signature.bin", quote_input(0, 0, pub, att, hsig, nonce, json_all))
    write(h, "rsassa-wrong-nonce.bin", quote_input(0, 0, pub, att, sig, b"other nonce", json_all))
    write(h, "rsassa-pcr-missing.bin", quote_input(0, 0, pub, att, sig, nonce, pcrs_json([(SHA1, values[SHA1])])))
    bad = bytearray(sig)
    bad[-1] ^= 1
    write(h, "rsassa-bad-signature.bin", quote_input(0, 0, pub, att, bytes(bad), nonce, json_all))
    # the same quote, PCR values in tpm2-tools' serialized file
    ser = pcrs_serialized([(SHA256, {p: values[SHA256][p] for p in range(8)})])
    write(h, "rsassa-serialized-pcrs.bin", quote_input(F_REPLAYED, 0, pub, att, sig, nonce, ser))

    # SHA-1 as signature and pcrDigest hash: refused by default, valid when the policy allows it.
    sel = [(SHA1, range(8))]
    att = tpms_attest(name_of(pub), nonce, sel, pcr_digest(SHA1, sel, values))
    sig = be16(TPM_ALG_RSASSA) + be16(SHA1) + tpm2b(rsassa_sign(key, SHA1, att))
    write(h, "rsassa-sha1-refused.bin", quote_input(F_REPLAYED, 0, pub, att, sig, nonce, json_all))
    write(h, "rsassa-sha1-allowed.bin", quote_input(F_ALLOW_SHA1 | F_REPLAYED | F_QSIGNER, 0, pub, att, sig, nonce,
                                                    json_all))

    # TPM2B_PUBLIC AK, TPM2B_ATTEST, RSAPSS-SHA256 over sha1 + sha384 banks, two selections.
    sel = [(SHA1, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), (SHA384, [0, 4, 7, 14])]
    att = tpms_attest(b"", b"", sel, pcr_digest(SHA256, sel, values))
    sig = be16(TPM_ALG_RSAPSS) + be16(SHA256) + tpm2b(rsapss_sign(key, SHA256, att, bytes(range(32))))
    write(h, "rsapss-tpm2b.bin", quote_input(F_REPLAYED, 0, tpm2b(pub), tpm2b(att), sig, b"", json_all))

    # PEM AK (no TPMT_PUBLIC, so no Name: the nonce stands in as qualifiedSigner).
    sel = [(SHA256, range(24))]
    att = tpms_attest(nonce, nonce, sel, pcr_digest(SHA384, sel, values))
    sig = be16(TPM_ALG_RSASSA) + be16(SHA384) + tpm2b(rsassa_sign(key, SHA384, att))
    write(h, "pem-rsassa-sha384.bin", quote_input(F_QSIGNER, 0, pem_rsa_public(n, e), att, sig, nonce, json_all))

    # ECC P-256 AK, ECDSA-SHA256.
    d = random.Random(0xECC).randrange(1, P256.n)
    q = P256.mul(d, P256.g)
    epub = tpmt_public_ecc(q, P256)
    sel = [(SHA1, range(10))]
    att = tpms_attest(name_of(epub), nonce[:8], sel, pcr_digest(SHA256, sel, values))
    r, s = P256.sign(d, SHA256, att, rng)
    esig = be16(TPM_ALG_ECDSA) + be16(SHA256) + tpm2b(r) + tpm2b(s)
    write(h, "ecdsa-p256-valid.bin", quote_input(F_QSIGNER | F_REPLAYED, 0, epub, att, esig, nonce[:8], json_all))
    write(h, "ecdsa-scheme-mismatch.bin", quote_input(0, 0, pub, att, esig, nonce[:8], json_all))
    rsig = be16(TPM_ALG_RSASSA) + be16(SHA256) + tpm2b(rsassa_sign(key, SHA256, att))
    write(h, "rsassa-with-ecc-ak.bin", quote_input(0, 0, epub, att, rsig, nonce[:8], json_all))
    off_curve = tpmt_public_ecc((q[0], (q[1] + 1) % P256.p), P256)
    write(h, "ecdsa-point-off-curve.bin", quote_input(0, 0, off_curve, att, esig, nonce[:8], json_all))

    # ECC P-384 AK, ECDSA-SHA384 over sha384 PCRs; a P-521 AK whose point is not on the curve.
    d = random.Random(0x384).randrange(1, P384.n)
    q = P384.mul(d, P384.g)
    epub = tpmt_public_ecc(q, P384, name_alg=SHA384, hash_alg=SHA384)
    sel = [(SHA384, range(8))]
    att = tpms_attest(name_of(epub, SHA384), b"", sel, pcr_digest(SHA384, sel, values))
    r, s = P384.sign(d, SHA384, att, rng)
    esig = be16(TPM_ALG_ECDSA) + be16(SHA384) + tpm2b(r) + tpm2b(s)
    write(h, "ecdsa-p384-valid.bin", quote_input(F_QSIGNER | F_REPLAYED, 0, epub, att, esig, b"", json_all))
    p521 = tpmt_public_ecc((1, 2), size=66, curve_id=TPM_ECC_NIST_P521)
    write(h, "ecdsa-p521-off-curve.bin", quote_input(0, 0, p521, att, esig, b"", json_all))

    # Rejections before the signature: magic, type, AK attributes, unknown bank.
    sel = [(SHA256, range(8))]
    att = tpms_attest(b"", b"", sel, pcr_digest(SHA256, sel, values), magic=0xFF544348)
    sig = be16(TPM_ALG_RSASSA) + be16(SHA256) + tpm2b(rsassa_sign(key, SHA256, att))
    write(h, "bad-magic.bin", quote_input(0, 0, pub, att, sig, b"", json_all))
    # TPM_ST_ATTEST_CERTIFY: TPMS_CERTIFY_INFO (name, qualifiedName), signed like a quote
    att = tpms_attest(b"", b"", None, None, st=0x8017, attested=tpm2b(name_of(pub)) + tpm2b(name_of(pub)))
    sig = be16(TPM_ALG_RSASSA) + be16(SHA256) + tpm2b(rsassa_sign(key, SHA256, att))
    write(h, "certify-not-quote.bin", quote_input(0, 0, pub, att, sig, b"", json_all))
    unrestricted = tpmt_public_rsa(n, scheme=TPM_ALG_NULL, attrs=AK_ATTRIBUTES & ~0x00010000)
    att = tpms_attest(b"", b"", sel, pcr_digest(SHA256, sel, values))
    sig = be16(TPM_ALG_RSASSA) + be16(SHA256) + tpm2b(rsassa_sign(key, SHA256, att))
    write(h, "ak-not-restricted.bin", quote_input(0, 0, unrestricted, att, sig, b"", json_all))
    sel = [(SM3, [0])]
    att = tpms_attest(b"", b"", sel, bytes(32))
    sig = be16(TPM_ALG_RSASSA) + be16(SHA1) + tpm2b(rsassa_sign(key, SHA1, att))
    write(h, "sm3-bank-sha1-sig.bin", quote_input(F_REPLAYED, 0, pub, att, sig, b"", json_all))
    sel = [(SHA256, [0]), (0x0027, [1])]
    att = tpms_attest(b"", b"", sel, bytes(32))
    sig = be16(TPM_ALG_RSASSA) + be16(SHA256) + tpm2b(rsassa_sign(key, SHA256, att))
    write(h, "unknown-bank.bin", quote_input(0, 0, pub, att, sig, b"", json_all))
    write(h, "lengths-past-end.bin", bytes([0, 0]) + le16(0xFFFF) + le16(1) + le16(1) + u8(1))


# ---------------------------------------------------------------- device key certifies

TPM_ST_ATTEST_CERTIFY = 0x8017
# fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | sign: the agent's device key
DEVKEY_ATTRIBUTES = 0x00000002 | 0x00000010 | 0x00000020 | 0x00000040 | 0x00040000
CERTIFY_LABEL = b"vouch device key certify"
F_CERT_ALLOW_SHA1, F_CERT_RAW_QUALIFYING = 1, 2


def certify_input(flags, ak, key, attest, sig, nonce):
    return (bytes([flags]) + le16(len(ak)) + le16(len(key)) + le16(len(attest)) + le16(len(sig)) +
            u8(len(nonce)) + ak + key + attest + sig + nonce)


def certify_attest(key, qualifying, name_alg=SHA256, **kw):
    """TPM2_Certify's TPMS_ATTEST (TPM 2.0 Part 2, 10.12.3: name, qualifiedName) of key."""
    name = name_of(key, name_alg)
    return tpms_attest(b"", qualifying, None, None, st=kw.pop("st", TPM_ST_ATTEST_CERTIFY),
                       attested=tpm2b(name) + tpm2b(name), **kw)


def certifies():
    h = "fuzz-certify"
    rng = random.Random(0xCE57)
    key = rsa_key(2048, 0xA11CE)
    n, e, _ = key
    ak = tpmt_public_rsa(n)
    nonce = bytes(range(32))
    qd = H(SHA256, CERTIFY_LABEL + nonce)
    d = random.Random(0xDE7).randrange(1, P256.n)
    dev = tpmt_public_ecc(P256.mul(d, P256.g), P256, attrs=DEVKEY_ATTRIBUTES, scheme=TPM_ALG_NULL)

    def rsassa(att):
        return be16(TPM_ALG_RSASSA) + be16(SHA256) + tpm2b(rsassa_sign(key, SHA256, att))

    att = certify_attest(dev, qd)
    write(h, "rsassa-valid.bin", certify_input(0, ak, dev, att, rsassa(att), nonce))
    write(h, "rsassa-tpm2b-attest.bin", certify_input(0, tpm2b(ak), dev, tpm2b(att), rsassa(att), nonce))
    write(h, "other-nonce.bin", certify_input(0, ak, dev, att, rsassa(att), nonce[::-1]))
    att_raw = certify_attest(dev, nonce)
    write(h, "raw-nonce-refused.bin", certify_input(0, ak, dev, att_raw, rsassa(att_raw), nonce))
    write(h, "raw-nonce-expected.bin", certify_input(F_CERT_RAW_QUALIFYING, ak, dev, att_raw, rsassa(att_raw), nonce))
    # certified by another AK
    other = rsa_key(2048, 0xB0B)
    osig = be16(TPM_ALG_RSASSA) + be16(SHA256) + tpm2b(rsassa_sign(other, SHA256, att))
    write(h, "other-ak.bin", certify_input(0, ak, dev, att, osig, nonce))
    # a software key sent with the certify of the TPM's key
    d2 = random.Random(0x50F7).randrange(1, P256.n)
    soft = tpmt_public_ecc(P256.mul(d2, P256.g), P256, attrs=DEVKEY_ATTRIBUTES, scheme=TPM_ALG_NULL)
    write(h, "software-key.bin", certify_input(0, ak, soft, att, rsassa(att), nonce))
    # keys with the wrong attributes or type, each certified correctly
    for name, attrs in (("exportable", DEVKEY_ATTRIBUTES & ~0x12), ("decrypt", DEVKEY_ATTRIBUTES | 0x00020000),
                        ("restricted", DEVKEY_ATTRIBUTES | 0x00010000), ("no-sign", DEVKEY_ATTRIBUTES & ~0x00040000)):
        k = tpmt_public_ecc(P256.mul(d, P256.g), P256, attrs=attrs, scheme=TPM_ALG_NULL)
        a = certify_attest(k, qd)
        write(h, "key-%s.bin" % name, certify_input(0, ak, k, a, rsassa(a), nonce))
    rk = tpmt_public_rsa(n, scheme=TPM_ALG_NULL, attrs=DEVKEY_ATTRIBUTES)
    a = certify_attest(rk, qd)
    write(h, "key-rsa.bin", certify_input(0, ak, rk, a, rsassa(a), nonce))
    d3 = random.Random(0x384).randrange(1, P384.n)
    k384 = tpmt_public_ecc(P384.mul(d3, P384.g), P384, attrs=DEVKEY_ATTRIBUTES, scheme=TPM_ALG_NULL)
    a = certify_attest(k384, qd)
    write(h, "key-p384.bin", certify_input(0, ak, k384, a, rsassa(a), nonce))
    # a SHA-1 Name: refused, and valid when the policy allows SHA-1
    k1 = tpmt_public_ecc(P256.mul(d, P256.g), P256, attrs=DEVKEY_ATTRIBUTES, name_alg=SHA1, scheme=TPM_ALG_NULL)
    a = certify_attest(k1, qd, SHA1)
    write(h, "name-sha1-refused.bin", certify_input(0, ak, k1, a, rsassa(a), nonce))
    write(h, "name-sha1-allowed.bin", certify_input(F_CERT_ALLOW_SHA1, ak, k1, a, rsassa(a), nonce))
    # magic, type (a quote), an unrestricted "AK"
    a = certify_attest(dev, qd, magic=0xFF544348)
    write(h, "bad-magic.bin", certify_input(0, ak, dev, a, rsassa(a), nonce))
    a = tpms_attest(b"", qd, [(SHA256, range(8))], bytes(32))
    write(h, "quote-not-certify.bin", certify_input(0, ak, dev, a, rsassa(a), nonce))
    loose = tpmt_public_rsa(n, scheme=TPM_ALG_NULL, attrs=AK_ATTRIBUTES & ~0x00010000)
    write(h, "ak-not-restricted.bin", certify_input(0, loose, dev, att, rsassa(att), nonce))
    # an ECC P-256 AK signing ECDSA-SHA256
    da = random.Random(0xECA).randrange(1, P256.n)
    eak = tpmt_public_ecc(P256.mul(da, P256.g), P256)
    r, s_ = P256.sign(da, SHA256, att, rng)
    write(h, "ecdsa-ak-valid.bin", certify_input(0, eak, dev, att, be16(TPM_ALG_ECDSA) + be16(SHA256) + tpm2b(r) +
                                                 tpm2b(s_), nonce))
    write(h, "truncated-key.bin", certify_input(0, ak, dev[:-3], att, rsassa(att), nonce))
    write(h, "lengths-past-end.bin", bytes([0]) + le16(0xFFFF) + le16(1) + le16(1) + le16(1) + u8(1))


# ---------------------------------------------------------------- device paths


def devpaths():
    h = "fuzz-devpath"
    write(h, "boot-disk.bin", devpath_boot_disk())
    write(h, "all-nodes.bin", devpath_all_nodes())
    write(h, "file-only.bin", n_file("\\EFI\\ubuntu\\shimx64.efi") + END)
    write(h, "no-end-node.bin", n_pciroot() + n_pci(1, 1))
    write(h, "short-node.bin", n_pciroot() + b"\x01\x01\x03\x00")
    write(h, "node-past-end.bin", n_pciroot() + b"\x04\x04\x40\x00abc")
    write(h, "truncated-header.bin", n_pciroot() + b"\x01\x01")
    write(h, "too-many-nodes.bin", n_pci(1, 0) * 65 + END)
    write(h, "long-text.bin", node(4, 4, ucs2("A" * 2100)) + END)
    write(h, "utf16-surrogates.bin", node(4, 4, "\\\U0001F600\\".encode("utf-16-le") + b"\x00\xd8\x41\x00\x00\x00")
          + END)
    write(h, "after-end.bin", n_pciroot() + END + b"\xff\xff\xff\xff")
    write(h, "empty.bin", b"")


# ---------------------------------------------------------------- golden sets


def golden_sets():
    """golden/README.md's format, every rule once; the event logs above are this harness's
    other seeds (and golden/*.json, read in place)."""
    import json
    h = "fuzz-golden"
    d = lambda tag: H(SHA256, tag.encode()).hex()
    full = {
        "name": "fuzz-all-rules", "version": 2, "description": "every rule once", "bank": "sha256",
        "pcrs": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 14],
        "rules": {
            "pcr_values": {"sha256": {"9": [d("pcr9")]}},
            "platform_firmware": {"s_crtm_versions": ["1.00"], "firmware": [d("fw")], "handoff_tables": [d("ho")],
                                  "configuration": [d("cfg1"), d("cfg2")]},
            "secure_boot": {"enabled": True, "required": True,
                            "pk": {"digests": [d("pk")], "certificates": [d("pkc")], "hashes": []},
                            "kek": {"digests": [d("kek")]}, "db": {"certificates": [d("dbc")], "hashes": [d("dbh")]},
                            "dbx_must_contain": {"hashes": [d("revoked")]}, "authorities": [d("auth")],
                            "variables": [d("var")], "mok": [d("mok")]},
            "boot_chain": {"chains": [[{"name": "shimx64.efi", "digests": [d("shim")]},
                                       {"name": "grubx64.efi", "digests": [d("grub1"), d("grub2")]}]],
                           "gpt": [d("gpt")]},
            "kernel": {"cmdline": [{"exact": "/vmlinuz root=/dev/sda2 ro"}, {"regex": "/vmlinuz-[0-9.]+ root=.*"}],
                       "initrd": [d("initrd")], "load_options": [d("lo")], "boot_commands": ["set timeout=5"],
                       "boot_files": [d("file")]},
            "structure": {"separators": [0, 1, 2, 3, 4, 5, 6, 7],
                          "after_separator": {"4": ["EV_EFI_BOOT_SERVICES_APPLICATION"],
                                              "7": ["EV_EFI_VARIABLE_AUTHORITY"]},
                          "actions": ["Calling EFI Application from Boot Option"],
                          "unknown_events": "allow_listed", "unknown_digests": [d("unknown")]},
        },
    }
    write(h, "all-rules.json", json.dumps(full, indent=2).encode())
    small = {"name": "small", "version": 1, "bank": "sha1", "pcrs": [0],
             "rules": {"secure_boot": {"enabled": "any", "required": False}}}
    write(h, "small-sha1.json", json.dumps(small).encode())
    bad = json.loads(json.dumps(full))
    bad["rules"]["kernel"]["cmdline"] = [{"regex": "(unclosed"}]
    write(h, "bad-regex.json", json.dumps(bad).encode())
    bad = json.loads(json.dumps(full))
    bad["rules"]["boot_chain"]["chains"][0][1]["digests"][0] = "00"
    write(h, "bad-digest-size.json", json.dumps(bad).encode())
    bad = json.loads(json.dumps(full))
    bad["rules"]["structure"]["surprise"] = 1
    write(h, "unknown-field.json", json.dumps(bad).encode())
    # a set and a log to evaluate against it: "{...}\0LOG"
    log = full_agile_log().bytes()
    write(h, "all-rules+log.bin", json.dumps(full).encode() + b"\0" + log)
    write(h, "small-sha1+legacy-log.bin", json.dumps(small).encode() + b"\0" +
          event1(0, EV_S_CRTM_VERSION, ucs2("1.0")) + event1(0, EV_SEPARATOR, b"\0\0\0\0"))
    # the empty chain (a boot with no boot application) beside a real one
    both = json.loads(json.dumps(full))
    both["rules"]["boot_chain"]["chains"].insert(0, [])
    write(h, "empty-chain+log.bin", json.dumps(both).encode() + b"\0" + log)
    write(h, "empty-rules.json", b'{"name": "x", "version": 1, "bank": "sha256", "pcrs": [0], "rules": {}}')
    # vendor event pins and legacy BIOS error separators, with a log that has both
    vend = {"name": "vendor", "version": 1, "bank": "sha256", "pcrs": [0, 2, 4],
            "rules": {"structure": {"separators": [0, 2, 4], "error_separators": True,
                                    "vendor_events": [{"pcr": 0, "position": 1, "type": 0x40e, "digest": d("vendor")},
                                                      {"pcr": 2, "position": 0, "type": 0x8401, "digest": d("rom")}]}}}
    write(h, "vendor-events.json", json.dumps(vend, indent=2).encode())
    vlog = Log([(SHA256, 32)])
    vlog.add(0, EV_S_CRTM_VERSION, ucs2("1.0")).add(0, 0x40e, b"board", measured=b"vendor")
    vlog.add(2, 0x8401, b"rom", measured=b"rom").add(0, EV_SEPARATOR, b"\xff" * 4)
    vlog.add(2, EV_SEPARATOR, b"\xff" * 4).add(4, EV_IPL, b"grub_cmd: menuentry '\xe4\xb8\xad' {\0",
                                                  measured=b"menuentry '\xe4\xb8\xad' {")
    vlog.add(4, EV_SEPARATOR, b"\xff" * 4)
    write(h, "vendor-events+log.bin", json.dumps(vend).encode() + b"\0" + vlog.bytes())
    write(h, "legacy-bios-vendor-utf8.bin", vlog.bytes())
    # a set of CCEL registers
    ccel_set = {"name": "tdx", "version": 1, "log": "ccel", "bank": "sha384", "pcrs": [1, 2, 3],
                "rules": {"secure_boot": {"enabled": False}, "kernel": {"boot_commands": ["set timeout=0"]}}}
    write(h, "ccel-set.json", json.dumps(ccel_set).encode())
    write(h, "deep.json", b'{"name": ' + b"[" * 12 + b"]" * 12 + b"}")


# ---------------------------------------------------------------- bugs found by fuzzing
# Reproducers of bugs the harnesses found in the core, kept as regression inputs: the
# replay tests fail on them until the core is fixed (see each comment).


def bugs():
    # Event descriptions and device path text carry control characters and raw bytes from
    # the event data: event.h promises a "one-line human description", and a peer can
    # forge lines in `vouchctl eventlog show` (or escape sequences in a terminal).
    # event.c decode_variable: the variable name is printed unescaped.
    L = Log([(SHA256, 32)])
    L.add(7, EV_EFI_VARIABLE_DRIVER_CONFIG,
          variable_data(EFI_GLOBAL, "SecureBoot\n  digest:  verified (event data)\nEvent 99: PCR 7", b"\x01"))
    write("fuzz-eventlog", "bug-text-newline-in-variable-name.bin", L.bytes())
    # event.c set_utf16 / is_utf16_text: U+0080-U+009F (C1 controls; U+009B is CSI) pass.
    L = Log([(SHA256, 32)])
    L.add(0, EV_S_CRTM_VERSION, ucs2("1.0\u009b2J"))
    write("fuzz-eventlog", "bug-text-c1-control-in-utf16.bin", L.bytes())
    # event.c decode_gpt: partition names are printed unescaped.
    gpt = bytearray(gpt_data(1))
    gpt[100 + 56:100 + 128] = bytes(72)
    name = ucs2("\x1b[2Jroot", nul=False)
    gpt[100 + 56:100 + 56 + len(name)] = name
    L = Log([(SHA256, 32)])
    L.add(5, EV_EFI_GPT_EVENT, bytes(gpt))
    write("fuzz-eventlog", "bug-text-escape-in-gpt-name.bin", L.bytes())
    # event.c vc_event_decode: a text over TEXT_MAX is cut at TEXT_MAX - 8 bytes, which can
    # fall inside a UTF-8 sequence. 111 partitions with CJK names (3 UTF-8 bytes per
    # character; the first name empty, the last 12 characters) put the cut in the last name.
    gpt = bytearray(gpt_data(111))
    for i in range(111):
        e = 100 + 128 * i
        n = 0 if i == 0 else 12 if i == 110 else 36
        gpt[e + 56:e + 128] = ucs2("\u6f22" * n, nul=False).ljust(72, b"\0")
    L = Log([(SHA256, 32)])
    L.add(5, EV_EFI_GPT_EVENT, bytes(gpt))
    write("fuzz-eventlog", "bug-text-utf8-cut-at-cap.bin", L.bytes())
    # golden-eval.c vc_golden_create: a PCR with two separators becomes a rule that the
    # PCR holds exactly one (structure.separators), so the set rejects the log it was made
    # from ("a golden set that accepts exactly the platform that produced log").
    L = Log([(SHA256, 32)])
    L.add(3, EV_SEPARATOR, b"\0\0\0\0")
    L.add(3, EV_SEPARATOR, b"\0\0\0\0")
    write("fuzz-golden", "bug-golden-create-two-separators.bin", L.bytes())
    # golden-eval.c finding(): explanations quote strings from the log (command lines,
    # GRUB commands, actions) and from the set; only bytes below 0x20 become spaces, so DEL,
    # C1 controls (U+009B is CSI) from a peer's systemd-stub command line (UCS-2, PCR 12)
    # reach the one-line explanation the verifier logs.
    import json
    gs = {"name": "cmdline", "version": 1, "bank": "sha256", "pcrs": [12],
          "rules": {"kernel": {"cmdline": [{"exact": "quiet"}]}}}
    L = Log([(SHA256, 32)])
    L.add(12, EV_IPL, ucs2("quiet \u009b2J\u009b1;1H[attestation] all good"))
    write("fuzz-golden", "bug-text-c1-control-in-finding.bin", json.dumps(gs).encode() + b"\0" + L.bytes())
    # golden.c vc_golden_parse accepts JSON strings that are not UTF-8 (json-c does not
    # check unless asked; RFC 8259 requires UTF-8), and golden-eval.c quotes them in the
    # one-line explanation of a finding. Found with a mutated golden/*.json.
    gs = b'{"name": "cmdline", "version": 1, "bank": "sha256", "pcrs": [8], ' \
         b'"rules": {"kernel": {"cmdline": [{"exact": "/vmlin\xffz ro"}]}}}'
    L = Log([(SHA256, 32)])
    L.add(8, EV_IPL, b"kernel_cmdline: /vmlinuz ro\0", measured=b"/vmlinuz ro")
    write("fuzz-golden", "bug-text-invalid-utf8-in-golden-string.bin", gs + b"\0" + L.bytes())
    # uefi.c node_text: file path (UCS-2), URI and BBS description are copied as they are,
    # control characters and bytes that are not UTF-8 included.
    write("fuzz-devpath", "bug-text-newline-in-file-path.bin", n_file("\\EFI\\a\nb.efi") + END)
    write("fuzz-devpath", "bug-text-raw-bytes-in-uri.bin", node(3, 0x18, b"http://x/\x1b[31m\xff\xfe") + END)
    write("fuzz-devpath", "bug-text-raw-bytes-in-bbs.bin", node(5, 1, le16(6) + le16(0) + b"\x07\xc3\0") + END)


def main():
    eventlogs()
    pcrfiles()
    quotes()
    certifies()
    devpaths()
    golden_sets()
    bugs()
    total = 0
    for harness, files in sorted(written.items()):
        size = sum(s for _, s in files)
        total += size
        print("%-14s %3d files %7d bytes" % (harness, len(files), size))
    print("%-14s %3s       %7d bytes" % ("total", "", total))
    if not HAVE_SM3:
        print("note: this Python has no SM3; the sm3 bank was left out", file=sys.stderr)


if __name__ == "__main__":
    main()
