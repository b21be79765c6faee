/* SPDX-License-Identifier: Apache-2.0 */
#include "tpm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "enroll.h"
#include "hash.h"

_Static_assert(VA_EK_CHAIN_MAX == VC_EK_MAX_INTERMEDIATES, "the verifier takes as many intermediates as NV holds");

struct va_tpm {
        TSS2_TCTI_CONTEXT *tcti;
        ESYS_CONTEXT *esys;
        ESYS_TR ek;             /* ESYS_TR_NONE when not loaded */
        TPMT_PUBLIC ek_public;
        ESYS_TR ak;
        uint32_t nv_buffer_max; /* TPM2_PT_NV_BUFFER_MAX */
};

static void esys_freep(void *p) {
        Esys_Free(*(void **) p);
}
#define _cleanup_esys_ _cleanup_(esys_freep)

/* TPM2_CreatePrimary and TPM2_Create (Part 3, 24.1 and 12.1) for the EK and the AK: no
 * authValue or data of their own, no outside info, no PCRs in the creation data. */
static const TPM2B_SENSITIVE_CREATE no_sensitive = { 0 };
static const TPM2B_DATA no_outside_info = { 0 };
static const TPML_PCR_SELECTION no_pcrs = { 0 };

/* The creation data both return, which nothing here uses. */
typedef struct creation {
        TPM2B_CREATION_DATA *data;
        TPM2B_DIGEST *hash;
        TPMT_TK_CREATION *ticket;
} creation;

static void creation_done(creation *c) {
        Esys_Free(c->data);
        Esys_Free(c->hash);
        Esys_Free(c->ticket);
}

/* ---------------------------------------------------------------------------------------
 * Errors */

/* The TPM's response code without the layer, and for format-one codes without the
 * parameter/handle/session number (TPM 2.0 Part 2, 6.6.2), comparable with TPM2_RC_*. */
static TSS2_RC tpm_rc_base(TSS2_RC rc) {
        TSS2_RC t = rc & 0xffffu;
        if (t & TPM2_RC_FMT1)
                return TPM2_RC_FMT1 | (t & 0x3fu);
        return t & (TPM2_RC_WARN | TPM2_RC_VER1 | 0x7fu);
}

static bool rc_is_tpm(TSS2_RC rc) {
        TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
        return layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER;
}

static int rc_errno(TSS2_RC rc) {
        if (rc_is_tpm(rc)) {
                switch (tpm_rc_base(rc)) {
                case TPM2_RC_OBJECT_MEMORY:
                case TPM2_RC_SESSION_MEMORY:
                case TPM2_RC_MEMORY:
                case TPM2_RC_OBJECT_HANDLES:
                case TPM2_RC_SESSION_HANDLES:
                case TPM2_RC_NV_SPACE:
                        return -ENOSPC;
                case TPM2_RC_LOCKOUT:
                        return -EBUSY;
                case TPM2_RC_RETRY:
                case TPM2_RC_YIELDED:
                case TPM2_RC_TESTING:
                case TPM2_RC_NV_RATE:
                case TPM2_RC_NV_UNAVAILABLE:
                        return -EAGAIN;
                case TPM2_RC_AUTH_FAIL:
                case TPM2_RC_BAD_AUTH:
                case TPM2_RC_POLICY_FAIL:
                case TPM2_RC_AUTH_UNAVAILABLE:
                case TPM2_RC_NV_AUTHORIZATION:
                case TPM2_RC_HIERARCHY:
                        return -EACCES;
                case TPM2_RC_HANDLE:
                case TPM2_RC_REFERENCE_H0:
                        return -ENOENT;
                case TPM2_RC_INTEGRITY:
                case TPM2_RC_VALUE:
                case TPM2_RC_SIZE:
                case TPM2_RC_KEY:
                case TPM2_RC_KEY_SIZE:
                case TPM2_RC_ASYMMETRIC:
                case TPM2_RC_ECC_POINT:
                case TPM2_RC_SCHEME:
                case TPM2_RC_HASH:
                case TPM2_RC_SYMMETRIC:
                case TPM2_RC_CURVE:
                case TPM2_RC_BINDING:
                case TPM2_RC_ATTRIBUTES:
                case TPM2_RC_TYPE:
                case TPM2_RC_PCR:
                        return -EBADMSG;
                default:
                        return -EIO;
                }
        }
        switch (rc & 0xffffu) {
        case TSS2_BASE_RC_MEMORY:
                return -ENOMEM;
        case TSS2_BASE_RC_NO_CONNECTION:
                return -ECONNREFUSED;
        case TSS2_BASE_RC_NOT_IMPLEMENTED:
        case TSS2_BASE_RC_NOT_SUPPORTED:
                return -ENOTSUP;
        case TSS2_BASE_RC_BAD_REFERENCE:
        case TSS2_BASE_RC_BAD_VALUE:
                return -EINVAL;
        default:
                return -EIO;
        }
}

/* Records "what: TPM2_xxx: decoded rc (0x...)" and returns the errno for rc. */
static int tss_error(vc_error *err, TSS2_RC rc, const char *what, const char *call) {
        return vc_error_set(err, rc_errno(rc), SIZE_MAX, -1, "%s: %s: %s (0x%x)", what, call, Tss2_RC_Decode(rc), rc);
}

static int no_key_error(vc_error *err, const char *what, const char *missing, const char *how) {
        return vc_error_set(err, -EINVAL, SIZE_MAX, -1, "%s: no %s loaded (%s first)", what, missing, how);
}

/* ---------------------------------------------------------------------------------------
 * Connection */

static void flush_object(va_tpm *t, ESYS_TR *h) {
        if (*h == ESYS_TR_NONE)
                return;
        /* A failed flush (the TPM went away) leaves nothing we could do: the handle is
         * forgotten either way, and Esys_FlushContext releases ESAPI's metadata. */
        (void) Esys_FlushContext(t->esys, *h);
        *h = ESYS_TR_NONE;
}

va_tpm *va_tpm_close(va_tpm *t) {
        if (!t)
                return NULL;
        if (t->esys) {
                flush_object(t, &t->ak);
                flush_object(t, &t->ek);
                Esys_Finalize(&t->esys);
        }
        Tss2_TctiLdr_Finalize(&t->tcti);
        free(t);
        return NULL;
}

