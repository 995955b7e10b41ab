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

# scenarios_end WHAT UNIT: tears the sandbox down (sandbox.sh) and ends a scenario script: 0 when every
# check passed; else 1, after the last lines of UNIT's journal (a glob is fine) for the failures above.
scenarios_end() {
        if [ "$failures" -gt 0 ]; then
                echo "--- journal of $2, for the failures above:" >&2
                sb_journal -o short-monotonic -u "$2" | tail -n 80 >&2 || true
                sandbox_down
                echo "$failures check(s) failed" >&2
                exit 1
        fi
        sandbox_down
        echo "all $1 scenarios passed"
}
