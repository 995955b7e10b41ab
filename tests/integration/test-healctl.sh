#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# healctl end to end, in a throwaway systemd (sandbox.sh): the approve tier records a plan and starts
# nothing until `healctl approve`, which then revives through the guard; a cancelled delayed action never
# runs; enroll/unenroll change OnFailure=; the kill switch masks and unmasks; breaker reset closes; and
# audit, shadow-report and status read back what really happened.
# Usage: test-healctl.sh BUILD_DIR [SCENARIO...]
# shellcheck disable=SC2016 # scripts for sb_sh are single-quoted on purpose
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=sandbox.sh
. "$here/sandbox.sh"
# shellcheck source=check.sh
. "$here/check.sh"
scenario_args "$@"

# healctl inside, as the operator "alice" (healctl records $SUDO_USER as the owner of decisions).
# Sets $out and $rc; never fails the script by itself.
hc() {
        set +e
        out=$(sb_exec env SUDO_USER=alice ASAN_OPTIONS=detect_leaks=1 healctl "$@" 2>&1)
        rc=$?
        set -e
}
# hc_expect RC ARGS...: healctl must exit RC.
hc_expect() {
        local want=$1
        shift
        hc "$@"
        if [ "$rc" != "$want" ]; then
                fail "healctl $* exited $rc, want $want; output:"
                printf '%s\n' "$out" | sed 's/^/    /' >&2
        fi
}
jq_py() { printf '%s' "$out" | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# ---- fixtures inside the sandbox (the same kind of worker as test-reviver.sh) -----------------------

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
                exit 3
        fi ;;
always)
        sleep 0.3
        exit 4 ;;
esac
exec sleep infinity
EOF
}

# make_worker NAME MODE: a unit running heal-test-worker, NOT enrolled (healctl enroll does that).
make_worker() {
        sb_write "/etc/systemd/system/$1.service" <<EOF
[Unit]
Description=heal test worker $1
[Service]
ExecStart=/usr/local/bin/heal-test-worker $1
EOF
        sb_sh 'mkdir -p /run/heal-test && echo "$2" >"/run/heal-test/$1.mode"' "$1" "$2"
}

policy() { sb_write /etc/heal/policy.d/50-test.json; }
reset_state() { sb_sh 'rm -rf /var/lib/heal/* /run/heal/pending 2>/dev/null; true'; }
starts() { sb_sh 'cat "/run/heal-test/$1.starts" 2>/dev/null | wc -l' "$1"; }
events() {
        local name=$1 ev=$2
        shift 2
        sb_journal -o cat --output-fields=HEAL_EVENT "HEAL_TARGET=$name.service" "HEAL_EVENT=$ev" "$@" | grep -c . || true
}
has_events() { [ "$(events "$1" "$2")" -ge "$3" ]; }
wait_events() { # NAME EVENT N
        sb_wait_for 90 has_events "$1" "$2" "$3" || fail "$1: waited 90 s for $3 '$2' records (have $(events "$1" "$2"))"
}
reviver_unit() { echo "heal-worker-reviver@$1.service.service"; }
reviver_idle() {
        local st job
        st=$(sb_exec systemctl show -P ActiveState "$(reviver_unit "$1")")
        job=$(sb_exec systemctl show -P Job "$(reviver_unit "$1")")
        case "$st" in inactive | failed) [ -z "$job" ] ;; *) return 1 ;; esac
}
fail_worker() { sb_exec systemctl start --no-block "$1.service"; }

# The id of the one pending record of a target.
pending_id() {
        hc pending --json
        jq_py "[p['id'] for p in d['pending'] if p['target'] == '$1.service'][0]"
}

# ---- scenarios -------------------------------------------------------------------------------------

# enroll through healctl: OnFailure= names the reviver; refusals; unenroll takes it away.
scenario_enroll() {
        make_worker w-enroll ok
        hc_expect 0 enroll w-enroll
        expect_eq "enroll: OnFailure" "$(sb_exec systemctl show -P OnFailure w-enroll.service)" \
                "$(reviver_unit w-enroll)"
        hc_expect 0 enroll w-enroll
        case "$out" in *"already enrolled"*) pass "enroll: twice is a no-op" ;; *) fail "enroll twice: $out" ;; esac
        hc_expect 0 enroll --list
        case "$out" in *w-enroll.service*) pass "enroll --list" ;; *) fail "enroll --list: $out" ;; esac
        hc_expect 1 enroll dbus.service
        hc_expect 1 enroll systemd-journald.service
        expect_eq "enroll: refused unit untouched" "$(sb_exec systemctl show -P OnFailure systemd-journald.service)" ""
        hc_expect 0 unenroll w-enroll
        expect_eq "unenroll: OnFailure" "$(sb_exec systemctl show -P OnFailure w-enroll.service)" ""
        hc_expect 3 unenroll w-enroll
        hc_expect 0 enroll --runtime w-enroll
        sb_exec test -e /run/systemd/system/w-enroll.service.d/50-heal-reviver.conf || fail "enroll --runtime: no drop-in in /run"
        expect_eq "enroll --runtime: OnFailure" "$(sb_exec systemctl show -P OnFailure w-enroll.service)" \
                "$(reviver_unit w-enroll)"
        hc_expect 0 unenroll --runtime w-enroll
}