/* A fixed property every TPM reports (Part 2, 6.13) into *ret, 0 when it does not. */
static int tpm_property(va_tpm *t, TPM2_PT property, const char *what, uint32_t *ret, vc_error *err) {
        _cleanup_esys_ TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more = TPM2_NO;
        TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                                        property, 1, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, what, "TPM2_GetCapability");
        const TPML_TAGGED_TPM_PROPERTY *props = &cap->data.tpmProperties;
        *ret = props->count >= 1 && props->tpmProperty[0].property == property ? props->tpmProperty[0].value : 0;
        return 0;
}

static int read_nv_buffer_max(va_tpm *t, vc_error *err) {
        uint32_t max = 0;
        int r = tpm_property(t, TPM2_PT_NV_BUFFER_MAX, "TPM properties", &max, err);
        if (r < 0)
                return r;
        /* fall back on a size every TPM accepts when it is absent */
        t->nv_buffer_max = max ? max : 512;
        if (t->nv_buffer_max > TPM2_MAX_NV_BUFFER_SIZE)
                t->nv_buffer_max = TPM2_MAX_NV_BUFFER_SIZE;
        return 0;
}

int va_tpm_manufacturer(va_tpm *t, uint32_t *ret, vc_error *err) {
        return tpm_property(t, TPM2_PT_MANUFACTURER, "TPM manufacturer", ret, err);
}

int va_tpm_open(const char *tcti, va_tpm **ret, vc_error *err) {
        va_tpm *t;
        TSS2_RC rc;
        int r;

        vc_error_clear(err);
        /* tpm2-tss prints an error line to stderr for every failed command, including the
         * expected ones (an absent NV index); each module reads TSS2_LOG on its first message. */
        if (setenv("TSS2_LOG", "all+none", 0) < 0)
                return vc_error_set(err, -errno, SIZE_MAX, -1, "setenv TSS2_LOG: %s", strerror(errno));
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->ek = t->ak = ESYS_TR_NONE;
        rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
        if (rc != TSS2_RC_SUCCESS) {
                r = vc_error_set(err, -ECONNREFUSED, SIZE_MAX, -1, "TCTI \"%s\": cannot connect: %s (0x%x)",
                                 tcti ? tcti : "(default)", Tss2_RC_Decode(rc), rc);
                goto fail;
        }
        rc = Esys_Initialize(&t->esys, t->tcti, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_error(err, rc, "TPM", "Esys_Initialize");
                goto fail;
        }
        /* Part 3, 9.3: a TPM that firmware (or swtpm's startup-clear flag) already started
         * answers TPM_RC_INITIALIZE. */
        rc = Esys_Startup(t->esys, TPM2_SU_CLEAR);
        if (rc != TSS2_RC_SUCCESS && !(rc_is_tpm(rc) && tpm_rc_base(rc) == TPM2_RC_INITIALIZE)) {
                r = tss_error(err, rc, "TPM", "TPM2_Startup");
                goto fail;
        }
        r = read_nv_buffer_max(t, err);
        if (r < 0)
                goto fail;
        *ret = t;
        return 0;
fail:
        va_tpm_close(t);
        return r;
}

int va_tpm_set_nv_chunk_max(va_tpm *t, uint32_t max) {
        if (max == 0)
                return -EINVAL;
        if (max < t->nv_buffer_max)
                t->nv_buffer_max = max;
        return 0;
}

/* ---------------------------------------------------------------------------------------
 * EK */

void va_ek_clear(va_ek *ek) {
        if (!ek)
                return;
        free(ek->cert);
        for (size_t i = 0; i < ek->n_chain && i < VA_EK_CHAIN_MAX; i++)
                free(ek->chain[i]);
        memset(ek, 0, sizeof(*ek));
}

/* TCG EK Credential Profile 2.5, B.6: PolicyA_SHA256 = PolicySecret(TPM_RH_ENDORSEMENT). */
static const uint8_t policy_a_sha256[32] = {
        0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
        0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};
/* PolicyB_SHA384: PolicyOR of PolicyA_SHA384 and PolicyC_SHA384 (the high-range templates). */
static const uint8_t policy_b_sha384[48] = {
        0xb2, 0x6e, 0x7d, 0x28, 0xd1, 0x1a, 0x50, 0xbc, 0x53, 0xd8, 0x82, 0xbc, 0xf5, 0xfd, 0x3a, 0x1a,
        0x07, 0x41, 0x48, 0xbb, 0x35, 0xd3, 0xb4, 0xe4, 0xcb, 0x1c, 0x0a, 0xd9, 0xbd, 0xe4, 0x19, 0xca,
        0xcb, 0x47, 0xba, 0x09, 0x69, 0x96, 0x46, 0x15, 0x0f, 0x9f, 0xc0, 0x00, 0xf3, 0xf8, 0x0e, 0x12,
};

/* Low-range templates (B.3.3, B.3.4): fixedTPM, fixedParent, sensitiveDataOrigin,
 * adminWithPolicy, restricted, decrypt; the user role only through the policy. High range
 * (B.4): userWithAuth as well. */
#define EK_ATTRS_L                                                                                      \
        (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |              \
         TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)
#define EK_ATTRS_H (EK_ATTRS_L | TPMA_OBJECT_USERWITHAUTH)

static uint32_t ek_cert_index(va_ek_type type) {
        switch (type) {
        case VA_EK_RSA_2048:
                return 0x01c00002;
        case VA_EK_ECC_P256:
                return 0x01c0000a;
        case VA_EK_ECC_P384:
                return 0x01c00016;
        default:
                return 0;
        }
}

static const char *ek_type_name(va_ek_type type) {
        switch (type) {
        case VA_EK_RSA_2048:
                return "RSA-2048 (L-1)";
        case VA_EK_ECC_P256:
                return "ECC NIST P-256 (L-2)";
        case VA_EK_ECC_P384:
                return "ECC NIST P-384 (H-3)";
        default:
                return "?";
        }
}

