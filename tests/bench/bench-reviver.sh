#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# How fast a SIGKILLed worker is active again, in a throwaway systemd (sandbox.sh): heal's reviver
# (OnFailure= -> heal-worker-reviver@), systemd's own Restart=on-failure with RestartSec=100ms, and monit
# (`set daemon 1`, start program = systemctl start), killed in turn in the same run.
#
# The clock is systemd's own, read back after each kill, the same way for all three:
#   death        ActiveExitTimestampMonotonic of the worker (PID 1 saw its main process die and the unit
#                leave "active"; for Restart= the unit never becomes inactive, so InactiveEnter would not do)
#   active again ActiveEnterTimestampMonotonic of the next invocation (a new InvocationID)
# so the numbers do not depend on how often this script polls. heal's verify settle time comes after
# "active again" and is not counted; each heal revival must still end verified before the next kill.
#
# Environment:
#   BUILD_DIR                  build dir to install (default: ./build); a release build, or RSS says little
#   BENCH_REVIVER_KILLS        kills per mechanism (default 50)
#   BENCH_REVIVER_TIMEOUT_S    how long one kill may take to be revived before it counts as a timeout (60)
#   BENCH_REVIVER_SPACING_S    each worker is killed at most once per this many seconds (2.5): keeps the
#                              reviver unit under systemd's default start limit (5 starts in 10 s)
# Needs root (it boots a container); skips with a message, exit 0, otherwise.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$top/build}
KILLS=${BENCH_REVIVER_KILLS:-50}
TIMEOUT_S=${BENCH_REVIVER_TIMEOUT_S:-60}
SPACING_S=${BENCH_REVIVER_SPACING_S:-2.5}

# shellcheck disable=SC2034 # read by sandbox.sh
SB_WHAT=bench-reviver
# shellcheck source=tests/integration/sandbox.sh disable=SC1091
. "$top/tests/integration/sandbox.sh"

# sandbox_require exits 77 (meson's skip); ./dev bench wants a clean skip instead.
if ! why=$(sandbox_require); then
        echo "bench-reviver: skipped, ${why#SKIP: bench-reviver }"
        exit 0
fi
[ -x "$BUILD_DIR/helpers/worker-reviver/worker-reviver" ] || {
        echo "bench-reviver: $BUILD_DIR has no worker-reviver built" >&2
        exit 1
}
command -v monit >/dev/null || {
        echo "bench-reviver: monit is not installed (Debian package monit)" >&2
        exit 1
}
if grep -q __asan_init "$BUILD_DIR/helpers/worker-reviver/worker-reviver" 2>/dev/null; then
        echo "bench-reviver: warning: $BUILD_DIR is a sanitizer build; times and RSS are not the release's" >&2
fi

HEAL_W=bench-heal-worker.service
RESTART_W=bench-restart-worker.service
MONIT_W=monit-worker.service
REVIVER=heal-worker-reviver@$HEAL_W.service
MECHS=(heal restart monit)
declare -A unit_of=([heal]=$HEAL_W [restart]=$RESTART_W [monit]=$MONIT_W)
declare -A label_of=([heal]="heal reviver" [restart]="systemd Restart=" [monit]="monit")

log() { printf 'bench-reviver: %s\n' "$*" >&2; }
die() {
        log "$*"
        exit 1
}

# ---- the stage inside the sandbox ------------------------------------------------------------------

