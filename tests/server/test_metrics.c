/*
 * test_metrics.c - GET /metrics against the real binary: the output is valid Prometheus
 * text format (checked by a small validator below), counters move as requests are made, no
 * secret's name appears in it, and it is served on the admin socket and on [server]
 * metrics_listen but not on the public listeners.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "testutil.h"

/* ---- a Prometheus text format (0.0.4) validator ---------------------------------------------- */

static bool metric_name_ok(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
            return false;
    return true;
}

typedef struct family {
    char name[128];
    char type[16];
} family;

/* Validates text; prints the first problem. Checks: HELP/TYPE comment syntax, at most one TYPE per
 * family and before its samples, sample syntax (name, {label="value",...}, a float), histogram
 * samples named _bucket (with le) / _sum / _count, no duplicate series. */
static bool prom_valid(const char *text)
{
    family fams[256];
    size_t nf = 0;
    char **series = calloc(8192, sizeof(char *));
    size_t ns = 0;
    bool ok = true;
    int lineno = 0;
    for (const char *line = text; ok && line && *line;) {
        const char *end = strchr(line, '\n');
        if (!end) {
            fprintf(stderr, "prom: the last line has no newline\n");
            ok = false;
            break;
        }
        lineno++;
        size_t len = (size_t)(end - line);
        char buf[1024];
        snprintf(buf, sizeof(buf), "%.*s", (int)(len < 1023 ? len : 1023), line);
        line = end + 1;
        if (len == 0)
            continue;
        if (buf[0] == '#') {
            char kw[16], name[128], rest[512] = "";
            if (sscanf(buf, "# %15s %127s %511[^\n]", kw, name, rest) < 2) {
                continue; /* a plain comment */
            }
            if (strcmp(kw, "TYPE") == 0) {
                if (!metric_name_ok(name, strlen(name)) ||
                    (strcmp(rest, "counter") && strcmp(rest, "gauge") && strcmp(rest, "histogram") &&
                     strcmp(rest, "summary") && strcmp(rest, "untyped"))) {
                    fprintf(stderr, "prom line %d: bad TYPE: %s\n", lineno, buf);
                    ok = false;
                }
                for (size_t i = 0; i < nf; i++)
                    if (strcmp(fams[i].name, name) == 0) {
                        fprintf(stderr, "prom line %d: second TYPE for %s\n", lineno, name);
                        ok = false;
                    }
                if (nf < 256) {
                    snprintf(fams[nf].name, sizeof(fams[nf].name), "%s", name);
                    snprintf(fams[nf].type, sizeof(fams[nf].type), "%.15s", rest);
                    nf++;
                }
            } else if (strcmp(kw, "HELP") == 0 && !metric_name_ok(name, strlen(name))) {
                fprintf(stderr, "prom line %d: bad HELP: %s\n", lineno, buf);
                ok = false;
            }
            continue;
        }
        /* a sample */
        size_t i = 0;
        while (i < len && buf[i] != '{' && buf[i] != ' ')
            i++;
        if (!metric_name_ok(buf, i)) {
            fprintf(stderr, "prom line %d: bad metric name: %s\n", lineno, buf);
            ok = false;
            break;
        }
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)i, buf);
        bool has_le = false;
        if (buf[i] == '{') {
            i++;
            while (ok && buf[i] != '}') {
                size_t s = i;
                while (buf[i] && (isalnum((unsigned char)buf[i]) || buf[i] == '_'))
                    i++;
                if (i == s || isdigit((unsigned char)buf[s]) || buf[i] != '=' || buf[i + 1] != '"') {
                    fprintf(stderr, "prom line %d: bad label: %s\n", lineno, buf);
                    ok = false;
                    break;
                }
                if (i - s == 2 && strncmp(buf + s, "le", 2) == 0)
                    has_le = true;
                i += 2;
                while (buf[i] && buf[i] != '"') {
                    if (buf[i] == '\\') {
                        if (buf[i + 1] != '\\' && buf[i + 1] != '"' && buf[i + 1] != 'n') {
                            ok = false;
                            break;
                        }
                        i++;
                    }
                    i++;
                }
                if (buf[i] != '"') {
                    fprintf(stderr, "prom line %d: unterminated label value: %s\n", lineno, buf);
                    ok = false;
                    break;
                }
                i++;
                if (buf[i] == ',')
                    i++;
                else if (buf[i] != '}') {
                    fprintf(stderr, "prom line %d: bad label list: %s\n", lineno, buf);
                    ok = false;
                }
            }
            i++;
        }
        if (!ok)
            break;
        if (buf[i] != ' ') {
            fprintf(stderr, "prom line %d: no value: %s\n", lineno, buf);
            ok = false;
            break;
        }
        const char *v = buf + i + 1;
        char *vend;
        strtod(v, &vend);
        if (vend == v || (*vend && *vend != ' ')) {
            if (strcmp(v, "+Inf") && strcmp(v, "-Inf") && strcmp(v, "NaN")) {
                fprintf(stderr, "prom line %d: bad value: %s\n", lineno, buf);
                ok = false;
                break;
            }
        }
        /* its family: declared before, and histogram parts named right */
        const family *f = NULL;
        for (size_t k = 0; k < nf && !f; k++) {
            size_t fl = strlen(fams[k].name);
            if (strcmp(fams[k].name, name) == 0)
                f = &fams[k];
            else if (strncmp(fams[k].name, name, fl) == 0 && strcmp(fams[k].type, "histogram") == 0 &&
                     (strcmp(name + fl, "_bucket") == 0 || strcmp(name + fl, "_sum") == 0 ||
                      strcmp(name + fl, "_count") == 0))
                f = &fams[k];
        }
        if (!f) {
            fprintf(stderr, "prom line %d: sample without a TYPE before it: %s\n", lineno, buf);
            ok = false;
            break;
        }
        if (strcmp(f->type, "histogram") == 0 && strstr(name, "_bucket") && !has_le) {
            fprintf(stderr, "prom line %d: bucket without le: %s\n", lineno, buf);
            ok = false;
        }
        char key[1024];
        snprintf(key, sizeof(key), "%.*s", (int)i, buf);
        for (size_t k = 0; k < ns; k++)
            if (strcmp(series[k], key) == 0) {
                fprintf(stderr, "prom line %d: duplicate series %s\n", lineno, key);
                ok = false;
            }
        if (ns < 8192)
            series[ns++] = strdup(key);
    }
    for (size_t k = 0; k < ns; k++)
        free(series[k]);
    free(series);
    return ok;
}

