/*
 * test_policy.c - roles x permissions, scopes x targets, and the CLI parsing helpers. Pure
 * functions: no storage involved.
 */
#include "auth/auth.h"
#include "testutil.h"

#include <errno.h>
#include <stdint.h>

static sx_auth_token principal(sx_auth_role role, const char *org, const char *project, const char *env)
{
    sx_auth_token p;
    memset(&p, 0, sizeof p);
    p.role = role;
    snprintf(p.org, sizeof p.org, "%s", org);
    snprintf(p.project, sizeof p.project, "%s", project);
    snprintf(p.env, sizeof p.env, "%s", env);
    return p;
}

static void role_permission_matrix(void)
{
    const unsigned perms[] = {SX_AUTH_PERM_READ, SX_AUTH_PERM_WRITE, SX_AUTH_PERM_SET_VALUE, SX_AUTH_PERM_REVEAL};
    /* rows: viewer, editor, owner, service; columns: read, write, set-value, reveal. */
    const bool allowed[4][4] = {
        {true, false, false, false},
        {true, true, false, false},
        {true, true, true, true},
        {true, false, false, true},
    };
    for (int r = 0; r < 4; r++) {
        sx_auth_token p = principal((sx_auth_role)(r + 1), "acme", "", "");
        for (int c = 0; c < 4; c++) {
            int rc = sx_auth_check(&p, perms[c], "acme", "web", "prod");
            if (rc != (allowed[r][c] ? 0 : SX_AUTH_EFORBIDDEN))
                fprintf(stderr, "role %s perm %s: %d\n", sx_auth_role_name(p.role), sx_auth_perm_name(perms[c]), rc);
            CHECK_INT(rc, allowed[r][c] ? 0 : SX_AUTH_EFORBIDDEN);
        }
    }
    /* A mask needs every bit; an empty mask or an unknown role is never granted. */
    sx_auth_token owner = principal(SX_AUTH_ROLE_OWNER, "acme", "", "");
    sx_auth_token service = principal(SX_AUTH_ROLE_SERVICE, "acme", "", "");
    CHECK_INT(sx_auth_check(&owner, SX_AUTH_PERM_READ | SX_AUTH_PERM_REVEAL, "acme", "p", "e"), 0);
    CHECK_INT(sx_auth_check(&service, SX_AUTH_PERM_READ | SX_AUTH_PERM_WRITE, "acme", "p", "e"), SX_AUTH_EFORBIDDEN);
    CHECK_INT(sx_auth_check(&owner, 0, "acme", "p", "e"), SX_AUTH_EFORBIDDEN);
    CHECK_INT(sx_auth_check(&owner, 1u << 9, "acme", "p", "e"), SX_AUTH_EFORBIDDEN);
    sx_auth_token bogus = principal((sx_auth_role)77, "acme", "", "");
    CHECK_INT(sx_auth_check(&bogus, SX_AUTH_PERM_READ, "acme", "p", "e"), SX_AUTH_EFORBIDDEN);
    CHECK_INT(sx_auth_check(NULL, SX_AUTH_PERM_READ, "acme", "p", "e"), -EINVAL);
    CHECK_INT(sx_auth_check(&owner, SX_AUTH_PERM_READ, NULL, "p", "e"), -EINVAL);
    owner.revoked = true;
    CHECK_INT(sx_auth_check(&owner, SX_AUTH_PERM_READ, "acme", "p", "e"), SX_AUTH_EFORBIDDEN);
}

