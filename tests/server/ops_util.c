/* ops_util.c - see ops_util.h. */
#include "ops_util.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include "common/clock.h"
#include "testutil.h"

void ops_write_config(const char *dir, const char *name, bool sync, const char *seal_lines)
{
    char conf[4096];
    snprintf(conf, sizeof(conf),
             "[server]\nlisten = 127.0.0.1:0\nthreads = 2\nadmin_socket = admin.sock\n"
             "[storage]\nbackend = rocksdb\npath = data\nsync = %s\n"
             "[seal]\n%s"
             "[log]\nlevel = info\naccess_log =\n",
             sync ? "true" : "false", seal_lines);
    char *path = sx_test_path(dir, name);
    sx_test_write_file(path, conf, strlen(conf));
    free(path);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

int ops_start(sx_srv *srv, const char *dir, const char *name, int *ret_exit)
{
    memset(srv, 0, sizeof(*srv));
    srv->dir = strdup(dir);
    srv->config_path = sx_test_path(dir, name);
    srv->admin_socket = sx_test_path(dir, "admin.sock");
    srv->stderr_path = sx_test_path(dir, "stderr.log");
    char *out_path = sx_test_path(dir, "stdout.log");
    long off = file_size(srv->stderr_path);
    fflush(stdout); /* the child's freopen() would flush our buffered output a second time */
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!freopen(out_path, "a", stdout) || !freopen(srv->stderr_path, "a", stderr))
            _exit(126);
        execl(SX_SECRETSD_PATH, "secretsd", "--config", srv->config_path, (char *)NULL);
        _exit(127);
    }
    free(out_path);
    srv->pid = pid;
    for (int i = 0; i < 600; i++) { /* 60 s: sanitizer builds start slowly */
        char *log = sx_test_read_file(srv->stderr_path, NULL);
        const char *tail = log && (long)strlen(log) >= off ? log + off : NULL;
        const char *lp = tail ? strstr(tail, "listening on http://") : NULL;
        if (lp && strstr(tail, "serving with")) {
            const char *colon = strchr(lp + strlen("listening on http://"), ':');
            srv->port = colon ? atoi(colon + 1) : 0;
            free(log);
            return 0;
        }
        free(log);
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            srv->pid = 0;
            if (ret_exit)
                *ret_exit = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            return -1;
        }
        sx_test_sleep_ms(100);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    srv->pid = 0;
    if (ret_exit)
        *ret_exit = -1;
    return -1;
}

bool ops_recovery_key(const char *dir, char *out)
{
    char *path = sx_test_path(dir, "var/recovery.key"); /* stdout is a file here, so the key went to the key file */
    char *text = sx_test_read_file(path, NULL);
    free(path);
    const char *k = text ? strstr(text, "SXR1-") : NULL;
    bool ok = k && strlen(k) >= 67;
    if (ok) {
        memcpy(out, k, 67);
        out[67] = '\0';
    }
    free(text);
    return ok;
}

/* ---- client ------------------------------------------------------------------------------------ */

void ops_client_init(ops_client *c, const sx_srv *srv, bool h2, const char *token)
{
    memset(c, 0, sizeof(*c));
    c->h = curl_easy_init();
    c->srv = srv;
    c->h2 = h2;
    if (token)
        snprintf(c->auth, sizeof(c->auth), "Authorization: Bearer %s", token);
}

void ops_client_clear(ops_client *c)
{
    if (c->h)
        curl_easy_cleanup(c->h);
    c->h = NULL;
}

int ops_call(ops_client *c, const char *method, const char *path, const char *body, long *ret_status, char **ret_body)
{
    char url[2048];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", c->srv->port, path);
    /* Options are set anew on the same handle, so an HTTP/1.1 connection is reused. libcurl 7.88
     * fails to reuse an h2c (prior knowledge) connection ("Error in the HTTP2 framing layer"; the
     * curl tool does the same), so h2c requests each open a fresh connection. */
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_FRESH_CONNECT, c->h2 ? 1L : 0L);
    curl_easy_setopt(c->h, CURLOPT_FORBID_REUSE, c->h2 ? 1L : 0L);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c->h, CURLOPT_HTTP_VERSION,
                     c->h2 ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE : (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *hl = NULL;
    if (c->auth[0])
        hl = curl_slist_append(hl, c->auth);
    hl = curl_slist_append(hl, "Expect:");
    if (body) {
        hl = curl_slist_append(hl, "Content-Type: application/json");
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    } else {
        curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L); /* drops the previous request's body */
    }
    curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hl);
    sx_test_buf b = {0};
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, sx_test_buf_append);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(c->h);
    *ret_status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, ret_status);
    else
        fprintf(stderr, "ops_call %s %s: %s\n", method, path, curl_easy_strerror(rc));
    curl_slist_free_all(hl);
    if (ret_body)
        *ret_body = b.data ? b.data : calloc(1, 1);
    else
        free(b.data);
    return rc == CURLE_OK ? 0 : -1;
}

