/*
 * test_token.c - token format, header parsing, create/verify/get/list/revoke, and what storage holds.
 *
 * Runs against the backend named by SX_AUTH_TEST_BACKEND (memory by default; ctest also registers
 * it for rocksdb), always through the fault wrapper so "no storage read" is provable.
 */
#include "authtest.h"

#include <dirent.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void create_then_verify_round_trip(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = NULL;
    sx_auth_token info, p;
    fx_mint(&fx, "acme", "web", "prod", SX_AUTH_ROLE_EDITOR, 0, &tok, &info);
    CHECK_INT(fx_verify(&fx, tok, T0 + 5, &p), 0);
    CHECK_STR(p.id, info.id);
    CHECK_STR(p.label, "test token");
    CHECK_INT(p.role, SX_AUTH_ROLE_EDITOR);
    CHECK_STR(p.org, "acme");
    CHECK_STR(p.project, "web");
    CHECK_STR(p.env, "prod");
    CHECK_INT(p.created_ms, T0);
    CHECK_INT(p.expires_ms, 0);
    CHECK(!p.revoked);
    sx_auth_token_plaintext_free(tok);
    /* Many random secrets: every bit pattern of the base64url decoder gets exercised. */
    for (int i = 0; i < 64; i++) {
        fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_VIEWER, 0, &tok, &info);
        CHECK_INT(fx_verify(&fx, tok, T0, &p), 0);
        CHECK_STR(p.id, info.id);
        sx_auth_token_plaintext_free(tok);
    }
    fx_close(&fx);
}

static void token_format_is_prefix_hex_id_and_base64url_secret(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = NULL;
    sx_auth_token info;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_VIEWER, 0, &tok, &info);
    REQUIRE(strlen(tok) == SX_AUTH_TOKEN_LEN);
    CHECK(strncmp(tok, "sxt_", 4) == 0);
    CHECK(strncmp(tok + 4, info.id, SX_AUTH_ID_LEN) == 0);
    CHECK(sx_auth_id_valid(info.id));
    CHECK(tok[36] == '_');
    for (size_t i = 37; i < SX_AUTH_TOKEN_LEN; i++)
        CHECK(strchr(b64url, tok[i]) != NULL);
    unsigned char secret[64];
    size_t n = 0;
    CHECK(sodium_base642bin(secret, sizeof secret, tok + 37, 43, NULL, &n, NULL,
                            sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0);
    CHECK_INT(n, 32);
    /* Two tokens never share id or secret. */
    char *tok2 = NULL;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_VIEWER, 0, &tok2, NULL);
    CHECK(strncmp(tok, tok2, 36) != 0);
    CHECK(strcmp(tok + 37, tok2 + 37) != 0);
    sx_auth_token_plaintext_free(tok);
    sx_auth_token_plaintext_free(tok2);
    fx_close(&fx);
}

static void wrong_secret_and_unknown_id_are_unauthorized(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = NULL;
    sx_auth_token p;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_OWNER, 0, &tok, NULL);
    char bad[SX_AUTH_TOKEN_LEN + 1];
    strcpy(bad, tok);
    bad[40] = bad[40] == 'A' ? 'B' : 'A'; /* a different, still canonical, secret */
    CHECK_INT(fx_verify(&fx, bad, T0, &p), SX_AUTH_EBADTOKEN);
    strcpy(bad, tok);
    bad[10] = bad[10] == '0' ? '1' : '0'; /* another id */
    CHECK_INT(fx_verify(&fx, bad, T0, &p), SX_AUTH_EBADTOKEN);
    CHECK(sx_auth_is_unauthorized(SX_AUTH_EBADTOKEN));
    /* The genuine token still works afterwards. */
    CHECK_INT(fx_verify(&fx, tok, T0, &p), 0);
    sx_auth_token_plaintext_free(tok);
    fx_close(&fx);
}

static void malformed_headers_are_rejected_without_storage_reads(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = NULL;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_OWNER, 0, &tok, NULL);
    char t[SX_AUTH_TOKEN_LEN + 1];
    strcpy(t, tok);
    char noncanon[SX_AUTH_TOKEN_LEN + 1];
    strcpy(noncanon, tok);
    {
        /* The last character carries 4 data bits and 2 zero bits; set a zero bit. */
        size_t idx = (size_t)(strchr(b64url, noncanon[79]) - b64url);
        noncanon[79] = b64url[idx ^ 1];
    }
    static char huge[10000];
    memset(huge, 'A', sizeof huge);
    memcpy(huge, "Bearer ", 7);

    struct {
        const char *name;
        char buf[200];
        size_t len; /* 0 = strlen(buf) unless explicit */
        bool explicit_len;
    } cases[40];
    size_t n = 0;
