#!/usr/bin/env bash
# test_layout.sh SOURCE_ROOT - the build enforces the modules' dependency direction.
#
# cmake/SxModule.cmake builds every module; this test gives it a small project of its own with a
# low and a high module and checks each rule by a configuration or a build that must fail, and one
# that must pass:
#   1. a module that depends on a module of its own or a higher layer stops the configuration;
#   2. a module below the server layer that includes h2o stops the configuration;
#   3. a module cannot include another module's internal header, nor the public header of a
#      module it does not list as a dependency (the build fails);
#   4. a module that lists a lower module reaches that module's public header (the build passes).
set -euo pipefail

root=$(cd "${1:?usage: test_layout.sh SOURCE_ROOT}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0
fail=0

# make_project DIR LOW_DEPS HIGH_DEPS LOW_SOURCE_EXTRA HIGH_INCLUDE
make_project() {
    local dir=$1 low_deps=$2 high_deps=$3 low_extra=$4 high_include=$5
    mkdir -p "$dir/common" "$dir/low" "$dir/high"
    cat >"$dir/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(layout_check C)
find_package(Threads REQUIRED)
set(SX_LAYER_common 0)
set(SX_LAYER_low 1)
set(SX_LAYER_high 2)
set(SX_LAYER_server 5)
include($root/cmake/SxModule.cmake)
add_subdirectory(common)
add_subdirectory(low)
add_subdirectory(high)
CMAKE
    echo 'sx_module(common SOURCES common.c HEADERS common.h)' >"$dir/common/CMakeLists.txt"
    echo 'int sx_common_one(void);' >"$dir/common/common.h"
    printf '#include "common/common.h"\nint sx_common_one(void) { return 1; }\n' >"$dir/common/common.c"
    echo "sx_module(low SOURCES low.c HEADERS low.h DEPS $low_deps)" >"$dir/low/CMakeLists.txt"
    echo 'int sx_low_two(void);' >"$dir/low/low.h"
    echo 'int sx_low_secret(void);' >"$dir/low/low_internal.h"
    printf '%s\n#include "low/low.h"\n#include "low/low_internal.h"\n#include "common/common.h"\nint sx_low_secret(void) { return 2; }\nint sx_low_two(void) { return sx_low_secret() * sx_common_one(); }\n' \
        "$low_extra" >"$dir/low/low.c"
    echo "sx_module(high SOURCES high.c HEADERS high.h DEPS $high_deps)" >"$dir/high/CMakeLists.txt"
    echo 'int sx_high_three(void);' >"$dir/high/high.h"
    printf '#include "high/high.h"\n#include "%s"\nint sx_high_three(void) { return 3; }\n' "$high_include" >"$dir/high/high.c"
}

# expect NAME pass|fail configure|build PATTERN-in-output -- project arguments
expect() {
    local name=$1 want=$2 stage=$3 pattern=$4
    shift 5
    local dir="$work/$name"
    make_project "$dir" "$@"
    local out rc=0
    if out=$(cmake -S "$dir" -B "$dir/build" 2>&1); then
        if [ "$stage" = build ] || [ "$want" = pass ]; then
            out=$(cmake --build "$dir/build" 2>&1) || rc=$?
        fi
    else
        rc=1
        if [ "$stage" = build ]; then
            echo "FAIL $name: the configuration failed where the build should have decided"
            echo "$out" | tail -n 5
            fail=$((fail + 1))
            return
        fi
    fi
    if [ "$want" = pass ] && [ $rc -eq 0 ]; then
        echo "ok   $name"
        pass=$((pass + 1))
    elif [ "$want" = fail ] && [ $rc -ne 0 ] && grep -q -- "$pattern" <<<"$out"; then
        echo "ok   $name (refused: $(grep -m1 -o -- "$pattern" <<<"$out"))"
        pass=$((pass + 1))
    else
        echo "FAIL $name: wanted $want at $stage (rc $rc)"
        echo "$out" | tail -n 8
        fail=$((fail + 1))
    fi
}

expect lower_module_depends_on_higher fail configure "may not depend on high" -- \
    "high" "low" "" "low/low.h"
expect module_depends_on_its_own_layer fail configure "may not depend on low" -- \
    "low" "" "" "high/high.h"
expect h2o_below_the_server_layer fail configure "includes h2o" -- \
    "" "low" "#include <h2o.h>" "low/low.h"
expect internal_header_of_another_module fail build "low_internal.h" -- \
    "" "low" "" "low/low_internal.h"
expect header_of_an_unlisted_module fail build "low/low.h" -- \
    "" "" "" "low/low.h"
expect listed_lower_module_reached pass build "" -- \
    "" "low" "" "low/low.h"

# The real tree: nothing below server/ names h2o or a server/ header.
below="common config storage crypto auth audit secrets ops"
hits=$(cd "$root" && for m in $below; do [ -d "$m" ] && grep -rlE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](h2o|server/)' "$m" || true; done)
if [ -z "$hits" ]; then
    echo "ok   no module below server/ includes h2o or a server/ header"
    pass=$((pass + 1))
else
    echo "FAIL modules below server/ include h2o or server/ headers:"
    echo "$hits"
    fail=$((fail + 1))
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
