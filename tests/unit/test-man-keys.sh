#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The man pages against what they describe.
#   test-man-keys.sh keys HEALCTL HEAL.POLICY.5.SCD
#     every key `healctl policy keys` accepts is documented in heal.policy(5), no documented key is one the
#     loader refuses, and each entry's type, range and default are the loader's (`policy keys --describe`).
#   test-man-keys.sh units UNITS_DIR MAN_DIR
#     every unit carries Documentation=man:..., and every page it names is a page we build and install.
# An entry of heal.policy.5.scd is a line "*KEY* (TYPE[ RANGE]; default VALUE)", "*KEY* (TYPE; required)" or
# "*KEY* (TYPE; default: prose)" (prose defaults are not compared); scdoc escapes (\* \_) are undone.
set -euo pipefail

failures=0
fail() {
        echo "FAIL: $*" >&2
        failures=$((failures + 1))
}

finish() {
        if [ "$failures" -gt 0 ]; then
                echo "$failures problem(s)" >&2
                exit 1
        fi
        echo "ok: $1"
        exit 0
}

# "KEY<TAB>TYPE<TAB>DEFAULT" per documented entry; DEFAULT is "(required)", or "-" for prose.
documented_entries() {
        sed -n 's/^\*\(\(version\|global\.\|classes\.\)\([^*\\]\|\\.\)*\)\* (\(.*\))$/\1\t\4/p' "$1" |
                sed 's/\\\(.\)/\1/g' |
                awk -F'\t' '{
                        spec = $2
                        if (spec ~ /; required$/) { type = spec; sub(/; required$/, "", type); def = "(required)" }
                        else if (spec ~ /; default: /) { type = spec; sub(/; default: .*/, "", type); def = "-" }
                        else if (spec ~ /; default /) {
                                type = spec; sub(/; default .*/, "", type)
                                def = spec; sub(/^[^;]*; default /, "", def)
                        } else { type = spec; def = "?" }
                        printf "%s\t%s\t%s\n", $1, type, def
                }'
}

check_keys() {
        local healctl=$1 page=$2 tmp
        [ -x "$healctl" ] || { echo "no healctl at $healctl" >&2; exit 2; }
        [ -f "$page" ] || { echo "no page $page" >&2; exit 2; }
        tmp=$(mktemp -d)
        # shellcheck disable=SC2064 # expand now: the path is fixed
        trap "rm -rf '$tmp'" EXIT

        "$healctl" policy keys | sort >"$tmp/loader"
        "$healctl" policy keys --describe >"$tmp/describe"
        documented_entries "$page" >"$tmp/entries"
        cut -f1 "$tmp/entries" | sort >"$tmp/documented"

        [ -s "$tmp/loader" ] || fail "healctl policy keys printed nothing"
        [ -s "$tmp/documented" ] || fail "no key entries found in $page"
        dups=$(uniq -d "$tmp/documented")
        [ -z "$dups" ] || fail "documented twice: $dups"
        while read -r k; do fail "the loader accepts $k but heal.policy(5) does not document it"; done \
                < <(comm -23 "$tmp/loader" <(sort -u "$tmp/documented"))
        while read -r k; do fail "heal.policy(5) documents $k but the loader refuses it"; done \
                < <(comm -13 "$tmp/loader" <(sort -u "$tmp/documented"))

        # Type, range and default of every entry, as the loader has them.
        while IFS=$'\t' read -r key type def; do
                local want
                want=$(awk -F'\t' -v k="$key" '$1 == k { print $2 "\t" $3; exit }' "$tmp/describe")
                [ -n "$want" ] || continue # reported above
                [ "$type" = "${want%%$'\t'*}" ] ||
                        fail "$key: documented as \"$type\", the loader says \"${want%%$'\t'*}\""
                [ "$def" = - ] && continue
                [ "$def" = "${want#*$'\t'}" ] ||
                        fail "$key: documented default $def, the loader's is ${want#*$'\t'}"
        done <"$tmp/entries"

        finish "heal.policy(5) documents the $(wc -l <"$tmp/loader") keys the loader accepts, with their types, ranges and defaults"
}

check_units() {
        local units=$1 man=$2 f ref name n=0
        { [ -d "$units" ] && [ -d "$man" ]; } || { echo "usage: $0 units UNITS_DIR MAN_DIR" >&2; exit 2; }
        for f in "$units"/*.service "$units"/*.service.in "$units"/*.timer "$units"/*.path "$units"/*.socket \
                "$units"/*.socket.in "$units"/*.target; do
                [ -f "$f" ] || continue
                n=$((n + 1))
                refs=$(sed -n 's/^Documentation=//p' "$f" | tr ' ' '\n' | sed -n 's/^man:\(.*\)$/\1/p')
                [ -n "$refs" ] || fail "$(basename "$f") has no Documentation=man:... line"
                for ref in $refs; do
                        # man:NAME(SECTION) -> NAME.SECTION.scd, listed in docs/meson.build
                        name=$(printf '%s' "$ref" | sed -n 's/^\([^()]*\)(\([0-9][a-z]*\))$/\1.\2/p')
                        if [ -z "$name" ]; then
                                fail "$(basename "$f"): cannot read man reference $ref"
                                continue
                        fi
                        [ -f "$man/$name.scd" ] || fail "$(basename "$f") points at $ref, but there is no $name.scd"
                        grep -q "'$name'" "$man/../meson.build" ||
                                fail "$(basename "$f") points at $ref, which docs/meson.build does not build"
                        head -n 1 "$man/$name.scd" 2>/dev/null | grep -qxF "$ref" ||
                                fail "$name.scd does not start with its title $ref"
                done
        done
        [ "$n" -gt 0 ] || fail "no unit files in $units"
        finish "the Documentation= of all $n units point at pages we ship"
}

case "${1:-}" in
keys) check_keys "${2:?healctl}" "${3:?heal.policy.5.scd}" ;;
units) check_units "${2:?units dir}" "${3:?man dir}" ;;
*)
        echo "usage: $0 keys HEALCTL PAGE | units UNITS_DIR MAN_DIR" >&2
        exit 2
        ;;
esac
