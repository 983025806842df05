/*
 * ctl.c - secretsctl, the operator's command-line tool.
 *
 *   secretsctl [--config FILE | --socket PATH] [--json] COMMAND [ARGS]
 *
 * It talks HTTP to a running secretsd over the Unix admin socket (libcurl with
 * CURLOPT_UNIX_SOCKET_PATH). The socket's file mode (0600, owned by the server's user) is the only
 * gate on the admin API, so secretsctl has to run as that user. Human-readable output goes to
 * stdout, diagnostics to stderr; --json prints the server's JSON answer unchanged for scripts.
 * Exit status: 0 success, 1 the server answered with an error or could not be reached, 2 usage.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "config/config.h"

typedef struct ctl {
    char *socket_path;
    bool json;
} ctl;

typedef struct buf {
    char *data;
    size_t len;
} buf;

#define MAX_RESPONSE (16u * 1024 * 1024)

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
    buf *b = userdata;
    size_t add = size * n;
    if (b->len + add > MAX_RESPONSE)
        return 0;
    char *nd = realloc(b->data, b->len + add + 1);
    if (!nd)
        return 0;
    memcpy(nd + b->len, p, add);
    b->data = nd;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

/* Perform method path (with an optional JSON body) over the admin socket. On success *ret_status
 * is the HTTP status and *ret_body the response (malloc'd, NUL-terminated). */
static int request(const ctl *c, const char *method, const char *path, const char *body, long *ret_status,
                   buf *ret_body)
{
    CURL *h = curl_easy_init();
    if (!h)
        return -ENOMEM;
    char url[1024];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    struct curl_slist *hdrs = NULL;
    ret_body->data = NULL;
    ret_body->len = 0;
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, ret_body);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    if (body) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        fprintf(stderr, "secretsctl: cannot reach the server at \"%s\": %s\n", c->socket_path, curl_easy_strerror(rc));
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(h);
        free(ret_body->data);
        ret_body->data = NULL;
        return -ECONNREFUSED;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, ret_status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (!ret_body->data) {
        ret_body->data = calloc(1, 1);
        if (!ret_body->data)
            return -ENOMEM;
    }
    return 0;
}

/* Print the server's error answer ({"error": ..., "code": ...}) to stderr. */
static void print_error(long status, const buf *b)
{
    char ebuf[256];
    yajl_val v = yajl_tree_parse(b->data, ebuf, sizeof(ebuf));
    const char *epath[] = {"error", NULL};
    yajl_val e = v ? yajl_tree_get(v, epath, yajl_t_string) : NULL;
    fprintf(stderr, "secretsctl: server answered %ld: %s\n", status, e ? YAJL_GET_STRING(e) : "(no message)");
    yajl_tree_free(v);
}

static int cmd_status(const ctl *c, int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: secretsctl status\n\nShows whether the server is up, its version, storage and threads.\n");
        return 0;
    }
    long status = 0;
    buf b;
    if (request(c, "GET", "/v1/status", NULL, &status, &b) != 0)
        return 1;
    if (status != 200) {
        print_error(status, &b);
        free(b.data);
        return 1;
    }
    if (c->json) {
        printf("%s\n", b.data);
        free(b.data);
        return 0;
    }
    char ebuf[256];
    yajl_val v = yajl_tree_parse(b.data, ebuf, sizeof(ebuf));
    if (!v || !YAJL_IS_OBJECT(v)) {
        fprintf(stderr, "secretsctl: the server's answer is not JSON\n");
        yajl_tree_free(v);
        free(b.data);
        return 1;
    }
    for (size_t i = 0; i < v->u.object.len; i++) {
        yajl_val x = v->u.object.values[i];
        if (YAJL_IS_STRING(x))
            printf("%-12s %s\n", v->u.object.keys[i], YAJL_GET_STRING(x));
        else if (YAJL_IS_NUMBER(x))
            printf("%-12s %s\n", v->u.object.keys[i], YAJL_GET_NUMBER(x));
        else if (YAJL_IS_TRUE(x) || YAJL_IS_FALSE(x))
            printf("%-12s %s\n", v->u.object.keys[i], YAJL_IS_TRUE(x) ? "true" : "false");
    }
    yajl_tree_free(v);
    free(b.data);
    return 0;
}

typedef struct command {
    const char *name;
    const char *summary;
    int (*run)(const ctl *c, int argc, char **argv);
} command;

static const command commands[] = {
    {"status", "show the server's state", cmd_status},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: secretsctl [--config FILE | --socket PATH] [--json] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nThe admin socket is [server] admin_socket of the configuration (--config), or --socket PATH.\n"
               "Run `secretsctl COMMAND --help` for a command's options.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"socket", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
    };
    ctl c = {0};
    const char *config_path = NULL;
    int opt;
    /* '+': stop at the command name, so the command's own options are left to it. */
    while ((opt = getopt_long(argc, argv, "+c:s:jhV", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 's':
            free(c.socket_path);
            c.socket_path = strdup(optarg);
            break;
        case 'j':
            c.json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("secretsctl %s\n", SX_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (!c.socket_path) {
        if (!config_path) {
            fprintf(stderr, "secretsctl: give --config FILE or --socket PATH\n");
            return 2;
        }
        char err[1024];
        sx_config *cfg = NULL;
        if (sx_config_load(config_path, &cfg, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
        if (!cfg->admin_socket || !*cfg->admin_socket) {
            fprintf(stderr, "secretsctl: %s has no [server] admin_socket\n", config_path);
            sx_config_free(cfg);
            return 2;
        }
        c.socket_path = strdup(cfg->admin_socket);
        sx_config_free(cfg);
    }
    if (!c.socket_path)
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int status = 2;
    bool found = false;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[optind], commands[i].name) == 0) {
            found = true;
            status = commands[i].run(&c, argc - optind, argv + optind);
            break;
        }
    }
    if (!found) {
        fprintf(stderr, "secretsctl: unknown command \"%s\"\n", argv[optind]);
        usage(stderr);
    }
    curl_global_cleanup();
    free(c.socket_path);
    return status;
}
