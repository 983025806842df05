/*
 * lin_load.c - record a history of concurrent operations on secrets for lin_check.
 *
 *   lin_load --url URL --token-file FILE --org O --project P --env E --clients N --keys K
 *            --seconds S --history OUT [--cacert FILE] [--h2]
 *
 * N client threads, each with its own libcurl handle (one keep-alive connection, HTTP/1.1 or with
 * --h2 HTTP/2: ALPN over https, prior knowledge over http), issue a random mix of create, update (with and without
 * If-Match), delete, set-value, get and reveal over K secrets for S seconds, one request at a time per client. Each
 * operation is written to OUT as one JSON line with its call and return times (CLOCK_MONOTONIC
 * ns) and its outcome (tests/lin/README.md describes the format). Every description and value
 * written is unique (client and counter), so a read names the write it saw. The names carry a tag
 * of this run, so a history always starts from secrets that do not exist.
 *
 * A request without an answer within 5 s, a broken connection or a 5xx is an unknown outcome. After
 * such a failure the client waits a little (longer after each failure in a row, up to 320 ms) and
 * goes on, with a new connection after a transport failure; when that connection
 * is refused (the server is still down) nothing was sent, and that is a definite failure. So the server may be killed
 * and come back on the same address while this runs. lin_load does not judge the history: it exits 0 when it ran, 2 on
 * bad arguments or when it cannot write OUT. SIGTERM or SIGINT ends the run early, as the end of S seconds
 * does: the requests in flight complete and are recorded, and the history is whole.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

enum {
    TIMEOUT_MS = 5000,         /* a request without an answer by then has an unknown outcome */
    CONNECT_TIMEOUT_MS = 2000, /* ... and so has one whose connection was not accepted by then */
    BACKOFF_MS = 20,           /* pause after a failed connection or a 5xx ... */
    MAX_BACKOFF_MS = 320,      /* ... doubled after each failure in a row up to this */
    MAX_KEYS = 1000,
    MAX_CLIENTS = 256,
};

typedef struct load {
    const char *url, *org, *project, *env, *cacert;
    char auth[4200];
    unsigned clients, keys;
    double seconds;
    bool h2;
    bool h2c; /* HTTP/2 without TLS: a new connection for every request (below) */
    char tag[17];
    FILE *out;
    pthread_mutex_t out_lock;
    int64_t deadline;
    atomic_ulong ops, ok, failed, unknown;
    atomic_ulong refused[5]; /* failures by code: see fail_codes */
} load;

/* The failures counted apart in the summary; the last slot counts any other. */
static const char *const fail_codes[] = {"not_found", "already_exists", "precondition_failed", "not_connected"};

/* Set by SIGTERM or SIGINT: the clients start no new request. Lock-free, so safe in a handler. */
static atomic_bool g_stop;

static void on_stop(int sig)
{
    (void)sig;
    atomic_store(&g_stop, true);
}

