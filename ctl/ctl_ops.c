/*
 * ctl_ops.c - the operator commands of secretsctl: status, master rotate, env rotate / show, seal
 * list / add / remove / rekey / migrate / recover, backup, audit verify. Each sends one request over the admin socket
 * (client.h) and prints the answer for people, or unchanged with --json. `--wait` polls GET /v1/rotations every half
 * second and shows the progress on one terminal line (or a line every few seconds when stdout is not a terminal) until
 * the rotation is gone, which is when it finished.
 *
 * A passphrase for a seal migration is read from the environment variable the operator names
 * (never from argv, which other users can read in /proc) and travels only in the request body over
 * the admin socket; the buffer that held it is wiped.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "ctl/ctl.h"

#define POLL_MS        500
#define WAIT_FAILS_MAX 240 /* two minutes without an answer (a restarting server) */

/* ---- small helpers ---------------------------------------------------------------------------------- */

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

static yajl_val jget(yajl_val v, const char *key, yajl_type t)
{
    const char *path[] = {key, NULL};
    return v ? yajl_tree_get(v, path, t) : NULL;
}

static const char *jstr(yajl_val v, const char *key, const char *dflt)
{
    yajl_val x = jget(v, key, yajl_t_string);
    return x ? YAJL_GET_STRING(x) : dflt;
}

static long long jint(yajl_val v, const char *key)
{
    yajl_val x = jget(v, key, yajl_t_number);
    return x && YAJL_IS_INTEGER(x) ? YAJL_GET_INTEGER(x) : 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* GET/POST and parse; prints the error and returns NULL unless the status is one of ok1/ok2. With
 * --json the raw answer goes to stdout when print_json is set. */
static yajl_val call(const ctl *c, const char *method, const char *path, const char *body, long ok1, long ok2,
                     bool print_json)
{
    long status = 0;
    buf b;
    if (ctl_request(c, method, path, body, &status, &b) != 0)
        return NULL;
    if (status != ok1 && status != ok2) {
        ctl_print_error(status, &b);
        free(b.data);
        return NULL;
    }
    if (c->json && print_json)
        printf("%s\n", b.data);
    char ebuf[256];
    yajl_val v = yajl_tree_parse(b.data, ebuf, sizeof(ebuf));
    free(b.data);
    if (!v)
        fprintf(stderr, "secretsctl: the server's answer is not JSON\n");
    return v;
}

/* "acme/web/prod" into three names of [A-Za-z0-9._-] (the server checks the finer rules). */
static bool split_env(const char *arg, char *org, char *project, char *env)
{
    char *out[3] = {org, project, env};
    const char *p = arg;
    for (int i = 0; i < 3; i++) {
        size_t n = strcspn(p, "/");
        if (n == 0 || n > 64 || (i < 2 && p[n] != '/') || (i == 2 && p[n] != '\0'))
            return false;
        for (size_t k = 0; k < n; k++) {
            char ch = p[k];
            if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                  ch == '_' || ch == '-'))
                return false;
        }
        memcpy(out[i], p, n);
        out[i][n] = '\0';
        p += n + 1;
    }
    return true;
}

/* An absolute version of path (relative to the current folder) into out. */
static bool absolute(const char *path, char *out, size_t cap)
{
    if (path[0] == '/')
        return (size_t)snprintf(out, cap, "%s", path) < cap;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd)))
        return false;
    return (size_t)snprintf(out, cap, "%s/%s", cwd, path) < cap;
}

/* {"rate": n} or "{}" into a malloc'd string. */
static char *rate_body(const char *rate)
{
    char *body = malloc(64);
    if (body)
        snprintf(body, 64, rate ? "{\"rate\":%s}" : "{}", rate ? rate : "");
    return body;
}

static bool rate_valid(const char *s)
{
    return s && *s && strlen(s) <= 7 && strspn(s, "0123456789") == strlen(s) && atol(s) <= 1000000;
}

/* ---- rotations ------------------------------------------------------------------------------------------ */