static void ek_template(va_ek_type type, TPM2B_PUBLIC *out) {
        TPMT_PUBLIC *p = &out->publicArea;
        bool rsa = type == VA_EK_RSA_2048, high = type == VA_EK_ECC_P384; /* L-1; H-3; else L-2 */
        memset(out, 0, sizeof(*out));
        if (type != VA_EK_RSA_2048 && type != VA_EK_ECC_P256 && type != VA_EK_ECC_P384)
                return;
        /* what the three share: policy, attributes and AES-CFB by range, no scheme */
        TPMT_SYM_DEF_OBJECT *sym = rsa ? &p->parameters.rsaDetail.symmetric : &p->parameters.eccDetail.symmetric;
        p->type = rsa ? TPM2_ALG_RSA : TPM2_ALG_ECC;
        p->nameAlg = high ? TPM2_ALG_SHA384 : TPM2_ALG_SHA256;
        p->objectAttributes = high ? EK_ATTRS_H : EK_ATTRS_L;
        p->authPolicy.size = high ? sizeof(policy_b_sha384) : sizeof(policy_a_sha256);
        memcpy(p->authPolicy.buffer, high ? policy_b_sha384 : policy_a_sha256, p->authPolicy.size);
        sym->algorithm = TPM2_ALG_AES;
        sym->keyBits.aes = high ? 256 : 128;
        sym->mode.aes = TPM2_ALG_CFB;
        if (rsa) {
                p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
                p->parameters.rsaDetail.keyBits = 2048;
                p->parameters.rsaDetail.exponent = 0;
                p->unique.rsa.size = 256; /* zeros */
                return;
        }
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        p->parameters.eccDetail.curveID = high ? TPM2_ECC_NIST_P384 : TPM2_ECC_NIST_P256;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        if (!high) {
                /* the high-range templates leave unique empty */
                p->unique.ecc.x.size = 32; /* zeros */
                p->unique.ecc.y.size = 32;
        }
}

/* The length of the DER element at the start of buf (X.690, 8.1.3), or 0 when buf does
 * not start with a definite-length SEQUENCE that fits in len. */
static size_t der_length(const uint8_t *buf, size_t len) {
        size_t n, hdr;
        if (len < 2 || buf[0] != 0x30)
                return 0;
        if (buf[1] < 0x80) {
                n = buf[1];
                hdr = 2;
        } else {
                size_t k = buf[1] & 0x7fu;
                if (k == 0 || k > 3 || len < 2 + k)
                        return 0;
                n = 0;
                for (size_t i = 0; i < k; i++)
                        n = (n << 8) | buf[2 + i];
                hdr = 2 + k;
        }
        return n <= len - hdr ? hdr + n : 0;
}

/* Reads the whole data of the certificate index into ret_buf (malloc'ed) and ret_len.
 * Returns 0, or -ENOENT when the index is not defined. */
static int read_nv(va_tpm *t, uint32_t index, uint8_t **ret_buf, size_t *ret_len, vc_error *err) {
        _cleanup_esys_ TPM2B_NV_PUBLIC *nvpub = NULL;
        _cleanup_esys_ TPM2B_NAME *nvname = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        ESYS_TR nv = ESYS_TR_NONE, auth;
        char what[48];
        size_t size, off = 0;
        TSS2_RC rc;
        int r;

        snprintf(what, sizeof(what), "certificate at NV 0x%08x", index);
        /* Esys_TR_FromTPMPublic runs TPM2_NV_ReadPublic and checks the name it returns. */
        rc = Esys_TR_FromTPMPublic(t->esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_error(err, rc, what, "TPM2_NV_ReadPublic");
                goto out;
        }
        rc = Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nvpub, &nvname);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_error(err, rc, what, "TPM2_NV_ReadPublic");
                goto out;
        }
        size = nvpub->nvPublic.dataSize;
        if (size == 0 || size > VA_EK_CERT_MAX) {
                r = vc_error_set(err, size ? -E2BIG : -ENOENT, SIZE_MAX, -1, "%s: size %zu (limit %u)", what, size,
                                 VA_EK_CERT_MAX);
                goto out;
        }
        /* EK certificate indices are readable with their own (empty) authValue or the owner's
         * (EK Credential Profile 2.5, 2.2.1.5: AUTHREAD, OWNERREAD, PPREAD). */
        if (nvpub->nvPublic.attributes & TPMA_NV_AUTHREAD)
                auth = nv;
        else if (nvpub->nvPublic.attributes & TPMA_NV_OWNERREAD)
                auth = ESYS_TR_RH_OWNER;
        else {
                r = vc_error_set(err, -EACCES, SIZE_MAX, -1, "%s: attributes 0x%08x: neither AUTHREAD nor OWNERREAD", what,
                                 nvpub->nvPublic.attributes);
                goto out;
        }
        buf = malloc(size);
        if (!buf) {
                r = -ENOMEM;
                goto out;
        }
        while (off < size) {
                _cleanup_esys_ TPM2B_MAX_NV_BUFFER *chunk = NULL;
                uint16_t want = (uint16_t) (size - off < t->nv_buffer_max ? size - off : t->nv_buffer_max);
                rc = Esys_NV_Read(t->esys, auth, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, want, (uint16_t) off,
                                  &chunk);
                if (rc != TSS2_RC_SUCCESS) {
                        r = tss_error(err, rc, what, "TPM2_NV_Read");
                        goto out;
                }
                if (chunk->size != want) {
                        r = vc_error_set(err, -EIO, SIZE_MAX, -1, "%s: TPM2_NV_Read at %zu returned %u bytes, not %u", what,
                                         off, chunk->size, want);
                        goto out;
                }
                memcpy(buf + off, chunk->buffer, want);
                off += want;
        }
        *ret_len = size;
        *ret_buf = TAKE_PTR(buf);
        r = 0;
out:
        if (nv != ESYS_TR_NONE)
                (void) Esys_TR_Close(t->esys, &nv);
        return r;
}

/* Is the NV index defined? 1 yes, 0 no, negative errno when the TPM could not tell. */
static int nv_defined(va_tpm *t, uint32_t index, vc_error *err) {
        _cleanup_esys_ TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more = TPM2_NO;
        TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES, index, 1,
                                        &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, "NV indices", "TPM2_GetCapability");
        return cap->data.handles.count >= 1 && cap->data.handles.handle[0] == index;
}

/* Bytes after the certificates of an index: the rest of an index defined larger than its
 * data reads as 0x00 or 0xff (unwritten). Anything else is not padding. */
static bool is_padding(const uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (p[i] != p[0] || (p[0] != 0x00 && p[0] != 0xff))
                        return false;
        return true;
}

#define EK_CHAIN_FIRST 0x01c00100u
#define EK_CHAIN_LAST 0x01c001ffu

/* The certificates of the EK's issuing chain that the TPM's maker stored in NV (EK
 * Credential Profile 2.5, 2.2.1.5.2: indices 0x01c00100-0x01c001ff, in index order; an
 * index may hold several DER certificates back to back). Appended to ek->chain. */
