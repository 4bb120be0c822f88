/* hash: SHA-256 through libcrypto's EVP interface, and lm-eval's hashes
 * (see hash.h for the exact recipes). */
#include "hash.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pyjson.h"

struct qe_hash_task {
    EVP_MD_CTX *ctx;
};

static void to_hex(const unsigned char *md, unsigned n, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < n && i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

void qe_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) || len != 32) {
        memset(out, '0', 64); /* cannot happen with a working libcrypto */
        out[64] = '\0';
        return;
    }
    to_hex(md, len, out);
}

void qe_hash_text(const char *s, size_t n, char out[65])
{
    qe_sha256_hex(s, n, out);
}

int qe_hash_doc(const json_t *doc, char out[65], qe_err *e)
{
    qe_buf b = QE_BUF_INIT;
    int rc = qe_pyjson_dump(&b, doc, 2, 0, e);
    if (rc == 0)
        qe_sha256_hex(qe_buf_str(&b), b.len, out);
    qe_buf_free(&b);
    return rc;
}

qe_hash_task *qe_hash_task_new(void)
{
    qe_hash_task *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ctx = EVP_MD_CTX_new();
    if (!t->ctx || !EVP_DigestInit_ex(t->ctx, EVP_sha256(), NULL)) {
        qe_hash_task_free(t);
        return NULL;
    }
    return t;
}

int qe_hash_task_add(qe_hash_task *t, const char *d, const char *p, const char *g)
{
    if (!EVP_DigestUpdate(t->ctx, d, strlen(d)) || !EVP_DigestUpdate(t->ctx, p, strlen(p)) ||
        !EVP_DigestUpdate(t->ctx, g, strlen(g)))
        return QE_ENOMEM;
    return 0;
}

int qe_hash_task_final(qe_hash_task *t, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!EVP_DigestFinal_ex(t->ctx, md, &len))
        return QE_ENOMEM;
    to_hex(md, len, out);
    return 0;
}

void qe_hash_task_free(qe_hash_task *t)
{
    if (!t)
        return;
    EVP_MD_CTX_free(t->ctx);
    free(t);
}