#define ADD(nm, ...)                                                                                                   \
    do {                                                                                                               \
        cases[n].name = nm;                                                                                            \
        snprintf(cases[n].buf, sizeof cases[n].buf, __VA_ARGS__);                                                      \
        cases[n].explicit_len = false;                                                                                 \
        n++;                                                                                                           \
    } while (0)
    ADD("empty", "%s", "");
    ADD("scheme only", "Bearer");
    ADD("scheme and space", "Bearer ");
    ADD("basic auth", "Basic dXNlcjpwYXNz");
    ADD("basic scheme with token", "Basic %s", t);
    ADD("two spaces", "Bearer  %s", t);
    ADD("leading space", " Bearer %s", t);
    ADD("trailing space", "Bearer %s ", t);
    ADD("trailing CRLF", "Bearer %s\r\n", t);
    ADD("tab separator", "Bearer\t%s", t);
    ADD("no separator", "Bearer%s", t);
    ADD("colon after scheme", "Bearer: %s", t);
    ADD("other scheme", "Token %s", t);
    ADD("token without scheme", "%s", t);
    ADD("wrong prefix", "Bearer sxx_%s", t + 4);
    ADD("uppercase prefix", "Bearer SXT_%s", t + 4);
    ADD("dash instead of underscore", "Bearer %.36s-%s", t, t + 37);
    ADD("uppercase hex id", "Bearer sxt_%.32s_%s", "0123456789ABCDEF0123456789ABCDEF", t + 37);
    ADD("non-hex id", "Bearer sxt_%.32s_%s", "g123456789abcdef0123456789abcdef", t + 37);
    ADD("empty id", "Bearer sxt__%s", t + 37);
    ADD("secret one char short", "Bearer %.79s", t);
    ADD("secret one char long", "Bearer %sA", t);
    ADD("plus in secret", "Bearer %.50s+%s", t, t + 51);
    ADD("slash in secret", "Bearer %.50s/%s", t, t + 51);
    ADD("padding in secret", "Bearer %.79s=", t);
    ADD("non-canonical last char", "Bearer %s", noncanon);
    ADD("space inside token", "Bearer %.50s %s", t, t + 51);
    ADD("non-ASCII in secret", "Bearer %.50s\xc3\xa9%s", t, t + 52);
    ADD("non-ASCII in scheme",
        "B\xc3\xa9"
        "arer %s",
        t);
    ADD("two tokens", "Bearer %s,%s", t, t);
    /* NUL bytes: same length as a valid header, NUL somewhere inside. */
    ADD("NUL in secret", "Bearer %s", t);
    cases[n - 1].buf[60] = '\0';
    cases[n - 1].len = 87;
    cases[n - 1].explicit_len = true;
    ADD("NUL in id", "Bearer %s", t);
    cases[n - 1].buf[15] = '\0';
    cases[n - 1].len = 87;
    cases[n - 1].explicit_len = true;
    ADD("NUL after scheme", "Bearer %s", t);
    cases[n - 1].buf[6] = '\0';
    cases[n - 1].len = 87;
    cases[n - 1].explicit_len = true;
#undef ADD
    CHECK(n >= 20);

    fx_fail_storage(&fx, true);
    sx_auth_token p;
    for (size_t i = 0; i < n; i++) {
        size_t len = cases[i].explicit_len ? cases[i].len : strlen(cases[i].buf);
        int rc = sx_auth_verify(fx.auth, fx.cache, cases[i].buf, len, T0, &p);
        if (rc != SX_AUTH_EMALFORMED)
            fprintf(stderr, "case \"%s\": %d (%s)\n", cases[i].name, rc, sx_auth_strerror(rc));
        CHECK_INT(rc, SX_AUTH_EMALFORMED);
    }
    CHECK_INT(sx_auth_verify(fx.auth, fx.cache, NULL, 0, T0, &p), SX_AUTH_EMALFORMED);
    CHECK_INT(sx_auth_verify(fx.auth, fx.cache, huge, sizeof huge, T0, &p), SX_AUTH_EMALFORMED);
    /* The same well-formed token does reach storage (and fails there): the table was not vacuous. */
    CHECK_INT(fx_verify(&fx, t, T0, &p), SX_AUTH_EUNAVAILABLE);
    fx_fail_storage(&fx, false);
    CHECK_INT(fx_verify(&fx, t, T0, &p), 0);
    sx_auth_token_plaintext_free(tok);
    fx_close(&fx);
}

