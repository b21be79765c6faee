/* SPDX-License-Identifier: Apache-2.0 */
/* TPM2_MakeCredential in software: known answers for RSA and ECC EKs with a fixed random
 * input, and a test per rejection. The expected bytes were made once by
 * credential-vectors.py, an implementation written apart from credential.c from the TPM
 * 2.0 spec (Part 1, 24) that also undoes each credential with the EK's private key. That
 * a real TPM activates what vc_make_credential makes is the swtpm tests' part
 * (swtpm-credential, swtpm-agent-tpm). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <tss2/tss2_mu.h>

#include "credential.h"

typedef struct vector {
        const char *what;
        uint16_t type, name_alg, key_bits, curve;
        const char *n, *x, *y; /* the EK: RSA modulus, or ECC point */
        const char *secret, *blob, *enc_secret;
} vector;

/* made by test/unit/credential-vectors.py */
static const char rnd_seed[] =
        "5865e21ded2632186af81efe50656bc35b1499a38901854be1dd363832a255fa7d52036442f0b5ac24d4359cdebee127"
        "51040896c85bf8cf53093f03bb5d9bf3";
static const char rnd_oaep[] =
        "c9262376673eb34c6ab4350d1843c7ab3af04c07139063422a1b72d808b76785c66520053fd31b2ff928b924bd9b112c"
        "74e396ffc9b1c3694f0a65e4bb1c8d4b";
static const char rnd_ecc[] =
        "276c106bb6d558a18e3840b248f4075a5cb9555a669e644dec05ddc358ffb509ecff6a80e54600516664216ba0fc8281"
        "f32977c84e0a1ffb588f33b7c17b33aa0b34b4c8b335b2a38d45";
static const char ak_name[] =
        "000b0685d3d8ea314bb5b1a7432d9192614d5ea15f82e32e866a9830d17cb612ea54";
static const char ek_rsa_n[] =
        "bca188746f831f99acf329c0b1d0c4d7a046a9c15dc27ba911ac2765e4b38fb3c01fc3b7b5305035b74b0cbe4ff91b33"
        "5e09c28eed13cd949c914e203adf326b1647cb3ccede237e674c5fdf3b8ac0e37e090dc8c048c7f8cf74e65d491e8e4a"
        "f6dcf45c2f34d8df75742605968fd2fd33fde7d547eee57755ce81a3219f2485a024798094ab4563a4d3d5b18a5cd30c"
        "5660462759a7969e81dd97975eb68b84d2243c0a402c18ad808a3481814bd9e00c92c8dc03f92388db86e98b24673d8c"
        "1563a38e19f874dd0e834f2e994ea1a821f2f3c17ac6bfd2746b717ac02fc1101cc738473cbb2e1f63df27520fd9ac1e"
        "009969ba80c2526142d5755430b619db";