static void scope_matrix(void)
{
    const sx_auth_token scopes[] = {
        principal(SX_AUTH_ROLE_OWNER, "acme", "", ""),
        principal(SX_AUTH_ROLE_OWNER, "acme", "web", ""),
        principal(SX_AUTH_ROLE_OWNER, "acme", "web", "prod"),
    };
    const struct {
        const char *o, *p, *e;
        bool covered[3]; /* by org-only, project, env token */
    } targets[] = {
        {"acme", "web", "prod", {true, true, true}},     /* in scope for all */
        {"acme", "web", "dev", {true, true, false}},     /* other env */
        {"acme", "api", "prod", {true, false, false}},   /* other project */
        {"other", "web", "prod", {false, false, false}}, /* other org */
        {"ACME", "web", "prod", {false, false, false}},  /* names are case-sensitive */
        {"acme", "WEB", "prod", {true, false, false}},
        {"acme", "web", "prod2", {true, true, false}}, /* no prefix matching */
        {"acme", "we", "prod", {true, false, false}},
        {"acme", NULL, NULL, {true, false, false}}, /* org-wide operation */
        {"acme", "web", NULL, {true, true, false}}, /* project-wide operation */
    };
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        for (int s = 0; s < 3; s++) {
            int want = targets[t].covered[s] ? 0 : SX_AUTH_EFORBIDDEN;
            int rc = sx_auth_check(&scopes[s], SX_AUTH_PERM_READ, targets[t].o, targets[t].p, targets[t].e);
            if (rc != want)
                fprintf(stderr, "target %zu scope %d: %d\n", t, s, rc);
            CHECK_INT(rc, want);
        }
    }
}

static void role_names_parse_and_print(void)
{
    const char *names[] = {"viewer", "editor", "owner", "service"};
    for (int i = 0; i < 4; i++) {
        sx_auth_role r = 0;
        CHECK_INT(sx_auth_role_parse(names[i], &r), 0);
        CHECK_INT(r, i + 1);
        CHECK_STR(sx_auth_role_name(r), names[i]);
    }
    sx_auth_role r = SX_AUTH_ROLE_VIEWER;
    CHECK_INT(sx_auth_role_parse("Owner", &r), -EINVAL);
    CHECK_INT(sx_auth_role_parse("admin", &r), -EINVAL);
    CHECK_INT(sx_auth_role_parse("", &r), -EINVAL);
    CHECK_INT(sx_auth_role_parse("owner ", &r), -EINVAL);
    CHECK_INT(sx_auth_role_parse(NULL, &r), -EINVAL);
    CHECK_INT(r, SX_AUTH_ROLE_VIEWER);
    CHECK(sx_auth_role_name(0) == NULL);
    CHECK(sx_auth_role_name(5) == NULL);
    CHECK_INT(sx_auth_role_perms(0), 0);
    CHECK_STR(sx_auth_perm_name(SX_AUTH_PERM_SET_VALUE), "secrets:set-value");
    CHECK_STR(sx_auth_perm_name(SX_AUTH_PERM_REVEAL), "secrets:reveal");
    CHECK(sx_auth_perm_name(SX_AUTH_PERM_READ | SX_AUTH_PERM_WRITE) == NULL);
}

static void ttl_parse_accepts_units_within_ten_years(void)
{
    const struct {
        const char *s;
        int64_t ms;
    } good[] = {
        {"1s", 1000},
        {"90s", 90000},
        {"15m", 900000},
        {"12h", 43200000},
        {"30d", 2592000000LL},
        {"3650d", SX_AUTH_TTL_MAX_MS},
        {"87600h", SX_AUTH_TTL_MAX_MS},
        {"07d", 604800000LL},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = 0;
        CHECK_INT(sx_auth_ttl_parse(good[i].s, &ms), 0);
        CHECK_INT(ms, good[i].ms);
    }
    const char *bad[] = {"",
                         "30",
                         "d",
                         "0d",
                         "0s",
                         "3651d",
                         "-1d",
                         "+1d",
                         "1.5d",
                         "1w",
                         "1 d",
                         " 1d",
                         "1d ",
                         "1dd",
                         "1D",
                         "1y",
                         "99999999999d",
                         "1e3s",
                         "0x10s",
                         "315360001s",
                         "5256001m",
                         "87601h",
                         "18446744073709551617s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        int rc = sx_auth_ttl_parse(bad[i], &ms);
        if (rc != -EINVAL)
            fprintf(stderr, "ttl \"%s\" accepted\n", bad[i]);
        CHECK_INT(rc, -EINVAL);
        CHECK_INT(ms, 42);
    }
    int64_t ms;
    CHECK_INT(sx_auth_ttl_parse(NULL, &ms), -EINVAL);
}

