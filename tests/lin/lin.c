/*
 * lin.c - the linearizability checker of lin.h: the history parser, the model of one secret and
 * the search.
 *
 * The model. A key's state is absent, or present with the description written last, the value
 * written last (or none) and the ETag of the write that made the state (every successful create,
 * update and set-value gives the secret a new ETag, never given before). The values and the
 * descriptions the clients write are unique, so a read names the write it saw; the ETags answered
 * by acknowledged writes name their write too. An ETag no acknowledged write answered can only be
 * the one of a write whose answer was lost: such an ETag matches a state made by such a write (we
 * cannot tell which) and no other.
 *
 * The search (Wing & Gong, with Lowe's memoisation). The calls and returns of a key's operations
 * form a list ordered by time; the search walks it, linearizing the first call it can (its outcome
 * agrees with the state, which then moves on) unless the same set of linearized operations already
 * led to the same state before (sets kept as hashes, below), and backtracks when it meets a return whose operation it
 * has not linearized. An operation of unknown outcome has no return: it may be linearized (with the effect a success
 * would have) anywhere after its call, or never; the key is linearizable once every operation with a known outcome is.
 * The deepest point the search reached is kept to describe the anomaly: the last operations linearized, the state, and
 * the operation nothing could place.
 */
#include "lin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#define NONE      (-1) /* no value / no ETag writer / no If-Match */
#define DESC_NULL (-2) /* a null description */
#define UNOWNED   (-2) /* an ETag no acknowledged write answered */
#define NEVER     (-3) /* a description or value no operation wrote */

static const char *const kind_names[SX_LIN_KINDS] = {"create", "update", "delete", "set_value", "get", "reveal"};

const char *sx_lin_kind_name(sx_lin_kind k)
{
    return (unsigned)k < SX_LIN_KINDS ? kind_names[k] : "?";
}

/* ---- parsing ----------------------------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

static size_t key_index(sx_lin_history *h, const char *key)
{
    for (size_t i = h->nkeys; i-- > 0;) /* few keys */
        if (strcmp(h->keys[i], key) == 0)
            return i;
    if (h->nkeys == h->keys_cap) {
        h->keys_cap = h->keys_cap ? h->keys_cap * 2 : 16;
        h->keys = realloc(h->keys, h->keys_cap * sizeof(*h->keys));
        if (!h->keys)
            abort();
    }
    h->keys[h->nkeys] = dup_or_null(key);
    return h->nkeys++;
}

static const char *jstr(yajl_val obj, const char *name)
{
    const char *path[] = {name, NULL};
    yajl_val v = yajl_tree_get(obj, path, yajl_t_string);
    return v ? YAJL_GET_STRING(v) : NULL;
}

static bool jint(yajl_val obj, const char *name, long long *ret)
{
    const char *path[] = {name, NULL};
    yajl_val v = yajl_tree_get(obj, path, yajl_t_number);
    if (!v || !YAJL_IS_INTEGER(v))
        return false;
    *ret = YAJL_GET_INTEGER(v);
    return true;
}

