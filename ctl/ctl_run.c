/*
 * ctl_run.c - secretsctl run ORG/PROJECT/ENV [options] -- CMD ARGS...: start a process with the
 * env's values in its environment, fetched in one request (GET .../values).
 *
 * Without --watch secretsctl execs CMD itself (the same pid, no parent left behind). With
 * --watch[=INTERVAL] it stays as CMD's parent: it polls the values (If-None-Match with the last
 * ETag when the server gave one, else a BLAKE2b hash of the answer), restarts CMD with the new
 * environment when they change (SIGTERM, SIGKILL after --restart-grace), forwards SIGINT, SIGTERM
 * and SIGHUP to it and exits with its status (128 + N when signal N killed it). The parent keeps
 * every signal blocked and takes them with sigtimedwait(), so there are no handlers to race.
 *
 * --fallback FILE keeps an encrypted snapshot (snapshot.h) of the last values fetched, written
 * after each successful fetch, and uses it when the server cannot be reached (no connection, a
 * timeout, a dropped connection, or 502/503/504 from the server or a gateway in front of it); never
 * after an answer that refuses (401, 403, 404, ...). A snapshot older than --fallback-max-age
 * (24h), changed, or made with another token or for another env is refused.
 *
 * The token is not passed on: SECRETSD_TOKEN is removed from CMD's environment.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "ctl/ctl.h"
#include "ctl/envmap.h"
#include "ctl/http_client.h"
#include "ctl/snapshot.h"

extern char **environ;

#define DEFAULT_WATCH_MS   (30 * 1000L)
#define DEFAULT_GRACE_MS   (10 * 1000L)
#define DEFAULT_MAX_AGE_MS (24 * 3600 * 1000LL)
/* While --watch polls, an unchanged snapshot is written again at most this often. */
#define SNAPSHOT_REFRESH_MS (60 * 1000L)

typedef struct run_opts {
    const char *only, *prefix, *fallback;
    bool no_override, skip_invalid, watch;
    long watch_ms, grace_ms;
    long long max_age_ms;
    char env_path[CTL_SCOPE_MAX];
    const char *target; /* argv */
    char **cmd;         /* argv */
} run_opts;

static void run_usage(FILE *f)
{
    fprintf(f,
            "usage: secretsctl run ORG/PROJECT/ENV [--only A,B] [--prefix P_] [--no-override] [--skip-invalid]\n"
            "                      [--watch[=30s]] [--restart-grace 10s]\n"
            "                      [--fallback FILE [--fallback-max-age 24h]] -- CMD [ARGS...]\n"
            "\n"
            "Runs CMD with the env's values added to its environment (one request). A variable already set\n"
            "is replaced, or kept with --no-override. Names that are not environment identifiers (after\n"
            "--prefix) are refused, or left out with --skip-invalid. SECRETSD_TOKEN is not passed to CMD.\n"
            "Without --watch, secretsctl becomes CMD (exec). With --watch it stays as CMD's parent, polls\n"
            "the values every INTERVAL (500ms, 10s, 5m, ...) and restarts CMD when they change (SIGTERM,\n"
            "then SIGKILL after --restart-grace); it forwards SIGINT, SIGTERM and SIGHUP and exits with\n"
            "CMD's status (128+N when signal N killed it).\n"
            "--fallback FILE: after each fetch an encrypted copy (mode 0600, only this token opens it)\n"
            "is written to FILE and used, with a warning, when the server cannot be reached (refused,\n"
            "timed out, 502/503/504) - never after 401/403/404; one older than --fallback-max-age is refused.\n"
            "\n%s",
            ctl_api_usage);
}

/* "500ms", "10s", "5m", "24h", "2d" or a number of seconds, as milliseconds (> 0). */
static bool parse_duration(const char *s, long long *ret_ms)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v <= 0)
        return false;
    long long mult;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        mult = 3600 * 1000;
    else if (strcmp(end, "d") == 0)
        mult = 24 * 3600 * 1000LL;
    else
        return false;
    if (v > (1LL << 50) / mult)
        return false;
    *ret_ms = v * mult;
    return true;
}

