// SPDX-License-Identifier: Apache-2.0
// A relying party with the npm package jose (pinned in package-lock.json, installed here by
// `npm ci`) and nothing of vouch's: the JWK Set of GET /.well-known/jwks.json and the EAR
// tokens of ?format=ear, as test-api-handle's test_jwks leaves them (VOUCH_JOSE_OUT): a key
// rotated, the token before it signed by the old key, the one after by the new. The tokens
// are verified the way jose's documentation says (createLocalJWKSet + jwtVerify): the key
// their kid selects, alg ES256 only, typ eat+jwt, iss the verifier id; each kid is checked
// against jose's RFC 7638 thumbprint. The twin of test/unit/test-jose.py (PyJWT).
// Usage: node test-jose.mjs TEST-API-HANDLE-BINARY
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let jose;
try {
        jose = await import('jose');
} catch (e) {
        console.error(`test-jose.mjs: npm jose is not installed (cd test/jose-node && npm ci): ${e.message}`);
        process.exit(process.env.CI === 'true' ? 1 : 77);
}
const {
        SignJWT, calculateJwkThumbprint, createLocalJWKSet, decodeJwt, decodeProtectedHeader,
        exportJWK, generateKeyPair, importJWK, jwtVerify,
} = jose;

// the version the lock file pins, not whatever an `npm install` left
const here = new URL('.', import.meta.url);
const pinned = JSON.parse(readFileSync(new URL('package-lock.json', here))).packages['node_modules/jose'].version;
const installed = JSON.parse(readFileSync(new URL('node_modules/jose/package.json', here))).version;
if (installed !== pinned) {
        console.error(`test-jose.mjs: jose ${installed} is installed, the lock file pins ${pinned} (cd test/jose-node && npm ci)`);
        process.exit(1);
}
console.log(`node ${process.version}, jose ${installed}`);

let failures = 0;
function check(ok, what) {
        console.log((ok ? 'ok   ' : 'FAIL ') + what);
        if (!ok)
                failures++;
}

const b64url = (s) => Buffer.from(s).toString('base64url');

// test-api-handle leaves the JWK Set, the two tokens and the issuer in a temp dir
if (process.argv.length !== 3) {
        console.error('usage: node test-jose.mjs TEST-API-HANDLE-BINARY');
        process.exit(2);
}
const out = mkdtempSync(join(tmpdir(), 'vouch-jose-node.'));
let jwksText, oldEar, newEar, issuer;
try {
        const r = spawnSync(process.argv[2], [], {
                env: { ...process.env, VOUCH_JOSE_OUT: out }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
        });
        if (r.status !== 0) {
                console.log(r.stdout, r.stderr, r.error ?? '');
                console.error(`test-jose.mjs: test-api-handle failed (${r.status ?? r.signal})`);
                process.exit(1);
        }
        const read = (name) => readFileSync(join(out, name), 'utf8');
        [jwksText, oldEar, newEar, issuer] = ['jwks.json', 'ear-old.jwt', 'ear-new.jwt', 'issuer'].map(read);
} finally {
        rmSync(out, { recursive: true, force: true });
}

// the JWK Set after a rotation: the new key first, the old one still published
const jwks = JSON.parse(jwksText);
const keyset = createLocalJWKSet(jwks);
const raw = jwks.keys;
check(Array.isArray(raw) && raw.length === 2, 'the JWK Set after a rotation: two keys');
const kids = raw.map((k) => k.kid);
check(new Set(kids).size === 2, 'kids are distinct');
for (const k of raw) {
        check(k.kty === 'EC' && k.crv === 'P-256' && k.alg === 'ES256' && k.use === 'sig' && !('d' in k),
                `${k.kid}: an EC P-256 public key, alg ES256, use sig`);
        const key = await importJWK(k, 'ES256');
        check(key.type === 'public' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1',
                `${k.kid}: jose imports it as a P-256 public key`);
        check(k.kid === await calculateJwkThumbprint(k, 'sha256'), `${k.kid}: kid is the RFC 7638 thumbprint`);
}

// What a relying party does. The tokens were made under test-api-handle's fake clock
// (2027-01-15): jose checks exp against the token's own iat (exp > iat, as test-jose.py
// does), not against today.
const options = (token, more = {}) => ({
        algorithms: ['ES256'], typ: 'eat+jwt', issuer, requiredClaims: ['iss', 'iat', 'exp'],
        currentDate: new Date(decodeJwt(token).iat * 1000), ...more,
});
const verify = (token, keys = keyset, more = {}) => jwtVerify(token, keys, options(token, more));

