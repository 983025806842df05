/*
 * http_wire_h1.c - HTTP/1.1 for http_wire.h: `--http1.1`, https:// servers that do not choose h2
 * over ALPN, and the admin socket. One request at a time, no pipelining, no Expect.
 *
 * The answer is read strictly: a status line "HTTP/1.x NNN reason", header lines of a token name,
 * a colon and a value without control characters (no obsolete line folding), the head within
 * CTL_WIRE_HEAD_MAX bytes. The body is delimited by Content-Length (digits only; copies must
 * agree), by chunked transfer coding (hex sizes, extensions ignored, trailers read and dropped,
 * each line within CHUNK_LINE_MAX) or, with neither, by the end of the connection; both at once,
 * or any other transfer coding, is refused. 1xx interim answers are skipped.
 */
#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl/http_wire_internal.h"

/* Bytes of a chunk-size line or a trailer line, CRLF included. */
#define CHUNK_LINE_MAX 4096

/* Read more bytes into w->in, moving what is unread to the front first. 1 read, 0 the peer
 * closed, -1 failed (r->err set). */
static int fill(ctl_wire *w, ctl_wire_resp *r, bool *got_any)
{
    if (w->in_off > 0) {
        memmove(w->in, w->in + w->in_off, w->in_len - w->in_off);
        w->in_len -= w->in_off;
        w->in_off = 0;
    }
    if (w->in_len == sizeof(w->in)) {
        ctl_wire_fail(r, CTL_WIRE_TOO_BIG, "the answer's head is over %u bytes", CTL_WIRE_HEAD_MAX);
        return -1;
    }
    ssize_t k = ctl_wire_read(w, w->in + w->in_len, sizeof(w->in) - w->in_len, r);
    if (k < 0)
        return -1;
    if (k == 0)
        return 0;
    *got_any = true;
    w->in_len += (size_t)k;
    return 1;
}

static bool is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* What the head says about the body and the connection. */
typedef struct head {
    int status;
    bool chunked, has_length, close;
    unsigned long long length;
} head;

static bool has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i + tl <= n; i++)
        if (strncasecmp(v + i, tok, tl) == 0 && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
            (i + tl == n || v[i + tl] == ',' || v[i + tl] == ' '))
            return true;
    return false;
}

/* Parse the head in p[0..n) (ending with its blank line). 0, or -1 with r->err set. */
static int parse_head(const char *p, size_t n, head *h, ctl_wire_resp *r)
{
    memset(h, 0, sizeof(*h));
    r->etag[0] = '\0';
    const char *end = p + n, *eol = memchr(p, '\r', n);
    if (!eol || eol - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)p[7]) || p[8] != ' ' ||
        !isdigit((unsigned char)p[9]) || !isdigit((unsigned char)p[10]) || !isdigit((unsigned char)p[11]) ||
        (eol - p > 12 && p[12] != ' ')) {
        ctl_wire_fail(r, CTL_WIRE_MALFORMED, "the server's answer has no valid HTTP/1.1 status line");
        return -1;
    }
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (h->status < 100) {
        ctl_wire_fail(r, CTL_WIRE_MALFORMED, "the server answered status %d", h->status);
        return -1;
    }
    h->close = p[7] == '0'; /* HTTP/1.0: no kept connection */
    for (const char *line = eol + 2; line < end;) {
        const char *le = memchr(line, '\r', (size_t)(end - line));
        if (!le || le + 1 >= end || le[1] != '\n') {
            ctl_wire_fail(r, CTL_WIRE_MALFORMED, "a header line of the answer does not end with CRLF");
            return -1;
        }
        if (le == line)
            break; /* the blank line */
        const char *colon = line;
        while (colon < le && is_tchar((unsigned char)*colon))
            colon++;
        if (colon == line || colon == le || *colon != ':') {
            ctl_wire_fail(r, CTL_WIRE_MALFORMED, "the answer holds an invalid header line");
            return -1;
        }
        const char *v = colon + 1, *ve = le;
        for (const char *c = v; c < ve; c++)
            if ((unsigned char)*c < 0x20 && *c != '\t') {
                ctl_wire_fail(r, CTL_WIRE_MALFORMED, "a header value of the answer holds a control character");
                return -1;
            }
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t nl = (size_t)(colon - line), vl = (size_t)(ve - v);
        if (nl == 14 && strncasecmp(line, "content-length", nl) == 0) {
            unsigned long long len = 0;
            if (vl == 0 || vl > 19) {
                ctl_wire_fail(r, CTL_WIRE_MALFORMED, "the answer's Content-Length is invalid");
                return -1;
            }
            for (size_t i = 0; i < vl; i++) {
                if (!isdigit((unsigned char)v[i])) {
                    ctl_wire_fail(r, CTL_WIRE_MALFORMED, "the answer's Content-Length is invalid");
                    return -1;
                }
                len = len * 10 + (unsigned)(v[i] - '0');
            }
            if (h->has_length && len != h->length) {
                ctl_wire_fail(r, CTL_WIRE_MALFORMED, "the answer has two different Content-Length lines");
                return -1;
            }
            h->has_length = true;
            h->length = len;
        } else if (nl == 17 && strncasecmp(line, "transfer-encoding", nl) == 0) {
            if (vl != 7 || strncasecmp(v, "chunked", 7) != 0 || h->chunked) {
                ctl_wire_fail(r, CTL_WIRE_MALFORMED, "the answer's transfer coding is not supported");
                return -1;
            }
            h->chunked = true;
        } else if (nl == 10 && strncasecmp(line, "connection", nl) == 0) {
            if (has_token(v, vl, "close"))
                h->close = true;
        } else if (nl == 4 && strncasecmp(line, "etag", nl) == 0) {
            if (vl < sizeof(r->etag)) {
                memcpy(r->etag, v, vl);
                r->etag[vl] = '\0';
            }
        }
        line = le + 2;
    }
    if (h->chunked && h->has_length) {
        ctl_wire_fail(r, CTL_WIRE_MALFORMED, "the answer has both Content-Length and chunked coding");
        return -1;
    }
    return 0;
}

