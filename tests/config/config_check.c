/*
 * config_check.c - load a config file the way secretsd's main does: on a mistake print
 * "FILE:LINE: what is wrong" on stderr and exit with status 2; otherwise print a summary and exit 0.
 * test_config_example runs it to pin that path; it is also handy to check a file by hand.
 */
#include "config/config.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    sx_config *cfg;
    char err[512];
    if (sx_config_load(argv[1], &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    printf("%s: ok (%zu cleartext, %zu tls listeners, %u threads)\n", cfg->path, cfg->n_listen, cfg->n_tls_listen,
           cfg->threads);
    sx_config_free(cfg);
    return 0;
}
