#!/usr/bin/env bash
# check_man.sh MANDIR EXAMPLE - the man pages built by scdoc (secretsd.8, secretsctl.1,
# secrets.conf.5 in MANDIR) render with `man -l` without a groff warning, and secrets.conf(5)
# names every key of secrets.conf.example (EXAMPLE) in the section of that key.
set -euo pipefail
MANDIR=$1
EXAMPLE=$2
fail=0
for page in secretsd.8 secretsctl.1 secrets.conf.5; do
    f="$MANDIR/$page"
    if [ ! -s "$f" ]; then
        echo "FAIL: $f was not built"
        fail=1
        continue
    fi
    err=$(MANWIDTH=100 MANROFFOPT=-ww man -l "$f" 2>&1 >/dev/null) || {
        echo "FAIL: man -l $page: status $?"
        fail=1
    }
    if [ -n "$err" ]; then
        echo "FAIL: man -l $page warns:"
        echo "$err"
        fail=1
    fi
    lines=$(MANWIDTH=100 man -l "$f" 2>/dev/null | wc -l)
    if [ "$lines" -lt 40 ] || ! MANWIDTH=100 man -l "$f" 2>/dev/null | grep -q "^NAME"; then
        echo "FAIL: $page renders to $lines lines, or without a NAME section"
        fail=1
    fi
    echo "$page: $lines lines"
done

# Every [section] key of the example (set, or shown commented out as "# key = value").
text=$(MANWIDTH=200 man -l "$MANDIR/secrets.conf.5" 2>/dev/null | sed 's/\x08.//g')
keys=$(awk '
    /^\[[a-z]+\]/ { sec = substr($1, 2, length($1) - 2); next }
    sec != "" && match($0, /^(# )?[a-z_0-9]+ =/) { k = $0; sub(/^# /, "", k); sub(/ =.*/, "", k); print sec, k }
' "$EXAMPLE" | sort -u)
n=0
while read -r sec key; do
    n=$((n + 1))
    # The key's line inside its section of the page: from "[sec]" to the next "[...]" heading.
    if ! awk -v s="[$sec]" -v k="$key" '
        /^[^ ]/ { in_sec = ($0 == s) }
        in_sec && index($0, k " =") { found = 1 }
        END { exit !found }' <<<"$text"; then
        echo "FAIL: secrets.conf(5) does not name [$sec] $key"
        fail=1
    fi
done <<<"$keys"
[ "$n" -ge 40 ] || {
    echo "FAIL: only $n keys found in $EXAMPLE"
    fail=1
}
echo "secrets.conf(5) names the $n keys of $(basename "$EXAMPLE")"
exit $fail