static int read_ek_chain(va_tpm *t, va_ek *ek, vc_error *err) {
        _cleanup_esys_ TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more = TPM2_NO;
        TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
                                        EK_CHAIN_FIRST, TPM2_MAX_CAP_HANDLES, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, "EK certificate chain", "TPM2_GetCapability");
        for (uint32_t i = 0; i < cap->data.handles.count; i++) {
                uint32_t index = cap->data.handles.handle[i];
                _cleanup_free_ uint8_t *buf = NULL;
                size_t len, off = 0;
                if (index < EK_CHAIN_FIRST || index > EK_CHAIN_LAST)
                        break;
                int r = read_nv(t, index, &buf, &len, err);
                if (r < 0)
                        return r;
                while (off < len && !is_padding(buf + off, len - off)) {
                        size_t n = der_length(buf + off, len - off);
                        if (n == 0)
                                return vc_error_set(err, -EBADMSG, SIZE_MAX, -1,
                                                    "EK certificate chain: NV 0x%08x: no DER certificate at %zu", index,
                                                    off);
                        if (ek->n_chain >= VA_EK_CHAIN_MAX)
                                return vc_error_set(err, -E2BIG, SIZE_MAX, -1,
                                                    "EK certificate chain: more than %u certificates in NV", VA_EK_CHAIN_MAX);
                        ek->chain[ek->n_chain] = malloc(n);
                        if (!ek->chain[ek->n_chain])
                                return -ENOMEM;
                        memcpy(ek->chain[ek->n_chain], buf + off, n);
                        ek->chain_len[ek->n_chain++] = n;
                        off += n;
                }
        }
        return 0;
}

static int create_ek(va_tpm *t, va_ek_type type, ESYS_TR *ret_handle, TPM2B_PUBLIC *ret_public, vc_error *err) {
        _cleanup_esys_ TPM2B_PUBLIC *out_public = NULL;
        _cleanup_(creation_done) creation c = { 0 };
        TPM2B_PUBLIC tmpl;
        ESYS_TR h = ESYS_TR_NONE;
        char what[64];

        ek_template(type, &tmpl);
        snprintf(what, sizeof(what), "EK %s", ek_type_name(type));
        TSS2_RC rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                        &no_sensitive, &tmpl, &no_outside_info, &no_pcrs, &h, &out_public, &c.data,
                                        &c.hash, &c.ticket);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, what, "TPM2_CreatePrimary");
        *ret_handle = h;
        *ret_public = *out_public;
        return 0;
}

int va_tpm_ek(va_tpm *t, va_ek_type type, va_ek *ret, vc_error *err) {
        static const va_ek_type auto_order[] = { VA_EK_RSA_2048, VA_EK_ECC_P256, VA_EK_ECC_P384 };
        static const va_ek_type ecc_order[] = { VA_EK_ECC_P256, VA_EK_ECC_P384 };
        const va_ek_type *cand;
        size_t n_cand;
        va_ek_type chosen = 0;
        va_ek ek = { 0 };
        int r;

        vc_error_clear(err);
        switch (type) {
        case VA_EK_AUTO:
                cand = auto_order;
                n_cand = ELEMENTSOF(auto_order);
                break;
        case VA_EK_ECC:
                cand = ecc_order;
                n_cand = ELEMENTSOF(ecc_order);
                break;
        case VA_EK_RSA_2048:
        case VA_EK_ECC_P256:
        case VA_EK_ECC_P384:
                cand = NULL;
                n_cand = 0;
                chosen = type;
                break;
        default:
                return vc_error_set(err, -EINVAL, SIZE_MAX, -1, "EK type %d unknown", (int) type);
        }
        /* Look for the certificate before creating the key: an RSA primary can take seconds
         * on a real TPM, and each candidate without a certificate is skipped cheaply. */
        for (size_t i = 0; i < n_cand && !chosen; i++) {
                r = nv_defined(t, ek_cert_index(cand[i]), err);
                if (r < 0)
                        return r;
                if (r > 0)
                        chosen = cand[i];
        }
        /* none in NV (a firmware TPM, an old one): the first template, without a
         * certificate; the verifier decides (a certificate from --ek-cert or the maker's
         * service, or the EK key on its allowlist) */
        if (!chosen)
                chosen = cand[0];
        ek.type = chosen;
        ek.cert_index = ek_cert_index(chosen);
        r = nv_defined(t, ek.cert_index, err);
        if (r > 0)
                r = read_nv(t, ek.cert_index, &ek.cert, &ek.cert_len, err);
        if (r >= 0 && ek.cert) {
                /* Some TPMs pad the index after the certificate: keep exactly one DER element. */
                size_t der = der_length(ek.cert, ek.cert_len);
                if (der)
                        ek.cert_len = der;
                r = read_ek_chain(t, &ek, err);
        }
        ESYS_TR h = ESYS_TR_NONE;
        if (r >= 0)
                r = create_ek(t, chosen, &h, &ek.public, err);
        if (r < 0) {
                va_ek_clear(&ek);
                return r;
        }
        /* The AK belongs to the EK loaded before: both are replaced. */
        flush_object(t, &t->ak);
        flush_object(t, &t->ek);
        t->ek = h;
        t->ek_public = ek.public.publicArea;
        *ret = ek;
        return 0;
}

int va_tpm_ek_reload(va_tpm *t, va_ek_type type, const TPM2B_PUBLIC *expect, vc_error *err) {
        uint8_t want[sizeof(TPMT_PUBLIC)], got[sizeof(TPMT_PUBLIC)];
        size_t want_len = 0, got_len = 0;
        TPM2B_PUBLIC pub;
        ESYS_TR h = ESYS_TR_NONE;
        int r;

        vc_error_clear(err);
        if (!ek_cert_index(type))
                return vc_error_set(err, -EINVAL, SIZE_MAX, -1, "EK reload: type %d is not one template", (int) type);
        r = create_ek(t, type, &h, &pub, err);
        if (r < 0)
                return r;
        /* A primary key is derived from the hierarchy's seed and the template (Part 1, 27.2):
         * the same TPM gives the same EK; another one (or a cleared endorsement hierarchy)
         * does not, and the AK wrapped by the old EK is useless under it. */
        if (Tss2_MU_TPMT_PUBLIC_Marshal(&expect->publicArea, want, sizeof(want), &want_len) != TSS2_RC_SUCCESS ||
            Tss2_MU_TPMT_PUBLIC_Marshal(&pub.publicArea, got, sizeof(got), &got_len) != TSS2_RC_SUCCESS ||
            want_len != got_len || memcmp(want, got, want_len) != 0) {
                (void) Esys_FlushContext(t->esys, h);
                return vc_error_set(err, -ESTALE, SIZE_MAX, -1,
                                    "EK %s: the TPM's EK is not the one read before (another TPM, or its "
                                    "endorsement hierarchy was cleared)",
                                    ek_type_name(type));
        }
        flush_object(t, &t->ak);
        flush_object(t, &t->ek);
        t->ek = h;
        t->ek_public = pub.publicArea;
        return 0;
}

