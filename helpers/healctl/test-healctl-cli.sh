#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The built healctl against fixture dirs, no systemd needed: policy check,
# pending/approve/cancel/expire, breaker reset, status --json, enroll into a
# fixture root, usage errors, and audit/shadow-report on a real journal file
# (written with systemd-journal-remote when it is installed).
# Usage: test-healctl-cli.sh HEALCTL FIXTURE_HELPER
set -uo pipefail

healctl=$1
fixture=$2
src=${SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

export HEAL_STATE_DIR=$tmp/state
export HEAL_POLICY_DIRS=$src/policy
export HEAL_SYSTEMD_ROOT=$tmp/root
export HEAL_BUS_ADDRESS=unix:path=$tmp/no-such-bus
export HEAL_JOURNAL_DIR=$tmp/no-journal
export SUDO_USER=tester
export TZ=UTC

failures=0
fail() {
        echo "FAIL: $*" >&2
        failures=$((failures + 1))
}

# run EXPECTED_RC CMD...: runs healctl, keeps stdout/stderr in $out/$err.
run() {
        local want=$1
        shift
        "$healctl" "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        out=$(cat "$tmp/out")
        err=$(cat "$tmp/err")
        if [ "$rc" -ne "$want" ]; then
                fail "healctl $* exited $rc, expected $want"
                sed 's/^/  stdout: /' "$tmp/out" >&2
                sed 's/^/  stderr: /' "$tmp/err" >&2
        fi
}

contains() { # HAYSTACK NEEDLE WHAT
        case "$1" in
        *"$2"*) ;;
        *) fail "$3: '$2' not in: $1" ;;
        esac
}

json_ok() { # WHAT: $out parses as JSON
        printf '%s' "$out" | python3 -m json.tool >/dev/null || fail "$1: output is not JSON"
}

jq_py() { # PYTHON-EXPRESSION over d = the JSON in $out; prints its value
        printf '%s' "$out" | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}

# ---- usage and help ---------------------------------------------------------
run 0 --help
contains "$out" "Exit status" "--help documents exit codes"
contains "$out" "4   the policy is invalid" "--help documents exit 4"
run 2
run 2 no-such-verb
run 2 approve
run 2 audit --since garbage
contains "$err" "--since" "bad --since is named"
run 2 audit --event no-such-event
run 2 breaker reset only-class
for v in status audit enroll unenroll pending approve cancel breaker kill-switch policy shadow-report; do
        run 0 "$v" --help
        contains "$out" "Usage: healctl" "$v --help"
done

# ---- policy check -----------------------------------------------------------
run 0 policy check
contains "$out" "digest" "policy check prints the digest"
run 0 policy check --json
json_ok "policy check --json"
[ "$(jq_py 'len(d["digest"])')" = 16 ] || fail "policy check --json: digest"
[ "$(jq_py 'd["policy"]["classes"]["worker-dead"]["mode"]')" = shadow ] || fail "policy check --json: merged policy"

mkdir -p "$tmp/pol"
echo '{"classes": {"worker-dead": {"mode": "live"}}}' >"$tmp/pol/50-live.json"
run 0 policy check --json "$src/policy/00-heal.json" "$tmp/pol/50-live.json"
[ "$(jq_py 'd["policy"]["classes"]["worker-dead"]["mode"]')" = live ] || fail "policy check FILE...: later file overrides"

echo '{"classes": {"worker-dead": {"mode": "sometimes"}}}' >"$tmp/pol/60-bad.json"
run 4 policy check "$src/policy/00-heal.json" "$tmp/pol/60-bad.json"
contains "$err" "60-bad.json" "bad value: file named"
contains "$err" "classes.worker-dead.mode" "bad value: key named"
[ -z "$out" ] || fail "invalid policy prints nothing on stdout"

echo '{"classes": {"worker-dead": {"bogus": 1}}}' >"$tmp/pol/70-unknown.json"
run 4 policy check "$tmp/pol/70-unknown.json"
contains "$err" "70-unknown.json" "unknown key: file named"
contains "$err" "bogus" "unknown key: key named"

printf '{"classes": {' >"$tmp/pol/80-syntax.json"
run 4 policy check "$tmp/pol/80-syntax.json"
contains "$err" "80-syntax.json" "syntax error: file named"