for (const [name, token, want] of [['before the rotation', oldEar, kids[1]], ['after the rotation', newEar, kids[0]]]) {
        const h = decodeProtectedHeader(token);
        check(JSON.stringify(h) === JSON.stringify({ alg: 'ES256', typ: 'eat+jwt', kid: want }),
                `token ${name}: header ${JSON.stringify(h)}`);
        try {
                const { payload: c, protectedHeader } = await verify(token);
                check(c.iss === issuer && c.exp > c.iat && protectedHeader.kid === want &&
                        c.submods?.['vouch-tpm']?.['ear.status'] === 'affirming',
                `token ${name}: verifies with the key of its kid; iss, exp > iat, affirming`);
        } catch (e) {
                check(false, `token ${name}: ${e.code ?? e.name}: ${e.message}`);
        }
}

// what must not verify, each for its own reason (jose's error code, and the claim for
// claim failures)
async function refused(what, fn, code, claim) {
        try {
                await fn();
                check(false, `${what}: accepted`);
        } catch (e) {
                check(e.code === code && (claim === undefined || e.claim === claim),
                        `${what}: refused (${e.code ?? e.name}${e.claim ? ' ' + e.claim : ''}: ${e.message})`);
        }
}
const [hd, pl, sig] = newEar.split('.');
const withHeader = (token, header) => [b64url(JSON.stringify(header)), ...token.split('.').slice(1)].join('.');

await refused('another issuer', () => verify(newEar, keyset, { issuer: 'someone-else' }),
        'ERR_JWT_CLAIM_VALIDATION_FAILED', 'iss');
await refused('a changed signature', () => verify(`${hd}.${pl}.${sig.slice(0, -4)}${sig.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`),
        'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
await refused('a changed payload', () => verify(`${hd}.${b64url(JSON.stringify({ ...decodeJwt(newEar), iss: issuer + 'x' }))}.${sig}`,
        keyset, { issuer: issuer + 'x' }), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
const oldKey = await importJWK(raw[1], 'ES256');
await refused('the new token with the old key', () => verify(newEar, oldKey), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
await refused('an unknown kid', () => verify(withHeader(oldEar, { alg: 'ES256', typ: 'eat+jwt', kid: 'x'.repeat(43) })),
        'ERR_JWKS_NO_MATCHING_KEY');
await refused('past its exp', () => verify(newEar, keyset, { currentDate: new Date(decodeJwt(newEar).exp * 1000) }),
        'ERR_JWT_EXPIRED', 'exp');
await refused('only ES256 (the real token, RS256 asked for)', () => verify(newEar, keyset, { algorithms: ['RS256'] }),
        'ERR_JOSE_ALG_NOT_ALLOWED');
await refused('alg HS256 with the public key as the secret', async () => {
        const t = await new SignJWT(decodeJwt(newEar)).setProtectedHeader({ alg: 'HS256', typ: 'eat+jwt', kid: kids[0] })
                .sign(Buffer.from(jwksText));
        return verify(t);
}, 'ERR_JOSE_ALG_NOT_ALLOWED');
await refused('alg none', () => verify(`${b64url(JSON.stringify({ alg: 'none', typ: 'eat+jwt', kid: kids[0] }))}.${pl}.`),
        'ERR_JOSE_ALG_NOT_ALLOWED');

// typ is checked after the signature: a forged header fails the signature first, so the
// typ check is shown on a token correctly signed by a key of this test's own, added to
// the set; the same token with typ JWT asked for verifies (the control)
const { privateKey, publicKey } = await generateKeyPair('ES256');
const extra = { ...await exportJWK(publicKey), alg: 'ES256', use: 'sig' };
extra.kid = await calculateJwkThumbprint(extra, 'sha256');
const withExtra = createLocalJWKSet({ keys: [...raw, extra] });
const plainJwt = await new SignJWT(decodeJwt(oldEar)).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: extra.kid })
        .sign(privateKey);
await refused('typ JWT', () => verify(plainJwt, withExtra), 'ERR_JWT_CLAIM_VALIDATION_FAILED', 'typ');
try {
        await verify(plainJwt, withExtra, { typ: 'JWT' });
        check(true, 'the same token, typ JWT asked for: verifies (the control of the check above)');
} catch (e) {
        check(false, `the control token: ${e.code ?? e.name}: ${e.message}`);
}
await refused('a key not in the set', () => verify(plainJwt, keyset, { typ: 'JWT' }), 'ERR_JWKS_NO_MATCHING_KEY');

console.log(failures ? `${failures} failed` : 'all passed');
process.exit(failures ? 1 : 0);
