#!/usr/bin/env bash
# static_check.sh [SOURCE_ROOT] - heuristic source checks for secret hygiene (ctest: security_static_check).
#
# 1. No variable-time comparison of MACs, hashes or tokens: a memcmp/strcmp/strncmp/bcmp/
#    strcasecmp/strncasecmp call in common/, crypto/, auth/, audit/, secrets/, ops/, server/ or
#    ctl/ whose arguments (string literals removed) mention mac, hash, token, tag, key, secret or
#    digest fails the check. Such values are compared with sodium_memcmp.
# 2. No value, token or key material in a log line: an sx_log()/sx_logv() call anywhere in the
#    tree whose arguments after the format string (string literals removed) mention value, token,
#    plain, secret, passphrase or recovery fails the check. ALL_CAPS constants are
#    ignored there: logging a constant cannot leak anything.
#
# Both are heuristics over identifiers, so a hit that compares or logs something public is listed
# in the allowlists below, each entry with the reason it is safe. An entry is "FILE|FRAGMENT": the
# hit is allowed when it is in FILE and its call text contains FRAGMENT (so entries survive edits
# elsewhere in the file, and a changed call has to be looked at again). An entry that no longer
# matches anything fails the check too, so the list cannot rot.
set -euo pipefail

root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"

# ---- allowlist for check 1 (comparisons) ----
compare_allow=(
    # The throttle table's key is a keyed hash of the client's address, used to find its bucket:
    # an address is public, and the table is keyed per process with a random key.
    "auth/throttle.c|memcmp(set->slots[i].key, key, KEY_LEN)"
    # Compares the fixed public prefix "sxt_" of a presented token; the secret part is decoded
    # and hashed without branching on it (decode_secret) and compared with sodium_memcmp.
    "auth/token.c|memcmp(tok, SX_AUTH_TOKEN_PREFIX, 4)"
    # A JSON object key (a field name of the request body) against the known field names.
    "server/json.c|memcmp(c->fields[i].name, key, len)"
    # The keys of a JSON object of a request body (a Vault write's "data": secret names) against
    # the keys seen before in the same object, and against fixed field names.
    "server/json.c|memcmp(v->members[i].key, key, len)"
    "server/api/vault_kv.c|memcmp(m->key, \"cas\", 3)"
    "server/api/vault_kv.c|memcmp(d->members[0].key, \"value\", 5)"
    # Storage key names (r/master, r/env/...) of the rotation progress records; no secret.
    "ops/rotation.c|memcmp(key, KEY_MASTER, klen)"
    "ops/rotation.c|memcmp(key, KEY_ENV_PREFIX, pl)"
    "ops/rotation.c|strcmp(r->states[i].key, key)"
    # Restore checks a backup file's BLAKE2b checksum against the manifest shipped with it: both
    # are public integrity data (not a MAC under a server key), and the attacker is the operator.
    "ops/backup.c|strcmp(hex, hash->u.string)"
    # Finds the literal field name ',"mac":"' at its fixed place at the end of an audit line: a
    # public JSON key, not the MAC (which is decoded and compared with sodium_memcmp).
    "audit/audit.c|memcmp(line + ll - MAC_TAIL_LEN, field_m, 8)"
    # An entity tag of If-Match / If-None-Match against the answer's ETag: the ETag is sent to
    # every caller allowed the read (a revision or a digest of names and version numbers), not a
    # secret, and the permission is checked before any comparison.
    "server/api/request.c|memcmp(v + i, etag, elen)"
)

# ---- allowlist for check 2 (log calls) ----
log_allow=(
    # The NAME of the environment variable that should hold the passphrase, never its contents.
    "server/main.c|cfg->seal_passphrase_env"
)

export COMPARE_ALLOW LOG_ALLOW COMPARE_FILES LOG_FILES
COMPARE_ALLOW=$(printf '%s\n' "${compare_allow[@]}")
LOG_ALLOW=$(printf '%s\n' "${log_allow[@]}")

COMPARE_FILES=$(find common crypto auth audit secrets ops server ctl -name '*.[ch]' 2>/dev/null | sort)
LOG_FILES=$(find . -path ./fuzz -prune -o -path './build*' -prune -o -name '*.[ch]' -print 2>/dev/null | sed 's|^\./||' |
    grep -Ev '^(tests|bench)/' | sort)

