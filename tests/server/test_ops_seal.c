/*
 * test_ops_seal.c - seal migration (file -> passphrase -> TPM -> file) and recovery with the
 * recovery key, and online backups restored into a new store, against the real secretsd and
 * secretsctl. The TPM steps use a swtpm the test starts; without swtpm (or TPM support in the
 * build) they are skipped and say so.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops_util.h"
#include "testutil.h"

#define ARGON_FAST "pwhash_opslimit = 2\npwhash_memlimit = 64M\n" /* the least a seal accepts */

static void write_seal_config(const char *dir, const char *name, const char *fmt, const char *arg)
{
    char seal[1024];
    snprintf(seal, sizeof(seal), fmt, arg);
    ops_write_config(dir, name, true, seal);
}

/* Start dir/conf, check every seeded value, stop. */
static void serves_every_value(const char *dir, const char *conf, const char *token)
{
    sx_srv srv;
    int exit_code = 0;
    if (ops_start(&srv, dir, conf, &exit_code) != 0) {
        fprintf(stderr, "%s did not start (exit %d)\n", conf, exit_code);
        CHECK(false);
        return;
    }
    CHECK_INT(ops_seed(&srv, token, "acme", "seal", "e%d", NULL, 12, 2, true), 0);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
}

/* dir/conf must not start: the keyring does not open under that seal. */
static void refuses_to_start(const char *dir, const char *conf, const char *why)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/stderr.log", dir);
    size_t off = 0;
    char *before = sx_test_read_file(path, &off);
    free(before);
    sx_srv srv;
    int exit_code = 0;
    int rc = ops_start(&srv, dir, conf, &exit_code);
    CHECK(rc != 0);
    if (rc == 0) {
        sx_srv_stop(&srv, SIGTERM, 30);
        return;
    }
    CHECK_INT(exit_code, 1);
    size_t len = 0;
    char *log = sx_test_read_file(path, &len);
    const char *tail = log && len >= off ? log + off : NULL;
    if (!tail || !strstr(tail, why))
        fprintf(stderr, "expected \"%s\" in the log of %s: %s\n", why, conf, tail ? tail : "");
    CHECK(tail && strstr(tail, why));
    free(log);
    free(srv.dir);
    free(srv.config_path);
    free(srv.admin_socket);
    free(srv.stderr_path);
}

static int ctl(char **out, const char *dir, const char *conf, const char *args)
{
    return sx_test_sh(out, "'%s' --config '%s/%s' %s 2>&1", SX_SECRETSCTL_PATH, dir, conf, args);
}