static void rotation_line(yajl_val r, char *out, size_t cap)
{
    char subject[256];
    const char *kind = jstr(r, "kind", "?");
    if (strcmp(kind, "env") == 0)
        snprintf(subject, sizeof(subject), "data-key rotation of %s/%s/%s", jstr(r, "org", "?"),
                 jstr(r, "project", "?"), jstr(r, "env", "?"));
    else
        snprintf(subject, sizeof(subject), "master-key rotation");
    char to[24] = "?";
    if (jint(r, "to"))
        snprintf(to, sizeof(to), "%lld", jint(r, "to"));
    long long done = jint(r, "done"), total = jint(r, "total");
    int pct = total > 0 ? (int)(done * 100 / total) : 0;
    pct = pct > 100 ? 100 : pct;
    char rate[32];
    if (jint(r, "rate"))
        snprintf(rate, sizeof(rate), "%lld/s", jint(r, "rate"));
    else
        snprintf(rate, sizeof(rate), "unlimited");
    const char *err = jstr(r, "lastError", NULL);
    int n = snprintf(out, cap, "%s %lld -> %s: %s %lld/%lld (%d%%), %s", subject, jint(r, "from"), to,
                     jstr(r, "phase", "?"), done, total, pct, rate);
    if (err && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, "; retrying after: %s", err);
}

static bool rotation_matches(yajl_val r, const char *org, const char *project, const char *env)
{
    if (!org)
        return strcmp(jstr(r, "kind", ""), "master") == 0;
    return strcmp(jstr(r, "kind", ""), "env") == 0 && strcmp(jstr(r, "org", ""), org) == 0 &&
           strcmp(jstr(r, "project", ""), project) == 0 && strcmp(jstr(r, "env", ""), env) == 0;
}

/* Poll until the rotation (master when org is NULL) is no longer listed. 0 when it finished. */
static int wait_rotation(const ctl *c, const char *org, const char *project, const char *env)
{
    ctl quiet = *c;
    quiet.quiet = true; /* a server restarting meanwhile is retried, not reported each time */
    quiet.json = false;
    bool tty = !c->json && isatty(STDOUT_FILENO);
    char last[512] = "";
    time_t last_print = 0;
    int fails = 0;
    for (;;) {
        long status = 0;
        buf b;
        if (ctl_request(&quiet, "GET", "/v1/rotations", NULL, &status, &b) != 0 || status != 200) {
            if (status)
                free(b.data);
            if (++fails > WAIT_FAILS_MAX) {
                fprintf(stderr, "%ssecretsctl: the server has not answered for two minutes\n", tty ? "\n" : "");
                return 1;
            }
            sleep_ms(POLL_MS);
            continue;
        }
        fails = 0;
        char ebuf[128];
        yajl_val v = yajl_tree_parse(b.data, ebuf, sizeof(ebuf));
        free(b.data);
        yajl_val match = NULL;
        for (size_t i = 0; v && YAJL_IS_ARRAY(v) && i < v->u.array.len; i++)
            if (rotation_matches(v->u.array.values[i], org, project, env))
                match = v->u.array.values[i];
        if (!match) {
            yajl_tree_free(v);
            if (tty && last[0])
                printf("\r\033[K");
            return 0;
        }
        char line[512];
        rotation_line(match, line, sizeof(line));
        yajl_tree_free(v);
        time_t now = time(NULL);
        if (tty) {
            printf("\r\033[K%s", line);
            fflush(stdout);
        } else if (!c->json && strcmp(line, last) != 0 && now - last_print >= 2) {
            printf("%s\n", line);
            fflush(stdout);
            last_print = now;
        }
        snprintf(last, sizeof(last), "%s", line);
        sleep_ms(POLL_MS);
    }
}

static void rotate_usage(FILE *f, bool master)
{
    if (master)
        fprintf(f, "usage: secretsctl master rotate [--rate N] [--wait]\n"
                   "\n"
                   "Makes a new master-key version active, then re-wraps every environment's data keys under it\n"
                   "in the background and destroys the old version once nothing uses it. Values are not touched:\n"
                   "the cost grows with the number of environments. The server keeps serving meanwhile, and a\n"
                   "restart or crash resumes the rotation where it was.\n"
                   "  --rate N  environments re-wrapped per second (default 2000; 0 = as fast as storage allows)\n"
                   "  --wait    show the progress until the rotation is done\n");
    else
        fprintf(f, "usage: secretsctl env rotate ORG/PROJECT/ENV [--rate N] [--wait]\n"
                   "       secretsctl env show ORG/PROJECT/ENV\n"
                   "\n"
                   "rotate: makes a new data-key version active for the environment, re-encrypts its values under\n"
                   "        it in the background and destroys the old version when no value uses it any more.\n"
                   "        --rate N  values re-encrypted per second (default 2000; 0 = unlimited); --wait  progress\n"
                   "show:   the environment's data-key versions, the master version each is wrapped under, and\n"
                   "        how many values each encrypts.\n");
}