/* An age for people: "250ms", "45s", "12m3s", "3h12m", "2d4h". */
static void format_age(long long ms, char *buf, size_t cap)
{
    long long s = ms < 0 ? 0 : ms / 1000;
    if (ms < 1000)
        snprintf(buf, cap, "%lldms", ms < 0 ? 0 : ms);
    else if (s < 60)
        snprintf(buf, cap, "%llds", s);
    else if (s < 3600)
        snprintf(buf, cap, "%lldm%llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "%lldh%lldm", s / 3600, (s % 3600) / 60);
    else
        snprintf(buf, cap, "%lldd%lldh", s / 86400, (s % 86400) / 3600);
}

/* ---- the values ------------------------------------------------------------------------------------ */

/* What one fetch gave: the values JSON (wiped when freed), its hash, the ETag. */
typedef struct fetched {
    ctl_text json;
    uint8_t hash[crypto_generichash_BYTES];
    char etag[CTL_ETAG_MAX];
    bool from_snapshot;
} fetched;

/* Write the fallback snapshot of the values in f (when --fallback is given); a failure is a warning. */
static void save_snapshot(const ctl_api *a, const run_opts *ro, const fetched *f)
{
    if (!ro->fallback || f->from_snapshot)
        return;
    size_t slen;
    const char *secret = ctl_api_token_secret(a, &slen);
    int rc = ctl_snapshot_write(ro->fallback, ro->env_path, secret, slen, f->json.data, f->json.len);
    if (rc != 0)
        fprintf(stderr, "secretsctl: warning: cannot write the fallback snapshot \"%s\": %s\n", ro->fallback,
                strerror(-rc));
}

/* Fetch the values; on the first fetch (poll false), when the server cannot be reached, read the
 * snapshot instead. if_none_match: the ETag of the values in hand; *ret_unchanged says the server
 * answered 304. report: print why a fetch failed. Returns an exit status. */
static int fetch_values(ctl_api *a, const run_opts *ro, const char *if_none_match, bool poll, bool report, fetched *ret,
                        bool *ret_unchanged)
{
    char path[CTL_SCOPE_MAX + 16];
    snprintf(path, sizeof(path), "%s/values", ro->env_path);
    ctl_api_resp r;
    ctl_api_call(a, "GET", path, NULL, if_none_match, &r);
    *ret_unchanged = false;
    if (r.err == CTL_WIRE_OK && r.status == 304 && if_none_match) {
        *ret_unchanged = true;
        ctl_api_resp_free(&r);
        return CTL_EXIT_OK;
    }
    if (r.err == CTL_WIRE_OK && r.status == 200) {
        memset(ret, 0, sizeof(*ret));
        ctl_text_add(&ret->json, r.body, r.len);
        snprintf(ret->etag, sizeof(ret->etag), "%s", r.etag);
        crypto_generichash(ret->hash, sizeof(ret->hash), (const uint8_t *)r.body, r.len, NULL, 0);
        ctl_api_resp_free(&r);
        if (ret->json.failed) {
            ctl_text_free(&ret->json);
            fprintf(stderr, "secretsctl: out of memory\n");
            return CTL_EXIT_FAIL;
        }
        return CTL_EXIT_OK;
    }
    if (poll) {
        int code = report ? ctl_api_report(a, &r, ro->target) : ctl_exit_for_status(r.status);
        ctl_api_resp_free(&r);
        return code == CTL_EXIT_OK ? CTL_EXIT_FAIL : code;
    }
    if (!(ro->fallback && ctl_api_unreachable(&r))) {
        int code = ctl_api_report(a, &r, ro->target);
        ctl_api_resp_free(&r);
        return code == CTL_EXIT_OK ? CTL_EXIT_FAIL : code;
    }
    /* The server cannot be reached: the snapshot stands in, if it is good and young enough. */
    char why[CTL_API_ERROR_MAX + 32];
    if (r.err != CTL_WIRE_OK)
        snprintf(why, sizeof(why), "%s", r.error);
    else
        snprintf(why, sizeof(why), "it answered %ld", r.status);
    ctl_api_resp_free(&r);
    size_t slen;
    const char *secret = ctl_api_token_secret(a, &slen);
    char *plain = NULL;
    size_t plen = 0;
    int64_t created = 0;
    int rc = ctl_snapshot_read(ro->fallback, ro->env_path, secret, slen, &plain, &plen, &created);
    if (rc != 0) {
        fprintf(stderr, "secretsctl: cannot reach the server at %s: %s\n", a->base, why);
        if (rc == -EBADMSG)
            fprintf(stderr,
                    "secretsctl: the fallback snapshot \"%s\" is refused: it was changed, or written with another "
                    "token or for another env\n",
                    ro->fallback);
        else
            fprintf(stderr, "secretsctl: no fallback snapshot at \"%s\": %s\n", ro->fallback, strerror(-rc));
        return CTL_EXIT_FAIL;
    }
    long long age = (long long)(sx_clock_wall_ms() - created);
    char agebuf[32], maxbuf[32];
    format_age(age, agebuf, sizeof(agebuf));
    if (age > ro->max_age_ms) {
        format_age(ro->max_age_ms, maxbuf, sizeof(maxbuf));
        fprintf(stderr, "secretsctl: cannot reach the server at %s: %s\n", a->base, why);
        fprintf(stderr,
                "secretsctl: the fallback snapshot \"%s\" is %s old, older than --fallback-max-age %s: not used\n",
                ro->fallback, agebuf, maxbuf);
        sodium_memzero(plain, plen);
        free(plain);
        return CTL_EXIT_FAIL;
    }
    fprintf(stderr,
            "secretsctl: warning: cannot reach the server at %s (%s); using the fallback snapshot \"%s\" "
            "written %s ago\n",
            a->base, why, ro->fallback, agebuf);
    memset(ret, 0, sizeof(*ret));
    ret->from_snapshot = true;
    ctl_text_add(&ret->json, plain, plen);
    crypto_generichash(ret->hash, sizeof(ret->hash), (const uint8_t *)plain, plen, NULL, 0);
    sodium_memzero(plain, plen);
    free(plain);
    if (ret->json.failed) {
        ctl_text_free(&ret->json);
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}

/* ---- the environment --------------------------------------------------------------------------------- */

static void envp_free(char **envp)
{
    if (!envp)
        return;
    for (char **p = envp; *p; p++) {
        sodium_memzero(*p, strlen(*p));
        free(*p);
    }
    free(envp);
}

static bool env_entry_is(const char *entry, const char *name)
{
    size_t n = strlen(name);
    return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

/* The environment of CMD from the values JSON: this process's environment without SECRETSD_TOKEN,
 * with the selected values added (replacing a variable of the same name unless --no-override).
 * Returns an exit status; *ret_envp is a NULL-terminated malloc'd array of malloc'd strings. */
static int build_env(const run_opts *ro, const ctl_text *json, char ***ret_envp)
{
    ctl_envmap m;
    if (ctl_envmap_parse(json->data, json->len, false, &m) != 0) {
        ctl_envmap_free(&m);
        fprintf(stderr, "secretsctl: the server's answer is not a map of values\n");
        return CTL_EXIT_FAIL;
    }
    if (ctl_envmap_select(&m, ro->only, ro->prefix) != 0) {
        ctl_envmap_free(&m);
        return CTL_EXIT_NOTFOUND;
    }
    if (ctl_envmap_check_env(&m, ro->skip_invalid, "run") != 0) {
        ctl_envmap_free(&m);
        return CTL_EXIT_FAIL;
    }
    size_t nenv = 0;
    while (environ[nenv])
        nenv++;
    char **envp = calloc(nenv + m.n + 1, sizeof(char *));
    bool *keep_secret = calloc(m.n + 1, sizeof(bool));
    if (!envp || !keep_secret) {
        free(envp);
        free(keep_secret);
        ctl_envmap_free(&m);
        return CTL_EXIT_FAIL;
    }
    for (size_t i = 0; i < m.n; i++)
        keep_secret[i] = true;
    size_t k = 0;
    bool oom = false;
    for (size_t e = 0; e < nenv; e++) {
        const char *entry = environ[e];
        if (env_entry_is(entry, "SECRETSD_TOKEN"))
            continue;
        bool replaced = false;
        for (size_t i = 0; i < m.n; i++) {
            if (!env_entry_is(entry, m.vars[i].name))
                continue;
            if (ro->no_override)
                keep_secret[i] = false;
            else
                replaced = true;
        }
        if (replaced)
            continue;
        if (!(envp[k++] = strdup(entry)))
            oom = true;
    }
    for (size_t i = 0; i < m.n; i++) {
        if (!keep_secret[i])
            continue;
        size_t nl = strlen(m.vars[i].name), vl = m.vars[i].value_len;
        char *s = malloc(nl + 1 + vl + 1);
        if (!s) {
            oom = true;
            continue;
        }
        memcpy(s, m.vars[i].name, nl);
        s[nl] = '=';
        memcpy(s + nl + 1, m.vars[i].value, vl + 1);
        envp[k++] = s;
    }
    envp[k] = NULL;
    free(keep_secret);
    ctl_envmap_free(&m);
    if (oom) {
        envp_free(envp);
        fprintf(stderr, "secretsctl: out of memory\n");
        return CTL_EXIT_FAIL;
    }
    *ret_envp = envp;
    return CTL_EXIT_OK;
}

/* The status a shell gives a command it could not run. */
static int exec_failed(const char *cmd, int err)
{
    fprintf(stderr, "secretsctl: cannot run \"%s\": %s\n", cmd, strerror(err));
    return err == ENOENT ? 127 : 126;
}

/* ---- --watch ------------------------------------------------------------------------------------------ */

typedef struct watcher {
    sigset_t blocked, orig;
    pid_t child;
    int status;    /* the child's wait status once it ended */
    bool stopping; /* a forwarded SIGINT/SIGTERM: do not restart, exit with the child */
} watcher;

static pid_t spawn(watcher *w, char **cmd, char **envp)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &w->orig, NULL);
        execvpe(cmd[0], cmd, envp);
        _exit(exec_failed(cmd[0], errno));
    }
    if (pid < 0)
        fprintf(stderr, "secretsctl: fork: %s\n", strerror(errno));
    return pid;
}