/* Read the next line (CRLF-terminated, at most CHUNK_LINE_MAX bytes) of a chunked body into line
 * (NUL-terminated, CRLF dropped). 0, or -1 with r->err set. */
static int read_line(ctl_wire *w, ctl_wire_resp *r, char line[CHUNK_LINE_MAX], bool *got_any)
{
    for (;;) {
        char *s = w->in + w->in_off;
        size_t avail = w->in_len - w->in_off;
        char *lf = memchr(s, '\n', avail < CHUNK_LINE_MAX ? avail : CHUNK_LINE_MAX);
        if (lf) {
            if (lf == s || lf[-1] != '\r') {
                ctl_wire_fail(r, CTL_WIRE_MALFORMED, "a line of the chunked answer does not end with CRLF");
                return -1;
            }
            size_t l = (size_t)(lf - 1 - s);
            memcpy(line, s, l);
            line[l] = '\0';
            w->in_off += l + 2;
            return 0;
        }
        if (avail >= CHUNK_LINE_MAX) {
            ctl_wire_fail(r, CTL_WIRE_TOO_BIG, "a line of the chunked answer is over %d bytes", CHUNK_LINE_MAX);
            return -1;
        }
        int k = fill(w, r, got_any);
        if (k <= 0) {
            if (k == 0)
                ctl_wire_fail(r, CTL_WIRE_DROPPED, "the connection ended in the middle of the answer");
            return -1;
        }
    }
}

/* Take n body bytes (from the buffer, then the connection) into r. */
static int read_body_bytes(ctl_wire *w, ctl_wire_resp *r, unsigned long long n, size_t max, bool *got_any)
{
    while (n > 0) {
        if (w->in_off == w->in_len) {
            w->in_off = w->in_len = 0;
            int k = fill(w, r, got_any);
            if (k <= 0) {
                if (k == 0)
                    ctl_wire_fail(r, CTL_WIRE_DROPPED, "the connection ended in the middle of the answer");
                return -1;
            }
        }
        size_t avail = w->in_len - w->in_off, take = avail < n ? avail : (size_t)n;
        if (!ctl_wire_body_add(r, w->in + w->in_off, take, max))
            return -1;
        w->in_off += take;
        n -= take;
    }
    return 0;
}

static int read_chunked(ctl_wire *w, ctl_wire_resp *r, size_t max, bool *got_any)
{
    char line[CHUNK_LINE_MAX];
    for (;;) {
        if (read_line(w, r, line, got_any) != 0)
            return -1;
        unsigned long long size = 0;
        size_t i = 0;
        for (; isxdigit((unsigned char)line[i]); i++) {
            if (i >= 15) {
                ctl_wire_fail(r, CTL_WIRE_TOO_BIG, "a chunk of the answer is too big");
                return -1;
            }
            int c = tolower((unsigned char)line[i]);
            size = size * 16 + (unsigned)(isdigit(c) ? c - '0' : c - 'a' + 10);
        }
        if (i == 0 || (line[i] && line[i] != ';' && line[i] != ' ' && line[i] != '\t')) {
            ctl_wire_fail(r, CTL_WIRE_MALFORMED, "the answer holds an invalid chunk size");
            return -1;
        }
        if (size > max - r->body.len) {
            ctl_wire_fail(r, CTL_WIRE_TOO_BIG, "the answer's body is over %zu bytes", max);
            return -1;
        }
        if (size == 0)
            break;
        if (read_body_bytes(w, r, size, max, got_any) != 0 || read_line(w, r, line, got_any) != 0)
            return -1;
        if (line[0]) {
            ctl_wire_fail(r, CTL_WIRE_MALFORMED, "a chunk of the answer is longer than its size");
            return -1;
        }
    }
    /* Trailer lines until the blank one, within the head's limit in all. */
    size_t trailers = 0;
    for (;;) {
        if (read_line(w, r, line, got_any) != 0)
            return -1;
        if (!line[0])
            return 0;
        trailers += strlen(line) + 2;
        if (trailers > CTL_WIRE_HEAD_MAX) {
            ctl_wire_fail(r, CTL_WIRE_TOO_BIG, "the answer's trailers are over %u bytes", CTL_WIRE_HEAD_MAX);
            return -1;
        }
    }
}