static int parse_line(sx_lin_history *h, const char *line, long lineno, char err[SX_LIN_ERR_LEN])
{
    char why[128];
    yajl_val v = yajl_tree_parse(line, why, sizeof(why));
    if (!v || !YAJL_IS_OBJECT(v)) {
        snprintf(err, SX_LIN_ERR_LEN, "line %ld: not a JSON object", lineno);
        yajl_tree_free(v);
        return -EINVAL;
    }
    sx_lin_op op = {.line = lineno, .has_value = -1};
    const char *key = jstr(v, "key"), *kind = jstr(v, "op"), *outcome = jstr(v, "outcome");
    long long client = 0, call = 0, ret = 0, status = 0;
    const char *bad = NULL;
    if (!key)
        bad = "key";
    else if (!kind)
        bad = "op";
    else if (!outcome)
        bad = "outcome";
    else if (!jint(v, "call", &call))
        bad = "call";
    if (bad) {
        snprintf(err, SX_LIN_ERR_LEN, "line %ld: missing or malformed \"%s\"", lineno, bad);
        yajl_tree_free(v);
        return -EINVAL;
    }
    jint(v, "client", &client);
    jint(v, "status", &status);
    int k = -1;
    for (int i = 0; i < SX_LIN_KINDS; i++)
        if (strcmp(kind, kind_names[i]) == 0)
            k = i;
    if (strcmp(outcome, "ok") == 0)
        op.outcome = SX_LIN_OK;
    else if (strcmp(outcome, "fail") == 0)
        op.outcome = SX_LIN_FAIL;
    else if (strcmp(outcome, "unknown") == 0)
        op.outcome = SX_LIN_UNKNOWN;
    else
        bad = "outcome";
    if (k < 0)
        bad = "op";
    if (op.outcome != SX_LIN_UNKNOWN && (!jint(v, "ret", &ret) || ret < call))
        bad = "ret";
    if (bad) {
        snprintf(err, SX_LIN_ERR_LEN, "line %ld: bad \"%s\"", lineno, bad);
        yajl_tree_free(v);
        return -EINVAL;
    }
    op.kind = (sx_lin_kind)k;
    op.client = (int)client;
    op.status = (int)status;
    op.call = call;
    op.ret = ret;
    if (op.outcome == SX_LIN_FAIL) {
        const char *code = jstr(v, "code");
        if (code && strcmp(code, "not_found") == 0)
            op.fail = SX_LIN_FAIL_NOT_FOUND;
        else if (code && strcmp(code, "precondition_failed") == 0)
            op.fail = SX_LIN_FAIL_PRECONDITION;
        else if (code && strcmp(code, "already_exists") == 0)
            op.fail = SX_LIN_FAIL_EXISTS;
    }
    op.written = dup_or_null(jstr(v, "written"));
    op.if_match = dup_or_null(jstr(v, "if_match"));
    op.etag = op.outcome == SX_LIN_OK ? dup_or_null(jstr(v, "etag")) : NULL;
    op.seen = op.outcome == SX_LIN_OK ? dup_or_null(jstr(v, "seen")) : NULL;
    const char *hv[] = {"has_value", NULL};
    yajl_val b = yajl_tree_get(v, hv, yajl_t_any);
    if (op.outcome == SX_LIN_OK && b && (YAJL_IS_TRUE(b) || YAJL_IS_FALSE(b)))
        op.has_value = YAJL_IS_TRUE(b) ? 1 : 0;
    if ((op.kind == SX_LIN_SET_VALUE && !op.written) ||
        (op.kind == SX_LIN_REVEAL && op.outcome == SX_LIN_OK && !op.seen)) {
        snprintf(err, SX_LIN_ERR_LEN, "line %ld: %s without its value", lineno, kind_names[k]);
        free(op.written);
        free(op.if_match);
        free(op.etag);
        free(op.seen);
        yajl_tree_free(v);
        return -EINVAL;
    }
    op.key = key_index(h, key);
    yajl_tree_free(v);
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1024;
        h->ops = realloc(h->ops, h->cap * sizeof(*h->ops));
        if (!h->ops)
            abort();
    }
    h->ops[h->n++] = op;
    return 0;
}

int sx_lin_history_parse(sx_lin_history *h, const char *text, size_t len, char err[SX_LIN_ERR_LEN])
{
    long lineno = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && text[j] != '\n')
            j++;
        lineno++;
        size_t l = j - i;
        while (l > 0 && (text[i + l - 1] == '\r' || text[i + l - 1] == ' '))
            l--;
        if (l > 0) {
            char *line = malloc(l + 1);
            if (!line)
                abort();
            memcpy(line, text + i, l);
            line[l] = '\0';
            int rc = parse_line(h, line, lineno, err);
            free(line);
            if (rc != 0)
                return rc;
        }
        i = j + 1;
    }
    return 0;
}

