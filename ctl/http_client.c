/*
 * http_client.c - secretsctl's client of the HTTP API (see http_client.h): the settings from the
 * environment, one libcurl easy handle whose connection is kept between requests (run --watch
 * polls on it), answers collected into buffers that are wiped when freed, and the mapping of
 * answers to exit statuses and messages.
 *
 * http:// speaks HTTP/2 with prior knowledge (h2c) unless --http1.1; https:// offers h2 and
 * http/1.1 over ALPN and verifies the server's certificate and name, against SECRETSD_CACERT when
 * it is set.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "ctl/http_client.h"

const char ctl_api_usage[] =
    "client options: --token-file PATH (else $SECRETSD_TOKEN), --http1.1 (no h2c on http://), --json\n"
    "environment:    SECRETSD_ADDR (http://HOST:PORT or https://HOST:PORT), SECRETSD_TOKEN,\n"
    "                SECRETSD_CACERT (a PEM file of the CA to trust for https://)\n"
    "exit status:    0 done, 1 server or network error, 2 usage, 3 not found, 4 unauthorized or forbidden\n";

bool ctl_api_option(ctl_api_opts *o, int opt, const char *arg)
{
    switch (opt) {
    case CTL_OPT_TOKEN_FILE:
        o->token_file = arg;
        return true;
    case CTL_OPT_HTTP11:
        o->http11 = true;
        return true;
    case CTL_OPT_JSON:
        o->json = true;
        return true;
    default:
        return false;
    }
}

/* Read the token file into out (at most CTL_TOKEN_MAX bytes, one trailing newline dropped). */
static int read_token_file(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "secretsctl: cannot open the token file \"%s\": %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, out + n, cap - 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            fprintf(stderr, "secretsctl: cannot read the token file \"%s\": %s\n", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (k == 0)
            break;
        n += (size_t)k;
        if (n == cap - 1) {
            char extra;
            if (read(fd, &extra, 1) > 0) {
                fprintf(stderr, "secretsctl: the token file \"%s\" is too long for a token\n", path);
                close(fd);
                sodium_memzero(out, cap);
                return -1;
            }
            break;
        }
    }
    close(fd);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ' || out[n - 1] == '\t'))
        n--;
    out[n] = '\0';
    return 0;
}

/* A token is sent in a header: only printable ASCII without blanks gets there. */
static bool token_ok(const char *t)
{
    if (!*t)
        return false;
    for (const char *p = t; *p; p++)
        if (*p <= ' ' || *p > '~')
            return false;
    return true;
}

/* Sockets are opened close-on-exec: `run --watch` forks children that must not inherit them. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
    (void)clientp;
    (void)purpose;
    int fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}

int ctl_api_open(ctl_api *a, const ctl_api_opts *o)
{
    memset(a, 0, sizeof(*a));
    const char *addr = getenv("SECRETSD_ADDR");
    if (!addr || !*addr) {
        fprintf(stderr,
                "secretsctl: set SECRETSD_ADDR to the server's address (http://HOST:PORT or https://HOST:PORT)\n");
        return CTL_EXIT_USAGE;
    }
    if (strncmp(addr, "http://", 7) != 0 && strncmp(addr, "https://", 8) != 0) {
        fprintf(stderr, "secretsctl: SECRETSD_ADDR must start with http:// or https://\n");
        return CTL_EXIT_USAGE;
    }
    a->https = strncmp(addr, "https://", 8) == 0;
    size_t alen = strlen(addr);
    while (alen > 0 && addr[alen - 1] == '/')
        alen--;
    a->base = strndup(addr, alen);
    /* "Authorization: Bearer " + token: the token is read straight into its slot, never copied. */
    static const char prefix[] = "Authorization: Bearer ";
    a->auth = sodium_malloc(sizeof(prefix) + CTL_TOKEN_MAX);
    if (!a->base || !a->auth) {
        fprintf(stderr, "secretsctl: out of memory\n");
        ctl_api_close(a);
        return CTL_EXIT_FAIL;
    }
    memcpy(a->auth, prefix, sizeof(prefix));
    a->token = a->auth + sizeof(prefix) - 1;
    if (o->token_file) {
        if (read_token_file(o->token_file, a->token, CTL_TOKEN_MAX) != 0) {
            ctl_api_close(a);
            return CTL_EXIT_USAGE;
        }
    } else {
        const char *t = getenv("SECRETSD_TOKEN");
        if (!t || !*t) {
            fprintf(stderr, "secretsctl: no token: set SECRETSD_TOKEN or give --token-file PATH\n");
            ctl_api_close(a);
            return CTL_EXIT_USAGE;
        }
        if (strlen(t) >= CTL_TOKEN_MAX) {
            fprintf(stderr, "secretsctl: SECRETSD_TOKEN is too long for a token\n");
            ctl_api_close(a);
            return CTL_EXIT_USAGE;
        }
        strcpy(a->token, t);
    }
    if (!token_ok(a->token)) {
        fprintf(stderr, "secretsctl: the token is empty or holds blanks or control characters\n");
        ctl_api_close(a);
        return CTL_EXIT_USAGE;
    }
    a->h = curl_easy_init();
    if (!a->h) {
        fprintf(stderr, "secretsctl: cannot set up libcurl\n");
        ctl_api_close(a);
        return CTL_EXIT_FAIL;
    }
    CURL *h = a->h;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    if (a->https) {
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, o->http11 ? CURL_HTTP_VERSION_1_1 : CURL_HTTP_VERSION_2TLS);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        const char *ca = getenv("SECRETSD_CACERT");
        if (ca && *ca) {
            if (access(ca, R_OK) != 0) {
                fprintf(stderr, "secretsctl: SECRETSD_CACERT \"%s\": %s\n", ca, strerror(errno));
                ctl_api_close(a);
                return CTL_EXIT_USAGE;
            }
            curl_easy_setopt(h, CURLOPT_CAINFO, ca);
        }
    } else {
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
                         o->http11 ? CURL_HTTP_VERSION_1_1 : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        /* libcurl 7.88 fails the second request on a kept h2c (prior knowledge) connection with
         * "Error in the HTTP2 framing layer"; a loopback or LAN connect costs less than a
         * retry, so each h2c request gets a connection of its own. TLS h2 and HTTP/1.1 keep theirs. */
        if (!o->http11)
            curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    }
    return CTL_EXIT_OK;
}

