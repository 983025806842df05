/*
 * test_nodes_tpm.c - keyslots across a cluster: two secretsd nodes on one PostgreSQL database, each
 * on its own "machine" (its own swtpm), enrolling its own TPM through its own admin socket with
 * secretsctl, online.
 *
 *  - node A starts with a passphrase slot and enrols its TPM; node B bootstraps with the same
 *    passphrase and enrols its TPM; `seal list` shows both with their labels, never key material;
 *  - the refusals: the slot a node opened with (without --force), the recovery slot, an unknown id;
 *  - the passphrase slot is removed; both nodes restart with [seal] type = tpm and unlock with their
 *    own TPM only, serving what the other wrote;
 *  - once B's slot is removed (from A), B cannot unlock with A's slot and says so;
 *  - `seal rekey` keeps A's slot and the recovery slot, removes and lists the others, and A opens
 *    the new keyring key with its re-wrapped slot after a restart.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops_util.h"
#include "pgtest.h"
#include "testutil.h"

#define ARGON_FAST "pwhash_opslimit = 2\npwhash_memlimit = 64M\n"

typedef struct node {
    char *dir;
    sx_swtpm tpm;
    sx_srv srv;
} node;

static void write_config(const node *n, const char *name, const char *storage, const char *seal)
{
    char conf[8192];
    snprintf(conf, sizeof(conf),
             "[server]\nlisten = 127.0.0.1:0\nthreads = 2\nadmin_socket = admin.sock\n"
             "[storage]\nbackend = postgres\n%s"
             "[seal]\n%s"
             "[log]\nlevel = info\naccess_log =\naudit_log = audit.log\n",
             storage, seal);
    char *path = sx_test_path(n->dir, name);
    sx_test_write_file(path, conf, strlen(conf));
    free(path);
}

static int ctl(char **out, const node *n, const char *conf, const char *args)
{
    return sx_test_sh(out, "'%s' --config '%s/%s' %s 2>&1", SX_SECRETSCTL_PATH, n->dir, conf, args);
}

/* ctl with a status and a piece of its output expected. */
static void ctl_expect(const node *n, const char *conf, const char *args, int want, const char *needle)
{
    char *out = NULL;
    int rc = ctl(&out, n, conf, args);
    if (rc != want || (needle && (!out || !strstr(out, needle))))
        fprintf(stderr, "secretsctl %s -> %d (want %d, \"%s\"): %s\n", args, rc, want, needle ? needle : "",
                out ? out : "");
    CHECK_INT(rc, want);
    CHECK(!needle || (out && strstr(out, needle)));
    free(out);
}

/* The id of the slot labelled label in `seal list --json`, or -1. */
static long slot_id(const node *n, const char *label)
{
    yajl_val v = ops_admin_json(&n->srv, "GET", "/v1/seal/slots", NULL, 200);
    yajl_val arr = ops_jget(v, yajl_t_array, "slots", NULL);
    long id = -1;
    for (size_t i = 0; arr && i < arr->u.array.len; i++) {
        yajl_val s = arr->u.array.values[i];
        yajl_val l = ops_jget(s, yajl_t_string, "label", NULL);
        const char *text = l ? YAJL_GET_STRING(l) : NULL;
        if (text && strcmp(text, label) == 0)
            id = (long)ops_jint(s, "id", NULL);
    }
    yajl_tree_free(v);
    return id;
}

static bool log_since_has(const char *path, size_t off, const char *needle)
{
    size_t len = 0;
    char *log = sx_test_read_file(path, &len);
    bool has = log && len >= off && strstr(log + off, needle);
    free(log);
    return has;
}

