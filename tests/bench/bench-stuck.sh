#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The stuck detector's scan cost on 10,000 real processes, in a throwaway systemd (sandbox.sh): 100
# services bench-NNN.service, each one process burning 1 ms of CPU a second plus 99 children asleep, all
# targeted by a shadow-mode policy. Measured, each a median of REPEAT runs (CPU user+sys, wall, peak RSS):
#   (a) the installed helper, every unit progressing: one scan reads each unit's cgroup counters only;
#       run GAP_MS after the run before (whose samples it compares with). Two figures: the CPU the helper
#       reports for its run from main() on (the scan, measured in-process as the floor is: the target's
#       figure), and wait4() of the whole process, exec, dynamic linking and exit included (for
#       comparison: starting a process that links libsystemd costs 5-11 ms of CPU on this VM, more than
#       the scan); also what PID 1 and the bus daemon spend answering it, which the helper's own rusage
#       does not hold
#   (a0) the installed helper's --version: what starting the process costs, before any scan
#   (a') the installed helper, every unit flat (its main process told to sleep for good): it descends
#       into all 10,000 processes, children lists included (the sandbox has no pids.current)
#   (b) the core's full descent (bench-stuck-scan full) over the same units' cgroups, and its
#       counters-only scan and descent with children lists for comparison
#   (c) ps -eo pid,stat,wchan:32,time over the container's processes (these 10,000 and its own few)
#   (d) the floor: a bare C loop reading /proc/PID/stat once per process of the units
# and compares them with the issue's targets. The sandbox is always torn down (sandbox.sh's traps).
#
# Environment:
#   BUILD_DIR             build dir to install (default ./build); a release build, or times say little
#   STUCK_BENCH_UNITS     services (default 100)
#   STUCK_BENCH_PER_UNIT  processes per service (default 100)
#   STUCK_BENCH_REPEAT    timed runs per measurement (default 9)
# Needs root (it boots a container); skips with a message, exit 0, otherwise. A missed target is reported,
# not an error; a setup that does not reach the process count is.
# shellcheck disable=SC2016 # scripts for sb_sh are single-quoted on purpose
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$top/build}
UNITS=${STUCK_BENCH_UNITS:-100}
PER_UNIT=${STUCK_BENCH_PER_UNIT:-100}
REPEAT=${STUCK_BENCH_REPEAT:-9}
BURN_MS=1      # CPU each worker burns a second: enough for cpu.stat to move, little load on the machine
GAP_MS=1500    # between two helper runs in (a): every worker has burned at least once in between
FLAT_GAP_MS=200

# shellcheck disable=SC2034 # read by sandbox.sh
SB_WHAT=bench-stuck
# shellcheck source=tests/integration/sandbox.sh disable=SC1091
. "$top/tests/integration/sandbox.sh"

log() { printf 'bench-stuck: %s\n' "$*" >&2; }
die() {
        log "$*"
        exit 1
}

# sandbox_require exits 77 (meson's skip); ./dev bench wants a clean skip instead.
if ! why=$(sandbox_require); then
        echo "bench-stuck: skipped, ${why#SKIP: bench-stuck }"
        exit 0
fi
driver=$BUILD_DIR/tests/bench/bench-stuck-scan
[ -x "$driver" ] || die "$driver is not built (meson -Dtests=true)"
[ -x "$BUILD_DIR/helpers/stuck-process-detector/stuck-process-detector" ] ||
        die "$BUILD_DIR has no stuck-process-detector built"
if grep -q __asan_init "$driver" 2>/dev/null; then
        log "warning: $BUILD_DIR is a sanitizer build; times and RSS are not the release's"
fi

SB_DRIVER=/usr/local/libexec/heal-bench/bench-stuck-scan
unit_name() { printf 'bench-%03d.service\n' "$1"; }

# ---- the stage inside the sandbox ------------------------------------------------------------------

