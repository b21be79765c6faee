/* SPDX-License-Identifier: Apache-2.0 */
/* vouchctl verdict verify: the relying party's offline check of a SignedVerdict. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "verdict-check.h"
#include "verdict-format.h"
#include "vouchctl.h"

static const char verify_usage[] =
        "Usage: vouchctl verdict verify --keys KEYS_FILE VERDICT_FILE [--device ID] [--now TIME] [--any-status]\n"
        "                               [--device-cert CERT --device-ca CA [--crl CRL]]\n"
        "                               [--json] [--extract-verdict FILE] [--extract-signature FILE]\n"
        "  --keys FILE     the verifier's public keys: PEM (STATE_DIR/verdict-keys.pem, GET /v1/keys?format=pem)\n"
        "                  or a serialized VerdictKeys (GET /v1/keys)\n"
        "  VERDICT_FILE    a serialized SignedVerdict (vouch-agent --verdict-out) or its JSON form; - for stdin\n"
        "  --device ID     the verdict must be about this device (a relying party checks the device it\n"
        "                  talks to: a genuine verdict of another device proves nothing)\n"
        "  --now TIME      check expiry at TIME (Unix seconds or RFC 3339, 2026-11-25T10:00:00Z) instead of now\n"
        "  --any-status    accept a valid, unexpired verdict whatever its status (default: TRUSTED only)\n"
        "  --device-cert CERT  the device certificate the party presented over TLS (PEM, its own first, as the\n"
        "                  agent writes it): it must chain to --device-ca at TIME (and not be on\n"
        "                  --crl), and the verdict must be about its device (SPIFFE ID spiffe://TD/device/ID)\n"
        "                  and prove its key (Verdict.device_key): the verdict is then no bearer token\n"
        "  --device-ca CA  vouchd's device CA certificate(s) (PEM; STATE_DIR/device-ca.pem)\n"
        "  --crl CRL       the device CA's CRL (DER or PEM; GET /v1/crl): a revoked certificate is refused\n"
        "  --json          print the check and the verdict as JSON\n"
        "  --extract-verdict FILE    write the signed Verdict bytes there (before any check)\n"
        "  --extract-signature FILE  write the DER signature there (openssl dgst -sha256 -verify KEY -signature FILE)\n"
        "Exit status: 0 valid, unexpired and TRUSTED; 1 invalid, expired or not TRUSTED (reason on stderr);\n"
        "2 usage error or unusable input (unreadable file, not a SignedVerdict, no keys).\n";

static int write_bytes(const char *path, const uint8_t *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        size_t off = 0;
        if (fd < 0) {
                fprintf(stderr, "vouchctl: cannot create %s: %s\n", path, strerror(errno));
                return -errno;
        }
        while (off < len) {
                ssize_t n = write(fd, data + off, len - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int e = errno;
                        fprintf(stderr, "vouchctl: cannot write %s: %s\n", path, strerror(e));
                        close(fd);
                        return -e;
                }
                off += (size_t) n;
        }
        if (close(fd) < 0) {
                fprintf(stderr, "vouchctl: cannot write %s: %s\n", path, strerror(errno));
                return -EIO;
        }
        return 0;
}

int load_keyring(const char *path, vv_keyring **ret) {
        uint8_t *buf = NULL;
        size_t len;
        int r = read_input(path, VV_KEYS_FILE_MAX, &buf, &len);
        if (r < 0)
                return r;
        r = vv_keyring_parse(buf, len, ret);
        free(buf);
        switch (r) {
        case 0: break;
        case -ENOENT: fprintf(stderr, "vouchctl: %s: no public key in the file\n", path); break;
        case -ENOTSUP: fprintf(stderr, "vouchctl: %s: a key is not an EC P-256 key\n", path); break;
        case -E2BIG: fprintf(stderr, "vouchctl: %s: more than %d keys\n", path, VV_KEYS_MAX); break;
        case -EEXIST: fprintf(stderr, "vouchctl: %s: the same key twice\n", path); break;
        case -ENOMEM: fprintf(stderr, "vouchctl: out of memory\n"); break;
        default:
                fprintf(stderr, "vouchctl: %s: not a keys file (PEM public keys or a VerdictKeys whose ids match "
                                "their keys)\n", path);
        }
        return r;
}

/* Prints the outcome (text or JSON) and returns the exit code of the decision. */
static int report_verdict_check(const Vouch__V1__SignedVerdict *sv, const vv_result *res, bool any_status, bool json) {
        bool accepted = vv_accept(res, any_status);
        const char *st = res->verdict ? vv_status_name(res->verdict->status) : NULL;
        char stbuf[32];
        if (res->verdict && !st) {
                snprintf(stbuf, sizeof(stbuf), "status %d", res->verdict->status);
                st = stbuf;
        }
        if (json) {
                json_object *o = vfmt_signed_json(sv, res->verdict), *c = json_object_new_object();
                if (!o || !c) {
                        json_object_put(o);
                        json_object_put(c);
                        fprintf(stderr, "vouchctl: out of memory\n");
                        return EXIT_USAGE;
                }
                json_object_object_add(c, "valid", json_object_new_boolean(res->outcome == VV_VALID));
                json_object_object_add(c, "outcome", json_object_new_string(vv_outcome_name(res->outcome)));
                json_object_object_add(c, "reason", json_object_new_string(res->reason));
                json_object_object_add(c, "accepted", json_object_new_boolean(accepted));
                json_object_object_add(o, "check", c);
                puts(vfmt_json_text(o, 1));
                json_object_put(o);
        } else {
                if (res->outcome == VV_VALID)
                        printf("signature:    valid (key %s)\n", sv->key_id);
                else
                        printf("signature:    %s\n", res->outcome == VV_UNKNOWN_KEY || res->outcome == VV_BAD_SIGNATURE
                                                         ? "INVALID"
                                                         : "valid, but the verdict is not");
                if (res->verdict)
                        vfmt_verdict_text(stdout, res->verdict);
        }
        fflush(stdout);
        if (res->outcome != VV_VALID) {
                fprintf(stderr, "vouchctl: verdict is invalid (%s): %s\n", vv_outcome_name(res->outcome), res->reason);
                return EXIT_INVALID;
        }
        if (!accepted) {
                fprintf(stderr, "vouchctl: verdict is valid but the device is %s\n", st);
                return EXIT_INVALID;
        }
        return EXIT_OK;
}

