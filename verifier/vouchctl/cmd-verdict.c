/* SPDX-License-Identifier: Apache-2.0 */
/* vouchctl verdict verify: the relying party's offline check of a SignedVerdict. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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
        "                               [--json] [--extract-verdict FILE] [--extract-signature FILE]\n"
        "  --keys FILE     the verifier's public keys: PEM (STATE_DIR/verdict-keys.pem, GET /v1/keys?format=pem)\n"
        "                  or a serialized VerdictKeys (GET /v1/keys)\n"
        "  VERDICT_FILE    a serialized SignedVerdict (vouch-agent --verdict-out) or its JSON form; - for stdin\n"
        "  --device ID     the verdict must be about this device (a relying party checks the device it\n"
        "                  talks to: a genuine verdict of another device proves nothing)\n"
        "  --now TIME      check expiry at TIME (Unix seconds or RFC 3339, 2026-11-25T10:00:00Z) instead of now\n"
        "  --any-status    accept a valid, unexpired verdict whatever its status (default: TRUSTED only)\n"
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

int check_verdict(const vv_keyring *keys, const Vouch__V1__SignedVerdict *sv, int64_t now, const char *device,
                  bool any_status, bool json) {
        vv_result res;
        if (vv_verify(keys, sv, now, VV_DEFAULT_SKEW, &res) < 0) {
                fprintf(stderr, "vouchctl: out of memory\n");
                return EXIT_USAGE;
        }
        vv_expect_device(&res, device);
        int ret = report_verdict_check(sv, &res, any_status, json);
        vv_result_done(&res);
        return ret;
}

static int verdict_verify(int argc, char **argv) {
        const char *keys_path = NULL, *now_s = NULL, *xv = NULL, *xs = NULL, *device = NULL;
        bool any_status = false, json = false;
        const cmd_option options[] = {
                { "keys", .arg = &keys_path, .required = true },
                { "now", .arg = &now_s },
                { "device", .arg = &device },
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
        ret = check_verdict(keys, sv, now, device, any_status, json);
out:
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
