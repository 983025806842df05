/*
 * ctl_export.c - secretsctl export ORG/PROJECT/ENV: every value of an env in one request
 * (GET .../values), written as dotenv, shell or JSON (envmap.h) to stdout or to a 0600 file.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/envmap.h"
#include "ctl/http_client.h"

static void export_usage(FILE *f)
{
    fprintf(f,
            "usage: secretsctl export ORG/PROJECT/ENV [--format dotenv|shell|json] [--only A,B] [--prefix P_]\n"
            "                         [--output FILE] [--skip-invalid]\n"
            "\n"
            "Writes every value of the env (dotenv by default) to stdout, or to FILE (created with mode 0600,\n"
            "replaced atomically).\n"
            "  dotenv  NAME='value' lines: `set -a; . FILE; set +a` in sh or bash gives back every value\n"
            "  shell   export NAME='value' lines, for eval or `.`\n"
            "  json    one object {\"NAME\": \"value\", ...}\n"
            "--only keeps the listed secrets (each must have a value); --prefix is put before every name.\n"
            "dotenv and shell refuse names that are not environment identifiers (--skip-invalid leaves them out).\n"
            "\n%s",
            ctl_api_usage);
}

int ctl_cmd_export(const ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},
        {"only", required_argument, NULL, 'o'},
        {"prefix", required_argument, NULL, 'p'},
        {"output", required_argument, NULL, 'O'},
        {"skip-invalid", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        CTL_API_LONG_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    ctl_api_opts o = {.json = c->json};
    ctl_format format = CTL_FORMAT_DOTENV;
    bool format_given = false, skip_invalid = false;
    const char *only = NULL, *prefix = NULL, *output = NULL;
    int opt;
    optind = 0; /* 0: glibc starts over (main() parsed in "+" order) */
    while ((opt = getopt_long(argc, argv, "f:o:p:O:sh", opts, NULL)) != -1) {
        switch (opt) {
        case 'f':
            if (ctl_format_parse(optarg, &format) != 0) {
                fprintf(stderr, "secretsctl: --format is dotenv, shell or json\n");
                return CTL_EXIT_USAGE;
            }
            format_given = true;
            break;
        case 'o':
            only = optarg;
            break;
        case 'p':
            prefix = optarg;
            break;
        case 'O':
            output = optarg;
            break;
        case 's':
            skip_invalid = true;
            break;
        case 'h':
            export_usage(stdout);
            return CTL_EXIT_OK;
        default:
            if (!ctl_api_option(&o, opt, optarg)) {
                export_usage(stderr);
                return CTL_EXIT_USAGE;
            }
        }
    }
    /* --json alone means the JSON format. */
    if (o.json && !format_given)
        format = CTL_FORMAT_JSON;
    if (optind + 1 != argc) {
        fprintf(stderr, "secretsctl: export takes one ORG/PROJECT/ENV\n");
        return CTL_EXIT_USAGE;
    }
    char env_path[CTL_SCOPE_MAX], path[CTL_SCOPE_MAX + 16];
    ctl_api a;
    int code = ctl_api_start(&a, &o, argv[optind], false, env_path, NULL);
    if (code != CTL_EXIT_OK)
        return code;
    snprintf(path, sizeof(path), "%s/values", env_path);
    ctl_api_resp r;
    ctl_api_call(&a, "GET", path, NULL, NULL, &r);
    code = ctl_api_report(&a, &r, argv[optind]);
    ctl_envmap m = {0};
    ctl_text out = {0};
    if (code == CTL_EXIT_OK && ctl_envmap_parse(r.body, r.len, false, &m) != 0) {
        fprintf(stderr, "secretsctl: the server's answer is not a map of values\n");
        code = CTL_EXIT_FAIL;
    }
    ctl_api_resp_free(&r);
    ctl_api_close(&a);
    if (code == CTL_EXIT_OK && ctl_envmap_select(&m, only, prefix) != 0)
        code = CTL_EXIT_NOTFOUND;
    if (code == CTL_EXIT_OK && format != CTL_FORMAT_JSON &&
        ctl_envmap_check_env(&m, skip_invalid, format == CTL_FORMAT_SHELL ? "the shell format" : "the dotenv format") !=
            0)
        code = CTL_EXIT_FAIL;
    if (code == CTL_EXIT_OK) {
        ctl_envmap_format(&m, format, &out);
        if (out.failed) {
            fprintf(stderr, "secretsctl: out of memory\n");
            code = CTL_EXIT_FAIL;
        } else if (output) {
            int rc = ctl_write_private_file(output, out.data ? out.data : "", out.len);
            if (rc != 0) {
                fprintf(stderr, "secretsctl: cannot write \"%s\": %s\n", output, strerror(-rc));
                code = CTL_EXIT_FAIL;
            }
        } else if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len) {
            code = CTL_EXIT_FAIL;
        }
    }
    ctl_text_free(&out);
    ctl_envmap_free(&m);
    if (fflush(stdout) != 0)
        code = CTL_EXIT_FAIL;
    return code;
}