setup_sandbox() {
        local u

        # One worker for all three: it writes its pid for monit, then sleeps.
        sb_write /usr/local/bin/heal-bench-worker 0755 <<'EOF'
#!/bin/sh
mkdir -p /run/heal-bench
echo $$ >"/run/heal-bench/$1.pid"
exec sleep infinity
EOF
        # heal-bench-kill UNIT TIMEOUT_S: SIGKILL every process of UNIT, wait until a new invocation of it
        # is active, print "ok INCIDENT DEATH_US ACTIVE_US" (the killed InvocationID and systemd's
        # monotonic timestamps) or "timeout INCIDENT".
        sb_write /usr/local/bin/heal-bench-kill 0755 <<'EOF'
#!/bin/bash
set -u
unit=$1 timeout_s=$2
read_props() {
        state= inv= enter= exit_=
        while IFS='=' read -r k v; do
                case $k in
                ActiveState) state=$v ;;
                InvocationID) inv=$v ;;
                ActiveEnterTimestampMonotonic) enter=$v ;;
                ActiveExitTimestampMonotonic) exit_=$v ;;
                esac
        done < <(systemctl show -p ActiveState -p InvocationID -p ActiveEnterTimestampMonotonic \
                -p ActiveExitTimestampMonotonic "$unit")
}
read_props
[ "$state" = active ] || { echo "error $unit is $state before the kill"; exit 1; }
old_inv=$inv old_exit=$exit_
systemctl kill -s SIGKILL "$unit"
deadline=$(($(date +%s%N) + timeout_s * 1000000000))
while :; do
        read_props
        if [ "$state" = active ] && [ "$inv" != "$old_inv" ]; then
                [ "$exit_" -gt "$old_exit" ] || { echo "error $unit: ActiveExitTimestamp did not move"; exit 1; }
                echo "ok $old_inv $exit_ $enter"
                exit 0
        fi
        [ "$(date +%s%N)" -lt "$deadline" ] || { echo "timeout $old_inv"; exit 0; }
        sleep 0.02
done
EOF
        # Identical units but for how they come back. No start rate limit on any of them: kills come
        # faster than StartLimitBurst= allows, and that limit is not what is measured.
        for u in "$HEAL_W" "$RESTART_W" "$MONIT_W"; do
                {
                        printf '[Unit]\nDescription=bench worker %s\nStartLimitIntervalSec=0\n' "$u"
                        printf '[Service]\nExecStart=/usr/local/bin/heal-bench-worker %s\n' "${u%.service}"
                        [ "$u" = "$RESTART_W" ] && printf 'Restart=on-failure\nRestartSec=100ms\n'
                        true
                } | sb_write "/etc/systemd/system/$u"
        done

        # heal: live, with budgets and a breaker that 50+ revivals cannot exhaust, a 1 s settle.
        sb_write /etc/heal/policy.d/50-bench.json <<'EOF'
{"version": 1,
 "global": {"budget": {"actions": 100000, "per_s": 1}},
 "classes": {"worker-dead": {"mode": "live", "settle_s": 1,
   "target_budget": {"actions": 100000, "per_s": 1}, "budget": {"actions": 100000, "per_s": 1},
   "breaker": {"failures": 1000, "cooldown_s": 1}}}}
EOF
        sb_exec healctl policy check >/dev/null || die "the bench policy is invalid"

        # monit, in the foreground as a transient service (the packaged monit.service stays masked).
        sb_write /etc/heal-bench/monitrc 0600 <<EOF
set daemon 1
set log /run/heal-bench/monit.log
set idfile /run/heal-bench/monit.id
set statefile /run/heal-bench/monit.state
check process monit-worker with pidfile /run/heal-bench/monit-worker.pid
        start program = "/bin/systemctl start $MONIT_W"
EOF
        sb_exec systemctl daemon-reload
        sb_exec healctl enroll "$HEAL_W" >/dev/null || die "healctl enroll $HEAL_W failed"
        sb_exec systemctl start "$HEAL_W" "$RESTART_W" "$MONIT_W" || die "the workers did not start"
        sb_exec monit -t -c /etc/heal-bench/monitrc >/dev/null || die "monit rejects the bench monitrc"
        sb_exec systemd-run --quiet --unit=heal-bench-monit /usr/bin/monit -I -c /etc/heal-bench/monitrc ||
                die "monit did not start"
        # monit checks the worker once before it is of any use.
        sb_wait_for 15 sb_exec grep -q "Monit.*started\|Starting Monit" /run/heal-bench/monit.log ||
                die "monit never logged its start"
        sleep 2
}

# ---- one kill -------------------------------------------------------------------------------------

reviver_idle() {
        local st job
        st=$(sb_exec systemctl show -P ActiveState "$REVIVER")
        job=$(sb_exec systemctl show -P Job "$REVIVER")
        case "$st" in inactive | failed) [ -z "$job" ] ;; *) return 1 ;; esac
}

