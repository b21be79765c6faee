#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A relying party with PyJWT (Debian python3-jwt) and nothing of vouch's: the JWK Set of
GET /.well-known/jwks.json and the EAR tokens of ?format=ear, as test-api-handle's test_jwks
leaves them (VOUCH_JOSE_OUT): a key rotated, the token before it signed by the old key,
the one after by the new. Each token is verified with the key its kid selects (jwt.PyJWKSet,
no PyJWKClient), alg ES256 only, typ eat+jwt, iss the verifier id; each kid is the RFC 7638
thumbprint computed here. Usage: test-jose.py TEST-API-HANDLE-BINARY"""
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile

try:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec
except ImportError as e:
    sys.exit(f"test-jose: {e} (apt-get install python3-jwt python3-cryptography)")

failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def thumbprint(pub):
    """RFC 7638: the required members of an EC key, sorted, no whitespace, SHA-256."""
    n = pub.public_numbers()
    members = {"crv": "P-256", "kty": "EC", "x": b64url(n.x.to_bytes(32, "big")), "y": b64url(n.y.to_bytes(32, "big"))}
    canon = json.dumps(members, sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(canon.encode()).digest())


def verify(token, keyset, issuer):
    """What a relying party does: the header's alg and typ, the key by kid, the claims."""
    h = jwt.get_unverified_header(token)
    if h.get("alg") != "ES256" or h.get("typ") != "eat+jwt":
        raise jwt.InvalidTokenError(f"header {h}")
    k = keyset[h["kid"]]  # KeyError: no such key
    # the tokens were made under test-api-handle's fake clock (2027-01-15): exp and iat
    # are checked against each other below, not against today
    return jwt.decode(token, key=k.key, algorithms=["ES256"], issuer=issuer,
                      options={"require": ["iss", "iat", "exp"], "verify_exp": False, "verify_iat": False})


def main():
    with tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, VOUCH_JOSE_OUT=out)
        r = subprocess.run([sys.argv[1]], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            print(r.stdout)
            sys.exit("test-jose: test-api-handle failed")

        def read(name):
            with open(os.path.join(out, name)) as f:
                return f.read()
        jwks_text, old, new, issuer = read("jwks.json"), read("ear-old.jwt"), read("ear-new.jwt"), read("issuer")

    raw = json.loads(jwks_text)["keys"]
    keyset = jwt.PyJWKSet.from_json(jwks_text)
    check(len(raw) == 2 and len(keyset.keys) == 2, "the JWK Set after a rotation: two keys, both usable by PyJWT")
    kids = [k.key_id for k in keyset.keys]
    check(len(set(kids)) == 2, "kids are distinct")
    for k, j in zip(keyset.keys, raw):
        check(isinstance(k.key, ec.EllipticCurvePublicKey) and k.key.curve.name == "secp256r1",
              f"{k.key_id}: an EC P-256 public key")
        check(j["alg"] == "ES256" and j["use"] == "sig" and k.Algorithm is not None, f"{k.key_id}: alg ES256, use sig")
        check(k.key_id == thumbprint(k.key), f"{k.key_id}: kid is the RFC 7638 thumbprint")

    for name, token, want in (("before the rotation", old, kids[1]), ("after the rotation", new, kids[0])):
        h = jwt.get_unverified_header(token)
        check(h == {"alg": "ES256", "typ": "eat+jwt", "kid": want}, f"token {name}: header {h}")
        try:
            c = verify(token, keyset, issuer)
            check(c["iss"] == issuer and c["exp"] > c["iat"] and
                  c["submods"]["vouch-tpm"]["ear.status"] == "affirming",
                  f"token {name}: verifies with the key of its kid; iss, exp > iat, affirming")
        except Exception as e:  # noqa: BLE001 (any failure is the test's)
            check(False, f"token {name}: {type(e).__name__}: {e}")

    # what must not verify
    def refused(what, fn, exc):
        try:
            fn()
            check(False, f"{what}: accepted")
        except exc:
            check(True, f"{what}: refused ({exc.__name__})")
    refused("another issuer", lambda: verify(new, keyset, "someone-else"), jwt.InvalidIssuerError)
    hd, pl, sig = new.split(".")
    refused("a changed signature", lambda: verify(f"{hd}.{pl}.{sig[:-4]}AAAA", keyset, issuer),
            jwt.InvalidSignatureError)
    refused("the new token with the old key", lambda: jwt.decode(new, key=keyset[kids[1]].key, algorithms=["ES256"],
                                                                 options={"verify_exp": False, "verify_iat": False}),
            jwt.InvalidSignatureError)
    refused("an unknown kid", lambda: verify(old.replace(old.split(".")[0], b64url(
        json.dumps({"alg": "ES256", "typ": "eat+jwt", "kid": "x" * 43}).encode())), keyset, issuer), KeyError)
    refused("typ JWT", lambda: verify(old.replace(old.split(".")[0], b64url(
        json.dumps({"alg": "ES256", "typ": "JWT", "kid": kids[1]}).encode())), keyset, issuer), jwt.InvalidTokenError)
    refused("only ES256", lambda: jwt.decode(new, key=keyset[kids[0]].key, algorithms=["RS256"], issuer=issuer,
                                             options={"verify_exp": False}), jwt.InvalidAlgorithmError)

    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
