/*
 * ops_util.h - helpers of the operations tests (test_ops.c, test_ops_seal.c): a secretsd started
 * from a configuration the test writes (any seal, [storage] sync on or off, restarts on the same
 * folder), a keep-alive HTTP client for many requests from many threads and JSON look-ups. Shell
 * commands (sx_test_sh), clocks (common/clock.h) and the software TPM (swtpm.h) come from tests/lib.
 */
#ifndef SX_TEST_OPS_UTIL_H
#define SX_TEST_OPS_UTIL_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <yajl/yajl_tree.h>

#include "harness.h"
#include "swtpm.h"

/* Write dir/name as a secretsd configuration: rocksdb at dir/data, cleartext listener on an
 * ephemeral port, admin socket dir/admin.sock, the given [seal] lines and [storage] sync. */
void ops_write_config(const char *dir, const char *name, bool sync, const char *seal_lines);

/* Start secretsd --config dir/name. 0 when it serves (srv filled; stop with sx_srv_stop(), which
 * leaves dir in place); -1 when it exited, with its exit status in *ret_exit (may be NULL) and
 * its stderr appended to dir/stderr.log. stdout goes to dir/stdout.log; it is not a terminal, so a
 * new keyring's recovery key goes to dir/var/recovery.key instead. */
int ops_start(sx_srv *srv, const char *dir, const char *name, int *ret_exit);

/* The recovery key written at first start (dir/var/recovery.key) into out (80 bytes). */
bool ops_recovery_key(const char *dir, char *out);

/* A keep-alive client: one curl handle, reused, HTTP/1.1 or h2c prior knowledge. */
typedef struct ops_client {
    CURL *h;
    const sx_srv *srv;
    bool h2;
    char auth[512];
} ops_client;

void ops_client_init(ops_client *c, const sx_srv *srv, bool h2, const char *token);
void ops_client_clear(ops_client *c);
/* One request (body may be NULL); *ret_status gets the status (0 on a transport failure); the body
 * goes to *ret_body (malloc'd) when ret_body != NULL. Returns 0 when an answer came back. */
int ops_call(ops_client *c, const char *method, const char *path, const char *body, long *ret_status, char **ret_body);

/* Secrets "S{i}" for i in [0, n) of org/project, one env per index (env_fmt like "c%04d") or all
 * in env_name, each with the value ops_value_of(env, i), written by nthreads keep-alive clients
 * (alternately HTTP/1.1 and h2c); with check, revealed and compared instead. Returns the number of
 * failed requests or mismatches. */
long ops_seed(const sx_srv *srv, const char *token, const char *org, const char *project, const char *env_fmt,
              const char *env_name, int n, int nthreads, bool check);
void ops_value_of(char *buf, size_t cap, const char *env, int i);

/* Admin call over the socket, parsed; NULL unless the status is want. Free with yajl_tree_free(). */
yajl_val ops_admin_json(const sx_srv *srv, const char *method, const char *path, const char *body, long want);

/* Nested look-ups: key path terminated by NULL. */
yajl_val ops_jget(yajl_val v, yajl_type t, ...);
long long ops_jint(yajl_val v, ...);

/* Poll GET /v1/rotations until it is empty (true) or timeout_s passed (false). */
bool ops_wait_rotations_done(const sx_srv *srv, int timeout_s);

#endif
