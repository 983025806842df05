/*
 * ctl_secret.c - secretsctl secret list | get | set | delete | versions | rollback | restore: the
 * secrets of an env over the HTTP API (http_client.h), for people (a table, the value alone) or,
 * with --json, the server's JSON unchanged for scripts.
 *
 * A value enters only through stdin or --from-file, never argv (argv is readable by every user in
 * /proc), and leaves only on stdout; the buffers that held it are wiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "ctl/ctl.h"
#include "ctl/envmap.h"
#include "ctl/http_client.h"

/* The largest value read from stdin or a file; the server applies its own max_value_bytes. */
#define VALUE_INPUT_MAX (16u * 1024 * 1024)

static void secret_usage(FILE *f)
{
    fprintf(f,
            "usage: secretsctl secret list     ORG/PROJECT/ENV\n"
            "       secretsctl secret get      ORG/PROJECT/ENV/NAME [--version N] [-n]\n"
            "       secretsctl secret set      ORG/PROJECT/ENV/NAME [--from-file PATH] [--description TEXT]\n"
            "       secretsctl secret delete   ORG/PROJECT/ENV/NAME\n"
            "       secretsctl secret versions ORG/PROJECT/ENV/NAME\n"
            "       secretsctl secret rollback ORG/PROJECT/ENV/NAME --version N\n"
            "       secretsctl secret restore  ORG/PROJECT/ENV/NAME\n"
            "\n"
            "list:     every secret's name, whether it has a value, when it changed, its description.\n"
            "get:      prints the value (of version N with --version) and a newline (none with -n).\n"
            "set:      reads the value from stdin (or PATH), byte for byte, and stores it as the new\n"
            "          version; a secret that does not exist yet is created (with --description).\n"
            "delete:   deletes the secret and destroys its values.\n"
            "versions: the versions of the value, newest first (never a value).\n"
            "rollback: version N's value becomes the new current version.\n"
            "restore:  brings back a deleted secret.\n"
            "\n%s",
            ctl_api_usage);
}

/* Print the answer's body as it came, with a final newline. */
static void print_raw(const ctl_api_resp *r)
{
    fwrite(r->body, 1, r->len, stdout);
    if (r->len == 0 || r->body[r->len - 1] != '\n')
        fputc('\n', stdout);
}

static const char *jstr(yajl_val obj, const char *key)
{
    const char *path[] = {key, NULL};
    yajl_val v = yajl_tree_get(obj, path, yajl_t_string);
    return v ? YAJL_GET_STRING(v) : NULL;
}

static yajl_val jget(yajl_val obj, const char *key)
{
    const char *path[] = {key, NULL};
    return yajl_tree_get(obj, path, yajl_t_any);
}

/* The answer parsed for the human output, or NULL after saying the answer was not understood. */
static yajl_val parse_answer(const ctl_api_resp *r)
{
    char ebuf[128];
    yajl_val v = yajl_tree_parse(r->body, ebuf, sizeof(ebuf));
    if (!v)
        fprintf(stderr, "secretsctl: the server's answer is not JSON\n");
    return v;
}

/* The end of a write: the exit status of the answer r (freed here), after printing "NAME: done" or,
 * with --json, the answer itself. */
static int report_done(const ctl_api *a, const ctl_api_opts *o, ctl_api_resp *r, const char *name, const char *done)
{
    char what[CTL_NAME_MAX + 16];
    snprintf(what, sizeof(what), "secret \"%s\"", name);
    int code = ctl_api_report(a, r, what);
    if (code == CTL_EXIT_OK) {
        if (o->json)
            print_raw(r);
        else
            printf("%s: %s\n", name, done);
    }
    ctl_api_resp_free(r);
    return code;
}

/* ---- list, versions: arrays printed a row each --------------------------------------------------- */

