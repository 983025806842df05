/*
 * bytes.h - big-endian integers in byte buffers: the one encoding every stored record, every
 * wrapped key and every backup manifest uses for its numbers.
 *
 * Header only; no dependencies. p must point at 2, 4 or 8 readable (get) or writable (put) bytes;
 * no alignment is assumed.
 */
#ifndef SX_COMMON_BYTES_H
#define SX_COMMON_BYTES_H

#include <stdint.h>

static inline void sx_be16_put(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline uint16_t sx_be16_get(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline void sx_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t sx_be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void sx_be64_put(uint8_t *p, uint64_t v)
{
    sx_be32_put(p, (uint32_t)(v >> 32));
    sx_be32_put(p + 4, (uint32_t)v);
}

static inline uint64_t sx_be64_get(const uint8_t *p)
{
    return (uint64_t)sx_be32_get(p) << 32 | sx_be32_get(p + 4);
}

#endif /* SX_COMMON_BYTES_H */
