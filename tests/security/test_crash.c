/*
 * test_crash.c - SIGKILL under a mixed write load loses no acknowledged write and tears nothing.
 *
 * The real secretsd runs on RocksDB with sync on (the default). Each round, client threads (half
 * on HTTP/1.1, half on h2c, each with its own keep-alive connection) create secrets, set values,
 * change descriptions and delete secrets through the API; each thread owns its own names, and has
 * at most one request in flight, so the model of each name is exact: the state after the last
 * acknowledged (2xx) write, plus at most one pending write whose answer never came. At a random
 * moment the server is SIGKILLed, then restarted on the same data directory, and every name is
 * checked through the API:
 *
 *   - its metadata, its value and its description equal the acknowledged state, or the state the
 *     pending write would have made (an unanswered write may or may not have been applied, but
 *     only as a whole);
 *   - nothing is torn: a name is listed exactly when GET finds it, hasValue agrees between list,
 *     GET, reveal and the values map, every value decrypts, and the values map names no secret
 *     that does not exist (a value record without its metadata).
 *
 * Zero lost acknowledged writes is the only pass. The checked state becomes the model of the next
 * round, so later rounds also check that earlier rounds survived repeated crash recovery. The seed
 * is printed; SX_CRASH_SEED=N replays the same choices (the kill moments still vary with timing).
 */
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "common/clock.h"
#include "harness.h"
#include "testutil.h"

enum {
    ROUNDS = 24,
    CLIENTS = 4,
    NAMES = 6,          /* per client */
    VALUE_MAX = 3000,   /* bytes */
    KILL_MIN_MS = 20,   /* the kill comes this long after the load starts ... */
    KILL_SPAN_MS = 400, /* ... plus up to this */
};

typedef struct sstate {
    bool exists;
    bool has_value;
    char *value; /* when has_value */
    char *desc;  /* when exists; NULL = null */
} sstate;

typedef enum op_kind { OP_CREATE, OP_SET_VALUE, OP_UPDATE, OP_DELETE } op_kind;

typedef struct slot {
    char name[32];
    sstate acked; /* after the last acknowledged write */
    bool pending; /* a write was sent and its answer never came */
    op_kind pending_op;
    sstate pend; /* the state if the pending write was applied */
} slot;

typedef struct client {
    int index;
    unsigned seed;
    const sx_srv *srv;
    const char *auth;
    slot slots[NAMES];
    unsigned long seq;
    /* per round */
    unsigned long ops, acked, unanswered;
    unsigned long acked_kind[4]; /* over all rounds, by op_kind */
    bool failed;
} client;

static atomic_bool killed;

typedef struct totals {
    unsigned long ops, acked, unanswered, pending_applied, pending_not_applied, lost, torn;
    unsigned long acked_by_kind[4];
} totals;

static totals tot;

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void sstate_clear(sstate *s)
{
    free(s->value);
    free(s->desc);
    memset(s, 0, sizeof(*s));
}

static void sstate_copy(sstate *dst, const sstate *src)
{
    sstate_clear(dst);
    dst->exists = src->exists;
    dst->has_value = src->has_value;
    dst->value = xstrdup(src->value);
    dst->desc = xstrdup(src->desc);
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool sstate_eq(const sstate *a, const sstate *b)
{
    if (a->exists != b->exists)
        return false;
    if (!a->exists)
        return true;
    return a->has_value == b->has_value && (!a->has_value || str_eq(a->value, b->value)) && str_eq(a->desc, b->desc);
}

static void sstate_print(const char *label, const sstate *s)
{
    if (!s->exists) {
        fprintf(stderr, "    %s: absent\n", label);
        return;
    }
    fprintf(stderr, "    %s: desc=%s value=%s%.40s%s (%zu bytes)\n", label, s->desc ? s->desc : "null",
            s->has_value ? "\"" : "", s->has_value ? s->value : "none", s->has_value ? "...\"" : "",
            s->has_value ? strlen(s->value) : 0);
}

/* ---- HTTP ---------------------------------------------------------------------------------------- */

/* One request on the caller's handle (its HTTP/1.1 connection is kept alive). 0 and *status when an answer
 * came back; -1 when none did (connection refused or cut: the server is gone). *body is malloc'd. */
static int http(CURL *h, const sx_srv *srv, bool h2c, const char *auth, const char *method, const char *path,
                const char *body, long *status, char **ret_body)
{
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv->port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
                     h2c ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : (long)CURL_HTTP_VERSION_1_1);
    /* libcurl 7.88 fails every second request on a reused h2c connection ("Error in the HTTP2
     * framing layer", fixed in curl 8.0): over h2c each request gets a connection of its own. */
    curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, h2c ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, h2c ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *hl = NULL;
    hl = curl_slist_append(hl, auth);
    hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    } else {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    sx_test_buf b = {0};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sx_test_buf_append);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hl);
    *status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (ret_body)
        *ret_body = b.data ? b.data : calloc(1, 1);
    else
        free(b.data);
    return rc == CURLE_OK ? 0 : -1;
}

