#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# worker-reviver end to end, in a throwaway systemd (sandbox.sh): enrolled workers fail for real, their
# OnFailure= starts heal-worker-reviver@, and the journal's audit records and the workers' own start
# counts say what heal did. Usage: test-reviver.sh BUILD_DIR [SCENARIO...]
# shellcheck disable=SC2016 # scripts for sb_sh are single-quoted on purpose
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=sandbox.sh
. "$here/sandbox.sh"
# shellcheck source=check.sh
. "$here/check.sh"
scenario_args "$@"

# ---- fixtures inside the sandbox ------------------------------------------------------------------

# A worker whose behaviour is a file: "once" fails its first start only, "always" dies 0.3 s after every
# start (inside any settle time), "ok" runs. Every start appends a line, so revivals can be counted.
install_worker() {
        sb_write /usr/local/bin/heal-test-worker 0755 <<'EOF'
#!/bin/sh
name=$1
mkdir -p /run/heal-test
echo start >>"/run/heal-test/$name.starts"
case "$(cat "/run/heal-test/$name.mode" 2>/dev/null)" in
once)
        if [ ! -e "/run/heal-test/$name.failed" ]; then
                : >"/run/heal-test/$name.failed"
                echo "worker $name: failing on purpose" >&2
                exit 3
        fi ;;
always)
        sleep 0.3
        echo "worker $name: dying again" >&2
        exit 4 ;;
esac
exec sleep infinity
EOF
}

# make_worker NAME MODE [enrolled|plain]: a unit running heal-test-worker, enrolled by the same drop-in
# `healctl enroll` writes (copied from the installed template).
make_worker() {
        local name=$1 mode=$2 how=${3:-enrolled}
        sb_write "/etc/systemd/system/$name.service" <<EOF
[Unit]
Description=heal test worker $name
[Service]
ExecStart=/usr/local/bin/heal-test-worker $name
EOF
        sb_sh 'mkdir -p /run/heal-test && echo "$2" >"/run/heal-test/$1.mode"' "$name" "$mode"
        if [ "$how" = enrolled ]; then
                sb_sh 'mkdir -p "/etc/systemd/system/$1.service.d" &&
                        cp "$2" "/etc/systemd/system/$1.service.d/50-heal-reviver.conf"' "$name" "$dropin"
        fi
}

reload() { sb_exec systemctl daemon-reload; }

# policy JSON: a whole policy ("version" included), so the test does not depend on where the build's
# prefix put the default one; keys left out take the schema's defaults.
policy() {
        sb_write /etc/heal/policy.d/50-test.json
}

# Forget budgets, breakers and idempotency keys between scenarios.
reset_state() { sb_sh 'rm -rf /var/lib/heal/* /run/heal/pending 2>/dev/null; true'; }

starts() { sb_sh 'cat "/run/heal-test/$1.starts" 2>/dev/null | wc -l' "$1"; }

# events NAME EVENT [MATCH...]: how many audit records of that event the unit has.
events() {
        local name=$1 ev=$2
        shift 2
        sb_journal -o cat --output-fields=HEAL_EVENT "HEAL_TARGET=$name.service" "HEAL_EVENT=$ev" "$@" | grep -c . || true
}

# field NAME EVENT FIELD: the values of FIELD in those records, one per line.
field() {
        sb_journal -o cat --output-fields="$3" "HEAL_TARGET=$1.service" "HEAL_EVENT=$2"
}

reviver_unit() { echo "heal-worker-reviver@$1.service.service"; }

# The unit's reviver is neither running nor queued.
reviver_idle() {
        local st job
        alive
        st=$(sb_exec systemctl show -P ActiveState "$(reviver_unit "$1")")
        job=$(sb_exec systemctl show -P Job "$(reviver_unit "$1")")
        case "$st" in inactive | failed) [ -z "$job" ] ;; *) return 1 ;; esac
}

