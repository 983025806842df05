/*
 * test_lin.c - the linearizability checker (lin.h) on hand-made histories: each anomaly a store
 * could show (a stale read, a lost write, a resurrected delete, a value nobody wrote, an If-Match
 * that should have failed, a stale ETag) is found, and the histories concurrency and lost answers
 * allow (overlapping writes read in either order, an unanswered write seen later or never) pass.
 * No server: fast.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lin.h"
#include "testutil.h"

/* A history under construction: one JSON line per add(). */
typedef struct hist {
    char buf[16384];
    size_t len;
} hist;

/* One operation on key "a" (or the key in extra, which then starts with "key"). ret < 0: the answer
 * never came. res: "ok", "unknown" or a failure code. extra: more JSON members, or "". */
static void add(hist *h, int client, const char *op, long call, long ret, const char *res, const char *extra)
{
    const char *outcome = strcmp(res, "ok") == 0 ? "ok" : strcmp(res, "unknown") == 0 ? "unknown" : "fail";
    int status = strcmp(res, "ok") == 0                    ? 200
                 : strcmp(res, "not_found") == 0           ? 404
                 : strcmp(res, "precondition_failed") == 0 ? 412
                 : strcmp(res, "already_exists") == 0      ? 409
                                                           : 0;
    char rets[64] = "";
    if (ret >= 0)
        snprintf(rets, sizeof(rets), ",\"ret\":%ld", ret);
    h->len += (size_t)snprintf(h->buf + h->len, sizeof(h->buf) - h->len,
                               "{\"client\":%d,\"key\":\"a\",\"op\":\"%s\",\"call\":%ld%s,\"outcome\":\"%s\","
                               "\"status\":%d,\"code\":\"%s\"%s%s}\n",
                               client, op, call, rets, outcome, status, res, *extra ? "," : "", extra);
}

static char last_report[8192]; /* what the last verdict_of() reported */

static sx_lin_verdict verdict_of(const hist *h, const sx_lin_limits *lim)
{
    sx_lin_history lh = {0};
    char err[SX_LIN_ERR_LEN];
    int rc = sx_lin_history_parse(&lh, h->buf, h->len, err);
    if (rc != 0) {
        fprintf(stderr, "parse: %s\n", err);
        sx_lin_history_free(&lh);
        return (sx_lin_verdict)-1;
    }
    char *rep = NULL;
    size_t rl = 0;
    FILE *f = open_memstream(&rep, &rl);
    sx_lin_verdict v = sx_lin_check(&lh, lim, f, NULL);
    fclose(f);
    fputs(rep, stdout);
    snprintf(last_report, sizeof(last_report), "%s", rep);
    free(rep);
    sx_lin_history_free(&lh);
    return v;
}

/* create "a" with description d0 (ETag E0) in [0, 10]. */
static void created(hist *h)
{
    add(h, 0, "create", 0, 10, "ok", "\"written\":\"d0\",\"etag\":\"E0\",\"has_value\":false");
}

static void sequential_history_is_linearizable(void)
{
    hist h = {0};
    add(&h, 0, "get", 0, 5, "not_found", "");
    add(&h, 0, "reveal", 6, 7, "not_found", "");
    add(&h, 0, "create", 8, 10, "ok", "\"written\":\"d0\",\"etag\":\"E0\",\"has_value\":false");
    add(&h, 1, "create", 11, 12, "already_exists", "\"written\":\"d9\"");
    add(&h, 0, "reveal", 13, 14, "not_found", "");
    add(&h, 0, "set_value", 20, 30, "ok", "\"written\":\"v1\",\"etag\":\"E1\"");
    add(&h, 1, "get", 31, 32, "ok", "\"seen\":\"d0\",\"etag\":\"E1\",\"has_value\":true");
    add(&h, 1, "update", 33, 34, "ok", "\"written\":\"d1\",\"if_match\":\"E1\",\"etag\":\"E2\",\"has_value\":true");
    add(&h, 0, "reveal", 35, 36, "ok", "\"seen\":\"v1\",\"etag\":\"E2\"");
    add(&h, 0, "update", 37, 38, "precondition_failed", "\"written\":\"d2\",\"if_match\":\"E1\"");
    add(&h, 0, "delete", 40, 41, "ok", "");
    add(&h, 1, "set_value", 42, 43, "not_found", "\"written\":\"v2\"");
    add(&h, 1, "update", 44, 45, "not_found", "\"written\":\"d3\",\"if_match\":\"E2\"");
    add(&h, 1, "get", 46, 47, "not_found", "");
    CHECK_INT(verdict_of(&h, NULL), SX_LIN_LINEARIZABLE);
}