HEAL_POLICY_DIRS=$tmp/pol run 4 policy check
HEAL_POLICY_DIRS=$tmp/empty-policy-dir run 4 policy check

run 0 policy keys
contains "$out" "classes.*.mode" "policy keys"

# ---- pending, approve, cancel, expire ---------------------------------------
"$fixture" "$HEAL_STATE_DIR" >"$tmp/ids" || fail "fixture helper"
# shellcheck disable=SC1091
. "$tmp/ids"

run 0 pending
for id in "$APPROVE" "$EXPIRED" "$DELAYED" "$DUE"; do
        contains "$out" "$id" "pending lists $id"
done
run 0 pending --json
json_ok "pending --json"
status_of() { jq_py "[p['status'] for p in d['pending'] if p['id'] == '$1'][0]"; }
[ "$(status_of "$APPROVE")" = waiting ] || fail "approve plan is waiting"
[ "$(status_of "$EXPIRED")" = expired ] || fail "old approve plan shows as expired"
[ "$(status_of "$DELAYED")" = waiting ] || fail "delayed action in its window is waiting"
[ "$(status_of "$DUE")" = due ] || fail "delayed action past its window shows as due"

run 3 approve 000000000000
contains "$err" "no pending action" "approve unknown id"
run 3 approve "../../etc"
run 3 approve "$EXPIRED"
contains "$err" "expired" "approve expired"

run 0 approve --no-start "$APPROVE"
contains "$out" "approved $APPROVE" "approve prints the decision"
run 0 pending --json
[ "$(status_of "$APPROVE")" = approved ] || fail "approved record"
[ "$(jq_py "[p['decided_by'] for p in d['pending'] if p['id'] == '$APPROVE'][0]")" = tester ] ||
        fail "decided_by is \$SUDO_USER"
run 3 approve --no-start "$APPROVE"
contains "$err" "already approved by tester" "approve twice"
run 3 cancel "$APPROVE"

# Without --no-start, approve records the decision and then must start the
# helper; with no bus to talk to that fails (exit 1) but the approval stands.
run 1 approve "$APPROVE2"
contains "$err" "approved, but" "approve without systemd says what is left to do"
run 0 pending --json
[ "$(status_of "$APPROVE2")" = approved ] || fail "approval recorded even when the start failed"

run 2 cancel --no-start "$DELAYED"
run 0 cancel "$DELAYED"
contains "$out" "cancelled $DELAYED" "cancel prints the decision"
run 3 cancel "$DELAYED"
run 3 cancel "$DUE"
contains "$err" "window is over" "cancel after the window"

run 0 pending --expire
contains "$out" "expired $EXPIRED" "pending --expire removes the expired plan"
run 0 pending --json
[ "$(jq_py "len([p for p in d['pending'] if p['id'] == '$EXPIRED'])")" = 0 ] || fail "expired record removed"
[ "$(jq_py "len([p for p in d['pending'] if p['id'] == '$DUE'])")" = 1 ] || fail "a due delayed action is not expired"
run 3 pending --expire

# ---- breaker reset ------------------------------------------------------------
run 0 status --json --no-bus
json_ok "status --json"
breaker_of() { jq_py "[t['breaker']['state'] for c in d['classes'] if c['class'] == 'worker-dead' for t in c['targets'] if t['target'] == '$1'][0]"; }
# worker-dead is in shadow mode in the default policy: status shows the shadow
# breaker; the fixture opened the live one, so look at it with a live policy.
echo '{"classes": {"worker-dead": {"mode": "live"}}}' >"$tmp/pol/50-live.json"
rm -f "$tmp/pol/60-bad.json" "$tmp/pol/70-unknown.json" "$tmp/pol/80-syntax.json"
cp "$src/policy/00-heal.json" "$tmp/pol/"
HEAL_POLICY_DIRS=$tmp/pol run 0 status --json --no-bus
json_ok "status --json (live)"
[ "$(breaker_of bar.service)" = open ] || fail "status shows the open breaker"
[ "$(jq_py "d['heartbeats'][0]['healer']")" = worker-reviver ] || fail "status shows the heartbeat"
[ "$(jq_py "[len(t['pending']) for c in d['classes'] for t in c['targets'] if t['target'] == 'a.service'][0]")" = 1 ] ||
        fail "status shows the pending action of a target"
