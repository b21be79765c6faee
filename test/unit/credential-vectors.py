#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""How the known answers of test-credential.c were made (run once; its output is pasted
into the test). An implementation of TPM2_MakeCredential written apart from
verifier/core/credential.c, from the specifications only, with python3-cryptography:

  TPM 2.0 Part 1, 24 "Credential Protection" (24.4 symmetric encryption, 24.5 HMAC),
  11.4.10.2 KDFa (SP800-108 counter mode, HMAC), 11.4.10.3 KDFe (SP800-56A concatenation),
  Annex B.10 (RSA secret sharing: the seed in RSAES-OAEP, label "IDENTITY\\0"),
  Annex C.6 (ECC secret sharing: one-pass Diffie-Hellman with an ephemeral key);
  RFC 8017 7.1.1 (EME-OAEP), B.2.1 (MGF1); FIPS 186-4 B.4.1 (a private key from random
  bits with 64 extra bits: d = (c mod (n - 1)) + 1).

The random input is fixed (the same bytes the test puts in its vc_credential_random).
Each vector is then undone with the EK's private key, the way TPM2_ActivateCredential
does it (cryptography's own OAEP decryption and ECDH), and the secret must come back.
The keys below are test keys made for this file and protect nothing.
"""
import hashlib
import hmac
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

try:  # where cryptography >= 47 keeps CFB
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:
    from cryptography.hazmat.primitives.ciphers.modes import CFB

EK_RSA_PEM = b"""-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQC8oYh0b4Mfmazz
KcCx0MTXoEapwV3Ce6kRrCdl5LOPs8Afw7e1MFA1t0sMvk/5GzNeCcKO7RPNlJyR
TiA63zJrFkfLPM7eI35nTF/fO4rA434JDcjASMf4z3TmXUkejkr23PRcLzTY33V0
JgWWj9L9M/3n1Ufu5XdVzoGjIZ8khaAkeYCUq0VjpNPVsYpc0wxWYEYnWaeWnoHd
l5detouE0iQ8CkAsGK2AijSBgUvZ4AySyNwD+SOI24bpiyRnPYwVY6OOGfh03Q6D
Ty6ZTqGoIfLzwXrGv9J0a3F6wC/BEBzHOEc8uy4fY98nUg/ZrB4AmWm6gMJSYULV
dVQwthnbAgMBAAECggEAU04HZFynDPqiXdVPq3fmps+6xVeHX8+bEBn2YFKLVmhs
7dpStGs80Sw8sckOqpXvrpUi3lonR8BdEPLu2vEdZBu34zLcrVABj/8zy/OQyLTv
QXJb+UdrQR/loaMLGrp+st1L8bZLYYf2aDAugZrM9FPUy2Du3rtqY3PK3s+HZ+n0
B1UQSbdySmP+BkQ5vH19REfqkCXquiXuMVnev+iXCCRSWvZq+hRZ7mNSggU/k1+b
cYUALCADr72lE5Civ6OonPqTv0fjuNy8dRg48HN/+giZm4F1yhGLPJFhIh06yGOc
ajI0EUG5Y+OX+64V2LAD6sBzDafyXyp8nmlWhKzeEQKBgQD4lhnhforriwwvBcsf
W4DaTcX/E7ojQwxKseXk35AW3new/y1IM/1CARugPH6UXE5LXfZc2w8ZfmukWdns
JRdOaoPOwjhzbDFOq3e3f3zieWc8h6J+bXJq/lCUubgFlBDGgFD/q9aRj4Hl94On
jb9BKiQsIyolkO4G+HpUwFlXswKBgQDCQa/SeAQZnYbsdD8LaUYmlxo0LufVoPxB
PhvajHV6J1zp2up7+di/FcbKfrwsP1oqaoipYDGR9q7suy07ebyGCAlnr6RkXNy0
FvQPi/x/5qD+nTOA4tRyS6KAqifUpfUvSkAN4AEYcriSOpZzEBuhJ2dmYhv6kH6V
drKVq66hOQKBgCwg6UNAZYTe0DDgxGgypDMcr1NSuy5bTqlL31W74iZNI85F3lH8
+K5o5/CQDKBlqnhym7NsJ8gMyysH0Em9Y9/FxNRFYiQLRs2CXuQyO4cwqgTyxwPO
hgs8Ti24slQ7LqcuTDK23IZGhXa/c52g6hy1UGqNa4PzsG2IWp8E7ldFAoGAF41z
TedzR8/LrhuiETYgZUloye7t+P7d1uM66VKiY78mCsyaJZHzb6eqRJ79HbhIrF/i
Vfbty67HIrjHETD/ZJjQ2xt2qRyBPeyShtgIM1G5L2XL+tKFw53cBBGdZrEAe01b
WtNQDrDKJCCqYSUQ1Ic8iDNZBRZD4sdTe8YnFDECgYBWYWAbhfHEj6Vq5RbTKvfj
Zp4N4pVrvsrYQIpgiGl3AXTIyPrCM2pvJWPwmHXbeMTl3e78SB+pOyzEa9ZwEUtI
qTgY1b9LSpU8KRaTGmc58GU5nNdZsDMASpR7/xFoemHnRM/AcDX16UVmIQo4b0vG
d/KohwqIrM77B9XxkFwlOA==
-----END PRIVATE KEY-----
"""

HASHES = {  # TPM_ALG_ID: (hashlib name, cryptography hash)
    0x000B: ("sha256", hashes.SHA256),
    0x000C: ("sha384", hashes.SHA384),
    0x000D: ("sha512", hashes.SHA512),
}
CURVES = {  # TPM_ECC_CURVE: (cryptography curve, coordinate bytes, group order n, FIPS 186-4 D.1.2)
    0x0003: (ec.SECP256R1(), 32, 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551),
    0x0004: (ec.SECP384R1(), 48,
             0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973),
    0x0005: (ec.SECP521R1(), 66,
             0x01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409),
}


def fixed(tag, n):
    """n bytes, a function of tag only."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha512(b"vouch credential test " + tag + bytes([i])).digest()
        i += 1
    return out[:n]


# The test's vc_credential_random: seed[64], oaep_seed[64], ecc_key[74].
RND_SEED = fixed(b"seed", 64)
RND_OAEP = fixed(b"oaep", 64)
RND_ECC = fixed(b"ecc", 74)
AK_NAME = b"\x00\x0b" + hashlib.sha256(b"vouch test AK").digest()


def H(alg, data):
    return hashlib.new(HASHES[alg][0], data).digest()


def kdfa(alg, key, label, u, v, bits):
    out, i = b"", 1
    while len(out) * 8 < bits:
        msg = struct.pack(">I", i) + label + b"\0" + u + v + struct.pack(">I", bits)
        out += hmac.new(key, msg, HASHES[alg][0]).digest()
        i += 1
    return out[: bits // 8]


def kdfe(alg, z, label, u, v, bits):
    out, i = b"", 1
    while len(out) * 8 < bits:
        out += H(alg, struct.pack(">I", i) + z + label + b"\0" + u + v)
        i += 1
    return out[: bits // 8]


def mgf1(alg, seed, n):
    out, i = b"", 0
    while len(out) < n:
        out += H(alg, seed + struct.pack(">I", i))
        i += 1
    return out[:n]


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def oaep_encrypt(alg, pub, label, m, oseed):
    nums = pub.public_numbers()
    k = (nums.n.bit_length() + 7) // 8
    hlen = len(H(alg, b""))
    db = H(alg, label) + b"\0" * (k - len(m) - 2 * hlen - 2) + b"\x01" + m
    masked_db = xor(db, mgf1(alg, oseed[:hlen], k - hlen - 1))
    masked_seed = xor(oseed[:hlen], mgf1(alg, masked_db, hlen))
    em = int.from_bytes(b"\0" + masked_seed + masked_db, "big")
    return pow(em, nums.e, nums.n).to_bytes(k, "big")


def tpm2b(b):
    return struct.pack(">H", len(b)) + b


def wrap(alg, key_bits, seed, name, secret):
    """Part 1, 24.4 and 24.5: TPM2B_DIGEST(outerHMAC) || encIdentity."""
    sym = kdfa(alg, seed, b"STORAGE", name, b"", key_bits)
    enc = Cipher(algorithms.AES(sym), CFB(b"\0" * 16)).encryptor()
    enc_identity = enc.update(tpm2b(secret)) + enc.finalize()
    hkey = kdfa(alg, seed, b"INTEGRITY", b"", b"", len(H(alg, b"")) * 8)
    outer = hmac.new(hkey, enc_identity + name, HASHES[alg][0]).digest()
    return tpm2b(outer) + enc_identity


def unwrap(alg, key_bits, seed, name, blob):
    """What TPM2_ActivateCredential does with the seed it recovered."""
    dlen = struct.unpack(">H", blob[:2])[0]
    outer, enc_identity = blob[2 : 2 + dlen], blob[2 + dlen :]
    hkey = kdfa(alg, seed, b"INTEGRITY", b"", b"", len(H(alg, b"")) * 8)
    assert hmac.compare_digest(outer, hmac.new(hkey, enc_identity + name, HASHES[alg][0]).digest())
    sym = kdfa(alg, seed, b"STORAGE", name, b"", key_bits)
    dec = Cipher(algorithms.AES(sym), CFB(b"\0" * 16)).decryptor()
    plain = dec.update(enc_identity) + dec.finalize()
    assert struct.unpack(">H", plain[:2])[0] == len(plain) - 2
    return plain[2:]


def rsa_vector(alg, key_bits, secret):
    priv = serialization.load_pem_private_key(EK_RSA_PEM, None)
    hlen = len(H(alg, b""))
    seed = RND_SEED[:hlen]
    enc_secret = oaep_encrypt(alg, priv.public_key(), b"IDENTITY\0", seed, RND_OAEP)
    blob = wrap(alg, key_bits, seed, AK_NAME, secret)
    # undone with cryptography's own RSAES-OAEP
    h = HASHES[alg][1]()
    got = priv.decrypt(enc_secret, padding.OAEP(padding.MGF1(HASHES[alg][1]()), h, b"IDENTITY\0"))
    assert got == seed and unwrap(alg, key_bits, got, AK_NAME, blob) == secret
    return {"blob": blob, "secret": enc_secret}


def ecc_private(curve_id, tag):
    curve, size, order = CURVES[curve_id]
    d = int.from_bytes(fixed(tag, size + 8), "big") % (order - 1) + 1
    return ec.derive_private_key(d, curve)


def coords(key, size):
    nums = key.public_numbers()
    return nums.x.to_bytes(size, "big"), nums.y.to_bytes(size, "big")


def ecc_vector(curve_id, alg, key_bits, secret):
    curve, size, order = CURVES[curve_id]
    ek = ecc_private(curve_id, b"EK %d" % curve_id)
    ek_x, ek_y = coords(ek.public_key(), size)
    d = int.from_bytes(RND_ECC[: size + 8], "big") % (order - 1) + 1
    eph = ec.derive_private_key(d, curve)
    eph_x, eph_y = coords(eph.public_key(), size)
    z = eph.exchange(ec.ECDH(), ek.public_key())
    seed = kdfe(alg, z, b"IDENTITY", eph_x, ek_x, len(H(alg, b"")) * 8)
    blob = wrap(alg, key_bits, seed, AK_NAME, secret)
    # undone with the EK's private key
    z2 = ek.exchange(ec.ECDH(), eph.public_key())
    seed2 = kdfe(alg, z2, b"IDENTITY", eph_x, ek_x, len(H(alg, b"")) * 8)
    assert unwrap(alg, key_bits, seed2, AK_NAME, blob) == secret
    return {"x": ek_x, "y": ek_y, "blob": blob, "secret": tpm2b(eph_x) + tpm2b(eph_y)}


def c_str(b, indent):
    s = b.hex()
    lines = [s[i : i + 96] for i in range(0, len(s), 96)]
    return "\n".join(indent + '"%s"' % l for l in lines)


def c_hex(name, b):
    return "                .%s =\n%s,\n" % (name, c_str(b, " " * 24))


def main():
    out = sys.stdout
    out.write("/* made by test/unit/credential-vectors.py */\n")
    for label, b in (("rnd_seed", RND_SEED), ("rnd_oaep", RND_OAEP), ("rnd_ecc", RND_ECC), ("ak_name", AK_NAME)):
        out.write("static const char %s[] =\n%s;\n" % (label, c_str(b, " " * 8)))
    n = serialization.load_pem_private_key(EK_RSA_PEM, None).public_key().public_numbers().n
    out.write("static const char ek_rsa_n[] =\n%s;\n" % c_str(n.to_bytes(256, "big"), " " * 8))
    out.write("static const vector vectors[] = {\n")
    vectors = [
        ("RSA 2048, SHA-256, AES-128", "rsa", 0x000B, 128, fixed(b"secret 1", 32), None),
        ("RSA 2048, SHA-384, AES-256", "rsa", 0x000C, 256, fixed(b"secret 2", 48), None),
        ("ECC P-256, SHA-256, AES-128", "ecc", 0x000B, 128, fixed(b"secret 3", 32), 0x0003),
        ("ECC P-384, SHA-384, AES-256", "ecc", 0x000C, 256, fixed(b"secret 4", 20), 0x0004),
        ("ECC P-521, SHA-512, AES-256", "ecc", 0x000D, 256, fixed(b"secret 5", 64), 0x0005),
    ]
    for title, kind, alg, key_bits, secret, curve in vectors:
        v = rsa_vector(alg, key_bits, secret) if kind == "rsa" else ecc_vector(curve, alg, key_bits, secret)
        out.write("        {\n                .what = \"%s\",\n" % title)
        out.write("                .type = TPM2_ALG_%s, .name_alg = 0x%04x, .key_bits = %d, .curve = 0x%04x,\n"
                  % (kind.upper(), alg, key_bits, curve or 0))
        if kind == "rsa":
            out.write("                .n = ek_rsa_n,\n")
        else:
            out.write(c_hex("x", v["x"]) + c_hex("y", v["y"]))
        out.write(c_hex("secret", secret) + c_hex("blob", v["blob"]) + c_hex("enc_secret", v["secret"]))
        out.write("        },\n")
    out.write("};\n")


if __name__ == "__main__":
    main()
