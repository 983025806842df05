/* harness.c - see harness.h. */
#include "harness.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "testutil.h"
#ifdef SX_HAVE_PGTEST
#include "pgtest.h"
#endif

extern char **environ;

/* Parse "listening on http://127.0.0.1:PORT" / "https://..." lines from the server's stderr. */
static void scan_ports(sx_srv *srv)
{
    char *log = sx_test_read_file(srv->stderr_path, NULL);
    if (!log)
        return;
    for (char *p = log; (p = strstr(p, "listening on ")) != NULL; p++) {
        p += strlen("listening on ");
        bool tls = strncmp(p, "https://", 8) == 0;
        if (!tls && strncmp(p, "http://", 7) != 0)
            continue;
        char *colon = strchr(p + 8, '\n');
        char *end = colon ? colon : p + strlen(p);
        char *c = end;
        while (c > p && *c != ':')
            c--;
        int port = atoi(c + 1);
        if (tls)
            srv->tls_port = port;
        else
            srv->port = port;
    }
    free(log);
}

int sx_srv_start(sx_srv *srv, const sx_srv_opts *opts)
{
    static const sx_srv_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    memset(srv, 0, sizeof(*srv));
    if (opts->dir) {
        srv->dir = strdup(opts->dir);
    } else {
        srv->dir = sx_test_tmpdir("srv");
        srv->own_dir = !opts->keep_dir;
    }
    srv->config_path = sx_test_path(srv->dir, "secrets.conf");
    srv->admin_socket = sx_test_path(srv->dir, "admin.sock");
    srv->stderr_path = sx_test_path(srv->dir, "stderr.log");
    srv->access_log = sx_test_path(srv->dir, "access.log");
    srv->cert_path = sx_test_path(srv->dir, "cert.pem");
    char *key_path = sx_test_path(srv->dir, "key.pem");

    if (access(srv->cert_path, R_OK) != 0) {
        char cmd[2048];
        snprintf(cmd, sizeof(cmd),
                 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost "
                 "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout '%s' -out '%s' >/dev/null 2>&1",
                 key_path, srv->cert_path);
        if (system(cmd) != 0) {
            fprintf(stderr, "harness: openssl could not make a test certificate\n");
            free(key_path);
            return -1;
        }
    }
    free(key_path);
    const char *backend = opts->backend ? opts->backend : "memory";
    char own_storage[512] = "";
    if (strcmp(backend, "postgres") == 0 && !opts->extra_storage) {
#ifdef SX_HAVE_PGTEST
        /* A database server for this secretsd alone; the password reaches it through a file. */
        sx_pgtest *pg = calloc(1, sizeof(*pg));
        int r = pg ? sx_pgtest_start(pg) : -1;
        if (r != 0) {
            free(pg);
            return r == SX_PGTEST_SKIP ? r : -1;
        }
        srv->pg = pg;
        char dsn[256], *pwfile = sx_test_path(srv->dir, "dbpassword");
        sx_pgtest_dsn(pg, "postgres", dsn, sizeof(dsn));
        r = sx_test_write_file(pwfile, pg->password, strlen(pg->password));
        free(pwfile);
        if (r != 0)
            return -1;
        snprintf(own_storage, sizeof(own_storage), "dsn = \"%s\"\npassword_file = dbpassword\n", dsn);
#else
        fprintf(stderr, "harness: secretsd was built without the postgres backend\n");
        return 77;
#endif
    }
    char conf[8192], seal[1024];
    if (opts->seal_lines)
        snprintf(seal, sizeof(seal), "%s", opts->seal_lines);
    else
        snprintf(seal, sizeof(seal), "type = file\nkey_file = %s\n", opts->seal_key ? opts->seal_key : "seal.key");
    snprintf(conf, sizeof(conf),
             "[server]\nlisten = 127.0.0.1:%d\nthreads = %u\nadmin_socket = admin.sock\n%s"
             "[tls]\nlisten = 127.0.0.1:%d\ncert = cert.pem\nkey = key.pem\n"
             "[storage]\nbackend = %s\npath = data\n%s%s"
             "[seal]\n%s"
             "[log]\nlevel = info\naccess_log = access.log\n%s"
             "%s%s",
             opts->port, opts->threads ? opts->threads : 2, opts->extra_server ? opts->extra_server : "",
             opts->tls_port, backend, own_storage, opts->extra_storage ? opts->extra_storage : "", seal,
             opts->extra_log ? opts->extra_log : "", opts->extra_secrets ? "[secrets]\n" : "",
             opts->extra_secrets ? opts->extra_secrets : "");
    if (sx_test_write_file(srv->config_path, conf, strlen(conf)) != 0)
        return -1;
    unlink(srv->stderr_path);

    /* The environment is built before the fork: the child only calls exec. */
    size_t nenv = 0, nextra = 0;
    while (environ[nenv])
        nenv++;
    while (opts->extra_env && opts->extra_env[nextra])
        nextra++;
    char **envp = calloc(nenv + nextra + 1, sizeof(*envp));
    if (!envp)
        return -1;
    memcpy(envp, environ, nenv * sizeof(*envp));
    for (size_t i = 0; i < nextra; i++)
        envp[nenv + i] = (char *)opts->extra_env[i];
    int errfd = open(srv->stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    pid_t pid = errfd >= 0 ? fork() : -1;
    if (pid < 0) {
        free(envp);
        if (errfd >= 0)
            close(errfd);
        return -1;
    }
    if (pid == 0) {
        dup2(errfd, 2);
        char *argv[] = {"secretsd", "--config", srv->config_path, NULL};
        execve(SX_SECRETSD_PATH, argv, envp);
        _exit(127);
    }
    free(envp);
    close(errfd);
    srv->pid = pid;
    for (int i = 0; i < 300; i++) { /* up to 30 s: sanitizer builds start slowly */
        scan_ports(srv);
        if (srv->port && srv->tls_port && access(srv->admin_socket, F_OK) == 0) {
            char *log = sx_test_read_file(srv->stderr_path, NULL);
            bool serving = log && strstr(log, "serving with");
            free(log);
            if (serving)
                return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            char *log = sx_test_read_file(srv->stderr_path, NULL);
            fprintf(stderr, "harness: secretsd exited at start-up:\n%s\n", log ? log : "");
            free(log);
            srv->pid = 0;
            return -1;
        }
        sx_test_sleep_ms(100);
    }
    fprintf(stderr, "harness: secretsd did not come up\n");
    return -1;
}

int sx_srv_stop(sx_srv *srv, int sig, int timeout_s)
{
    int result = -1;
    if (srv->pid > 0) {
        kill(srv->pid, sig);
        int st = 0;
        bool done = false;
        for (int i = 0; i < timeout_s * 20; i++) {
            if (waitpid(srv->pid, &st, WNOHANG) == srv->pid) {
                done = true;
                break;
            }
            sx_test_sleep_ms(50);
        }
        if (!done) {
            kill(srv->pid, SIGKILL);
            waitpid(srv->pid, &st, 0);
        } else if (WIFEXITED(st)) {
            result = WEXITSTATUS(st);
        }
        if (result != 0) {
            char *log = sx_test_read_file(srv->stderr_path, NULL);
            fprintf(stderr, "harness: secretsd stderr:\n%s\n", log ? log : "");
            free(log);
        }
        srv->pid = 0;
    }
    if (srv->own_dir)
        sx_test_rmtree(srv->dir);
#ifdef SX_HAVE_PGTEST
    if (srv->pg) {
        sx_pgtest_stop(srv->pg);
        free(srv->pg);
        srv->pg = NULL;
    }
#endif
    free(srv->dir);
    free(srv->config_path);
    free(srv->admin_socket);
    free(srv->stderr_path);
    free(srv->access_log);
    free(srv->cert_path);
    memset(srv, 0, sizeof(*srv));
    return result;
}

int sx_srv_request(const sx_srv *srv, sx_proto proto, const char *method, const char *path, const char *const *headers,
                   const char *body, size_t body_len, sx_resp *ret)
{
    memset(ret, 0, sizeof(*ret));
    CURL *h = curl_easy_init();
    if (!h)
        return -1;
    char url[4096];
    switch (proto) {
    case SX_H1:
    case SX_H2C:
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv->port, path);
        break;
    case SX_H2TLS:
    case SX_H1TLS:
        snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", srv->tls_port, path);
        break;
    case SX_ADMIN:
        snprintf(url, sizeof(url), "http://localhost%s", path);
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, srv->admin_socket);
        break;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    if (proto == SX_H2C)
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    else if (proto == SX_H2TLS)
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    else
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (proto == SX_H2TLS || proto == SX_H1TLS) {
        curl_easy_setopt(h, CURLOPT_CAINFO, srv->cert_path);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    struct curl_slist *hl = NULL;
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    CURLcode rc = sx_resp_perform(h, ret);
    if (rc != CURLE_OK)
        fprintf(stderr, "harness: %s %s: %s\n", method, path, curl_easy_strerror(rc));
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return rc == CURLE_OK ? 0 : -1;
}

/* ---- every answer checked against openapi.yaml ------------------------------------------------ */

/*
 * Each answer that sx_resp_perform() collects (or a test hands to sx_resp_record()) is appended to a file of this test
 * program as one JSON line: the method, the URL as sent, whether it went to the admin socket, the status, the header
 * block and the body (base64). When the program exits, tests/openapi/validate.mjs matches each line against
 * openapi.yaml (one node process for the whole program); a mismatch fails the program and keeps the file, a match
 * removes it. The file is build/test-responses/NAME-PID.jsonl, or the one SX_TEST_RESPONSES names ("off" turns the
 * check off). Lines are written with one write() each on an O_APPEND descriptor, so threads never interleave.
 */
static pthread_once_t record_once = PTHREAD_ONCE_INIT;
static char record_path[4096];
static bool record_keep; /* named by SX_TEST_RESPONSES: left for whoever named it */
static pid_t record_pid;
static atomic_bool recorded;

static void record_validate(void)
{
    if (getpid() != record_pid || !atomic_load(&recorded))
        return;
    char cmd[sizeof(record_path) + 1024];
    snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' '%s'", SX_NODE_PATH, SX_OPENAPI_VALIDATOR, SX_OPENAPI_DOC, record_path);
    fflush(NULL);
    int st = system(cmd);
    if (st != 0) {
        fprintf(stderr, "harness: answers of this test do not match openapi.yaml (%s; status %d)\n", record_path, st);
        fflush(NULL);
        _exit(1);
    }
    if (!record_keep)
        unlink(record_path);
}

static void record_init(void)
{
    const char *path = getenv("SX_TEST_RESPONSES");
    if (path && strcmp(path, "off") == 0)
        return;
    if (path && *path) {
        snprintf(record_path, sizeof(record_path), "%s", path);
        record_keep = true;
    } else {
        snprintf(record_path, sizeof(record_path), "%s/%s-%ld.jsonl", SX_TEST_RESPONSES_DIR,
                 program_invocation_short_name, (long)getpid());
    }
    int fd = open(record_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "harness: cannot write %s: %s\n", record_path, strerror(errno));
        record_path[0] = '\0';
        return;
    }
    close(fd);
    record_pid = getpid();
    atexit(record_validate);
}