typedef struct client {
    load *l;
    unsigned id;
    unsigned seed;
    unsigned long counter;
    char **etags;    /* the last ETag this client saw of each key, or NULL */
    bool fresh;      /* the next request must open a new connection (the first one, or after a failure) */
    long backoff_ms; /* the pause after the next failure; 0 after an answer */
} client;

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void buf_add(buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    buf_add(b, tmp, n < 0 ? 0 : (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* ,"name":"escaped s" (or null) */
static void buf_json_member(buf *b, const char *name, const char *s)
{
    buf_printf(b, ",\"%s\":", name);
    if (!s) {
        buf_add(b, "null", 4);
        return;
    }
    buf_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            buf_printf(b, "\\u%04x", *p);
        else
            buf_add(b, p, 1);
    }
    buf_add(b, "\"", 1);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    buf_add(arg, p, size * n);
    return size * n;
}

/* Keep the ETag header's value (the last one of the answer). */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    size_t len = size * n;
    char *etag = arg;
    if (len > 5 && strncasecmp(p, "etag:", 5) == 0) {
        size_t i = 5, j = len;
        while (i < j && (p[i] == ' ' || p[i] == '\t'))
            i++;
        while (j > i && (p[j - 1] == '\r' || p[j - 1] == '\n' || p[j - 1] == ' '))
            j--;
        if (j - i < 128) {
            memcpy(etag, p + i, j - i);
            etag[j - i] = '\0';
        }
    }
    return len;
}

typedef enum kind { CREATE, UPDATE, DELETE, SET_VALUE, GET, REVEAL } kind;
static const char *const kind_names[] = {"create", "update", "delete", "set_value", "get", "reveal"};

static kind pick_kind(unsigned *seed)
{
    /* reads and writes about evenly; creates and deletes often enough that keys come and go */
    static const kind table[20] = {CREATE, CREATE,    CREATE,    UPDATE,    UPDATE,    UPDATE, DELETE,
                                   DELETE, SET_VALUE, SET_VALUE, SET_VALUE, SET_VALUE, GET,    GET,
                                   GET,    GET,       REVEAL,    REVEAL,    REVEAL,    REVEAL};
    return table[rand_r(seed) % 20];
}

static void one_op(client *c, CURL *h)
{
    load *l = c->l;
    unsigned k = (unsigned)rand_r(&c->seed) % l->keys;
    kind kd = pick_kind(&c->seed);
    char name[64], url[2048], written[64] = "", if_match[160] = "", body[512] = "";
    snprintf(name, sizeof(name), "lin-%s-%u", l->tag, k);
    c->counter++;
    const char *method = "GET";
    const char *base = l->url;
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    int n = 0;
    switch (kd) {
    case CREATE:
        method = "POST";
        snprintf(written, sizeof(written), "d-c%u-%lu", c->id, c->counter);
        n = snprintf(url, sizeof(url), "%.*s/%s/%s/envs/%s/secrets", (int)bl, base, l->org, l->project, l->env);
        snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"%s\"}", name, written);
        break;
    case UPDATE:
        method = "PUT";
        snprintf(written, sizeof(written), "d-c%u-%lu", c->id, c->counter);
        snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\",\"description\":\"%s\"}", name, written);
        if (c->etags[k] && rand_r(&c->seed) % 2)
            snprintf(if_match, sizeof(if_match), "%s", c->etags[k]);
        break;
    case DELETE:
        method = "DELETE";
        break;
    case SET_VALUE:
        method = "PUT";
        snprintf(written, sizeof(written), "v-c%u-%lu", c->id, c->counter);
        snprintf(body, sizeof(body), "{\"value\":\"%s\"}", written);
        if (c->etags[k] && rand_r(&c->seed) % 4 == 0)
            snprintf(if_match, sizeof(if_match), "%s", c->etags[k]);
        break;
    case GET:
    case REVEAL:
        break;
    }
    if (kd != CREATE)
        n = snprintf(url, sizeof(url), "%.*s/%s/%s/envs/%s/secrets/%s%s", (int)bl, base, l->org, l->project, l->env,
                     name, kd == SET_VALUE || kd == REVEAL ? "/value" : "");
    if (n <= 0 || (size_t)n >= sizeof(url))
        return;

    struct curl_slist *hdrs = curl_slist_append(NULL, l->auth);
    char line[200];
    if (*body)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (*if_match) {
        snprintf(line, sizeof(line), "If-Match: %s", if_match);
        hdrs = curl_slist_append(hdrs, line);
    }
    buf resp = {0};
    char etag[128] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, etag);
    if (*body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    /* After a transport failure the next request goes on a new connection: a refused connection
     * then proves nothing was sent. (On a kept-alive connection that dies under a request, libcurl
     * retries on a new one, and a refusal of that retry says nothing of the first attempt.) */
    curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, c->fresh || l->h2c ? 1L : 0L);
    int64_t call = mono_ns();
    CURLcode cc = curl_easy_perform(h);
    int64_t ret = mono_ns();
    long status = 0;
    if (cc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);

    const char *outcome, *code = NULL;
    char codebuf[64] = "";
    yajl_val doc = NULL;
    if (cc == CURLE_COULDNT_CONNECT && c->fresh) {
        outcome = "fail"; /* refused on a new connection: nothing was sent */
        code = "not_connected";
    } else if (cc != CURLE_OK || status >= 500 || status < 200) {
        outcome = "unknown";
    } else if (status >= 300) {
        outcome = "fail";
        doc = resp.p ? yajl_tree_parse(resp.p, NULL, 0) : NULL;
        const char *path[] = {"code", NULL};
        yajl_val v = doc ? yajl_tree_get(doc, path, yajl_t_string) : NULL;
        snprintf(codebuf, sizeof(codebuf), "%s", v ? YAJL_GET_STRING(v) : "");
        code = codebuf;
    } else {
        outcome = "ok";
        doc = resp.p ? yajl_tree_parse(resp.p, NULL, 0) : NULL;
    }

    buf rec = {0};
    buf_printf(&rec, "{\"client\":%u", c->id);
    buf_json_member(&rec, "key", name);
    buf_printf(&rec, ",\"op\":\"%s\",\"call\":%lld,\"ret\":%lld,\"outcome\":\"%s\",\"status\":%ld", kind_names[kd],
               (long long)call, (long long)ret, outcome, status);
    if (code)
        buf_json_member(&rec, "code", code);
    if (cc != CURLE_OK)
        buf_json_member(&rec, "error", curl_easy_strerror(cc));
    if (*written)
        buf_json_member(&rec, "written", written);
    if (*if_match)
        buf_json_member(&rec, "if_match", if_match);
    if (strcmp(outcome, "ok") == 0) {
        if (*etag) {
            buf_json_member(&rec, "etag", etag);
            free(c->etags[k]);
            c->etags[k] = strdup(etag);
        }
        const char *hv[] = {"hasValue", NULL}, *desc[] = {"description", NULL}, *val[] = {"value", NULL};
        yajl_val b = doc ? yajl_tree_get(doc, hv, yajl_t_any) : NULL;
        if (b && (YAJL_IS_TRUE(b) || YAJL_IS_FALSE(b)) && kd != SET_VALUE)
            buf_printf(&rec, ",\"has_value\":%s", YAJL_IS_TRUE(b) ? "true" : "false");
        if (kd == GET) {
            yajl_val d = doc ? yajl_tree_get(doc, desc, yajl_t_any) : NULL;
            buf_json_member(&rec, "seen", d && YAJL_IS_STRING(d) ? YAJL_GET_STRING(d) : NULL);
        }
        if (kd == REVEAL) {
            yajl_val d = doc ? yajl_tree_get(doc, val, yajl_t_string) : NULL;
            buf_json_member(&rec, "seen", d ? YAJL_GET_STRING(d) : "(no value in the answer)");
        }
    } else if (kd == DELETE && strcmp(outcome, "fail") == 0 && code && strcmp(code, "not_found") == 0) {
        free(c->etags[k]);
        c->etags[k] = NULL;
    }
    buf_add(&rec, "}\n", 2);
    yajl_tree_free(doc);
    free(resp.p);

    pthread_mutex_lock(&l->out_lock);
    fwrite(rec.p, 1, rec.len, l->out);
    pthread_mutex_unlock(&l->out_lock);
    free(rec.p);
    atomic_fetch_add(&l->ops, 1);
    if (outcome[0] == 'o')
        atomic_fetch_add(&l->ok, 1);
    else if (outcome[0] == 'f') {
        atomic_fetch_add(&l->failed, 1);
        size_t i = 0;
        while (i < 4 && strcmp(code, fail_codes[i]) != 0)
            i++;
        atomic_fetch_add(&l->refused[i], 1);
    } else
        atomic_fetch_add(&l->unknown, 1);
    c->fresh = cc != CURLE_OK || l->h2c;
    /* After a failed connection or a 5xx the client waits before its next request, longer after
     * each failure in a row, as a retrying client would: a server answering 503 at once (its
     * database failing over) would otherwise get thousands of requests a second, each an unknown
     * outcome the check must place. */
    if (outcome[0] == 'u' || (code && strcmp(code, "not_connected") == 0)) {
        long ms = c->backoff_ms ? c->backoff_ms : BACKOFF_MS;
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        c->backoff_ms = ms * 2 < MAX_BACKOFF_MS ? ms * 2 : MAX_BACKOFF_MS;
    } else
        c->backoff_ms = 0;
}

