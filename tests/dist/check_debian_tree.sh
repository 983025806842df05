#!/usr/bin/env bash
# check_debian_tree.sh SOURCE_DIR CONFIG_CHECK PACKAGED_CONF - the quick check of the packaging,
# without building the package (check_package.sh does that): the debian/ tree parses, its build
# dependencies are installed, `dh binary --no-act` runs the steps that ship the unit, the user,
# the logrotate file and the conffile, and the configuration the package installs (generated from
# secrets.conf.example) loads, with its paths under the unit's folders.
set -euo pipefail
SRC=$1
CONFIG_CHECK=$2
CONF=$3
command -v dh >/dev/null 2>&1 || {
    echo "debhelper is not installed (scripts/install-deps): skipped"
    exit 77
}
cd "$SRC"
dpkg-parsechangelog -l debian/changelog -S Version >/dev/null
dpkg-checkbuilddeps
grep -qx 13 <(sed -n 's/.*debhelper-compat (= \([0-9]*\)).*/\1/p' debian/control)
seq=$(dh binary --no-act)
for step in dh_auto_configure dh_auto_install dh_installsysusers dh_installsystemd dh_installlogrotate \
    dh_installman dh_shlibdeps dh_gencontrol; do
    grep -qE "(^| |override_)$step\b" <<<"$seq" || {
        echo "$seq"
        echo "FAIL: dh binary does not run $step"
        exit 1
    }
done
echo "dh binary --no-act: $(wc -l <<<"$seq") steps, the service's included"

"$CONFIG_CHECK" "$CONF"
for want in "admin_socket = /run/secretsd/secretsd.sock" "path = /var/lib/secretsd/data" \
    "key_file = /var/lib/secretsd/seal.key" "recovery_key_file = /var/lib/secretsd/recovery.key" \
    "access_log = /var/log/secretsd/access.log" "audit_log = /var/log/secretsd/audit.log"; do
    grep -qx "$want" "$CONF" || {
        echo "FAIL: the packaged configuration has no line \"$want\""
        exit 1
    }
done
# Apart from the paths and the opening comment, it is the example.
diff <(sed -n '/^# Syntax:/,$p' "$SRC/secrets.conf.example" | grep -v -e '^admin_socket' -e '^path =' \
    -e '^key_file' -e '^recovery_key_file' -e '^access_log' -e '^audit_log') \
    <(sed -n '/^# Syntax:/,$p' "$CONF" | grep -v -e '^admin_socket' -e '^path =' -e '^key_file' \
        -e '^recovery_key_file' -e '^access_log' -e '^audit_log')
grep -q '^\[Service\]' "$SRC/dist/secretsd.service"
echo "debian tree: ok"