/* s as the contents of a JSON string (ASCII; other bytes as \u00XX). */
static void json_escape(sx_test_buf *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[8];
        if (c == '"' || c == '\\') {
            e[0] = '\\';
            e[1] = (char)c;
            sx_test_buf_append(e, 1, 2, b);
        } else if (c < 0x20 || c >= 0x7f) {
            snprintf(e, sizeof(e), "\\u%04x", c);
            sx_test_buf_append(e, 1, 6, b);
        } else {
            sx_test_buf_append((char *)&s[i], 1, 1, b);
        }
    }
}

static void base64(sx_test_buf *b, const char *s, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)u[i] << 16 | (i + 1 < len ? (unsigned)u[i + 1] << 8 : 0) | (i + 2 < len ? u[i + 2] : 0);
        char q[4] = {tab[v >> 18 & 63], tab[v >> 12 & 63], i + 1 < len ? tab[v >> 6 & 63] : '=',
                     i + 2 < len ? tab[v & 63] : '='};
        sx_test_buf_append(q, 1, 4, b);
    }
}

void sx_resp_record(CURL *h, const sx_resp *r)
{
    pthread_once(&record_once, record_init);
    if (!record_path[0])
        return;
    char *method = NULL, *url = NULL;
    curl_easy_getinfo(h, CURLINFO_EFFECTIVE_METHOD, &method);
    curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &url);
    if (!method || !url)
        return;
    /* The harness reaches the admin socket as http://localhost/... and the TCP listeners by address. */
    bool admin = strncmp(url, "http://localhost/", 17) == 0;
    sx_test_buf b = {0};
    char num[64];
    sx_test_buf_append("{\"method\":\"", 1, 11, &b);
    json_escape(&b, method, strlen(method));
    sx_test_buf_append("\",\"url\":\"", 1, 9, &b);
    json_escape(&b, url, strlen(url));
    int n = snprintf(num, sizeof(num), "\",\"admin\":%s,\"status\":%ld,\"headers\":\"", admin ? "true" : "false",
                     r->status);
    sx_test_buf_append(num, 1, (size_t)n, &b);
    json_escape(&b, r->headers, strlen(r->headers));
    sx_test_buf_append("\",\"body\":\"", 1, 10, &b);
    base64(&b, r->body, r->body_len);
    sx_test_buf_append("\"}\n", 1, 3, &b);
    int fd = open(record_path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd >= 0 && b.data) {
        ssize_t w = write(fd, b.data, b.len);
        if (w == (ssize_t)b.len)
            atomic_store(&recorded, true);
        else
            fprintf(stderr, "harness: cannot append to %s\n", record_path);
    }
    if (fd >= 0)
        close(fd);
    free(b.data);
}

