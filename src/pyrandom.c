/* pyrandom: CPython random.Random replay (see pyrandom.h).
 *
 * The MT19937 core follows the reference algorithm by Matsumoto and
 * Nishimura that CPython's _randommodule.c also uses; the seeding path is
 * CPython's: the int seed's absolute value is split into 32-bit words,
 * least significant first (a zero seed becomes the single word 0), and fed
 * to init_by_array. */
#include "pyrandom.h"

#include "err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MT_N 624
#define MT_M 397

static void init_genrand(qe_pyrandom *r, uint32_t s)
{
    r->mt[0] = s;
    for (int i = 1; i < MT_N; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->index = MT_N;
}

static void init_by_array(qe_pyrandom *r, const uint32_t *key, size_t len)
{
    init_genrand(r, 19650218u);
    size_t i = 1, j = 0;
    size_t k = MT_N > len ? MT_N : len;
    for (; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1664525u)) + key[j] +
                   (uint32_t)j;
        i++;
        j++;
        if (i >= MT_N) {
            r->mt[0] = r->mt[MT_N - 1];
            i = 1;
        }
        if (j >= len)
            j = 0;
    }
    for (k = MT_N - 1; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= MT_N) {
            r->mt[0] = r->mt[MT_N - 1];
            i = 1;
        }
    }
    r->mt[0] = 0x80000000u; /* MSB is 1, assuring a non-zero initial array */
    r->index = MT_N;
}

void qe_pyrandom_seed(qe_pyrandom *r, uint64_t seed)
{
    uint32_t key[2];
    size_t len = 0;
    key[len++] = (uint32_t)seed;
    if (seed >> 32)
        key[len++] = (uint32_t)(seed >> 32);
    init_by_array(r, key, len);
}

uint32_t qe_pyrandom_u32(qe_pyrandom *r)
{
    static const uint32_t mag01[2] = {0u, 0x9908b0dfu};
    if (r->index >= MT_N) {
        int kk;
        uint32_t y;
        for (kk = 0; kk < MT_N - MT_M; kk++) {
            y = (r->mt[kk] & 0x80000000u) | (r->mt[kk + 1] & 0x7fffffffu);
            r->mt[kk] = r->mt[kk + MT_M] ^ (y >> 1) ^ mag01[y & 1u];
        }
        for (; kk < MT_N - 1; kk++) {
            y = (r->mt[kk] & 0x80000000u) | (r->mt[kk + 1] & 0x7fffffffu);
            r->mt[kk] = r->mt[kk + (MT_M - MT_N)] ^ (y >> 1) ^ mag01[y & 1u];
        }
        y = (r->mt[MT_N - 1] & 0x80000000u) | (r->mt[0] & 0x7fffffffu);
        r->mt[MT_N - 1] = r->mt[MT_M - 1] ^ (y >> 1) ^ mag01[y & 1u];
        r->index = 0;
    }
    uint32_t y = r->mt[r->index++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    return y;
}

uint64_t qe_pyrandom_getrandbits(qe_pyrandom *r, unsigned k)
{
    if (k == 0)
        return 0;
    if (k > 64)
        k = 64;
    if (k <= 32)
        return qe_pyrandom_u32(r) >> (32 - k);
    /* CPython fills 32-bit words least significant first; the last word
     * keeps only its top (k mod 32) bits. */
    uint64_t lo = qe_pyrandom_u32(r);
    uint64_t hi = qe_pyrandom_u32(r) >> (64 - k);
    return lo | (hi << 32);
}

double qe_pyrandom_random(qe_pyrandom *r)
{
    uint32_t a = qe_pyrandom_u32(r) >> 5, b = qe_pyrandom_u32(r) >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

static unsigned bit_length(uint64_t n)
{
    unsigned k = 0;
    while (n) {
        k++;
        n >>= 1;
    }
    return k;
}

uint64_t qe_pyrandom_randbelow(qe_pyrandom *r, uint64_t n)
{
    if (n == 0)
        return 0;
    unsigned k = bit_length(n);
    uint64_t v = qe_pyrandom_getrandbits(r, k);
    while (v >= n)
        v = qe_pyrandom_getrandbits(r, k);
    return v;
}

void qe_pyrandom_shuffle(qe_pyrandom *r, size_t *x, size_t n)
{
    for (size_t i = n; i-- > 1;) {
        size_t j = (size_t)qe_pyrandom_randbelow(r, (uint64_t)i + 1);
        size_t t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
}

/* CPython: setsize = 21; if k > 5: setsize += 4 ** ceil(log(3k, 4)). */
static size_t sample_setsize(size_t k)
{
    size_t setsize = 21;
    if (k > 5) {
        double e = ceil(log((double)(k * 3)) / log(4.0));
        size_t p = 1;
        for (int i = 0; i < (int)e && p < ((size_t)1 << 60); i++)
            p *= 4;
        setsize += p;
    }
    return setsize;
}

static int contains(const size_t *v, size_t n, size_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

int qe_pyrandom_sample(qe_pyrandom *r, size_t n, size_t k, size_t *out)
{
    if (k > n)
        return QE_EINVAL;
    if (n <= sample_setsize(k)) {
        size_t *pool = malloc((n ? n : 1) * sizeof *pool);
        if (!pool)
            return QE_ENOMEM;
        for (size_t i = 0; i < n; i++)
            pool[i] = i;
        for (size_t i = 0; i < k; i++) {
            size_t j = (size_t)qe_pyrandom_randbelow(r, n - i);
            out[i] = pool[j];
            pool[j] = pool[n - i - 1];
        }
        free(pool);
        return 0;
    }
    /* Set branch: redraw while the index was already chosen. The chosen
     * indices are exactly out[0..i), so a linear scan is the set (k is
     * small here: the pool branch covers every n <= ~12k). */
    for (size_t i = 0; i < k; i++) {
        size_t j = (size_t)qe_pyrandom_randbelow(r, n);
        while (contains(out, i, j))
            j = (size_t)qe_pyrandom_randbelow(r, n);
        out[i] = j;
    }
    return 0;
}