/* Reap the child when it ended; true when it did (w->status set, w->child 0). */
static bool reap(watcher *w)
{
    int st;
    pid_t p;
    bool ended = false;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
        if (p == w->child) {
            w->status = st;
            w->child = 0;
            ended = true;
        }
    }
    return ended;
}

static int exit_status_of(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 1;
}

/* Wait for one blocked signal up to ms milliseconds (0 when none came). A forwarded signal is
 * passed to the child here. */
static int wait_signal(watcher *w, long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    siginfo_t si;
    int sig = sigtimedwait(&w->blocked, &si, &ts);
    if (sig < 0)
        return 0;
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
        if (w->child > 0)
            kill(w->child, sig);
        if (sig != SIGHUP)
            w->stopping = true;
    }
    return sig;
}

/* Stop the child for a restart: SIGTERM, then SIGKILL after the grace. */
static void stop_child(watcher *w, long grace_ms)
{
    if (w->child <= 0)
        return;
    kill(w->child, SIGTERM);
    int64_t deadline = sx_clock_mono_ms() + grace_ms;
    while (!reap(w)) {
        int64_t left = deadline - sx_clock_mono_ms();
        if (left <= 0) {
            kill(w->child, SIGKILL);
            while (!reap(w))
                wait_signal(w, 100);
            break;
        }
        wait_signal(w, left);
    }
}