static const vector vectors[] = {
        {
                .what = "RSA 2048, SHA-256, AES-128",
                .type = TPM2_ALG_RSA, .name_alg = 0x000b, .key_bits = 128, .curve = 0x0000,
                .n = ek_rsa_n,
                .secret =
                        "7f4411df4e52e489ddd505361b66380b0d96a973dd93881f39b5c81d7717d600",
                .blob =
                        "00201ccd1b0af77d326f8cdf86949db08245be555bdcca78f76e73d0e99f42c14784fb8335bfd4208a9864d1c457171c"
                        "8e2cb274e1757264570728e7d762595b1b201595",
                .enc_secret =
                        "99495f30975b8892100affba16bf04c47717a0f99dea2fe688e1c61f3b0c444791db1318953c33f33e56a6774326e258"
                        "656469efac2d537d6ca2c858a4015dfa31e91d5a692524b9b9829ffcb54d49e156739b029c126f5803286c33bf34f084"
                        "99d6c13d41d9027ffaa9c5139739d3f1b1e92aa8f4066c46ef1e4112c9e9613a2b7aca3ec6c459ea9bc9315d0b1d30c9"
                        "2117018f30872f473cc60dd7368a5c2fa67b33c5e59734916c5507b29c288fa5d219fbf164a8b5f8320353d1c6a5b256"
                        "d38b4f7a1670f142115ea6f5975ebf9e6a61af3d302ebebf4f911fe1cfb174f871b0ef29a1587f0b4f7a3464c63d5442"
                        "c6c055b10e8dbe02029715b354b50818",
        },
        {
                .what = "RSA 2048, SHA-384, AES-256",
                .type = TPM2_ALG_RSA, .name_alg = 0x000c, .key_bits = 256, .curve = 0x0000,
                .n = ek_rsa_n,
                .secret =
                        "6d2eb6b076b24596cc05ea072087d0fcaa779b295c8e964f03d7f91bb4d13c9d20c5e3c0f050330fad2c3c6628803cdc",
                .blob =
                        "003072907b2554e7992f8aa22faf6d851e0d877ea1b8087badb4d09520f22056879d560710683d21c67b79dd12f661b8"
                        "1bc37581c69b8642aa4c099b3bfe9ddf72b9c45dd4e12ecf6f358740af5feee10d581080a2a0f6832abe9a8905afaa19"
                        "403788cc",
                .enc_secret =
                        "13af03e5f5ab04fe4b2972af15d6246cc6abc87494bfc53c59f673183bdc66cbf6588370d1448460cd6ac06b2ca06fb7"
                        "f45614953287b21b65edd5e793843173cf1e7930e80bdd88570f6b61d573eb71451318cff4e13ce77b99dac3ae98e7f8"
                        "fff0be24226652133b46da61aaec21f547bc6de487ed80da5a76bc474987ee1ae1e0744e415530db9b833d109c920d8e"
                        "258936f4ee9379d871800564cc843ef61b4dc7269047a51dc906283cee835e244141ace2fd17ae0aa1da903440ad1af8"
                        "5a2bc03b973597d5bd9de534c0457c438840989d4acebb29629cd932a95283ee72c2e7319dda40cf1d7c28634bc44530"
                        "a8e135c11dce037c74056e75f4b6a851",
        },
        {
                .what = "ECC P-256, SHA-256, AES-128",
                .type = TPM2_ALG_ECC, .name_alg = 0x000b, .key_bits = 128, .curve = 0x0003,
                .x =
                        "4b22fea6b2865f089bac9919afa28e8cd8c531ca0294d87d5377c5efe47d2408",
                .y =
                        "a50afeb1b854fc313a7f6c96f98c85871131df426651baa09a390a796433df53",
                .secret =
                        "f08c7c420c2a574d3c884960d3568204c54d45d107176410ebc7d1c7a7ce50a2",
                .blob =
                        "002097b23624c93521dbdd0748d5ecc850e54faf5f600b483ce6fe6cb55aea0d94f397d8f4ee7a2950481d1b34591326"
                        "6c4b3158fec0299c181663db1d4d016689e653c4",
                .enc_secret =
                        "00200e6d12961f77c52d6eb5d21b054e7247bd16577bec3478d1126cecc1ff7280020020d39e77473221c88bd16631df"
                        "76133db3ba5173fd94de715566b26e65236595dc",
        },
        {
                .what = "ECC P-384, SHA-384, AES-256",
                .type = TPM2_ALG_ECC, .name_alg = 0x000c, .key_bits = 256, .curve = 0x0004,
                .x =
                        "3e3093b647b2f24eca5eff6f7708c636bf14f7586b2257d9db51667080aec2f593d8a94c599116c0dbb567c2428e8a59",
                .y =
                        "fb17cde919d4f23148e3ca12491425bb0c88e9dc773741786cc39a1f7be89f1fd7ee05e46f4c407717997af0abce8c29",
                .secret =
                        "bbc1c6de79d8ea41ab87c245331d2868fe34bcbf",
                .blob =
                        "00301b2ad655dd75482108029214847b765f05a43dea65fcd849eb72153086377634cd93d1cc2a53dae00e67682452a3"
                        "68a9642a462f130e72c3f8ab7e46b6b034090e6a4a22c686",
                .enc_secret =
                        "00309e6c2d807e7d7d0441bc238c15cbdb881760889584b500a6af68df35bfc68ee356b0949d1a1ce932ac112c9ef5c8"
                        "d3a00030bdba8e2d1584cab24dc3cc4f338973e00b3f28309474a2e1eb9134d0ece4ca5fb9234535211ce245e96969bb"
                        "59204397",
        },
        {
                .what = "ECC P-521, SHA-512, AES-256",
                .type = TPM2_ALG_ECC, .name_alg = 0x000d, .key_bits = 256, .curve = 0x0005,
                .x =
                        "007051c13f4d45e013c7fd3193dca9f3893c51957d1789b0b8f11b0c6f32fa223c66205eb70ad44c2ef6e1ae67dbe53d"
                        "86da5bc7e2f269d9003578b4869922072f15",
                .y =
                        "017470531e4c0b334cd3293ede9e6b5992e4f6ef0ccfff25ff05d09a8ac747d282fa96c85009768ddc3cb2449dbe3bb3"
                        "88a377071e260c9aa3751ecfeee360da2c2b",
                .secret =
                        "63706ef4a595ec76b42b5e808a9d7d62314eb12f525a39df412b10693d69466e42e0db291fd11806f94a6247aa2cee37"
                        "58310a2d1a8c9f88adf421f5abafd61e",
                .blob =
                        "00405d4dae0e4799b10f91b1b17c85d68ff185d36facd341a11d5b3413c9f9bd350309823c907fed7f71115ea3c092a9"
                        "f62b1ca1fe191591c10c8af927c6417b997a089832d6239bddaa2851c488fb2c5bbb086483684af819c5025f8a9c41d6"
                        "f69d9c8e88a10f0641adf1d9c5b2ec9595bda962512202eecc2b81eed33e632f8f07fdea",
                .enc_secret =
                        "00420185ababea4891015c90a2614136a81b6082fdbad9ed326ae3b92d307e03af423e8cca074db25b8d0a4e1677fde7"
                        "c79677f93197da608cc035c8efd640f4f8bd319f0042011283e4d3975c2b1fc9510e323f28a27aeb39f021b7eea1b9b6"
                        "99811645ef0e1c1ceb5f2c5041c68721045fc8f9d69b3f3b2e3d9ed835fbcab50ccb0e15cfe0bac7",
        },
};

