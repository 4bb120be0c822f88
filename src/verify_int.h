/* verify_int: internals shared by the verifier's files (not a public API).
 *
 * verify_lex.c turns an answer into tokens, verify_parse.c builds the
 * expression tree, verify_eval.c computes values (exact rationals,
 * polynomials, MPFR numbers), verify.c compares trees and is the public entry
 * point. Every arena lives in qe_verify_scratch, sized once. */
#ifndef QE_VERIFY_INT_H
#define QE_VERIFY_INT_H

#include <gmp.h>
#include <mpfr.h>
#include <stdint.h>

#include "verify.h"

#define VQ_MAX_INPUT 4096   /* bytes of one answer */
#define VQ_MAX_TOK 2048     /* tokens of one answer */
#define VQ_MAX_NODE 4096    /* tree nodes for both answers */
#define VQ_MAX_KIDS 4096    /* list children for both answers */
#define VQ_MAX_DEPTH 64     /* parser recursion */
#define VQ_MAX_LIST 256     /* elements in one list */
#define VQ_MAX_Q 512        /* exact-value slots (pairs of mpq) */
#define VQ_MAX_F 256        /* numeric slots (pairs of mpfr) */
#define VQ_MAX_VARS 8       /* distinct variables */
#define VQ_MAX_TERMS 256    /* terms in one polynomial */
#define VQ_MAX_POLY 128     /* live polynomials */
#define VQ_MAX_EXP_BITS 200000/* bits of an exact power's result */
#define VQ_BUDGET 200000    /* evaluation steps per pair */
#define VQ_PREC 320         /* MPFR precision in bits */

enum vq_tok {
    T_EOF, T_NUM, T_ID, T_WORD, T_FUNC, T_FRAC, T_SQRT, T_BINOM, T_PI, T_INF,
    T_PLUS, T_MINUS, T_MUL, T_DIV, T_POW, T_SUB, T_BANG, T_EQ, T_LT, T_LE, T_GT,
    T_GE, T_NE, T_PM, T_MP, T_LP, T_RP, T_LB, T_RB, T_LBR, T_RBR, T_LSET,
    T_RSET, T_COMMA, T_SEMI, T_AMP, T_ROWSEP, T_BEGIN, T_END, T_CIRC, T_PCT,
    T_CUP, T_IN, T_COLON, T_BAR, T_BAD
};

enum vq_func {
    F_SIN = 1, F_COS, F_TAN, F_SEC, F_CSC, F_COT, F_ASIN, F_ACOS, F_ATAN,
    F_SINH, F_COSH, F_TANH, F_LN, F_LOG, F_EXP
};

typedef struct {
    uint8_t k;      /* enum vq_tok */
    uint8_t sub;    /* function id, or 1 for a matrix environment */
    uint16_t len;
    const char *s;  /* text (numbers cleaned of separators) */
} vq_tok;

enum vq_node {
    N_NUM, N_SYM, N_PI, N_E, N_I, N_INF, N_ADD, N_MUL, N_DIV, N_NEG, N_POW,
    N_FUNC, N_ROOT, N_FACT, N_BINOM, N_PCT, N_DEG, N_ABS, N_TUPLE, N_SET,
    N_LIST, N_UNION, N_MATRIX, N_EQ, N_REL, N_TEXT, N_BASE, N_PM
};

/* tuple bracket flags */
#define VQ_LOPEN 1  /* '(' on the left (else '[') */
#define VQ_ROPEN 2  /* ')' on the right (else ']') */
#define VQ_CALL 1   /* N_MUL flag: written like a function call, f(x) */

typedef struct {
    uint8_t k;      /* enum vq_node */
    uint8_t f;      /* function id, relation token, bracket flags */
    uint16_t n;     /* list length */
    int32_t a, b;   /* children (node index, or kids index for lists), -1 none */
    int32_t c;      /* matrix columns */
    const char *s;  /* number / symbol / text */
    int32_t len;
} vq_node;

struct qe_verify_scratch {
    char text[2][VQ_MAX_INPUT * 2 + 64];
    vq_tok tok[VQ_MAX_TOK];
    int ntok, pos, depth;
    int side, tpos;          /* text buffer in use and its fill */
    vq_node node[VQ_MAX_NODE];
    int nnode;
    int32_t kids[VQ_MAX_KIDS];
    int nkids;
    const char *perr;        /* parse error, static string */
    /* evaluation */
    mpq_t q[VQ_MAX_Q][2];    /* exact slots: re, im */
    int nq;
    mpfr_t f[VQ_MAX_F][2];   /* numeric slots: re, im */
    int nf;
    mpfr_t tmp[6];
    long budget;
    const char *eerr;        /* evaluation limit hit, static string */
    /* variables: names seen in either answer */
    const char *var[VQ_MAX_VARS];
    int varlen[VQ_MAX_VARS];
    int nvar;
    int point;               /* numeric test point index */
    /* polynomials */
    struct vq_poly {
        int n;
        uint64_t mono[VQ_MAX_TERMS]; /* 8 exponents of 8 bits */
    } poly[VQ_MAX_POLY];
    int npoly;
    mpq_t polyq[VQ_MAX_POLY][VQ_MAX_TERMS];
};

/* verify_lex.c: tokens of src into s->tok; side selects the text buffer.
 * Returns 0 or -1 with s->perr set. */
int qe_verify_lex(qe_verify_scratch *s, int side, const char *src, size_t len);
/* verify_parse.c: tree of the current tokens; returns the root or -1. */
int qe_verify_parse(qe_verify_scratch *s);

/* verify_eval.c */
enum { VQ_OK = 0, VQ_NOTEXACT = 1, VQ_FAIL = 2, VQ_LIMIT = 3 };
/* Exact Gaussian-rational value of node n into a fresh slot *out. */
int qe_verify_exact(qe_verify_scratch *s, int n, int *out);
/* Sparse polynomial with rational coefficients into a fresh poly *out. */
int qe_verify_poly(qe_verify_scratch *s, int n, int *out);
int qe_verify_poly_equal(qe_verify_scratch *s, int a, int b);
/* MPFR complex value at test point s->point into fresh numeric slot *out. */
int qe_verify_num(qe_verify_scratch *s, int n, int *out);
/* 1 if numeric slots a and b agree within the tolerance, 0 if not. */
int qe_verify_num_close(qe_verify_scratch *s, int a, int b);
/* Registers the variables of node n; returns -1 if there are too many. */
int qe_verify_collect_vars(qe_verify_scratch *s, int n);
void qe_verify_eval_reset(qe_verify_scratch *s);
int qe_verify_eval_init(qe_verify_scratch *s);
void qe_verify_eval_free(qe_verify_scratch *s);

#endif