# wait_done NAME EVENT N: until N records of EVENT exist and the reviver is idle.
wait_done() {
        local name=$1 ev=$2 n=$3
        sb_wait_for 90 has_events "$name" "$ev" "$n" ||
                fail "$name: waited 90 s for $n '$ev' records (have $(events "$name" "$ev"))"
        sb_wait_for 60 reviver_idle "$name" || fail "$name: reviver still busy after 60 s"
}
has_events() {
        alive
        [ "$(events "$1" "$2")" -ge "$3" ]
}

# Waiting on a dead sandbox only produces noise: stop at once.
alive() {
        [ -d "/proc/$SB_PID1" ] && return 0
        echo "FAIL: the sandbox died" >&2
        exit 1
}

# The worker failed its first start (mode once).
worker_failed() { sb_exec systemctl is-failed -q "$1.service"; }

# run_reviver NAME: start its reviver by hand, as an operator would; the reviver never fails for a
# skip or a failed revival, only when it could not do its job.
run_reviver() { sb_exec systemctl start "$(reviver_unit "$1")" || fail "$1: the reviver run by hand failed"; }

# fail_worker NAME: start it (it fails at once in mode once/always).
fail_worker() { sb_exec systemctl start --no-block "$1.service"; }

# ---- scenarios -------------------------------------------------------------------------------------

# One crash -> one revival, verified; every record of the incident shares HEAL_INCIDENT, which is the
# failed run's InvocationID.
scenario_basic() {
        local ids invocation
        reset_state
        policy <<'EOF'
{"version": 1, "classes": {"worker-dead": {"mode": "live", "settle_s": 2}}}
EOF
        make_worker w-basic once
        reload
        fail_worker w-basic
        wait_done w-basic verified 1
        expect_eq "basic: starts (1 failed + 1 revival)" "$(starts w-basic)" 2
        expect_eq "basic: unit active after revival" "$(sb_exec systemctl is-active w-basic.service || true)" active
        for ev in detected confirmed acting verified; do
                expect_eq "basic: $ev records" "$(events w-basic "$ev")" 1
        done
        ids=$(sb_journal -o cat --output-fields=HEAL_INCIDENT HEAL_TARGET=w-basic.service | sort -u)
        expect_eq "basic: distinct incident ids over all records" "$(echo "$ids" | grep -c .)" 1
        # The failed invocation is the one systemd logged the failure under.
        invocation=$(sb_journal -o cat --output-fields=INVOCATION_ID _PID=1 UNIT=w-basic.service \
                MESSAGE_ID=d9b373ed55a64feb8242e02dbe79a49c | head -n1)
        expect_eq "basic: incident is the failed InvocationID" "$ids" "$invocation"
        [ "$(events w-basic verified HEAL_HEALER=worker-reviver HEAL_CLASS=worker-dead)" = 1 ] ||
                fail "basic: verified record lacks HEAL_HEALER/HEAL_CLASS"
}

# The same failure reported twice (OnFailure= plus a manual start of the reviver) acts once.
scenario_twice() {
        reset_state
        policy <<'EOF'
{"version": 1, "classes": {"worker-dead": {"mode": "live", "settle_s": 2}}}
EOF
        make_worker w-twice once
        reload
        fail_worker w-twice
        sb_wait_for 30 sb_exec test -e /run/heal-test/w-twice.failed || fail "twice: worker never failed"
        sb_exec systemctl start --no-block "$(reviver_unit w-twice)"
        wait_done w-twice verified 1
        # A third report after the revival finds the unit up: dismissed.
        run_reviver w-twice
        wait_done w-twice dismissed 1
        expect_eq "twice: acting records" "$(events w-twice acting)" 1
        expect_eq "twice: starts" "$(starts w-twice)" 2
}

