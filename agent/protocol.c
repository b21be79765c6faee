/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>
#include <tss2/tss2_mu.h>

#include "protocol.h"
#include "wire.h"

int va_challenge_selection(const Vouch__V1__QuoteChallenge *ch, TPML_PCR_SELECTION *ret) {
        TPML_PCR_SELECTION sel = { 0 };
        if (ch->n_selection == 0 || ch->n_selection > VA_MAX_BANKS || ch->nonce.len > VA_MAX_NONCE)
                return -EBADMSG;
        for (size_t i = 0; i < ch->n_selection; i++) {
                TPMS_PCR_SELECTION *s = &sel.pcrSelections[sel.count++];
                s->hash = (TPMI_ALG_HASH) ch->selection[i]->hash_alg;
                s->sizeofSelect = VA_PCRS / 8;
                for (size_t j = 0; j < ch->selection[i]->n_pcrs; j++) {
                        uint32_t p = ch->selection[i]->pcrs[j];
                        if (p < VA_PCRS)
                                s->pcrSelect[p / 8] |= (uint8_t) (1u << (p % 8));
                }
        }
        *ret = sel;
        return 0;
}

size_t va_eventlog_from(uint64_t offset, size_t log_len) {
        return offset <= log_len ? (size_t) offset : 0;
}

int va_activate_challenge_parse(const Vouch__V1__ActivateChallenge *c, TPM2B_ID_OBJECT *ret_blob,
                                TPM2B_ENCRYPTED_SECRET *ret_secret) {
        TPM2B_ID_OBJECT blob = { 0 };
        TPM2B_ENCRYPTED_SECRET secret = { 0 };
        size_t o1 = 0, o2 = 0;
        if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(c->credential_blob.data, c->credential_blob.len, &o1, &blob) !=
                    TSS2_RC_SUCCESS ||
            Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(c->encrypted_secret.data, c->encrypted_secret.len, &o2, &secret) !=
                    TSS2_RC_SUCCESS)
                return -EBADMSG;
        *ret_blob = blob;
        *ret_secret = secret;
        return 0;
}

void va_answer_pcrs_init(va_answer_pcrs *p) {
        p->n_banks = 0;
}

int va_answer_pcrs_bank(va_answer_pcrs *p, uint32_t hash_alg) {
        if (p->n_banks >= VA_MAX_BANKS)
                return -E2BIG;
        Vouch__V1__PcrBank *b = &p->banks[p->n_banks];
        vouch__v1__pcr_bank__init(b);
        b->hash_alg = hash_alg;
        b->values = p->entryp[p->n_banks];
        p->bankp[p->n_banks] = b;
        p->n_banks++;
        return 0;
}

int va_answer_pcrs_value(va_answer_pcrs *p, uint32_t pcr, const uint8_t *value, size_t size) {
        if (p->n_banks == 0 || pcr >= VA_PCRS)
                return -EINVAL;
        size_t bank = p->n_banks - 1;
        Vouch__V1__PcrBank *b = &p->banks[bank];
        if (b->n_values >= VA_PCRS)
                return -E2BIG;
        Vouch__V1__PcrBank__ValuesEntry *e = &p->entries[bank][b->n_values];
        vouch__v1__pcr_bank__values_entry__init(e);
        e->key = pcr;
        e->value.data = (uint8_t *) value;
        e->value.len = size;
        p->entryp[bank][b->n_values++] = e;
        return 0;
}

void va_answer_pcrs_put(va_answer_pcrs *p, Vouch__V1__QuoteAnswer *a) {
        a->pcrs = p->bankp;
        a->n_pcrs = p->n_banks;
}

int va_frame(const Vouch__V1__AgentMessage *m, uint8_t **ret, size_t *ret_len) {
        return vw_frame_agent_message(m, VA_MAX_AGENT_FRAME, ret, ret_len);
}

int va_frame_activate_answer(const uint8_t *secret, size_t len, uint8_t **ret, size_t *ret_len) {
        Vouch__V1__ActivateAnswer aa = VOUCH__V1__ACTIVATE_ANSWER__INIT;
        aa.secret.data = (uint8_t *) secret;
        aa.secret.len = len;
        Vouch__V1__AgentMessage m = VOUCH__V1__AGENT_MESSAGE__INIT;
        m.msg_case = VOUCH__V1__AGENT_MESSAGE__MSG_ACTIVATE;
        m.activate = &aa;
        return va_frame(&m, ret, ret_len);
}
