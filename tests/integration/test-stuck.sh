#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# stuck-process-detector end to end, in a throwaway systemd (sandbox.sh): real workers whose heartbeat
# stops while they sit blocked, busy and idle workers, tasks really in D state (a vfork() parent, and a
# read from a FUSE filesystem whose daemon never answers), a parent that never reaps;
# heal-stuck-process-detector.service (as installed, hardened) runs between the steps, and the journal's
# audit records and the workers' own start counts say what heal did.
# Usage: test-stuck.sh BUILD_DIR [SCENARIO...]
# shellcheck disable=SC2016 # scripts for sb_sh are single-quoted on purpose
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=sandbox.sh
. "$here/sandbox.sh"
# shellcheck source=check.sh
. "$here/check.sh"
scenario_args "$@"

# ---- fixtures inside the sandbox ------------------------------------------------------------------

# A worker whose behaviour is a file, re-read every loop: "run" touches its heartbeat every 0.2 s; "busy"
# burns a CPU and touches it; "hold" sits in a FIFO read (no CPU, no heartbeat) until the test writes to
# it; "block" execs `sleep infinity` (no CPU, no heartbeat, for good). Every start appends a line.
install_worker() {
        sb_write /usr/local/bin/heal-stuck-worker 0755 <<'EOF'
#!/bin/sh
name=$1
d=/run/heal-test
echo start >>"$d/$name.starts"
[ -p "$d/$name.fifo" ] || mkfifo "$d/$name.fifo"
while :; do
        case "$(cat "$d/$name.mode" 2>/dev/null)" in
        block) exec sleep infinity ;;
        hold) read -r _ <"$d/$name.fifo" ;;
        busy)
                touch "$d/$name.hb"
                i=0
                while [ $i -lt 20000 ]; do i=$((i + 1)); done ;;
        *)
                touch "$d/$name.hb"
                sleep 0.2 ;;
        esac
done
EOF
}

# make_unit NAME EXECSTART: a service that systemd restarts when it dies (Restart=always).
make_unit() {
        sb_write "/etc/systemd/system/$1.service" <<EOF
[Unit]
Description=heal test worker $1
[Service]
ExecStart=$2
Restart=always
RestartSec=100ms
# No core files in the sandbox's overlay; the SIGABRT still shows as the exit signal.
LimitCORE=0
EOF
}

make_worker() {
        sb_sh 'mkdir -p /run/heal-test && echo "$2" >"/run/heal-test/$1.mode"' "$1" "$2"
        make_unit "$1" "/usr/local/bin/heal-stuck-worker $1"
}

set_mode() { sb_sh 'echo "$2" >"/run/heal-test/$1.mode"' "$1" "$2"; }
starts() { sb_sh 'cat "/run/heal-test/$1.starts" 2>/dev/null | wc -l' "$1"; }
main_pid() { sb_exec systemctl show -P MainPID "$1.service"; }
# start_fixture NAME EXECSTART SETTLE: a unit of its own started, and after SETTLE seconds its main PID.
start_fixture() {
        make_unit "$1" "$2"
        reload
        sb_exec systemctl start "$1.service"
        sleep "$3"
        main_pid "$1"
}
main_comm() { sb_sh 'cat "/proc/$(systemctl show -P MainPID "$1.service")/comm" 2>/dev/null' "$1"; }
comm_is() { [ "$(main_comm "$1")" = "$2" ]; }
hb_older_than() { sb_sh 'f=/run/heal-test/$1.hb; [ -e "$f" ] && [ $(( $(date +%s) - $(stat -c %Y "$f") )) -ge "$2" ]' "$1" "$2"; }
hb_exists() { sb_exec test -e "/run/heal-test/$1.hb"; }

reload() { sb_exec systemctl daemon-reload; }