# Shadow mode: no start, a would-act record; the same incident reported again is idempotent.
scenario_shadow() {
        reset_state
        policy <<'EOF'
{"version": 1, "classes": {"worker-dead": {"mode": "shadow", "settle_s": 2}}}
EOF
        make_worker w-shadow once
        reload
        fail_worker w-shadow
        wait_done w-shadow would-act 1
        run_reviver w-shadow
        wait_done w-shadow skipped 1
        expect_eq "shadow: starts (no revival)" "$(starts w-shadow)" 1
        expect_eq "shadow: would-act records" "$(events w-shadow would-act)" 1
        expect_eq "shadow: acting records" "$(events w-shadow acting)" 0
        expect_eq "shadow: second report skipped as" "$(field w-shadow skipped HEAL_REASON | tail -n1)" idempotent
        expect_eq "shadow: unit still failed" "$(sb_exec systemctl is-failed w-shadow.service || true)" failed
}

# Crash loop: exactly breaker.failures revivals, breaker-opened + escalated, then nothing; after the
# cooldown exactly one half-open trial.
scenario_crash_loop() {
        local cooldown=6 esc want
        reset_state
        policy <<EOF
{"version": 1, "classes": {"worker-dead": {"mode": "live", "settle_s": 2,
  "breaker": {"failures": 3, "cooldown_s": $cooldown},
  "target_budget": {"actions": 100, "per_s": 600}, "budget": {"actions": 100, "per_s": 600}}},
 "global": {"budget": {"actions": 100, "per_s": 600}}}
EOF
        make_worker w-loop always
        reload
        fail_worker w-loop
        wait_done w-loop breaker-opened 1
        sleep 2 # anything that would still happen, would happen now
        expect_eq "loop: starts (1 + breaker.failures)" "$(starts w-loop)" 4
        expect_eq "loop: verify-failed records" "$(events w-loop verify-failed)" 3
        expect_eq "loop: breaker-opened records" "$(events w-loop breaker-opened)" 1
        [ "$(events w-loop escalated)" -ge 1 ] || fail "loop: no escalation when the breaker opened"
        # The escalation carries what a human needs: the unit's last journal lines, its exit status, and
        # that heal saw it fail again after reviving it.
        esc=$(sb_journal -o json HEAL_TARGET=w-loop.service HEAL_EVENT=escalated | tail -n1)
        for want in 'dying again' exec_main_status n_restarts crash_loop 'journalctl HEAL_INCIDENT='; do
                case "$esc" in
                *"$want"*) pass "loop: escalation carries $want" ;;
                *) fail "loop: escalation lacks $want" ;;
                esac
        done
        expect_eq "loop: the failure after that skipped as" "$(field w-loop skipped HEAL_REASON | tail -n1)" breaker-open

        sleep "$cooldown"
        run_reviver w-loop
        wait_done w-loop verify-failed 4
        sleep 2
        expect_eq "loop: starts after the half-open trial" "$(starts w-loop)" 5
        expect_eq "loop: skipped breaker-open after the trial" \
                "$(field w-loop skipped HEAL_REASON | grep -c breaker-open)" 2
}

# A unit that starts and dies within the settle time: verify-failed, counted by the breaker (with
# failures = 1 the breaker opens on it).
scenario_verify_failed() {
        reset_state
        policy <<'EOF'
{"version": 1, "classes": {"worker-dead": {"mode": "live", "settle_s": 3, "breaker": {"failures": 1, "cooldown_s": 600}}}}
EOF
        make_worker w-flap always
        reload
        fail_worker w-flap
        wait_done w-flap breaker-opened 1
        expect_eq "verify: acting records" "$(events w-flap acting)" 1
        expect_eq "verify: verify-failed records" "$(events w-flap verify-failed)" 1
        expect_eq "verify: breaker-opened records" "$(events w-flap breaker-opened)" 1
        expect_eq "verify: starts" "$(starts w-flap)" 2
}