static void stale_read_is_not_linearizable(void)
{
    hist h = {0};
    created(&h);
    add(&h, 0, "set_value", 20, 30, "ok", "\"written\":\"v1\",\"etag\":\"E1\"");
    add(&h, 0, "set_value", 40, 50, "ok", "\"written\":\"v2\",\"etag\":\"E2\"");
    add(&h, 1, "reveal", 60, 70, "ok", "\"seen\":\"v1\",\"etag\":\"E1\"");
    CHECK_INT(verdict_of(&h, NULL), SX_LIN_NOT_LINEARIZABLE);
    /* the report names the key, the write read last and the read no order can place */
    CHECK(strstr(last_report, "key a: not linearizable") != NULL);
    CHECK(strstr(last_report, "#3 client 0 set_value value=v2 -> ok") != NULL);
    CHECK(strstr(last_report, "value of #3") != NULL);
    CHECK(strstr(last_report, "#4 client 1 reveal -> ok 200 value=v1") != NULL);
    CHECK(strstr(last_report, "places 3 of the 4 answered") != NULL);
}

static void stale_etag_is_not_linearizable(void)
{
    hist h = {0};
    created(&h);
    add(&h, 0, "update", 20, 30, "ok", "\"written\":\"d1\",\"etag\":\"E1\",\"has_value\":false");
    add(&h, 1, "get", 40, 50, "ok", "\"seen\":\"d1\",\"etag\":\"E0\",\"has_value\":false");
    CHECK_INT(verdict_of(&h, NULL), SX_LIN_NOT_LINEARIZABLE);
}

static void lost_write_is_not_linearizable(void)
{
    hist h = {0};
    created(&h);
    add(&h, 0, "set_value", 20, 30, "ok", "\"written\":\"v1\",\"etag\":\"E1\"");
    add(&h, 1, "reveal", 40, 50, "not_found", "");
    CHECK_INT(verdict_of(&h, NULL), SX_LIN_NOT_LINEARIZABLE);

    hist g = {0}; /* the second of two writes lost: the first one is read after both returned */
    created(&g);
    add(&g, 0, "update", 20, 30, "ok", "\"written\":\"d1\",\"etag\":\"E1\",\"has_value\":false");
    add(&g, 1, "update", 31, 35, "ok", "\"written\":\"d2\",\"etag\":\"E2\",\"has_value\":false");
    add(&g, 2, "get", 40, 50, "ok", "\"seen\":\"d1\",\"etag\":\"E1\",\"has_value\":false");
    CHECK_INT(verdict_of(&g, NULL), SX_LIN_NOT_LINEARIZABLE);
}