# stale_worker NAME MODE: a worker that runs and touches its heartbeat, then switched to MODE (hold or
# block: no heartbeat any more) until its heartbeat is stale.
stale_worker() {
        make_worker "$1" run
        reload
        sb_exec systemctl start "$1.service"
        sb_wait_for 10 hb_exists "$1" || fail "$1 never touched its heartbeat"
        set_mode "$1" "$2"
        sb_wait_for 10 hb_older_than "$1" 2 || fail "$1's heartbeat did not go stale"
}

# The policy under test, merged over the installed default policy.
policy() { sb_write /etc/heal/policy.d/50-test.json; }

# Forget budgets, breakers, idempotency keys and samples between scenarios.
reset_state() { sb_sh 'rm -rf /var/lib/heal/* /run/heal/stuck 2>/dev/null; true'; }

# One run of the detector, as installed: start the service and wait until it has finished.
detector_idle() {
        case "$(sb_exec systemctl show -P ActiveState heal-stuck-process-detector.service)" in
        inactive | failed) return 0 ;;
        *) return 1 ;;
        esac
}
detect() {
        sb_exec systemctl start heal-stuck-process-detector.service
        sb_wait_for 120 detector_idle || fail "the detector did not finish within 120 s"
        local result
        result=$(sb_exec systemctl show -P Result heal-stuck-process-detector.service)
        [ "$result" = success ] || fail "the detector's run ended with Result=$result"
}

# events UNIT EVENT [MATCH...]: how many audit records of that event the unit has.
events() {
        local unit=$1 ev=$2
        shift 2
        sb_journal -o cat --output-fields=HEAL_EVENT "HEAL_HEALER=stuck-process-detector" "HEAL_TARGET=$unit.service" \
                "HEAL_EVENT=$ev" "$@" | grep -c . || true
}
# field UNIT EVENT FIELD: the values of FIELD in those records, one per line.
field() {
        sb_journal -o cat --output-fields="$3" "HEAL_HEALER=stuck-process-detector" "HEAL_TARGET=$1.service" \
                "HEAL_EVENT=$2"
}
all_records() { sb_journal -o cat --output-fields=HEAL_EVENT "HEAL_TARGET=$1.service" | grep -c . || true; }
incidents() { sb_journal -o cat --output-fields=HEAL_INCIDENT "HEAL_TARGET=$1.service" | sort -u | grep -c . || true; }

# ---- scenarios -------------------------------------------------------------------------------------

BASE='"target_budget": {"actions": 100, "per_s": 600}, "budget": {"actions": 100, "per_s": 600},
      "idempotency_s": 600, "heartbeat_stale_s": 1, "settle_s": 2, "breaker": {"failures": 2, "cooldown_s": 600},
      "targets": ["w-*.service", "i-*.service"], "heartbeat": {"w-*.service": {"file": "/run/heal-test/%p.hb"}}'

