#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The stuck detector's scan cost: UNITS cgroups holding PROCS sleeping processes in all, scanned with
# counters only (every unit progressing), with a full descent, and compared with the floor (a bare
# loop reading /proc/PID/stat once per process) and with `ps -eo pid,stat,wchan:32,time`.
# Host-side: the cgroups are made by hand under the v2 hierarchy (/sys/fs/cgroup, or
# /sys/fs/cgroup/unified on a hybrid host) and always removed, processes killed, by the trap.
# Env: BUILD_DIR (default ./build), STUCK_BENCH_UNITS (100), STUCK_BENCH_PROCS (10000), STUCK_BENCH_REPEAT (5).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$top/build}
driver=$build/tests/bench/bench-stuck-scan
units=${STUCK_BENCH_UNITS:-100}
procs=${STUCK_BENCH_PROCS:-10000}
repeat=${STUCK_BENCH_REPEAT:-5}
per_unit=$((procs / units))

skip() { echo "SKIP: bench-stuck: $*"; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "needs root (makes cgroups and moves processes into them)"
[ -x "$driver" ] || skip "$driver not built"
command -v ps >/dev/null || skip "ps not found"
if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
        v2=/sys/fs/cgroup
elif [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
        v2=/sys/fs/cgroup/unified
else
        skip "no cgroup v2 hierarchy"
fi
unset HEAL_CGROUP_DIR HEAL_PROC_DIR

name=heal-bench-stuck.$$
parent=$v2/$name

cleanup() {
        local d pid
        trap - EXIT INT TERM
        [ -d "$parent" ] || return 0
        for d in "$parent"/u*; do
                [ -d "$d" ] || continue
                if [ -e "$d/cgroup.kill" ]; then
                        echo 1 >"$d/cgroup.kill" 2>/dev/null || true
                else
                        while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$d/cgroup.procs"
                fi
        done
        wait 2>/dev/null || true
        for d in "$parent"/u*; do
                [ -d "$d" ] || continue
                for _ in $(seq 100); do [ -s "$d/cgroup.procs" ] || break; sleep 0.1; done
                rmdir "$d" 2>/dev/null || echo "bench-stuck: could not remove $d" >&2
        done
        rmdir "$parent" 2>/dev/null || echo "bench-stuck: could not remove $parent" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$parent"
for ((u = 0; u < units; u++)); do
        d=$(printf '%s/u%03d' "$parent" "$u")
        mkdir "$d"
        # The shell moves itself in first, so every sleep it starts is born in the unit.
        sh -c 'echo $$ >"$1/cgroup.procs"; i=1; while [ $i -lt "$2" ]; do sleep 100000 & i=$((i + 1)); done; exec sleep 100000' \
                _ "$d" "$per_unit" &
done

have=0
for _ in $(seq 600); do
        have=$(cat "$parent"/u*/cgroup.procs | wc -l)
        [ "$have" -ge $((per_unit * units)) ] && break
        sleep 0.1
done
echo "bench-stuck: $have processes in $units cgroups under $parent ($(nproc) CPUs, $(uname -r))"

declare -A cpu wall rss
for mode in floor healthy full full-zombies ps; do
        line=$("$driver" "$mode" "/$name" "$units" "$repeat")
        echo "  $line"
        for kv in $line; do
                case $kv in
                cpu_ms=*) cpu[$mode]=${kv#cpu_ms=} ;;
                wall_ms=*) wall[$mode]=${kv#wall_ms=} ;;
                rss_kib=*) rss[$mode]=${kv#rss_kib=} ;;
                esac
        done
done

missed=0
# check DESCRIPTION VALUE OP LIMIT
check() {
        if awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN { exit !((op == "<=") ? v <= l : v >= l) }'; then
                printf '  %-58s %10s %s %-8s ok\n' "$1" "$2" "$3" "$4"
        else
                printf '  %-58s %10s %s %-8s MISSED\n' "$1" "$2" "$3" "$4"
                missed=$((missed + 1))
        fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo "bench-stuck: targets (CPU time, medians of $repeat runs)"
check "floor / all-healthy scan (cpu)" "$(ratio "${cpu[floor]}" "${cpu[healthy]}")" ">=" 10
check "full descent / floor (cpu)" "$(ratio "${cpu[full]}" "${cpu[floor]}")" "<=" 1.5
check "full descent / ps (cpu)" "$(ratio "${cpu[full]}" "${cpu[ps]}")" "<=" 0.5
check "full descent / floor (wall)" "$(ratio "${wall[full]}" "${wall[floor]}")" "<=" 1.5
check "peak RSS, all-healthy scan (KiB)" "${rss[healthy]}" "<=" 8192
check "peak RSS, full descent (KiB)" "${rss[full]}" "<=" 8192
echo "  (full descent with zombie lists: $(ratio "${cpu[full-zombies]}" "${cpu[floor]}")x floor, no target)"
echo "bench-stuck: $missed target(s) missed"