static void seal_migrations_keep_every_value_and_retire_the_old_seal(void)
{
    char *dir = sx_test_tmpdir("ops-seal");
    write_seal_config(dir, "file.conf", "type = file\nkey_file = seal.key\n%s", ARGON_FAST);
    write_seal_config(dir, "pass.conf", "type = passphrase\npassphrase_env = SX_TEST_PASS\n%s", ARGON_FAST);
    write_seal_config(dir, "file2.conf", "type = file\nkey_file = seal2.key\n%s", ARGON_FAST);
    sx_srv srv;
    REQUIRE(ops_start(&srv, dir, "file.conf", NULL) == 0);
    char rkey[80];
    REQUIRE(ops_recovery_key(dir, rkey));
    char *token = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(token);
    CHECK_INT(ops_seed(&srv, token, "acme", "seal", "e%d", NULL, 12, 2, false), 0);

    /* file -> passphrase: the passphrase comes from secretsctl's environment, not its argv. */
    char *out = NULL;
    CHECK_INT(ctl(&out, dir, "file.conf", "seal migrate --to passphrase --passphrase-env NEWPASS_UNSET"), 2);
    free(out);
    CHECK_INT(sx_test_sh(&out,
                         "NEWPASS='correct horse' '%s' --config '%s/file.conf' seal migrate --to passphrase "
                         "--passphrase-env NEWPASS 2>&1",
                         SX_SECRETSCTL_PATH, dir),
              0);
    CHECK(out && strstr(out, "type = passphrase") && strstr(out, "passphrase_env = NEWPASS"));
    free(out);
    CHECK_INT(ops_seed(&srv, token, "acme", "seal", "e%d", NULL, 12, 2, true), 0); /* still serving */
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    refuses_to_start(dir, "file.conf", "has no 'file' slot (it has: 'recovery', 'passphrase')");
    setenv("SX_TEST_PASS", "wrong horse", 1);
    refuses_to_start(dir, "pass.conf", "does not open the keyring");
    setenv("SX_TEST_PASS", "correct horse", 1);
    serves_every_value(dir, "pass.conf", token);

    /* passphrase -> TPM -> file */
    sx_swtpm tpm;
    bool have_tpm = sx_swtpm_start(&tpm);
    const char *last = "pass.conf";
    if (have_tpm) {
        write_seal_config(dir, "tpm.conf", "type = tpm\ntcti = %s\n", tpm.tcti);
        setenv("SX_TEST_PASS", "correct horse", 1);
        REQUIRE(ops_start(&srv, dir, "pass.conf", NULL) == 0);
        char args[512];
        snprintf(args, sizeof(args), "seal migrate --to tpm --tcti '%s'", tpm.tcti);
        int rc = ctl(&out, dir, "pass.conf", args);
        if (rc != 0 && strstr(out, "without TPM support")) {
            printf("TPM steps skipped: this build has no TPM support\n");
            have_tpm = false;
        } else {
            CHECK_INT(rc, 0);
            CHECK(strstr(out, "type = tpm"));
        }
        free(out);
        CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
        if (have_tpm) {
            refuses_to_start(dir, "pass.conf", "has no 'passphrase' slot (it has: 'recovery', 'tpm')");
            serves_every_value(dir, "tpm.conf", token);
            last = "tpm.conf";
        }
    } else {
        printf("TPM steps skipped: swtpm is not available\n");
    }
    if (have_tpm)
        printf("TPM steps ran against swtpm\n");
    REQUIRE(ops_start(&srv, dir, last, NULL) == 0);
    char args[2048];
    snprintf(args, sizeof(args), "seal migrate --to file --key-file '%s/seal2.key'", dir);
    CHECK_INT(ctl(&out, dir, last, args), 0);
    CHECK(strstr(out, "type = file"));
    free(out);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    refuses_to_start(dir, "file.conf", "does not open the keyring"); /* the first key file is dead */
    refuses_to_start(dir, last, "slot (it has: 'recovery', 'file')");
    serves_every_value(dir, "file2.conf", token);

    /* Lost key file: recover offline with the recovery key (from a file, never argv). */
    char path[1024];
    snprintf(path, sizeof(path), "%s/seal2.key", dir);
    CHECK_INT(unlink(path), 0);
    refuses_to_start(dir, "file2.conf", "cannot open seal key file");
    snprintf(path, sizeof(path), "%s/recovery.txt", dir);
    sx_test_write_file(path, "SXR1-AAAAAAAA-AAAAAAAA-AAAAAAAA-AAAAAAAA-AAAAAAAA-AAAAAAAA-AAAAAAAA\n", 68);
    snprintf(args, sizeof(args), "seal recover --key-file-in '%s'", path);
    CHECK_INT(ctl(&out, dir, "file2.conf", args), 1); /* a mistyped key changes nothing */
    free(out);
    sx_test_write_file(path, rkey, strlen(rkey));
    CHECK_INT(ctl(&out, dir, "file2.conf", args), 0);
    CHECK(out && strstr(out, "re-sealed under the configured file seal"));
    free(out);
    serves_every_value(dir, "file2.conf", token);
    /* Recovery is offline: refused while a server holds the store. */
    REQUIRE(ops_start(&srv, dir, "file2.conf", NULL) == 0);
    CHECK(sx_test_sh(NULL, "'%s' --config '%s/file2.conf' --recover < '%s' >/dev/null 2>&1", SX_SECRETSD_PATH, dir,
                     path) != 0);

    /* Lost TPM (state wiped, a new TPM): recover under it with secretsd --recover. */
    if (have_tpm) {
        snprintf(args, sizeof(args), "seal migrate --to tpm --tcti '%s'", tpm.tcti);
        CHECK_INT(ctl(&out, dir, "file2.conf", args), 0);
        free(out);
        CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
        sx_swtpm_stop(&tpm);
        REQUIRE(sx_swtpm_start(&tpm));
        write_seal_config(dir, "tpm2.conf", "type = tpm\ntcti = %s\n", tpm.tcti);
        refuses_to_start(dir, "tpm2.conf", "cannot unseal the keyring");
        CHECK_INT(sx_test_sh(&out, "'%s' --config '%s/tpm2.conf' --recover < '%s' 2>&1", SX_SECRETSD_PATH, dir, path),
                  0);
        CHECK(out && strstr(out, "re-sealed under the configured tpm seal"));
        free(out);
        serves_every_value(dir, "tpm2.conf", token);
        sx_swtpm_stop(&tpm);
    } else {
        CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    }
    unsetenv("SX_TEST_PASS");
    free(token);
    sx_test_rmtree(dir);
    free(dir);
}

