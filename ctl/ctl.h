/*
 * ctl.h - the commands of secretsctl, one function each: ctl.c (main) dispatches to them by name.
 * ctl_token.c holds `token`; ctl_ops.c status, master, env, seal, backup and audit. They reach the
 * server through client.h only, so nothing here depends on main(). The client commands (secret,
 * export, run) reach the HTTP API through http_client.h.
 *
 * Every command function gets argv with argv[0] = its own name, returns the process exit status
 * (0 success, 1 the server answered an error or could not be reached, 2 usage) and writes human
 * output to stdout (or the server's JSON with --json) and diagnostics to stderr.
 */
#ifndef SX_CTL_H
#define SX_CTL_H

#include "ctl/client.h"

int ctl_cmd_status(const ctl *c, int argc, char **argv);
int ctl_cmd_master(const ctl *c, int argc, char **argv);
int ctl_cmd_env(const ctl *c, int argc, char **argv);
int ctl_cmd_seal(const ctl *c, int argc, char **argv);
int ctl_cmd_backup(const ctl *c, int argc, char **argv);
int ctl_cmd_token(const ctl *c, int argc, char **argv);
int ctl_cmd_audit(const ctl *c, int argc, char **argv);

/* The client commands: they use the HTTP API (http_client.h), not the admin socket, and have exit
 * statuses of their own (http_client.h: 3 not found, 4 unauthorized or forbidden). ctl_secret.c,
 * ctl_export.c, ctl_run.c. */
int ctl_cmd_secret(const ctl *c, int argc, char **argv);
int ctl_cmd_export(const ctl *c, int argc, char **argv);
int ctl_cmd_run(const ctl *c, int argc, char **argv);

#endif /* SX_CTL_H */
