/*
 * ctl.c - secretsctl, the operator's command-line tool.
 *
 *   secretsctl [--config FILE | --socket PATH] [--json] COMMAND [ARGS]
 *
 * It talks HTTP to a running secretsd over the Unix admin socket (libcurl with
 * CURLOPT_UNIX_SOCKET_PATH). The socket's file mode (0600, owned by the server's user) is the only
 * gate on the admin API, so secretsctl has to run as that user; it talks only to a server that runs
 * as its own user or root (checked with SO_PEERCRED before anything is sent). Human-readable output goes to
 * stdout, diagnostics to stderr; --json prints the server's JSON answer unchanged for scripts.
 * Exit status: 0 success, 1 the server answered with an error or could not be reached, 2 usage.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "config/config.h"
#include "server/ctl.h"

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

/* Before a byte is sent, secretsctl checks who serves the admin socket: a socket file proves
 * nothing by its name, and a server of another user (one that took the path, or a folder others
 * can write) would collect a passphrase or hand back tokens of its own. The peer must run as this
 * user or as root (SO_PEERCRED, recorded by the kernel when the server called listen()). libcurl
 * opens the socket through open_socket() (so its descriptor is known) and calls check_peer() once
 * connected and before it writes the request. */
typedef struct peer_check {
    curl_socket_t fd;
    bool refused;
    int peer_uid;
} peer_check;

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
    peer_check *pc = clientp;
    (void)purpose;
    pc->fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    return pc->fd < 0 ? CURL_SOCKET_BAD : pc->fd;
}

static int check_peer(void *clientp, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                      int conn_local_port)
{
    peer_check *pc = clientp;
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    bool known = pc->fd >= 0 && getsockopt(pc->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred);
    if (known && (cred.uid == getuid() || cred.uid == geteuid() || cred.uid == 0))
        return CURL_PREREQFUNC_OK;
    pc->refused = true;
    pc->peer_uid = known ? (int)cred.uid : -1;
    return CURL_PREREQFUNC_ABORT;
}

int ctl_request(const ctl *c, const char *method, const char *path, const char *body, long *ret_status, buf *ret_body)
{
    peer_check pc = {.fd = CURL_SOCKET_BAD};
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
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &pc);
    curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, check_peer);
    curl_easy_setopt(h, CURLOPT_PREREQDATA, &pc);
    if (body) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        if (pc.refused)
            fprintf(stderr,
                    "secretsctl: the admin socket \"%s\" is served by uid %d, not by this user (uid %u) or root: "
                    "refusing to send anything to it\n",
                    c->socket_path, pc.peer_uid, (unsigned)getuid());
        else if (!c->quiet)
            fprintf(stderr, "secretsctl: cannot reach the server at \"%s\": %s\n", c->socket_path,
                    curl_easy_strerror(rc));
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

void ctl_print_error(long status, const buf *b)
{
    char ebuf[256];
    yajl_val v = yajl_tree_parse(b->data, ebuf, sizeof(ebuf));
    const char *epath[] = {"error", NULL};
    yajl_val e = v ? yajl_tree_get(v, epath, yajl_t_string) : NULL;
    fprintf(stderr, "secretsctl: server answered %ld: %s\n", status, e ? YAJL_GET_STRING(e) : "(no message)");
    yajl_tree_free(v);
}

/* ---- token ------------------------------------------------------------------------------------- */

static void token_usage(FILE *f)
{
    fprintf(f, "usage: secretsctl token create --org O [--project P] [--env E] --role R [--label L] [--ttl 30d]\n"
               "       secretsctl token list\n"
               "       secretsctl token revoke ID\n"
               "\n"
               "create: mints a token (roles: viewer, editor, owner, service) and prints it alone as the last\n"
               "        line of stdout; it is shown this once and never stored. Everything else goes to stderr.\n"
               "list:   every token's id, role, scope, label, expiry and revoked flag (never a secret).\n"
               "revoke: the token stops working at once on this server.\n");
}