static int rotate(const ctl *c, int argc, char **argv, const char *org, const char *project, const char *env)
{
    static const struct option opts[] = {
        {"rate", required_argument, NULL, 'r'},
        {"wait", no_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *rate = NULL;
    bool wait = false;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "r:wh", opts, NULL)) != -1) {
        switch (o) {
        case 'r':
            rate = optarg;
            break;
        case 'w':
            wait = true;
            break;
        case 'h':
            rotate_usage(stdout, !org);
            return 0;
        default:
            rotate_usage(stderr, !org);
            return 2;
        }
    }
    if (optind != argc || (rate && !rate_valid(rate))) {
        if (rate && !rate_valid(rate))
            fprintf(stderr, "secretsctl: --rate must be an integer from 0 (unlimited) to 1000000\n");
        rotate_usage(stderr, !org);
        return 2;
    }
    char path[512];
    if (org)
        snprintf(path, sizeof(path), "/v1/envs/%s/%s/%s/rotate", org, project, env);
    else
        snprintf(path, sizeof(path), "/v1/master/rotate");
    char *body = rate_body(rate);
    if (!body)
        return 1;
    yajl_val v = call(c, "POST", path, body, 202, 202, !wait);
    free(body);
    if (!v)
        return 1;
    long long from = jint(v, "from");
    if (!c->json) {
        char line[512];
        rotation_line(v, line, sizeof(line));
        printf("started: %s\n", line);
        fflush(stdout);
    }
    yajl_tree_free(v);
    if (!wait)
        return 0;
    if (wait_rotation(c, org, project, env) != 0)
        return 1;
    if (org)
        snprintf(path, sizeof(path), "/v1/envs/%s/%s/%s", org, project, env);
    else
        snprintf(path, sizeof(path), "/v1/status");
    v = call(c, "GET", path, NULL, 200, 200, true);
    if (!v)
        return 1;
    if (!c->json) {
        if (org)
            printf("done: %s/%s/%s uses data-key version %lld; version %lld is destroyed\n", org, project, env,
                   jint(v, "activeVersion"), from);
        else
            printf("done: master-key version %lld is active; version %lld is destroyed\n",
                   jint(jget(v, "masterKey", yajl_t_object), "active"), from);
    }
    yajl_tree_free(v);
    return 0;
}

int ctl_cmd_master(const ctl *c, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        rotate_usage(argc < 2 ? stderr : stdout, true);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "rotate") != 0) {
        fprintf(stderr, "secretsctl: unknown master command \"%s\"\n", argv[1]);
        rotate_usage(stderr, true);
        return 2;
    }
    return rotate(c, argc - 1, argv + 1, NULL, NULL, NULL);
}

static int env_show(const ctl *c, const char *org, const char *project, const char *env)
{
    char path[512];
    snprintf(path, sizeof(path), "/v1/envs/%s/%s/%s", org, project, env);
    yajl_val v = call(c, "GET", path, NULL, 200, 200, true);
    if (!v)
        return 1;
    if (!c->json) {
        printf("%s/%s/%s: active data-key version %lld, %lld values\n", org, project, env, jint(v, "activeVersion"),
               jint(v, "values"));
        yajl_val keys = jget(v, "dataKeys", yajl_t_array);
        for (size_t i = 0; keys && i < keys->u.array.len; i++) {
            yajl_val k = keys->u.array.values[i];
            printf("  version %lld: wrapped under master version %lld, %lld values%s\n", jint(k, "version"),
                   jint(k, "masterVersion"), jint(k, "values"),
                   YAJL_IS_TRUE(jget(k, "active", yajl_t_any)) ? " (active)" : "");
        }
        yajl_val rot = jget(v, "rotation", yajl_t_object);
        if (rot) {
            char line[512];
            rotation_line(rot, line, sizeof(line));
            printf("rotation: %s\n", line);
        }
    }
    yajl_tree_free(v);
    return 0;
}

