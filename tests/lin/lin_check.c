/*
 * lin_check.c - `lin_check [--max-steps N] [--max-seconds S] HISTORY`: is a recorded history of
 * operations on secrets linearizable?
 *
 * Prints "<n> operations on <k> keys: linearizable" and exits 0, or describes each key whose
 * operations no order explains (the operations involved, lin.h) and exits 1; a key whose search
 * ran out of its budget is reported as undecided, also with exit 1. A history it cannot read exits
 * 2. The counts of operations by kind and by outcome follow the verdict.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lin.h"

static void usage(void)
{
    fputs("usage: lin_check [--max-steps N] [--max-seconds S] HISTORY\n", stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    sx_lin_limits lim = {0};
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--max-steps") == 0 && i + 1 < argc)
            lim.max_steps = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--max-seconds") == 0 && i + 1 < argc)
            lim.max_seconds = strtod(argv[++i], NULL);
        else if (argv[i][0] == '-' || path)
            usage();
        else
            path = argv[i];
    }
    if (!path)
        usage();
    sx_lin_history h = {0};
    char err[SX_LIN_ERR_LEN];
    if (sx_lin_history_load(&h, path, err) != 0) {
        fprintf(stderr, "lin_check: %s\n", err);
        sx_lin_history_free(&h);
        return 2;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    sx_lin_summary s;
    sx_lin_verdict v = sx_lin_check(&h, &lim, stdout, &s);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    if (v == SX_LIN_LINEARIZABLE)
        printf("%zu operations on %zu keys: linearizable\n", s.ops, s.keys);
    else
        printf("%zu operations on %zu keys: NOT linearizable (%zu keys with an anomaly, %zu undecided, %zu "
               "linearizable)\n",
               s.ops, s.keys, s.anomalous_keys, s.undecided_keys, s.linearizable_keys);
    printf("outcomes: %zu ok, %zu failed, %zu unknown; ", s.by_outcome[SX_LIN_OK], s.by_outcome[SX_LIN_FAIL],
           s.by_outcome[SX_LIN_UNKNOWN]);
    for (int k = 0; k < SX_LIN_KINDS; k++)
        printf("%s %zu%s", sx_lin_kind_name((sx_lin_kind)k), s.by_kind[k], k + 1 < SX_LIN_KINDS ? ", " : "\n");
    printf("search: %llu steps in %.3f s\n", (unsigned long long)s.steps, secs);
    sx_lin_history_free(&h);
    return v == SX_LIN_LINEARIZABLE ? 0 : 1;
}