static int print_token_row(yajl_val t)
{
    const char *k_id[] = {"id", NULL}, *k_role[] = {"role", NULL}, *k_org[] = {"org", NULL},
               *k_project[] = {"project", NULL}, *k_env[] = {"env", NULL}, *k_label[] = {"label", NULL},
               *k_exp[] = {"expiresAt", NULL}, *k_rev[] = {"revoked", NULL};
    yajl_val id = yajl_tree_get(t, k_id, yajl_t_string), role = yajl_tree_get(t, k_role, yajl_t_string),
             org = yajl_tree_get(t, k_org, yajl_t_string), project = yajl_tree_get(t, k_project, yajl_t_string),
             env = yajl_tree_get(t, k_env, yajl_t_string), label = yajl_tree_get(t, k_label, yajl_t_string),
             exp = yajl_tree_get(t, k_exp, yajl_t_string), rev = yajl_tree_get(t, k_rev, yajl_t_any);
    if (!id || !role || !org)
        return -1;
    char scope[256];
    snprintf(scope, sizeof(scope), "%s%s%s%s%s", YAJL_GET_STRING(org), project ? "/" : "",
             project ? YAJL_GET_STRING(project) : "", env ? "/" : "", env ? YAJL_GET_STRING(env) : "");
    printf("%-32s  %-7s  %-30s  %-24s  %-8s  %s\n", YAJL_GET_STRING(id), YAJL_GET_STRING(role), scope,
           exp ? YAJL_GET_STRING(exp) : "never", rev && YAJL_IS_TRUE(rev) ? "revoked" : "active",
           label ? YAJL_GET_STRING(label) : "");
    return 0;
}

static int token_create(const ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"org", required_argument, NULL, 'o'},   {"project", required_argument, NULL, 'p'},
        {"env", required_argument, NULL, 'e'},   {"role", required_argument, NULL, 'r'},
        {"label", required_argument, NULL, 'l'}, {"ttl", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    const char *org = NULL, *project = NULL, *env = NULL, *role = NULL, *label = NULL, *ttl = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "o:p:e:r:l:t:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'o':
            org = optarg;
            break;
        case 'p':
            project = optarg;
            break;
        case 'e':
            env = optarg;
            break;
        case 'r':
            role = optarg;
            break;
        case 'l':
            label = optarg;
            break;
        case 't':
            ttl = optarg;
            break;
        case 'h':
            token_usage(stdout);
            return 0;
        default:
            token_usage(stderr);
            return 2;
        }
    }
    if (!org || !role || optind != argc) {
        fprintf(stderr, "secretsctl: token create needs --org and --role\n");
        token_usage(stderr);
        return 2;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    yajl_gen_map_open(g);
    const char *keys[] = {"org", "project", "env", "role", "label", "ttl"};
    const char *vals[] = {org, project, env, role, label, ttl};
    for (int i = 0; i < 6; i++) {
        if (!vals[i])
            continue;
        yajl_gen_string(g, (const unsigned char *)keys[i], strlen(keys[i]));
        if (yajl_gen_string(g, (const unsigned char *)vals[i], strlen(vals[i])) != yajl_gen_status_ok) {
            fprintf(stderr, "secretsctl: --%s is not valid UTF-8\n", keys[i]);
            yajl_gen_free(g);
            return 2;
        }
    }
    yajl_gen_map_close(g);
    const unsigned char *body;
    size_t blen;
    yajl_gen_get_buf(g, &body, &blen);
    long status = 0;
    buf b;
    int rc = ctl_request(c, "POST", "/v1/tokens", (const char *)body, &status, &b);
    yajl_gen_free(g);
    if (rc != 0)
        return 1;
    if (status != 201) {
        ctl_print_error(status, &b);
        free(b.data);
        return 1;
    }
    char ebuf[256];
    yajl_val v = yajl_tree_parse(b.data, ebuf, sizeof(ebuf));
    const char *k_token[] = {"token", NULL}, *k_id[] = {"id", NULL};
    yajl_val tok = v ? yajl_tree_get(v, k_token, yajl_t_string) : NULL;
    yajl_val id = v ? yajl_tree_get(v, k_id, yajl_t_string) : NULL;
    int status_out = 1;
    if (tok && id) {
        if (c->json) {
            printf("%s\n", b.data);
        } else {
            fprintf(stderr, "token %s created (role %s, scope %s%s%s%s%s). It is shown this once:\n",
                    YAJL_GET_STRING(id), role, org, project ? "/" : "", project ? project : "", env ? "/" : "",
                    env ? env : "");
            fflush(stderr);
            printf("%s\n", YAJL_GET_STRING(tok));
        }
        status_out = 0;
    } else {
        fprintf(stderr, "secretsctl: the server's answer has no token\n");
    }
    yajl_tree_free(v);
    sodium_memzero(b.data, b.len);
    free(b.data);
    return status_out;
}

