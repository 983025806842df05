# shellcheck shell=bash disable=SC2034 # the R_* figures, WORK, LOGS, TOKEN and AUTH are for the sourcing script
# bench/lib.sh - what the HTTP benchmarks (bench/run, bench/growth) share: argument checks, the
# build, the temporary folders, an owner token, seeding the bench/app/prod environment through the
# real API, h2load runs and their percentiles, /proc figures of a server, ratios and the targets'
# verdicts.
#
# Sourced by each script after it sets BENCH_PROG (its name in messages: "bench/run") and ROOT
# (the repository). Functions that need more say so; they read the script's settings (BUILD_DIR,
# BUILD_TYPE, LOAD_THREADS, SECRETSCTL, WORK, LOGS, AUTH, SD, PROD) when called, not when sourced.

# Print MESSAGE as "$BENCH_PROG: MESSAGE" on stderr and exit 1.
die() {
    echo "$BENCH_PROG: $*" >&2
    exit 1
}

# The script's opening comment block (from line 2 to "set -euo pipefail"), without the "# ".
bench_help() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

# A duration setting ("10s" or "10") as whole seconds; exits 2 on anything else.
secs() {
    local v="${1%s}"
    [[ "$v" =~ ^[0-9]+$ ]] || { echo "$BENCH_PROG: \"$1\" is not a whole number of seconds" >&2; exit 2; }
    echo "$v"
}

# Exit 1 unless every tool is on PATH; the message names the Debian packages to install.
require_tools() { # packages tool...
    local pkgs=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is missing (apt-get install $pkgs)"
    done
}

# Build the targets (BUILD_TYPE, in BUILD_DIR) unless SKIP_BUILD=1; the compiler's output goes to
# BUILD_DIR/LOG, whose tail is printed when the build fails.
bench_build() { # log target...
    local log=$1
    shift
    [ "${SKIP_BUILD:-0}" != 1 ] || return 0
    echo "== building ($BUILD_TYPE) in $BUILD_DIR"
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" >/dev/null
    cmake --build "$BUILD_DIR" -j"$(nproc)" --target "$@" >"$BUILD_DIR/$log" 2>&1 ||
        { tail -n 30 "$BUILD_DIR/$log" >&2; die "the build failed"; }
}

# Make the temporary folders: WORK on disk (sync on must mean a real fsync), mode 0700, and LOGS
# for the load generators' per-request logs, in memory when /dev/shm is writable.
bench_workdir() { # name
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    chmod 700 "$WORK"
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then
        LOGS=$(mktemp -d "/dev/shm/$1.XXXXXX")
    else
        LOGS="$WORK/logs"
        mkdir -p "$LOGS"
    fi
}

# An owner token of the org "bench" minted over the admin socket WORK/secretsd.sock: sets TOKEN and
# AUTH (the Authorization header line).
bench_token() { # label
    TOKEN=$("$SECRETSCTL" --socket "$WORK/secretsd.sock" token create --org bench --role owner --label "$1" \
        --ttl 24h 2>/dev/null | tail -n 1)
    [ -n "$TOKEN" ] || die "secretsctl token create failed"
    AUTH="Authorization: Bearer $TOKEN"
}

# ---- seeding through the real API ----------------------------------------------------------------

# One transfer of a curl config file (curl -K): METHOD URL with the JSON body BODY, AUTH and the
# status written out on a line of its own.
seed_entry() { # method url body
    printf 'url = "%s"\nrequest = "%s"\nheader = "%s"\nheader = "Content-Type: application/json"\ndata = "%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nnext\n' \
        "$2" "$1" "$AUTH" "$(printf '%s' "$3" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

# The creates of SECRET_000..SECRET_(N-1) in SD/PROD, each with a description (curl config lines).
seed_prod_secrets() { # n
    local i n
    for i in $(seq 0 $(($1 - 1))); do
        n=$(printf 'SECRET_%03d' "$i")
        seed_entry POST "$SD$PROD/secrets" "{\"kind\":\"secret\",\"name\":\"$n\",\"description\":\"benchmark secret number $i of the prod environment\"}"
    done
}

# The values of SECRET_000..SECRET_(N-1) in SD/PROD (curl config lines).
seed_prod_values() { # n
    local i
    for i in $(seq 0 $(($1 - 1))); do
        seed_entry PUT "$SD$PROD/secrets/$(printf 'SECRET_%03d' "$i")/value" \
            "{\"value\":\"postgres://app:$(printf '%064x' $((i * 7919 + 13)))@db.internal:5432/app\"}"
    done
}

# ---- load ------------------------------------------------------------------------------------------

# p50/p99 in ms of an h2load --log-file (start_us, status, elapsed_us per line).
log_percentiles() {
    cut -f3 "$1" | sort -n | awk '{v[NR] = $1} END {
        if (NR == 0) { print "- -"; exit }
        i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
        i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
        printf "%.3f %.3f\n", v[i50] / 1000, v[i99] / 1000 }'
}

