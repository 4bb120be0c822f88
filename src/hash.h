/* hash: SHA-256 hex digests and lm-eval's per-sample / per-task hashes.
 *
 * lm-eval stamps every sample with doc_hash, prompt_hash and target_hash and
 * every task in the results file with task_hashes[task]; matching them lets a
 * reader prove two runs saw the same documents, prompts and targets:
 *  - doc_hash    = sha256(json.dumps(doc, indent=2, ensure_ascii=False))
 *  - prompt_hash = sha256(rendered prompt string, UTF-8)
 *  - target_hash = sha256(str(target))
 *  - task hash   = sha256(concat over samples in order of
 *                         doc_hash + prompt_hash + target_hash)
 * Digests are 64 lowercase hex characters plus NUL. */
#ifndef QE_HASH_H
#define QE_HASH_H

#include <jansson.h>
#include <stddef.h>

#include "err.h"

#define QE_SHA256_HEX_LEN 64

void qe_sha256_hex(const void *p, size_t n, char out[65]);

/* doc_hash of a document (object in its dataset key order). */
int qe_hash_doc(const json_t *doc, char out[65], qe_err *e);
/* prompt_hash / target_hash of a NUL-free or counted string. */
void qe_hash_text(const char *s, size_t n, char out[65]);

/* Incremental task hash. new returns NULL when out of memory; free the
 * result of new with qe_hash_task_free (also after final). */
typedef struct qe_hash_task qe_hash_task;
qe_hash_task *qe_hash_task_new(void);
/* Feeds one sample's three hex hashes, in doc order. */
int qe_hash_task_add(qe_hash_task *t, const char *doc_hash, const char *prompt_hash,
                     const char *target_hash);
int qe_hash_task_final(qe_hash_task *t, char out[65]);
void qe_hash_task_free(qe_hash_task *t);

#endif