static void two_nodes_each_unlock_with_their_own_tpm(void)
{
    sx_pgtest pg;
    int r = sx_pgtest_start(&pg);
    if (r == SX_PGTEST_SKIP) {
        printf("skipped: no PostgreSQL\n");
        exit(77);
    }
    REQUIRE(r == 0 && sx_pgtest_createdb(&pg, "secretsd") == 0);
    node a = {.dir = sx_test_tmpdir("ntpm-a")}, b = {.dir = sx_test_tmpdir("ntpm-b")};
    if (!sx_swtpm_start(&a.tpm) || !sx_swtpm_start(&b.tpm)) {
        printf("skipped: swtpm is not available\n");
        sx_pgtest_stop(&pg);
        exit(77);
    }
    char dsn[256], storage[2048], pwfile[1024], seal[1024];
    sx_pgtest_dsn(&pg, "secretsd", dsn, sizeof(dsn));
    node *nodes[] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        node *n = nodes[i];
        snprintf(pwfile, sizeof(pwfile), "%s/dbpassword", n->dir);
        REQUIRE(sx_test_write_file(pwfile, pg.password, strlen(pg.password)) == 0);
        snprintf(storage, sizeof(storage), "dsn = \"%s\"\npassword_file = %s\n", dsn, pwfile);
        write_config(n, "pass.conf", storage, "type = passphrase\npassphrase_env = SX_TEST_PASS\n" ARGON_FAST);
        snprintf(seal, sizeof(seal), "type = tpm\ntcti = %s\n", n->tpm.tcti);
        write_config(n, "tpm.conf", storage, seal);
    }
    setenv("SX_TEST_PASS", "correct horse battery staple", 1);
    setenv("TSS2_LOG", "all+none", 1);

    /* A initialises the store with a passphrase slot and enrols its TPM. */
    REQUIRE(ops_start(&a.srv, a.dir, "pass.conf", NULL) == 0);
    char args[1024];
    snprintf(args, sizeof(args), "seal add --type tpm --tcti '%s' --label node-a", a.tpm.tcti);
    ctl_expect(&a, "pass.conf", args, 0, "Added slot");
    char *token = sx_srv_mint_token(&a.srv, "acme", NULL, NULL, "owner", NULL);
    REQUIRE(token);
    CHECK_INT(ops_seed(&a.srv, token, "acme", "slots", "e%d", NULL, 8, 2, false), 0);
    /* B bootstraps with the passphrase and enrols its own TPM, through its own socket. */
    setenv("SX_TEST_PASS", "correct horse battery staple", 1); /* secretsd wiped its copy, not ours */
    REQUIRE(ops_start(&b.srv, b.dir, "pass.conf", NULL) == 0);
    snprintf(args, sizeof(args), "seal add --type tpm --tcti '%s' --label node-b", b.tpm.tcti);
    ctl_expect(&b, "pass.conf", args, 0, "type = tpm");
    CHECK_INT(ops_seed(&b.srv, token, "acme", "slots", "e%d", NULL, 8, 2, true), 0);

    /* seal list from either node: the same slots; no key material. */
    char *out = NULL;
    CHECK_INT(ctl(&out, &a, "pass.conf", "seal list"), 0);
    CHECK(out && strstr(out, "recovery") && strstr(out, "passphrase") && strstr(out, "node-a") &&
          strstr(out, "node-b") && strstr(out, "(this node)"));
    printf("%s", out ? out : "");
    free(out);
    long ida = slot_id(&a, "node-a"), idb = slot_id(&b, "node-b");
    CHECK(ida > 1 && idb > 1 && ida != idb);

    /* The refusals. */
    ctl_expect(&a, "pass.conf", "seal remove 1", 1, "opened the keyring with");
    ctl_expect(&a, "pass.conf", "seal remove 0", 1, "recovery slot");
    ctl_expect(&a, "pass.conf", "seal remove 99", 1, "no slot 99");
    /* The passphrase slot goes (both nodes opened with it: --force); both keep serving. */
    ctl_expect(&b, "pass.conf", "seal remove 1 --force", 0, "Removed slot 1");
    CHECK_INT(ops_seed(&a.srv, token, "acme", "slots", "e%d", NULL, 8, 2, true), 0);
    CHECK_INT(sx_srv_stop(&a.srv, SIGTERM, 30), 0);
    CHECK_INT(sx_srv_stop(&b.srv, SIGTERM, 30), 0);

    /* Both restart with their own TPM only. */
    REQUIRE(ops_start(&a.srv, a.dir, "tpm.conf", NULL) == 0);
    REQUIRE(ops_start(&b.srv, b.dir, "tpm.conf", NULL) == 0);
    char line[64];
    snprintf(line, sizeof(line), "slot %ld)", ida);
    CHECK(log_since_has(a.srv.stderr_path, 0, line));
    snprintf(line, sizeof(line), "slot %ld)", idb);
    CHECK(log_since_has(b.srv.stderr_path, 0, line));
    CHECK_INT(ops_seed(&b.srv, token, "acme", "slots", "e%d", NULL, 8, 2, true), 0);
    CHECK_INT(ops_seed(&a.srv, token, "acme", "slots", "e%d", NULL, 8, 2, true), 0);
    /* The unlock is counted, by type, with the slot's id. */
    sx_resp m;
    REQUIRE(sx_srv_request(&b.srv, SX_ADMIN, "GET", "/metrics", NULL, NULL, 0, &m) == 0);
    CHECK(m.body && strstr(m.body, "secretsd_keyring_unlocks_total{type=\"tpm\"} 1"));
    snprintf(line, sizeof(line), "secretsd_keyring_unlock_slot %ld", idb);
    CHECK(m.body && strstr(m.body, line));
    sx_resp_free(&m);

    /* B's slot is removed (from A, online): B cannot unlock with A's slot. */
    snprintf(args, sizeof(args), "seal remove %ld", idb);
    ctl_expect(&a, "tpm.conf", args, 0, "Removed slot");
    CHECK_INT(sx_srv_stop(&b.srv, SIGTERM, 30), 0);
    char *b_log = sx_test_path(b.dir, "stderr.log");
    size_t off = 0;
    free(sx_test_read_file(b_log, &off));
    int exit_code = 0;
    sx_srv again;
    CHECK(ops_start(&again, b.dir, "tpm.conf", &exit_code) != 0);
    CHECK_INT(exit_code, 1);
    if (!log_since_has(b_log, off, "another machine's TPM")) {
        char *log = sx_test_read_file(b_log, NULL);
        fprintf(stderr, "B's log: %s\n", log && strlen(log) >= off ? log + off : "");
        free(log);
        CHECK(!"B says why it cannot unlock");
    }
    free(b_log);
    free(again.dir);
    free(again.config_path);
    free(again.admin_socket);
    free(again.stderr_path);
    /* The audit log names every slot change (scope "seal", slot id and type), never material. */
    char *audit_path = sx_test_path(a.dir, "audit.log");
    char *audit = sx_test_read_file(audit_path, NULL);
    snprintf(line, sizeof(line), "slot %ld tpm", idb);
    CHECK(audit && strstr(audit, "seal.remove") && strstr(audit, line));
    snprintf(line, sizeof(line), "\"slot %ld tpm\"", ida);
    CHECK(audit && strstr(audit, "seal.unlock") && strstr(audit, line)); /* A's start with its TPM */
    free(audit);
    free(audit_path);

    /* Rekey on A: A's TPM slot and the recovery slot are re-wrapped; a passphrase slot added
     * meanwhile is not at hand on A (its passphrase is not kept) and is removed, and listed. */
    setenv("SX_TEST_PASS2", "another correct horse battery", 1);
    ctl_expect(&a, "tpm.conf", "seal add --type passphrase --passphrase-env SX_TEST_PASS2 --label spare", 0,
               "Added slot");
    ctl_expect(&a, "tpm.conf", "seal rekey", 0, "Removed (their method is not at hand");
    CHECK_INT(slot_id(&a, "spare"), -1);
    CHECK_INT(slot_id(&a, "node-a"), ida);
    CHECK_INT(slot_id(&a, "recovery"), 0);
    CHECK_INT(ops_seed(&a.srv, token, "acme", "slots", "e%d", NULL, 8, 2, true), 0);
    CHECK_INT(sx_srv_stop(&a.srv, SIGTERM, 30), 0);
    REQUIRE(ops_start(&a.srv, a.dir, "tpm.conf", NULL) == 0); /* the re-wrapped slot opens the new key */
    CHECK_INT(ops_seed(&a.srv, token, "acme", "slots", "e%d", NULL, 8, 2, true), 0);
    CHECK_INT(sx_srv_stop(&a.srv, SIGTERM, 30), 0);
    free(token);
    sx_swtpm_stop(&a.tpm);
    sx_swtpm_stop(&b.tpm);
    sx_pgtest_stop(&pg);
    sx_test_rmtree(a.dir);
    sx_test_rmtree(b.dir);
    free(a.dir);
    free(b.dir);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    static const sx_test tests[] = {
        {"two_nodes_each_unlock_with_their_own_tpm", two_nodes_each_unlock_with_their_own_tpm},
    };
    return sx_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
