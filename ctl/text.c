/*
 * text.c - the wiped growing text of text.h.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/text.h"

void ctl_text_add(ctl_text *t, const char *p, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *nd = malloc(cap);
        if (!nd) {
            t->failed = true;
            return;
        }
        if (t->data) {
            memcpy(nd, t->data, t->len);
            sodium_memzero(t->data, t->cap);
            free(t->data);
        }
        t->data = nd;
        t->cap = cap;
    }
    memcpy(t->data + t->len, p, n);
    t->len += n;
    t->data[t->len] = '\0';
}

void ctl_text_free(ctl_text *t)
{
    if (t->data) {
        sodium_memzero(t->data, t->cap);
        free(t->data);
    }
    memset(t, 0, sizeof(*t));
}