/* The value of the sample whose line starts with prefix (name and labels); 0 when absent. */
static double sample(const char *text, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, prefix, pl) == 0 && line[pl] == ' ')
            return strtod(line + pl + 1, NULL);
        const char *e = strchr(line, '\n');
        line = e ? e + 1 : NULL;
    }
    return 0;
}

static char *scrape(const sx_srv *srv)
{
    sx_resp r;
    if (sx_srv_request(srv, SX_ADMIN, "GET", "/metrics", NULL, NULL, 0, &r) != 0)
        return NULL;
    char ct[128] = "";
    sx_resp_header(&r, "content-type", ct, sizeof(ct));
    char *body = r.status == 200 && strncmp(ct, "text/plain", 10) == 0 ? strdup(r.body) : NULL;
    sx_resp_free(&r);
    return body;
}

static long get(const sx_srv *srv, const char *path, const char *token)
{
    char auth[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    const char *h[] = {auth, "Content-Type: application/json", NULL};
    sx_resp r;
    if (sx_srv_request(srv, SX_H1, "GET", path, h, NULL, 0, &r) != 0)
        return -1;
    long st = r.status;
    sx_resp_free(&r);
    return st;
}

#define LIST_200   "secretsd_http_requests_total{route=\"/{o}/{p}/envs/{env}/secrets\",method=\"GET\",status=\"200\"}"
#define LIST_COUNT "secretsd_http_request_duration_seconds_count{route=\"/{o}/{p}/envs/{env}/secrets\",method=\"GET\"}"

static void metrics_are_valid_prometheus_text_and_counters_move(void)
{
    static const sx_srv_opts opts = {.extra_log = "audit_log = audit.log\n"};
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &opts) == 0);
    char *owner = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(owner);
    char auth[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", owner);
    const char *h[] = {auth, "Content-Type: application/json", NULL};
    sx_resp r;
    const char *body = "{\"kind\":\"secret\",\"name\":\"CanaryName_77a\"}";
    REQUIRE(sx_srv_request(&srv, SX_H1, "POST", "/acme/web/envs/prod/secrets", h, body, strlen(body), &r) == 0);
    CHECK_INT(r.status, 201);
    sx_resp_free(&r);

    char *m1 = scrape(&srv);
    REQUIRE(m1);
    CHECK(prom_valid(m1));
    double list0 = sample(m1, LIST_200), count0 = sample(m1, LIST_COUNT);
    double unauth0 = sample(m1, "secretsd_auth_failures_total");
    for (int i = 0; i < 7; i++)
        CHECK_INT(get(&srv, "/acme/web/envs/prod/secrets", owner), 200);
    for (int i = 0; i < 3; i++)
        CHECK_INT(get(&srv, "/acme/web/envs/prod/secrets", "sxt_wrong"), 401);
    CHECK_INT(get(&srv, "/acme/web/envs/prod/secrets/CanaryName_77a", owner), 200);

    /* Counters move when a request is logged and audit lines when the writer thread has written
     * them, both just after the response reached the client: scrape until they have settled. */
    char *m2 = NULL;
    for (int tries = 0; tries < 250; tries++) {
        free(m2);
        m2 = scrape(&srv);
        REQUIRE(m2);
        if (sample(m2, LIST_COUNT) >= count0 + 10 && sample(m2, "secretsd_audit_lines_total") >= 1)
            break;
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
    }
    CHECK(prom_valid(m2));
    CHECK(sample(m2, LIST_200) == list0 + 7);
    CHECK(sample(m2, LIST_COUNT) == count0 + 10);
    CHECK(sample(m2, "secretsd_auth_failures_total") == unauth0 + 3);
    CHECK(sample(m2, "secretsd_http_requests_total{route=\"/{o}/{p}/envs/{env}/secrets/{name}\",method=\"GET\","
                     "status=\"200\"}") == 1);
    CHECK(sample(m2, "secretsd_storage_operation_duration_seconds_count{op=\"list\"}") >= 7);
    CHECK(sample(m2, "secretsd_storage_operation_duration_seconds_count{op=\"batch\"}") >= 1);
    CHECK(sample(m2, "secretsd_master_key_active_version") >= 1);
    CHECK(strstr(m2, "secretsd_worker_pool_queue_depth ") != NULL);
    CHECK(strstr(m2, "secretsd_sealed 0\n") != NULL);
    CHECK(strstr(m2, "secretsd_rotations_in_progress ") != NULL);
    CHECK(sample(m2, "secretsd_audit_enabled") == 1);
    CHECK(sample(m2, "secretsd_audit_lines_total") >= 1);
    /* labels are route patterns: never a secret's name or a scope */
    CHECK(strstr(m2, "CanaryName_77a") == NULL);
    CHECK(strstr(m2, "acme") == NULL);
    /* not on the public listener */
    CHECK_INT(get(&srv, "/metrics", owner), 404);
    free(m1);
    free(m2);
    free(owner);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    char **out = ud;
    size_t old = *out ? strlen(*out) : 0;
    char *nb = realloc(*out, old + size * n + 1);
    if (!nb)
        return 0;
    memcpy(nb + old, p, size * n);
    nb[old + size * n] = '\0';
    *out = nb;
    return size * n;
}