int ctl_cmd_env(const ctl *c, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        rotate_usage(argc < 2 ? stderr : stdout, false);
        return argc < 2 ? 2 : 0;
    }
    bool is_rotate = strcmp(argv[1], "rotate") == 0, is_show = strcmp(argv[1], "show") == 0;
    if (!is_rotate && !is_show) {
        fprintf(stderr, "secretsctl: unknown env command \"%s\"\n", argv[1]);
        rotate_usage(stderr, false);
        return 2;
    }
    if (wants_help(argc - 1, argv + 1)) {
        rotate_usage(stdout, false);
        return 0;
    }
    char org[65], project[65], env[65];
    if (argc < 3 || !split_env(argv[2], org, project, env)) {
        fprintf(stderr, "secretsctl: give the environment as ORG/PROJECT/ENV (each [A-Za-z0-9._-], 1-64)\n");
        return 2;
    }
    if (is_show)
        return argc == 3 ? env_show(c, org, project, env) : (rotate_usage(stderr, false), 2);
    /* rotate: options after the environment */
    argv[2] = argv[1];
    return rotate(c, argc - 2, argv + 2, org, project, env);
}

/* ---- status ------------------------------------------------------------------------------------------ */

int ctl_cmd_status(const ctl *c, int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: secretsctl status\n\n"
               "Shows the server's version and storage, whether the keyring is unsealed and by which seal, the\n"
               "active master-key version and every live version with how many data keys it still wraps, and\n"
               "the key rotations in progress with their progress.\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: secretsctl status\n");
        return 2;
    }
    yajl_val v = call(c, "GET", "/v1/status", NULL, 200, 200, true);
    if (!v)
        return 1;
    if (!c->json) {
        printf("server:      secretsd %s, %lld threads, storage %s\n", jstr(v, "version", "?"), jint(v, "threads"),
               jstr(v, "storage", "?"));
        printf("seal:        %s, %s\n", jstr(v, "seal", "?"),
               YAJL_IS_TRUE(jget(v, "sealed", yajl_t_any)) ? "sealed" : "unsealed");
        yajl_val mk = jget(v, "masterKey", yajl_t_object);
        printf("master key:  version %lld active\n", jint(mk, "active"));
        yajl_val vers = jget(mk, "versions", yajl_t_array);
        for (size_t i = 0; vers && i < vers->u.array.len; i++) {
            yajl_val x = vers->u.array.values[i];
            printf("             version %lld wraps %lld data keys%s\n", jint(x, "version"), jint(x, "dataKeys"),
                   YAJL_IS_TRUE(jget(x, "active", yajl_t_any)) ? " (active)" : "");
        }
        printf("data keys:   %lld\n", jint(v, "dataKeys"));
        yajl_val rots = jget(v, "rotations", yajl_t_array);
        if (!rots || rots->u.array.len == 0)
            printf("rotations:   none in progress\n");
        for (size_t i = 0; rots && i < rots->u.array.len; i++) {
            char line[512];
            rotation_line(rots->u.array.values[i], line, sizeof(line));
            printf("%s%s\n", i == 0 ? "rotations:   " : "             ", line);
        }
    }
    yajl_tree_free(v);
    return 0;
}

/* ---- seal -------------------------------------------------------------------------------------------- */

/* The server refuses a new passphrase seal under this many characters (SX_CRYPTO_PASSPHRASE_MIN_CHARS);
 * checked here too, so that a passphrase that would be refused is never sent. */
#define MIN_PASSPHRASE_CHARS 12