int sx_lin_history_load(sx_lin_history *h, const char *path, char err[SX_LIN_ERR_LEN])
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, SX_LIN_ERR_LEN, "%s: %s", path, strerror(e));
        return -e;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    char chunk[65536];
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + got > cap) {
            cap = (len + got) * 2;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        memcpy(buf + len, chunk, got);
        len += got;
    }
    int bad = ferror(f);
    fclose(f);
    int rc = bad ? -EIO : sx_lin_history_parse(h, buf ? buf : "", len, err);
    if (bad)
        snprintf(err, SX_LIN_ERR_LEN, "%s: read error", path);
    free(buf);
    return rc;
}

void sx_lin_history_free(sx_lin_history *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->ops[i].written);
        free(h->ops[i].if_match);
        free(h->ops[i].etag);
        free(h->ops[i].seen);
    }
    for (size_t i = 0; i < h->nkeys; i++)
        free(h->keys[i]);
    free(h->ops);
    free(h->keys);
    memset(h, 0, sizeof(*h));
}

/* ---- one key: its operations with their observations resolved to the writes they name ---------------- */

typedef struct mstate {
    int32_t present;
    int32_t etag;  /* local index of the write that made the state, NONE when absent */
    int32_t desc;  /* local index of the description's writer, DESC_NULL, or NONE when absent */
    int32_t value; /* local index of the value's writer, or NONE */
} mstate;

typedef struct kop {
    const sx_lin_op *op;
    int32_t if_match; /* writer of the If-Match ETag, UNOWNED, or NONE when none was sent */
    int32_t etag;     /* reads: writer of the ETag answered, UNOWNED, or NONE when none came */
    int32_t seen;     /* get: writer of the description, DESC_NULL or NEVER; reveal: of the value, or NEVER */
} kop;

typedef struct named {
    const char *s;
    int32_t idx;
} named;

static int named_cmp(const void *a, const void *b)
{
    return strcmp(((const named *)a)->s, ((const named *)b)->s);
}

static int32_t named_find(const named *tab, size_t n, const char *s, int32_t missing)
{
    named want = {s, 0};
    const named *f = bsearch(&want, tab, n, sizeof(*tab), named_cmp);
    return f ? f->idx : missing;
}

typedef struct keyctx {
    kop *ops;
    size_t n, known; /* operations, those with a known outcome */
    const sx_lin_history *h;
    int64_t t0;
} keyctx;

static bool writes_etag(const kop *o)
{
    return o->op->kind == SX_LIN_CREATE || o->op->kind == SX_LIN_UPDATE || o->op->kind == SX_LIN_SET_VALUE;
}

typedef enum { MATCH, NOMATCH, MAYBE } tri;

static tri etag_match(const keyctx *k, const mstate *s, int32_t want)
{
    if (want >= 0)
        return s->etag == want ? MATCH : NOMATCH;
    /* UNOWNED: only a write whose ETag we never learnt can have made it */
    if (s->etag >= 0 && (k->ops[s->etag].op->outcome == SX_LIN_UNKNOWN || !k->ops[s->etag].op->etag))
        return MAYBE;
    return NOMATCH;
}

/* Whether the operation at local index i can take effect in state s with its outcome; *ns gets the
 * state after it. */