# Approve tier: the failure records a plan and starts nothing; healctl approve starts the reviver, which
# acts through the guard and verifies.
scenario_approve() {
        local id
        reset_state
        policy <<'EOF'
{"classes": {"worker-dead": {"mode": "live", "tier": "approve", "settle_s": 2}}}
EOF
        make_worker w-appr once
        hc_expect 0 enroll w-appr
        fail_worker w-appr
        wait_events w-appr pending 1
        sb_wait_for 60 reviver_idle w-appr || fail "approve: reviver still busy"
        sleep 2
        expect_eq "approve: starts before approval" "$(starts w-appr)" 1
        expect_eq "approve: acting before approval" "$(events w-appr acting)" 0
        id=$(pending_id w-appr)
        [ -n "$id" ] || fail "approve: no pending record listed"
        hc_expect 0 pending
        case "$out" in *"$id"*waiting*) pass "approve: pending lists $id waiting" ;; *) fail "pending: $out" ;; esac
        hc_expect 0 status --json
        expect_eq "approve: status lists the pending id" \
                "$(jq_py "[t['pending'][0] for c in d['classes'] for t in c['targets'] if t['target'] == 'w-appr.service'][0]")" "$id"

        hc_expect 0 approve "$id"
        wait_events w-appr verified 1
        sb_wait_for 60 reviver_idle w-appr || fail "approve: reviver still busy after approval"
        expect_eq "approve: starts after approval" "$(starts w-appr)" 2
        expect_eq "approve: unit active" "$(sb_exec systemctl is-active w-appr.service || true)" active
        [ "$(events w-appr approved HEAL_OWNER=alice)" -ge 1 ] || fail "approve: no approved record owned by alice"
        hc_expect 3 approve "$id"
        hc_expect 0 audit --target w-appr.service --json
        expect_eq "approve: audit shows the story" \
                "$(jq_py "','.join(e['event'] for i in d['incidents'] for e in i['events'] if e['event'] in ('pending','approved','acting','verified'))" |
                        tr ',' '\n' | awk '!seen[$0]++' | paste -sd,)" "pending,approved,acting,verified"
        hc_expect 0 audit --target w-appr.service
        case "$out" in *"incident "*pending*approved*acting*verified*) pass "approve: audit text grouped" ;;
        *) fail "approve: audit text: $out" ;; esac
        hc_expect 0 status
        case "$out" in *w-appr.service*verified*) pass "approve: status shows the outcome" ;; *) fail "status: $out" ;; esac
}

# Delayed tier: cancelled inside the window, the transient timer's re-run finds it cancelled; nothing starts.
scenario_cancel() {
        local id
        reset_state
        policy <<'EOF'
{"classes": {"worker-dead": {"mode": "live", "tier": "delayed", "delay_s": 15, "settle_s": 1}}}
EOF
        make_worker w-cancel once
        hc_expect 0 enroll w-cancel
        fail_worker w-cancel
        wait_events w-cancel pending 1
        id=$(pending_id w-cancel)
        [ -n "$id" ] || fail "cancel: no pending record"
        hc_expect 0 cancel "$id"
        hc_expect 3 cancel "$id"
        # The window (long enough for a loaded test machine to cancel in) ends, the scheduled re-run
        # comes and goes.
        wait_events w-cancel skipped 1
        sb_wait_for 60 reviver_idle w-cancel || fail "cancel: reviver still busy"
        expect_eq "cancel: starts" "$(starts w-cancel)" 1
        expect_eq "cancel: acting records" "$(events w-cancel acting)" 0
        [ "$(events w-cancel cancelled HEAL_OWNER=alice)" -ge 1 ] || fail "cancel: no cancelled record owned by alice"
}

# Kill switch on: every heal unit masked, a failure is not revived; status --quiet says so by exit code;
# off again resumes.
scenario_kill_switch() {
        reset_state
        policy <<'EOF'
{"classes": {"worker-dead": {"mode": "live", "settle_s": 1}}}
EOF
        make_worker w-ks once
        hc_expect 0 enroll w-ks
        hc_expect 0 kill-switch status --quiet
        hc_expect 0 kill-switch on
        expect_eq "kill-switch on: heal.target" "$(sb_exec systemctl is-enabled heal.target 2>/dev/null || true)" masked-runtime
        hc_expect 10 kill-switch status --quiet
        hc_expect 0 kill-switch status --json
        expect_eq "kill-switch status --json" "$(jq_py "d['engaged']")" True
        case "$(jq_py "' '.join(d['masked'])")" in
        *heal-worker-reviver@.service*) pass "kill-switch status lists the reviver template" ;;
        *) fail "kill-switch status: $out" ;;
        esac
        # Every heal unit is masked: OnFailure= cannot even start the reviver.
        fail_worker w-ks
        sb_wait_for 30 sb_exec systemctl is-failed -q w-ks.service || fail "kill-switch: worker never failed"
        sleep 3
        expect_eq "kill-switch: acting records while on" "$(events w-ks acting)" 0
        expect_eq "kill-switch: starts while on" "$(starts w-ks)" 1
        hc_expect 0 kill-switch off
        hc_expect 0 kill-switch status --quiet
        case "$(sb_exec systemctl is-enabled heal.target 2>/dev/null || true)" in
        masked*) fail "kill-switch off: heal.target still masked" ;;
        *) pass "kill-switch off: heal.target unmasked" ;;
        esac
        sb_exec systemctl start --no-block "$(reviver_unit w-ks)"
        wait_events w-ks verified 1
        hc_expect 0 kill-switch on --persistent
        sb_exec test -L /etc/systemd/system/heal.target || fail "kill-switch --persistent: no mask in /etc"
        hc_expect 0 kill-switch off
        sb_exec test ! -e /etc/systemd/system/heal.target || fail "kill-switch off: /etc mask left"
}