# A stuck worker is SIGABRTed, revived by its Restart=, and verified fresh; a busy worker (100 % CPU, fresh
# heartbeat) and an idle one (no heartbeat configured, flat CPU) are never touched; a further run does
# not act again.
scenario_revive() {
        local busy_pid idle_pid ids
        reset_state
        policy <<EOF
{"global": {"budget": {"actions": 100, "per_s": 600}},
 "classes": {"process-stuck": {"mode": "live", "dwell_s": 2, $BASE}}}
EOF
        make_worker w-basic run
        make_worker w-busy busy
        make_unit i-idle "/bin/sleep infinity"
        reload
        sb_exec systemctl start w-basic.service w-busy.service i-idle.service
        sb_wait_for 10 hb_exists w-basic || fail "w-basic never touched its heartbeat"
        set_mode w-basic block
        sb_wait_for 10 comm_is w-basic sleep || fail "w-basic did not block"
        set_mode w-basic run # what it does once revived
        sb_wait_for 10 hb_older_than w-basic 2 || fail "w-basic's heartbeat did not go stale"
        busy_pid=$(main_pid w-busy)
        idle_pid=$(main_pid i-idle)

        detect # baseline: nothing to compare with yet
        expect_eq "revive: no record after the first sample" "$(all_records w-basic)" 0
        sleep 2.5
        detect # no progress and a stale heartbeat, both for 2.5 s >= dwell: act
        for ev in detected confirmed acting verified; do
                expect_eq "revive: w-basic '$ev' records" "$(events w-basic "$ev")" 1
        done
        ids=$(incidents w-basic)
        expect_eq "revive: one incident for every record" "$ids" 1
        field w-basic verified HEAL_AFTER,MESSAGE | grep -q "fresh again" ||
                fail "revive: the verified record does not say the heartbeat is fresh again: $(field w-basic verified MESSAGE)"
        sb_journal -u w-basic.service -o cat | grep -q "status=6/ABRT" ||
                fail "revive: w-basic's main process did not die of SIGABRT"
        expect_eq "revive: w-basic starts (1 + revival)" "$(starts w-basic)" 2
        expect_eq "revive: w-basic active" "$(sb_exec systemctl is-active w-basic.service || true)" active
        sb_wait_for 5 hb_exists w-basic
        hb_older_than w-basic 2 && fail "revive: w-basic's heartbeat is not fresh after the revival"

        detect
        sleep 2.5
        detect
        expect_eq "revive: still one action after two more runs" "$(events w-basic acting)" 1

        expect_eq "revive: w-busy never touched (records)" "$(all_records w-busy)" 0
        expect_eq "revive: w-busy same main PID" "$(main_pid w-busy)" "$busy_pid"
        expect_eq "revive: i-idle never touched (records)" "$(all_records i-idle)" 0
        expect_eq "revive: i-idle same main PID" "$(main_pid i-idle)" "$idle_pid"
        sb_exec systemctl stop w-basic.service w-busy.service i-idle.service
}

# A worker seen stuck once, that recovers before the dwell is over: dismissed, nothing done.
scenario_dismiss() {
        local pid
        reset_state
        policy <<EOF
{"classes": {"process-stuck": {"mode": "live", "dwell_s": 60, $BASE}}}
EOF
        stale_worker w-dismiss hold
        pid=$(main_pid w-dismiss)
        detect
        sleep 1
        detect
        expect_eq "dismiss: detected" "$(events w-dismiss detected)" 1
        set_mode w-dismiss run
        sb_exec sh -c 'echo go >/run/heal-test/w-dismiss.fifo'
        sleep 1
        detect
        expect_eq "dismiss: dismissed" "$(events w-dismiss dismissed)" 1
        expect_eq "dismiss: confirmed" "$(events w-dismiss confirmed)" 0
        expect_eq "dismiss: acting" "$(events w-dismiss acting)" 0
        expect_eq "dismiss: one incident for detected and dismissed" "$(incidents w-dismiss)" 1
        expect_eq "dismiss: same main PID" "$(main_pid w-dismiss)" "$pid"
        sb_exec systemctl stop w-dismiss.service
}

# Shadow mode: the same stuck worker seen by consecutive runs gives one "would-act", then the guard's
# idempotency skips it; the worker is left alone.
scenario_idempotent() {
        reset_state
        policy <<EOF
{"classes": {"process-stuck": {"mode": "shadow", "dwell_s": 2, $BASE}}}
EOF
        stale_worker w-shadow block
        detect
        sleep 2.5
        detect
        detect
        detect
        expect_eq "idempotent: would-act" "$(events w-shadow would-act)" 1
        expect_eq "idempotent: confirmed once" "$(events w-shadow confirmed)" 1
        [ "$(events w-shadow skipped HEAL_REASON=idempotent)" -ge 2 ] ||
                fail "idempotent: later runs were not skipped as idempotent ($(field w-shadow skipped HEAL_REASON | tr '\n' ' '))"
        expect_eq "idempotent: one incident" "$(incidents w-shadow)" 1
        expect_eq "idempotent: w-shadow never restarted" "$(starts w-shadow)" 1
        sb_exec systemctl stop w-shadow.service
}