/* ---- backup ----------------------------------------------------------------------------------------- */

typedef struct writer {
    int id;
    const sx_srv *srv;
    const char *token;
    atomic_bool *stop;
    atomic_int done; /* secrets whose value is set */
    long failures;
} writer;

static void live_value(char *buf, size_t cap, int id, int i)
{
    snprintf(buf, cap, "live-%d-%d", id, i);
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    ops_client c;
    ops_client_init(&c, w->srv, w->id % 2 == 1, w->token);
    for (int i = 0; !atomic_load(w->stop); i++) {
        char path[256], body[256], val[64];
        long st;
        snprintf(body, sizeof(body), "{\"kind\":\"secret\",\"name\":\"w%d-%d\"}", w->id, i);
        ops_call(&c, "POST", "/acme/bk/envs/live/secrets", body, &st, NULL);
        if (st != 201)
            w->failures++;
        live_value(val, sizeof(val), w->id, i);
        snprintf(path, sizeof(path), "/acme/bk/envs/live/secrets/w%d-%d/value", w->id, i);
        snprintf(body, sizeof(body), "{\"value\":\"%s\"}", val);
        ops_call(&c, "PUT", path, body, &st, NULL);
        if (st != 200)
            w->failures++;
        atomic_store(&w->done, i + 1);
    }
    ops_client_clear(&c);
    return NULL;
}

#define WRITERS 4

