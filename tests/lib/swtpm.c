/* swtpm.c - see swtpm.h. */
#include "swtpm.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

int sx_swtpm_free_port_pair(void)
{
    /* rand_r on a seed of our own: the tests' own rand() sequence stays theirs. */
    static unsigned seed;
    if (!seed)
        seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    for (int i = 0; i < 200; i++) {
        int p = 20000 + rand_r(&seed) % 40000;
        if (sx_test_port_free(p) && sx_test_port_free(p + 1))
            return p;
    }
    return -1;
}

bool sx_swtpm_start(sx_swtpm *t)
{
    memset(t, 0, sizeof(*t));
    if (sx_test_sh(NULL, "command -v swtpm >/dev/null 2>&1") != 0)
        return false;
    t->dir = sx_test_tmpdir("swtpm");
    for (int attempt = 0; attempt < 5; attempt++) {
        t->port = sx_swtpm_free_port_pair();
        if (t->port < 0)
            break;
        char state[700], server[128], ctrl[128];
        snprintf(state, sizeof state, "dir=%s", t->dir);
        snprintf(server, sizeof server, "type=tcp,port=%d,bindaddr=127.0.0.1", t->port);
        snprintf(ctrl, sizeof ctrl, "type=tcp,port=%d,bindaddr=127.0.0.1", t->port + 1);
        fflush(stdout); /* the child must not write our buffered output a second time */
        fflush(stderr);
        t->pid = fork();
        if (t->pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a test that crashed */
            execlp("swtpm", "swtpm", "socket", "--tpm2", "--tpmstate", state, "--server", server, "--ctrl", ctrl,
                   "--flags", "not-need-init,startup-clear", (char *)NULL);
            _exit(127);
        }
        /* Wait (bounded) until both its ports accept and it is still running a moment later, or
         * until it exits (a port taken meanwhile: then another process may be what accepts). */
        bool exited = false;
        for (int i = 0; i < 500 && !exited; i++) {
            if (sx_test_port_accepts(t->port) && sx_test_port_accepts(t->port + 1)) {
                sx_test_sleep_ms(50);
                if (waitpid(t->pid, NULL, WNOHANG) == t->pid) {
                    exited = true;
                    break;
                }
                snprintf(t->tcti, sizeof t->tcti, "swtpm:host=127.0.0.1,port=%d", t->port);
                return true;
            }
            exited = waitpid(t->pid, NULL, WNOHANG) == t->pid;
            if (!exited)
                sx_test_sleep_ms(10);
        }
        if (exited) {
            t->pid = 0;
            continue;
        }
        kill(t->pid, SIGKILL);
        waitpid(t->pid, NULL, 0);
        t->pid = 0;
    }
    sx_swtpm_stop(t);
    return false;
}

void sx_swtpm_stop(sx_swtpm *t)
{
    if (t->pid > 0) {
        kill(t->pid, SIGTERM);
        waitpid(t->pid, NULL, 0);
        t->pid = 0;
    }
    if (t->dir) {
        sx_test_rmtree(t->dir);
        free(t->dir);
        t->dir = NULL;
    }
}
