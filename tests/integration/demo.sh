#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# ./dev demo: heal reviving a worker in a throwaway systemd, told step by step — shadow mode, a live
# revival, a crash loop that opens the breaker and pages a human, and the kill switch. Every claim the
# narration makes is checked; the exit status is 1 if any check failed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=sandbox.sh
. "$here/sandbox.sh"
build_dir=${1:?usage: demo.sh BUILD_DIR}

SB_WHAT=demo
W=demo-worker.service
FLAG=/var/lib/demo-worker/queue-unreachable
failures=0

if [ -t 1 ]; then
        B=$'\033[1m' D=$'\033[2m' G=$'\033[32m' R=$'\033[31m' N=$'\033[0m'
else
        B='' D='' G='' R='' N=''
fi

chapter() { printf '\n%s━━━ %s ━━━%s\n' "$B" "$*" "$N"; }
say() { printf '%s\n' "$*" | fold -s -w 96 | sed 's/ *$//'; }
ok() { printf '  %s✓ %s%s\n' "$G" "$*" "$N"; }
bad() {
        printf '  %s✗ %s%s\n' "$R" "$*" "$N"
        failures=$((failures + 1))
}
check() {
        local what=$1
        shift
        if "$@"; then ok "$what"; else bad "$what"; fi
}

# Show a command as typed in the sandbox, then its output, indented.
run() {
        printf '  %s[sandbox]#%s %s\n' "$D" "$N" "$*"
        sb_exec sh -c "$*" 2>&1 | sed 's/^/      /' || true
}

# Make sure everything before this point is in an earlier second, so `--since` shows this step alone.
mark() {
        sleep 1
        T=$(sb_exec date '+%F %T')
}

events() { sb_journal HEAL_TARGET=$W "HEAL_EVENT=$1" --since "$T" -o cat; }
has_event() { [ -n "$(events "$1")" ]; }
count_events() { events "$1" | grep -c . || true; }
worker_is() { [ "$(sb_exec systemctl is-active $W)" = "$1" ]; }
status_worker_dead() {
        # The header and the worker-dead class of `healctl status`; the other classes are idle here.
        sb_exec healctl status | awk '/^$/ { blank++; next } blank == 0 || /^worker-dead:/ { show = 1 } /^[a-z-]+:/ && !/^worker-dead:/ && blank > 0 { show = 0 } show' |
                sed 's/^/      /'
}
paged() { has_event escalated && [ -n "$(sb_journal -t demo-pager --since "$T" -o cat)" ]; }
crash() {
        run "systemctl kill -s SIGKILL $W"
}

chapter "Setting the stage"
say "Booting a throwaway systemd: systemd-nspawn on an overlay of / whose writable layer is a tmpfs, with heal installed from $build_dir. Nothing here touches the host."
sandbox_up "$build_dir"
say "Up in ${SB_UP_MS} ms (systemd booted in ${SB_BOOT_MS} ms)."

sb_write /etc/systemd/system/$W <<EOF
[Unit]
Description=demo worker (consumes a job queue)

[Service]
# Works until its queue is unreachable (the flag file), then exits 1.
ExecStart=/bin/sh -c 'echo "demo-worker: consuming"; while :; do if [ -e $FLAG ]; then echo "demo-worker: queue unreachable, exiting"; sleep 0.3; exit 1; fi; sleep 0.1; done'
StateDirectory=demo-worker
EOF
# Stands in for Alertmanager or a pager service: heal runs the policy's escalate command with the
# escalation as JSON on stdin; this one writes the page to the journal.
sb_write /usr/local/bin/demo-pager 0755 <<'EOF'
#!/bin/sh
/usr/bin/python3 -c '
import json, sys
e = json.load(sys.stdin)
print("PAGE to on-call: %s on %s. Look: %s" % (e.get("why"), e.get("hostname"), e.get("journalctl")))
' | logger -t demo-pager -p user.crit
EOF
sb_exec systemctl daemon-reload
run "systemctl start $W && systemctl is-active $W"
say "A worker like any other. Enrolling it hands its failures to heal, through an OnFailure= drop-in:"
run "healctl enroll $W"
run "systemctl show -p OnFailure $W"
say "The shipped policy runs every class in shadow mode: heal decides, records, and does nothing."
status_worker_dead

chapter "(a) Shadow mode: the worker crashes, heal only says what it would do"
mark
crash
sb_wait_for 15 has_event would-act || true
run "healctl audit --target $W --since '$T'"
say "Why nothing happened, straight from the journal:"
run "journalctl -q -o cat HEAL_TARGET=$W HEAL_EVENT=would-act --since '$T'"
check "heal recorded would-act (intent: restart) in shadow mode" has_event would-act
check "and did not act: no 'acting' record" [ "$(count_events acting)" -eq 0 ]
check "the worker is still down" worker_is failed
say "The operator starts it by hand."
run "systemctl start $W"

