/* records: one stream of per-sample verdicts from either an lm-eval samples
 * JSONL file or a qeval "verdicts JSONL" file.
 *
 * summarize, compare and report all need the same thing from a file: for
 * each problem, who answered (model), what (task, filter, doc_id), whether
 * it was right, and why (response, extracted answer, gold, finish_reason,
 * tokens). This module hides which of the two formats the file is in.
 *
 * Verdicts JSONL (a contract shared with other modules; docs/lmeval-io.md):
 * one object per line, required "doc_id" (int or string) and "correct"
 * (true/false or 0/1); optional "model", "task", "filter" (default "none"),
 * "response", "gold", "extracted", "finish_reason", "doc_hash",
 * "completion_tokens". Missing model = name of the file's parent directory;
 * missing task = file name up to its first '.'
 * (examples/x/bf16/aime24.verdicts.jsonl → model bf16, task aime24).
 *
 * lm-eval samples (samples_<task>_<date>.jsonl): task from the name, model
 * from the sibling results file's model_name (same date id), else the parent
 * directory name; value = the line's metric (exact_match...). qeval's extra
 * fields finish_reason and completion_tokens (or tokens) are read if there.
 *
 * Ownership: every string in a qe_record is owned by the qe_records stream
 * and valid until the next qe_records_next or qe_records_close. */
#ifndef QE_RECORDS_H
#define QE_RECORDS_H

#include "err.h"

enum qe_records_kind { QE_RECORDS_SAMPLES = 1, QE_RECORDS_VERDICTS = 2 };

typedef struct {
    const char *model, *task, *filter;
    int doc_id_is_int;
    long long doc_id;          /* when doc_id_is_int */
    const char *doc_id_text;   /* doc_id as text, always set ("7" or "2024-I-4") */
    const char *doc_hash;      /* "" when unknown */
    double value;              /* correct (0/1) or the sample's metric value */
    const char *metric;        /* "correct" for verdicts, e.g. "exact_match" */
    const char *response;      /* "" when absent */
    const char *extracted;     /* filtered/extracted answer, "" when absent */
    const char *gold;          /* target, "" when absent */
    const char *finish_reason; /* "" when unknown */
    long completion_tokens;    /* -1 when unknown */
    long line;                 /* 1-based line in the file */
} qe_record;

typedef struct qe_records qe_records;

/* Opens path and detects its kind: samples_<task>_<date>.jsonl → samples;
 * otherwise the first parsable line decides ("correct" → verdicts, lm-eval
 * fields → samples). QE_EINVAL when it is neither. */
int qe_records_open(const char *path, qe_records **out, qe_err *e);
enum qe_records_kind qe_records_kind(const qe_records *r);
/* 1 with a record, 0 at end, negative with e = "file:line: what"; after a
 * QE_EINVAL/QE_ELIMIT the caller may continue with the next line. */
int qe_records_next(qe_records *r, qe_record *rec, qe_err *e);
void qe_records_close(qe_records *r);

/* Returns 1 when path looks like a records file by name or content
 * (cheap check used by directory walks: name only). */
int qe_records_name_matches(const char *path);

#endif