# 20 enrolled units failing at once with a global budget of 5: exactly 5 revivals, budget-exhausted +
# escalated, the rest skipped with the reason.
scenario_budget() {
        local i name total=0 skipped=0 exhausted=0
        reset_state
        policy <<'EOF'
{"version": 1, "classes": {"worker-dead": {"mode": "live", "settle_s": 1,
  "target_budget": {"actions": 100, "per_s": 600}, "budget": {"actions": 100, "per_s": 600}}},
 "global": {"budget": {"actions": 5, "per_s": 3600}}}
EOF
        for i in $(seq -w 1 20); do make_worker "w-b$i" once; done
        reload
        for i in $(seq -w 1 20); do fail_worker "w-b$i"; done
        for i in $(seq -w 1 20); do
                name=w-b$i
                sb_wait_for 90 finished "$name" || fail "budget: $name never finished"
                sb_wait_for 60 reviver_idle "$name" || fail "budget: reviver of $name still busy"
        done
        for i in $(seq -w 1 20); do
                name=w-b$i
                total=$((total + $(starts "$name") - 1))
                skipped=$((skipped + $(field "$name" skipped HEAL_REASON | grep -c '^budget-global$' || true)))
                exhausted=$((exhausted + $(events "$name" budget-exhausted)))
        done
        expect_eq "budget: revivals" "$total" 5
        expect_eq "budget: skipped with reason budget-global" "$skipped" 15
        [ "$exhausted" -ge 1 ] || fail "budget: no budget-exhausted record"
        [ "$(sb_journal -o cat --output-fields=HEAL_EVENT HEAL_CLASS=worker-dead HEAL_EVENT=escalated | grep -c .)" -ge 1 ] ||
                fail "budget: no escalation"
}

# A revival ended one way or the other.
finished() {
        alive
        sb_journal -o cat --output-fields=HEAL_EVENT "HEAL_TARGET=$1.service" | grep -qE '^(verified|skipped)$'
}

# Kill switch: heal.target masked -> no action; unmasked -> the same failure is revived.
scenario_kill_switch() {
        reset_state
        policy <<'EOF'
{"version": 1, "classes": {"worker-dead": {"mode": "live", "settle_s": 1}}}
EOF
        make_worker w-kill once
        reload
        sb_exec systemctl mask heal.target
        fail_worker w-kill
        wait_done w-kill skipped 1
        expect_eq "kill: skipped as" "$(field w-kill skipped HEAL_REASON | tail -n1)" kill-switch
        expect_eq "kill: starts while on" "$(starts w-kill)" 1
        sb_exec systemctl unmask heal.target
        run_reviver w-kill
        wait_done w-kill verified 1
        expect_eq "kill: starts after off" "$(starts w-kill)" 2
}

# An invalid policy: no action, an escalation naming the error.
scenario_invalid_policy() {
        reset_state
        policy <<'EOF'
{"version": 1, "classes": {"worker-dead": {"mode": "live", "settle_s": "soon"}}}
EOF
        make_worker w-badpol once
        reload
        fail_worker w-badpol
        wait_done w-badpol escalated 1
        expect_eq "invalid: starts" "$(starts w-badpol)" 1
        expect_eq "invalid: acting records" "$(events w-badpol acting)" 0
        sb_journal -o json HEAL_TARGET=w-badpol.service HEAL_EVENT=escalated | grep -q 'settle_s' ||
                fail "invalid: the escalation does not name the bad key"
        expect_eq "invalid: skipped as" "$(field w-badpol skipped HEAL_REASON | tail -n1)" policy-invalid
}