/* GET path and print the array it answers, a row per element (or the answer itself with --json). */
static int get_array(ctl_api *a, const ctl_api_opts *o, const char *path, const char *what, void (*row)(yajl_val))
{
    ctl_api_resp r;
    ctl_api_call(a, "GET", path, NULL, NULL, &r);
    int code = ctl_api_report(a, &r, what);
    if (code == CTL_EXIT_OK && o->json) {
        print_raw(&r);
    } else if (code == CTL_EXIT_OK) {
        yajl_val v = parse_answer(&r);
        if (!v || !YAJL_IS_ARRAY(v))
            code = CTL_EXIT_FAIL;
        for (size_t i = 0; code == CTL_EXIT_OK && i < v->u.array.len; i++)
            row(v->u.array.values[i]);
        yajl_tree_free(v);
    }
    ctl_api_resp_free(&r);
    return code;
}

static void secret_row(yajl_val s)
{
    yajl_val hv = jget(s, "hasValue");
    const char *name = jstr(s, "name"), *upd = jstr(s, "updatedAt"), *desc = jstr(s, "description");
    printf("%-40s  %-8s  %-24s  %s\n", name ? name : "?", hv && YAJL_IS_TRUE(hv) ? "value" : "no value", upd ? upd : "",
           desc ? desc : "");
}

static void version_row(yajl_val e)
{
    yajl_val n = jget(e, "version");
    const char *state = jstr(e, "state"), *at = jstr(e, "createdAt");
    printf("%6lld  %-9s  %s\n", n && YAJL_IS_INTEGER(n) ? YAJL_GET_INTEGER(n) : -1LL, state ? state : "?",
           at ? at : "");
}

/* ---- get ------------------------------------------------------------------------------------------ */

static int secret_get(ctl_api *a, const ctl_api_opts *o, const char *prefix, const char *name, long version,
                      bool newline)
{
    char path[CTL_SCOPE_MAX + CTL_NAME_MAX + 64];
    if (version > 0)
        snprintf(path, sizeof(path), "%s/secrets/%s/value?version=%ld", prefix, name, version);
    else
        snprintf(path, sizeof(path), "%s/secrets/%s/value", prefix, name);
    ctl_api_resp r;
    ctl_api_call(a, "GET", path, NULL, NULL, &r);
    char what[CTL_NAME_MAX + 16];
    snprintf(what, sizeof(what), "secret \"%s\"", name);
    int code = ctl_api_report(a, &r, what);
    if (code == CTL_EXIT_OK) {
        if (o->json) {
            print_raw(&r);
        } else {
            /* The event parser keeps the value's exact bytes (yajl_tree would stop at a NUL). */
            ctl_envmap m;
            const ctl_var *val = NULL;
            if (ctl_envmap_parse(r.body, r.len, true, &m) == 0)
                for (size_t i = 0; i < m.n; i++)
                    if (strcmp(m.vars[i].name, "value") == 0)
                        val = &m.vars[i];
            if (val) {
                fwrite(val->value, 1, val->value_len, stdout);
                if (newline)
                    fputc('\n', stdout);
            } else {
                fprintf(stderr, "secretsctl: the server's answer holds no value\n");
                code = CTL_EXIT_FAIL;
            }
            ctl_envmap_free(&m);
        }
    }
    ctl_api_resp_free(&r);
    fflush(stdout);
    return code;
}

/* ---- set ------------------------------------------------------------------------------------------ */

/* Read all of fd (at most VALUE_INPUT_MAX bytes) into t. */
static int read_value(int fd, ctl_text *t)
{
    char chunk[8192];
    for (;;) {
        ssize_t k = read(fd, chunk, sizeof(chunk));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            break;
        if (t->len + (size_t)k > VALUE_INPUT_MAX) {
            sodium_memzero(chunk, sizeof(chunk));
            return -EFBIG;
        }
        ctl_text_add(t, chunk, (size_t)k);
    }
    sodium_memzero(chunk, sizeof(chunk));
    if (t->failed)
        return -ENOMEM;
    if (!t->data)
        ctl_text_add(t, "", 0);
    return 0;
}