static void resurrected_delete_is_not_linearizable(void)
{
    hist h = {0};
    created(&h);
    add(&h, 0, "set_value", 20, 30, "ok", "\"written\":\"v1\",\"etag\":\"E1\"");
    add(&h, 0, "delete", 40, 50, "ok", "");
    add(&h, 1, "get", 60, 65, "not_found", "");
    add(&h, 1, "reveal", 70, 80, "ok", "\"seen\":\"v1\",\"etag\":\"E1\"");
    CHECK_INT(verdict_of(&h, NULL), SX_LIN_NOT_LINEARIZABLE);

    hist g = {0}; /* recreated: fresh, without the old value */
    created(&g);
    add(&g, 0, "set_value", 20, 30, "ok", "\"written\":\"v1\",\"etag\":\"E1\"");
    add(&g, 0, "delete", 40, 50, "ok", "");
    add(&g, 1, "create", 60, 65, "ok", "\"written\":\"d5\",\"etag\":\"E5\",\"has_value\":false");
    add(&g, 1, "reveal", 70, 80, "ok", "\"seen\":\"v1\",\"etag\":\"E5\"");
    CHECK_INT(verdict_of(&g, NULL), SX_LIN_NOT_LINEARIZABLE);
}

static void value_never_written_is_not_linearizable(void)
{
    hist h = {0};
    created(&h);
    add(&h, 0, "set_value", 20, 30, "ok", "\"written\":\"v1\",\"etag\":\"E1\"");
    add(&h, 1, "reveal", 25, 80, "ok", "\"seen\":\"garbage\",\"etag\":\"E1\"");
    CHECK_INT(verdict_of(&h, NULL), SX_LIN_NOT_LINEARIZABLE);

    hist g = {0};
    created(&g);
    add(&g, 1, "get", 25, 80, "ok", "\"seen\":\"nobody wrote this\",\"etag\":\"E0\",\"has_value\":false");
    CHECK_INT(verdict_of(&g, NULL), SX_LIN_NOT_LINEARIZABLE);
}

static void overlapping_writes_read_in_either_order_are_linearizable(void)
{
    for (int order = 0; order < 2; order++) {
        hist h = {0};
        created(&h);
        add(&h, 0, "set_value", 20, 50, "ok", "\"written\":\"v1\",\"etag\":\"E1\"");
        add(&h, 1, "set_value", 25, 60, "ok", "\"written\":\"v2\",\"etag\":\"E2\"");
        /* a read during both writes, and after both: the same order */
        add(&h, 2, "reveal", 30, 40, "ok",
            order ? "\"seen\":\"v2\",\"etag\":\"E2\"" : "\"seen\":\"v1\",\"etag\":\"E1\"");
        add(&h, 2, "reveal", 70, 80, "ok",
            order ? "\"seen\":\"v1\",\"etag\":\"E1\"" : "\"seen\":\"v2\",\"etag\":\"E2\"");
        CHECK_INT(verdict_of(&h, NULL), SX_LIN_LINEARIZABLE);
    }
    /* but after both returned, two reads in a row cannot see them in both orders */
    hist g = {0};
    created(&g);
    add(&g, 0, "set_value", 20, 50, "ok", "\"written\":\"v1\",\"etag\":\"E1\"");
    add(&g, 1, "set_value", 25, 60, "ok", "\"written\":\"v2\",\"etag\":\"E2\"");
    add(&g, 2, "reveal", 70, 80, "ok", "\"seen\":\"v2\",\"etag\":\"E2\"");
    add(&g, 2, "reveal", 90, 95, "ok", "\"seen\":\"v1\",\"etag\":\"E1\"");
    CHECK_INT(verdict_of(&g, NULL), SX_LIN_NOT_LINEARIZABLE);
}

