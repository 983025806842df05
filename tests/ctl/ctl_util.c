/*
 * ctl_util.c - the shared state and helpers of the secretsctl client tests (see ctl_util.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl_util.h"

sx_srv g_srv;
bool g_running;
char *g_token;
char *g_dir;

int ctl_suite_start(void)
{
    if (sx_srv_start(&g_srv, &(sx_srv_opts){.backend = "memory"}) != 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    g_running = true;
    g_token = sx_srv_mint_token(&g_srv, "acme", NULL, NULL, "owner", NULL);
    if (!g_token) {
        sx_srv_stop(&g_srv, SIGTERM, 60);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    char addr[64];
    snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", g_srv.port);
    setenv("SECRETSD_ADDR", addr, 1);
    setenv("SECRETSD_TOKEN", g_token, 1);
    unsetenv("SECRETSD_CACERT");
    g_dir = sx_test_tmpdir("ctl");
    return 0;
}

static int scan_for_token(const char *dir, int depth)
{
    int found = 0;
    DIR *d = opendir(dir);
    if (!d || depth > 6) {
        if (d)
            closedir(d);
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = sx_test_path(dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            found += scan_for_token(p, depth + 1);
        } else if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) && ctl_file_has(p, g_token)) {
            fprintf(stderr, "the token is in %s\n", p);
            found++;
        }
        free(p);
    }
    closedir(d);
    return found;
}

int ctl_token_files(const char *dir)
{
    return scan_for_token(dir, 0);
}

void ctl_suite_finish(void)
{
    /* The token reaches secretsctl through the environment only: no file of the run holds it (a
     * snapshot holds a key derived from it, and only ciphertext). */
    CHECK_INT(scan_for_token(g_dir, 0), 0);
    if (g_srv.dir)
        CHECK_INT(scan_for_token(g_srv.dir, 0), 0);
    if (g_running)
        sx_srv_stop(&g_srv, SIGTERM, 60);
    g_running = false;
    sx_test_rmtree(g_dir);
    free(g_dir);
    free(g_token);
}

static int ctl_shv(char **ret_out, char **ret_err, const char *fmt, va_list ap)
{
    char args[8192];
    vsnprintf(args, sizeof(args), fmt, ap);
    char *errp = sx_test_path(g_dir, "ctl.stderr");
    int st = sx_test_sh(ret_out, "cd '%s' && '%s' 2>'%s' %s", g_dir, SX_SECRETSCTL_PATH, errp, args);
    char *err = sx_test_read_file(errp, NULL);
    if (err && *err)
        fprintf(stderr, "   secretsctl %.60s... stderr: %s", args, err);
    if (ret_err)
        *ret_err = err ? err : strdup("");
    else
        free(err);
    unlink(errp);
    free(errp);
    return st;
}

int ctl_sh(char **ret_out, char **ret_err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int st = ctl_shv(ret_out, ret_err, fmt, ap);
    va_end(ap);
    return st;
}

void ctl_expect(int status, const char *want, const char *fmt, ...)
{
    char *out = NULL;
    va_list ap;
    va_start(ap, fmt);
    int st = ctl_shv(&out, NULL, fmt, ap);
    va_end(ap);
    if (st != status || strcmp(out, want) != 0) {
        fprintf(stderr, "CHECK failed: secretsctl %s: exit %d, want %d; stdout \"%s\", want \"%s\"\n", fmt, st, status,
                out, want);
        sx_test_failures++;
    }
    free(out);
}

pid_t ctl_spawn(char *const argv[], const char *out_path, const char *err_path)
{
    int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err = open(err_path ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0 || err < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out, 1);
        dup2(err, 2);
        if (chdir(g_dir) != 0)
            _exit(120);
        execv(SX_SECRETSCTL_PATH, argv);
        _exit(121);
    }
    close(out);
    close(err);
    return pid;
}

int ctl_wait(pid_t pid, int timeout_ms)
{
    for (int waited = 0;; waited += 20) {
        int st;
        pid_t p = waitpid(pid, &st, WNOHANG);
        if (p == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (p < 0 || waited >= timeout_ms)
            break;
        sx_test_sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

bool ctl_api_set(const char *env_path, const char *name, const char *value)
{
    char *path = malloc(strlen(env_path) + strlen(name) + 32);
    sprintf(path, "%s/secrets/%s/value", env_path, name);
    char *auth = sx_auth_header(g_token);
    const char *hdrs[] = {auth, "Content-Type: application/json", NULL};
    sx_resp r;
    char *body = malloc(strlen(value) * 6 + 16);
    size_t n = (size_t)sprintf(body, "{\"value\":\"");
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '"' || *p == '\\')
            n += (size_t)sprintf(body + n, "\\%c", *p);
        else if (*p < 0x20)
            n += (size_t)sprintf(body + n, "\\u%04x", *p);
        else
            body[n++] = (char)*p;
    }
    n += (size_t)sprintf(body + n, "\"}");
    bool ok = sx_srv_request(&g_srv, SX_H1, "PUT", path, hdrs, body, n, &r) == 0 && r.status == 200;
    long st = r.status;
    sx_resp_free(&r);
    if (!ok && st == 404) {
        char *cpath = malloc(strlen(env_path) + 16), cbody[512];
        sprintf(cpath, "%s/secrets", env_path);
        int cn = snprintf(cbody, sizeof(cbody), "{\"kind\":\"secret\",\"name\":\"%s\"}", name);
        if (sx_srv_request(&g_srv, SX_H1, "POST", cpath, hdrs, cbody, (size_t)cn, &r) == 0 && r.status == 201) {
            sx_resp_free(&r);
            ok = sx_srv_request(&g_srv, SX_H1, "PUT", path, hdrs, body, n, &r) == 0 && r.status == 200;
        }
        sx_resp_free(&r);
        free(cpath);
    }
    free(body);
    free(auth);
    free(path);
    return ok;
}

void ctl_setenv(const char *name, const char *value)
{
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

bool ctl_file_has(const char *path, const char *needle)
{
    size_t len = 0;
    char *data = sx_test_read_file(path, &len);
    bool has = data && sx_test_memmem(data, len, needle, strlen(needle));
    free(data);
    return has;
}
