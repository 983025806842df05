/*
 * testpoint.c - named pause points for the tests of races that are too narrow to hit by chance
 * (a value set between a rotation's scan and its destroy, a write between a reveal's two reads).
 *
 * Inert unless the process was started with SECRETSD_TEST_PAUSE_DIR in its environment; no key of
 * the configuration file can enable it. When it is set, a point named P checks for the file
 * DIR/P.hold; while that file exists, the thread that reached P creates DIR/P.paused and waits
 * (polling every 2 ms, at most TESTPOINT_MAX_MS) until the test removes the hold, then removes
 * the marker and goes on. A pause only delays a thread at a place where any thread may be
 * descheduled for as long, so it cannot make the server do anything it could not do under load;
 * the tests use it to make such an interleaving happen every time.
 */
#include "common/testpoint.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define TESTPOINT_MAX_MS 60000

static pthread_once_t testpoint_once = PTHREAD_ONCE_INIT;
static const char *testpoint_dir; /* NULL: every point is a no-op */

static void testpoint_init(void)
{
    const char *d = secure_getenv("SECRETSD_TEST_PAUSE_DIR");
    testpoint_dir = d && *d ? d : NULL;
}

void sx_testpoint(const char *name)
{
    pthread_once(&testpoint_once, testpoint_init);
    if (!testpoint_dir)
        return;
    char hold[4096], paused[4096];
    snprintf(hold, sizeof(hold), "%s/%s.hold", testpoint_dir, name);
    snprintf(paused, sizeof(paused), "%s/%s.paused", testpoint_dir, name);
    if (access(hold, F_OK) != 0)
        return;
    int fd = open(paused, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    struct timespec ts = {0, 2 * 1000 * 1000};
    for (int waited = 0; waited < TESTPOINT_MAX_MS && access(hold, F_OK) == 0; waited += 2)
        nanosleep(&ts, NULL);
    unlink(paused);
}