/* Characters (UTF-8 code points) of s. */
static int passphrase_chars(const char *s)
{
    int n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static void seal_usage(FILE *f)
{
    fprintf(f, "usage: secretsctl seal list\n"
               "       secretsctl seal add --type file --key-file NEW_PATH [--label L]\n"
               "       secretsctl seal add --type passphrase --passphrase-env NAME [--label L]\n"
               "       secretsctl seal add --type tpm [--tcti TCTI] [--pcrs sha256:7,14] [--pin-env NAME] [--label L]\n"
               "       secretsctl seal remove ID [--force]\n"
               "       secretsctl seal rekey\n"
               "       secretsctl seal migrate --to file|passphrase|tpm [the options of add]\n"
               "       secretsctl --config FILE seal recover [--key-file-in PATH]\n"
               "\n"
               "The keyring is encrypted under one keyring key; each slot wraps that key under one unlock method\n"
               "(a key file, a passphrase, one machine's TPM, the recovery key). A node unlocks with a slot of the\n"
               "type its [seal] names. Every change is online: no node restarts.\n"
               "list:    the slots: id, type, label, created, last used, PCRs (never key material).\n"
               "add:     a new slot, made on the node whose admin socket this talks to (a TPM slot with that\n"
               "         machine's TPM; a file slot creates NEW_PATH there, which must not exist). A passphrase (at\n"
               "         least 12 characters) or a TPM PIN is read from the environment variable NAME of this\n"
               "         process, never from the command line.\n"
               "remove:  removes slot ID. Refused for the last slot, and without --force for the slot the node\n"
               "         opened with and for the recovery slot (0).\n"
               "rekey:   a new keyring key, wrapped again into this node's slot and the recovery slot; every other\n"
               "         slot is removed (listed: add them again). Copies of old slots stop opening the keyring.\n"
               "migrate: add + remove of this node's slot in one step. Afterwards change [seal] in the server's\n"
               "         configuration as printed, or the next start fails.\n"
               "recover: works while the server is STOPPED: runs `secretsd --config FILE --recover`, which reads\n"
               "         the recovery key from stdin (or from --key-file-in PATH) and adds a slot for the seal\n"
               "         configured in FILE, removing this node's lost slots of that type.\n");
}

static int seal_recover(const ctl *c, int argc, char **argv)
{
    const char *key_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--key-file-in") == 0 && i + 1 < argc) {
            key_file = argv[++i];
        } else {
            seal_usage(stderr);
            return 2;
        }
    }
    if (!c->config_path) {
        fprintf(stderr, "secretsctl: seal recover needs --config FILE (the server's configuration)\n");
        return 2;
    }
    if (key_file && !freopen(key_file, "r", stdin)) {
        fprintf(stderr, "secretsctl: cannot read \"%s\": %s\n", key_file, strerror(errno));
        return 1;
    }
    /* secretsd next to this binary, else from PATH. */
    char self[PATH_MAX], prog[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    snprintf(prog, sizeof(prog), "secretsd");
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(prog, sizeof(prog), "%s/secretsd", self);
            if (access(prog, X_OK) != 0)
                snprintf(prog, sizeof(prog), "secretsd");
        }
    }
    fflush(stdout);
    execlp(prog, "secretsd", "--config", c->config_path, "--recover", (char *)NULL);
    fprintf(stderr, "secretsctl: cannot run %s: %s\n", prog, strerror(errno));
    return 1;
}

static void gen_kv(yajl_gen g, const char *k, const char *v, size_t vlen)
{
    yajl_gen_string(g, (const unsigned char *)k, strlen(k));
    yajl_gen_string(g, (const unsigned char *)v, vlen);
}