static bool step(const keyctx *k, const mstate *s, int32_t i, mstate *ns)
{
    const kop *o = &k->ops[i];
    const sx_lin_op *op = o->op;
    *ns = *s;
    if (op->outcome == SX_LIN_FAIL) {
        switch (op->fail) {
        case SX_LIN_FAIL_NOT_FOUND:
            if (op->kind == SX_LIN_REVEAL)
                return !s->present || s->value == NONE;
            return op->kind != SX_LIN_CREATE && !s->present;
        case SX_LIN_FAIL_PRECONDITION:
            return op->kind != SX_LIN_CREATE && op->kind != SX_LIN_GET && op->kind != SX_LIN_REVEAL && s->present &&
                   o->if_match != NONE && etag_match(k, s, o->if_match) != MATCH;
        case SX_LIN_FAIL_EXISTS:
            return op->kind == SX_LIN_CREATE && s->present;
        case SX_LIN_FAIL_OTHER:
            return true;
        }
        return false;
    }
    bool known = op->outcome == SX_LIN_OK;
    if (op->kind == SX_LIN_CREATE) {
        if (s->present || (known && op->has_value == 1))
            return false;
        *ns = (mstate){1, i, op->written ? i : DESC_NULL, NONE};
        return true;
    }
    if (!s->present)
        return false;
    if (o->if_match != NONE && etag_match(k, s, o->if_match) == NOMATCH)
        return false;
    switch (op->kind) {
    case SX_LIN_UPDATE:
        if (known && op->has_value >= 0 && op->has_value != (s->value != NONE))
            return false;
        ns->etag = i;
        ns->desc = op->written ? i : DESC_NULL;
        return true;
    case SX_LIN_DELETE:
        *ns = (mstate){0, NONE, NONE, NONE};
        return true;
    case SX_LIN_SET_VALUE:
        ns->etag = i;
        ns->value = i;
        return true;
    case SX_LIN_GET:
        if (o->etag != NONE && etag_match(k, s, o->etag) == NOMATCH)
            return false;
        if (op->has_value >= 0 && op->has_value != (s->value != NONE))
            return false;
        return o->seen == s->desc;
    case SX_LIN_REVEAL:
        if (o->etag != NONE && etag_match(k, s, o->etag) == NOMATCH)
            return false;
        return s->value != NONE && o->seen == s->value;
    default:
        return false;
    }
}

/* ---- the memo: (linearized set, state) pairs seen -------------------------------------------------- */

/*
 * A set of linearized operations is kept as two independent 64-bit Zobrist hashes (the XOR of a
 * random word per operation in the set), updated as operations are linearized and backed out, so
 * an entry costs 32 bytes whatever the history's length. Two different sets are taken for the
 * same only when both hashes collide: with n entries the odds are about n^2 / 2^129, and such a
 * collision could only prune an order, never invent one.
 */
typedef struct mslot {
    uint64_t a, b; /* the set's two hashes */
    mstate st;
    bool used;
} mslot;

typedef struct memo {
    mslot *slots;
    size_t cap, used;
} memo;

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t slot_hash(uint64_t a, const mstate *s)
{
    uint64_t x = ((uint64_t)(uint32_t)s->present << 32) | (uint32_t)s->etag;
    uint64_t y = ((uint64_t)(uint32_t)s->desc << 32) | (uint32_t)s->value;
    return a ^ mix64(x ^ mix64(y));
}

static void memo_grow(memo *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 4096;
    mslot *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        abort();
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].used)
            continue;
        size_t j = slot_hash(m->slots[i].a, &m->slots[i].st) & (ncap - 1);
        while (ns[j].used)
            j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
}

/* Insert (set, s); false when it was there already. */
static bool memo_add(memo *m, uint64_t a, uint64_t b, const mstate *s)
{
    if ((m->used + 1) * 2 > m->cap)
        memo_grow(m);
    size_t j = slot_hash(a, s) & (m->cap - 1);
    while (m->slots[j].used) {
        const mslot *x = &m->slots[j];
        if (x->a == a && x->b == b && memcmp(&x->st, s, sizeof(*s)) == 0)
            return false;
        j = (j + 1) & (m->cap - 1);
    }
    m->slots[j] = (mslot){a, b, *s, true};
    m->used++;
    return true;
}

/* ---- the search -------------------------------------------------------------------------------------- */

typedef struct entry {
    int64_t time;
    int32_t op; /* local index */
    bool is_ret;
    int32_t prev, next; /* list links, -1 at the ends; entry 0 is the head */
    int32_t match;      /* a call's return entry, or -1 */
} entry;

