#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# heal's units are hardened, documented and watched: every installed heal unit, as systemd in a throwaway
# sandbox (sandbox.sh) loads it from this build's install. Usage: test-units-security.sh BUILD_DIR
#
#   exposure       `systemd-analyze security` of every heal .service (a template through an instance,
#                  heal-worker-reviver@foo.service.service) is printed, and must be at most MAX_EXPOSURE.
#                  The services score 1.8-2.0 today (systemd 252). One ordinary sandboxing line is worth
#                  0.2-0.4 (ProtectSystem=, PrivateDevices=, PrivateTmp=, RestrictAddressFamilies=...),
#                  SystemCallFilter= 1.4, an empty CapabilityBoundingSet= 1.8; so 2.5 leaves room for a
#                  helper's own needs (a capability, a network family) while a lost filter, a lost
#                  bounding set or a few lost lines fail. MAX_EXPOSURE=... overrides it (another systemd
#                  version scores differently).
#   OnFailure=     every heal .service/.timer/.path/.socket except heal-escalate@ has
#                  OnFailure=heal-escalate@UNIT.service (heal-escalate@ itself must not: an escalation that
#                  fails must not start another). Targets are left out: they run nothing that can fail.
#   Documentation= every heal unit names a man: page, and each man: page it names is installed.
#   comments       static, over the source files in units/: every sandboxing line (Protect*, Private*,
#                  Restrict*, CapabilityBoundingSet, AmbientCapabilities, NoNewPrivileges, SystemCall*,
#                  ReadWritePaths, ReadOnlyPaths, InaccessiblePaths, MemoryDenyWriteExecute,
#                  LockPersonality, UMask, DynamicUser, DevicePolicy, DeviceAllow, IPAddress*, ProcSubset,
#                  RemoveIPC, KeyringMode) is explained by a comment. The rule: walking up from the line,
#                  a '#' comment line comes before any blank line or [Section] header, with at most
#                  COMMENT_SPAN - 1 other setting lines in between; so a comment may explain one line or a
#                  small group of related ones (the six Protect* kernel lines), not a whole block.
# shellcheck disable=SC2016 # scripts for sb_sh are single-quoted on purpose
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build_dir=${1:?usage: test-units-security.sh BUILD_DIR}
MAX_EXPOSURE=${MAX_EXPOSURE:-2.5}
COMMENT_SPAN=6
# shellcheck source=sandbox.sh
. "$here/sandbox.sh"
# shellcheck source=check.sh
. "$here/check.sh"

# ---- static: the sources' comments ---------------------------------------------------------------

SANDBOXING='^(Protect[A-Za-z]*|Private[A-Za-z]*|Restrict[A-Za-z]*|CapabilityBoundingSet|AmbientCapabilities|NoNewPrivileges|SystemCall[A-Za-z]*|ReadWritePaths|ReadOnlyPaths|InaccessiblePaths|MemoryDenyWriteExecute|LockPersonality|UMask|DynamicUser|DevicePolicy|DeviceAllow|IPAddress[A-Za-z]*|ProcSubset|RemoveIPC|KeyringMode)='