HEAL_POLICY_DIRS=$tmp/pol run 0 status --no-bus
contains "$out" "bar.service" "status text lists the target"
contains "$out" "open (3 failed)" "status text shows the breaker"

run 0 breaker reset worker-dead bar.service
contains "$out" "was open" "breaker reset says what it was"
HEAL_POLICY_DIRS=$tmp/pol run 0 status --json --no-bus
[ "$(breaker_of bar.service)" = closed ] || fail "breaker closed after reset"
run 3 breaker reset worker-dead never-seen.service

# Invalid policy: status still prints, exits 4.
echo '{"classes": {"worker-dead": {"mode": "sometimes"}}}' >"$tmp/pol/60-bad.json"
HEAL_POLICY_DIRS=$tmp/pol run 4 status --json --no-bus
json_ok "status --json with an invalid policy"
[ "$(jq_py "d['policy']['valid']")" = False ] || fail "status reports the invalid policy"

# ---- enroll / unenroll into a fixture root ----------------------------------
dropin=$HEAL_SYSTEMD_ROOT/etc/systemd/system/foo.service.d/50-heal-reviver.conf
run 0 enroll --no-reload foo
[ -f "$dropin" ] || fail "enroll wrote $dropin"
grep -q 'OnFailure=heal-worker-reviver@' "$dropin" 2>/dev/null || fail "drop-in names the reviver"
run 0 enroll --no-reload foo.service
contains "$out" "already enrolled" "enroll twice"
run 0 enroll --list
contains "$out" "foo.service" "enroll --list"
run 0 enroll --no-reload --runtime bar.service
[ -f "$HEAL_SYSTEMD_ROOT/run/systemd/system/bar.service.d/50-heal-reviver.conf" ] || fail "enroll --runtime under /run"
run 1 enroll --no-reload dbus.service
contains "$err" "refusing to enroll dbus.service" "dbus refused"
run 1 enroll --no-reload systemd-journald.service heal-escalate@x.service
[ ! -e "$HEAL_SYSTEMD_ROOT/etc/systemd/system/systemd-journald.service.d" ] || fail "refused unit got a drop-in"
echo '{"classes": {"worker-dead": {"exclude": ["secret-*"]}}}' >"$tmp/pol/60-bad.json"
HEAL_POLICY_DIRS=$tmp/pol run 1 enroll --no-reload secret-db.service
contains "$err" "policy excludes secret-db.service" "policy exclusion named"
echo '{"classes": {"worker-dead": {"mode": "sometimes"}}}' >"$tmp/pol/60-bad.json"
HEAL_POLICY_DIRS=$tmp/pol run 4 enroll --no-reload baz.service
run 0 unenroll --no-reload foo
[ ! -e "$dropin" ] || fail "unenroll removed the drop-in"
run 3 unenroll --no-reload foo
run 0 unenroll --no-reload --runtime bar.service
# Talking to systemd is the default; without a bus that is a failure.
run 1 enroll qux.service

# ---- kill switch: needs systemd, here only the failure path ----------------
run 1 kill-switch status
run 2 kill-switch sideways
run 2 kill-switch on --quiet

# ---- audit and shadow-report from a real journal file ------------------------
journal_remote=
for p in /lib/systemd/systemd-journal-remote /usr/lib/systemd/systemd-journal-remote; do
        [ -x "$p" ] && journal_remote=$p && break
done
mkdir -p "$tmp/journal"
run 3 audit --directory "$tmp/journal"
contains "$out" "No audit records" "audit on an empty journal"

if [ -z "$journal_remote" ]; then
        echo "systemd-journal-remote not installed: skipping the journal-file part" >&2