static size_t unhex(const char *hex, uint8_t *out, size_t cap) {
        int n = vc_unhex(hex, strlen(hex), out, cap);
        assert_true(n >= 0);
        return (size_t) n;
}

static vc_credential_random fixed_random(void) {
        vc_credential_random rnd;
        assert_int_equal(unhex(rnd_seed, rnd.seed, sizeof(rnd.seed)), sizeof(rnd.seed));
        assert_int_equal(unhex(rnd_oaep, rnd.oaep_seed, sizeof(rnd.oaep_seed)), sizeof(rnd.oaep_seed));
        assert_int_equal(unhex(rnd_ecc, rnd.ecc_key, sizeof(rnd.ecc_key)), sizeof(rnd.ecc_key));
        return rnd;
}

/* The TCG EK templates' shape (restricted decryption key, AES-CFB) around the vector's key. */
static TPMT_PUBLIC ek_of(const vector *v) {
        TPMT_PUBLIC p = { .type = v->type, .nameAlg = v->name_alg };
        TPMT_SYM_DEF_OBJECT *sym =
                v->type == TPM2_ALG_RSA ? &p.parameters.rsaDetail.symmetric : &p.parameters.eccDetail.symmetric;
        p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                             TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
        sym->algorithm = TPM2_ALG_AES;
        sym->keyBits.aes = v->key_bits;
        sym->mode.aes = TPM2_ALG_CFB;
        if (v->type == TPM2_ALG_RSA) {
                p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
                p.parameters.rsaDetail.keyBits = 2048;
                p.unique.rsa.size = (UINT16) unhex(v->n, p.unique.rsa.buffer, sizeof(p.unique.rsa.buffer));
        } else {
                p.parameters.eccDetail.curveID = v->curve;
                p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
                p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
                p.unique.ecc.x.size = (UINT16) unhex(v->x, p.unique.ecc.x.buffer, sizeof(p.unique.ecc.x.buffer));
                p.unique.ecc.y.size = (UINT16) unhex(v->y, p.unique.ecc.y.buffer, sizeof(p.unique.ecc.y.buffer));
        }
        return p;
}

static const vector *vector_of(uint16_t type) {
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++)
                if (vectors[i].type == type)
                        return &vectors[i];
        fail();
        return NULL;
}

static int make(const TPMT_PUBLIC *ek, const vc_credential_random *rnd, const uint8_t *secret, size_t secret_len,
                TPM2B_ID_OBJECT *blob, TPM2B_ENCRYPTED_SECRET *enc, vc_error *err) {
        uint8_t name[sizeof(TPMU_NAME)];
        size_t name_len = unhex(ak_name, name, sizeof(name));
        return vc_make_credential(ek, name, name_len, secret, secret_len, rnd, blob, enc, err);
}

static void test_known_answers(void **state) {
        (void) state;
        vc_credential_random rnd = fixed_random();
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                const vector *v = &vectors[i];
                TPMT_PUBLIC ek = ek_of(v);
                uint8_t secret[64], want_blob[sizeof(TPM2B_ID_OBJECT)], want_enc[sizeof(TPM2B_ENCRYPTED_SECRET)];
                size_t secret_len = unhex(v->secret, secret, sizeof(secret));
                size_t blob_len = unhex(v->blob, want_blob, sizeof(want_blob));
                size_t enc_len = unhex(v->enc_secret, want_enc, sizeof(want_enc));
                TPM2B_ID_OBJECT blob;
                TPM2B_ENCRYPTED_SECRET enc;
                vc_error err;
                print_message("%s\n", v->what);
                assert_int_equal(make(&ek, &rnd, secret, secret_len, &blob, &enc, &err), 0);
                assert_int_equal(blob.size, blob_len);
                assert_memory_equal(blob.credential, want_blob, blob_len);
                assert_int_equal(enc.size, enc_len);
                assert_memory_equal(enc.secret, want_enc, enc_len);
        }
}

