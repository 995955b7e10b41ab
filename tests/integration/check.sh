# SPDX-License-Identifier: LGPL-2.1-or-later
# Checks for the integration and package tests (sourced): each check prints one line, a failed one counts
# in $failures and the script goes on, so one run reports every broken behaviour; the script ends with
# `[ "$failures" -eq 0 ]`.
# shellcheck shell=bash

failures=0

# scenario_args ARGS...: for a script run as `SCRIPT BUILD_DIR [SCENARIO...]`: sets build_dir (or takes
# $HEAL_BUILD_DIR) and SCENARIOS (none: the script runs all of its own); exits 2 without a build dir.
scenario_args() {
        build_dir=${1:-${HEAL_BUILD_DIR:-}}
        if [ -z "$build_dir" ]; then
                echo "usage: $0 BUILD_DIR [SCENARIO...]" >&2
                exit 2
        fi
        SCENARIOS=("${@:2}")
}

fail() {
        echo "FAIL: $*" >&2
        failures=$((failures + 1))
}

pass() { echo "ok: $*"; }

# expect_eq WHAT GOT WANT
expect_eq() {
        local what=$1 got=$2 want=$3
        if [ "$got" = "$want" ]; then pass "$what = $want"; else fail "$what: got '$got', want '$want'"; fi
}