/* ---- the device certificate a verdict is presented with (issue 19) ---- */

#define DEVICE_CERT_FILE_MAX (256u << 10)
#define DEVICE_CRL_FILE_MAX (16u << 20)
#define DEVICE_CHAIN_MAX 8

static X509_CRL *load_crl(const char *path) {
        uint8_t *buf = NULL;
        size_t len;
        X509_CRL *crl = NULL;
        if (read_input(path, DEVICE_CRL_FILE_MAX, &buf, &len) < 0)
                return NULL;
        const unsigned char *p = buf;
        crl = d2i_X509_CRL(NULL, &p, (long) len);
        if (!crl || p != buf + len) {
                X509_CRL_free(crl);
                BIO *b = BIO_new_mem_buf(buf, (int) len);
                crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
                BIO_free(b);
        }
        if (!crl)
                fprintf(stderr, "vouchctl: %s: not a CRL (DER or PEM \"X509 CRL\")\n", path);
        free(buf);
        return crl;
}

/* Up to max PEM certificates of path into certs (*n of them); at least one. */
static int load_pem_certs(const char *path, X509 **certs, size_t max, size_t *n) {
        uint8_t *buf = NULL;
        size_t len;
        *n = 0;
        if (read_input(path, DEVICE_CERT_FILE_MAX, &buf, &len) < 0)
                return -EIO;
        BIO *b = BIO_new_mem_buf(buf, (int) len);
        X509 *x;
        while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
                if (*n == max) {
                        X509_free(x);
                        fprintf(stderr, "vouchctl: %s: more than %zu certificates\n", path, max);
                        goto fail;
                }
                certs[(*n)++] = x;
        }
        ERR_clear_error();
        BIO_free(b);
        b = NULL;
        free(buf);
        if (*n > 0)
                return 0;
        fprintf(stderr, "vouchctl: %s: no PEM certificate in the file\n", path);
        return -EBADMSG;
fail:
        BIO_free(b);
        free(buf);
        while (*n)
                X509_free(certs[--(*n)]);
        return -E2BIG;
}

/* The device id of a vouchd device certificate: its SPIFFE ID's path /device/ID (the only
 * URI SAN vouchd writes). NULL when there is none. */
