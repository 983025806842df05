/*
 * api_suite.h - what the files of test_api share: the one server of the run, its owner token, and
 * the request and response helpers (api_suite.c). The tests themselves are in test_api.c (the
 * endpoints one by one, values), test_api_races.c (concurrency, conditional requests, pagination)
 * and test_api_input.c (authentication order, rule errors, the bad-input table); test_api.c's
 * main() runs them all in order.
 */
#ifndef SX_TEST_API_SUITE_H
#define SX_TEST_API_SUITE_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_tree.h>

#include "harness.h"
#include "testutil.h"

#define MAX_VALUE 65536             /* the server's default max_value_bytes */
#define MAX_BODY  1048576           /* the server's default max_body_bytes */
#define ENVS      "/acme/web/envs/" /* every test path starts here */

extern sx_srv g_srv;
extern bool g_running;
extern const char *g_backend;
extern char *g_auth; /* "Authorization: Bearer <owner token>" */

/* Start g_srv with opts and mint the owner token g_auth. 0; 77 when the backend's server is not
 * installed (the suite is skipped); 1 after printing the failed count line. */
int sx_api_suite_start(const sx_srv_opts *opts);
/* The main() of a suite program: `PROGRAM [--backend memory|rocksdb|postgres] [test names...]`
 * starts g_srv with opts (its backend from the arguments) and the owner token, runs the tests
 * (sx_test_main) and stops the server if a test did not. Returns the exit status. */
int sx_api_suite_main(const sx_test *tests, size_t n, int argc, char **argv, sx_srv_opts opts);
/* A suite's last test: the server exits 0 at SIGTERM. */
void server_exits_0_at_sigterm(void);

extern const sx_proto k_protos[3];
#define NPROTOS (sizeof(k_protos) / sizeof(k_protos[0]))

typedef struct par_req {
    const char *method;
    char path[512];
    const char *body;  /* sent as application/json; NULL = none */
    const char *extra; /* one more header line or NULL */
    long status;       /* out */
    sx_test_buf resp;  /* out: the answer's body (data malloc'd, NUL-terminated) */
} par_req;

/* Checks on response text and JSON trees. */
const char *proto_name(sx_proto p);
bool utf8_ok(const unsigned char *s, size_t len);
bool is_timestamp(const char *s);
bool etag_ok(const char *s);
bool header_is(const sx_resp *r, const char *name, const char *want);
unsigned hex4(const char *p);
size_t utf8_put(char *out, unsigned cp);
char *json_string_of(const char *text, const char *key, size_t *ret_len);
yajl_val jparse(const sx_resp *r);
yajl_val jget(yajl_val obj, const char *key);
const char *jstr(yajl_val obj, const char *key);
bool exact_keys(yajl_val obj, const char *const *keys);
bool secret_val_ok(yajl_val v, const char *name, const char *desc, bool has_value);
bool secret_resp_ok(const sx_resp *r, long status, const char *name, const char *desc, bool has_value);
char *repeat(const char *pre, const char *unit, size_t times, const char *post);
/* Requests with the owner token (api_len: a body of len bytes), and what they build on. */
void api_len(sx_resp *r, sx_proto proto, const char *method, const char *path, const char *body, size_t len,
             const char *extra);
void api(sx_resp *r, sx_proto proto, const char *method, const char *path, const char *body, const char *extra);
const char *spath(char *buf, size_t cap, const char *env, const char *name, const char *tail);
char *secret_body(const char *name, const char *desc_json);
long create(const char *env, const char *name, const char *desc_json);
long set_value(const char *env, const char *name, const char *value_json);
void etag_of(const char *env, const char *name, char *buf, size_t cap);
char *snapshot(const char *env);
/* The value of version (0 = the current one) as text, or the status as "#404"; a version's answer
 * must name that version. */
void reveal_of(sx_proto proto, const char *env, const char *name, unsigned version, char *out, size_t cap);
#define EXPECT_REVEAL(proto, env, name, version, want)                                                                 \
    do {                                                                                                               \
        char got_[512];                                                                                                \
        reveal_of(proto, env, name, version, got_, sizeof(got_));                                                      \
        CHECK_STR(got_, want);                                                                                         \
    } while (0)
/* Many requests at once (curl multi; multiplexed over one h2 connection or one connection each). */
void run_parallel(par_req *q, size_t n, bool multiplexed);
void par_free(par_req *q, size_t n);

/* The tests, in the order main() runs them. */
void create_answers_201_with_location_etag_and_a_fresh_secret(void);
void create_of_an_existing_name_is_409_already_exists(void);
void get_answers_the_secret_and_404_not_found_for_unknown_names(void);
void list_is_sorted_metadata_and_an_empty_env_is_an_empty_array(void);
void update_replaces_the_description_and_bumps_updated_at(void);
void delete_answers_deleted_body_and_then_404(void);
void set_value_answers_name_has_value_updated_at_and_404_for_unknown(void);
void reveal_answers_the_value_with_no_store_and_404_without_one(void);
void values_map_holds_exactly_the_secrets_that_have_a_value(void);
void values_round_trip_byte_exact_up_to_max_value_bytes(void);
void values_never_appear_in_list_get_or_write_answers(void);
void recreated_name_starts_fresh_without_value_and_with_new_created_at(void);
void concurrent_creates_of_one_name_give_one_201_and_31_409(void);
void concurrent_set_value_and_delete_never_leave_a_value_behind(void);
void concurrent_set_values_leave_one_of_the_values(void);
void if_match_prevents_lost_updates(void);
void if_none_match_star_on_create_fails_when_the_name_exists(void);
void lists_show_every_write_at_once(void);
void pagination_follows_link_next_until_the_end(void);
void no_token_is_401_with_www_authenticate_even_for_unknown_names(void);
void wrong_methods_are_405_with_allow_and_unknown_routes_404(void);
void longest_names_at_every_level_work_end_to_end(void);
void rule_errors_name_the_field_or_parameter(void);
void bad_input_table_gets_4xx_json_errors_and_changes_nothing(void);

#endif