# After a heal revival: the reviver ends (settle time), and the incident is verified in the audit.
# Records, for the breakdown, when the reviver unit started and when its audit records came.
declare -a heal_steps=()
not_verified=0
heal_finish() {
        local inc=$1 death=$2 active=$3 start events
        sb_wait_for 60 reviver_idle || {
                log "the reviver of $inc did not finish within 60 s"
                not_verified=$((not_verified + 1))
                return 0
        }
        start=$(sb_exec systemctl show -P ExecMainStartTimestampMonotonic "$REVIVER")
        # HEAL_EVENT and its time, in the order journald received them.
        events=$(sb_journal -o export --output-fields=HEAL_EVENT "HEAL_INCIDENT=$inc" "HEAL_TARGET=$HEAL_W" |
                awk -F= '/^__MONOTONIC_TIMESTAMP=/ { t = $2 } /^HEAL_EVENT=/ { printf "%s=%s ", $2, t }')
        case " $events" in
        *" verified="*) ;;
        *)
                log "incident $inc was not verified (events: ${events:-none})"
                not_verified=$((not_verified + 1))
                ;;
        esac
        heal_steps+=("death=$death started=$start $events active=$active")
}

# kill_one MECH: one kill, its time appended to samples[MECH] (ms, 3 decimals) or a timeout counted.
declare -A samples=() timeouts=() last_kill=()
kill_one() {
        local m=$1 u=${unit_of[$1]} out status inc death active wait_s
        # At most one kill of a worker per SPACING_S.
        if [ -n "${last_kill[$m]:-}" ]; then
                wait_s=$(awk -v l="${last_kill[$m]}" -v n="$(date +%s%N)" -v s="$SPACING_S" \
                        'BEGIN { w = s - (n - l) / 1e9; if (w > 0) printf "%.3f", w; else print 0 }')
                sleep "$wait_s"
        fi
        last_kill[$m]=$(date +%s%N)
        out=$(sb_exec /usr/local/bin/heal-bench-kill "$u" "$TIMEOUT_S")
        read -r status inc death active <<<"$out"
        case "$status" in
        ok)
                samples[$m]+="$(awk -v a="$death" -v b="$active" 'BEGIN { printf "%.3f", (b - a) / 1000 }') "
                if [ "$m" = heal ]; then heal_finish "$inc" "$death" "$active"; fi
                ;;
        timeout)
                timeouts[$m]=$((${timeouts[$m]:-0} + 1))
                log "$u was not active again within ${TIMEOUT_S} s; starting it by hand"
                sb_exec systemctl reset-failed "$u" 2>/dev/null || true
                sb_exec systemctl start "$u" || die "$u cannot be started again"
                if [ "$m" = heal ]; then sb_wait_for 60 reviver_idle || true; fi
                ;;
        *) die "kill of $u: $out" ;;
        esac
        return 0
}

# ---- peak RSS of one reviver run ------------------------------------------------------------------

# GNU time around the installed reviver, in a drop-in on its unit, for one more (untimed) revival: the
# kernel's ru_maxrss of the reviver process, under its real unit and sandboxing.
measure_rss() {
        local exe inc kib
        if ! sb_exec test -x /usr/bin/time; then
                rss_kib="not measured (/usr/bin/time missing: Debian package time)"
                return 0
        fi
        exe=$(sb_exec systemctl show -P ExecStart "$REVIVER" | sed -n 's/.*path=\([^ ;]*\).*/\1/p')
        # %% is systemd's escape for a literal %.
        sb_write "/etc/systemd/system/$REVIVER.d/50-bench-rss.conf" <<EOF
[Service]
ExecStart=
ExecStart=/usr/bin/time -f "heal-bench-rss-kib %%M" $exe %i
EOF
        sb_exec systemctl daemon-reload
        read -r _ inc _ <<<"$(sb_exec /usr/local/bin/heal-bench-kill "$HEAL_W" "$TIMEOUT_S")"
        sb_wait_for 60 reviver_idle || true
        kib=$(sb_journal -o cat -u "$REVIVER" | sed -n 's/^heal-bench-rss-kib \([0-9]*\)$/\1/p' | tail -n1)
        if [ -n "$kib" ]; then
                rss_kib=$kib
        else
                rss_kib="not measured (no output from /usr/bin/time; incident $inc)"
        fi
}