/* seal add (add) or seal migrate: the options name a method; the body carries it. */
static int seal_change(const ctl *c, int argc, char **argv, bool add)
{
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'},       {"type", required_argument, NULL, 't'},
        {"key-file", required_argument, NULL, 'k'}, {"passphrase-env", required_argument, NULL, 'p'},
        {"tcti", required_argument, NULL, 'T'},     {"pcrs", required_argument, NULL, 'P'},
        {"pin-env", required_argument, NULL, 'n'},  {"label", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *to = NULL, *key_file = NULL, *pass_env = NULL, *tcti = NULL, *pcrs = NULL, *pin_env = NULL;
    const char *label = NULL;
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "t:k:p:T:P:n:l:h", opts, NULL)) != -1) {
        switch (o) {
        case 't':
            to = optarg;
            break;
        case 'k':
            key_file = optarg;
            break;
        case 'p':
            pass_env = optarg;
            break;
        case 'T':
            tcti = optarg;
            break;
        case 'P':
            pcrs = optarg;
            break;
        case 'n':
            pin_env = optarg;
            break;
        case 'l':
            label = optarg;
            break;
        case 'h':
            seal_usage(stdout);
            return 0;
        default:
            seal_usage(stderr);
            return 2;
        }
    }
    if (!to || optind != argc || (label && !add)) {
        seal_usage(stderr);
        return 2;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    gen_kv(g, add ? "type" : "to", to, strlen(to));
    if (label)
        gen_kv(g, "label", label, strlen(label));
    char abs[PATH_MAX];
    int rc = 0;
    if (strcmp(to, "file") == 0) {
        if (!key_file || pass_env || tcti || pcrs || pin_env || !absolute(key_file, abs, sizeof(abs)))
            rc = 2;
        else
            gen_kv(g, "keyFile", abs, strlen(abs));
    } else if (strcmp(to, "passphrase") == 0) {
        const char *pass = pass_env ? getenv(pass_env) : NULL;
        if (!pass_env || key_file || tcti || pcrs || pin_env) {
            rc = 2;
        } else if (!pass || !*pass) {
            fprintf(stderr, "secretsctl: the environment variable \"%s\" is empty or unset\n", pass_env);
            rc = 3;
        } else if (passphrase_chars(pass) < MIN_PASSPHRASE_CHARS) {
            fprintf(stderr,
                    "secretsctl: the passphrase in \"%s\" is shorter than %d characters; a passphrase seal needs a "
                    "longer one\n",
                    pass_env, MIN_PASSPHRASE_CHARS);
            rc = 3;
        } else {
            gen_kv(g, "passphrase", pass, strlen(pass));
            gen_kv(g, "passphraseEnv", pass_env, strlen(pass_env));
        }
    } else if (strcmp(to, "tpm") == 0) {
        const char *pin = pin_env ? getenv(pin_env) : NULL;
        if (key_file || pass_env)
            rc = 2;
        if (tcti)
            gen_kv(g, "tcti", tcti, strlen(tcti));
        if (pcrs)
            gen_kv(g, "pcrs", pcrs, strlen(pcrs));
        if (pin_env && (!pin || !*pin)) {
            fprintf(stderr, "secretsctl: the environment variable \"%s\" is empty or unset\n", pin_env);
            rc = 3;
        } else if (pin_env) {
            gen_kv(g, "pin", pin, strlen(pin));
            gen_kv(g, "pinEnv", pin_env, strlen(pin_env));
        }
    } else {
        rc = 2;
    }
    yajl_gen_map_close(g);
    const unsigned char *body;
    size_t blen;
    yajl_gen_get_buf(g, &body, &blen);
    yajl_val v = NULL;
    if (rc == 0)
        v = call(c, "POST", add ? "/v1/seal/slots" : "/v1/seal/migrate", (const char *)body, add ? 201 : 200,
                 add ? 201 : 200, true);
    sodium_memzero((void *)body, blen); /* may hold the passphrase or PIN */
    yajl_gen_free(g);
    if (rc == 3)
        return 2;
    if (rc == 2) {
        fprintf(stderr, "secretsctl: file needs --key-file; passphrase needs --passphrase-env; tpm takes --tcti, "
                        "--pcrs and --pin-env; no other combination\n");
        return 2;
    }
    if (!v)
        return 1;
    if (!c->json) {
        yajl_val cfg = jget(v, "config", yajl_t_object);
        if (add)
            printf("Added slot %lld (%s%s%s). A node unlocks with it when its [seal] says:\n\n[seal]\n",
                   jint(v, "slot"), jstr(v, "seal", "?"), label ? ", " : "", label ? label : "");
        else
            printf("The keyring is now sealed by a %s seal (slot %lld); the previous slot of this node no longer\n"
                   "opens it. Before secretsd starts again, set [seal] in %s to:\n\n[seal]\n",
                   jstr(v, "seal", "?"), jint(v, "slot"), c->config_path ? c->config_path : "its configuration");
        for (size_t i = 0; cfg && i < cfg->u.object.len; i++)
            if (YAJL_IS_STRING(cfg->u.object.values[i]))
                printf("%s = %s\n", cfg->u.object.keys[i], YAJL_GET_STRING(cfg->u.object.values[i]));
        if (strcmp(to, "passphrase") == 0)
            printf("\nand start it with the passphrase in the environment variable \"%s\".\n", pass_env);
        if (pin_env)
            printf("\nand start it with the PIN in the environment variable \"%s\".\n", pin_env);
    }
    yajl_tree_free(v);
    return 0;
}

/* One slot as a line of `seal list`. */
static void print_slot(yajl_val s)
{
    yajl_val pcrs = jget(s, "pcrs", yajl_t_string), pin = jget(s, "pin", yajl_t_any);
    char tpm[128] = "";
    if (pcrs)
        snprintf(tpm, sizeof(tpm), "%s%s", YAJL_GET_STRING(pcrs), pin && YAJL_IS_TRUE(pin) ? "+pin" : "");
    printf("%-4lld %-10s %-20s %-24s %-24s %s%s%s\n", jint(s, "id"), jstr(s, "type", "?"), jstr(s, "label", ""),
           jstr(s, "created", "-"), jstr(s, "lastUsed", "never"), tpm,
           YAJL_IS_TRUE(jget(s, "current", yajl_t_any)) ? (tpm[0] ? " (this node)" : "(this node)") : "",
           YAJL_IS_TRUE(jget(s, "stale", yajl_t_any)) ? " (stale: wraps a replaced key)" : "");
}

