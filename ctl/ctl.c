/*
 * ctl.c - secretsctl, the operator's command-line tool.
 *
 *   secretsctl [--config FILE | --socket PATH] [--json] COMMAND [ARGS]
 *
 * It talks HTTP to a running secretsd over the Unix admin socket (client.c, over http_wire.h). The socket's file mode
 * (0600, owned by the server's user) is the only gate on the admin API, so secretsctl has to run as that user; it talks
 * only to a server that runs as its own user or root (checked with SO_PEERCRED before anything is sent). Human-readable
 * output goes to stdout, diagnostics to stderr; --json prints the server's JSON answer unchanged for scripts. Exit
 * status: 0 success, 1 the server answered with an error or could not be reached, 2 usage.
 *
 * The client commands (secret, export, run) are HTTP clients of the API instead, at SECRETSD_ADDR
 * with an API token (http_client.h); they need no admin socket and have two more exit statuses (3
 * not found, 4 unauthorized or forbidden).
 *
 * This file is main(): the global options, the socket named by --socket or by [server]
 * admin_socket of --config, and the table of commands (ctl.h) it dispatches to.
 */
#include <getopt.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "ctl/ctl.h"

typedef struct command {
    const char *name;
    const char *summary;
    int (*run)(const ctl *c, int argc, char **argv);
    bool client; /* uses the HTTP API (SECRETSD_ADDR), not the admin socket */
} command;

static const command commands[] = {
    {"status", "show the server's state: seal, master-key versions, rotations in progress", ctl_cmd_status},
    {"master", "rotate the master key (online)", ctl_cmd_master},
    {"env", "show or rotate an environment's data key (online)", ctl_cmd_env},
    {"seal", "the keyring's slots: list, add, remove, rekey, migrate, recover", ctl_cmd_seal},
    {"backup", "write an online backup of the store into a new folder", ctl_cmd_backup},
    {"token", "create, list or revoke API tokens", ctl_cmd_token},
    {"audit", "verify an audit log file against the server's MAC chain", ctl_cmd_audit},
    {"secret", "list, get, set, delete, roll back or restore secrets (HTTP API)", ctl_cmd_secret, true},
    {"export", "write an env's values as dotenv, shell or JSON (HTTP API)", ctl_cmd_export, true},
    {"run", "run a command with an env's values in its environment (HTTP API)", ctl_cmd_run, true},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: secretsctl [--config FILE | --socket PATH] [--json] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nOperator commands use the admin socket: [server] admin_socket of the configuration (--config),\n"
               "or --socket PATH. Client commands (secret, export, run) use the HTTP API at $SECRETSD_ADDR with\n"
               "the token of $SECRETSD_TOKEN or --token-file PATH.\n"
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
    /* `COMMAND --help` needs no server; `seal recover` runs offline and needs only --config; the
     * client commands need no admin socket. */
    bool offline = false;
    const command *cmd = NULL;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[optind], commands[i].name) == 0)
            cmd = &commands[i];
    if (cmd && cmd->client)
        offline = true;
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
    if (sodium_init() < 0) {
        fprintf(stderr, "secretsctl: libsodium cannot be initialised\n");
        return 1;
    }
    int status = 2;
    if (cmd) {
        status = cmd->run(&c, argc - optind, argv + optind);
    } else {
        fprintf(stderr, "secretsctl: unknown command \"%s\"\n", argv[optind]);
        usage(stderr);
    }
    free(c.socket_path);
    return status;
}