# ---- what the reviver unit's sandbox costs before the reviver runs ---------------------------------

# Between systemd's fork and the reviver's exec, systemd builds the unit's sandbox (mount namespace,
# read-only remounts, private /dev and /tmp, seccomp). Measured with the reviver unit's own settings: an
# instance whose drop-in swaps the command for `date`, against a plain unit running the same command.
# fork = ExecMainStartTimestamp (read while the unit still runs), exec = what date prints (both realtime).
# Each run ends by itself (a stopped one would count as failed and page through heal-escalate@), and
# the runs are paced under the units' default start limit.
declare -A fork_exec=()
measure_fork_exec() {
        local probe=heal-worker-reviver@bench-probe.service.service plain=heal-bench-plain.service u i f e
        local cmd="ExecStart=/bin/sh -c 'date +%%s%%N >/run/heal/bench-exec; sleep 1.5'"
        printf '[Service]\nExecStart=\n%s\n' "$cmd" | sb_write "/etc/systemd/system/$probe.d/50-bench-probe.conf"
        printf '[Service]\nType=oneshot\n%s\n' "$cmd" | sb_write "/etc/systemd/system/$plain"
        sb_exec systemctl daemon-reload
        for ((i = 0; i < 10; i++)); do
                for u in "$probe" "$plain"; do
                        sb_exec rm -f /run/heal/bench-exec
                        sb_exec systemctl start --no-block "$u"
                        if ! sb_wait_for 10 sb_exec test -s /run/heal/bench-exec; then
                                sb_exec systemctl status --no-pager "$u" >&2 || true
                                die "$u never ran its command"
                        fi
                        f=$(sb_exec systemctl show --timestamp=us+utc -P ExecMainStartTimestamp "$u")
                        e=$(sb_exec cat /run/heal/bench-exec)
                        f=$(date -d "${f#* }" +%s%N)
                        fork_exec[$u]+="$(awk -v a="$f" -v b="$e" 'BEGIN { printf "%.1f", (b - a) / 1e6 }') "
                        sb_wait_for 10 unit_ended "$u" || die "$u did not end"
                done
        done
        fork_exec_reviver=$(median "${fork_exec[$probe]}")
        fork_exec_plain=$(median "${fork_exec[$plain]}")
}
unit_ended() { case "$(sb_exec systemctl show -P ActiveState "$1")" in inactive | failed) return 0 ;; esac; return 1; }
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "-" }'; }

# ---- statistics and the table ---------------------------------------------------------------------

# stats "SAMPLES" TIMEOUTS -> "n p50 p90 p99 max" in ms; nearest rank, a timeout counting as +inf.
stats() {
        { tr ' ' '\n' <<<"$1" | grep . || true; for ((k = 0; k < $2; k++)); do echo inf; done; } |
                sed 's/^inf$/1e18/' | sort -g | awk '
                { v[NR] = $1 }
                function pct(p,  r) { r = int((p * NR + 99) / 100); if (r < 1) r = 1; return v[r] }
                function fmt(x) { return x >= 1e18 ? "timeout" : sprintf("%.1f", x) }
                END {
                        if (NR == 0) { print "0 - - - -"; exit }
                        print NR, fmt(pct(50)), fmt(pct(90)), fmt(pct(99)), fmt(v[NR])
                }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "timeout") print "inf"; else if (b + 0 > 0) printf "%.2fx", a / b; else print "-" }'; }