# Units that did not enrol, or that the policy excludes, are never touched.
scenario_not_ours() {
        reset_state
        policy <<'EOF'
{"version": 1, "classes": {"worker-dead": {"mode": "live", "settle_s": 1, "exclude": ["w-excluded.service"]}}}
EOF
        make_worker w-plain once plain
        make_worker w-excluded once
        reload
        sb_exec systemctl start w-plain.service || true
        sb_wait_for 10 worker_failed w-plain || fail "not ours: w-plain never failed"
        run_reviver w-plain
        wait_done w-plain skipped 1
        expect_eq "not ours: unenrolled skipped as" "$(field w-plain skipped HEAL_REASON | tail -n1)" not-enrolled
        expect_eq "not ours: unenrolled starts" "$(starts w-plain)" 1
        fail_worker w-excluded
        wait_done w-excluded skipped 1
        expect_eq "not ours: excluded skipped as" "$(field w-excluded skipped HEAL_REASON | tail -n1)" not-targeted
        expect_eq "not ours: excluded starts" "$(starts w-excluded)" 1
}

# Peak RSS of one live revival stays small (<= 8 MiB). Measured with GNU time around the installed
# binary; meaningless under a sanitizer build, so only for a plain build.
scenario_rss() {
        local kib exe
        if [ -n "$asan" ]; then
                echo "skip: rss (a sanitizer build's memory says nothing about the release)"
                return 0
        fi
        if ! sb_exec test -x /usr/bin/time; then
                echo "skip: rss (/usr/bin/time not installed, Debian package time)"
                return 0
        fi
        exe=$(sb_exec systemctl show -P ExecStart "$(reviver_unit w-rss)" | sed -n 's/.*path=\([^ ;]*\).*/\1/p')
        reset_state
        policy <<'EOF'
{"version": 1, "classes": {"worker-dead": {"mode": "live", "settle_s": 1}}}
EOF
        make_worker w-rss once
        # %% escapes systemd's own specifier.
        sb_write "/etc/systemd/system/$(reviver_unit w-rss).d/50-rss.conf" <<EOF
[Service]
ExecStart=
ExecStart=/usr/bin/time -f "heal-rss-kib %%M" $exe %i
EOF
        reload
        fail_worker w-rss
        wait_done w-rss verified 1
        kib=$(sb_journal -o cat -u "$(reviver_unit w-rss)" | sed -n 's/^heal-rss-kib \([0-9]*\)$/\1/p' | tail -n1)
        if [ -n "$kib" ] && [ "$kib" -le 8192 ]; then
                pass "rss: peak $kib KiB <= 8192"
        else
                fail "rss: peak ${kib:-unknown} KiB, want <= 8192"
        fi
}

# ---- main ------------------------------------------------------------------------------------------

all=(basic twice shadow crash_loop verify_failed budget kill_switch invalid_policy not_ours rss)
[ "${#SCENARIOS[@]}" -gt 0 ] && all=("${SCENARIOS[@]}")

sandbox_up "$build_dir" || exit 1
install_worker
# The drop-in `healctl enroll` writes, as installed under this build's prefix.
dropin=$(sb_exec sh -c 'ls /usr/share/heal/reviver-dropin.conf /usr/local/share/heal/reviver-dropin.conf 2>/dev/null; true' | head -n1)
[ -n "$dropin" ] || {
        echo "FAIL: reviver-dropin.conf is not installed" >&2
        exit 1
}
# A sanitizer build's leak checker needs ptrace, which the units' SystemCallFilter= refuses; leaks are the
# unit tests' job, the units' hardening is ours.
asan=
if grep -q __asan_init "$build_dir/helpers/worker-reviver/worker-reviver" 2>/dev/null; then
        asan=1
        for u in heal-worker-reviver@.service heal-escalate@.service; do
                sb_write "/etc/systemd/system/$u.d/50-asan.conf" <<'EOF'
[Service]
Environment=ASAN_OPTIONS=detect_leaks=0
EOF
        done
fi

for s in "${all[@]}"; do
        echo "--- $s"
        "scenario_$s"
done

# Whatever happened, no heal unit itself may have failed (that would have paged via heal-escalate@).
expect_eq "heal units in failed state" "$(sb_exec systemctl list-units --failed --no-legend --plain 'heal-*' | grep -c . || true)" 0

scenarios_end reviver 'heal-*'
