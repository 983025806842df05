/*
 * ctl_token.c - secretsctl token create / list / revoke: API tokens minted, listed and revoked over
 * the admin socket. A new token's secret is printed once, alone on stdout, and the buffer that held
 * the server's answer is wiped.
 */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "ctl/ctl.h"

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

int ctl_cmd_token(const ctl *c, int argc, char **argv)
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