static void print_slots(yajl_val arr)
{
    printf("%-4s %-10s %-20s %-24s %-24s %s\n", "ID", "TYPE", "LABEL", "CREATED", "LAST USED", "PCRS");
    for (size_t i = 0; arr && i < arr->u.array.len; i++)
        print_slot(arr->u.array.values[i]);
}

static int seal_list(const ctl *c, int argc)
{
    if (argc != 1) {
        seal_usage(stderr);
        return 2;
    }
    yajl_val v = call(c, "GET", "/v1/seal/slots", NULL, 200, 200, true);
    if (!v)
        return 1;
    if (!c->json)
        print_slots(jget(v, "slots", yajl_t_array));
    yajl_tree_free(v);
    return 0;
}

static int seal_remove(const ctl *c, int argc, char **argv)
{
    const char *id = NULL;
    bool force = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--force") == 0)
            force = true;
        else if (!id && argv[i][0] >= '0' && argv[i][0] <= '9' && strspn(argv[i], "0123456789") == strlen(argv[i]))
            id = argv[i];
        else {
            seal_usage(stderr);
            return 2;
        }
    }
    if (!id || strlen(id) > 10) {
        seal_usage(stderr);
        return 2;
    }
    char path[64];
    snprintf(path, sizeof(path), "/v1/seal/slots/%s", id);
    yajl_val v = call(c, "DELETE", path, force ? "{\"force\":true}" : NULL, 200, 200, true);
    if (!v)
        return 1;
    if (!c->json)
        printf("Removed slot %lld (%s): it no longer opens the keyring.\n", jint(v, "removed"), jstr(v, "type", "?"));
    yajl_tree_free(v);
    return 0;
}

static int seal_rekey(const ctl *c, int argc)
{
    if (argc != 1) {
        seal_usage(stderr);
        return 2;
    }
    yajl_val v = call(c, "POST", "/v1/seal/rekey", "{}", 200, 200, true);
    if (!v)
        return 1;
    if (!c->json) {
        yajl_val gone = jget(v, "removed", yajl_t_array);
        printf("The keyring has a new keyring key. Slots that open it:\n");
        print_slots(jget(v, "slots", yajl_t_array));
        if (gone && gone->u.array.len) {
            printf("\nRemoved (their method is not at hand on this node; add them again with seal add):\n");
            print_slots(gone);
        }
    }
    yajl_tree_free(v);
    return 0;
}

int ctl_cmd_seal(const ctl *c, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        seal_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "migrate") == 0)
        return seal_change(c, argc - 1, argv + 1, false);
    if (strcmp(argv[1], "add") == 0)
        return seal_change(c, argc - 1, argv + 1, true);
    if (strcmp(argv[1], "list") == 0)
        return seal_list(c, argc - 1);
    if (strcmp(argv[1], "remove") == 0)
        return seal_remove(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "rekey") == 0)
        return seal_rekey(c, argc - 1);
    if (strcmp(argv[1], "recover") == 0) {
        if (wants_help(argc - 1, argv + 1)) {
            seal_usage(stdout);
            return 0;
        }
        return seal_recover(c, argc - 1, argv + 1);
    }
    fprintf(stderr, "secretsctl: unknown seal command \"%s\"\n", argv[1]);
    seal_usage(stderr);
    return 2;
}

/* ---- backup ------------------------------------------------------------------------------------------ */