static void bearer_scheme_is_case_insensitive(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = NULL;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_OWNER, 0, &tok, NULL);
    const char *schemes[] = {"bearer", "BEARER", "BeArEr"};
    for (size_t i = 0; i < 3; i++) {
        char hdr[128];
        int n = snprintf(hdr, sizeof hdr, "%s %s", schemes[i], tok);
        sx_auth_token p;
        CHECK_INT(sx_auth_verify(fx.auth, fx.cache, hdr, (size_t)n, T0, &p), 0);
    }
    sx_auth_token_plaintext_free(tok);
    fx_close(&fx);
}

static void expired_token_is_unauthorized(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = NULL;
    sx_auth_token info, p;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_OWNER, 60000, &tok, &info);
    CHECK_INT(info.expires_ms, T0 + 60000);
    CHECK_INT(fx_verify(&fx, tok, T0 + 59999, &p), 0);
    /* Also from the cache: the entry is fresh, the token is not. */
    CHECK_INT(fx_verify(&fx, tok, T0 + 60000, &p), SX_AUTH_EEXPIRED);
    CHECK_INT(fx_verify(&fx, tok, T0 + 3600000, &p), SX_AUTH_EEXPIRED);
    CHECK(sx_auth_is_unauthorized(SX_AUTH_EEXPIRED));
    sx_auth_token_plaintext_free(tok);
    fx_close(&fx);
}