static void names_labels_and_ids_are_validated(void)
{
    char n64[65], n65[66];
    memset(n64, 'a', 64);
    n64[64] = '\0';
    memset(n65, 'a', 65);
    n65[65] = '\0';
    const char *good[] = {"a", "A", "0", "acme", "my-org.prod_1", n64, "a..", "a-"};
    const char *bad[] = {"", "-a", ".a", "_a", "a/b", "a b", "a%20", n65, "\xc3\xa9", "a\n", "..", "."};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK(sx_auth_name_valid(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!sx_auth_name_valid(bad[i]));
    CHECK(!sx_auth_name_valid(NULL));

    char l128[129], l129[130];
    memset(l128, 'x', 128);
    l128[128] = '\0';
    memset(l129, 'x', 129);
    l129[129] = '\0';
    const char *lgood[] = {"", "CI deploy key", "caf\xc3\xa9", "\xe2\x82\xac 5", "\xf0\x9f\x94\x91", l128, "~!@#"};
    const char *lbad[] = {
        "tab\t",
        "nl\n",
        "del\x7f",
        "c1 \xc2\x85",
        "overlong \xc0\xaf",
        "surrogate \xed\xa0\x80",
        "cut \xe2\x82",
        "bad \xff",
        "above \xf4\x90\x80\x80",
        l129,
        "esc\x1b[31m",
    };
    for (size_t i = 0; i < sizeof lgood / sizeof lgood[0]; i++)
        CHECK(sx_auth_label_valid(lgood[i]));
    for (size_t i = 0; i < sizeof lbad / sizeof lbad[0]; i++) {
        if (sx_auth_label_valid(lbad[i]))
            fprintf(stderr, "label %zu accepted\n", i);
        CHECK(!sx_auth_label_valid(lbad[i]));
    }

    CHECK(sx_auth_id_valid("0123456789abcdef0123456789abcdef"));
    CHECK(!sx_auth_id_valid("0123456789ABCDEF0123456789abcdef"));
    CHECK(!sx_auth_id_valid("0123456789abcdef0123456789abcde"));
    CHECK(!sx_auth_id_valid("0123456789abcdef0123456789abcdef0"));
    CHECK(!sx_auth_id_valid(NULL));
}

static void every_code_has_a_sentence(void)
{
    const int codes[] = {SX_AUTH_EMALFORMED,
                         SX_AUTH_EBADTOKEN,
                         SX_AUTH_EEXPIRED,
                         SX_AUTH_EREVOKED,
                         SX_AUTH_EFORBIDDEN,
                         SX_AUTH_EUNAVAILABLE,
                         SX_AUTH_ERATELIMITED,
                         -EINVAL,
                         -ENOENT,
                         -ENOMEM,
                         -EBADMSG,
                         -EIO};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = sx_auth_strerror(codes[i]);
        CHECK(s != NULL && *s);
        CHECK(strcmp(s, "unknown error") != 0);
    }
    CHECK(sx_auth_is_unauthorized(SX_AUTH_EMALFORMED));
    CHECK(sx_auth_is_unauthorized(SX_AUTH_EREVOKED));
    CHECK(!sx_auth_is_unauthorized(SX_AUTH_EFORBIDDEN));
    CHECK(!sx_auth_is_unauthorized(SX_AUTH_EUNAVAILABLE));
    CHECK(!sx_auth_is_unauthorized(SX_AUTH_ERATELIMITED));
    CHECK(!sx_auth_is_unauthorized(0));
    CHECK(!sx_auth_is_unauthorized(-EIO));
}

int main(int argc, char **argv)
{
    static const sx_test tests[] = {
        {"role_permission_matrix", role_permission_matrix},
        {"scope_matrix", scope_matrix},
        {"role_names_parse_and_print", role_names_parse_and_print},
        {"ttl_parse_accepts_units_within_ten_years", ttl_parse_accepts_units_within_ten_years},
        {"names_labels_and_ids_are_validated", names_labels_and_ids_are_validated},
        {"every_code_has_a_sentence", every_code_has_a_sentence},
    };
    return sx_test_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
