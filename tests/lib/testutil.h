/*
 * testutil.h - the small harness every secretsd test program uses.
 *
 * A test program is a list of functions run by sx_test_main(); each CHECK that fails prints the
 * file, line and expression and marks the current test failed, and the program ends with the
 * plain "N passed, N failed" line and exit status 0 only when nothing failed. Helpers make and
 * remove temporary directories, so tests clean up after themselves, run shell commands, sleep and
 * open loopback TCP connections. The clocks tests measure with are common/clock.h's.
 */
#ifndef SX_TESTUTIL_H
#define SX_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef struct sx_test {
    const char *name;
    void (*fn)(void);
} sx_test;

extern int sx_test_failures; /* failures in the current test */

#define CHECK(expr)                                                                                                    \
    do {                                                                                                               \
        if (!(expr)) {                                                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);                                   \
            sx_test_failures++;                                                                                        \
        }                                                                                                              \
    } while (0)

/* Like CHECK but returns from the test function on failure (for preconditions of later steps). */
#define REQUIRE(expr)                                                                                                  \
    do {                                                                                                               \
        if (!(expr)) {                                                                                                 \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #expr);                                 \
            sx_test_failures++;                                                                                        \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)

#define CHECK_INT(a, b)                                                                                                \
    do {                                                                                                               \
        long long _a = (long long)(a), _b = (long long)(b);                                                            \
        if (_a != _b) {                                                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b, _a, _b);     \
            sx_test_failures++;                                                                                        \
        }                                                                                                              \
    } while (0)

#define CHECK_STR(a, b)                                                                                                \
    do {                                                                                                               \
        const char *_a = (a), *_b = (b);                                                                               \
        if (!_a || !_b || strcmp(_a, _b) != 0) {                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__, __LINE__, #a, #b,          \
                    _a ? _a : "(null)", _b ? _b : "(null)");                                                           \
            sx_test_failures++;                                                                                        \
        }                                                                                                              \
    } while (0)

/* Run the tests named on the command line (all when none), print "N passed, N failed", return the
 * exit status for main(). */
int sx_test_main(const sx_test *tests, size_t n, int argc, char **argv);

/* Make a fresh directory under $TMPDIR (or /tmp) named after tag; returns a malloc'd path. Aborts
 * the program on failure. */
char *sx_test_tmpdir(const char *tag);

/* Remove path and everything below it. Returns 0 or -errno. */
int sx_test_rmtree(const char *path);

/* Write len bytes to path (mode 0600), replacing it. Returns 0 or -errno. */
int sx_test_write_file(const char *path, const void *data, size_t len);

/* Read a whole file into a malloc'd NUL-terminated buffer; NULL on error. */
char *sx_test_read_file(const char *path, size_t *ret_len);

/* Wait up to timeout_ms for the text needle to appear in the file at path (a log line written
 * after its response was sent, say); true once it does. */
bool sx_test_file_wait(const char *path, const char *needle, int timeout_ms);

/* True when needle (nlen bytes) occurs in the len bytes at hay. */
bool sx_test_memmem(const void *hay, size_t len, const void *needle, size_t nlen);

/* A growing NUL-terminated buffer (data NULL until the first append; free(data) when done). */
typedef struct sx_test_buf {
    char *data;
    size_t len;
} sx_test_buf;

/* Append size*n bytes of p to the sx_test_buf ud; returns size*n, or 0 when out of memory. Has the
 * shape of a libcurl write/header callback (CURLOPT_WRITEFUNCTION with CURLOPT_WRITEDATA = buf). */
size_t sx_test_buf_append(char *p, size_t size, size_t n, void *ud);

/* "dir/name" in a malloc'd string (free it). Aborts the program when out of memory. */
char *sx_test_path(const char *dir, const char *name);

/* Sleep ms milliseconds. */
void sx_test_sleep_ms(long ms);

/* Wait up to timeout_ms for path to exist (polling every 10 ms), as the ".paused" marker of a
 * pause point (common/testpoint.h); false when it never appeared. */
bool sx_test_wait_for_file(const char *path, long timeout_ms);

/* Run a shell command made from fmt (printf-style) with popen(), stdout and stderr of this process
 * flushed first. Returns its exit status, or -1 when it did not exit normally or could not be
 * started. With ret_out != NULL, its standard output (never its stderr) goes to *ret_out, a
 * malloc'd NUL-terminated string the caller frees, written also on failure ("" then). */
int sx_test_sh(char **ret_out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A blocking TCP socket (close-on-exec, TCP_NODELAY) connected to 127.0.0.1:port, its reads timing
 * out after timeout_s seconds (0: never); -1 when the connection is refused. The caller closes it. */
int sx_test_tcp_connect(int port, int timeout_s);

/* True when a TCP connection to 127.0.0.1:port is accepted (something listens there). */
bool sx_test_port_accepts(int port);

/* True when 127.0.0.1:port can be bound now (nothing holds it). */
bool sx_test_port_free(int port);

/* A loopback port the kernel handed out as free a moment ago (bound to port 0, then closed), or
 * -1. Another process may take it before the caller binds it. */
int sx_test_free_port(void);

#endif