setup_sandbox() {
        local want have i
        sb_copy_in "$driver" "$SB_DRIVER" || die "could not copy the driver in"

        # Only the bench units are targeted, by every class, in shadow mode: nothing is ever acted on.
        sb_write /etc/heal/policy.d/50-bench.json <<'EOF'
{"classes": {
  "process-stuck": {"mode": "shadow", "targets": ["bench-*.service"]},
  "process-d-state": {"mode": "shadow", "targets": ["bench-*.service"]},
  "process-zombies": {"mode": "shadow", "targets": ["bench-*.service"]}}}
EOF
        sb_sh 'i=0
        while [ "$i" -lt "$1" ]; do
                cat >"/etc/systemd/system/$(printf "bench-%03d.service" "$i")" <<EOF
[Unit]
Description=heal bench: $2 processes, one burning $4 ms of CPU a second
[Service]
ExecStart=$3 worker $2 $4
TasksMax=infinity
EOF
                i=$((i + 1))
        done' "$UNITS" "$PER_UNIT" "$SB_DRIVER" "$BURN_MS" || die "could not write the units"
        sb_exec systemctl daemon-reload
        mapfile -t UNIT_NAMES < <(for ((i = 0; i < UNITS; i++)); do unit_name "$i"; done)
        sb_exec systemctl start "${UNIT_NAMES[@]}" || die "the bench units did not start"

        mapfile -t CGROUPS < <(sb_exec systemctl show -P ControlGroup "${UNIT_NAMES[@]}" | grep .)
        [ "${#CGROUPS[@]}" -eq "$UNITS" ] || die "got ${#CGROUPS[@]} control groups for $UNITS units"
        CG_ROOT=$(sb_sh 'if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then echo /sys/fs/cgroup;
                else echo /sys/fs/cgroup/unified; fi')

        want=$((UNITS * PER_UNIT))
        have=0
        for _ in $(seq 300); do
                have=$(count_procs)
                [ "$have" -ge "$want" ] && break
                sleep 0.1
        done
        [ "$have" -eq "$want" ] || die "$have processes in the bench units, want $want"
        # Every unit exactly PER_UNIT, not just the total.
        sb_sh 'r=$1 want=$2; shift 2
                for cg; do n=$(wc -l <"$r$cg/cgroup.procs"); [ "$n" -eq "$want" ] || { echo "$cg: $n" >&2; exit 1; }; done' \
                "$CG_ROOT" "$PER_UNIT" "${CGROUPS[@]}" || die "a bench unit does not hold $PER_UNIT processes"
        BUS_PID=$(sb_exec systemctl show -P MainPID dbus.service)
        HELPER=$(sb_exec systemctl show -P ExecStart heal-stuck-process-detector.service |
                sed -n 's/.*path=\([^ ;]*\).*/\1/p')
        [ -n "$HELPER" ] || die "cannot find the installed helper's path"
        # The directories the helper's unit would have made for it.
        sb_sh 'mkdir -p -m 0700 /var/lib/heal && mkdir -p -m 0755 /run/heal && rm -rf /run/heal/stuck'
}

count_procs() {
        sb_sh 'r=$1; shift; for cg; do cat "$r$cg/cgroup.procs"; done | wc -l' "$CG_ROOT" "${CGROUPS[@]}"
}

# workers flat|burn: the main process of every unit sleeps for good, or burns again.
workers() {
        local sig=SIGUSR1
        [ "$1" = burn ] && sig=SIGUSR2
        sb_exec systemctl kill --kill-whom=main -s "$sig" "${UNIT_NAMES[@]}"
        # A worker told mid-burn sleeps out its second before it goes flat.
        sleep 1.5
}

# ---- measurements ----------------------------------------------------------------------------------

declare -A CPU WALL RSS SYS_CPU MAIN_CPU

# record KEY LINE: keep the cpu_ms, wall_ms, rss_kib and sys_cpu_ms of a driver line.
record() {
        local key=$1 kv
        for kv in $2; do
                case $kv in
                cpu_ms=*) CPU[$key]=${kv#cpu_ms=} ;;
                wall_ms=*) WALL[$key]=${kv#wall_ms=} ;;
                rss_kib=*) RSS[$key]=${kv#rss_kib=} ;;
                sys_cpu_ms=*) SYS_CPU[$key]=${kv#sys_cpu_ms=} ;;
                esac
        done
        [ -n "${CPU[$key]:-}" ] || die "$key: no result in '$2'"
}

# helper KEY GAP_MS DESCENDED: the installed helper, once to seed and REPEAT times timed; every run must
# have scanned every unit and read DESCENDED of them down to their processes.
helper() {
        local key=$1 gap=$2 descended=$3 line out bad
        out=$(mktemp)
        line=$(sb_exec env BENCH_BUS_PID="$BUS_PID" "$SB_DRIVER" exec "$REPEAT" "$gap" "$HELPER" 2>"$out") ||
                { cat "$out" >&2; rm -f "$out"; die "$key: the helper failed"; }
        bad=$(grep 'units scanned' "$out" | tail -n "$REPEAT" |
                grep -cEv "^stuck-process-detector: $UNITS units scanned, $descended read down to their processes, 0 conditions confirmed, 0 acted on, in [0-9.]+ ms of CPU$" || true)
        if [ "$bad" -ne 0 ] || [ "$(grep -c 'units scanned' "$out")" -ne $((REPEAT + 1)) ]; then
                sed 's/^/    /' "$out" >&2
                rm -f "$out"
                die "$key: the helper's runs did not scan $UNITS units with $descended descents each"
        fi
        # The CPU each run reports for itself from main() on: the scan without exec, linking and exit.
        MAIN_CPU[$key]=$(grep 'units scanned' "$out" | tail -n "$REPEAT" | sed 's/.* in \([0-9.]*\) ms of CPU$/\1/' |
                sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
        rm -f "$out"
        record "$key" "$line"
}

# What starting the helper costs (exec, dynamic linking), measured the same way as (a).
helper_start() {
        local line
        line=$(sb_exec env BENCH_BUS_PID="$BUS_PID" "$SB_DRIVER" exec "$REPEAT" 0 "$HELPER" --version | grep '^exec ') ||
                die "the helper's --version failed"
        record helper-start "$line"
}

core() {
        local line
        line=$(sb_exec "$SB_DRIVER" "$1" "$REPEAT" "${CGROUPS[@]}") || die "bench-stuck-scan $1 failed"
        case $1 in
        healthy) [[ $line == *" descended=0" ]] || die "the counters-only scan descended: $line" ;;
        full | full-zombies)
                [[ $line == *" procs=$((UNITS * PER_UNIT)) descended=$UNITS" ]] || die "$1 did not read every process: $line" ;;
        floor) [[ $line == *" procs=$((UNITS * PER_UNIT)) "* ]] || die "the floor did not read every process: $line" ;;
        esac
        record "$1" "$line"
}