/* ---------------------------------------------------------------------------------------
 * Authorising the EK's user role */

/* Templates without userWithAuth (the low range) allow the user role only through their
 * policy, PolicySecret(TPM_RH_ENDORSEMENT) (EK Credential Profile 2.5, B.6); the
 * high-range templates set userWithAuth and take the EK's empty authValue. *ret_session is
 * ESYS_TR_PASSWORD or a policy session the caller flushes with end_ek_auth(). */
static int start_ek_auth(va_tpm *t, ESYS_TR *ret_session, vc_error *err) {
        _cleanup_esys_ TPM2B_TIMEOUT *timeout = NULL;
        _cleanup_esys_ TPMT_TK_AUTH *ticket = NULL;
        TPMT_SYM_DEF no_sym = { .algorithm = TPM2_ALG_NULL };
        ESYS_TR s = ESYS_TR_NONE;
        TSS2_RC rc;

        if (t->ek_public.objectAttributes & TPMA_OBJECT_USERWITHAUTH) {
                *ret_session = ESYS_TR_PASSWORD;
                return 0;
        }
        rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
                                   TPM2_SE_POLICY, &no_sym, t->ek_public.nameAlg, &s);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, "EK policy session", "TPM2_StartAuthSession");
        rc = Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, s, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
                               NULL, NULL, 0, &timeout, &ticket);
        if (rc != TSS2_RC_SUCCESS) {
                (void) Esys_FlushContext(t->esys, s);
                return tss_error(err, rc, "EK policy session", "TPM2_PolicySecret(TPM_RH_ENDORSEMENT)");
        }
        *ret_session = s;
        return 0;
}

/* Flushes the policy session whether or not the command that used it succeeded: ESAPI's
 * sessions have continueSession set, so the TPM keeps them after use. */
static void end_ek_auth(va_tpm *t, ESYS_TR *session) {
        if (*session != ESYS_TR_PASSWORD && *session != ESYS_TR_NONE)
                (void) Esys_FlushContext(t->esys, *session);
        *session = ESYS_TR_NONE;
}

/* ---------------------------------------------------------------------------------------
 * AK */

#define AK_ATTRS                                                                                       \
        (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |             \
         TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT)

static int ak_template(va_ak_type type, TPM2B_PUBLIC *out) {
        TPMT_PUBLIC *p = &out->publicArea;
        memset(out, 0, sizeof(*out));
        p->nameAlg = TPM2_ALG_SHA256;
        p->objectAttributes = AK_ATTRS;
        switch (type) {
        case VA_AK_RSA_2048:
                p->type = TPM2_ALG_RSA;
                p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
                p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
                p->parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
                p->parameters.rsaDetail.keyBits = 2048;
                p->parameters.rsaDetail.exponent = 0;
                return 0;
        case VA_AK_ECC_P256:
                p->type = TPM2_ALG_ECC;
                p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
                p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
                p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
                p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
                p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
                return 0;
        default:
                return -EINVAL;
        }
}

/* TPM2_Load under the EK as t's AK. The AK loaded before is flushed first: with the EK that
 * keeps to two of the three object slots a TPM without a resource manager may have. */
static int load_ak(va_tpm *t, const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv, vc_error *err) {
        ESYS_TR s = ESYS_TR_NONE, h = ESYS_TR_NONE;
        flush_object(t, &t->ak);
        int r = start_ek_auth(t, &s, err);
        if (r < 0)
                return r;
        TSS2_RC rc = Esys_Load(t->esys, t->ek, s, ESYS_TR_NONE, ESYS_TR_NONE, priv, pub, &h);
        end_ek_auth(t, &s);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, "AK", "TPM2_Load");
        t->ak = h;
        return 0;
}

int va_tpm_ak_create(va_tpm *t, va_ak_type type, TPM2B_PUBLIC *ret_public, TPM2B_PRIVATE *ret_private,
                     vc_error *err) {
        _cleanup_esys_ TPM2B_PRIVATE *out_private = NULL;
        _cleanup_esys_ TPM2B_PUBLIC *out_public = NULL;
        _cleanup_(creation_done) creation c = { 0 };
        TPM2B_PUBLIC tmpl;
        ESYS_TR s = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        vc_error_clear(err);
        if (t->ek == ESYS_TR_NONE)
                return no_key_error(err, "AK create", "EK", "va_tpm_ek");
        if (ak_template(type, &tmpl) < 0)
                return vc_error_set(err, -EINVAL, SIZE_MAX, -1, "AK type %d unknown", (int) type);
        flush_object(t, &t->ak);
        r = start_ek_auth(t, &s, err);
        if (r < 0)
                return r;
        rc = Esys_Create(t->esys, t->ek, s, ESYS_TR_NONE, ESYS_TR_NONE, &no_sensitive, &tmpl, &no_outside_info,
                         &no_pcrs, &out_private, &out_public, &c.data, &c.hash, &c.ticket);
        end_ek_auth(t, &s);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, "AK", "TPM2_Create");
        r = load_ak(t, out_public, out_private, err);
        if (r < 0)
                return r;
        *ret_public = *out_public;
        *ret_private = *out_private;
        return 0;
}

int va_tpm_ak_load(va_tpm *t, const TPM2B_PUBLIC *public, const TPM2B_PRIVATE *private, vc_error *err) {
        vc_error_clear(err);
        if (t->ek == ESYS_TR_NONE)
                return no_key_error(err, "AK load", "EK", "va_tpm_ek");
        return load_ak(t, public, private, err);
}

/* ---------------------------------------------------------------------------------------
 * Credential activation and quotes */

