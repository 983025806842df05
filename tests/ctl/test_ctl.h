/*
 * test_ctl.h - the tests of `secretsctl run` (test_ctl_run.c) and of its HTTP transport
 * (test_ctl_wire.c), run by test_ctl.c's main().
 */
#ifndef SX_TEST_CTL_H
#define SX_TEST_CTL_H

void run_execs_in_place_with_the_values(void);
void run_refuses_or_skips_invalid_names_and_keeps_existing_with_no_override(void);
void run_watch_restarts_on_change_and_forwards_signals(void);
void run_fallback_used_only_when_unreachable_and_refused_when_old_or_tampered(void);

/* secretsctl's transport against fake_api.py (test_ctl_wire.c) */
void wire_http11_reads_chunked_and_read_to_close_answers(void);
void wire_tls_server_offering_only_http11_is_spoken_to_in_http11(void);
void wire_certificate_for_another_name_fails_without_fallback(void);
void wire_oversized_heads_and_bodies_are_refused(void);

#endif