static int create_secret(ctl_api *a, const char *prefix, const char *name, const char *description)
{
    ctl_text body = {0};
    ctl_text_add(&body, "{\"kind\":\"secret\",\"name\":", 24);
    ctl_text_add_json_string(&body, name, strlen(name));
    if (description) {
        ctl_text_add(&body, ",\"description\":", 15);
        ctl_text_add_json_string(&body, description, strlen(description));
    }
    ctl_text_add(&body, "}", 1);
    char path[CTL_SCOPE_MAX + 16];
    snprintf(path, sizeof(path), "%s/secrets", prefix);
    ctl_api_resp r;
    ctl_api_call(a, "POST", path, body.failed ? NULL : body.data, NULL, &r);
    char what[CTL_NAME_MAX + 32];
    snprintf(what, sizeof(what), "creating secret \"%s\"", name);
    /* 409: created meanwhile by someone else; the value goes to it. */
    int code = r.err == CTL_WIRE_OK && r.status == 409 ? CTL_EXIT_OK : ctl_api_report(a, &r, what);
    ctl_api_resp_free(&r);
    ctl_text_free(&body);
    return code;
}

static int secret_set(ctl_api *a, const ctl_api_opts *o, const char *prefix, const char *name, const char *from_file,
                      const char *description)
{
    int fd = STDIN_FILENO;
    if (from_file) {
        fd = open(from_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, "secretsctl: cannot open \"%s\": %s\n", from_file, strerror(errno));
            return CTL_EXIT_USAGE;
        }
    } else if (isatty(STDIN_FILENO)) {
        fprintf(stderr, "secretsctl: type the value, then Ctrl-D (twice when it does not end with a newline)\n");
    }
    ctl_text value = {0};
    int rc = read_value(fd, &value);
    if (from_file)
        close(fd);
    if (rc != 0) {
        fprintf(stderr, "secretsctl: cannot read the value: %s\n", rc == -EFBIG ? "larger than 16 MiB" : strerror(-rc));
        ctl_text_free(&value);
        return rc == -EFBIG ? CTL_EXIT_USAGE : CTL_EXIT_FAIL;
    }
    ctl_text body = {0};
    ctl_text_add(&body, "{\"value\":", 9);
    ctl_text_add_json_string(&body, value.data, value.len);
    ctl_text_add(&body, "}", 1);
    ctl_text_free(&value);
    if (body.failed) {
        ctl_text_free(&body);
        fprintf(stderr, "secretsctl: out of memory\n");
        return CTL_EXIT_FAIL;
    }
    char path[CTL_SCOPE_MAX + CTL_NAME_MAX + 32];
    snprintf(path, sizeof(path), "%s/secrets/%s/value", prefix, name);
    ctl_api_resp r;
    ctl_api_call(a, "PUT", path, body.data, NULL, &r);
    bool created = false;
    if (r.err == CTL_WIRE_OK && r.status == 404) {
        ctl_api_resp_free(&r);
        int code = create_secret(a, prefix, name, description);
        if (code != CTL_EXIT_OK) {
            ctl_text_free(&body);
            return code;
        }
        created = true;
        ctl_api_call(a, "PUT", path, body.data, NULL, &r);
    }
    ctl_text_free(&body);
    return report_done(a, o, &r, name, created ? "value set (secret created)" : "value set");
}

/* ---- delete, versions, rollback, restore ------------------------------------------------------------ */

static int secret_simple(ctl_api *a, const ctl_api_opts *o, const char *method, const char *path, const char *body,
                         const char *name, const char *done)
{
    ctl_api_resp r;
    ctl_api_call(a, method, path, body, NULL, &r);
    return report_done(a, o, &r, name, done);
}

/* ---- the command --------------------------------------------------------------------------------- */

static bool parse_version(const char *s, long *ret)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1)
        return false;
    *ret = v;
    return true;
}