int ctl_cmd_backup(const ctl *c, int argc, char **argv)
{
    if (wants_help(argc, argv) || argc != 2) {
        FILE *f = argc != 2 && !wants_help(argc, argv) ? stderr : stdout;
        fprintf(f, "usage: secretsctl backup DIR\n"
                   "\n"
                   "Writes an online, consistent backup of the running server's store into DIR, which must not\n"
                   "exist: DIR/data (a RocksDB checkpoint) and DIR/MANIFEST.json (every file with its size and\n"
                   "BLAKE2b hash, record counts, the seal type). The backup does NOT contain the seal: to open it\n"
                   "you need the seal key file, passphrase or TPM that sealed the keyring when it was taken, or\n"
                   "the recovery key. Restore with `secretsd --config FILE --restore DIR` (server stopped).\n");
        return f == stdout ? 0 : 2;
    }
    char abs[PATH_MAX];
    if (!absolute(argv[1], abs, sizeof(abs))) {
        fprintf(stderr, "secretsctl: the path is too long\n");
        return 2;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    yajl_gen_map_open(g);
    gen_kv(g, "dir", abs, strlen(abs));
    yajl_gen_map_close(g);
    const unsigned char *body;
    size_t blen;
    yajl_val v = NULL;
    if (yajl_gen_get_buf(g, &body, &blen) == yajl_gen_status_ok)
        v = call(c, "POST", "/v1/backup", (const char *)body, 201, 201, true);
    else
        fprintf(stderr, "secretsctl: the path is not valid UTF-8\n");
    yajl_gen_free(g);
    if (!v)
        return 1;
    if (!c->json) {
        yajl_val rec = jget(v, "records", yajl_t_object);
        printf("backup written to %s: %lld files, %lld bytes\n"
               "  %lld secrets (%lld values) in %lld environments, %lld data keys, %lld tokens; master version %lld\n"
               "  sealed by a %s seal, which is NOT in the backup: keep that seal (or the recovery key) to open it.\n"
               "  restore: secretsd --config FILE --restore %s\n",
               abs, jint(v, "files"), jint(v, "bytes"), jint(rec, "secrets"), jint(rec, "values"), jint(rec, "envs"),
               jint(rec, "dataKeys"), jint(rec, "tokens"), jint(v, "activeMasterVersion"), jstr(v, "seal", "?"), abs);
    }
    yajl_tree_free(v);
    return 0;
}

/* secretsctl audit verify FILE [--rotated]: the server checks the file (the MAC key never leaves
 * it) and answers the first bad line or OK. Exit 0 when the chain is intact, 1 when it is not. */
int ctl_cmd_audit(const ctl *c, int argc, char **argv)
{
    bool rotated = false;
    const char *file = NULL;
    bool bad = argc < 2 || strcmp(argv[1], "verify") != 0;
    for (int i = 2; !bad && i < argc; i++) {
        if (strcmp(argv[i], "--rotated") == 0)
            rotated = true;
        else if (!file && argv[i][0] != '-')
            file = argv[i];
        else if (strcmp(argv[i], "--help") != 0 && strcmp(argv[i], "-h") != 0)
            bad = true;
    }
    if (wants_help(argc, argv) || bad || !file) {
        FILE *f = wants_help(argc, argv) ? stdout : stderr;
        fprintf(f, "usage: secretsctl audit verify FILE [--rotated]\n"
                   "\n"
                   "Asks the running server to check the audit log FILE: every line's MAC, their order, and that\n"
                   "the file ends at the chain head the server keeps in storage (so a cut tail is caught).\n"
                   "--rotated checks an older, rotated file, which ends before the current head.\n"
                   "Prints OK, or the first bad line and why; exits 0 when intact, 1 otherwise.\n");
        return f == stdout ? 0 : 2;
    }
    char abs[PATH_MAX];
    if (!absolute(file, abs, sizeof(abs))) {
        fprintf(stderr, "secretsctl: the path is too long\n");
        return 2;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    yajl_gen_map_open(g);
    gen_kv(g, "path", abs, strlen(abs));
    yajl_gen_string(g, (const unsigned char *)"rotated", 7);
    yajl_gen_bool(g, rotated);
    yajl_gen_map_close(g);
    const unsigned char *body;
    size_t blen;
    yajl_val v = NULL;
    if (yajl_gen_get_buf(g, &body, &blen) == yajl_gen_status_ok)
        v = call(c, "POST", "/v1/audit/verify", (const char *)body, 200, 200, true);
    else
        fprintf(stderr, "secretsctl: the path is not valid UTF-8\n");
    yajl_gen_free(g);
    if (!v)
        return 1;
    yajl_val okv = yajl_tree_get(v, (const char *[]){"ok", NULL}, yajl_t_any);
    bool ok = okv && YAJL_IS_TRUE(okv);
    if (!c->json) {
        /* The node whose chain the file is; none for a file from before per-node chains. */
        const char *node = jstr(v, "node", "(none)");
        if (ok)
            printf("OK: node %s, %lld lines, seq %lld..%lld, chain head seq %lld\n", node, jint(v, "lines"),
                   jint(v, "firstSeq"), jint(v, "lastSeq"), jint(v, "headSeq"));
        else if (jint(v, "badLine"))
            printf("BAD: node %s, line %lld: %s\n", node, jint(v, "badLine"), jstr(v, "reason", "?"));
        else
            printf("BAD: node %s: %s\n", node, jstr(v, "reason", "?"));
    }
    yajl_tree_free(v);
    return ok ? 0 : 1;
}