# perl: find each call, take its balanced argument text (across lines), drop string and char
# literals and comments, test the identifiers, consult the allowlist.
perl - <<'PERL'
use strict;
use warnings;
my $failed = 0;
my %used;

sub allow_list {
    my ($env) = @_;
    return map { [split(/\|/, $_, 2)] } grep { length } split(/\n/, $ENV{$env} // "");
}
my @compare_allow = allow_list("COMPARE_ALLOW");
my @log_allow = allow_list("LOG_ALLOW");

sub strip {
    my ($s) = @_;
    $s =~ s{/\*.*?\*/}{ }gs;
    $s =~ s{"(?:\\.|[^"\\])*"}{""}gs;
    $s =~ s{'(?:\\.|[^'\\])*'}{0}gs;
    return $s;
}

# The argument text of the call whose "(" is at $open in $text, or undef.
sub args_at {
    my ($text, $open) = @_;
    my $depth = 0;
    my $in_str = "";
    for (my $i = $open; $i < length($text); $i++) {
        my $c = substr($text, $i, 1);
        if ($in_str) {
            if ($c eq "\\") { $i++; next; }
            $in_str = "" if $c eq $in_str;
            next;
        }
        if ($c eq "\"" || $c eq "'") { $in_str = $c; next; }
        $depth++ if $c eq "(";
        if ($c eq ")") {
            $depth--;
            return substr($text, $open + 1, $i - $open - 1) if $depth == 0;
        }
    }
    return undef;
}

sub allowed {
    my ($list, $file, $call, $kind) = @_;
    for my $e (@$list) {
        my ($f, $frag) = @$e;
        if ($f eq $file && index($call, $frag) >= 0) {
            $used{"$kind|$f|$frag"} = 1;
            return 1;
        }
    }
    return 0;
}

sub scan {
    my ($kind, $files, $call_re, $bad_re, $skip_first, $list, $what) = @_;
    for my $file (@$files) {
        open(my $fh, "<", $file) or die "$file: $!";
        local $/;
        my $text = <$fh>;
        close($fh);
        while ($text =~ /$call_re/g) {
            my $name = $1;
            my $open = pos($text) - 1;
            my $args = args_at($text, $open);
            next unless defined $args;
            my $line = 1 + (substr($text, 0, $open) =~ tr/\n//);
            my $check = strip($args);
            if ($skip_first) {
                # Drop the level and the format string, and constants (ALL_CAPS identifiers such as
                # SX_CONFIG_SEAL_PASSPHRASE): only the variables logged matter.
                $check =~ s/^[^,]*,\s*(?:""\s*)+,?//s;
                $check =~ s/\b[A-Z][A-Z0-9_]*\b//g;
            }
            next unless $check =~ $bad_re;
            my $call = "$name($args)";
            next if allowed($list, $file, $call, $kind);
            (my $flat = $call) =~ s/\s+/ /g;
            print STDERR "$file:$line: $what: $flat\n";
            $failed = 1;
        }
    }
}

my @compare_files = split(/\n/, $ENV{COMPARE_FILES});
my @log_files = split(/\n/, $ENV{LOG_FILES});
scan("compare", \@compare_files, qr/\b(memcmp|strcmp|strncmp|bcmp|strcasecmp|strncasecmp)\s*\(/,
     qr/(mac|hash|token|tag|key|secret|digest)/i, 0, \@compare_allow,
     "variable-time comparison of what may be a MAC, hash or token (use sodium_memcmp)");
scan("log", \@log_files, qr/\b(sx_log|sx_logv)\s*\(/, qr/(value|token|plain|secret|passphrase|recovery)/i, 1,
     \@log_allow, "a log call passes what may be a value, token or secret");

for my $kind_list (["compare", \@compare_allow], ["log", \@log_allow]) {
    my ($kind, $list) = @$kind_list;
    for my $e (@$list) {
        next if $used{"$kind|$e->[0]|$e->[1]"};
        print STDERR "allowlist entry matches nothing any more, remove it: $e->[0]|$e->[1]\n";
        $failed = 1;
    }
}
if ($failed) {
    print STDERR "static_check: FAILED (fix the code, or allowlist a hit with the reason it is safe)\n";
    exit 1;
}
printf("static_check: ok (%d comparison and %d log allowlist entries in use)\n", scalar(@compare_allow),
       scalar(@log_allow));
PERL