# A worker that is stuck again right after every revival: each verify fails, the breaker opens after two
# and escalates, and the next confirmation is skipped.
scenario_breaker() {
        reset_state
        policy <<EOF
{"global": {"budget": {"actions": 100, "per_s": 600}},
 "classes": {"process-stuck": {"mode": "live", "dwell_s": 2, $BASE}}}
EOF
        # block also after every restart: it never touches its heartbeat again
        stale_worker w-loop block
        for _ in 1 2 3; do
                detect
                sleep 2.5
                detect
        done
        expect_eq "breaker: acting" "$(events w-loop acting)" 2
        expect_eq "breaker: verify-failed" "$(events w-loop verify-failed)" 2
        expect_eq "breaker: breaker-opened" "$(events w-loop breaker-opened)" 1
        [ "$(events w-loop escalated)" -ge 1 ] || fail "breaker: no escalation"
        [ "$(events w-loop skipped HEAL_REASON=breaker-open)" -ge 1 ] || fail "breaker: the third round was not refused"
        expect_eq "breaker: starts (1 + 2 revivals)" "$(starts w-loop)" 3
        sb_exec systemctl stop w-loop.service
}

# expect_d_escalated UNIT PID: UNIT's main process PID is in D; over the dwell the detector sees it,
# escalates it once with the task, its wchan, its stack (where readable) and its time in D, and does
# nothing to it.
expect_d_escalated() {
        local unit=$1 pid=$2 facts
        expect_eq "$unit: the fixture is in D" "$(sb_sh 'cut -d" " -f3 /proc/$1/stat' "$pid")" D
        detect
        sleep 1
        detect # flat: reads the processes, sees the task in D for the first time
        sleep 2.5
        detect # the same task still in D, for longer than the dwell: escalate
        detect
        expect_eq "$unit: detected" "$(events "$unit" detected)" 1
        expect_eq "$unit: escalated once" "$(events "$unit" escalated)" 1
        expect_eq "$unit: acting" "$(events "$unit" acting)" 0
        facts=$(field "$unit" escalated HEAL_FACTS)
        echo "$facts" | /usr/bin/python3 -c '
import json, sys
f = json.loads(sys.stdin.read())
t = f["d_tasks"][0]
assert t["pid"] == int(sys.argv[1]), t
assert t["wchan"] not in ("", "unavailable"), t
assert "stack" in t, t
assert t["in_d_s"] >= 2, t
' "$pid" || fail "$unit: escalation facts lack the task, its wchan or its time in D: $facts"
        echo "    $unit: wchan $(echo "$facts" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["d_tasks"][0]["wchan"])')"
        expect_eq "$unit: same main PID" "$(main_pid "$unit")" "$pid"
}

d_state_policy() {
        policy <<'EOF'
{"classes": {"process-d-state": {"mode": "live", "dwell_s": 2, "targets": ["d-*.service"]}}}
EOF
}

# A task really in D state (a vfork() parent whose child never execs): escalated with its wchan, no action.
scenario_d_state() {
        local pid
        reset_state
        d_state_policy
        pid=$(start_fixture d-vfork /usr/local/bin/heal-stuck-vfork 0.5)
        expect_d_escalated d-vfork "$pid"
        sb_exec systemctl kill -s KILL d-vfork.service
        sb_exec systemctl stop d-vfork.service
}