CURLcode sx_resp_perform(CURL *h, sx_resp *ret)
{
    memset(ret, 0, sizeof(*ret));
    sx_test_buf b = {0}, hb = {0};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sx_test_buf_append);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, sx_test_buf_append);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hb);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ret->status);
        curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &ret->http_version);
    }
    ret->body = b.data ? b.data : calloc(1, 1);
    ret->body_len = b.len;
    ret->headers = hb.data ? hb.data : calloc(1, 1);
    if (rc == CURLE_OK)
        sx_resp_record(h, ret);
    return rc;
}

void sx_resp_free(sx_resp *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

bool sx_resp_header(const sx_resp *r, const char *name, char *buf, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            eol = p + strlen(p);
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t len = (size_t)(eol - v);
            if (len >= cap)
                len = cap - 1;
            memcpy(buf, v, len);
            buf[len] = '\0';
            return true;
        }
        p = *eol ? eol + 2 : eol;
    }
    return false;
}

bool sx_resp_is_error(const sx_resp *r, const char *code)
{
    char ebuf[128];
    yajl_val v = yajl_tree_parse(r->body, ebuf, sizeof(ebuf));
    bool ok = v && YAJL_IS_OBJECT(v) && v->u.object.len == 2;
    if (ok) {
        const char *ep[] = {"error", NULL}, *cp[] = {"code", NULL};
        yajl_val e = yajl_tree_get(v, ep, yajl_t_string), c = yajl_tree_get(v, cp, yajl_t_string);
        const char *es = e ? YAJL_GET_STRING(e) : NULL, *cs = c ? YAJL_GET_STRING(c) : NULL;
        ok = es && cs && es[0] != '\0' && strcmp(cs, code) == 0;
    }
    if (!ok)
        fprintf(stderr, "harness: expected a JSON error with code \"%s\", got: %s\n", code, r->body);
    yajl_tree_free(v);
    char ct[128];
    if (ok && (!sx_resp_header(r, "content-type", ct, sizeof(ct)) || strcmp(ct, "application/json") != 0)) {
        fprintf(stderr, "harness: error without Content-Type application/json\n");
        ok = false;
    }
    return ok;
}