# ---- the report ------------------------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "-" }'; }
yes_no() { awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { print (((op == "<=") ? v <= l : v >= l) ? "yes" : "no") }'; }

MISSED=0
target() {
        local what=$1 value=$2 op=$3 limit=$4 verdict
        verdict=$(yes_no "$value" "$op" "$limit")
        [ "$verdict" = yes ] || MISSED=$((MISSED + 1))
        printf '  %-62s %9s %s %-6s %s\n' "$what" "$value" "$op" "$limit" "$verdict"
}

report() {
        local key label
        local -a rows=(helper-start helper-healthy helper-flat healthy full full-zombies ps floor)
        local -A labels=(
                [helper-start]="(a0) helper --version (process start)"
                [helper-healthy]="(a) helper, all units progressing"
                [helper-flat]="(a') helper, all units flat (descends)"
                [healthy]="    core, counters only"
                [full]="(b) core, full descent"
                [full-zombies]="    core, full descent + children lists"
                [ps]="(c) ps -eo pid,stat,wchan:32,time"
                [floor]="(d) floor: /proc/PID/stat loop"
        )
        echo
        echo "bench-stuck: $TOTAL processes in $UNITS services ($PER_UNIT each), ps sees $PS_PROCS in the container;" \
                "$(nproc) CPUs, $(uname -r), cgroup v2 at $CG_ROOT inside; medians of $REPEAT runs"
        printf '  %-40s %9s %9s %9s %9s %9s %9s\n' "" "CPU ms" "wall ms" "RSS KiB" "CPU/floor" "CPU/ps" "wall/flr"
        for key in "${rows[@]}"; do
                label=${labels[$key]}
                printf '  %-40s %9s %9s %9s %9s %9s %9s\n' "$label" "${CPU[$key]}" "${WALL[$key]}" "${RSS[$key]}" \
                        "$(ratio "${CPU[$key]}" "${CPU[floor]}")" "$(ratio "${CPU[$key]}" "${CPU[ps]}")" \
                        "$(ratio "${WALL[$key]}" "${WALL[floor]}")"
        done
        echo "  (a) the helper's scan, its run from main() on as it reports it: ${MAIN_CPU[helper-healthy]} CPU ms," \
                "$(ratio "${MAIN_CPU[helper-healthy]}" "${CPU[floor]}") of the floor; all flat: ${MAIN_CPU[helper-flat]} CPU ms"
        echo "  (a) less (a0), whole process less process start: $(awk -v a="${CPU[helper-healthy]}" -v b="${CPU[helper-start]}" 'BEGIN { printf "%.2f", a - b }') CPU ms," \
                "$(ratio "$(awk -v a="${CPU[helper-healthy]}" -v b="${CPU[helper-start]}" 'BEGIN { print a - b }')" "${CPU[floor]}") of the floor"
        echo "  PID 1 + bus daemon CPU ms while the helper ran (not in its own): all progressing ${SYS_CPU[helper-healthy]}," \
                "all flat ${SYS_CPU[helper-flat]}"
        echo
        echo "bench-stuck: targets"
        target "(a) all progressing, in-process as the floor: floor / scan from main()" \
                "$(ratio "${CPU[floor]}" "${MAIN_CPU[helper-healthy]}")" ">=" 10
        target "(b) full descent CPU / floor CPU" "$(ratio "${CPU[full]}" "${CPU[floor]}")" "<=" 1.5
        target "(b) full descent CPU / ps CPU" "$(ratio "${CPU[full]}" "${CPU[ps]}")" "<=" 0.5
        target "(a) helper peak RSS, all progressing (KiB)" "${RSS[helper-healthy]}" "<=" 8192
        target "(a') helper peak RSS, all flat (KiB)" "${RSS[helper-flat]}" "<=" 8192
        target "(b) core peak RSS, full descent (KiB)" "${RSS[full]}" "<=" 8192
        echo "  (a) counted as a whole process instead (exec, linking, exit included): floor / helper" \
                "$(ratio "${CPU[floor]}" "${CPU[helper-healthy]}") ($(yes_no "$(ratio "${CPU[floor]}" "${CPU[helper-healthy]}")" ">=" 10)" \
                "against 10), with process start (a0) at ${CPU[helper-start]} CPU ms"
        echo "  for comparison, no target: (a') helper all flat CPU / floor $(ratio "${CPU[helper-flat]}" "${CPU[floor]}")," \
                "/ ps $(ratio "${CPU[helper-flat]}" "${CPU[ps]}")"
        echo "bench-stuck: $MISSED target(s) missed"
}

# ---- main -----------------------------------------------------------------------------------------

sandbox_up "$BUILD_DIR" || die "the sandbox did not come up"
log "starting $UNITS services of $PER_UNIT processes"
setup_sandbox
TOTAL=$(count_procs)
PS_PROCS=$(($(sb_exec ps -e --no-headers | wc -l)))
log "$TOTAL processes up; (a0) the helper's start, (a) the helper, every unit progressing"
helper_start
helper helper-healthy "$GAP_MS" 0
workers flat
log "(a') the helper, every unit flat"
helper helper-flat "$FLAT_GAP_MS" "$UNITS"
log "(b)-(d) the core's scans, ps and the floor"
for mode in healthy full full-zombies ps floor; do
        core "$mode"
done
[ "$(count_procs)" -eq "$TOTAL" ] || die "processes came or went during the measurements"
report
sandbox_down