static void backup_under_write_load_restores_every_value(void)
{
    char *dir = sx_test_tmpdir("ops-backup");
    ops_write_config(dir, "a.conf", true, "type = file\nkey_file = seal.key\n");
    sx_srv srv;
    REQUIRE(ops_start(&srv, dir, "a.conf", NULL) == 0);
    char *token = sx_srv_mint_token(&srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(token);
    CHECK_INT(ops_seed(&srv, token, "acme", "bk", NULL, "pre", 50, 4, false), 0);

    atomic_bool stop = false;
    writer w[WRITERS];
    pthread_t tids[WRITERS];
    for (int t = 0; t < WRITERS; t++) {
        w[t] = (writer){.id = t, .srv = &srv, .token = token, .stop = &stop};
        atomic_init(&w[t].done, 0);
        pthread_create(&tids[t], NULL, writer_main, &w[t]);
    }
    sx_test_sleep_ms(400);
    int before[WRITERS];
    for (int t = 0; t < WRITERS; t++)
        before[t] = atomic_load(&w[t].done);
    char *out = NULL;
    CHECK_INT(sx_test_sh(&out, "cd '%s' && '%s' --config a.conf backup bk 2>&1", dir, SX_SECRETSCTL_PATH), 0);
    CHECK(out && strstr(out, "backup written to") && strstr(out, "NOT in the backup"));
    free(out);
    sx_test_sleep_ms(300);
    atomic_store(&stop, true);
    long failures = 0;
    for (int t = 0; t < WRITERS; t++) {
        pthread_join(tids[t], NULL);
        failures += w[t].failures;
    }
    CHECK_INT(failures, 0);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);

    /* The backup holds no seal key. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/seal.key", dir);
    size_t klen = 0;
    char *key = sx_test_read_file(path, &klen);
    REQUIRE(key && klen == 32);
    snprintf(path, sizeof(path), "%s/bk/MANIFEST.json", dir);
    char *manifest = sx_test_read_file(path, NULL);
    CHECK(manifest && strstr(manifest, "\"format\": \"secretsd-backup 1\"") && strstr(manifest, "\"seal\": \"file\""));
    free(manifest);
    char *files = NULL;
    sx_test_sh(&files, "ls '%s/bk/data'", dir);
    for (char *f = strtok(files, "\n"); f; f = strtok(NULL, "\n")) {
        snprintf(path, sizeof(path), "%s/bk/data/%s", dir, f);
        size_t len = 0;
        char *data = sx_test_read_file(path, &len);
        CHECK(!data || !sx_test_memmem(data, len, key, 32));
        free(data);
    }
    free(files);
    free(key);

    /* Restore into a new folder whose configuration uses the same seal key file. */
    char *dir2 = sx_test_tmpdir("ops-restore");
    char seal[1024];
    snprintf(seal, sizeof(seal), "type = file\nkey_file = %s/seal.key\n", dir);
    ops_write_config(dir2, "b.conf", true, seal);
    CHECK_INT(sx_test_sh(&out, "'%s' --config '%s/b.conf' --restore '%s/bk' 2>&1", SX_SECRETSD_PATH, dir2, dir), 0);
    CHECK(out && strstr(out, "the keyring opens"));
    free(out);
    CHECK_INT(sx_test_sh(&out, "'%s' --config '%s/b.conf' --restore '%s/bk' 2>&1", SX_SECRETSD_PATH, dir2, dir), 1);
    CHECK(out && strstr(out, "not empty"));
    free(out);
    /* A backup whose files do not match the manifest is refused before anything is copied. */
    char *dir3 = sx_test_tmpdir("ops-tampered");
    ops_write_config(dir3, "c.conf", true, seal);
    CHECK_INT(sx_test_sh(NULL, "cp -r '%s/bk' '%s/bk2' && f=$(ls '%s/bk2/data'/*.sst | head -1) && printf x >> \"$f\"",
                         dir, dir3, dir3),
              0);
    CHECK_INT(sx_test_sh(&out, "'%s' --config '%s/c.conf' --restore '%s/bk2' 2>&1", SX_SECRETSD_PATH, dir3, dir3), 1);
    CHECK(out && strstr(out, "does not match the manifest"));
    free(out);
    snprintf(path, sizeof(path), "%s/data", dir3);
    struct stat sb;
    CHECK(stat(path, &sb) != 0);

    /* The restored server: the old token works (tokens are in the backup), every value reveals. */
    REQUIRE(ops_start(&srv, dir2, "b.conf", NULL) == 0);
    CHECK_INT(ops_seed(&srv, token, "acme", "bk", NULL, "pre", 50, 4, true), 0);
    ops_client c;
    ops_client_init(&c, &srv, false, token);
    long missing = 0, wrong = 0, present = 0;
    for (int t = 0; t < WRITERS; t++) {
        for (int i = 0; i < atomic_load(&w[t].done); i++) {
            char val[64], want[96];
            long st;
            char *resp = NULL;
            snprintf(path, sizeof(path), "/acme/bk/envs/live/secrets/w%d-%d/value", t, i);
            ops_call(&c, "GET", path, NULL, &st, &resp);
            live_value(val, sizeof(val), t, i);
            snprintf(want, sizeof(want), "\"value\":\"%s\"", val);
            if (st == 200 && strstr(resp, want))
                present++;
            else if (st == 200)
                wrong++;
            else if (i < before[t])
                missing++; /* set before the backup began: must be in it */
            free(resp);
        }
    }
    ops_client_clear(&c);
    printf("restored: %ld live values present (%d+ set before the backup began)\n", present,
           before[0] + before[1] + before[2] + before[3]);
    CHECK_INT(missing, 0);
    CHECK_INT(wrong, 0);
    CHECK(present >= before[0] + before[1] + before[2] + before[3]);
    CHECK_INT(sx_srv_stop(&srv, SIGTERM, 30), 0);
    free(token);
    sx_test_rmtree(dir3);
    free(dir3);
    sx_test_rmtree(dir2);
    free(dir2);
    sx_test_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const sx_test tests[] = {
        {"seal_migrations_keep_every_value_and_retire_the_old_seal",
         seal_migrations_keep_every_value_and_retire_the_old_seal},
        {"backup_under_write_load_restores_every_value", backup_under_write_load_restores_every_value},
    };
    int rc = sx_test_main(tests, sizeof(tests) / sizeof(tests[0]), argc, argv);
    curl_global_cleanup();
    return rc;
}