static int run_watch(ctl_api *a, const run_opts *ro, fetched *cur, char **envp)
{
    watcher w = {0};
    sigemptyset(&w.blocked);
    sigaddset(&w.blocked, SIGINT);
    sigaddset(&w.blocked, SIGTERM);
    sigaddset(&w.blocked, SIGHUP);
    sigaddset(&w.blocked, SIGCHLD);
    sigprocmask(SIG_BLOCK, &w.blocked, &w.orig);
    w.child = spawn(&w, ro->cmd, envp);
    envp_free(envp);
    if (w.child < 0)
        return CTL_EXIT_FAIL;
    bool failing = false;
    int64_t next = sx_clock_mono_ms() + ro->watch_ms, saved = sx_clock_mono_ms();
    for (;;) {
        if (reap(&w))
            break;
        int64_t left = next - sx_clock_mono_ms();
        if (left > 0) {
            wait_signal(&w, left);
            continue;
        }
        next = sx_clock_mono_ms() + ro->watch_ms;
        if (w.stopping)
            continue;
        fetched nf;
        bool unchanged = false;
        /* A 304 means the values are those of cur's ETag; without one the hash decides. */
        int code = fetch_values(a, ro, cur->etag[0] ? cur->etag : NULL, true, !failing, &nf, &unchanged);
        if (code != CTL_EXIT_OK) {
            if (!failing)
                fprintf(stderr, "secretsctl: cannot poll the values; %s keeps running with the ones it has\n",
                        ro->cmd[0]);
            failing = true;
            continue;
        }
        if (failing)
            fprintf(stderr, "secretsctl: the values can be polled again\n");
        failing = false;
        bool same = unchanged || sodium_memcmp(nf.hash, cur->hash, sizeof(nf.hash)) == 0;
        if (same) {
            if (!unchanged) {
                snprintf(cur->etag, sizeof(cur->etag), "%s", nf.etag);
                ctl_text_free(&nf.json);
            }
            /* The snapshot's time says when the values were last confirmed: refreshed now and then,
             * not at every poll (each write is an fsync). */
            bool refresh = cur->from_snapshot || sx_clock_mono_ms() - saved >= SNAPSHOT_REFRESH_MS;
            cur->from_snapshot = false;
            if (refresh) {
                save_snapshot(a, ro, cur);
                saved = sx_clock_mono_ms();
            }
            continue;
        }
        save_snapshot(a, ro, &nf);
        saved = sx_clock_mono_ms();
        char **nenv = NULL;
        if (build_env(ro, &nf.json, &nenv) != CTL_EXIT_OK) {
            fprintf(stderr, "secretsctl: the new values cannot be used; %s keeps running with the old ones\n",
                    ro->cmd[0]);
            ctl_text_free(&nf.json);
            continue;
        }
        ctl_text_free(&cur->json);
        *cur = nf;
        fprintf(stderr, "secretsctl: the values changed; restarting %s\n", ro->cmd[0]);
        stop_child(&w, ro->grace_ms);
        if (w.stopping) {
            envp_free(nenv);
            break;
        }
        w.child = spawn(&w, ro->cmd, nenv);
        envp_free(nenv);
        if (w.child < 0)
            return CTL_EXIT_FAIL;
    }
    return exit_status_of(w.status);
}