# uncommented FILE: print "FILE:LINE: TEXT" for each sandboxing line the rule above does not cover.
uncommented() {
        awk -v re="$SANDBOXING" -v span="$COMMENT_SPAN" -v file="$1" '
        { line[NR] = $0 }
        END {
                for (i = 1; i <= NR; i++) {
                        if (line[i] !~ re)
                                continue
                        ok = 0
                        k = 1
                        for (j = i - 1; j >= 1 && k <= span; j--) {
                                if (line[j] ~ /^[ \t]*#/) { ok = 1; break }
                                if (line[j] ~ /^[ \t]*$/ || line[j] ~ /^\[/) break
                                k++
                        }
                        if (!ok)
                                printf "%s:%d: %s\n", file, i, line[i]
                }
        }' "$1"
}

echo "--- comments on sandboxing lines (units/ sources)"
unit_sources=()
for f in "$src"/units/*; do
        case "$f" in
        *.service | *.service.in | *.socket | *.socket.in | *.timer | *.path | *.target | *.conf) unit_sources+=("$f") ;;
        esac
done
[ "${#unit_sources[@]}" -gt 0 ] || fail "no unit sources found in $src/units"
checked=0
for f in "${unit_sources[@]}"; do
        n=$(grep -cE "$SANDBOXING" "$f" || true)
        checked=$((checked + n))
        bad=$(uncommented "$f")
        if [ -n "$bad" ]; then
                fail "sandboxing lines without a comment in ${f#"$src"/}:"
                # shellcheck disable=SC2001 # indent every line of the list
                sed 's/^/    /' <<<"$bad" >&2
        elif [ "$n" -gt 0 ]; then
                pass "${f#"$src"/}: all $n sandboxing lines commented"
        fi
done
# The rule must see the lines it judges: a unit set with no sandboxing at all is not "all commented".
[ "$checked" -gt 0 ] || fail "no sandboxing lines found in any unit source"

# ---- in the sandbox: what systemd loads -----------------------------------------------------------

sandbox_up "$build_dir"

# Installed heal units (unit files): heal-* and heal.target, templates as they are named on disk.
mapfile -t files < <(sb_exec systemctl list-unit-files --no-legend --plain 'heal-*' heal.target | awk '{ print $1 }')
[ "${#files[@]}" -gt 0 ] || fail "no heal unit files installed"
echo "installed heal units: ${files[*]}"
for name in heal-worker-reviver@.service heal-escalate@.service; do
        printf '%s\n' "${files[@]}" | grep -qxF "$name" || fail "$name is not installed"
done

# A template is judged through an instance, as systemd runs it.
instance_of() {
        case "$1" in
        *@.*) echo "${1%%@.*}@foo.service.${1##*@.}" ;;
        *) echo "$1" ;;
        esac
}

echo "--- exposure (systemd-analyze security), at most $MAX_EXPOSURE"
printf '%-50s %8s  %s\n' unit exposure rating
table=()
for f in "${files[@]}"; do
        [[ "$f" == *.service ]] || continue
        u=$(instance_of "$f")
        out=$(sb_exec systemd-analyze security --no-pager "$u" 2>&1) || true
        line=$(grep 'Overall exposure level' <<<"$out" | tail -n1)
        level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) \([A-Z]*\).*/\1/p' <<<"$line")
        rating=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) \([A-Z]*\).*/\2/p' <<<"$line")
        if [ -z "$level" ]; then
                fail "$u: no exposure level from systemd-analyze security:"
                tail -n 5 <<<"$out" | sed 's/^/    /' >&2
                continue
        fi
        table+=("$(printf '%-50s %8s  %s' "$u" "$level" "$rating")")
        printf '%-50s %8s  %s\n' "$u" "$level" "$rating"
        if awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l <= m) }'; then
                pass "$u exposure $level <= $MAX_EXPOSURE"
        else
                fail "$u exposure $level > $MAX_EXPOSURE; the checks it loses on:"
                grep '✗' <<<"$out" | sed 's/^/    /' >&2 || true
        fi
done
[ "${#table[@]}" -gt 0 ] || fail "no heal .service was judged"

echo "--- OnFailure= and Documentation="
# man:NAME(SECTION) is installed when some man dir holds NAME.SECTION[.gz].
man_installed() {
        sb_sh 'for d in /usr/share/man /usr/local/share/man; do
                        for p in "$d/man$2/$1.$2" "$d/man$2/$1.$2.gz"; do [ -e "$p" ] && exit 0; done
                done; exit 1' "$1" "$2"
}
for f in "${files[@]}"; do
        u=$(instance_of "$f")
        case "$f" in
        *.target) ;;
        heal-escalate@.service)
                on=$(sb_exec systemctl show -P OnFailure "$u")
                if [ -z "$on" ]; then pass "$u has no OnFailure= (no escalation of an escalation)"; else fail "$u has OnFailure=$on"; fi
                ;;
        *)
                on=$(sb_exec systemctl show -P OnFailure "$u")
                if [ "$on" = "heal-escalate@$u.service" ]; then
                        pass "$u OnFailure=$on"
                else
                        fail "$u: OnFailure='$on', want heal-escalate@$u.service (OnFailure=heal-escalate@%n.service)"
                fi
                ;;
        esac

        doc=$(sb_exec systemctl show -P Documentation "$u" | tr -d '"')
        pages=$(tr ' ' '\n' <<<"$doc" | sed -n 's/^man:\([^()]*\)(\([0-9a-z]*\))$/\1 \2/p')
        if [ -z "$pages" ]; then
                fail "$u: no man: page in Documentation='$doc'"
                continue
        fi
        while read -r page section; do
                if man_installed "$page" "$section"; then
                        pass "$u documents man:$page($section), installed"
                else
                        fail "$u: Documentation= names man:$page($section), which is not installed"
                fi
        done <<<"$pages"
done

sandbox_down
echo
echo "exposure of heal's services (systemd-analyze security; lower is better, max $MAX_EXPOSURE):"
printf '%s\n' "${table[@]}"
if [ "$failures" -gt 0 ]; then
        echo "$failures check(s) failed" >&2
        exit 1
fi
echo "all unit checks passed"
