/*
 * test_api_races.c - test_api: concurrent requests, conditional requests (If-Match,
 * If-None-Match) and pagination (see test_api.c).
 */
#include <ctype.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "api_suite.h"

/* ---- races and conditional requests ------------------------------------------------------------ */

void concurrent_creates_of_one_name_give_one_201_and_31_409(void)
{
    enum { N = 32 };
    static par_req q[N];
    for (int round = 0; round < 3; round++) {
        char name[32], body[128];
        snprintf(name, sizeof(name), "race-%d", round);
        snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"round %d\"}", name, round);
        for (int i = 0; i < N; i++) {
            q[i] = (par_req){.method = "POST", .body = body};
            spath(q[i].path, sizeof(q[i].path), "race", NULL, NULL);
        }
        run_parallel(q, N, round % 2 == 1);
        int created = 0, conflict = 0;
        for (int i = 0; i < N; i++) {
            if (q[i].status == 201)
                created++;
            else if (q[i].status == 409 && strstr(q[i].resp.data, "\"code\":\"already_exists\""))
                conflict++;
            else
                fprintf(stderr, "create %d: %ld %s\n", i, q[i].status, q[i].resp.data);
        }
        CHECK_INT(created, 1);
        CHECK_INT(conflict, N - 1);
        par_free(q, N);
    }
    sx_resp r;
    char path[512];
    api(&r, SX_H1, "GET", spath(path, sizeof(path), "race", NULL, NULL), NULL, NULL);
    yajl_val v = jparse(&r);
    CHECK(YAJL_IS_ARRAY(v) && v->u.array.len == 3);
    yajl_tree_free(v);
    sx_resp_free(&r);
}

void concurrent_set_value_and_delete_never_leave_a_value_behind(void)
{
    enum { SETTERS = 15, ROUNDS = 16, VLEN = 32768 };
    static par_req q[SETTERS + 1];
    /* Large values: encrypting them widens the window between a writer's read and its batch. */
    static char bodies[SETTERS][VLEN + 64];
    for (int round = 0; round < ROUNDS; round++) {
        char name[32];
        snprintf(name, sizeof(name), "sd-%d", round);
        REQUIRE(create("setdel", name, NULL) == 201);
        int del = round % (SETTERS + 1); /* the delete moves through the batch */
        for (int i = 0, s = 0; i < SETTERS + 1; i++) {
            if (i == del) {
                q[i] = (par_req){.method = "DELETE"};
                spath(q[i].path, sizeof(q[i].path), "setdel", name, NULL);
                continue;
            }
            int n = snprintf(bodies[s], sizeof(bodies[s]), "{\"value\":\"v-%d-%d-", round, s);
            memset(bodies[s] + n, 'v', VLEN);
            memcpy(bodies[s] + n + VLEN, "\"}", 3);
            q[i] = (par_req){.method = "PUT", .body = bodies[s]};
            spath(q[i].path, sizeof(q[i].path), "setdel", name, "/value");
            s++;
        }
        run_parallel(q, SETTERS + 1, round % 2 == 1);
        for (int i = 0; i < SETTERS + 1; i++) {
            if (i == del)
                CHECK_INT(q[i].status, 200);
            else
                CHECK(q[i].status == 200 || (q[i].status == 404 && strstr(q[i].resp.data, "\"code\":\"not_found\"")));
        }
        par_free(q, SETTERS + 1);
        char path[512];
        sx_resp r;
        api(&r, SX_H1, "GET", spath(path, sizeof(path), "setdel", name, NULL), NULL, NULL);
        CHECK_INT(r.status, 404);
        sx_resp_free(&r);
        api(&r, SX_H1, "GET", spath(path, sizeof(path), "setdel", name, "/value"), NULL, NULL);
        CHECK_INT(r.status, 404);
        sx_resp_free(&r);
    }
    /* Nothing left anywhere in the environment: no value record outlived its name. */
    sx_resp r;
    char path[512];
    api(&r, SX_H1, "GET", ENVS "setdel/values", NULL, NULL);
    CHECK_STR(r.body, "{}");
    sx_resp_free(&r);
    api(&r, SX_H1, "GET", spath(path, sizeof(path), "setdel", NULL, NULL), NULL, NULL);
    CHECK_STR(r.body, "[]");
    sx_resp_free(&r);
    /* A re-created name has no value. */
    CHECK_INT(create("setdel", "sd-0", NULL), 201);
    api(&r, SX_H1, "GET", spath(path, sizeof(path), "setdel", "sd-0", NULL), NULL, NULL);
    CHECK(secret_resp_ok(&r, 200, "sd-0", NULL, false));
    sx_resp_free(&r);
}

