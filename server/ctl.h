/*
 * ctl.h - what the files of secretsctl share (ctl.c: main, the admin-socket client, tokens;
 * ctl_ops.c: status, rotation, seal and backup commands). Not part of the server library.
 *
 * Every command function gets argv with argv[0] = its own name, returns the process exit status
 * (0 success, 1 the server answered an error or could not be reached, 2 usage) and writes human
 * output to stdout (or the server's JSON with --json) and diagnostics to stderr.
 */
#ifndef SX_CTL_H
#define SX_CTL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ctl {
    char *socket_path;       /* malloc'd */
    const char *config_path; /* --config as given (argv), or NULL */
    bool json;
    bool quiet; /* ctl_request() does not report an unreachable server (polling) */
} ctl;

typedef struct buf {
    char *data; /* malloc'd, NUL-terminated */
    size_t len;
} buf;

/* Perform method path (with an optional JSON body) over the admin socket. On success (an HTTP
 * answer came back, any status) returns 0, *ret_status is the status and *ret_body the answer
 * (free ret_body->data with free()). Prints why to stderr and returns a negative errno otherwise. */
int ctl_request(const ctl *c, const char *method, const char *path, const char *body, long *ret_status, buf *ret_body);

/* Print the server's error answer ({"error": ..., "code": ...}) to stderr. */
void ctl_print_error(long status, const buf *b);

int ctl_cmd_status(const ctl *c, int argc, char **argv);
int ctl_cmd_master(const ctl *c, int argc, char **argv);
int ctl_cmd_env(const ctl *c, int argc, char **argv);
int ctl_cmd_seal(const ctl *c, int argc, char **argv);
int ctl_cmd_backup(const ctl *c, int argc, char **argv);
int ctl_cmd_audit(const ctl *c, int argc, char **argv);

#endif /* SX_CTL_H */