/* Each EK type takes its own part of the random input, and all of that part. */
static void test_random_parts(void **state) {
        (void) state;
        const vc_credential_random rnd = fixed_random();
        TPMT_PUBLIC rsa = ek_of(vector_of(TPM2_ALG_RSA)), ecc = ek_of(vector_of(TPM2_ALG_ECC));
        uint8_t secret[32] = { 1 };
        TPM2B_ID_OBJECT b0, b1;
        TPM2B_ENCRYPTED_SECRET e0, e1;
        vc_error err;
        vc_credential_random other;

        assert_int_equal(make(&rsa, &rnd, secret, sizeof(secret), &b0, &e0, &err), 0);
        other = rnd;
        memset(other.ecc_key, 0x5a, sizeof(other.ecc_key));
        assert_int_equal(make(&rsa, &other, secret, sizeof(secret), &b1, &e1, &err), 0);
        assert_memory_equal(&b0, &b1, sizeof(b0));
        assert_memory_equal(&e0, &e1, sizeof(e0));
        other = rnd;
        other.seed[31] ^= 1; /* the last byte of a SHA-256 seed */
        assert_int_equal(make(&rsa, &other, secret, sizeof(secret), &b1, &e1, &err), 0);
        assert_memory_not_equal(b0.credential, b1.credential, b0.size);
        assert_memory_not_equal(e0.secret, e1.secret, e0.size);
        other = rnd;
        other.oaep_seed[31] ^= 1; /* the OAEP seed changes the encrypted seed only */
        assert_int_equal(make(&rsa, &other, secret, sizeof(secret), &b1, &e1, &err), 0);
        assert_memory_equal(&b0, &b1, sizeof(b0));
        assert_memory_not_equal(e0.secret, e1.secret, e0.size);

        assert_int_equal(make(&ecc, &rnd, secret, sizeof(secret), &b0, &e0, &err), 0);
        other = rnd;
        memset(other.seed, 0x5a, sizeof(other.seed));
        memset(other.oaep_seed, 0x5a, sizeof(other.oaep_seed));
        assert_int_equal(make(&ecc, &other, secret, sizeof(secret), &b1, &e1, &err), 0);
        assert_memory_equal(&b0, &b1, sizeof(b0));
        assert_memory_equal(&e0, &e1, sizeof(e0));
        other = rnd;
        other.ecc_key[32 + 7] ^= 1; /* the last of P-256's 32 + 8 bytes */
        assert_int_equal(make(&ecc, &other, secret, sizeof(secret), &b1, &e1, &err), 0);
        assert_memory_not_equal(b0.credential, b1.credential, b0.size);
        assert_memory_not_equal(e0.secret, e1.secret, e0.size);
}

/* A rejected request leaves the outputs as they were and says why. */
static void expect_reject(const TPMT_PUBLIC *ek, size_t secret_len, int code, const char *msg) {
        const vc_credential_random rnd = fixed_random();
        uint8_t secret[128] = { 7 };
        TPM2B_ID_OBJECT blob, blob0;
        TPM2B_ENCRYPTED_SECRET enc, enc0;
        vc_error err;
        memset(&blob, 0xee, sizeof(blob));
        memset(&enc, 0xee, sizeof(enc));
        blob0 = blob;
        enc0 = enc;
        int r = make(ek, &rnd, secret, secret_len, &blob, &enc, &err);
        if (r != code || err.code != code || !strstr(err.msg, msg))
                fail_msg("%d \"%s\", expected %d \"%s\"", r, err.msg, code, msg);
        assert_memory_equal(&blob, &blob0, sizeof(blob));
        assert_memory_equal(&enc, &enc0, sizeof(enc));
}