char *sx_srv_mint_token(const sx_srv *srv, const char *org, const char *project, const char *env, const char *role,
                        char *id_out)
{
    char body[512];
    int n = snprintf(body, sizeof(body), "{\"org\":\"%s\",\"role\":\"%s\",\"label\":\"test\"", org, role);
    if (project)
        n += snprintf(body + n, sizeof(body) - (size_t)n, ",\"project\":\"%s\"", project);
    if (env)
        n += snprintf(body + n, sizeof(body) - (size_t)n, ",\"env\":\"%s\"", env);
    n += snprintf(body + n, sizeof(body) - (size_t)n, "}");
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    sx_resp r;
    if (sx_srv_request(srv, SX_ADMIN, "POST", "/v1/tokens", hdrs, body, (size_t)n, &r) != 0 || r.status != 201) {
        fprintf(stderr, "harness: token mint failed: %ld %s\n", r.status, r.body ? r.body : "");
        sx_resp_free(&r);
        return NULL;
    }
    char ebuf[128];
    yajl_val v = yajl_tree_parse(r.body, ebuf, sizeof(ebuf));
    const char *tp[] = {"token", NULL}, *ip[] = {"id", NULL};
    yajl_val t = v ? yajl_tree_get(v, tp, yajl_t_string) : NULL;
    yajl_val id = v ? yajl_tree_get(v, ip, yajl_t_string) : NULL;
    const char *ts = t ? YAJL_GET_STRING(t) : NULL, *is = id ? YAJL_GET_STRING(id) : NULL;
    char *out = ts ? strdup(ts) : NULL;
    if (is && id_out)
        snprintf(id_out, 33, "%s", is);
    yajl_tree_free(v);
    sx_resp_free(&r);
    return out;
}

char *sx_auth_header(const char *token)
{
    size_t n = strlen(token) + 32;
    char *h = malloc(n);
    snprintf(h, n, "Authorization: Bearer %s", token);
    return h;
}

long sx_srv_call(const sx_srv *srv, const char *auth, const char *method, const char *path, const char *json,
                 char **ret_body)
{
    const char *hd[] = {"Content-Type: application/json", auth, NULL};
    sx_resp r;
    long st = 0;
    if (sx_srv_request(srv, SX_H1, method, path, hd, json, json ? strlen(json) : 0, &r) == 0)
        st = r.status;
    if (ret_body)
        *ret_body = strdup(r.body ? r.body : "");
    sx_resp_free(&r);
    return st;
}

long long sx_srv_metric(const sx_srv *srv, const char *sample)
{
    sx_resp r;
    if (sx_srv_request(srv, SX_ADMIN, "GET", "/metrics", NULL, NULL, 0, &r) != 0)
        return -1;
    long long v = -1;
    size_t n = strlen(sample);
    for (char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, sample, n) == 0 && p[n] == ' ')
            v = atoll(p + n + 1);
    sx_resp_free(&r);
    return v;
}