int va_tpm_activate(va_tpm *t, const TPM2B_ID_OBJECT *credential, const TPM2B_ENCRYPTED_SECRET *secret,
                    TPM2B_DIGEST *ret_secret, vc_error *err) {
        _cleanup_esys_ TPM2B_DIGEST *cert_info = NULL;
        ESYS_TR s = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        vc_error_clear(err);
        if (t->ek == ESYS_TR_NONE || t->ak == ESYS_TR_NONE)
                return no_key_error(err, "ActivateCredential", t->ek == ESYS_TR_NONE ? "EK" : "AK",
                                    t->ek == ESYS_TR_NONE ? "va_tpm_ek" : "va_tpm_ak_create or va_tpm_ak_load");
        r = start_ek_auth(t, &s, err);
        if (r < 0)
                return r;
        /* Part 3, 12.5: activateHandle (the AK) in the admin role, keyHandle (the EK) in the
         * user role. The AK's adminWithPolicy is clear, so its empty password serves. */
        rc = Esys_ActivateCredential(t->esys, t->ak, t->ek, ESYS_TR_PASSWORD, s, ESYS_TR_NONE, credential, secret,
                                     &cert_info);
        end_ek_auth(t, &s);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, "credential", "TPM2_ActivateCredential");
        *ret_secret = *cert_info;
        explicit_bzero(cert_info, sizeof(*cert_info));
        return 0;
}

/* Copies sel with every bank's select field 3 bytes long (PCRs 0-23), after checking that it
 * names known banks and no PCR above 23. */
static int normalise_selection(const TPML_PCR_SELECTION *sel, TPML_PCR_SELECTION *out, const char *what,
                               vc_error *err) {
        if (sel->count == 0 || sel->count > TPM2_NUM_PCR_BANKS)
                return vc_error_set(err, -EINVAL, SIZE_MAX, -1, "%s: PCR selection of %u banks", what, sel->count);
        memset(out, 0, sizeof(*out));
        out->count = sel->count;
        for (uint32_t i = 0; i < sel->count; i++) {
                const TPMS_PCR_SELECTION *b = &sel->pcrSelections[i];
                if (!vc_alg_lookup(b->hash))
                        return vc_error_set(err, -ENOTSUP, SIZE_MAX, -1, "%s: PCR bank 0x%04x not supported", what,
                                            b->hash);
                if (b->sizeofSelect > TPM2_PCR_SELECT_MAX)
                        return vc_error_set(err, -EINVAL, SIZE_MAX, -1, "%s: sizeofSelect %u", what, b->sizeofSelect);
                for (uint32_t k = 0; k < b->sizeofSelect; k++)
                        if (k >= VC_PCR_COUNT / 8 && b->pcrSelect[k])
                                return vc_error_set(err, -EINVAL, SIZE_MAX, -1, "%s: PCR above %u selected", what,
                                                    VC_PCR_COUNT - 1);
                out->pcrSelections[i].hash = b->hash;
                out->pcrSelections[i].sizeofSelect = VC_PCR_COUNT / 8;
                memcpy(out->pcrSelections[i].pcrSelect, b->pcrSelect,
                       b->sizeofSelect < VC_PCR_COUNT / 8 ? b->sizeofSelect : VC_PCR_COUNT / 8);
        }
        return 0;
}

int va_tpm_quote(va_tpm *t, const TPML_PCR_SELECTION *sel, const uint8_t *nonce, size_t nonce_len, va_quote *ret,
                 vc_error *err) {
        _cleanup_esys_ TPM2B_ATTEST *quoted = NULL;
        _cleanup_esys_ TPMT_SIGNATURE *signature = NULL;
        TPMT_SIG_SCHEME key_scheme = { .scheme = TPM2_ALG_NULL };
        TPML_PCR_SELECTION s;
        TPM2B_DATA qualifying = { 0 };
        uint8_t sig[sizeof(ret->sig)];
        size_t off = 0;
        TSS2_RC rc;
        int r;

        vc_error_clear(err);
        if (t->ak == ESYS_TR_NONE)
                return no_key_error(err, "quote", "AK", "va_tpm_ak_create or va_tpm_ak_load");
        if (nonce_len > VC_MAX_DIGEST)
                return vc_error_set(err, -E2BIG, SIZE_MAX, -1, "quote: nonce of %zu bytes (limit %d)", nonce_len,
                                    VC_MAX_DIGEST);
        r = normalise_selection(sel, &s, "quote", err);
        if (r < 0)
                return r;
        qualifying.size = (uint16_t) nonce_len;
        if (nonce_len)
                memcpy(qualifying.buffer, nonce, nonce_len);
        rc = Esys_Quote(t->esys, t->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qualifying, &key_scheme, &s,
                        &quoted, &signature);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, "quote", "TPM2_Quote");
        if (quoted->size > sizeof(ret->attest))
                return vc_error_set(err, -EIO, SIZE_MAX, -1, "quote: TPMS_ATTEST of %u bytes", quoted->size);
        rc = Tss2_MU_TPMT_SIGNATURE_Marshal(signature, sig, sizeof(sig), &off);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, "quote", "marshal TPMT_SIGNATURE");
        memcpy(ret->attest, quoted->attestationData, quoted->size);
        ret->attest_len = quoted->size;
        memcpy(ret->sig, sig, off);
        ret->sig_len = off;
        return 0;
}

/* ---------------------------------------------------------------------------------------
 * The device identity key */

/* The parent of a TSS2 PRIVATE KEY file whose parent is TPM_RH_OWNER: the ECC NIST P-256
 * storage template (TPM 2.0 Key Files draft, 3.1.5, "the TCG specified Elliptic Curve
 * template for the NIST P-256 curve"), as tpm2-openssl 1.1.1 (src/tpm2-provider-pkey.c,
 * used when the TPM implements ECC) and tpm2-tss-engine create it: restricted decryption
 * key, fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | noDA, nameAlg SHA-256,
 * AES-128-CFB, no scheme, no KDF, unique empty. Any other field would give another key,
 * and OpenSSL could not load the device key under it. */
