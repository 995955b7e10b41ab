# SPDX-License-Identifier: LGPL-2.1-or-later
# Checks for the integration and package tests (sourced): each check prints one line, a failed one counts
# in $failures and the script goes on, so one run reports every broken behaviour; the script ends with
# `[ "$failures" -eq 0 ]`.
# shellcheck shell=bash

failures=0

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