yajl_val ops_admin_json(const sx_srv *srv, const char *method, const char *path, const char *body, long want)
{
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    sx_resp r;
    if (sx_srv_request(srv, SX_ADMIN, method, path, body ? hdrs : NULL, body, body ? strlen(body) : 0, &r) != 0) {
        sx_resp_free(&r);
        return NULL;
    }
    yajl_val v = NULL;
    if (r.status == want) {
        char ebuf[128];
        v = yajl_tree_parse(r.body, ebuf, sizeof(ebuf));
    } else {
        fprintf(stderr, "admin %s %s: %ld %s\n", method, path, r.status, r.body);
    }
    sx_resp_free(&r);
    return v;
}

yajl_val ops_jget(yajl_val v, yajl_type t, ...)
{
    const char *path[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, t);
    const char *k;
    while (n < 15 && (k = va_arg(ap, const char *)) != NULL)
        path[n++] = k;
    va_end(ap);
    path[n] = NULL;
    return v ? yajl_tree_get(v, path, t) : NULL;
}

long long ops_jint(yajl_val v, ...)
{
    const char *path[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, v);
    const char *k;
    while (n < 15 && (k = va_arg(ap, const char *)) != NULL)
        path[n++] = k;
    va_end(ap);
    path[n] = NULL;
    yajl_val x = v ? yajl_tree_get(v, path, yajl_t_number) : NULL;
    return x && YAJL_IS_INTEGER(x) ? YAJL_GET_INTEGER(x) : -1;
}

bool ops_wait_rotations_done(const sx_srv *srv, int timeout_s)
{
    int64_t end = sx_clock_mono_ms() + (int64_t)timeout_s * 1000;
    while (sx_clock_mono_ms() < end) {
        yajl_val v = ops_admin_json(srv, "GET", "/v1/rotations", NULL, 200);
        bool empty = v && YAJL_IS_ARRAY(v) && v->u.array.len == 0;
        yajl_tree_free(v);
        if (empty)
            return true;
        sx_test_sleep_ms(200);
    }
    return false;
}

/* ---- seeding and checking values with many keep-alive clients ---------------------------------- */

typedef struct seed_job {
    const sx_srv *srv;
    const char *token;
    const char *org, *project;
    const char *env_fmt; /* "c%04d": one env per index; NULL = env_name */
    const char *env_name;
    int from, to, step; /* indexes handled by this thread */
    bool h2;
    bool check; /* reveal and compare instead of writing */
    long failures;
} seed_job;

void ops_value_of(char *buf, size_t cap, const char *env, int i)
{
    snprintf(buf, cap, "value-%s-%d-\xc3\xa9", env, i);
}

static void *seed_main(void *arg)
{
    seed_job *j = arg;
    ops_client c;
    ops_client_init(&c, j->srv, j->h2, j->token);
    for (int i = j->from; i < j->to; i += j->step) {
        char env[64], path[256], body[256], val[128], name[32];
        if (j->env_fmt)
            snprintf(env, sizeof(env), j->env_fmt, i);
        else
            snprintf(env, sizeof(env), "%s", j->env_name);
        snprintf(name, sizeof(name), "S%d", i);
        ops_value_of(val, sizeof(val), env, i);
        long st = 0;
        char *resp = NULL;
        if (j->check) {
            snprintf(path, sizeof(path), "/%s/%s/envs/%s/secrets/%s/value", j->org, j->project, env, name);
            ops_call(&c, "GET", path, NULL, &st, &resp);
            if (st != 200 || !strstr(resp, "value-")) {
                j->failures++;
            } else {
                char want[160];
                snprintf(want, sizeof(want), "\"value\":\"%s\"", val);
                if (!strstr(resp, want))
                    j->failures++;
            }
            if (j->failures && j->failures < 5 && (st != 200 || !strstr(resp, "value-")))
                fprintf(stderr, "reveal %s -> %ld %s\n", path, st, resp);
            free(resp);
            continue;
        }
        snprintf(path, sizeof(path), "/%s/%s/envs/%s/secrets", j->org, j->project, env);
        snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"%s\"}", name);
        ops_call(&c, "POST", path, body, &st, NULL);
        if (st != 201)
            j->failures++;
        snprintf(path, sizeof(path), "/%s/%s/envs/%s/secrets/%s/value", j->org, j->project, env, name);
        snprintf(body, sizeof(body), "{\"value\":\"%s\"}", val);
        ops_call(&c, "PUT", path, body, &st, NULL);
        if (st != 200)
            j->failures++;
    }
    ops_client_clear(&c);
    return NULL;
}

long ops_seed(const sx_srv *srv, const char *token, const char *org, const char *project, const char *env_fmt,
              const char *env_name, int n, int nthreads, bool check)
{
    pthread_t tids[16];
    seed_job jobs[16];
    for (int t = 0; t < nthreads; t++) {
        jobs[t] = (seed_job){srv, token, org, project, env_fmt, env_name, t, n, nthreads, t % 2 == 1, check, 0};
        pthread_create(&tids[t], NULL, seed_main, &jobs[t]);
    }
    long failures = 0;
    for (int t = 0; t < nthreads; t++) {
        pthread_join(tids[t], NULL);
        failures += jobs[t].failures;
    }
    return failures;
}