else
        day=$(( $(date +%s) / 86400 * 86400 - 86400 )) # yesterday, 00:00 UTC
        boot=0123456789abcdef0123456789abcdef
        entry() { # SECONDS-AFTER-DAY EVENT TARGET INCIDENT [REASON]
                printf '__REALTIME_TIMESTAMP=%s\n__MONOTONIC_TIMESTAMP=%s\n_BOOT_ID=%s\n' \
                        "$(( (day + $1) * 1000000 ))" "$(( $1 + 1 ))" "$boot"
                printf 'MESSAGE=%s on %s\nHEAL_EVENT=%s\nHEAL_CLASS=worker-dead\nHEAL_TARGET=%s\nHEAL_INCIDENT=%s\n' \
                        "$2" "$3" "$2" "$3" "$4"
                [ -n "${5:-}" ] && printf 'HEAL_REASON=%s\n' "$5"
                printf '\n'
        }
        {
                entry 10 detected a.service inc-a
                entry 20 detected b.service inc-b
                entry 30 acting a.service inc-a
                entry 40 skipped b.service inc-b breaker-open
                entry 50 verified a.service inc-a
                for i in 1 2 3 4 5 6; do entry $((100 + i)) would-act flappy.service "inc-f$i"; done
                entry 200 would-act calm.service inc-c
                printf '__REALTIME_TIMESTAMP=%s\n__MONOTONIC_TIMESTAMP=999\n_BOOT_ID=%s\nMESSAGE=not heal\n\n' \
                        "$(( (day + 300) * 1000000 ))" "$boot"
        } | "$journal_remote" --output="$tmp/journal/heal.journal" - 2>/dev/null ||
                fail "systemd-journal-remote could not write the fixture journal"

        run 0 audit --directory "$tmp/journal"
        contains "$out" "incident inc-a" "audit groups by incident"
        contains "$out" "[breaker-open]" "audit shows the reason"
        # inc-a's three events are printed together, in order, before inc-b's skip
        order=$(printf '%s\n' "$out" | grep -oE 'detected +a.service|acting +a.service|verified +a.service|skipped +b.service' | tr -s ' ' | tr '\n' ',')
        [ "$order" = "detected a.service,acting a.service,verified a.service,skipped b.service," ] ||
                fail "audit grouping order: $order"
        [ "$(printf '%s\n' "$out" | grep -c 'not heal')" = 0 ] || fail "audit shows non-heal records"

        run 0 audit --directory "$tmp/journal" --target a.service --event acting,verified --json
        json_ok "audit --json"
        [ "$(jq_py "[e['event'] for i in d['incidents'] for e in i['events']]")" = "['acting', 'verified']" ] ||
                fail "audit --target --event filters"
        HEAL_JOURNAL_DIR=$tmp/journal run 0 audit --class worker-dead --event skipped --json
        [ "$(jq_py "d['incidents'][0]['events'][0]['reason']")" = breaker-open ] || fail "HEAL_JOURNAL_DIR honoured"
        run 3 audit --directory "$tmp/journal" --since now
        run 0 audit --directory "$tmp/journal" --since "@$((day + 45))" --json
        [ "$(jq_py "sum(len(i['events']) for i in d['incidents'])")" = 8 ] || fail "audit --since"

        run 0 shadow-report --directory "$tmp/journal"
        contains "$out" "SUSPICIOUS" "shadow-report flags 6 a day"
        [ "$(printf '%s\n' "$out" | grep flappy.service | grep -c SUSPICIOUS)" = 1 ] || fail "flappy flagged"
        [ "$(printf '%s\n' "$out" | grep calm.service | grep -c SUSPICIOUS)" = 0 ] || fail "calm not flagged"
        run 0 shadow-report --directory "$tmp/journal" --json
        json_ok "shadow-report --json"
        [ "$(jq_py "[t['total'] for t in d['targets'] if t['target'] == 'flappy.service'][0]")" = 6 ] ||
                fail "shadow-report counts"
        run 3 shadow-report --directory "$tmp/journal" --since now

        HEAL_JOURNAL_DIR=$tmp/journal run 0 status --json --no-bus
        json_ok "status --json with a journal"
        [ "$(jq_py "[t['last_action']['event'] for c in d['classes'] if c['class'] == 'worker-dead' for t in c['targets'] if t['target'] == 'a.service'][0]")" = acting ] ||
                fail "status shows the last action from the journal"
fi

if [ "$failures" -gt 0 ]; then
        echo "$failures check(s) failed" >&2
        exit 1
fi
echo "all healctl CLI checks passed"