void concurrent_set_values_leave_one_of_the_values(void)
{
    enum { N = 16 };
    static par_req q[N];
    char bodies[N][64];
    CHECK_INT(create("setset", "s", NULL), 201);
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], sizeof(bodies[i]), "{\"value\":\"value-%02d\"}", i);
        q[i] = (par_req){.method = "PUT", .body = bodies[i]};
        spath(q[i].path, sizeof(q[i].path), "setset", "s", "/value");
    }
    run_parallel(q, N, true);
    for (int i = 0; i < N; i++)
        CHECK_INT(q[i].status, 200);
    par_free(q, N);
    sx_resp r;
    char path[512];
    api(&r, SX_H1, "GET", spath(path, sizeof(path), "setset", "s", "/value"), NULL, NULL);
    CHECK_INT(r.status, 200);
    size_t len = 0;
    char *got = json_string_of(r.body, "value", &len);
    CHECK(got && len == 8 && strncmp(got, "value-", 6) == 0);
    free(got);
    sx_resp_free(&r);
}

void if_match_prevents_lost_updates(void)
{
    char path[512], etag[64], hdr[128];
    CHECK_INT(create("ifmatch", "lu", "\"v0\""), 201);
    spath(path, sizeof(path), "ifmatch", "lu", NULL);

    /* Sequential: two writers read the same ETag; the second one's PUT is refused. */
    etag_of("ifmatch", "lu", etag, sizeof(etag));
    REQUIRE(etag_ok(etag));
    snprintf(hdr, sizeof(hdr), "If-Match: %s", etag);
    sx_resp r;
    api(&r, SX_H1, "PUT", path, "{\"kind\":\"secret\",\"name\":\"lu\",\"description\":\"alice\"}", hdr);
    CHECK(secret_resp_ok(&r, 200, "lu", "alice", false));
    char etag_alice[64] = "";
    sx_resp_header(&r, "etag", etag_alice, sizeof(etag_alice));
    CHECK(strcmp(etag_alice, etag) != 0);
    sx_resp_free(&r);
    api(&r, SX_H2C, "PUT", path, "{\"kind\":\"secret\",\"name\":\"lu\",\"description\":\"bob\"}", hdr);
    CHECK_INT(r.status, 412);
    CHECK(sx_resp_is_error(&r, "precondition_failed"));
    sx_resp_free(&r);
    api(&r, SX_H1, "GET", path, NULL, NULL);
    CHECK(secret_resp_ok(&r, 200, "lu", "alice", false));
    sx_resp_free(&r);

    /* Concurrent: writers that all read the same ETag PUT at once: exactly one wins, the others get
     * 412 and the winner's description stays. Two writers, then sixteen (more jobs in flight
     * together widen the race on the fast memory backend). */
    static const char *const who[] = {"w00", "w01", "w02", "w03", "w04", "w05", "w06", "w07",
                                      "w08", "w09", "w10", "w11", "w12", "w13", "w14", "w15"};
    static char bodies[16][80];
    static par_req q[16];
    for (int round = 0; round < 8; round++) {
        size_t n = round < 4 ? 2 : 16;
        etag_of("ifmatch", "lu", etag, sizeof(etag));
        snprintf(hdr, sizeof(hdr), "If-Match: %s", etag);
        for (size_t i = 0; i < n; i++) {
            snprintf(bodies[i], sizeof(bodies[i]), "{\"kind\":\"secret\",\"name\":\"lu\",\"description\":\"%s\"}",
                     who[i]);
            q[i] = (par_req){.method = "PUT", .body = bodies[i], .extra = hdr};
            snprintf(q[i].path, sizeof(q[i].path), "%s", path);
        }
        run_parallel(q, n, round % 2 == 1);
        size_t won = 0, lost = 0, winner = 0;
        for (size_t i = 0; i < n; i++) {
            if (q[i].status == 200) {
                won++;
                winner = i;
            } else if (q[i].status == 412 && strstr(q[i].resp.data, "\"code\":\"precondition_failed\"")) {
                lost++;
            }
        }
        if (won != 1 || lost != n - 1)
            fprintf(stderr, "round %d: %zu writers, %zu got 200, %zu got 412\n", round, n, won, lost);
        CHECK_INT(won, 1);
        CHECK_INT(lost, n - 1);
        par_free(q, n);
        api(&r, SX_H1, "GET", path, NULL, NULL);
        CHECK(secret_resp_ok(&r, 200, "lu", who[winner], false));
        sx_resp_free(&r);
    }

    /* "*" and a list containing the current ETag match; anything else is 412. */
    etag_of("ifmatch", "lu", etag, sizeof(etag));
    api(&r, SX_H2TLS, "PUT", path, "{\"kind\":\"secret\",\"name\":\"lu\",\"description\":\"star\"}", "If-Match: *");
    CHECK(secret_resp_ok(&r, 200, "lu", "star", false));
    sx_resp_free(&r);
    etag_of("ifmatch", "lu", etag, sizeof(etag));
    snprintf(hdr, sizeof(hdr), "If-Match: \"0000000000000000\", %s", etag);
    api(&r, SX_H1, "PUT", path, "{\"kind\":\"secret\",\"name\":\"lu\",\"description\":\"listed\"}", hdr);
    CHECK(secret_resp_ok(&r, 200, "lu", "listed", false));
    sx_resp_free(&r);
    api(&r, SX_H1, "PUT", path, "{\"kind\":\"secret\",\"name\":\"lu\",\"description\":\"x\"}", "If-Match: \"bogus\"");
    CHECK_INT(r.status, 412);
    CHECK(sx_resp_is_error(&r, "precondition_failed"));
    sx_resp_free(&r);
    snprintf(hdr, sizeof(hdr), "If-Match: W/%s", etag); /* If-Match compares strongly */
    api(&r, SX_H1, "PUT", path, "{\"kind\":\"secret\",\"name\":\"lu\",\"description\":\"x\"}", hdr);
    CHECK_INT(r.status, 412);
    sx_resp_free(&r);

    /* set-value and delete honour If-Match too; a stale one changes nothing. */
    char stale[64];
    snprintf(stale, sizeof(stale), "%s", etag);
    etag_of("ifmatch", "lu", etag, sizeof(etag));
    snprintf(hdr, sizeof(hdr), "If-Match: %s", stale);
    char vpath[512];
    spath(vpath, sizeof(vpath), "ifmatch", "lu", "/value");
    api(&r, SX_H2C, "PUT", vpath, "{\"value\":\"stale\"}", hdr);
    CHECK_INT(r.status, 412);
    sx_resp_free(&r);
    api(&r, SX_H2C, "DELETE", path, NULL, hdr);
    CHECK_INT(r.status, 412);
    sx_resp_free(&r);
    api(&r, SX_H1, "GET", path, NULL, NULL);
    CHECK(secret_resp_ok(&r, 200, "lu", "listed", false));
    sx_resp_free(&r);
    snprintf(hdr, sizeof(hdr), "If-Match: %s", etag);
    api(&r, SX_H2C, "PUT", vpath, "{\"value\":\"fresh\"}", hdr);
    CHECK_INT(r.status, 200);
    char etag_v[64] = "";
    sx_resp_header(&r, "etag", etag_v, sizeof(etag_v));
    sx_resp_free(&r);
    snprintf(hdr, sizeof(hdr), "If-Match: %s", etag_v);
    api(&r, SX_H2C, "DELETE", path, NULL, hdr);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    /* With If-Match on a name that does not exist the answer is still 404. */
    api(&r, SX_H1, "PUT", path, "{\"kind\":\"secret\",\"name\":\"lu\"}", "If-Match: *");
    CHECK_INT(r.status, 404);
    CHECK(sx_resp_is_error(&r, "not_found"));
    sx_resp_free(&r);
}

