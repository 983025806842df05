/*
 * lin.h - a linearizability checker for histories of operations on secrets.
 *
 * A history is what concurrent clients saw: each operation on one secret (by its key, the name in
 * one environment) with the monotonic times it was called and returned and its outcome. The
 * checker decides whether some total order of the operations, each placed between its call and
 * its return, explains every outcome with one secret per key: absent, or present with a
 * description, maybe a value, and an ETag that every successful write replaces with a new one.
 *
 * The search is Wing & Gong's, with Lowe's memoisation of (operations linearized, state) pairs,
 * run on each key on its own (linearizability is compositional). An operation whose outcome is
 * unknown (no answer, a timeout, a 5xx) may take effect at any moment after its call, or never.
 * tests/lin/README.md describes the history format and the model.
 */
#ifndef SX_LIN_H
#define SX_LIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SX_LIN_ERR_LEN 256 /* room for a parse error message */

typedef enum sx_lin_kind {
    SX_LIN_CREATE = 0,    /* POST .../secrets {name, description} */
    SX_LIN_UPDATE = 1,    /* PUT .../secrets/{name} {description}, maybe with If-Match */
    SX_LIN_DELETE = 2,    /* DELETE .../secrets/{name}, maybe with If-Match */
    SX_LIN_SET_VALUE = 3, /* PUT .../secrets/{name}/value {value}, maybe with If-Match */
    SX_LIN_GET = 4,       /* GET .../secrets/{name} */
    SX_LIN_REVEAL = 5,    /* GET .../secrets/{name}/value */
    SX_LIN_KINDS = 6,
} sx_lin_kind;

typedef enum sx_lin_outcome {
    SX_LIN_OK = 0,      /* a 2xx answer */
    SX_LIN_FAIL = 1,    /* a definite refusal (4xx, or a connection that was never made) */
    SX_LIN_UNKNOWN = 2, /* no answer, a timeout or a 5xx: applied at some moment after the call, or never */
} sx_lin_outcome;

typedef enum sx_lin_fail {
    SX_LIN_FAIL_OTHER = 0,        /* any other refusal: changed nothing, says nothing of the state */
    SX_LIN_FAIL_NOT_FOUND = 1,    /* 404 not_found */
    SX_LIN_FAIL_PRECONDITION = 2, /* 412 precondition_failed */
    SX_LIN_FAIL_EXISTS = 3,       /* 409 already_exists (create) */
} sx_lin_fail;

typedef struct sx_lin_op {
    long line; /* 1-based line of the history file: the operation's number in reports */
    int client;
    size_t key; /* index into sx_lin_history.keys */
    sx_lin_kind kind;
    sx_lin_outcome outcome;
    sx_lin_fail fail;
    int status;     /* HTTP status, 0 when none came */
    int64_t call;   /* CLOCK_MONOTONIC ns */
    int64_t ret;    /* CLOCK_MONOTONIC ns; meaningless when the outcome is unknown */
    char *written;  /* create/update: the description written; set_value: the value written */
    char *if_match; /* the If-Match sent, or NULL */
    char *etag;     /* the ETag answered (ok), or NULL */
    char *seen;     /* get: the description answered (NULL for null); reveal: the value answered */
    int has_value;  /* hasValue answered (create, update, get): 0 or 1; -1 when not answered */
} sx_lin_op;

typedef struct sx_lin_history {
    sx_lin_op *ops;
    size_t n, cap;
    char **keys;
    size_t nkeys, keys_cap;
} sx_lin_history;

typedef struct sx_lin_limits {
    uint64_t max_steps; /* search steps per key before it is undecided (0: 50 million) */
    double max_seconds; /* seconds per key before it is undecided (0: 60) */
} sx_lin_limits;

typedef struct sx_lin_summary {
    size_t ops, keys;
    size_t linearizable_keys, anomalous_keys, undecided_keys;
    size_t by_outcome[3];
    size_t by_kind[SX_LIN_KINDS];
    uint64_t steps; /* search steps over all keys */
} sx_lin_summary;

typedef enum sx_lin_verdict {
    SX_LIN_LINEARIZABLE = 0,
    SX_LIN_NOT_LINEARIZABLE = 1,
    SX_LIN_UNDECIDED = 2,
} sx_lin_verdict;

/* Parse a history (JSON lines) from text, appending to h (zeroed first by the caller). Returns 0,
 * or -EINVAL with a message naming the line in err. */
int sx_lin_history_parse(sx_lin_history *h, const char *text, size_t len, char err[SX_LIN_ERR_LEN]);
/* The same from a file. -errno when it cannot be read. */
int sx_lin_history_load(sx_lin_history *h, const char *path, char err[SX_LIN_ERR_LEN]);
void sx_lin_history_free(sx_lin_history *h);

/* Check every key of h. For each key that is not linearizable (or undecided) a description of
 * the anomaly goes to report (may be NULL): the key, the operations linearized last, the state
 * they leave, the operation no order can place and those pending with it. The worst verdict over
 * the keys is returned (not linearizable before undecided before linearizable); *ret_sum gets the
 * counts when not NULL. */
sx_lin_verdict sx_lin_check(const sx_lin_history *h, const sx_lin_limits *lim, FILE *report, sx_lin_summary *ret_sum);

/* "create", "update", ... */
const char *sx_lin_kind_name(sx_lin_kind k);

#endif
