/*
 * hostile.h - what the hostile-client tests (test_h2abuse.c, test_slowclients.c) share: a
 * well-behaved HTTP/2 client on one h2c connection (libnghttp2, prior knowledge) that measures the
 * latency of each request, latency percentiles, the server's resident memory and the file limit.
 *
 * Everything here runs in the test process against the real secretsd on 127.0.0.1. Wall-clock
 * figures are measured and printed, never asserted: the machines are shared and noisy.
 */
#ifndef SX_TEST_HOSTILE_H
#define SX_TEST_HOSTILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sx_srv;

/* Start a server with `threads` loop threads and extra [server] lines (may be NULL), mint an
 * owner token for acme/web/prod into *ret_token and create the secret s1 the tests read. false
 * on any failure (the caller still calls sx_hostile_server_down). */
bool sx_hostile_server_up(struct sx_srv *srv, int threads, const char *extra_server, char **ret_token);
/* Free the token and stop the server with SIGTERM; 0 when it exited cleanly (drained, no
 * sanitizer report). */
int sx_hostile_server_down(struct sx_srv *srv, char **token);

/* One h2c connection driven synchronously by libnghttp2: one request at a time. */
typedef struct sx_h2c sx_h2c;

/* Connect to 127.0.0.1:port, send the preface and SETTINGS. NULL on failure. */
sx_h2c *sx_h2c_connect(int port);
/* One request on the connection; waits up to timeout_ms for the whole answer. On success (0) the
 * status and a malloc'd NUL-terminated body (free it) are written; -1 when the connection failed
 * or the answer did not come in time. auth may be NULL (no Authorization header). */
int sx_h2c_request(sx_h2c *c, const char *method, const char *path, const char *auth, int timeout_ms, int *ret_status,
                   char **ret_body);
/* Same, with one extra header (name, value) and a request body (may be NULL). */
int sx_h2c_request_ex(sx_h2c *c, const char *method, const char *path, const char *auth, const char *hname,
                      const char *hvalue, const char *body, size_t body_len, int timeout_ms, int *ret_status,
                      char **ret_body);
void sx_h2c_free(sx_h2c *c);

/* A well-behaved client on its own connection: n GETs of path, one after the other, each timed.
 * Counts answers that are not 200 with a body containing expect (or that fail) in *ret_bad;
 * latencies in microseconds go to lat (n entries; those of failed requests are not written and
 * *ret_done says how many were). A failed connection is reopened. stop, when not NULL, ends the
 * run early once it becomes true. */
void sx_good_client_run(int port, const char *path, const char *auth, const char *expect, size_t n, double *lat,
                        size_t *ret_done, size_t *ret_bad, volatile bool *stop);

/* One measured batch of the good client: a warm-up of n / 10 requests, then n timed ones. Returns
 * the p99 latency in microseconds (p50 in *ret_p50 when not NULL) and adds the wrong or failed
 * answers to *bad. */
double sx_good_batch(int port, const char *path, const char *auth, const char *expect, size_t n, double *ret_p50,
                     size_t *bad);

/* The median of n values (sorts v in place). */
double sx_median(double *v, size_t n);

/* The p-th percentile (0..100) of n values (sorts v in place). */
double sx_percentile(double *v, size_t n, double p);

/* VmRSS of pid in KiB, or -1. */
long sx_rss_kib(pid_t pid);

/* Raise this process's RLIMIT_NOFILE soft limit to at least n (up to the hard limit, raising the
 * hard limit too when allowed). Returns the resulting soft limit. */
long sx_raise_nofile(long n);

#endif
