#!/usr/bin/env bash
# check_package.sh SOURCE_DIR - builds the Debian package with scripts/package (dpkg-buildpackage,
# then lintian: no error), and checks what it ships: the files and the conffile, the dependencies
# from ${shlibs:Depends}, the unit (exposure, and verify with its Documentation= pages found in the
# package), the logrotate configuration, and the packaged binary itself: extracted with
# `dpkg-deb -x`, run with the packaged configuration moved into a temporary folder, it answers
# --version and /healthz, secretsctl reaches its admin socket, and SIGTERM stops it with status 0.
# With SX_PACKAGE_OUT=DIR it checks the package scripts/package built into DIR instead of building.
set -euo pipefail
SRC=$1
for tool in dpkg-buildpackage dpkg-deb dh; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "$tool is not installed (scripts/install-deps): skipped"
        exit 77
    }
done
T=$(mktemp -d)
PID=""
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID" 2>/dev/null || true; fi
    rm -rf "$T"
}
trap cleanup EXIT

if [ -n "${SX_PACKAGE_OUT:-}" ]; then
    # A package scripts/package built before into SX_PACKAGE_OUT (to check it again quickly).
    mkdir -p "$T/out"
    cp "$SX_PACKAGE_OUT"/* "$T/out/"
    DEB=$(ls "$T"/out/secretsd_*.deb | grep -v dbgsym | head -n 1)
else
    "$SRC/scripts/package" "$T/out" >"$T/package.out"
    DEB=$(tail -n 1 "$T/package.out")
fi
[ -f "$DEB" ] || {
    echo "FAIL: scripts/package named no .deb"
    exit 1
}
echo "lintian: $(grep -c '^E:' "$T/out/lintian.txt" || true) errors, $(grep -c '^W:' "$T/out/lintian.txt" || true) warnings"
grep -E '^[EW]:' "$T/out/lintian.txt" || true

VERSION=$(dpkg-deb -f "$DEB" Version)
DEPENDS=$(dpkg-deb -f "$DEB" Depends)
echo "Depends: $DEPENDS"
for lib in libsodium libh2o-evloop librocksdb libyajl libssl; do
    grep -q "$lib" <<<"$DEPENDS" || {
        echo "FAIL: Depends names no $lib"
        exit 1
    }
done
if grep -q '\${' <<<"$DEPENDS"; then
    echo "FAIL: an unexpanded substitution in Depends"
    exit 1
fi

R="$T/root"
dpkg-deb -x "$DEB" "$R"
for f in usr/sbin/secretsd usr/bin/secretsctl lib/systemd/system/secretsd.service etc/secretsd/secrets.conf \
    etc/logrotate.d/secretsd usr/lib/sysusers.d/secretsd.conf usr/share/man/man8/secretsd.8.gz \
    usr/share/man/man1/secretsctl.1.gz usr/share/man/man5/secrets.conf.5.gz \
    usr/share/doc/secretsd/examples/tpm.conf usr/share/doc/secretsd/copyright; do
    [ -e "$R/$f" ] || {
        echo "FAIL: the package has no /$f"
        exit 1
    }
done
dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./conffiles | grep -qx /etc/secretsd/secrets.conf || {
    echo "FAIL: /etc/secretsd/secrets.conf is not a conffile"
    exit 1
}
grep -q '^u secretsd ' "$R/usr/lib/sysusers.d/secretsd.conf"
dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./postinst | grep -q 'systemd-sysusers' || {
    echo "FAIL: postinst does not create the secretsd user"
    exit 1
}

# The packaged binary.
got=$("$R/usr/sbin/secretsd" --version)
[ "$got" = "secretsd $VERSION" ] || {
    echo "FAIL: --version said \"$got\", the package is $VERSION"
    exit 1
}
"$R/usr/bin/secretsctl" --help >/dev/null

# The packaged configuration, its system folders moved under $T and an ephemeral port; nothing else changed.
mkdir -p "$T/lib" "$T/run" "$T/log"
chmod 700 "$T/lib" "$T/run"
sed -e "/^[^#]/s|/var/lib/secretsd|$T/lib|g" -e "/^[^#]/s|/run/secretsd|$T/run|g" \
    -e "/^[^#]/s|/var/log/secretsd|$T/log|g" -e 's|^listen = 127.0.0.1:8080$|listen = 127.0.0.1:0|' \
    "$R/etc/secretsd/secrets.conf" >"$T/secrets.conf"
[ "$(diff "$R/etc/secretsd/secrets.conf" "$T/secrets.conf" | grep -c '^>')" -eq 7 ] || {
    diff "$R/etc/secretsd/secrets.conf" "$T/secrets.conf" || true
    echo "FAIL: expected 7 lines of the packaged configuration to move (6 paths, the port)"
    exit 1
}
"$R/usr/sbin/secretsd" --config "$T/secrets.conf" >"$T/stdout" 2>"$T/stderr" </dev/null &
PID=$!
port=""
for _ in $(seq 1 300); do
    port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$T/stderr" | head -n 1)
    if [ -n "$port" ] && grep -q "serving with" "$T/stderr"; then break; fi
    kill -0 "$PID" 2>/dev/null || {
        cat "$T/stderr"
        echo "FAIL: the packaged secretsd exited at start-up"
        exit 1
    }
    sleep 0.1
done
[ -n "$port" ] || {
    cat "$T/stderr"
    echo "FAIL: the packaged secretsd did not come up"
    exit 1
}
health=$(curl -fsS "http://127.0.0.1:$port/healthz")
[ "$health" = '{"status":"ok"}' ] || {
    echo "FAIL: /healthz answered $health"
    exit 1
}
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null
echo "/healthz: $health on port $port"
"$R/usr/bin/secretsctl" --config "$T/secrets.conf" status >"$T/status"
grep -q "secretsd $VERSION" "$T/status" || {
    cat "$T/status"
    echo "FAIL: secretsctl status over $T/run/secretsd.sock"
    exit 1
}
[ -S "$T/run/secretsd.sock" ] && [ -f "$T/lib/seal.key" ] && [ -d "$T/lib/data" ] && [ -f "$T/lib/recovery.key" ]
grep -q "/healthz" "$T/log/access.log"
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=""
[ "$rc" -eq 0 ] || {
    cat "$T/stderr"
    echo "FAIL: SIGTERM: status $rc"
    exit 1
}
[ -s "$T/log/audit.log" ] || echo "note: no audit line was written (no audited request was made)"

# The unit as installed, with its man pages found where the package puts them.
UNIT="$R/lib/systemd/system/secretsd.service"
if command -v systemd-analyze >/dev/null 2>&1; then
    score=$(systemd-analyze security --offline=yes --no-pager "$UNIT" 2>&1 |
        sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p')
    echo "unit exposure: $score"
    awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }' || {
        echo "FAIL: exposure $score"
        exit 1
    }
    mkdir -p "$T/unit"
    sed "s|^ExecStart=/usr/sbin/secretsd |ExecStart=$R/usr/sbin/secretsd |" "$UNIT" >"$T/unit/secretsd.service"
    out=$(MANPATH="$R/usr/share/man" systemd-analyze verify "$T/unit/secretsd.service" 2>&1) || {
        echo "$out"
        echo "FAIL: systemd-analyze verify"
        exit 1
    }
    [ -z "$out" ] || {
        echo "$out"
        echo "FAIL: systemd-analyze verify complained"
        exit 1
    }
    echo "systemd-analyze verify (with the packaged man pages): ok"
fi

# logrotate reads the configuration (the user named by `su` does not exist on a build machine).
if command -v logrotate >/dev/null 2>&1; then
    sed -e "s|/var/log/secretsd|$T/log|g" -e 's/^\tsu secretsd secretsd$/\tsu root root/' \
        "$R/etc/logrotate.d/secretsd" >"$T/logrotate.conf"
    logrotate -d -s "$T/logrotate.state" "$T/logrotate.conf" >"$T/logrotate.out" 2>&1 || {
        cat "$T/logrotate.out"
        echo "FAIL: logrotate does not accept the configuration"
        exit 1
    }
    grep -q "$T/log/access.log" "$T/logrotate.out"
    echo "logrotate: accepted"
fi
echo "package: ok"