static void test_rejects(void **state) {
        (void) state;
        const TPMT_PUBLIC rsa = ek_of(vector_of(TPM2_ALG_RSA)), ecc = ek_of(vector_of(TPM2_ALG_ECC));
        TPMT_PUBLIC e;

        expect_reject(&rsa, 0, -EINVAL, "credential of 0 bytes");
        expect_reject(&rsa, 33, -EINVAL, "credential of 33 bytes: 1-32 allowed");
        e = rsa;
        e.nameAlg = TPM2_ALG_SM3_256;
        expect_reject(&e, 32, -ENOTSUP, "EK nameAlg 0x0012 not supported");
        e = rsa;
        e.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CBC;
        expect_reject(&e, 32, -ENOTSUP, "not AES-128/256-CFB");
        e = ecc;
        e.parameters.eccDetail.symmetric.keyBits.aes = 192;
        expect_reject(&e, 32, -ENOTSUP, "not AES-128/256-CFB");
        e = rsa;
        e.type = TPM2_ALG_KEYEDHASH;
        expect_reject(&e, 32, -ENOTSUP, "EK type 0x0008 is not RSA or ECC");
        /* OAEP with SHA-512 needs 3 * 64 + 2 bytes of modulus to carry a 64-byte seed */
        e = rsa;
        e.nameAlg = TPM2_ALG_SHA512;
        e.unique.rsa.size = 128;
        expect_reject(&e, 32, -EINVAL, "an RSA key of 128 bytes cannot carry a sha512 seed");
        e = rsa;
        e.unique.rsa.size = 0;
        expect_reject(&e, 32, -EINVAL, "an RSA key of 0 bytes");

        e = ecc;
        e.parameters.eccDetail.curveID = TPM2_ECC_BN_P256;
        expect_reject(&e, 32, -ENOTSUP, "ECC EK: curve 0x0010 is not supported");
        e = ecc;
        e.unique.ecc.y.buffer[31] ^= 1;
        expect_reject(&e, 32, -EBADMSG, "ECC EK: the point is not on curve prime256v1");
        e = ecc;
        e.unique.ecc.x.size = 33;
        expect_reject(&e, 32, -EBADMSG, "ECC EK: coordinates of 33/32 bytes for a 32-byte curve");
        e = ecc;
        e.unique.ecc.y.size = 0;
        expect_reject(&e, 32, -EBADMSG, "ECC EK: coordinates of 32/0 bytes");
}

static void test_rejects_names(void **state) {
        (void) state;
        const vc_credential_random rnd = fixed_random();
        const TPMT_PUBLIC ek = ek_of(vector_of(TPM2_ALG_ECC));
        uint8_t name[sizeof(TPMU_NAME) + 1] = { 0x00, 0x0b }, secret[32] = { 0 };
        TPM2B_ID_OBJECT blob;
        TPM2B_ENCRYPTED_SECRET enc;
        vc_error err;
        assert_int_equal(vc_make_credential(&ek, name, 1, secret, sizeof(secret), &rnd, &blob, &enc, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "object name of 1 bytes"));
        assert_int_equal(vc_make_credential(&ek, name, sizeof(name), secret, sizeof(secret), &rnd, &blob, &enc, &err),
                         -EINVAL);
        /* the longest Name (SHA-512) is accepted */
        assert_int_equal(vc_make_credential(&ek, name, 2 + 64, secret, sizeof(secret), &rnd, &blob, &enc, &err), 0);
}

/* tpm2_makecredential's file: magic, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET. */
static void test_tpm2_tools_file(void **state) {
        (void) state;
        const vc_credential_random rnd = fixed_random();
        const TPMT_PUBLIC ek = ek_of(vector_of(TPM2_ALG_ECC));
        uint8_t secret[32] = { 3 }, *file;
        size_t len, off = 8;
        TPM2B_ID_OBJECT blob, blob2 = { 0 };
        TPM2B_ENCRYPTED_SECRET enc, enc2 = { 0 };
        vc_error err;
        assert_int_equal(make(&ek, &rnd, secret, sizeof(secret), &blob, &enc, &err), 0);
        assert_int_equal(vc_credential_to_tpm2_tools(&blob, &enc, &file, &len), 0);
        assert_int_equal(len, 8 + 2 + (size_t) blob.size + 2 + enc.size);
        assert_memory_equal(file, ((uint8_t[]) { 0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1 }), 8);
        assert_int_equal(Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(file, len, &off, &blob2), TSS2_RC_SUCCESS);
        assert_int_equal(Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(file, len, &off, &enc2), TSS2_RC_SUCCESS);
        assert_int_equal(off, len);
        assert_memory_equal(blob2.credential, blob.credential, blob.size);
        assert_memory_equal(enc2.secret, enc.secret, enc.size);
        free(file);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_known_answers), cmocka_unit_test(test_random_parts),
                cmocka_unit_test(test_rejects),       cmocka_unit_test(test_rejects_names),
                cmocka_unit_test(test_tpm2_tools_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