static char *spiffe_device(X509 *leaf, char *td, size_t td_size) {
        GENERAL_NAMES *names = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
        char *id = NULL;
        for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && !id; i++) {
                const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
                if (g->type != GEN_URI)
                        continue;
                const char *u = (const char *) ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
                size_t ulen = (size_t) ASN1_STRING_length(g->d.uniformResourceIdentifier);
                if (ulen != strlen(u) || strncmp(u, "spiffe://", 9) != 0)
                        continue;
                const char *path = strchr(u + 9, '/');
                if (!path || path == u + 9 || strncmp(path, "/device/", 8) != 0 || !path[8] || strchr(path + 8, '/'))
                        continue;
                snprintf(td, td_size, "%.*s", (int) (path - (u + 9)), u + 9);
                id = strdup(path + 8);
        }
        GENERAL_NAMES_free(names);
        return id;
}

/* Checks the presented chain against the device CA (and CRL) at now, as a TLS server
 * demanding the certificate would: EXIT_OK with the device id and the key's DER
 * SubjectPublicKeyInfo; EXIT_INVALID when it is not valid (said why); EXIT_USAGE when a
 * file is unusable. */
static int check_device_cert(const char *cert_path, const char *ca_path, const char *crl_path, int64_t now,
                             char **ret_device, uint8_t **ret_spki, int *ret_spki_len) {
        X509 *chain[DEVICE_CHAIN_MAX], *cas[DEVICE_CHAIN_MAX];
        size_t n_chain = 0, n_cas = 0;
        X509_CRL *crl = NULL;
        X509_STORE *store = NULL;
        X509_STORE_CTX *ctx = NULL;
        STACK_OF(X509) *untrusted = NULL;
        char td[256] = "";
        int ret = EXIT_USAGE;

        if (load_pem_certs(cert_path, chain, DEVICE_CHAIN_MAX, &n_chain) < 0 ||
            load_pem_certs(ca_path, cas, DEVICE_CHAIN_MAX, &n_cas) < 0 || (crl_path && !(crl = load_crl(crl_path))))
                goto out;
        if (!(store = X509_STORE_new()) || !(ctx = X509_STORE_CTX_new()) || !(untrusted = sk_X509_new_null()))
                goto oom;
        for (size_t i = 0; i < n_cas; i++)
                if (X509_STORE_add_cert(store, cas[i]) != 1)
                        goto oom;
        for (size_t i = 1; i < n_chain; i++)
                if (!sk_X509_push(untrusted, chain[i]))
                        goto oom;
        if (crl && X509_STORE_add_crl(store, crl) != 1)
                goto oom;
        if (X509_STORE_CTX_init(ctx, store, chain[0], untrusted) != 1)
                goto oom;
        X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
        X509_VERIFY_PARAM_set_time(param, (time_t) now);
        X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_CLIENT);
        if (crl)
                X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK);
        if (X509_verify_cert(ctx) != 1) {
                int e = X509_STORE_CTX_get_error(ctx);
                fprintf(stderr, "vouchctl: %s: the device certificate is not valid with %s%s%s at %lld: %s\n", cert_path,
                        ca_path, crl ? " and " : "", crl ? crl_path : "", (long long) now,
                        X509_verify_cert_error_string(e));
                ret = EXIT_INVALID;
                goto out;
        }
        char *id = spiffe_device(chain[0], td, sizeof(td));
        if (!id) {
                fprintf(stderr, "vouchctl: %s: the certificate has no SPIFFE ID spiffe://TRUST_DOMAIN/device/ID (not a "
                                "vouchd device certificate)\n", cert_path);
                ret = EXIT_INVALID;
                goto out;
        }
        unsigned char *spki = NULL;
        int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(chain[0]), &spki);
        if (spki_len <= 0) {
                free(id);
                goto oom;
        }
        *ret_device = id;
        *ret_spki = spki;
        *ret_spki_len = spki_len;
        ret = EXIT_OK;
        goto out;
oom:
        fprintf(stderr, "vouchctl: out of memory\n");
out:
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        sk_X509_free(untrusted);
        X509_CRL_free(crl);
        while (n_chain)
                X509_free(chain[--n_chain]);
        while (n_cas)
                X509_free(cas[--n_cas]);
        return ret;
}

static int check_verdict_key(const vv_keyring *keys, const Vouch__V1__SignedVerdict *sv, int64_t now,
                             const char *device, const uint8_t *spki, size_t spki_len, bool any_status, bool json) {
        vv_result res;
        if (vv_verify(keys, sv, now, VV_DEFAULT_SKEW, &res) < 0) {
                fprintf(stderr, "vouchctl: out of memory\n");
                return EXIT_USAGE;
        }
        vv_expect_device(&res, device);
        vv_expect_device_key(&res, spki, spki_len);
        int ret = report_verdict_check(sv, &res, any_status, json);
        vv_result_done(&res);
        return ret;
}