# One h2load run of DURATION seconds with LOAD_THREADS threads and AUTH; the arguments name the
# URL (or -i FILE) and the load. Sets R_RPS, R_REQS (requests done), R_BAD (non-2xx and errors),
# R_PROTO, R_P50 and R_P99 (ms). Its output and per-request log go to LOGS/h2load$LOGTAG.out/.log.
# With H2LOAD_LOG=0 there is no per-request log and R_P50/R_P99 are "-": writing a line per request
# costs h2load, which shares the cores with the server, about a third of its rate against a bare
# h2o handler, so throughput is measured without it.
run_h2load() { # duration h2load-args...
    local d=$1 lf="$LOGS/h2load${LOGTAG:-}.log" o="$LOGS/h2load${LOGTAG:-}.out"
    shift
    rm -f "$lf"
    local logarg=(--log-file="$lf")
    [ "${H2LOAD_LOG:-1}" = 0 ] && logarg=()
    h2load -t "$LOAD_THREADS" -D "$d" -H "$AUTH" "${logarg[@]}" "$@" >"$o" 2>&1 || true
    if [ "${H2LOAD_LOG:-1}" = 0 ]; then h2load_result "$o" ""; else h2load_result "$o" "$lf"; fi
}

# The R_* figures of run_h2load from an h2load output file and its per-request log ("" = none:
# R_P50/R_P99 are "-"), also for an h2load that ran in the background.
h2load_result() { # output log
    local o=$1 lf=$2
    R_RPS=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$o")
    # "requests: T total, S started, D done, OK succeeded, F failed, E errored, TO timeout": failed
    # counts every done request that was not a 2xx/3xx (errors included); the status-code line
    # also counts streams still open when the run ended, so it is only a lower bound.
    local ndone failed timeout c4 c5
    ndone=$(sed -n 's/^requests: .* \([0-9]*\) done,.*/\1/p' "$o")
    failed=$(sed -n 's/^requests: .* \([0-9]*\) failed,.*/\1/p' "$o")
    timeout=$(sed -n 's/^requests: .* \([0-9]*\) timeout.*/\1/p' "$o")
    R_REQS=${ndone:-0}
    R_BAD=$((${failed:-0} + ${timeout:-0}))
    c4=$(sed -n 's/^status codes: .* \([0-9]*\) 4xx.*/\1/p' "$o")
    c5=$(sed -n 's/^status codes: .* \([0-9]*\) 5xx.*/\1/p' "$o")
    [ $((${c4:-0} + ${c5:-0})) -gt "$R_BAD" ] && R_BAD=$((${c4:-0} + ${c5:-0}))
    R_PROTO=$(sed -n 's/^Application protocol: //p' "$o")
    if [ -z "$R_RPS" ] || [ "${ndone:-0}" = 0 ]; then
        echo "$BENCH_PROG: h2load failed:" >&2
        tail -n 5 "$o" >&2
        R_RPS=0; R_P50=-; R_P99=-
        return
    fi
    if [ -z "$lf" ]; then
        R_P50=-; R_P99=-
    else
        read -r R_P50 R_P99 < <(log_percentiles "$lf")
    fi
}

# ---- a server's figures from /proc -------------------------------------------------------------------

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo -1; }
CLK_TCK=$(getconf CLK_TCK)

# CPU microseconds per request of TICKS clock ticks over N requests, "%.1f".
cpu_per_req() { # ticks n
    awk -v t="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}'
}

# ---- the report: ratios and targets ------------------------------------------------------------------

fmt_rps() { awk -v v="$1" 'BEGIN { if (v == "" || v == "-") print "-"; else printf "%.0f", v }'; }
# a / b with two decimals, "-" when either is "-" or b is not positive.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b != "-" && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && a + 0 >= b + 0) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && a + 0 <= b + 0) }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && a + 0 < b + 0) }'; }

# Add a line to TARGET_ROWS: MET (yes), MISSED (no), info (info) or n/a (anything else), then text.
TARGET_ROWS=()
target() { # text yes|no|info|skip
    local verdict
    case $2 in yes) verdict="MET" ;; no) verdict="MISSED" ;; info) verdict="info" ;; *) verdict="n/a" ;; esac
    TARGET_ROWS+=("$(printf '  %-7s %s' "$verdict" "$1")")
}