/* ---- the command --------------------------------------------------------------------------------- */

int ctl_cmd_run(const ctl *c, int argc, char **argv)
{
    (void)c;
    enum { O_ONLY = 1, O_PREFIX, O_NO_OVERRIDE, O_SKIP, O_WATCH, O_GRACE, O_FALLBACK, O_MAXAGE };
    static const struct option opts[] = {
        {"only", required_argument, NULL, O_ONLY},
        {"prefix", required_argument, NULL, O_PREFIX},
        {"no-override", no_argument, NULL, O_NO_OVERRIDE},
        {"skip-invalid", no_argument, NULL, O_SKIP},
        {"watch", optional_argument, NULL, O_WATCH},
        {"restart-grace", required_argument, NULL, O_GRACE},
        {"fallback", required_argument, NULL, O_FALLBACK},
        {"fallback-max-age", required_argument, NULL, O_MAXAGE},
        {"help", no_argument, NULL, 'h'},
        CTL_API_LONG_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    run_opts ro = {.watch_ms = DEFAULT_WATCH_MS, .grace_ms = DEFAULT_GRACE_MS, .max_age_ms = DEFAULT_MAX_AGE_MS};
    ctl_api_opts o = {0};
    bool max_age_given = false;
    long long ms;
    int opt;
    optind = 0; /* 0: glibc starts over (main() parsed in "+" order) */
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case O_ONLY:
            ro.only = optarg;
            break;
        case O_PREFIX:
            ro.prefix = optarg;
            break;
        case O_NO_OVERRIDE:
            ro.no_override = true;
            break;
        case O_SKIP:
            ro.skip_invalid = true;
            break;
        case O_WATCH:
            ro.watch = true;
            if (optarg) {
                if (!parse_duration(optarg, &ms) || ms > 24 * 3600 * 1000LL) {
                    fprintf(stderr, "secretsctl: --watch takes an interval such as 500ms, 10s or 5m\n");
                    return CTL_EXIT_USAGE;
                }
                ro.watch_ms = (long)ms;
            }
            break;
        case O_GRACE:
            if (!parse_duration(optarg, &ms) || ms > 3600 * 1000LL) {
                fprintf(stderr, "secretsctl: --restart-grace takes a duration such as 500ms or 10s\n");
                return CTL_EXIT_USAGE;
            }
            ro.grace_ms = (long)ms;
            break;
        case O_FALLBACK:
            ro.fallback = optarg;
            break;
        case O_MAXAGE:
            if (!parse_duration(optarg, &ms)) {
                fprintf(stderr, "secretsctl: --fallback-max-age takes a duration such as 30m, 24h or 7d\n");
                return CTL_EXIT_USAGE;
            }
            ro.max_age_ms = ms;
            max_age_given = true;
            break;
        case 'h':
            run_usage(stdout);
            return CTL_EXIT_OK;
        default:
            if (!ctl_api_option(&o, opt, optarg) || o.json) {
                if (o.json)
                    fprintf(stderr, "secretsctl: run has no --json output\n");
                run_usage(stderr);
                return CTL_EXIT_USAGE;
            }
        }
    }
    if (max_age_given && !ro.fallback) {
        fprintf(stderr, "secretsctl: --fallback-max-age needs --fallback FILE\n");
        return CTL_EXIT_USAGE;
    }
    if (optind + 2 > argc) {
        fprintf(stderr, "secretsctl: run needs ORG/PROJECT/ENV and a command after --\n");
        return CTL_EXIT_USAGE;
    }
    ro.target = argv[optind];
    ro.cmd = argv + optind + 1;
    ctl_api a;
    int code = ctl_api_start(&a, &o, ro.target, false, ro.env_path, NULL);
    if (code != CTL_EXIT_OK)
        return code;
    fetched cur;
    bool unchanged;
    code = fetch_values(&a, &ro, NULL, false, true, &cur, &unchanged);
    if (code != CTL_EXIT_OK) {
        ctl_api_close(&a);
        return code;
    }
    save_snapshot(&a, &ro, &cur);
    char **envp = NULL;
    code = build_env(&ro, &cur.json, &envp);
    if (code != CTL_EXIT_OK) {
        ctl_text_free(&cur.json);
        ctl_api_close(&a);
        return code;
    }
    if (!ro.watch) {
        /* Nothing of this process is needed any more: wipe the token and the values' copies, then
         * become CMD. */
        ctl_text_free(&cur.json);
        ctl_api_close(&a);
        fflush(NULL);
        execvpe(ro.cmd[0], ro.cmd, envp);
        int err = errno;
        envp_free(envp);
        return exec_failed(ro.cmd[0], err);
    }
    code = run_watch(&a, &ro, &cur, envp);
    ctl_text_free(&cur.json);
    ctl_api_close(&a);
    return code;
}