static void create_rejects_invalid_specs(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = (char *)"untouched";
    char longlabel[200];
    memset(longlabel, 'x', sizeof longlabel);
    longlabel[129] = '\0';
    const sx_auth_token_spec bad[] = {
        {.org = NULL, .role = SX_AUTH_ROLE_VIEWER},
        {.org = "", .role = SX_AUTH_ROLE_VIEWER},
        {.org = "-acme", .role = SX_AUTH_ROLE_VIEWER},
        {.org = "ac me", .role = SX_AUTH_ROLE_VIEWER},
        {.org = "acme", .project = "a/b", .role = SX_AUTH_ROLE_VIEWER},
        {.org = "acme", .env = "prod", .role = SX_AUTH_ROLE_VIEWER}, /* env without project */
        {.org = "acme", .role = 0},
        {.org = "acme", .role = 9},
        {.org = "acme", .role = SX_AUTH_ROLE_VIEWER, .label = "tab\there"},
        {.org = "acme", .role = SX_AUTH_ROLE_VIEWER, .label = "bad \xff utf8"},
        {.org = "acme", .role = SX_AUTH_ROLE_VIEWER, .label = longlabel},
        {.org = "acme", .role = SX_AUTH_ROLE_VIEWER, .ttl_ms = -1},
        {.org = "acme", .role = SX_AUTH_ROLE_VIEWER, .ttl_ms = SX_AUTH_TTL_MAX_MS + 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT(sx_auth_token_create(fx.auth, &bad[i], T0, &tok, NULL), -EINVAL);
    CHECK_STR(tok, "untouched");
    sx_auth_token_spec ok = {.org = "acme", .role = SX_AUTH_ROLE_VIEWER, .label = "CI runner \xc3\xa9t\xc3\xa9"};
    sx_auth_token info;
    REQUIRE(sx_auth_token_create(fx.auth, &ok, T0, &tok, &info) == 0);
    CHECK_STR(info.label, "CI runner \xc3\xa9t\xc3\xa9");
    CHECK_STR(info.project, "");
    sx_auth_token_plaintext_free(tok);
    sx_auth_token_plaintext_free(NULL);
    fx_close(&fx);
}

static void get_and_revoke_by_id(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = NULL;
    sx_auth_token info, got;
    fx_mint(&fx, "acme", "web", NULL, SX_AUTH_ROLE_SERVICE, 0, &tok, &info);
    REQUIRE(sx_auth_token_get(fx.auth, info.id, &got) == 0);
    CHECK(memcmp(&got, &info, sizeof got) == 0);
    CHECK_INT(sx_auth_token_get(fx.auth, "0123456789abcdef0123456789abcdef", &got), -ENOENT);
    CHECK_INT(sx_auth_token_get(fx.auth, "not-an-id", &got), -EINVAL);
    CHECK_INT(sx_auth_token_revoke(fx.auth, "0123456789abcdef0123456789abcdef", T0), -ENOENT);
    CHECK_INT(sx_auth_token_revoke(fx.auth, tok, T0), -EINVAL); /* the token is not its id */
    CHECK_INT(sx_auth_token_revoke(fx.auth, info.id, T0 + 7), 0);
    CHECK_INT(sx_auth_token_revoke(fx.auth, info.id, T0 + 9), 0); /* idempotent */
    REQUIRE(sx_auth_token_get(fx.auth, info.id, &got) == 0);
    CHECK(got.revoked);
    CHECK_INT(got.revoked_ms, T0 + 7);
    sx_auth_token p;
    CHECK_INT(fx_verify(&fx, tok, T0 + 10, &p), SX_AUTH_EREVOKED);
    sx_auth_token_plaintext_free(tok);
    fx_close(&fx);
}

typedef struct listing {
    sx_auth_token toks[8];
    size_t n;
} listing;

static int collect(const sx_auth_token *tok, void *ud)
{
    listing *l = ud;
    if (l->n < 8)
        l->toks[l->n] = *tok;
    l->n++;
    return 0;
}

static int stop_at_first(const sx_auth_token *tok, void *ud)
{
    (*(int *)ud)++;
    return 42;
}

static void list_shows_every_token_and_never_a_hash(void)
{
    fixture fx;
    fx_open(&fx);
    char *toks[3];
    sx_auth_token infos[3];
    for (int i = 0; i < 3; i++)
        fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_VIEWER, 0, &toks[i], &infos[i]);
    REQUIRE(sx_auth_token_revoke(fx.auth, infos[1].id, T0) == 0);
    /* Another module's key next to ours must not be listed. */
    sx_storage_fault_set(fx.store, 0, false);
    REQUIRE(sx_storage_put(fx.store, "s/acme", 6, "x", 1, NULL) == 0);

    listing l = {0};
    REQUIRE(sx_auth_token_list(fx.auth, collect, &l) == 0);
    CHECK_INT(l.n, 3);
    for (size_t i = 1; i < l.n && i < 8; i++)
        CHECK(strcmp(l.toks[i - 1].id, l.toks[i].id) < 0);
    for (size_t i = 0; i < l.n && i < 8; i++) {
        /* The stored hash is at offset 44 of the record; it must not appear in what list hands out. */
        char key[2 + SX_AUTH_ID_LEN];
        memcpy(key, "t/", 2);
        memcpy(key + 2, l.toks[i].id, SX_AUTH_ID_LEN);
        void *val = NULL;
        size_t vlen = 0;
        REQUIRE(sx_storage_get(fx.store, key, sizeof key, &val, &vlen, NULL) == 0);
        REQUIRE(vlen > 76);
        CHECK(!sx_test_memmem(&l.toks[i], sizeof l.toks[i], (unsigned char *)val + 44, 32));
        CHECK(!sx_test_memmem(&l.toks[i], sizeof l.toks[i], (unsigned char *)val + 44, 8));
        sx_storage_free(val);
        CHECK_INT(l.toks[i].revoked, strcmp(l.toks[i].id, infos[1].id) == 0);
    }
    int calls = 0;
    CHECK_INT(sx_auth_token_list(fx.auth, stop_at_first, &calls), 42);
    CHECK_INT(calls, 1);
    fx_fail_storage(&fx, true);
    CHECK(sx_auth_token_list(fx.auth, collect, &l) < 0);
    for (int i = 0; i < 3; i++)
        sx_auth_token_plaintext_free(toks[i]);
    fx_close(&fx);
}

static void record_layout_is_versioned_at_t_slash_id(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = NULL;
    sx_auth_token info;
    fx_mint(&fx, "acme", "web", "prod", SX_AUTH_ROLE_OWNER, 1000, &tok, &info);
    char key[2 + SX_AUTH_ID_LEN];
    memcpy(key, "t/", 2);
    memcpy(key + 2, info.id, SX_AUTH_ID_LEN);
    unsigned char *val = NULL;
    size_t vlen = 0;
    REQUIRE(sx_storage_get(fx.store, key, sizeof key, (void **)&val, &vlen, NULL) == 0);
    CHECK_INT(vlen, 76 + 1 + 10 + 1 + 4 + 1 + 3 + 1 + 4);
    CHECK_INT(val[0], 1);
    CHECK_INT(val[1], SX_AUTH_ROLE_OWNER);
    CHECK_INT(val[2], 0);
    CHECK_INT(val[4 + 7], (unsigned char)(T0 & 0xff));
    CHECK_INT(val[76], 10);
    CHECK(memcmp(val + 77, "test token", 10) == 0);

    /* A corrupt record: management calls say -EBADMSG, verification says unavailable (503). */
    val[0] = 2;
    REQUIRE(sx_storage_put(fx.store, key, sizeof key, val, vlen, NULL) == 0);
    sx_auth_token p;
    CHECK_INT(sx_auth_token_get(fx.auth, info.id, &p), -EBADMSG);
    CHECK_INT(fx_verify(&fx, tok, T0, &p), SX_AUTH_EUNAVAILABLE);
    CHECK_INT(sx_auth_token_revoke(fx.auth, info.id, T0), -EBADMSG);
    val[0] = 1;
    REQUIRE(sx_storage_put(fx.store, key, sizeof key, val, vlen - 1, NULL) == 0);
    CHECK_INT(sx_auth_token_get(fx.auth, info.id, &p), -EBADMSG);
    sx_storage_free(val);
    sx_auth_token_plaintext_free(tok);
    fx_close(&fx);
}

static void storage_failure_is_unavailable_not_unauthorized(void)
{
    fixture fx;
    fx_open(&fx);
    char *tok = NULL;
    sx_auth_token p, info;
    fx_mint(&fx, "acme", NULL, NULL, SX_AUTH_ROLE_OWNER, 0, &tok, &info);
    fx_fail_storage(&fx, true);
    CHECK_INT(fx_verify(&fx, tok, T0, &p), SX_AUTH_EUNAVAILABLE);
    CHECK(!sx_auth_is_unauthorized(SX_AUTH_EUNAVAILABLE));
    char *tok2 = NULL;
    sx_auth_token_spec spec = {.org = "acme", .role = SX_AUTH_ROLE_VIEWER};
    CHECK(sx_auth_token_create(fx.auth, &spec, T0, &tok2, NULL) < 0);
    CHECK(tok2 == NULL);
    CHECK(sx_auth_token_revoke(fx.auth, info.id, T0) < 0);
    CHECK(sx_auth_token_get(fx.auth, info.id, &p) < 0);
    sx_auth_token_plaintext_free(tok);
    fx_close(&fx);
}

/* Search every regular file below dir for needle. */
static bool dir_contains(const char *dir, const void *needle, size_t nlen)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            found = dir_contains(path, needle, nlen);
        } else if (S_ISREG(st.st_mode)) {
            size_t len = 0;
            char *data = sx_test_read_file(path, &len);
            if (data)
                found = sx_test_memmem(data, len, needle, nlen);
            free(data);
        }
    }
    closedir(d);
    return found;
}