/* ---- the load ------------------------------------------------------------------------------------ */

/* A value unique to (client, seq), of 1..VALUE_MAX bytes of [A-Za-z0-9] after its tag. */
static char *make_value(client *c, int round)
{
    size_t len = 1 + (size_t)rand_r(&c->seed) % VALUE_MAX;
    char tag[64];
    int tl = snprintf(tag, sizeof(tag), "r%dc%ds%lu-", round, c->index, c->seq);
    if ((size_t)tl > len)
        len = (size_t)tl;
    char *v = malloc(len + 1);
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    memcpy(v, tag, (size_t)tl);
    for (size_t i = (size_t)tl; i < len; i++)
        v[i] = al[rand_r(&c->seed) % (sizeof(al) - 1)];
    v[len] = '\0';
    return v;
}

typedef struct client_arg {
    client *c;
    int round;
} client_arg;

static void *client_main(void *arg)
{
    client_arg *ca = arg;
    client *c = ca->c;
    int round = ca->round;
    bool h2c = c->index % 2 == 1;
    CURL *h = curl_easy_init();
    char path[256], *body = NULL;
    while (!atomic_load(&killed) && !c->failed) {
        slot *s = &c->slots[rand_r(&c->seed) % NAMES];
        sstate next = {0};
        sstate_copy(&next, &s->acked);
        op_kind kind;
        const char *method;
        long want;
        c->seq++;
        free(body);
        body = NULL;
        int r = rand_r(&c->seed) % 100;
        if (!s->acked.exists) {
            kind = OP_CREATE;
            method = "POST";
            want = 201;
            snprintf(path, sizeof(path), "/o/p/envs/crash/secrets");
            char desc[64];
            snprintf(desc, sizeof(desc), "made r%d s%lu", round, c->seq);
            next.exists = true;
            next.has_value = false;
            free(next.value);
            next.value = NULL;
            free(next.desc);
            next.desc = r < 20 ? NULL : strdup(desc);
            size_t n = 128 + strlen(desc);
            body = malloc(n);
            if (next.desc)
                snprintf(body, n, "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"%s\"}", s->name, desc);
            else
                snprintf(body, n, "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":null}", s->name);
        } else if (r < 55) {
            kind = OP_SET_VALUE;
            method = "PUT";
            want = 200;
            snprintf(path, sizeof(path), "/o/p/envs/crash/secrets/%s/value", s->name);
            char *v = make_value(c, round);
            free(next.value);
            next.value = v;
            next.has_value = true;
            size_t n = strlen(v) + 32;
            body = malloc(n);
            snprintf(body, n, "{\"value\":\"%s\"}", v);
        } else if (r < 75) {
            kind = OP_UPDATE;
            method = "PUT";
            want = 200;
            snprintf(path, sizeof(path), "/o/p/envs/crash/secrets/%s", s->name);
            char desc[64];
            snprintf(desc, sizeof(desc), "changed r%d s%lu", round, c->seq);
            free(next.desc);
            next.desc = strdup(desc);
            size_t n = 128 + strlen(desc);
            body = malloc(n);
            snprintf(body, n, "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"%s\"}", s->name, desc);
        } else {
            kind = OP_DELETE;
            method = "DELETE";
            want = 200;
            snprintf(path, sizeof(path), "/o/p/envs/crash/secrets/%s", s->name);
            sstate_clear(&next);
        }
        long status = 0;
        char *rb = NULL;
        c->ops++;
        int rc = http(h, c->srv, h2c, c->auth, method, path, body, &status, &rb);
        if (rc != 0) {
            /* No answer: applied or not, as a whole. This client sends nothing more this round,
             * so the name has exactly one unknown write. */
            s->pending = true;
            s->pending_op = kind;
            sstate_copy(&s->pend, &next);
            c->unanswered++;
            sstate_clear(&next);
            free(rb);
            break;
        }
        if (status != want) {
            fprintf(stderr, "client %d: %s %s answered %ld, expected %ld: %s\n", c->index, method, path, status, want,
                    rb);
            c->failed = true;
        } else {
            sstate_copy(&s->acked, &next);
            c->acked++;
            c->acked_kind[kind]++;
        }
        sstate_clear(&next);
        free(rb);
    }
    free(body);
    curl_easy_cleanup(h);
    return NULL;
}