static long fetch(int port, const char *path, char **body)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    long st = -1;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    curl_easy_cleanup(c);
    return st;
}

static void metrics_listener_serves_only_metrics(void)
{
    static const sx_srv_opts opts = {.extra_server = "metrics_listen = 127.0.0.1:0\n"};
    sx_srv srv;
    REQUIRE(sx_srv_start(&srv, &opts) == 0);
    char *log = sx_test_read_file(srv.stderr_path, NULL);
    REQUIRE(log);
    char *p = strstr(log, "listening on metrics+http://127.0.0.1:");
    REQUIRE(p);
    int port = atoi(p + strlen("listening on metrics+http://127.0.0.1:"));
    free(log);
    REQUIRE(port > 0);
    char *body = NULL;
    CHECK_INT(fetch(port, "/metrics", &body), 200);
    CHECK(body && prom_valid(body));
    free(body);
    body = NULL;
    CHECK_INT(fetch(port, "/healthz", &body), 404);
    free(body);
    body = NULL;
    CHECK_INT(fetch(port, "/v1/tokens", &body), 404);
    free(body);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 20), 0);
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const sx_test tests[] = {
        {"metrics_are_valid_prometheus_text_and_counters_move", metrics_are_valid_prometheus_text_and_counters_move},
        {"metrics_listener_serves_only_metrics", metrics_listener_serves_only_metrics},
    };
    int rc = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return rc;
}
