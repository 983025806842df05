/*
 * test_ctl.h - the tests of `secretsctl run` (test_ctl_run.c), run by test_ctl.c's main().
 */
#ifndef SX_TEST_CTL_H
#define SX_TEST_CTL_H

void run_execs_in_place_with_the_values(void);
void run_refuses_or_skips_invalid_names_and_keeps_existing_with_no_override(void);
void run_watch_restarts_on_change_and_forwards_signals(void);
void run_fallback_used_only_when_unreachable_and_refused_when_old_or_tampered(void);

#endif
