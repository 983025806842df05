/*
 * khash.h - just enough of klib's khash for h2o's <h2o/http2_internal.h>, which includes it.
 *
 * Debian's h2o development package installs http2_internal.h but not the klib header it was built
 * with, and the Debian package that ships klib's khash (libhts-dev) cannot be installed beside
 * libcurl's OpenSSL flavour. What h2o's header needs from it is the type of the stream table
 * (KHASH_MAP_INIT_INT64) and kh_get / kh_end / kh_val for h2o_http2_conn_get_stream(). The table
 * itself is built and changed only inside libh2o; here it is read, never written.
 *
 * The layout is klib 0.2.8's, the version h2o 2.2.5 bundles: four counters, then the flags (two
 * bits per bucket: empty, deleted), the keys and the values. kh_get here finds a key by walking
 * the buckets rather than by klib's hash probe, so it depends on that layout only, not on the
 * hash function; a stream table holds at most a few hundred buckets.
 */
#ifndef SX_H2O_KHASH_H
#define SX_H2O_KHASH_H

#include <stdint.h>

typedef uint32_t khint32_t;
typedef uint64_t khint64_t;
typedef khint32_t khint_t;
typedef khint_t khiter_t;

#define khash_t(name) kh_##name##_t

/* Bucket i holds a key: neither of its two flag bits (empty, deleted) is set. */
#define kh_exist(h, i)       (!(((h)->flags[(i) >> 4] >> (((i)&0xfU) << 1)) & 3))
#define kh_end(h)            ((h)->n_buckets)
#define kh_val(h, i)         ((h)->vals[i])
#define kh_get(name, h, key) kh_get_##name(h, key)

#define KHASH_MAP_INIT_INT64(name, khval_t)                                                                            \
    typedef struct kh_##name##_s {                                                                                     \
        khint_t n_buckets, size, n_occupied, upper_bound;                                                              \
        khint32_t *flags;                                                                                              \
        khint64_t *keys;                                                                                               \
        khval_t *vals;                                                                                                 \
    } kh_##name##_t;                                                                                                   \
    static inline khint_t kh_get_##name(const kh_##name##_t *h, khint64_t key)                                         \
    {                                                                                                                  \
        for (khint_t i = 0; h && i < h->n_buckets; i++)                                                                \
            if (kh_exist(h, i) && h->keys[i] == key)                                                                   \
                return i;                                                                                              \
        return h ? h->n_buckets : 0;                                                                                   \
    }

/* Run code with var bound to each value in the table. */
#define kh_foreach_value(h, var, code)                                                                                 \
    do {                                                                                                               \
        for (khint_t kh_i_ = 0; (h) && kh_i_ < (h)->n_buckets; kh_i_++) {                                              \
            if (!kh_exist(h, kh_i_))                                                                                   \
                continue;                                                                                              \
            (var) = (h)->vals[kh_i_];                                                                                  \
            code;                                                                                                      \
        }                                                                                                              \
    } while (0)

#endif