static void *client_main(void *arg)
{
    client *c = arg;
    load *l = c->l;
    CURL *h = curl_easy_init();
    if (!h)
        return NULL;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    bool tls = strncmp(l->url, "https:", 6) == 0;
    if (l->h2)
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
                         (long)(tls ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE));
    else
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (l->cacert)
        curl_easy_setopt(h, CURLOPT_CAINFO, l->cacert);
    if (l->h2c) /* see load.h2c */
        curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    while (mono_ns() < l->deadline && !atomic_load(&g_stop))
        one_op(c, h);
    curl_easy_cleanup(h);
    return NULL;
}

static void usage(const char *why)
{
    fprintf(stderr,
            "lin_load: %s\nusage: lin_load --url URL --token-file FILE --org O --project P --env E --clients N "
            "--keys K --seconds S --history OUT [--cacert FILE] [--h2]\n",
            why);
    exit(2);
}

int main(int argc, char **argv)
{
    static load l;
    const char *token_file = NULL, *history = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--h2") == 0) {
            l.h2 = true;
            continue;
        }
        if (i + 1 >= argc)
            usage("an option without its value");
        const char *v = argv[++i];
        if (strcmp(a, "--url") == 0)
            l.url = v;
        else if (strcmp(a, "--token-file") == 0)
            token_file = v;
        else if (strcmp(a, "--org") == 0)
            l.org = v;
        else if (strcmp(a, "--project") == 0)
            l.project = v;
        else if (strcmp(a, "--env") == 0)
            l.env = v;
        else if (strcmp(a, "--clients") == 0)
            l.clients = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--keys") == 0)
            l.keys = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--seconds") == 0)
            l.seconds = strtod(v, NULL);
        else if (strcmp(a, "--history") == 0)
            history = v;
        else if (strcmp(a, "--cacert") == 0)
            l.cacert = v;
        else
            usage("unknown option");
    }
    if (!l.url || !token_file || !l.org || !l.project || !l.env || !history)
        usage("missing option");
    if (l.clients < 1 || l.clients > MAX_CLIENTS || l.keys < 1 || l.keys > MAX_KEYS || !(l.seconds > 0))
        usage("--clients must be 1..256, --keys 1..1000, --seconds positive");

    FILE *tf = fopen(token_file, "r");
    char token[4096] = "";
    if (!tf || !fgets(token, sizeof(token), tf)) {
        fprintf(stderr, "lin_load: cannot read the token file %s\n", token_file);
        return 2;
    }
    fclose(tf);
    token[strcspn(token, "\r\n \t")] = '\0';
    snprintf(l.auth, sizeof(l.auth), "Authorization: Bearer %s", token);
    explicit_bzero(token, sizeof(token));

    l.out = fopen(history, "w");
    if (!l.out) {
        fprintf(stderr, "lin_load: cannot write %s: %s\n", history, strerror(errno));
        return 2;
    }
    /* libcurl before 8.0 breaks a kept-alive HTTP/2 connection without TLS (prior knowledge) on
     * its second request ("Error in the HTTP2 framing layer", nothing sent): such clients open a
     * new connection for every request. Over TLS (ALPN h2) connections are kept. */
    l.h2c = l.h2 && strncmp(l.url, "https:", 6) != 0 && curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    curl_global_init(CURL_GLOBAL_ALL);
    pthread_mutex_init(&l.out_lock, NULL);
    uint64_t t = (uint64_t)mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
    snprintf(l.tag, sizeof(l.tag), "%08llx", (unsigned long long)(t * 0x9e3779b97f4a7c15ULL >> 32));

    int64_t start = mono_ns();
    l.deadline = start + (int64_t)(l.seconds * 1e9);
    client *cs = calloc(l.clients, sizeof(*cs));
    pthread_t *tids = calloc(l.clients, sizeof(*tids));
    if (!cs || !tids)
        abort();
    /* The clients start with SIGTERM and SIGINT blocked, so that only this thread takes them and
     * no request of theirs is interrupted. */
    sigset_t stops, before;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stops, &before);
    for (unsigned i = 0; i < l.clients; i++) {
        cs[i] = (client){.l = &l, .id = i, .seed = (unsigned)t + i * 7919u, .fresh = true};
        cs[i].etags = calloc(l.keys, sizeof(char *));
        if (!cs[i].etags || pthread_create(&tids[i], NULL, client_main, &cs[i]) != 0)
            abort();
    }
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    for (unsigned i = 0; i < l.clients; i++) {
        pthread_join(tids[i], NULL);
        for (unsigned k = 0; k < l.keys; k++)
            free(cs[i].etags[k]);
        free(cs[i].etags);
    }
    int bad = fclose(l.out) != 0;
    double secs = (double)(mono_ns() - start) / 1e9;
    printf("lin_load: %lu operations (%lu ok, %lu failed, %lu unknown) by %u clients on %u keys (tag %s) in %.1f s\n",
           atomic_load(&l.ops), atomic_load(&l.ok), atomic_load(&l.failed), atomic_load(&l.unknown), l.clients, l.keys,
           l.tag, secs);
    printf(
        "lin_load: failed: %lu not_found, %lu already_exists, %lu precondition_failed, %lu not_connected, %lu other\n",
        atomic_load(&l.refused[0]), atomic_load(&l.refused[1]), atomic_load(&l.refused[2]), atomic_load(&l.refused[3]),
        atomic_load(&l.refused[4]));
    free(cs);
    free(tids);
    curl_global_cleanup();
    if (bad) {
        fprintf(stderr, "lin_load: writing %s failed\n", history);
        return 2;
    }
    return 0;
}