/* ---- the check ------------------------------------------------------------------------------------ */

typedef struct listed {
    char name[32];
    bool has_value;
    char *desc;
    bool desc_null;
} listed;

static yajl_val parse(const char *body)
{
    char err[128];
    return yajl_tree_parse(body, err, sizeof(err));
}

static const char *obj_str(yajl_val o, const char *key, bool *is_null)
{
    const char *p[] = {key, NULL};
    yajl_val v = yajl_tree_get(o, p, yajl_t_any);
    if (is_null)
        *is_null = !v || YAJL_IS_NULL(v);
    return v && YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

static int obj_bool(yajl_val o, const char *key)
{
    const char *p[] = {key, NULL};
    yajl_val v = yajl_tree_get(o, p, yajl_t_any);
    return YAJL_IS_TRUE(v) ? 1 : YAJL_IS_FALSE(v) ? 0 : -1;
}

/* Read a name's whole state through the API; false (after saying why) when it is torn. */
static bool observe(CURL *h, const sx_srv *srv, const char *auth, const char *name, yajl_val list, yajl_val values,
                    sstate *ret)
{
    memset(ret, 0, sizeof(*ret));
    char path[256];
    long st;
    char *body = NULL;
    bool ok = true;
    snprintf(path, sizeof(path), "/o/p/envs/crash/secrets/%s", name);
    if (http(h, srv, false, auth, "GET", path, NULL, &st, &body) != 0 || (st != 200 && st != 404)) {
        fprintf(stderr, "  %s: GET answered %ld: %s\n", name, st, body ? body : "");
        free(body);
        return false;
    }
    yajl_val in_list = NULL;
    for (size_t i = 0; i < YAJL_GET_ARRAY(list)->len; i++) {
        yajl_val e = YAJL_GET_ARRAY(list)->values[i];
        const char *n = obj_str(e, "name", NULL);
        if (n && strcmp(n, name) == 0)
            in_list = e;
    }
    const char *vp[] = {name, NULL};
    yajl_val in_values = yajl_tree_get(values, vp, yajl_t_any);
    if (st == 404) {
        free(body);
        if (in_list || in_values) {
            fprintf(stderr, "  %s: GET says absent, but it is %s\n", name, in_list ? "listed" : "in the values map");
            return false;
        }
        return true;
    }
    yajl_val m = parse(body);
    free(body);
    bool desc_null = false;
    const char *desc = obj_str(m, "description", &desc_null);
    int hv = obj_bool(m, "hasValue");
    ret->exists = true;
    ret->desc = xstrdup(desc);
    ret->has_value = hv == 1;
    if (hv < 0 || (!desc && !desc_null)) {
        fprintf(stderr, "  %s: malformed Secret\n", name);
        ok = false;
    }
    if (!in_list) {
        fprintf(stderr, "  %s: GET finds it, the list does not\n", name);
        ok = false;
    } else {
        bool lnull = false;
        const char *ld = obj_str(in_list, "description", &lnull);
        if (obj_bool(in_list, "hasValue") != hv || !str_eq(ld, desc)) {
            fprintf(stderr, "  %s: the list and GET disagree\n", name);
            ok = false;
        }
    }
    yajl_tree_free(m);
    snprintf(path, sizeof(path), "/o/p/envs/crash/secrets/%s/value", name);
    if (http(h, srv, false, auth, "GET", path, NULL, &st, &body) != 0) {
        free(body);
        return false;
    }
    if (ret->has_value) {
        yajl_val v = st == 200 ? parse(body) : NULL;
        const char *val = v ? obj_str(v, "value", NULL) : NULL;
        if (!val) {
            fprintf(stderr, "  %s: hasValue but reveal answered %ld: %s\n", name, st, body);
            ok = false;
        } else {
            ret->value = strdup(val);
            const char *mv = in_values && YAJL_IS_STRING(in_values) ? YAJL_GET_STRING(in_values) : NULL;
            if (!mv || strcmp(mv, val) != 0) {
                fprintf(stderr, "  %s: the values map disagrees with reveal\n", name);
                ok = false;
            }
        }
        yajl_tree_free(v);
    } else if (st != 404 || in_values) {
        fprintf(stderr, "  %s: no value in its metadata, but reveal answered %ld%s\n", name, st,
                in_values ? " and the values map has one" : "");
        ok = false;
    }
    free(body);
    return ok;
}

/* Check every client's names against the model, then make what was found the model. */
static void check_round(const sx_srv *srv, const char *auth, client *clients, int round)
{
    CURL *h = curl_easy_init();
    long st1 = 0, st2 = 0;
    char *lb = NULL, *vb = NULL;
    int r1 = http(h, srv, false, auth, "GET", "/o/p/envs/crash/secrets", NULL, &st1, &lb);
    int r2 = http(h, srv, false, auth, "GET", "/o/p/envs/crash/values", NULL, &st2, &vb);
    yajl_val list = r1 == 0 && st1 == 200 ? parse(lb) : NULL;
    yajl_val values = r2 == 0 && st2 == 200 ? parse(vb) : NULL;
    if (!list || !YAJL_IS_ARRAY(list) || !values || !YAJL_IS_OBJECT(values)) {
        fprintf(stderr, "round %d: list %ld / values %ld did not answer: %s %s\n", round, st1, st2, lb, vb);
        sx_test_failures++;
        goto out;
    }
    /* Nothing listed or valued that no client owns. */
    size_t owned = 0;
    for (size_t i = 0; i < YAJL_GET_ARRAY(list)->len; i++) {
        const char *n = obj_str(YAJL_GET_ARRAY(list)->values[i], "name", NULL);
        int cl = -1, sl = -1;
        if (!n || sscanf(n, "c%d-s%d", &cl, &sl) != 2 || cl < 0 || cl >= CLIENTS || sl < 0 || sl >= NAMES) {
            fprintf(stderr, "round %d: unexpected name listed: %s\n", round, n ? n : "?");
            sx_test_failures++;
        }
        owned++;
    }
    for (size_t i = 0; i < YAJL_GET_OBJECT(values)->len; i++) {
        const char *n = YAJL_GET_OBJECT(values)->keys[i];
        int cl = -1, sl = -1;
        if (sscanf(n, "c%d-s%d", &cl, &sl) != 2 || cl < 0 || cl >= CLIENTS || sl < 0 || sl >= NAMES) {
            fprintf(stderr, "round %d: a value without a known secret: %s\n", round, n);
            tot.torn++;
            sx_test_failures++;
        }
    }
    (void)owned;
    for (int c = 0; c < CLIENTS; c++) {
        for (int i = 0; i < NAMES; i++) {
            slot *s = &clients[c].slots[i];
            sstate seen;
            if (!observe(h, srv, auth, s->name, list, values, &seen)) {
                fprintf(stderr, "round %d: %s is torn\n", round, s->name);
                tot.torn++;
                sx_test_failures++;
            }
            bool as_acked = sstate_eq(&seen, &s->acked);
            bool as_pending = s->pending && sstate_eq(&seen, &s->pend);
            if (!as_acked && !as_pending) {
                fprintf(stderr, "round %d: %s LOST an acknowledged write\n", round, s->name);
                sstate_print("found", &seen);
                sstate_print("acknowledged", &s->acked);
                if (s->pending)
                    sstate_print("pending", &s->pend);
                tot.lost++;
                sx_test_failures++;
            }
            if (s->pending) {
                if (as_pending && !as_acked)
                    tot.pending_applied++;
                else
                    tot.pending_not_applied++;
            }
            /* What the store holds now is the model of the next round. */
            sstate_copy(&s->acked, &seen);
            sstate_clear(&s->pend);
            s->pending = false;
            sstate_clear(&seen);
        }
    }
out:
    yajl_tree_free(list);
    yajl_tree_free(values);
    free(lb);
    free(vb);
    curl_easy_cleanup(h);
}

/* ---- rounds ------------------------------------------------------------------------------------------ */

static int start(sx_srv *srv, const char *dir)
{
    sx_srv_opts o = {.backend = "rocksdb", .threads = 2, .keep_dir = true, .dir = dir};
    return sx_srv_start(srv, &o);
}

static void sigkill_under_mixed_writes_loses_no_acknowledged_write(void)
{
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    const char *env = getenv("SX_CRASH_SEED");
    if (env && *env)
        seed = (unsigned)strtoul(env, NULL, 10);
    printf("seed %u (SX_CRASH_SEED=%u replays it)\n", seed, seed);
    unsigned main_seed = seed;

    char *dir = sx_test_tmpdir("crash");
    sx_srv srv;
    REQUIRE(start(&srv, dir) == 0);
    char *token = sx_srv_mint_token(&srv, "o", "p", "crash", "owner", NULL);
    REQUIRE(token != NULL);
    char *auth = sx_auth_header(token);

    client clients[CLIENTS];
    memset(clients, 0, sizeof(clients));
    for (int c = 0; c < CLIENTS; c++) {
        clients[c].index = c;
        clients[c].seed = seed * 31u + (unsigned)c;
        clients[c].auth = auth;
        for (int i = 0; i < NAMES; i++)
            snprintf(clients[c].slots[i].name, sizeof(clients[c].slots[i].name), "c%d-s%d", c, i);
    }
    uint64_t t0 = sx_clock_mono_ns();
    int rounds = 0;
    for (int round = 0; round < ROUNDS; round++) {
        atomic_store(&killed, false);
        pthread_t tids[CLIENTS];
        client_arg args[CLIENTS];
        for (int c = 0; c < CLIENTS; c++) {
            clients[c].srv = &srv;
            clients[c].ops = clients[c].acked = clients[c].unanswered = 0;
            args[c] = (client_arg){&clients[c], round};
            pthread_create(&tids[c], NULL, client_main, &args[c]);
        }
        sx_test_sleep_ms(KILL_MIN_MS + rand_r(&main_seed) % KILL_SPAN_MS);
        /* The server must still be running on its own: a crash of its own is a failure. */
        int wst = 0;
        if (waitpid(srv.pid, &wst, WNOHANG) == srv.pid) {
            fprintf(stderr, "round %d: secretsd died by itself (status %d)\n", round, wst);
            sx_test_failures++;
            srv.pid = 0;
        } else {
            kill(srv.pid, SIGKILL);
            waitpid(srv.pid, &wst, 0);
            srv.pid = 0;
        }
        atomic_store(&killed, true);
        unsigned long ops = 0, acked = 0, unanswered = 0;
        for (int c = 0; c < CLIENTS; c++) {
            pthread_join(tids[c], NULL);
            ops += clients[c].ops;
            acked += clients[c].acked;
            unanswered += clients[c].unanswered;
            if (clients[c].failed)
                sx_test_failures++;
            clients[c].failed = false;
        }
        tot.ops += ops;
        tot.acked += acked;
        tot.unanswered += unanswered;
        sx_srv_stop(&srv, SIGTERM, 1); /* pid is 0: only frees the paths; keep_dir keeps the data */
        REQUIRE(start(&srv, dir) == 0);
        check_round(&srv, auth, clients, round);
        rounds++;
        printf("round %2d: %3lu writes sent, %3lu acknowledged, %lu unanswered at the kill\n", round, ops, acked,
               unanswered);
        fflush(stdout);
        if (sx_test_failures)
            break;
    }
    double secs = (double)(sx_clock_mono_ns() - t0) / 1e9;
    for (int c = 0; c < CLIENTS; c++)
        for (int k = 0; k < 4; k++)
            tot.acked_by_kind[k] += clients[c].acked_kind[k];
    printf("rounds=%d writes_sent=%lu acknowledged=%lu (create %lu, set-value %lu, update %lu, delete %lu) "
           "unanswered_at_kill=%lu (applied %lu, not applied %lu) lost=%lu torn=%lu in %.1f s\n",
           rounds, tot.ops, tot.acked, tot.acked_by_kind[OP_CREATE], tot.acked_by_kind[OP_SET_VALUE],
           tot.acked_by_kind[OP_UPDATE], tot.acked_by_kind[OP_DELETE], tot.unanswered, tot.pending_applied,
           tot.pending_not_applied, tot.lost, tot.torn, secs);
    CHECK(rounds >= 20);
    CHECK_INT(tot.lost, 0);
    CHECK_INT(tot.torn, 0);
    CHECK(tot.acked > 0);

    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    for (int c = 0; c < CLIENTS; c++)
        for (int i = 0; i < NAMES; i++) {
            sstate_clear(&clients[c].slots[i].acked);
            sstate_clear(&clients[c].slots[i].pend);
        }
    free(auth);
    free(token);
    sx_test_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines interleave with stderr in order */
    static const sx_test tests[] = {
        {"sigkill_under_mixed_writes_loses_no_acknowledged_write",
         sigkill_under_mixed_writes_loses_no_acknowledged_write},
    };
    curl_global_init(CURL_GLOBAL_ALL);
    int rc = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return rc;
}