static void unknown_write_seen_later_is_linearizable(void)
{
    hist h = {0};
    created(&h);
    add(&h, 0, "set_value", 20, 30, "ok", "\"written\":\"v1\",\"etag\":\"E1\"");
    add(&h, 0, "set_value", 40, -1, "unknown", "\"written\":\"v2\"");
    add(&h, 1, "reveal", 100, 110, "ok", "\"seen\":\"v1\",\"etag\":\"E1\"");
    /* its ETag no acknowledged write answered: the unknown write's */
    add(&h, 1, "reveal", 500, 510, "ok", "\"seen\":\"v2\",\"etag\":\"EX\"");
    add(&h, 1, "update", 520, 530, "ok", "\"written\":\"d1\",\"if_match\":\"EX\",\"etag\":\"E3\",\"has_value\":true");
    CHECK_INT(verdict_of(&h, NULL), SX_LIN_LINEARIZABLE);

    hist g = {0}; /* but not before its call */
    created(&g);
    add(&g, 1, "reveal", 20, 30, "ok", "\"seen\":\"v2\",\"etag\":\"EX\"");
    add(&g, 0, "set_value", 40, -1, "unknown", "\"written\":\"v2\"");
    CHECK_INT(verdict_of(&g, NULL), SX_LIN_NOT_LINEARIZABLE);

    hist f = {0}; /* an unknown ETag cannot name a write whose ETag is known */
    created(&f);
    add(&f, 0, "set_value", 20, 30, "ok", "\"written\":\"v1\",\"etag\":\"E1\"");
    add(&f, 1, "reveal", 40, 50, "ok", "\"seen\":\"v1\",\"etag\":\"EX\"");
    CHECK_INT(verdict_of(&f, NULL), SX_LIN_NOT_LINEARIZABLE);
}

static void unknown_write_never_seen_is_linearizable(void)
{
    hist h = {0};
    created(&h);
    add(&h, 0, "set_value", 20, 30, "ok", "\"written\":\"v1\",\"etag\":\"E1\"");
    add(&h, 0, "set_value", 40, -1, "unknown", "\"written\":\"v2\"");
    add(&h, 0, "delete", 41, -1, "unknown", "");
    add(&h, 1, "reveal", 100, 110, "ok", "\"seen\":\"v1\",\"etag\":\"E1\"");
    add(&h, 1, "reveal", 200, 210, "ok", "\"seen\":\"v1\",\"etag\":\"E1\"");
    CHECK_INT(verdict_of(&h, NULL), SX_LIN_LINEARIZABLE);
}

static void if_match_success_after_concurrent_update_is_not_linearizable(void)
{
    hist h = {0};
    created(&h);
    add(&h, 0, "update", 20, 40, "ok", "\"written\":\"d1\",\"if_match\":\"E0\",\"etag\":\"E1\",\"has_value\":false");
    add(&h, 1, "update", 25, 45, "ok", "\"written\":\"d2\",\"if_match\":\"E0\",\"etag\":\"E2\",\"has_value\":false");
    CHECK_INT(verdict_of(&h, NULL), SX_LIN_NOT_LINEARIZABLE);

    hist g = {0}; /* one of them refused: fine, in either order of the calls */
    created(&g);
    add(&g, 0, "update", 20, 40, "ok", "\"written\":\"d1\",\"if_match\":\"E0\",\"etag\":\"E1\",\"has_value\":false");
    add(&g, 1, "set_value", 25, 45, "precondition_failed", "\"written\":\"v1\",\"if_match\":\"E0\"");
    add(&g, 2, "update", 21, 43, "precondition_failed", "\"written\":\"d2\",\"if_match\":\"E0\"");
    CHECK_INT(verdict_of(&g, NULL), SX_LIN_LINEARIZABLE);

    hist f = {0}; /* a 412 with the current ETag */
    created(&f);
    add(&f, 1, "delete", 25, 45, "precondition_failed", "\"if_match\":\"E0\"");
    CHECK_INT(verdict_of(&f, NULL), SX_LIN_NOT_LINEARIZABLE);
}

static void failures_are_observations(void)
{
    hist h = {0}; /* "already exists" of a name nobody created */
    add(&h, 0, "create", 0, 10, "already_exists", "\"written\":\"d0\"");
    CHECK_INT(verdict_of(&h, NULL), SX_LIN_NOT_LINEARIZABLE);

    hist g = {0}; /* "not found" of a secret that exists */
    created(&g);
    add(&g, 0, "update", 20, 30, "not_found", "\"written\":\"d1\"");
    CHECK_INT(verdict_of(&g, NULL), SX_LIN_NOT_LINEARIZABLE);

    hist f = {0}; /* other refusals change nothing and say nothing */
    created(&f);
    add(&f, 0, "delete", 20, 30, "forbidden", "");
    add(&f, 0, "get", 40, 50, "ok", "\"seen\":\"d0\",\"etag\":\"E0\",\"has_value\":false");
    CHECK_INT(verdict_of(&f, NULL), SX_LIN_LINEARIZABLE);
}