chapter "(b) Live mode: the worker crashes and is revived within a second"
say "One drop-in flips the class to live (same-named files in /etc replace /usr, other files merge key by key). It also shortens the settle time to 2 s, gives the target room for the crash loop to come, and names the pager for escalations."
sb_write /etc/heal/policy.d/50-demo.json <<'EOF'
{
  "global": { "escalate": { "command": "/usr/local/bin/demo-pager" } },
  "classes": {
    "worker-dead": {
      "mode": "live",
      "settle_s": 2,
      "target_budget": { "actions": 6, "per_s": 600 }
    }
  }
}
EOF
run "cat /etc/heal/policy.d/50-demo.json"
run "healctl policy check >/dev/null && echo 'policy valid'"
mark
crash
sb_wait_for 20 has_event verified || true
enter=$(sb_exec systemctl show -P ActiveEnterTimestampMonotonic $W)
left=$(sb_exec systemctl show -P InactiveEnterTimestampMonotonic $W)
revive_ms=$(((enter - left) / 1000))
run "healctl audit --target $W --since '$T'"
say "The verified record, field by field (HEAL_FACTS, the full picture, left out here):"
run "journalctl -q -o verbose HEAL_TARGET=$W HEAL_EVENT=verified --since '$T' | grep -E '^ +(MESSAGE|HEAL_[A-Z]+)=' | grep -v HEAL_FACTS"
say "Down at the crash, active again ${revive_ms} ms later; verified after staying up for the settle time."
check "heal acted once (acting) and verified the revival" [ "$(count_events acting)" -eq 1 ]
check "verified: the worker stayed active" has_event verified
check "revived in under a second (${revive_ms} ms)" [ "$revive_ms" -ge 0 -a "$revive_ms" -lt 1000 ]
check "the worker is running" worker_is active

chapter "(c) Crash loop: revived up to the breaker, then a human is paged"
say "The worker's queue becomes unreachable: now it exits 0.3 s after every start. Restarting cannot fix that."
mark
run "touch $FLAG"
sb_wait_for 60 has_event escalated || true
sb_wait_for 10 has_event skipped || true
run "healctl audit --target $W --since '$T'"
say "The escalation, at priority crit, with the command that shows the whole incident:"
run "journalctl -q -o cat -p crit HEAL_TARGET=$W HEAL_EVENT=escalated --since '$T'"
say "What the pager received:"
run "journalctl -q -o cat -t demo-pager --since '$T'"
status_worker_dead
n_acting=$(count_events acting)
n_failed=$(count_events verify-failed)
check "heal revived it $n_acting times and each revival failed verification ($n_failed)" \
        [ "$n_acting" -ge 1 -a "$n_acting" -eq "$n_failed" ]
check "the circuit breaker opened" has_event breaker-opened
check "a human was paged (escalated, and the pager ran)" paged
check "after that heal stops: the next failure is skipped (breaker-open)" \
        [ -n "$(sb_journal HEAL_TARGET=$W HEAL_EVENT=skipped HEAL_REASON=breaker-open --since "$T" -o cat)" ]
check "the worker is left down for the human" worker_is failed

chapter "(d) Kill switch: heal stands down entirely"
say "The human fixes the queue, closes the breaker and starts the worker. Then, say during an incident review, they turn heal off:"
run "rm -f $FLAG"
run "healctl breaker reset worker-dead $W"
run "systemctl reset-failed $W && systemctl start $W"
run "healctl kill-switch on"
mark
crash
sb_wait_for 15 sb_sh "journalctl -q -o cat -u $W --since '$T' | grep -q 'OnFailure= job'" || true
run "healctl audit --target $W --since '$T'"
say "systemd still triggers OnFailure=, but the reviver is masked:"
run "journalctl -q -o cat -u $W --since '$T' | grep 'OnFailure='"
check "no heal record at all for this crash" [ -z "$(sb_journal HEAL_TARGET=$W --since "$T" -o cat)" ]
check "the worker stays down" worker_is failed
say "Off again, and heal is back: the next crash is revived."
run "healctl kill-switch off"
run "systemctl start $W"
mark
crash
sb_wait_for 20 has_event verified || true
run "healctl audit --target $W --since '$T'"
check "after kill-switch off, a crash is revived and verified" has_event verified

chapter "Afterwards"
say "\"Why did heal not act?\" has an answer in the journal too:"
run "journalctl -q -o cat HEAL_TARGET=$W HEAL_EVENT=skipped"
status_worker_dead
sandbox_down
if leftovers=$(sandbox_leftovers); then
        ok "sandbox torn down: no mounts, processes or cgroups left on the host"
else
        bad "the sandbox left things behind: $leftovers"
fi

if [ "$failures" -gt 0 ]; then
        printf '\n%s%d check(s) failed.%s\n' "$R" "$failures" "$N"
        exit 1
fi
printf '\n%sDemo complete: every check passed.%s\n' "$B" "$N"