int ctl_cmd_secret(const ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"version", required_argument, NULL, 'v'},
        {"from-file", required_argument, NULL, 'f'},
        {"description", required_argument, NULL, 'd'},
        {"no-newline", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        CTL_API_LONG_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        secret_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
    }
    const char *sub = argv[1];
    ctl_api_opts o = {.json = c->json};
    long version = 0;
    const char *from_file = NULL, *description = NULL;
    bool newline = true;
    int opt;
    optind = 0; /* 0: glibc starts over (main() parsed in "+" order) */
    while ((opt = getopt_long(argc - 1, argv + 1, "v:f:d:nh", opts, NULL)) != -1) {
        switch (opt) {
        case 'v':
            if (!parse_version(optarg, &version)) {
                fprintf(stderr, "secretsctl: --version takes a version number (1, 2, ...)\n");
                return CTL_EXIT_USAGE;
            }
            break;
        case 'f':
            from_file = optarg;
            break;
        case 'd':
            description = optarg;
            break;
        case 'n':
            newline = false;
            break;
        case 'h':
            secret_usage(stdout);
            return CTL_EXIT_OK;
        default:
            if (!ctl_api_option(&o, opt, optarg)) {
                secret_usage(stderr);
                return CTL_EXIT_USAGE;
            }
        }
    }
    if (optind + 1 != argc - 1) {
        fprintf(stderr, "secretsctl: secret %s takes one ORG/PROJECT/ENV%s\n", sub,
                strcmp(sub, "list") == 0 ? "" : "/NAME");
        return CTL_EXIT_USAGE;
    }
    const char *target = argv[1 + optind];
    bool is_list = strcmp(sub, "list") == 0;
    static const char *const known[] = {"list", "get", "set", "delete", "versions", "rollback", "restore"};
    bool ok = false;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        ok = ok || strcmp(sub, known[i]) == 0;
    if (!ok) {
        fprintf(stderr, "secretsctl: unknown secret command \"%s\"\n", sub);
        secret_usage(stderr);
        return CTL_EXIT_USAGE;
    }
    if ((version && strcmp(sub, "get") != 0 && strcmp(sub, "rollback") != 0) ||
        ((from_file || description) && strcmp(sub, "set") != 0) || (!newline && strcmp(sub, "get") != 0)) {
        fprintf(stderr, "secretsctl: an option was given that secret %s does not take\n", sub);
        return CTL_EXIT_USAGE;
    }
    if (strcmp(sub, "rollback") == 0 && !version) {
        fprintf(stderr, "secretsctl: secret rollback needs --version N\n");
        return CTL_EXIT_USAGE;
    }
    char prefix[CTL_SCOPE_MAX], name[CTL_NAME_MAX] = "";
    ctl_api a;
    int code = ctl_api_start(&a, &o, target, !is_list, prefix, name);
    if (code != CTL_EXIT_OK)
        return code;
    char path[CTL_SCOPE_MAX + CTL_NAME_MAX + 64], what[CTL_NAME_MAX + 16];
    snprintf(what, sizeof(what), "secret \"%s\"", name);
    if (is_list) {
        snprintf(path, sizeof(path), "%s/secrets", prefix);
        code = get_array(&a, &o, path, target, secret_row);
    } else if (strcmp(sub, "get") == 0) {
        code = secret_get(&a, &o, prefix, name, version, newline);
    } else if (strcmp(sub, "set") == 0) {
        code = secret_set(&a, &o, prefix, name, from_file, description);
    } else if (strcmp(sub, "delete") == 0) {
        snprintf(path, sizeof(path), "%s/secrets/%s", prefix, name);
        code = secret_simple(&a, &o, "DELETE", path, NULL, name, "deleted");
    } else if (strcmp(sub, "versions") == 0) {
        snprintf(path, sizeof(path), "%s/secrets/%s/versions", prefix, name);
        code = get_array(&a, &o, path, what, version_row);
    } else if (strcmp(sub, "rollback") == 0) {
        char body[64], done[64];
        snprintf(body, sizeof(body), "{\"version\":%ld}", version);
        snprintf(done, sizeof(done), "version %ld is the current value again", version);
        snprintf(path, sizeof(path), "%s/secrets/%s/rollback", prefix, name);
        code = secret_simple(&a, &o, "POST", path, body, name, done);
    } else {
        snprintf(path, sizeof(path), "%s/deleted-secrets/%s/restore", prefix, name);
        code = secret_simple(&a, &o, "POST", path, NULL, name, "restored");
    }
    ctl_api_close(&a);
    return code;
}
