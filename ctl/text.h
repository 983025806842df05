/*
 * text.h - a growing text whose buffer is wiped whenever it grows or is freed (text.c): answers
 * that may hold values (http_wire.h) and what is built from them (envmap.h) are kept in one, so
 * no copy of a value is left behind in freed memory by realloc.
 */
#ifndef SX_CTL_TEXT_H
#define SX_CTL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ctl_text {
    char *data; /* NUL-terminated once anything was appended (even nothing), malloc'd */
    size_t len, cap;
    bool failed; /* out of memory: the text is incomplete */
} ctl_text;

/* Append n bytes of p (n may be 0: the buffer then exists and holds ""); on failure t->failed is
 * set and nothing more is appended. */
void ctl_text_add(ctl_text *t, const char *p, size_t n);
/* Wipe and free the buffer and reset t. */
void ctl_text_free(ctl_text *t);

#endif /* SX_CTL_TEXT_H */
