/* pyrandom: bit-exact re-implementation of CPython's random.Random for
 * integer seeds (MT19937 seeded through init_by_array exactly as CPython
 * does for int seeds), enough of it to replay lm-eval's few-shot sampler.
 *
 * Matches CPython 3.x: getrandbits, random(), _randbelow (the getrandbits
 * rejection loop), shuffle and sample (both the pool branch and the
 * set-based branch with CPython's setsize rule). Golden values come from
 * python3 itself (tests/cases/pyrandom.jsonl). The state is a plain struct
 * owned by the caller; nothing here allocates except qe_pyrandom_sample. */
#ifndef QE_PYRANDOM_H
#define QE_PYRANDOM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t mt[624];
    int index;
} qe_pyrandom;

/* random.Random(seed) for a non-negative int seed (CPython uses abs()). */
void qe_pyrandom_seed(qe_pyrandom *r, uint64_t seed);
/* One raw 32-bit output (== getrandbits(32)). */
uint32_t qe_pyrandom_u32(qe_pyrandom *r);
/* getrandbits(k) for 0 <= k <= 64. */
uint64_t qe_pyrandom_getrandbits(qe_pyrandom *r, unsigned k);
/* random(): 53-bit double in [0, 1). */
double qe_pyrandom_random(qe_pyrandom *r);
/* _randbelow(n) for n >= 1: uniform in [0, n). n == 0 returns 0. */
uint64_t qe_pyrandom_randbelow(qe_pyrandom *r, uint64_t n);
/* shuffle(x) applied to an array of n indices, in place. */
void qe_pyrandom_shuffle(qe_pyrandom *r, size_t *x, size_t n);
/* sample(range(n), k): writes k indices into out (caller-owned, k slots).
 * Returns 0, QE_EINVAL if k > n, QE_ENOMEM if the working set could not
 * be allocated (freed before return). */
int qe_pyrandom_sample(qe_pyrandom *r, size_t n, size_t k, size_t *out);

#endif