static int token_list(const ctl *c)
{
    long status = 0;
    buf b;
    if (ctl_request(c, "GET", "/v1/tokens", NULL, &status, &b) != 0)
        return 1;
    if (status != 200) {
        ctl_print_error(status, &b);
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
    int rc = 0;
    if (!v || !YAJL_IS_ARRAY(v)) {
        fprintf(stderr, "secretsctl: the server's answer is not a JSON array\n");
        rc = 1;
    } else {
        printf("%-32s  %-7s  %-30s  %-24s  %-8s  %s\n", "ID", "ROLE", "SCOPE", "EXPIRES", "STATE", "LABEL");
        for (size_t i = 0; i < v->u.array.len; i++)
            if (print_token_row(v->u.array.values[i]) != 0)
                rc = 1;
    }
    yajl_tree_free(v);
    free(b.data);
    return rc;
}

static int token_revoke(const ctl *c, const char *id)
{
    if (strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32) {
        fprintf(stderr, "secretsctl: \"%s\" is not a token id (32 lowercase hex digits; see `token list`)\n", id);
        return 2;
    }
    char path[64];
    snprintf(path, sizeof(path), "/v1/tokens/%s", id);
    long status = 0;
    buf b;
    if (ctl_request(c, "DELETE", path, NULL, &status, &b) != 0)
        return 1;
    int rc = 0;
    if (status != 200) {
        ctl_print_error(status, &b);
        rc = 1;
    } else if (c->json) {
        printf("%s\n", b.data);
    } else {
        printf("token %s revoked\n", id);
    }
    free(b.data);
    return rc;
}

static int cmd_token(const ctl *c, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        token_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "create") == 0)
        return token_create(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0) {
        if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            token_usage(stdout);
            return 0;
        }
        return argc == 2 ? token_list(c) : (token_usage(stderr), 2);
    }
    if (strcmp(argv[1], "revoke") == 0) {
        if (argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            token_usage(stdout);
            return 0;
        }
        if (argc != 3) {
            token_usage(stderr);
            return 2;
        }
        return token_revoke(c, argv[2]);
    }
    fprintf(stderr, "secretsctl: unknown token command \"%s\"\n", argv[1]);
    token_usage(stderr);
    return 2;
}

typedef struct command {
    const char *name;
    const char *summary;
    int (*run)(const ctl *c, int argc, char **argv);
} command;

static const command commands[] = {
    {"status", "show the server's state: seal, master-key versions, rotations in progress", ctl_cmd_status},
    {"master", "rotate the master key (online)", ctl_cmd_master},
    {"env", "show or rotate an environment's data key (online)", ctl_cmd_env},
    {"seal", "migrate the keyring to another seal, or recover it", ctl_cmd_seal},
    {"backup", "write an online backup of the store into a new folder", ctl_cmd_backup},
    {"token", "create, list or revoke API tokens", cmd_token},
    {"audit", "verify an audit log file against the server's MAC chain", ctl_cmd_audit},
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
            c.config_path = optarg;
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
    /* `COMMAND --help` needs no server; `seal recover` runs offline and needs only --config. */
    bool offline = false;
    for (int i = optind + 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            offline = true;
    if (argc - optind >= 2 && strcmp(argv[optind], "seal") == 0 && strcmp(argv[optind + 1], "recover") == 0)
        offline = true;
    if (!c.socket_path && !offline) {
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
    if (!c.socket_path && !offline)
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