int check_verdict(const vv_keyring *keys, const Vouch__V1__SignedVerdict *sv, int64_t now, const char *device,
                  bool any_status, bool json) {
        return check_verdict_key(keys, sv, now, device, NULL, 0, any_status, json);
}

static int verdict_verify(int argc, char **argv) {
        const char *keys_path = NULL, *now_s = NULL, *xv = NULL, *xs = NULL, *device = NULL;
        const char *cert_path = NULL, *ca_path = NULL, *crl_path = NULL;
        char *cert_device = NULL;
        uint8_t *spki = NULL;
        int spki_len = 0;
        bool any_status = false, json = false;
        const cmd_option options[] = {
                { "keys", .arg = &keys_path, .required = true },
                { "now", .arg = &now_s },
                { "device", .arg = &device },
                { "device-cert", .arg = &cert_path },
                { "device-ca", .arg = &ca_path },
                { "crl", .arg = &crl_path },
                { "any-status", .flag = &any_status },
                { "json", .flag = &json },
                { "extract-verdict", .arg = &xv },
                { "extract-signature", .arg = &xs },
                {},
        };
        vv_keyring *keys = NULL;
        Vouch__V1__SignedVerdict *sv = NULL;
        uint8_t *buf = NULL;
        size_t len;
        int64_t now;
        int r, ret = EXIT_USAGE;

        const cmd_spec spec = { verify_usage, options, 1, "vouchctl verdict verify: --keys and one VERDICT_FILE are required" };
        if (!parse_command(argc, argv, &spec, &ret))
                return ret;
        if (now_s) {
                if (vv_parse_time(now_s, &now) < 0) {
                        fprintf(stderr, "vouchctl: --now: '%s' is neither Unix seconds nor RFC 3339 "
                                        "(2026-11-25T10:00:00Z)\n", now_s);
                        return EXIT_USAGE;
                }
        } else
                now = (int64_t) time(NULL);
        if ((cert_path && !ca_path) || (!cert_path && (ca_path || crl_path))) {
                fprintf(stderr, "vouchctl verdict verify: --device-cert needs --device-ca (and --device-ca and --crl "
                                "need --device-cert)\n%s", verify_usage);
                return EXIT_USAGE;
        }

        if (read_input(argv[optind], VV_SIGNED_MAX, &buf, &len) < 0)
                goto out;
        r = vv_signed_parse(buf, len, &sv);
        if (r < 0) {
                fprintf(stderr, "vouchctl: %s: %s\n", argv[optind],
                        r == -ENOMEM ? "out of memory" : "not a SignedVerdict (verdict, signature and key_id are required)");
                goto out;
        }
        if ((xv && write_bytes(xv, sv->verdict.data, sv->verdict.len) < 0) ||
            (xs && write_bytes(xs, sv->signature.data, sv->signature.len) < 0))
                goto out;
        if (load_keyring(keys_path, &keys) < 0)
                goto out;
        if (cert_path) {
                ret = check_device_cert(cert_path, ca_path, crl_path, now, &cert_device, &spki, &spki_len);
                if (ret != EXIT_OK)
                        goto out;
                if (device && strcmp(device, cert_device) != 0) {
                        fprintf(stderr, "vouchctl: %s is the certificate of device %s, not %s (--device)\n", cert_path,
                                cert_device, device);
                        ret = EXIT_INVALID;
                        goto out;
                }
                device = cert_device;
        }
        ret = check_verdict_key(keys, sv, now, device, spki, (size_t) spki_len, any_status, json);
out:
        free(cert_device);
        OPENSSL_free(spki);
        vouch__v1__signed_verdict__free_unpacked(sv, NULL);
        vv_keyring_free(keys);
        free(buf);
        return ret;
}

int cmd_verdict(int argc, char **argv) {
        if (argc >= 2 && strcmp(argv[1], "verify") == 0)
                return verdict_verify(argc, argv);
        if (argc >= 2 && (strcmp(argv[1], "get") == 0 || strcmp(argv[1], "list") == 0 || strcmp(argv[1], "watch") == 0))
                return cmd_api_verdict(argc, argv);
        fprintf(stderr, "Usage: vouchctl verdict verify|get|list|watch ... (--help for each)\n");
        return EXIT_USAGE;
}