# The median of each step of a heal revival, from heal_steps.
heal_breakdown() {
        printf '%s\n' "${heal_steps[@]}" | awk '
        function get(k,  i, kv) { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
        function add(name, a, b) { if (a != "" && b != "" && a > 0 && b > 0) { n[name]++; d[name, n[name]] = (b - a) / 1000 } }
        {
                add("1 death -> reviver forked (systemd: OnFailure= job, fork)", get("death"), get("started"))
                add("2 reviver forked -> detected record (unit sandbox setup, exec, bus, state, policy, unit info, journal)", get("started"), get("detected"))
                add("3 detected -> confirmed (enrolled check, confirm)", get("detected"), get("confirmed"))
                add("4 confirmed -> acting (decide; guard: kill switch, idempotency, breaker, budgets, kill switch again)", get("confirmed"), get("acting"))
                add("5 acting -> worker active (reset-failed + start job)", get("acting"), get("active"))
                add("  death -> worker active (total)", get("death"), get("active"))
        }
        END {
                for (name in n) {
                        m = n[name]
                        for (i = 1; i <= m; i++) s[i] = d[name, i]
                        for (i = 2; i <= m; i++) { x = s[i]; for (j = i - 1; j >= 1 && s[j] > x; j--) s[j + 1] = s[j]; s[j + 1] = x }
                        printf "%s\t%.1f\t%.1f\t%d\n", name, s[int((m + 1) / 2)], s[int((99 * m + 99) / 100)], m
                }
        }' | sort | awk -F'\t' '{ printf "    %-104s p50 %7.1f ms  p99 %7.1f ms  (n=%d)\n", $1, $2, $3, $4 }'
}

report() {
        local m line n p50 p90 p99 max sd50 sd99 h99 verdict
        read -r _ sd50 _ sd99 _ <<<"$(stats "${samples[restart]:-}" "${timeouts[restart]:-0}")"
        echo
        echo "Host: $(nproc) CPUs; load average at the start $load_start, at the end $(cut -d' ' -f1-3 /proc/loadavg)" \
                "(a busy host stretches every mechanism's tail)"
        echo "Worker SIGKILLed -> active again (systemd's monotonic timestamps), $KILLS kills each, same run:"
        printf '%-18s %4s %8s %9s %9s %9s %9s %12s %12s\n' mechanism n timeouts "p50 ms" "p90 ms" "p99 ms" \
                "max ms" "p50/systemd" "p99/systemd"
        for m in "${MECHS[@]}"; do
                line=$(stats "${samples[$m]:-}" "${timeouts[$m]:-0}")
                read -r n p50 p90 p99 max <<<"$line"
                printf '%-18s %4s %8s %9s %9s %9s %9s %12s %12s\n' "${label_of[$m]}" "$n" "${timeouts[$m]:-0}" \
                        "$p50" "$p90" "$p99" "$max" "$(ratio "$p50" "$sd50")" "$(ratio "$p99" "$sd99")"
                if [ "$m" = heal ]; then h99=$p99; fi
        done
        verdict=$(awk -v h="$h99" -v s="$sd99" 'BEGIN { print (h != "timeout" && s != "timeout" && h <= 2 * s) ? "yes" : "no" }')
        echo
        echo "heal p99 <= 2x systemd p99: $verdict (heal $h99 ms, 2x systemd $(awk -v s="$sd99" 'BEGIN { printf "%.1f", 2 * s }') ms)"
        echo "heal revivals not verified: $not_verified of ${#heal_steps[@]}"
        case "$rss_kib" in
        *[!0-9]*) echo "reviver peak RSS (one run): $rss_kib" ;;
        *) echo "reviver peak RSS (one run, GNU time %M): $rss_kib KiB ($(awk -v k="$rss_kib" 'BEGIN { printf "%.1f", k / 1024 }') MiB), <= 8 MiB: $([ "$rss_kib" -le 8192 ] && echo yes || echo no)" ;;
        esac
        echo
        echo "Where heal's time goes (journald's receive time of each audit record; $HEAL_W):"
        heal_breakdown
        echo "    of step 2, systemd's fork -> exec under heal-worker-reviver@'s sandboxing: median $fork_exec_reviver ms" \
                "(a plain unit: $fork_exec_plain ms; 10 runs each)"
}

# ---- main -----------------------------------------------------------------------------------------

rss_kib="not measured" fork_exec_reviver=- fork_exec_plain=-
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
sandbox_up "$BUILD_DIR" || die "the sandbox did not come up"
setup_sandbox
log "killing each worker $KILLS times (heal, Restart=, monit in turn)"
for ((i = 1; i <= KILLS; i++)); do
        for m in "${MECHS[@]}"; do
                sb_exec systemctl is-active -q "${unit_of[$m]}" || die "${unit_of[$m]} is not active before kill $i"
                kill_one "$m"
        done
        if [ $((i % 10)) -eq 0 ]; then log "$i of $KILLS"; fi
done
measure_rss
measure_fork_exec
report
sandbox_down