# Breaker: opened by a failing revival, shown by status, closed by breaker reset (audited with the owner).
scenario_breaker() {
        reset_state
        policy <<'EOF'
{"classes": {"worker-dead": {"mode": "live", "settle_s": 2, "breaker": {"failures": 1, "cooldown_s": 600}}}}
EOF
        make_worker w-br always
        hc_expect 0 enroll w-br
        fail_worker w-br
        wait_events w-br breaker-opened 1
        sb_wait_for 60 reviver_idle w-br || fail "breaker: reviver still busy"
        hc_expect 0 status --json
        expect_eq "breaker: status" \
                "$(jq_py "[t['breaker']['state'] for c in d['classes'] for t in c['targets'] if t['target'] == 'w-br.service'][0]")" open
        hc_expect 0 breaker reset worker-dead w-br.service
        [ "$(events w-br breaker-closed HEAL_OWNER=alice)" = 1 ] || fail "breaker: no breaker-closed record owned by alice"
        hc_expect 0 status --json
        expect_eq "breaker: status after reset" \
                "$(jq_py "[t['breaker']['state'] for c in d['classes'] for t in c['targets'] if t['target'] == 'w-br.service'][0]")" closed
        hc_expect 3 breaker reset worker-dead never-failed.service
        sb_exec systemctl stop w-br.service || true
}

# Shadow mode: would-act records, counted by shadow-report; audit filters on the event.
scenario_shadow() {
        reset_state
        policy <<'EOF'
{"classes": {"worker-dead": {"mode": "shadow", "settle_s": 1}}}
EOF
        make_worker w-sh once
        hc_expect 0 enroll w-sh
        fail_worker w-sh
        wait_events w-sh would-act 1
        hc_expect 0 shadow-report --json
        expect_eq "shadow-report: count" \
                "$(jq_py "[t['total'] for t in d['targets'] if t['target'] == 'w-sh.service'][0]")" 1
        hc_expect 0 shadow-report
        case "$out" in *w-sh.service*ok*) pass "shadow-report text" ;; *) fail "shadow-report: $out" ;; esac
        hc_expect 0 audit --event would-act --since -1h --json
        expect_eq "audit --event would-act" \
                "$(jq_py "len([e for i in d['incidents'] for e in i['events'] if e['target'] == 'w-sh.service'])")" 1
        hc_expect 3 audit --event would-act --target no-such.service
        hc_expect 0 status --json
        expect_eq "shadow: status last action" \
                "$(jq_py "[t['last_action']['event'] for c in d['classes'] for t in c['targets'] if t['target'] == 'w-sh.service'][0]")" would-act
}

# A broken policy: policy check exits 4 naming the file; enroll refuses with 4.
scenario_policy() {
        policy <<'EOF'
{"classes": {"worker-dead": {"settle_s": "soon"}}}
EOF
        hc_expect 4 policy check
        case "$out" in *50-test.json*settle_s*) pass "policy check names file and key" ;; *) fail "policy check: $out" ;; esac
        hc_expect 4 enroll w-nope
        hc_expect 4 status --json
        policy <<'EOF'
{"classes": {"worker-dead": {"mode": "shadow"}}}
EOF
        hc_expect 0 policy check
}

# ---- main ------------------------------------------------------------------------------------------

all=(enroll approve cancel kill_switch breaker shadow policy)
[ "${#SCENARIOS[@]}" -gt 0 ] && all=("${SCENARIOS[@]}")

sandbox_up "$build_dir" || exit 1
install_worker
# A sanitizer build's leak checker needs ptrace, which the units' SystemCallFilter= refuses.
if grep -qa -e AddressSanitizer -e libasan "$SB_ROOT/usr/libexec/heal/worker-reviver" 2>/dev/null; then
        for u in heal-worker-reviver@.service heal-escalate@.service; do
                sb_write "/etc/systemd/system/$u.d/50-asan.conf" <<'EOF'
[Service]
Environment=ASAN_OPTIONS=detect_leaks=0
EOF
        done
        sb_exec systemctl daemon-reload
fi

for s in "${all[@]}"; do
        echo "--- $s"
        "scenario_$s"
done

scenarios_end healctl 'heal-*'
