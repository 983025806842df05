/*
 * testpoint.h - named pause points for race tests (see testpoint.c). A no-op unless the process
 * was started with SECRETSD_TEST_PAUSE_DIR set; callable from any thread.
 */
#ifndef SX_COMMON_TESTPOINT_H
#define SX_COMMON_TESTPOINT_H

/* Wait here while the test holds the point name (a file name: [a-z.-] only). */
void sx_testpoint(const char *name);

#endif /* SX_COMMON_TESTPOINT_H */