void if_none_match_star_on_create_fails_when_the_name_exists(void)
{
    char path[512];
    spath(path, sizeof(path), "ifnone", NULL, NULL);
    sx_resp r;
    api(&r, SX_H1, "POST", path, "{\"kind\":\"secret\",\"name\":\"once\"}", "If-None-Match: *");
    CHECK(secret_resp_ok(&r, 201, "once", NULL, false));
    sx_resp_free(&r);
    api(&r, SX_H2C, "POST", path, "{\"kind\":\"secret\",\"name\":\"once\"}", "If-None-Match: *");
    CHECK_INT(r.status, 409);
    CHECK(sx_resp_is_error(&r, "already_exists"));
    sx_resp_free(&r);
    /* Any other If-None-Match cannot be meant for a create: 400, nothing created. */
    api(&r, SX_H2TLS, "POST", path, "{\"kind\":\"secret\",\"name\":\"twice\"}", "If-None-Match: \"abc\"");
    CHECK_INT(r.status, 400);
    CHECK(sx_resp_is_error(&r, "invalid_request"));
    sx_resp_free(&r);
    api(&r, SX_H1, "GET", spath(path, sizeof(path), "ifnone", "twice", NULL), NULL, NULL);
    CHECK_INT(r.status, 404);
    sx_resp_free(&r);
}