/* Request line and headers into one buffer (wiped once sent: it holds the token). */
static char *build_request(ctl_wire *w, const char *method, const char *path, const ctl_wire_header *hdrs, size_t nhdrs,
                           const char *body, size_t body_len, size_t *ret_len, ctl_wire_resp *r)
{
    for (const char *c = path; *c; c++)
        if (*c <= ' ' || *c > '~') {
            ctl_wire_fail(r, CTL_WIRE_MALFORMED, "the request path holds a blank or control character");
            return NULL;
        }
    size_t cap = strlen(method) + strlen(path) + strlen(w->t.authority) + 96;
    for (size_t i = 0; i < nhdrs; i++)
        cap += strlen(hdrs[i].name) + strlen(hdrs[i].value) + 4;
    char *req = malloc(cap);
    if (!req) {
        ctl_wire_fail(r, CTL_WIRE_NOMEM, "out of memory");
        return NULL;
    }
    size_t n = (size_t)snprintf(req, cap, "%s %s HTTP/1.1\r\nhost: %s\r\n", method, path, w->t.authority);
    for (size_t i = 0; i < nhdrs; i++)
        n += (size_t)snprintf(req + n, cap - n, "%s: %s\r\n", hdrs[i].name, hdrs[i].value);
    if (body || strcmp(method, "GET") != 0)
        n += (size_t)snprintf(req + n, cap - n, "content-length: %zu\r\n", body ? body_len : 0);
    if (w->t.unix_path)
        n += (size_t)snprintf(req + n, cap - n, "connection: close\r\n");
    n += (size_t)snprintf(req + n, cap - n, "\r\n");
    *ret_len = n;
    return req;
}

int ctl_wire_h1_request(ctl_wire *w, const char *method, const char *path, const ctl_wire_header *hdrs, size_t nhdrs,
                        const char *body, size_t body_len, size_t body_max, int64_t deadline, ctl_wire_resp *r,
                        bool *got_any)
{
    (void)deadline; /* the socket's timeouts carry it */
    size_t rlen = 0;
    char *req = build_request(w, method, path, hdrs, nhdrs, body, body_len, &rlen, r);
    if (!req)
        return -1;
    int rc = ctl_wire_write(w, req, rlen, r);
    sodium_memzero(req, rlen);
    free(req);
    if (rc != 0 || (body && body_len > 0 && ctl_wire_write(w, body, body_len, r) != 0))
        return -1;
    w->in_off = w->in_len = 0;
    head h;
    for (;;) {
        /* The head: up to the blank line. */
        char *end = NULL;
        size_t scanned = 0;
        for (;;) {
            size_t avail = w->in_len - w->in_off;
            if (avail >= 4) {
                char *s = w->in + w->in_off;
                for (size_t i = scanned; i + 4 <= avail && !end; i++)
                    if (memcmp(s + i, "\r\n\r\n", 4) == 0)
                        end = s + i + 4;
                scanned = avail - 3;
            }
            if (end)
                break;
            int k = fill(w, r, got_any);
            if (k <= 0) {
                if (k == 0)
                    ctl_wire_fail(r, CTL_WIRE_DROPPED, "the server closed the connection %s",
                                  *got_any ? "in the middle of the answer" : "without answering");
                return -1;
            }
        }
        char *start = w->in + w->in_off;
        if (parse_head(start, (size_t)(end - start), &h, r) != 0)
            return -1;
        w->in_off = (size_t)(end - w->in);
        if (h.status >= 200)
            break;
        if (h.status == 101) {
            ctl_wire_fail(r, CTL_WIRE_MALFORMED, "the server switched protocols unasked");
            return -1;
        }
    }
    r->status = h.status;
    w->reusable = !h.close && !w->t.unix_path;
    if (strcmp(method, "HEAD") == 0 || h.status == 204 || h.status == 304)
        return 0;
    if (h.chunked)
        return read_chunked(w, r, body_max, got_any);
    if (h.has_length) {
        if (h.length > body_max) {
            ctl_wire_fail(r, CTL_WIRE_TOO_BIG, "the answer's body is over %zu bytes", body_max);
            return -1;
        }
        return read_body_bytes(w, r, h.length, body_max, got_any);
    }
    /* Neither: the body ends with the connection. */
    w->reusable = false;
    for (;;) {
        if (w->in_off < w->in_len && !ctl_wire_body_add(r, w->in + w->in_off, w->in_len - w->in_off, body_max))
            return -1;
        w->in_off = w->in_len = 0;
        int k = fill(w, r, got_any);
        if (k < 0)
            return -1;
        if (k == 0)
            return 0;
    }
}