static void srk_template(TPM2B_PUBLIC *out) {
        TPMT_PUBLIC *p = &out->publicArea;
        memset(out, 0, sizeof(*out));
        p->type = TPM2_ALG_ECC;
        p->nameAlg = TPM2_ALG_SHA256;
        p->objectAttributes = TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
                              TPMA_OBJECT_NODA | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                              TPMA_OBJECT_SENSITIVEDATAORIGIN;
        p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
        p->parameters.eccDetail.symmetric.keyBits.aes = 128;
        p->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

/* The device key: what vc_certify_verify() requires (VC_DEVKEY_ATTRS_REQUIRED, nothing of
 * VC_DEVKEY_ATTRS_FORBIDDEN) and userWithAuth with an empty authValue, so that OpenSSL
 * signs with it without a password (the key file says emptyAuth). No scheme: unrestricted,
 * it signs ECDSA with the hash TLS or a CSR asks for. */
#define DEVKEY_ATTRS                                                                                    \
        (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |             \
         TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT)

static void devkey_template(TPM2B_PUBLIC *out) {
        TPMT_PUBLIC *p = &out->publicArea;
        memset(out, 0, sizeof(*out));
        p->type = TPM2_ALG_ECC;
        p->nameAlg = TPM2_ALG_SHA256;
        p->objectAttributes = DEVKEY_ATTRS;
        p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

/* The storage primary key into *ret (the caller flushes it), after flushing t's EK to leave
 * a slot for it and one for the device key next to the AK. */
static int create_srk(va_tpm *t, ESYS_TR *ret, vc_error *err) {
        _cleanup_esys_ TPM2B_PUBLIC *out_public = NULL;
        _cleanup_(creation_done) creation c = { 0 };
        TPM2B_PUBLIC tmpl;
        ESYS_TR h = ESYS_TR_NONE;

        flush_object(t, &t->ek);
        srk_template(&tmpl);
        TSS2_RC rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                        &no_sensitive, &tmpl, &no_outside_info, &no_pcrs, &h, &out_public, &c.data,
                                        &c.hash, &c.ticket);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, "device key parent (owner hierarchy, ECC P-256 storage key)",
                                 "TPM2_CreatePrimary");
        *ret = h;
        return 0;
}

int va_tpm_devkey_create(va_tpm *t, TPM2B_PUBLIC *ret_public, TPM2B_PRIVATE *ret_private, vc_error *err) {
        _cleanup_esys_ TPM2B_PRIVATE *out_private = NULL;
        _cleanup_esys_ TPM2B_PUBLIC *out_public = NULL;
        _cleanup_(creation_done) creation c = { 0 };
        TPM2B_PUBLIC tmpl;
        ESYS_TR srk = ESYS_TR_NONE;
        int r;

        vc_error_clear(err);
        r = create_srk(t, &srk, err);
        if (r < 0)
                return r;
        devkey_template(&tmpl);
        TSS2_RC rc = Esys_Create(t->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &no_sensitive, &tmpl,
                                 &no_outside_info, &no_pcrs, &out_private, &out_public, &c.data, &c.hash, &c.ticket);
        flush_object(t, &srk);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, "device key", "TPM2_Create");
        *ret_public = *out_public;
        *ret_private = *out_private;
        return 0;
}

/* Loads the device key under a new storage primary key, which is flushed again right
 * after: *ret is the only object left of the two. */
static int load_devkey(va_tpm *t, const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv, ESYS_TR *ret, vc_error *err) {
        ESYS_TR srk = ESYS_TR_NONE, h = ESYS_TR_NONE;
        int r = create_srk(t, &srk, err);
        if (r < 0)
                return r;
        TSS2_RC rc = Esys_Load(t->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, priv, pub, &h);
        flush_object(t, &srk);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, "device key", "TPM2_Load");
        *ret = h;
        return 0;
}

int va_tpm_devkey_check(va_tpm *t, const TPM2B_PUBLIC *public, const TPM2B_PRIVATE *private, vc_error *err) {
        ESYS_TR h = ESYS_TR_NONE;
        vc_error_clear(err);
        int r = load_devkey(t, public, private, &h, err);
        if (r < 0)
                return r;
        flush_object(t, &h);
        return 0;
}

int va_tpm_devkey_certify(va_tpm *t, const TPM2B_PUBLIC *public, const TPM2B_PRIVATE *private,
                          const uint8_t *qualifying, size_t qualifying_len, va_quote *ret, vc_error *err) {
        _cleanup_esys_ TPM2B_ATTEST *info = NULL;
        _cleanup_esys_ TPMT_SIGNATURE *signature = NULL;
        TPMT_SIG_SCHEME ak_scheme = { .scheme = TPM2_ALG_NULL };
        TPM2B_DATA qd = { 0 };
        ESYS_TR h = ESYS_TR_NONE;
        uint8_t sig[sizeof(ret->sig)];
        size_t off = 0;
        TSS2_RC rc;
        int r;

        vc_error_clear(err);
        if (t->ak == ESYS_TR_NONE)
                return no_key_error(err, "device key certify", "AK", "va_tpm_ak_create or va_tpm_ak_load");
        if (qualifying_len > sizeof(qd.buffer) || qualifying_len > VC_MAX_DIGEST)
                return vc_error_set(err, -E2BIG, SIZE_MAX, -1, "device key certify: qualifying data of %zu bytes (limit %d)",
                                    qualifying_len, VC_MAX_DIGEST);
        qd.size = (uint16_t) qualifying_len;
        if (qualifying_len)
                memcpy(qd.buffer, qualifying, qualifying_len);
        r = load_devkey(t, public, private, &h, err);
        if (r < 0)
                return r;
        /* Part 3, 18.2: objectHandle in the admin role (the key's adminWithPolicy is clear, so
         * its empty password serves), signHandle (the AK) in the user role; the AK signs with
         * its own scheme (inScheme NULL). */
        rc = Esys_Certify(t->esys, h, t->ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD, ESYS_TR_NONE, &qd, &ak_scheme, &info,
                          &signature);
        flush_object(t, &h);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, "device key", "TPM2_Certify");
        if (info->size > sizeof(ret->attest))
                return vc_error_set(err, -EIO, SIZE_MAX, -1, "device key certify: TPMS_ATTEST of %u bytes", info->size);
        rc = Tss2_MU_TPMT_SIGNATURE_Marshal(signature, sig, sizeof(sig), &off);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, "device key certify", "marshal TPMT_SIGNATURE");
        memcpy(ret->attest, info->attestationData, info->size);
        ret->attest_len = info->size;
        memcpy(ret->sig, sig, off);
        ret->sig_len = off;
        return 0;
}

static int bank_bits_left(const TPML_PCR_SELECTION *s) {
        for (uint32_t i = 0; i < s->count; i++)
                for (uint32_t k = 0; k < s->pcrSelections[i].sizeofSelect; k++)
                        if (s->pcrSelections[i].pcrSelect[k])
                                return 1;
        return 0;
}

/* The TPM returned nothing for what is left: name the first PCR missing. A TPM answers so
 * for a bank it implements but has not allocated (Part 3, 22.4.1). */