/* ---- pagination ------------------------------------------------------------------------------------ */

/* Next-page path from a Link header `</path?query>; rel="next"`, into buf; false when none. */
static bool next_link(const sx_resp *r, char *buf, size_t cap)
{
    char link[1024];
    if (!sx_resp_header(r, "link", link, sizeof(link)))
        return false;
    const char *lt = strchr(link, '<'), *gt = strchr(link, '>');
    if (!lt || !gt || gt < lt || !strstr(gt, "rel=\"next\"")) {
        fprintf(stderr, "malformed Link: %s\n", link);
        return false;
    }
    snprintf(buf, cap, "%.*s", (int)(gt - lt - 1), lt + 1);
    return true;
}

/* The body of GET path over proto (malloc'd), with its status and Link header ("" when none). */
static char *list_text(sx_proto proto, const char *path, long *ret_status, char *link, size_t linkcap)
{
    sx_resp r;
    api(&r, proto, "GET", path, NULL, NULL);
    *ret_status = r.status;
    if (!sx_resp_header(&r, "link", link, linkcap))
        link[0] = '\0';
    char *body = strdup(r.body ? r.body : "");
    sx_resp_free(&r);
    return body;
}

/* Every protocol (each connection may be served by another loop thread) lists what the store holds
 * now, twice in a row, byte for byte the same: a list page sent again while nothing changed
 * (cached pages) never outlives a write - create, update, set-value, delete, pagination. */
static bool lists_agree(const char *path, const char *must, const char *must_not, const char *want_link)
{
    bool ok = true;
    char *first = NULL;
    for (size_t round = 0; round < 2; round++) {
        for (size_t p = 0; p < NPROTOS; p++) {
            long st = 0;
            char link[512];
            char *body = list_text(k_protos[p], path, &st, link, sizeof(link));
            bool good = st == 200 && (!must || strstr(body, must)) && (!must_not || !strstr(body, must_not)) &&
                        (first == NULL || strcmp(first, body) == 0) && strstr(link, want_link) != NULL;
            if (!good)
                fprintf(stderr, "list %s over %s (round %zu): %ld %s [link %s]; want \"%s\", not \"%s\"\n", path,
                        proto_name(k_protos[p]), round, st, body, link, must ? must : "", must_not ? must_not : "");
            ok = ok && good;
            if (!first)
                first = body;
            else
                free(body);
        }
    }
    free(first);
    return ok;
}

void lists_show_every_write_at_once(void)
{
    char path[512], page[600], item[512];
    spath(path, sizeof(path), "relist", NULL, NULL);
    snprintf(page, sizeof(page), "%s?limit=1", path);
    CHECK(lists_agree(path, "[]", NULL, ""));
    CHECK_INT(create("relist", "m", "\"one\""), 201);
    CHECK(lists_agree(path, "\"name\":\"m\",\"description\":\"one\",\"hasValue\":false", NULL, ""));
    CHECK(lists_agree(page, "\"name\":\"m\"", NULL, ""));
    CHECK_INT(create("relist", "z", NULL), 201);
    CHECK(lists_agree(path, "\"name\":\"z\",\"description\":null", NULL, ""));
    CHECK(lists_agree(page, "\"name\":\"m\"", "\"z\"", "after=m>"));
    /* A name that sorts first changes the first page. */
    CHECK_INT(create("relist", "a", NULL), 201);
    CHECK(lists_agree(page, "\"name\":\"a\"", "\"m\"", "after=a>"));
    /* Update the description. */
    char *body = secret_body("m", "\"two\"");
    sx_resp r;
    api(&r, SX_H1, "PUT", spath(item, sizeof(item), "relist", "m", NULL), body, NULL);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    free(body);
    CHECK(lists_agree(path, "\"description\":\"two\"", "\"one\"", ""));
    /* Set a value. */
    CHECK_INT(set_value("relist", "m", "\"v\""), 200);
    CHECK(lists_agree(path, "\"name\":\"m\",\"description\":\"two\",\"hasValue\":true", NULL, ""));
    /* Delete. */
    api(&r, SX_H2TLS, "DELETE", spath(item, sizeof(item), "relist", "z", NULL), NULL, NULL);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    CHECK(lists_agree(path, "\"name\":\"m\"", "\"z\"", ""));
    api(&r, SX_H2C, "DELETE", spath(item, sizeof(item), "relist", "a", NULL), NULL, NULL);
    CHECK_INT(r.status, 200);
    sx_resp_free(&r);
    CHECK(lists_agree(page, "\"name\":\"m\"", "\"a\"", ""));
    /* A write elsewhere leaves the answer as it was. */
    CHECK_INT(create("relist-other", "x", NULL), 201);
    CHECK(lists_agree(path, "\"name\":\"m\"", "\"x\"", ""));
}