void ctl_api_close(ctl_api *a)
{
    if (a->h)
        curl_easy_cleanup(a->h);
    sodium_free(a->auth); /* wipes the token */
    free(a->base);
    memset(a, 0, sizeof(*a));
}

const char *ctl_api_token_secret(const ctl_api *a, size_t *ret_len)
{
    const char *t = a->token;
    /* sxt_<32 hex id>_<secret> */
    if (strncmp(t, "sxt_", 4) == 0 && strlen(t) > 4 + 32 + 1 && t[4 + 32] == '_')
        t += 4 + 32 + 1;
    *ret_len = strlen(t);
    return t;
}

/* Grow the answer by hand, so no copy of a value is left behind in freed memory by realloc. */
static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
    ctl_api_resp *r = userdata;
    size_t add = size * n;
    if (r->len + add > CTL_RESPONSE_MAX)
        return 0;
    char *nb = malloc(r->len + add + 1);
    if (!nb)
        return 0;
    if (r->body) {
        memcpy(nb, r->body, r->len);
        sodium_memzero(r->body, r->len);
        free(r->body);
    }
    memcpy(nb + r->len, p, add);
    r->body = nb;
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
    ctl_api_resp *r = userdata;
    size_t len = size * n;
    if (len > 5 && strncasecmp(p, "etag:", 5) == 0) {
        size_t i = 5;
        while (i < len && (p[i] == ' ' || p[i] == '\t'))
            i++;
        size_t end = len;
        while (end > i && (p[end - 1] == '\r' || p[end - 1] == '\n' || p[end - 1] == ' '))
            end--;
        if (end - i < sizeof(r->etag)) {
            memcpy(r->etag, p + i, end - i);
            r->etag[end - i] = '\0';
        }
    } else if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        r->etag[0] = '\0'; /* a new answer (after a 100 Continue) */
    }
    return len;
}

int ctl_api_call(ctl_api *a, const char *method, const char *path, const char *body, const char *if_none_match,
                 ctl_api_resp *ret)
{
    memset(ret, 0, sizeof(*ret));
    size_t ulen = strlen(a->base) + strlen(path) + 1;
    char *url = malloc(ulen);
    if (!url) {
        ret->curl = CURLE_OUT_OF_MEMORY;
        snprintf(ret->error, sizeof(ret->error), "out of memory");
        ret->body = calloc(1, 1);
        return -ENOMEM;
    }
    snprintf(url, ulen, "%s%s", a->base, path);
    CURL *h = a->h;
    struct curl_slist *hdrs = curl_slist_append(NULL, a->auth);
    char inm[CTL_ETAG_MAX + 32];
    if (if_none_match && *if_none_match) {
        snprintf(inm, sizeof(inm), "If-None-Match: %s", if_none_match);
        hdrs = curl_slist_append(hdrs, inm);
    }
    /* A request without a body sends none and no Content-Type (libcurl would otherwise add a
     * form type to an empty POST). */
    hdrs = curl_slist_append(hdrs, body ? "Content-Type: application/json" : "Content-Type:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, ret);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, ret);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ret->error);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
    }
    ret->curl = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdrs); /* the If-None-Match and Authorization lines are no secret beyond the token */
    free(url);
    if (!ret->body)
        ret->body = calloc(1, 1);
    if (ret->curl != CURLE_OK) {
        if (!ret->error[0])
            snprintf(ret->error, sizeof(ret->error), "%s", curl_easy_strerror(ret->curl));
        ret->status = 0;
        return -EIO;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ret->status);
    return 0;
}