static int entry_cmp(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    if (x->is_ret != y->is_ret)
        return x->is_ret ? 1 : -1; /* a call at the same moment as a return overlaps it */
    return x->op - y->op;
}

typedef struct frame {
    int32_t call; /* entry */
    mstate state;
} frame;

enum { LAST_SHOWN = 4, PENDING_SHOWN = 6 };

typedef struct deepest {
    size_t depth; /* operations of known outcome linearized */
    mstate state;
    int32_t last[LAST_SHOWN];
    size_t nlast;
    int32_t blocked; /* the operation that could not be placed, or -1 */
    int32_t pending[PENDING_SHOWN];
    size_t npending, pending_total;
} deepest;

static void lift(entry *e, int32_t c)
{
    e[e[c].prev].next = e[c].next;
    if (e[c].next >= 0)
        e[e[c].next].prev = e[c].prev;
    int32_t r = e[c].match;
    if (r >= 0) {
        e[e[r].prev].next = e[r].next;
        if (e[r].next >= 0)
            e[e[r].next].prev = e[r].prev;
    }
}

static void unlift(entry *e, int32_t c)
{
    int32_t r = e[c].match;
    if (r >= 0) {
        e[e[r].prev].next = r;
        if (e[r].next >= 0)
            e[e[r].next].prev = r;
    }
    e[e[c].prev].next = c;
    if (e[c].next >= 0)
        e[e[c].next].prev = c;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static sx_lin_verdict search(const keyctx *k, const sx_lin_limits *lim, deepest *d, uint64_t *ret_steps)
{
    size_t n = k->n;
    entry *e = calloc(2 * n + 1, sizeof(*e));
    frame *stack = calloc(n + 1, sizeof(*stack));
    uint64_t *zob = calloc(2 * (n + 1), sizeof(uint64_t)); /* two words per operation */
    if (!e || !stack || !zob)
        abort();
    size_t ne = 1;
    for (size_t i = 0; i < n; i++) {
        zob[2 * i] = mix64(0x9e3779b97f4a7c15ULL * (i + 1));
        zob[2 * i + 1] = mix64(0xd1b54a32d192ed03ULL * (i + 1) + 0x632be59bd9b4e019ULL);
        e[ne++] = (entry){.time = k->ops[i].op->call, .op = (int32_t)i, .is_ret = false, .match = -1};
        if (k->ops[i].op->outcome != SX_LIN_UNKNOWN)
            e[ne++] = (entry){.time = k->ops[i].op->ret, .op = (int32_t)i, .is_ret = true, .match = -1};
    }
    qsort(e + 1, ne - 1, sizeof(*e), entry_cmp);
    int32_t *call_of = malloc((n + 1) * sizeof(int32_t));
    if (!call_of)
        abort();
    for (size_t i = 1; i < ne; i++) {
        e[i].prev = (int32_t)i - 1;
        e[i].next = i + 1 < ne ? (int32_t)i + 1 : -1;
        if (!e[i].is_ret)
            call_of[e[i].op] = (int32_t)i;
    }
    for (size_t i = 1; i < ne; i++)
        if (e[i].is_ret)
            e[call_of[e[i].op]].match = (int32_t)i;
    e[0] = (entry){.prev = -1, .next = ne > 1 ? 1 : -1, .match = -1, .op = -1};

    memo m = {0};
    mstate state = {0, NONE, NONE, NONE};
    uint64_t za = 0, zb = 0; /* the hashes of the linearized set */
    size_t depth = 0, known_done = 0;
    uint64_t steps = 0, max_steps = lim && lim->max_steps ? lim->max_steps : 50000000ULL;
    double max_s = lim && lim->max_seconds > 0 ? lim->max_seconds : 60.0, t0 = now_s();
    sx_lin_verdict verdict = SX_LIN_NOT_LINEARIZABLE;
    int32_t cur = e[0].next;
    memset(d, 0, sizeof(*d));
    d->blocked = -1;
    bool first = true;
    for (;;) {
        if (known_done == k->known) {
            verdict = SX_LIN_LINEARIZABLE;
            break;
        }
        if (++steps >= max_steps || ((steps & 0xffff) == 0 && now_s() - t0 > max_s)) {
            verdict = SX_LIN_UNDECIDED;
            break;
        }
        if (cur >= 0 && !e[cur].is_ret) {
            int32_t i = e[cur].op;
            mstate ns;
            if (step(k, &state, i, &ns)) {
                if (memo_add(&m, za ^ zob[2 * i], zb ^ zob[2 * i + 1], &ns)) {
                    stack[depth++] = (frame){cur, state};
                    state = ns;
                    za ^= zob[2 * i];
                    zb ^= zob[2 * i + 1];
                    if (k->ops[i].op->outcome != SX_LIN_UNKNOWN)
                        known_done++;
                    lift(e, cur);
                    cur = e[0].next;
                    continue;
                }
            }
            cur = e[cur].next;
            continue;
        }
        /* a return of an operation not linearized (or the end): back up */
        if (first || known_done > d->depth) {
            first = false;
            d->depth = known_done;
            d->state = state;
            d->nlast = 0;
            for (size_t j = depth > LAST_SHOWN ? depth - LAST_SHOWN : 0; j < depth; j++)
                d->last[d->nlast++] = e[stack[j].call].op;
            d->blocked = cur >= 0 ? e[cur].op : -1;
            d->npending = d->pending_total = 0;
            for (int32_t x = e[0].next; x >= 0 && x != cur; x = e[x].next)
                if (!e[x].is_ret && e[x].op != d->blocked) {
                    if (d->npending < PENDING_SHOWN)
                        d->pending[d->npending++] = e[x].op;
                    d->pending_total++;
                }
        }
        if (depth == 0)
            break;
        frame f = stack[--depth];
        int32_t i = e[f.call].op;
        state = f.state;
        za ^= zob[2 * i];
        zb ^= zob[2 * i + 1];
        if (k->ops[i].op->outcome != SX_LIN_UNKNOWN)
            known_done--;
        unlift(e, f.call);
        cur = e[f.call].next;
    }
    *ret_steps = steps;
    free(m.slots);
    free(call_of);
    free(zob);
    free(stack);
    free(e);
    return verdict;
}

/* ---- reports ------------------------------------------------------------------------------------------- */

static void print_writer(FILE *f, const keyctx *k, int32_t w)
{
    if (w == NONE)
        fputs("none", f);
    else if (w == DESC_NULL)
        fputs("null", f);
    else if (w == NEVER)
        fputs("never written", f);
    else
        fprintf(f, "#%ld", k->ops[w].op->line);
}

static void print_op(FILE *f, const keyctx *k, int32_t i)
{
    const sx_lin_op *op = k->ops[i].op;
    fprintf(f, "    #%ld client %d %s", op->line, op->client, kind_names[op->kind]);
    if (op->written)
        fprintf(f, " %s=%s", op->kind == SX_LIN_SET_VALUE ? "value" : "description", op->written);
    if (op->if_match)
        fprintf(f, " If-Match %s", op->if_match);
    static const char *const outcomes[] = {"ok", "failed", "unknown"};
    fprintf(f, " -> %s", outcomes[op->outcome]);
    if (op->status)
        fprintf(f, " %d", op->status);
    if (op->outcome == SX_LIN_OK) {
        if (op->kind == SX_LIN_GET)
            fprintf(f, " description=%s", op->seen ? op->seen : "null");
        if (op->kind == SX_LIN_REVEAL)
            fprintf(f, " value=%s", op->seen);
        if (op->has_value >= 0)
            fprintf(f, " hasValue=%s", op->has_value ? "true" : "false");
        if (op->etag)
            fprintf(f, " ETag %s", op->etag);
    }
    fprintf(f, "  [call %+.3f ms", (double)(op->call - k->t0) / 1e6);
    if (op->outcome != SX_LIN_UNKNOWN)
        fprintf(f, ", return %+.3f ms", (double)(op->ret - k->t0) / 1e6);
    fputs("]\n", f);
}

static void report_key(FILE *f, const keyctx *k, const char *key, sx_lin_verdict v, const deepest *d, uint64_t steps)
{
    if (v == SX_LIN_UNDECIDED) {
        fprintf(f, "key %s: undecided after %llu search steps (%zu operations)\n", key, (unsigned long long)steps,
                k->n);
        return;
    }
    fprintf(f, "key %s: not linearizable (%zu operations; the longest order found places %zu of the %zu answered)\n",
            key, k->n, d->depth, k->known);
    if (d->nlast) {
        fputs("  the last operations of that order:\n", f);
        for (size_t j = 0; j < d->nlast; j++)
            print_op(f, k, d->last[j]);
    }
    fputs("  leave the secret ", f);
    if (!d->state.present) {
        fputs("absent\n", f);
    } else {
        fputs("present: description of ", f);
        print_writer(f, k, d->state.desc);
        fputs(", value of ", f);
        print_writer(f, k, d->state.value);
        fputs(", ETag of ", f);
        print_writer(f, k, d->state.etag);
        fputc('\n', f);
    }
    if (d->blocked >= 0) {
        fputs("  and no operation can come next before this one returns, nor can it:\n", f);
        print_op(f, k, d->blocked);
    }
    if (d->npending) {
        fprintf(f, "  operations pending then (%zu):\n", d->pending_total);
        for (size_t j = 0; j < d->npending; j++)
            print_op(f, k, d->pending[j]);
    }
}

/* An operation that neither changes nor shows anything: a read without its answer, a refusal of
 * another kind than those of the model. Any order can place it; the search leaves it out. */
static bool silent(const sx_lin_op *op)
{
    if (op->outcome == SX_LIN_UNKNOWN)
        return op->kind == SX_LIN_GET || op->kind == SX_LIN_REVEAL;
    return op->outcome == SX_LIN_FAIL && op->fail == SX_LIN_FAIL_OTHER;
}

/* Resolve the observations of key's operations; false (with a report) when the history breaks a
 * rule the checker relies on or shows an anomaly without a search (two writes, one ETag). */
static bool key_build(keyctx *k, const sx_lin_history *h, size_t key, FILE *report)
{
    k->n = k->known = 0;
    for (size_t i = 0; i < h->n; i++)
        if (h->ops[i].key == key && !silent(&h->ops[i]))
            k->n++;
    k->ops = calloc(k->n + 1, sizeof(*k->ops));
    named *descs = calloc(k->n + 1, sizeof(*descs)), *values = calloc(k->n + 1, sizeof(*values)),
          *etags = calloc(k->n + 1, sizeof(*etags));
    if (!k->ops || !descs || !values || !etags)
        abort();
    size_t nd = 0, nv = 0, ne = 0, j = 0;
    k->t0 = INT64_MAX;
    for (size_t i = 0; i < h->n; i++) {
        const sx_lin_op *op = &h->ops[i];
        if (op->key != key || silent(op))
            continue;
        if (op->call < k->t0)
            k->t0 = op->call;
        k->ops[j].op = op;
        if (op->outcome != SX_LIN_UNKNOWN)
            k->known++;
        if ((op->kind == SX_LIN_CREATE || op->kind == SX_LIN_UPDATE) && op->written)
            descs[nd++] = (named){op->written, (int32_t)j};
        if (op->kind == SX_LIN_SET_VALUE)
            values[nv++] = (named){op->written, (int32_t)j};
        if (op->outcome == SX_LIN_OK && op->etag && writes_etag(&k->ops[j]))
            etags[ne++] = (named){op->etag, (int32_t)j};
        j++;
    }
    qsort(descs, nd, sizeof(*descs), named_cmp);
    qsort(values, nv, sizeof(*values), named_cmp);
    qsort(etags, ne, sizeof(*etags), named_cmp);
    bool ok = true;
    for (size_t i = 1; i < nd && ok; i++)
        if (strcmp(descs[i].s, descs[i - 1].s) == 0) {
            if (report)
                fprintf(report, "key %s: description %s written twice (#%ld, #%ld): writes must be unique\n",
                        h->keys[key], descs[i].s, k->ops[descs[i - 1].idx].op->line, k->ops[descs[i].idx].op->line);
            ok = false;
        }
    for (size_t i = 1; i < nv && ok; i++)
        if (strcmp(values[i].s, values[i - 1].s) == 0) {
            if (report)
                fprintf(report, "key %s: value %s written twice (#%ld, #%ld): writes must be unique\n", h->keys[key],
                        values[i].s, k->ops[values[i - 1].idx].op->line, k->ops[values[i].idx].op->line);
            ok = false;
        }
    for (size_t i = 1; i < ne && ok; i++)
        if (strcmp(etags[i].s, etags[i - 1].s) == 0) {
            if (report) {
                fprintf(report, "key %s: not linearizable: two acknowledged writes answered the same ETag\n",
                        h->keys[key]);
                print_op(report, k, etags[i - 1].idx);
                print_op(report, k, etags[i].idx);
            }
            ok = false;
        }
    for (size_t i = 0; i < k->n; i++) {
        kop *o = &k->ops[i];
        const sx_lin_op *op = o->op;
        o->if_match = op->if_match ? named_find(etags, ne, op->if_match, UNOWNED) : NONE;
        o->etag = NONE;
        o->seen = NEVER;
        if (op->outcome != SX_LIN_OK)
            continue;
        if ((op->kind == SX_LIN_GET || op->kind == SX_LIN_REVEAL) && op->etag)
            o->etag = named_find(etags, ne, op->etag, UNOWNED);
        if (op->kind == SX_LIN_GET)
            o->seen = op->seen ? named_find(descs, nd, op->seen, NEVER) : DESC_NULL;
        if (op->kind == SX_LIN_REVEAL)
            o->seen = named_find(values, nv, op->seen, NEVER);
    }
    free(descs);
    free(values);
    free(etags);
    k->h = h;
    return ok;
}

sx_lin_verdict sx_lin_check(const sx_lin_history *h, const sx_lin_limits *lim, FILE *report, sx_lin_summary *ret_sum)
{
    sx_lin_summary sum = {.ops = h->n, .keys = h->nkeys};
    for (size_t i = 0; i < h->n; i++) {
        sum.by_outcome[h->ops[i].outcome]++;
        sum.by_kind[h->ops[i].kind]++;
    }
    sx_lin_verdict worst = SX_LIN_LINEARIZABLE;
    for (size_t key = 0; key < h->nkeys; key++) {
        keyctx k = {0};
        sx_lin_verdict v = SX_LIN_NOT_LINEARIZABLE;
        if (key_build(&k, h, key, report)) {
            deepest d;
            uint64_t steps = 0;
            v = search(&k, lim, &d, &steps);
            sum.steps += steps;
            if (v != SX_LIN_LINEARIZABLE && report)
                report_key(report, &k, h->keys[key], v, &d, steps);
        }
        free(k.ops);
        if (v == SX_LIN_LINEARIZABLE)
            sum.linearizable_keys++;
        else if (v == SX_LIN_UNDECIDED)
            sum.undecided_keys++;
        else
            sum.anomalous_keys++;
        if (v == SX_LIN_NOT_LINEARIZABLE || (v == SX_LIN_UNDECIDED && worst == SX_LIN_LINEARIZABLE))
            worst = v;
    }
    if (ret_sum)
        *ret_sum = sum;
    return worst;
}