void pagination_follows_link_next_until_the_end(void)
{
    static const char *const created[] = {"alpha", "Beta", "_under", "0zero", "a.b", "a-b", "alpha2"};
    static const char *const sorted[] = {"0zero", "Beta", "_under", "a-b", "a.b", "alpha", "alpha2"};
    for (size_t i = 0; i < 7; i++)
        CHECK_INT(create("page", created[i], NULL), 201);

    for (unsigned limit = 1; limit <= 8; limit++) {
        char path[1024];
        snprintf(path, sizeof(path), ENVS "page/secrets?limit=%u", limit);
        size_t seen = 0, pages = 0;
        bool more = true;
        while (more && pages < 20) {
            sx_resp r;
            api(&r, k_protos[pages % NPROTOS], "GET", path, NULL, NULL);
            CHECK_INT(r.status, 200);
            yajl_val v = jparse(&r);
            REQUIRE(YAJL_IS_ARRAY(v));
            size_t want = 7 - seen < limit ? 7 - seen : limit;
            CHECK_INT(v->u.array.len, want);
            for (size_t i = 0; i < v->u.array.len && seen + i < 7; i++)
                CHECK(secret_val_ok(v->u.array.values[i], sorted[seen + i], NULL, false));
            seen += v->u.array.len;
            yajl_tree_free(v);
            more = next_link(&r, path, sizeof(path));
            if (more) {
                /* The link says where it continues: after the last name of this page. */
                char want_link[256];
                snprintf(want_link, sizeof(want_link), ENVS "page/secrets?limit=%u&after=%s", limit, sorted[seen - 1]);
                CHECK_STR(path, want_link);
                CHECK(seen < 7);
            }
            sx_resp_free(&r);
            pages++;
        }
        CHECK_INT(seen, 7);
        CHECK_INT(pages, (7 + limit - 1) / limit);
    }
    /* after= a name that does not exist starts at the next one; after the last name is []. */
    sx_resp r;
    api(&r, SX_H1, "GET", ENVS "page/secrets?after=a", NULL, NULL);
    yajl_val v = jparse(&r);
    CHECK(YAJL_IS_ARRAY(v) && v->u.array.len == 4 && secret_val_ok(v->u.array.values[0], "a-b", NULL, false));
    yajl_tree_free(v);
    sx_resp_free(&r);
    api(&r, SX_H2C, "GET", ENVS "page/secrets?after=alpha2&limit=2", NULL, NULL);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "[]");
    CHECK(!sx_resp_header(&r, "link", (char[8]){0}, 8));
    sx_resp_free(&r);
    api(&r, SX_H2TLS, "GET", ENVS "page/secrets?limit=1000", NULL, NULL);
    v = jparse(&r);
    CHECK(YAJL_IS_ARRAY(v) && v->u.array.len == 7);
    yajl_tree_free(v);
    sx_resp_free(&r);
    /* Bad limit / after: 400 invalid_request (the bad-input table has more). */
    static const char *const bad[] = {"limit=0", "limit=1001", "limit=x", "after=..", "after=a%2Fb"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), ENVS "page/secrets?%s", bad[i]);
        api(&r, k_protos[i % NPROTOS], "GET", path, NULL, NULL);
        CHECK_INT(r.status, 400);
        CHECK(sx_resp_is_error(&r, "invalid_request"));
        sx_resp_free(&r);
    }
}