static int no_value_error(const TPML_PCR_SELECTION *left, vc_error *err) {
        for (uint32_t j = 0; j < left->count; j++)
                for (uint32_t pcr = 0; pcr < VC_PCR_COUNT; pcr++)
                        if (left->pcrSelections[j].pcrSelect[pcr / 8] & (1u << (pcr % 8)))
                                return vc_error_set(err, -ENOENT, SIZE_MAX, -1,
                                                    "PCR read: no value for bank %s PCR %u (bank not active?)",
                                                    vc_alg_lookup(left->pcrSelections[j].hash)->name, pcr);
        return vc_error_set(err, -EIO, SIZE_MAX, -1, "PCR read: no progress");
}

/* One pass: TPM2_PCR_Read until every PCR of want is read. Returns 0, 1 when the update
 * counter changed between calls (start over), or a negative errno. */
static int pcr_read_pass(va_tpm *t, const TPML_PCR_SELECTION *want, vc_pcr_set *set, vc_error *err) {
        TPML_PCR_SELECTION left = *want;
        uint32_t first_counter = 0;

        memset(set, 0, sizeof(*set));
        /* Each call returns at least one value or fails below; 24 PCRs x 16 banks bound it. */
        for (unsigned call = 0; bank_bits_left(&left); call++) {
                _cleanup_esys_ TPML_PCR_SELECTION *got = NULL;
                _cleanup_esys_ TPML_DIGEST *values = NULL;
                uint32_t counter = 0, k = 0;
                TSS2_RC rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &left, &counter, &got,
                                           &values);
                if (rc != TSS2_RC_SUCCESS)
                        return tss_error(err, rc, "PCR read", "TPM2_PCR_Read");
                if (call == 0)
                        first_counter = counter;
                else if (counter != first_counter)
                        return 1;
                /* Part 3, 22.4: the values follow pcrSelectionOut, bank by bank, PCRs ascending. */
                for (uint32_t i = 0; i < got->count; i++) {
                        const TPMS_PCR_SELECTION *g = &got->pcrSelections[i];
                        TPMS_PCR_SELECTION *l = NULL;
                        const vc_alg_info *a = vc_alg_lookup(g->hash);
                        for (uint32_t j = 0; j < left.count && !l; j++)
                                if (left.pcrSelections[j].hash == g->hash)
                                        l = &left.pcrSelections[j];
                        vc_pcr_bank *b = a ? vc_pcr_set_bank(set, g->hash) : NULL;
                        for (uint32_t pcr = 0; pcr < 8u * g->sizeofSelect && pcr < 8u * TPM2_PCR_SELECT_MAX; pcr++) {
                                if (!(g->pcrSelect[pcr / 8] & (1u << (pcr % 8))))
                                        continue;
                                if (!l || !b || pcr >= VC_PCR_COUNT || !(l->pcrSelect[pcr / 8] & (1u << (pcr % 8))))
                                        return vc_error_set(err, -EIO, SIZE_MAX, -1,
                                                            "PCR read: TPM returned bank 0x%04x PCR %u, not asked for",
                                                            g->hash, pcr);
                                if (k >= values->count || values->digests[k].size != a->size)
                                        return vc_error_set(err, -EIO, SIZE_MAX, -1,
                                                            "PCR read: bank %s PCR %u: value %u missing or wrong size",
                                                            a->name, pcr, k);
                                memcpy(b->values[pcr], values->digests[k].buffer, a->size);
                                b->mask |= 1u << pcr;
                                l->pcrSelect[pcr / 8] &= (uint8_t) ~(1u << (pcr % 8));
                                k++;
                        }
                }
                if (k != values->count)
                        return vc_error_set(err, -EIO, SIZE_MAX, -1, "PCR read: %u values for %u selected PCRs",
                                            values->count, k);
                if (k == 0)
                        return no_value_error(&left, err);
        }
        return 0;
}

int va_tpm_pcr_read(va_tpm *t, const TPML_PCR_SELECTION *sel, vc_pcr_set *ret, vc_error *err) {
        TPML_PCR_SELECTION s;
        vc_pcr_set set;
        int r;

        vc_error_clear(err);
        r = normalise_selection(sel, &s, "PCR read", err);
        if (r < 0)
                return r;
        for (int attempt = 0; attempt < 8; attempt++) {
                r = pcr_read_pass(t, &s, &set, err);
                if (r < 0)
                        return r;
                if (r == 0) {
                        *ret = set;
                        return 0;
                }
        }
        return vc_error_set(err, -EAGAIN, SIZE_MAX, -1, "PCR read: PCRs kept changing during 8 attempts");
}

int va_tpm_pcr_extend(va_tpm *t, uint32_t pcr, const TPML_DIGEST_VALUES *digests, vc_error *err) {
        vc_error_clear(err);
        if (pcr >= VC_PCR_COUNT || digests->count == 0 || digests->count > TPM2_NUM_PCR_BANKS)
                return vc_error_set(err, -EINVAL, SIZE_MAX, -1, "PCR extend: PCR %u with %u digests", pcr,
                                    digests->count);
        TSS2_RC rc =
                Esys_PCR_Extend(t->esys, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, digests);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, "PCR extend", "TPM2_PCR_Extend");
        return 0;
}

/* The handles of the type of first (its top byte) the TPM lists. One page holds
 * TPM2_MAX_CAP_HANDLES (254) handles, more than any TPM has object or session slots. */
static int count_handles(va_tpm *t, uint32_t first, uint32_t *ret, vc_error *err) {
        _cleanup_esys_ TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more = TPM2_NO;
        TSS2_RC rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES, first,
                                        TPM2_MAX_CAP_HANDLES, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return tss_error(err, rc, "handles", "TPM2_GetCapability");
        *ret = cap->data.handles.count;
        return 0;
}

int va_tpm_handle_counts(va_tpm *t, uint32_t *ret_transient, uint32_t *ret_sessions, vc_error *err) {
        uint32_t objects = 0, loaded = 0, saved = 0;
        int r;

        vc_error_clear(err);
        /* Not TPM2_TRANSIENT_FIRST: tss2's macro shifts 0x80 as an int into the sign bit. */
        r = count_handles(t, (uint32_t) TPM2_HT_TRANSIENT << 24, &objects, err);
        if (r < 0)
                return r;
        r = count_handles(t, (uint32_t) TPM2_HT_LOADED_SESSION << 24, &loaded, err);
        if (r < 0)
                return r;
        r = count_handles(t, (uint32_t) TPM2_HT_SAVED_SESSION << 24, &saved, err);
        if (r < 0)
                return r;
        *ret_transient = objects;
        *ret_sessions = loaded + saved;
        return 0;
}
