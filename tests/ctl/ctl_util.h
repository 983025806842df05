/*
 * ctl_util.h - what the tests of secretsctl's client commands share (ctl_util.c): one real
 * secretsd per test program run (the harness), an owner token of the org "acme" handed to
 * secretsctl only through SECRETSD_TOKEN in this process's environment (never argv, never a file),
 * and ways to run secretsctl: through sh with stdout and stderr captured, or spawned directly so a
 * test knows its pid.
 */
#ifndef SX_TEST_CTL_UTIL_H
#define SX_TEST_CTL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "harness.h"
#include "testutil.h"

extern sx_srv g_srv;
extern bool g_running;
extern char *g_token; /* the owner token of "acme" */
extern char *g_dir;   /* a scratch folder of the run (removed at the end) */

/* Start g_srv, mint g_token, point SECRETSD_ADDR (h2c) and SECRETSD_TOKEN at them, make g_dir.
 * 0, or 1 after printing why. */
int ctl_suite_start(void);
/* Check that no file under g_dir and the server's folder holds g_token, stop the server if it
 * runs, remove g_dir. */
void ctl_suite_finish(void);
/* How many regular files under dir hold g_token (each is named on stderr). */
int ctl_token_files(const char *dir);

/* Run `secretsctl ARGS` (ARGS from fmt, a shell fragment) through sh with this environment.
 * Returns the exit status; *ret_out and *ret_err (when not NULL) get its stdout and stderr
 * (malloc'd). */
int ctl_sh(char **ret_out, char **ret_err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Run `secretsctl ARGS` like ctl_sh() and check its exit status and that its stdout is exactly
 * want (each mismatch is a failed check, printed with the command). */
void ctl_expect(int status, const char *want, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Start secretsctl with argv (argv[0] is ignored) directly, stdout and stderr to files out_path and
 * err_path (either may be NULL: /dev/null). Returns its pid, or -1. */
pid_t ctl_spawn(char *const argv[], const char *out_path, const char *err_path);
/* Wait up to timeout_ms for pid to end; its exit status (128 + N for signal N), or -1 when it did
 * not end (it is then killed). */
int ctl_wait(pid_t pid, int timeout_ms);

/* Set the value of acme/PROJECT/ENV/NAME through the API, creating the secret if needed; true on
 * success. */
bool ctl_api_set(const char *env_path, const char *name, const char *value);

/* Set env var name to value in this process for the next commands (NULL: unset). */
void ctl_setenv(const char *name, const char *value);

/* True when the file at path holds needle. */
bool ctl_file_has(const char *path, const char *needle);

#endif