static void keys_are_checked_independently(void)
{
    hist h = {0};
    created(&h);
    h.len += (size_t)snprintf(h.buf + h.len, sizeof(h.buf) - h.len,
                              "{\"client\":1,\"key\":\"b\",\"op\":\"get\",\"call\":5,\"ret\":6,\"outcome\":\"ok\","
                              "\"seen\":\"d0\",\"etag\":\"E0\",\"has_value\":false}\n");
    CHECK_INT(verdict_of(&h, NULL), SX_LIN_NOT_LINEARIZABLE); /* b was never created */
}

static void search_budget_gives_undecided(void)
{
    /* Many overlapping unknown writes and a read no order explains: the search must back up
     * through a large space, so a small budget runs out first. */
    hist h = {0};
    created(&h);
    char extra[64];
    for (int i = 0; i < 40; i++) {
        snprintf(extra, sizeof(extra), "\"written\":\"u%d\"", i);
        add(&h, 1 + i, "update", 20 + i, -1, "unknown", extra);
    }
    add(&h, 0, "get", 100, 110, "ok", "\"seen\":\"zz\",\"etag\":\"E0\",\"has_value\":false");
    sx_lin_limits lim = {.max_steps = 1000};
    CHECK_INT(verdict_of(&h, &lim), SX_LIN_UNDECIDED);
}

static void malformed_history_is_refused(void)
{
    sx_lin_history lh = {0};
    char err[SX_LIN_ERR_LEN];
    const char *bad = "{\"client\":0,\"key\":\"a\",\"op\":\"get\",\"call\":5,\"ret\":6,\"outcome\":\"ok\"}\n"
                      "{\"client\":0,\"key\":\"a\",\"op\":\"frobnicate\",\"call\":7,\"ret\":8,\"outcome\":\"ok\"}\n";
    CHECK(sx_lin_history_parse(&lh, bad, strlen(bad), err) != 0);
    CHECK(strstr(err, "line 2") != NULL);
    sx_lin_history_free(&lh);
    const char *noret = "{\"client\":0,\"key\":\"a\",\"op\":\"get\",\"call\":5,\"outcome\":\"ok\"}\n";
    CHECK(sx_lin_history_parse(&lh, noret, strlen(noret), err) != 0);
    sx_lin_history_free(&lh);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"sequential_history_is_linearizable", sequential_history_is_linearizable},
        {"stale_read_is_not_linearizable", stale_read_is_not_linearizable},
        {"stale_etag_is_not_linearizable", stale_etag_is_not_linearizable},
        {"lost_write_is_not_linearizable", lost_write_is_not_linearizable},
        {"resurrected_delete_is_not_linearizable", resurrected_delete_is_not_linearizable},
        {"value_never_written_is_not_linearizable", value_never_written_is_not_linearizable},
        {"overlapping_writes_read_in_either_order_are_linearizable",
         overlapping_writes_read_in_either_order_are_linearizable},
        {"unknown_write_seen_later_is_linearizable", unknown_write_seen_later_is_linearizable},
        {"unknown_write_never_seen_is_linearizable", unknown_write_never_seen_is_linearizable},
        {"if_match_success_after_concurrent_update_is_not_linearizable",
         if_match_success_after_concurrent_update_is_not_linearizable},
        {"failures_are_observations", failures_are_observations},
        {"keys_are_checked_independently", keys_are_checked_independently},
        {"search_budget_gives_undecided", search_budget_gives_undecided},
        {"malformed_history_is_refused", malformed_history_is_refused},
    };
    return sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
}
