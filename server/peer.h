/*
 * peer.h - who the client is when it talks through load balancers: the PROXY protocol header
 * (v1 text and v2 binary) and X-Forwarded-For, believed only from [server] trusted_proxies.
 *
 * The functions here are pure (no h2o, no sockets, no logging) so that they can be tested alone;
 * the accept-time glue and the per-request client address are in server_internal.h. Any thread.
 */
#ifndef SX_PEER_H
#define SX_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"

#define SX_PEER_PROXY_MAX 2048 /* largest PROXY header read (v1 is at most 107 bytes; v2 TLVs vary) */

/*
 * Does buf start with a PROXY protocol signature ("PROXY " or the 12-byte v2 signature)? 1 yes,
 * -1 no, 0 when the len bytes seen so far are the start of a signature and more are needed.
 */
int sx_peer_proxy_sniff(const uint8_t *buf, size_t len);

/*
 * Parse a PROXY protocol header (v1 or v2) at the start of buf. Returns 1 when it is complete:
 * *ret_consumed is its length, and *ret_addr / *ret_len the client (source) address - *ret_len is
 * 0 when the header names none (v1 UNKNOWN, v2 LOCAL, v2 UNSPEC or UNIX families), so the TCP peer
 * stays the client. 0 when more bytes are needed; -1 when buf is not a valid header. Strict: v1
 * addresses must be numeric and of the family named, ports decimal 0..65535, one space between
 * fields, CRLF within 107 bytes; v2 version 2, command LOCAL or PROXY, a length that holds the
 * family's addresses and at most SX_PEER_PROXY_MAX bytes in all. Outputs are written only on 1.
 */
int sx_peer_proxy_parse(const uint8_t *buf, size_t len, struct sockaddr_storage *ret_addr, socklen_t *ret_len,
                        size_t *ret_consumed);

/* Is sa (AF_INET or AF_INET6) in cfg's trusted_proxies? False for other families and NULL. */
bool sx_peer_trusted(const sx_config *cfg, const struct sockaddr *sa);

/* One X-Forwarded-For field value (not NUL-terminated). */
typedef struct sx_peer_field {
    const char *base;
    size_t len;
} sx_peer_field;

/*
 * The client behind peer (the TCP peer, or the address its PROXY header named): when peer is a
 * trusted proxy, the rightmost address of the X-Forwarded-For fields (in the order received,
 * read as one comma-separated list) that is not itself a trusted proxy; the leftmost when all
 * are; and the nearest trusted hop when an entry on the way is not an address ("unknown",
 * garbage). When peer is not trusted, peer itself: its X-Forwarded-For is ignored. Entries may be
 * IPv4, IPv6, "[IPv6]" with an optional ":port", or "IPv4:port". *ret gets the address (port 0
 * for one taken from X-Forwarded-For); returns its length, 0 when peer is NULL.
 */
socklen_t sx_peer_client(const sx_config *cfg, const struct sockaddr *peer, socklen_t peer_len,
                         const sx_peer_field *xff, size_t nxff, struct sockaddr_storage *ret);

#endif /* SX_PEER_H */