# The issue's own example: a read from a FUSE filesystem whose daemon never answers (fuse-hang.c). The
# reader waits in the kernel (killably, so stopping its unit still works); escalated, no action.
fuse_mounted() { sb_sh 'grep -q " /mnt/heal-fuse " /proc/self/mountinfo'; }
scenario_d_state_fuse() {
        local pid
        reset_state
        d_state_policy
        sb_sh '[ -e /dev/fuse ] || mknod /dev/fuse c 10 229; mkdir -p /mnt/heal-fuse'
        sb_exec systemd-run -q --unit=heal-test-fuse-hang --service-type=exec /usr/local/bin/heal-fuse-hang \
                /mnt/heal-fuse || fail "d-state fuse: the FUSE daemon did not start"
        sb_wait_for 10 fuse_mounted || fail "d-state fuse: no FUSE mount at /mnt/heal-fuse"
        pid=$(start_fixture d-fuse "/usr/bin/cat /mnt/heal-fuse/data" 0.5)
        expect_d_escalated d-fuse "$pid"
        sb_exec systemctl stop d-fuse.service
        # Killing the daemon aborts the connection; then the mount can go.
        sb_exec systemctl stop heal-test-fuse-hang.service || true
        sb_exec umount -l /mnt/heal-fuse || fail "d-state fuse: could not unmount the FUSE mount"
}

# A parent that forks and never reaps: escalated with the parent named, no action.
scenario_zombies() {
        local pid facts
        reset_state
        policy <<'EOF'
{"classes": {"process-zombies": {"mode": "live", "dwell_s": 2, "zombies_max": 5, "targets": ["z-*.service"]}}}
EOF
        sb_write /usr/local/bin/heal-stuck-forker 0755 <<'EOF'
#!/usr/bin/python3
import os, time
for _ in range(8):
    if os.fork() == 0:
        os._exit(0)
time.sleep(100000)
EOF
        pid=$(start_fixture z-forker /usr/local/bin/heal-stuck-forker 1)
        detect
        sleep 1
        detect
        sleep 2.5
        detect
        expect_eq "zombies: escalated" "$(events z-forker escalated)" 1
        expect_eq "zombies: acting" "$(events z-forker acting)" 0
        field z-forker escalated MESSAGE | grep -q "PID $pid" || fail "zombies: the escalation does not name parent PID $pid"
        facts=$(field z-forker escalated HEAL_FACTS)
        echo "$facts" | /usr/bin/python3 -c '
import json, sys
f = json.loads(sys.stdin.read())
assert f["zombies"] == 8, f
p = f["parents"][0]
assert p["pid"] == int(sys.argv[1]) and p["zombies"] == 8, p
' "$pid" || fail "zombies: escalation facts: $facts"
        sb_exec systemctl stop z-forker.service
}

# ---- main ------------------------------------------------------------------------------------------

all=(revive dismiss idempotent breaker d_state d_state_fuse zombies)
[ "${#SCENARIOS[@]}" -gt 0 ] && all=("${SCENARIOS[@]}")

command -v cc >/dev/null || {
        echo "SKIP: no C compiler for the D-state fixture"
        exit 77
}
tmp=$(mktemp -d)
cc -O2 -o "$tmp/heal-stuck-vfork" "$here/stuck-vfork.c"
cc -O2 -o "$tmp/heal-fuse-hang" "$here/fuse-hang.c"

sandbox_up "$build_dir" || exit 1
sb_copy_in "$tmp/heal-stuck-vfork" /usr/local/bin/heal-stuck-vfork
sb_copy_in "$tmp/heal-fuse-hang" /usr/local/bin/heal-fuse-hang
rm -rf "$tmp"
install_worker
# A sanitizer build's leak checker needs ptrace, which the units' SystemCallFilter= refuses; leaks are the
# unit tests' job, the units' hardening is ours.
if grep -q __asan_init "$build_dir/helpers/stuck-process-detector/stuck-process-detector" 2>/dev/null; then
        for u in heal-stuck-process-detector.service heal-escalate@.service; do
                sb_write "/etc/systemd/system/$u.d/50-asan.conf" <<'EOF'
[Service]
Environment=ASAN_OPTIONS=detect_leaks=0
EOF
        done
        reload
fi

for s in "${all[@]}"; do
        echo "--- $s"
        "scenario_$s"
done

expect_eq "heal units in failed state" "$(sb_exec systemctl list-units --failed --no-legend --plain 'heal-*' | grep -c . || true)" 0

scenarios_end stuck-process-detector heal-stuck-process-detector.service
