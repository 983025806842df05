/*
 * fuzz_config.c - libFuzzer target for the configuration loader, sx_config_load().
 *
 * The loader reads a file by path; the input goes into a memfd that is passed as /proc/self/fd/N,
 * so no file is written and nothing in config/ has to change. Checks beyond "no crash":
 *   - failure: a negative errno and a message "FILE:LINE: ..." that starts with the path;
 *   - success: the configuration is complete and obeys its documented invariants (at least one
 *     listener, 1 <= threads, max_value_bytes < max_body_bytes, every path absolute, TLS listeners
 *     only with a certificate and key).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz_config: check failed: %s (line %d)\n", #cond, __LINE__);                             \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

static bool absolute_or_empty(const char *p)
{
    return p && (p[0] == '\0' || p[0] == '/');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("secretsd-fuzz-config", MFD_CLOEXEC);
    CHECK(fd >= 0);
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        CHECK(w > 0);
        off += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    sx_config *cfg = NULL;
    char err[512];
    int rc = sx_config_load(path, &cfg, err, sizeof(err));
    if (rc != 0) {
        CHECK(rc < 0 && cfg == NULL);
        size_t plen = strlen(path);
        CHECK(strncmp(err, path, plen) == 0 && err[plen] == ':');
        char *end = NULL;
        long line = strtol(err + plen + 1, &end, 10);
        CHECK(end != err + plen + 1 && line >= 0 && *end == ':');
    } else {
        CHECK(cfg);
        CHECK(cfg->n_listen + cfg->n_tls_listen >= 1);
        for (size_t i = 0; i < cfg->n_listen; i++)
            CHECK(cfg->listen[i].host && cfg->listen[i].host[0]);
        for (size_t i = 0; i < cfg->n_tls_listen; i++)
            CHECK(cfg->tls_listen[i].host && cfg->tls_listen[i].host[0]);
        if (cfg->n_tls_listen)
            CHECK(cfg->tls_cert[0] && cfg->tls_key[0]);
        CHECK(cfg->threads >= 1);
        CHECK(cfg->max_value_bytes < cfg->max_body_bytes);
        CHECK(cfg->max_connections >= 1);
        CHECK(absolute_or_empty(cfg->admin_socket) && absolute_or_empty(cfg->storage_path) &&
              absolute_or_empty(cfg->seal_key_file) && absolute_or_empty(cfg->tls_cert) &&
              absolute_or_empty(cfg->tls_key) && absolute_or_empty(cfg->audit_log));
        CHECK(cfg->storage_path[0] == '/' && cfg->seal_key_file[0] == '/');
        CHECK(cfg->access_log && (strcmp(cfg->access_log, "-") == 0 || absolute_or_empty(cfg->access_log)));
        CHECK(cfg->seal_passphrase_env && cfg->seal_tcti);
        sx_config_free(cfg);
    }
    close(fd);
    return 0;
}