void ctl_api_resp_free(ctl_api_resp *r)
{
    if (r->body) {
        sodium_memzero(r->body, r->len);
        free(r->body);
    }
    r->body = NULL;
    r->len = 0;
}

bool ctl_api_unreachable(const ctl_api_resp *r)
{
    switch (r->curl) {
    case CURLE_OK:
        return r->status == 502 || r->status == 503 || r->status == 504;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_PARTIAL_FILE:
        return true;
    default:
        return false; /* TLS verification failures among them: never papered over */
    }
}

int ctl_exit_for_status(long status)
{
    if (status >= 200 && status < 300)
        return CTL_EXIT_OK;
    if (status == 404)
        return CTL_EXIT_NOTFOUND;
    if (status == 401 || status == 403)
        return CTL_EXIT_FORBIDDEN;
    return CTL_EXIT_FAIL;
}

int ctl_api_report(const ctl_api *a, const ctl_api_resp *r, const char *what)
{
    if (r->curl != CURLE_OK) {
        fprintf(stderr, "secretsctl: cannot reach the server at %s: %s\n", a->base, r->error);
        return CTL_EXIT_FAIL;
    }
    int code = ctl_exit_for_status(r->status);
    if (code == CTL_EXIT_OK)
        return code;
    /* Only the server's own message: an error answer never holds a value or a token. */
    char ebuf[128];
    yajl_val v = yajl_tree_parse(r->body, ebuf, sizeof(ebuf));
    const char *epath[] = {"error", NULL};
    yajl_val e = v ? yajl_tree_get(v, epath, yajl_t_string) : NULL;
    if (e)
        fprintf(stderr, "secretsctl: %s%s%d: %s\n", what ? what : "", what ? ": " : "", (int)r->status,
                YAJL_GET_STRING(e));
    else
        fprintf(stderr, "secretsctl: %s%sthe server answered %d\n", what ? what : "", what ? ": " : "", (int)r->status);
    yajl_tree_free(v);
    return code;
}

/* One path segment by the server's rules: scope segments 1-64 of [A-Za-z0-9._-] starting with a
 * letter or digit; names 1-256 of [A-Za-z0-9._-], not "." or "..". */
static bool segment_ok(const char *s, size_t n, bool is_name)
{
    if (n == 0 || n > (is_name ? 256u : 64u))
        return false;
    if (!is_name && !isalnum((unsigned char)s[0]))
        return false;
    if (is_name && ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

int ctl_parse_target(const char *arg, bool with_name, char ret_prefix[CTL_SCOPE_MAX], char ret_name[CTL_NAME_MAX])
{
    const char *seg[4];
    size_t len[4];
    size_t want = with_name ? 4 : 3, n = 0;
    const char *p = arg;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t l = slash ? (size_t)(slash - p) : strlen(p);
        if (n == want) {
            n++;
            break;
        }
        seg[n] = p;
        len[n] = l;
        n++;
        if (!slash)
            break;
        p = slash + 1;
    }
    if (n != want) {
        fprintf(stderr, "secretsctl: \"%s\" is not %s\n", arg, with_name ? "ORG/PROJECT/ENV/NAME" : "ORG/PROJECT/ENV");
        return CTL_EXIT_USAGE;
    }
    for (size_t i = 0; i < want; i++) {
        if (!segment_ok(seg[i], len[i], i == 3)) {
            fprintf(stderr, "secretsctl: \"%s\": %s must be %s\n", arg,
                    i == 3 ? "the name" : "each of ORG, PROJECT and ENV",
                    i == 3 ? "1-256 characters of A-Z a-z 0-9 . _ -, not . or .."
                           : "1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit");
            return CTL_EXIT_USAGE;
        }
    }
    snprintf(ret_prefix, CTL_SCOPE_MAX, "/%.*s/%.*s/envs/%.*s", (int)len[0], seg[0], (int)len[1], seg[1], (int)len[2],
             seg[2]);
    if (with_name)
        snprintf(ret_name, CTL_NAME_MAX, "%.*s", (int)len[3], seg[3]);
    return 0;
}

int ctl_api_start(ctl_api *a, const ctl_api_opts *o, const char *arg, bool with_name, char ret_prefix[CTL_SCOPE_MAX],
                  char ret_name[CTL_NAME_MAX])
{
    int code = ctl_parse_target(arg, with_name, ret_prefix, ret_name);
    return code != 0 ? code : ctl_api_open(a, o);
}
