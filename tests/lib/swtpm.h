/*
 * swtpm.h - a software TPM (swtpm) that a test starts and stops itself, for the TPM seal.
 *
 * sx_swtpm_start() runs `swtpm socket --tpm2` with its state in a fresh temporary folder, its
 * server and control channels on two consecutive free loopback ports, already initialised
 * (startup-clear), and waits until it accepts connections. The process dies with the test
 * (PR_SET_PDEATHSIG), so a crashed test leaves no swtpm behind. Two started ones are two
 * different TPMs ("another machine").
 */
#ifndef SX_TEST_SWTPM_H
#define SX_TEST_SWTPM_H

#include <stdbool.h>
#include <sys/types.h>

/* Bytes of sx_swtpm.tcti, with its NUL. */
#define SX_SWTPM_TCTI_SIZE 128

typedef struct sx_swtpm {
    char *dir;                     /* its state folder (malloc'd), NULL when stopped */
    int port;                      /* the TPM commands' port; port + 1 is the control channel */
    pid_t pid;                     /* 0 when stopped */
    char tcti[SX_SWTPM_TCTI_SIZE]; /* "swtpm:host=127.0.0.1,port=N", the [seal] tcti value */
} sx_swtpm;

/* Start one (t is overwritten). false when swtpm is not installed or did not come up within a few
 * attempts (each on other ports); nothing is left running or on disk then. */
bool sx_swtpm_start(sx_swtpm *t);

/* Stop it (SIGTERM, reaped) and delete its state. Idempotent; a zeroed t is fine. */
void sx_swtpm_stop(sx_swtpm *t);

/* A port p with p and p + 1 free on 127.0.0.1 a moment ago (a swtpm's pair), or -1. */
int sx_swtpm_free_port_pair(void);

#endif