static void storage_never_holds_a_plaintext_token(void)
{
    fixture fx;
    fx_open(&fx);
    char *toks[4];
    unsigned char secrets[4][32];
    unsigned char hash0[32];
    for (int i = 0; i < 4; i++) {
        sx_auth_token info;
        fx_mint(&fx, "acme", i & 1 ? "web" : NULL, NULL, SX_AUTH_ROLE_OWNER, 0, &toks[i], &info);
        size_t n = 0;
        REQUIRE(sodium_base642bin(secrets[i], 32, toks[i] + 37, 43, NULL, &n, NULL,
                                  sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0);
        if (i == 1)
            REQUIRE(sx_auth_token_revoke(fx.auth, info.id, T0) == 0);
        if (i == 0) {
            char key[2 + SX_AUTH_ID_LEN];
            memcpy(key, "t/", 2);
            memcpy(key + 2, info.id, SX_AUTH_ID_LEN);
            void *val = NULL;
            size_t vlen = 0;
            REQUIRE(sx_storage_get(fx.store, key, sizeof key, &val, &vlen, NULL) == 0);
            memcpy(hash0, (unsigned char *)val + 44, 32);
            sx_storage_free(val);
        }
    }
    /* Every record of the store, keys and values. */
    sx_storage_iter *it = NULL;
    REQUIRE(sx_storage_iter_new(fx.store, NULL, 0, NULL, 0, 0, &it) == 0);
    const void *k, *v;
    size_t klen, vlen, records = 0;
    while (sx_storage_iter_next(it, &k, &klen, &v, &vlen, NULL) == 0) {
        records++;
        for (int i = 0; i < 4; i++) {
            CHECK(!sx_test_memmem(v, vlen, toks[i], SX_AUTH_TOKEN_LEN));
            CHECK(!sx_test_memmem(v, vlen, toks[i] + 37, 43));
            CHECK(!sx_test_memmem(v, vlen, secrets[i], 32));
            CHECK(!sx_test_memmem(v, vlen, secrets[i], 8));
            CHECK(!sx_test_memmem(k, klen, toks[i] + 37, 43));
        }
    }
    sx_storage_iter_free(it);
    CHECK_INT(records, 4);

    if (fx.dir) {
        /* File-based backend: close (flushes) and grep every file. The stored hash is the positive
         * control that the grep sees record bytes at all. Its middle is searched: table blocks are
         * compressed, and the compressor may fold a random string's first or last bytes into a
         * copy of neighbouring bytes. */
        fx_close_storage(&fx);
        CHECK(dir_contains(fx.dir, hash0 + 4, sizeof hash0 - 8));
        for (int i = 0; i < 4; i++) {
            CHECK(!dir_contains(fx.dir, toks[i] + 37, 43));
            CHECK(!dir_contains(fx.dir, secrets[i], 32));
            CHECK(!dir_contains(fx.dir, secrets[i], 12));
        }
    }
    for (int i = 0; i < 4; i++)
        sx_auth_token_plaintext_free(toks[i]);
    sodium_memzero(secrets, sizeof secrets);
    fx_close(&fx);
}

static void handle_rejects_bad_arguments(void)
{
    fixture fx;
    fx_open(&fx);
    sx_auth *a = NULL;
    CHECK_INT(sx_auth_new(NULL, fx.key, 32, &a), -EINVAL);
    CHECK_INT(sx_auth_new(fx.store, fx.key, 16, &a), -EINVAL);
    CHECK_INT(sx_auth_new(fx.store, NULL, 32, &a), -EINVAL);
    CHECK(a == NULL);
    sx_auth_token p;
    CHECK_INT(sx_auth_verify(NULL, fx.cache, "x", 1, T0, &p), -EINVAL);
    CHECK_INT(sx_auth_verify(fx.auth, NULL, "x", 1, T0, &p), -EINVAL);
    sx_auth_free(NULL);
    sx_auth_cache *c = NULL;
    CHECK_INT(sx_auth_cache_new(0, &c), -EINVAL);
    sx_auth_cache_free(NULL);
    fx_close(&fx);
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"create_then_verify_round_trip", create_then_verify_round_trip},
        {"token_format_is_prefix_hex_id_and_base64url_secret", token_format_is_prefix_hex_id_and_base64url_secret},
        {"wrong_secret_and_unknown_id_are_unauthorized", wrong_secret_and_unknown_id_are_unauthorized},
        {"malformed_headers_are_rejected_without_storage_reads", malformed_headers_are_rejected_without_storage_reads},
        {"bearer_scheme_is_case_insensitive", bearer_scheme_is_case_insensitive},
        {"expired_token_is_unauthorized", expired_token_is_unauthorized},
        {"create_rejects_invalid_specs", create_rejects_invalid_specs},
        {"get_and_revoke_by_id", get_and_revoke_by_id},
        {"list_shows_every_token_and_never_a_hash", list_shows_every_token_and_never_a_hash},
        {"record_layout_is_versioned_at_t_slash_id", record_layout_is_versioned_at_t_slash_id},
        {"storage_failure_is_unavailable_not_unauthorized", storage_failure_is_unavailable_not_unauthorized},
        {"storage_never_holds_a_plaintext_token", storage_never_holds_a_plaintext_token},
        {"handle_rejects_bad_arguments", handle_rejects_bad_arguments},
    };
    fprintf(stderr, "backend: %s\n", fx_backend());
    return sx_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
