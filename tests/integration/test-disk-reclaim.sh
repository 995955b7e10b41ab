#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# disk-reclaim end to end, in a throwaway systemd (sandbox.sh), on a real filesystem: a 64 MiB ext4 image on
# a loop device, mounted inside the sandbox and filled to 100% with old files in the policy's sources, newer
# files, canaries outside the sources and a symlink. heal-disk-reclaim.service runs as installed; the tree
# on disk and the journal's audit records say what it did. Usage: test-disk-reclaim.sh BUILD_DIR [SCENARIO...]
# shellcheck disable=SC2016 # scripts for sb_sh are single-quoted on purpose
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=sandbox.sh
. "$here/sandbox.sh"
# shellcheck source=check.sh
. "$here/check.sh"
scenario_args "$@"

MNT=/mnt/heal-disk
UNIT=heal-disk-reclaim.service
PLAN=/run/heal/plans/disk-reclaim-%2Fmnt%2Fheal-disk-auto.json
TARGET_PERCENT=30
MARK=0

expect_eq() {
        local what=$1 got=$2 want=$3
        if [ "$got" = "$want" ]; then
                pass "$what = $(echo "$want" | head -n1)$([ "$(echo "$want" | wc -l)" -gt 1 ] && echo " (+$(($(echo "$want" | wc -l) - 1)) lines)")"
        else
                fail "$what: got '$got', want '$want'"
        fi
}
expect_ge() {
        local what=$1 got=$2 want=$3
        if [ "$got" -ge "$want" ]; then pass "$what >= $want ($got)"; else fail "$what: got $got, want >= $want"; fi
}

alive() {
        [ -d "/proc/$SB_PID1" ] && return 0
        echo "FAIL: the sandbox died" >&2
        exit 1
}

# ---- the filesystem -------------------------------------------------------------------------------

# A 64 MiB ext4 image (no root reserve: "available" is "free") on a host loop device, mounted at $MNT
# inside the sandbox through a device node made there. The loop device is marked autoclear at once, so it
# goes away with the sandbox's mount namespace.
make_fs() {
        local img=$SB_DIR/heal-disk.img loop devno
        truncate -s 64M "$img"
        mkfs.ext4 -q -F -m 0 -E lazy_itable_init=0,lazy_journal_init=0 "$img"
        loop=$(losetup -f --show "$img")
        devno=$(cat "/sys/class/block/$(basename "$loop")/dev")
        sb_sh 'mkdir -p "$1" && { [ -e "$2" ] || mknod "$2" b "${3%%:*}" "${3##*:}"; } && mount "$2" "$1"' \
                "$MNT" "$loop" "$devno"
        losetup -d "$loop"
}

# populate [leak]: old cache files (2 MiB, 20..11 days old, "old-0" oldest), older rotated logs (1 MiB,
# 30 days) in a source that comes second in the policy, new cache files, a canary outside every source
# (40 days old), a symlink to it inside the cache, then a filler up to 100%.
populate() {
        sb_sh '
                set -e
                m=$1; now=$(date +%s)
                find "$m" -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf {} +
                mkdir -p "$m/cache" "$m/logs" "$m/canary"
                for i in 0 1 2 3 4 5 6 7 8 9; do
                        dd if=/dev/zero of="$m/cache/old-$i.bin" bs=1M count=2 status=none
                        touch -d "@$((now - (20 - i) * 86400))" "$m/cache/old-$i.bin"
                done
                for i in 0 1 2 3 4; do
                        dd if=/dev/zero of="$m/logs/rot-$i.gz" bs=1M count=1 status=none
                        touch -d "@$((now - 30 * 86400))" "$m/logs/rot-$i.gz"
                done
                for i in 0 1; do dd if=/dev/zero of="$m/cache/new-$i.bin" bs=1M count=2 status=none; done
                dd if=/dev/zero of="$m/canary/keep.bin" bs=1M count=1 status=none
                touch -d "@$((now - 40 * 86400))" "$m/canary/keep.bin"
                ln -s ../canary/keep.bin "$m/cache/link.bin"
                touch -h -d "@$((now - 40 * 86400))" "$m/cache/link.bin"
                if [ "$2" = leak ]; then dd if=/dev/zero of="$m/leak.bin" bs=1M count=4 status=none; fi
                dd if=/dev/zero of="$m/filler" bs=1M status=none 2>/dev/null || true
                dd if=/dev/zero of="$m/filler-tail" bs=4k status=none 2>/dev/null || true
                sync
        ' "$MNT" "${1:-}"
}

tree() { sb_sh 'cd "$1" && find . \( -type f -o -type l \) ! -path "./lost+found/*" | sort' "$MNT"; }
avail_bytes() { sb_sh 'stat -f -c "%a %S" "$1" | { read -r a s; echo $((a * s)); }' "$MNT"; }
target_bytes() { sb_sh 'stat -f -c "%b %S" "$1" | { read -r b s; echo $(((b * s * $2 + 99) / 100)); }' "$MNT" "$TARGET_PERCENT"; }

# ---- policy, runs and the journal -----------------------------------------------------------------

SOURCES='[{"name": "old-cache", "root": "/mnt/heal-disk/cache", "patterns": ["*.bin"], "min_age_s": 86400,
           "times": ["mtime"], "tier": "auto"},
          {"name": "old-logs", "root": "/mnt/heal-disk/logs", "patterns": ["*.gz"], "min_age_s": 86400,
           "times": ["mtime"], "tier": "auto"}]'

# policy MODE DWELL [SOURCES]: disk-pressure on $MNT only; budgets wide enough for the test.
policy() {
        sb_write /etc/heal/policy.d/50-disk-test.json <<EOF
{"version": 1,
 "global": {"budget": {"actions": 100, "per_s": 60}},
 "classes": {
   "disk-pressure": {"mode": "$1", "tier": "auto", "dwell_s": $2, "settle_s": 1, "idempotency_s": 1,
     "target_budget": {"actions": 100, "per_s": 60}, "budget": {"actions": 100, "per_s": 60},
     "mounts": ["$MNT"], "include_loop": true, "min_free_percent": 10, "target_free_percent": $TARGET_PERCENT,
     "sources": ${3:-$SOURCES}},
   "disk-leaked": {"mode": "live", "tier": "approve", "dwell_s": 0, "settle_s": 1, "leak_threshold_bytes": 1048576,
     "targets": ["*.service"], "exclude": ["heal-*"]}}}
EOF
}

# Forget state, samples, plans and requests between scenarios; new journal records only from now on.
reset() {
        sb_sh 'rm -rf /var/lib/heal/* /run/heal/disk-reclaim /run/heal/plans /run/heal/state-fallback \
                /run/heal/requests/disk-reclaim/* 2>/dev/null; true'
        sb_exec systemctl reset-failed "$UNIT" 2>/dev/null || true
        sleep 1
        MARK=$(sb_exec date +%s)
}

reclaim_idle() {
        alive
        local st job
        st=$(sb_exec systemctl show -P ActiveState "$UNIT")
        job=$(sb_exec systemctl show -P Job "$UNIT")
        case "$st" in inactive | failed) [ -z "$job" ] ;; *) return 1 ;; esac
}

# One run of the installed service, to its end (Type=notify: start returns at READY=1).
run_reclaim() {
        local what=$1
        sb_exec systemctl start "$UNIT" || fail "$what: systemctl start $UNIT failed"
        sb_wait_for 120 reclaim_idle || fail "$what: $UNIT still running after 120 s"
        expect_eq "$what: service result" "$(sb_exec systemctl show -P Result "$UNIT")" success
}

# events CLASS EVENT [MATCH...]: audit records since the scenario began.
events() {
        local class=$1 ev=$2
        shift 2
        sb_journal -o cat --output-fields=HEAL_EVENT --since "@$MARK" "HEAL_CLASS=$class" "HEAL_EVENT=$ev" "$@" |
                grep -c . || true
}
# field CLASS EVENT FIELD [MATCH...]: that field of those records, one per line.
field() {
        local class=$1 ev=$2 f=$3
        shift 3
        sb_journal -o cat --output-fields="$f" --since "@$MARK" "HEAL_CLASS=$class" "HEAL_EVENT=$ev" "$@"
}

plan_files() { sb_sh 'jq -r ".plan.files[].path" "$1" | sort' "$PLAN"; }

# ---- scenarios ------------------------------------------------------------------------------------

# Shadow with a dwell, then live on the same tree: the dwell holds the first run back, shadow writes the
# plan and deletes nothing, live deletes exactly the plan's files, oldest first, up to the target only.
scenario_shadow_then_live() {
        local before after gone planned n last_size avail target
        reset
        populate
        policy shadow 2
        before=$(tree)

        run_reclaim "shadow 1st"
        expect_ge "shadow 1st: detected records" "$(events disk-pressure detected HEAL_TARGET=$MNT)" 1
        expect_eq "shadow 1st: confirmed records (dwell not over)" "$(events disk-pressure confirmed)" 0
        sb_exec test ! -e "$PLAN" && pass "shadow 1st: no plan yet" || fail "shadow 1st: a plan before the dwell"

        sleep 3
        run_reclaim "shadow 2nd"
        expect_eq "shadow 2nd: confirmed records" "$(events disk-pressure confirmed HEAL_TARGET=$MNT)" 1
        expect_eq "shadow 2nd: would-act records" "$(events disk-pressure would-act HEAL_TARGET=$MNT)" 1
        expect_eq "shadow 2nd: acting records" "$(events disk-pressure acting)" 0
        expect_eq "shadow: tree unchanged" "$(tree)" "$before"
        sb_exec test -e "$PLAN" || {
                fail "shadow: no plan file $PLAN"
                return
        }
        planned=$(plan_files)
        n=$(echo "$planned" | grep -c . || true)
        expect_ge "shadow: planned files" "$n" 1
        # Policy order (the cache before the older logs), oldest first within it: old-0 .. old-(n-1).
        expect_eq "shadow: the plan is the n oldest cache files" "$planned" \
                "$(for i in $(seq 0 $((n - 1))); do echo "$MNT/cache/old-$i.bin"; done | sort)"
        sb_exec cp "$PLAN" /run/shadow-plan.json

        policy live 2
        run_reclaim "live"
        expect_eq "live: verified records" "$(events disk-pressure verified HEAL_TARGET=$MNT)" 1
        after=$(tree)
        gone=$(comm -23 <(echo "$before") <(echo "$after") | sed "s|^\.|$MNT|" | sort)
        expect_eq "live: deleted exactly the shadow plan's files" "$gone" "$planned"
        expect_eq "live: nothing new appeared" "$(comm -13 <(echo "$before") <(echo "$after"))" ""

        avail=$(avail_bytes)
        target=$(target_bytes)
        last_size=$(sb_sh 'jq -r ".plan.files[-1].size" /run/shadow-plan.json')
        [ "$avail" -ge "$target" ] && pass "live: available $avail >= target $target" ||
                fail "live: available $avail below the target $target"
        [ $((avail - last_size)) -lt "$target" ] && pass "live: no further than the target" ||
                fail "live: freed more than needed (available $avail, last file $last_size, target $target)"

        sb_exec test -f "$MNT/canary/keep.bin" && pass "live: canary outside the sources kept" || fail "live: canary gone"
        sb_exec test -L "$MNT/cache/link.bin" && pass "live: symlink kept" || fail "live: symlink gone"
        expect_eq "live: rotated logs (second source) untouched" \
                "$(sb_sh 'ls "$1"/logs | wc -l' "$MNT")" 5
        expect_eq "live: new cache files untouched" "$(sb_sh 'ls "$1"/cache/new-* | wc -l' "$MNT")" 2
        [ -n "$(field disk-pressure verified HEAL_AFTER)" ] && pass "live: HEAL_AFTER recorded" || fail "live: no HEAL_AFTER"
        [ -n "$(field disk-pressure verified HEAL_BEFORE)" ] && pass "live: HEAL_BEFORE recorded" || fail "live: no HEAL_BEFORE"
        expect_eq "live: per-source files in the audit" \
                "$(field disk-pressure verified HEAL_FACTS | jq -r '.result.sources[0].freed_files')" "$n"
        expect_eq "live: plan file rewritten with outcomes" \
                "$(sb_sh 'jq -r "[.plan.files[].outcome] | unique | join(\",\")" "$1"' "$PLAN")" deleted
}

# A unit holding a deleted file on the pressured filesystem is named and proposed for a restart that
# waits for approval; the run is asked for with `healctl run` through the .path unit.
scenario_leaked() {
        local pid
        reset
        populate leak
        policy live 0
        sb_exec systemd-run --quiet --unit=leaky-holder \
                sh -c "exec 3<$MNT/leak.bin; rm -f $MNT/leak.bin; exec sleep infinity" ||
                fail "leaked: cannot start the holder"
        sb_wait_for 10 sb_sh '! test -e "$1"' "$MNT/leak.bin" || fail "leaked: holder did not delete its file"
        pid=$(sb_exec systemctl show -P MainPID leaky-holder.service)

        sb_exec systemctl start heal-disk-reclaim.path || fail "leaked: cannot start the path unit"
        sb_exec healctl run disk-reclaim --mount "$MNT" || fail "leaked: healctl run failed"
        sb_wait_for 60 sb_sh '[ -z "$(ls -A /run/heal/requests/disk-reclaim)" ]' ||
                fail "leaked: the request was not consumed"
        sb_wait_for 120 reclaim_idle || fail "leaked: $UNIT still running"
        expect_eq "leaked: confirmed by the request" \
                "$(field disk-pressure confirmed HEAL_FACTS HEAL_TARGET=$MNT | jq -r .confirmed_by | tail -n1)" request
        expect_eq "leaked: pending restart of the holder" \
                "$(events disk-leaked pending HEAL_TARGET=leaky-holder.service HEAL_REASON=awaiting-approval)" 1
        field disk-leaked detected HEAL_FACTS HEAL_TARGET=$MNT | grep -q "\"pid\":$pid" &&
                pass "leaked: the holder's pid is named" || fail "leaked: holder pid $pid not in the facts"
        field disk-leaked pending HEAL_FACTS HEAL_TARGET=leaky-holder.service | grep -q "$MNT/leak.bin" &&
                pass "leaked: the deleted file is named" || fail "leaked: leak.bin not in the facts"
        sb_exec healctl pending | grep -q leaky-holder.service && pass "leaked: healctl pending lists it" ||
                fail "leaked: not in healctl pending"
        expect_eq "leaked: not restarted without approval" \
                "$(sb_exec systemctl show -P MainPID leaky-holder.service)" "$pid"
        sb_exec systemctl stop heal-disk-reclaim.path leaky-holder.service || true
}

# The leak is what fills the disk (nothing disposable is left): the pending restart is approved, the
# re-run restarts the holder through the guard, and the space comes back.
scenario_leaked_approved() {
        local pid id avail_before avail_after
        reset
        populate leak
        policy live 0 '[{"name": "nothing-old", "root": "/mnt/heal-disk/logs", "patterns": ["*.none"],
                         "min_age_s": 86400, "tier": "auto"}]'
        # Restarted, the holder finds no file to hold and just sleeps.
        sb_exec systemd-run --quiet --unit=leaky-holder2 \
                sh -c "if [ -e $MNT/leak.bin ]; then exec 3<$MNT/leak.bin; rm -f $MNT/leak.bin; fi; exec sleep infinity" ||
                fail "approved: cannot start the holder"
        sb_wait_for 10 sb_sh '! test -e "$1"' "$MNT/leak.bin" || fail "approved: holder did not delete its file"
        pid=$(sb_exec systemctl show -P MainPID leaky-holder2.service)
        run_reclaim "approved 1st"
        expect_eq "approved: pending restart" "$(events disk-leaked pending HEAL_TARGET=leaky-holder2.service)" 1
        id=$(sb_exec healctl pending --json |
                jq -r '.pending[] | select(.target == "leaky-holder2.service") | .id' | head -n1) || true
        [ -n "$id" ] || {
                fail "approved: no pending id"
                return
        }
        avail_before=$(avail_bytes)
        sb_exec healctl approve "$id" || fail "approved: healctl approve $id failed"
        sb_wait_for 120 sb_sh '[ "$(journalctl -q -o cat --output-fields=HEAL_EVENT --since "@$1" HEAL_CLASS=disk-leaked \
                HEAL_TARGET=leaky-holder2.service HEAL_EVENT=verified | grep -c .)" -ge 1 ]' "$MARK" ||
                fail "approved: no verified restart within 120 s"
        sb_wait_for 120 reclaim_idle || fail "approved: $UNIT still running"
        expect_ge "approved: approved records" "$(events disk-leaked approved HEAL_TARGET=leaky-holder2.service)" 1
        expect_eq "approved: verified records" "$(events disk-leaked verified HEAL_TARGET=leaky-holder2.service)" 1
        [ "$(sb_exec systemctl show -P MainPID leaky-holder2.service)" != "$pid" ] &&
                pass "approved: the holder was restarted" || fail "approved: the holder still runs as $pid"
        avail_after=$(avail_bytes)
        [ "$avail_after" -ge $((avail_before + 4 * 1024 * 1024)) ] && pass "approved: the 4 MiB came back" ||
                fail "approved: available $avail_before -> $avail_after"
        sb_exec systemctl stop leaky-holder2.service || true
}

# bad_source NAME SOURCES REASON: the run refuses, escalates, and deletes nothing.
bad_source() {
        local name=$1 sources=$2 reason=$3 before
        reset
        policy live 0 "$sources"
        before=$(tree)
        run_reclaim "bad $name"
        expect_eq "bad $name: tree unchanged" "$(tree)" "$before"
        expect_ge "bad $name: skipped ($reason)" "$(events disk-pressure skipped "HEAL_REASON=$reason")" 1
        expect_ge "bad $name: escalated" "$(events disk-pressure escalated)" 1
        expect_eq "bad $name: acting records" "$(events disk-pressure acting)" 0
        echo "    message: $(sb_journal -o cat --since "@$MARK" HEAL_CLASS=disk-pressure HEAL_EVENT=skipped | tail -n1)"
}

scenario_bad_policy() {
        populate
        local ok='{"name": "old-cache", "root": "/mnt/heal-disk/cache", "patterns": ["*.bin"], "min_age_s": 60, "tier": "auto"}'
        bad_source "missing root" "[$ok, {\"name\": \"gone\", \"root\": \"/mnt/heal-disk/nope\", \"min_age_s\": 60}]" bad-source
        bad_source "relative root" "[$ok, {\"name\": \"rel\", \"root\": \"cache\", \"min_age_s\": 60}]" bad-source
        bad_source "root /" "[{\"name\": \"all\", \"root\": \"/\", \"min_age_s\": 60, \"tier\": \"auto\"}, $ok]" bad-source
        bad_source "negative age" "[{\"name\": \"neg\", \"root\": \"/mnt/heal-disk/cache\", \"min_age_s\": -1}]" policy-invalid
}

# The state dir's filesystem at 100%: state keeps its reserve (made by an open while there was room, as on
# any host where heal ran before the disk filled), so the run completes on the real state dir and the
# audit says it used the reserve; no tmpfs fallback.
scenario_state_full() {
        reset
        populate
        policy live 0
        sb_sh 'mount -t tmpfs -o size=4m heal-state-full /var/lib/heal && healctl status >/dev/null 2>&1;
                test -e /var/lib/heal/.reserve &&
                { dd if=/dev/zero of=/var/lib/heal/fill bs=4k status=none 2>/dev/null || true; }' ||
                fail "state full: no reserve, or cannot fill the state dir"
        run_reclaim "state full"
        expect_eq "state full: verified records" "$(events disk-pressure verified HEAL_TARGET=$MNT)" 1
        expect_eq "state full: the audit says the reserve was used" \
                "$(field disk-pressure verified HEAL_FACTS | jq -r .state_reserve)" used
        expect_eq "state full: no fallback" \
                "$(field disk-pressure verified HEAL_FACTS | jq -r .state_fallback)" null
        sb_exec test -e "$MNT/cache/old-0.bin" && fail "state full: the oldest file was not removed" ||
                pass "state full: files removed"
        sb_exec umount /var/lib/heal || true
}

# The journal as a source: real archived journal files (journald's own, rotated in the sandbox) in a
# journal directory on the pressured filesystem (HEAL_JOURNAL_DIR, as an operator's journal on /var
# would be). The run vacuums them through journalctl, oldest first; the active journal is never touched
# (here there is none: every file copied is archived), and the audit says what the vacuum freed.
journal_files() { sb_sh 'cd "$1/journal" && find . -name "*.journal" | sort' "$MNT"; }
scenario_journal() {
        # A target that needs part of the journal, not all of it: oldest first shows.
        local TARGET_PERCENT=12 mid before after freed n_after
        reset
        mid=$(sb_exec cat /etc/machine-id)
        # Three archived files of journald's own making, each with some 600 KiB of messages.
        for _ in 1 2 3; do
                sb_sh 'for i in $(seq 2000); do echo "heal journal filler $i $(head -c 240 /dev/urandom | base64 -w0)"; done |
                        systemd-cat -t heal-filler && journalctl --sync && journalctl --rotate' ||
                        fail "journal: could not fill and rotate the journal"
        done
        sb_sh 'set -e
                m=$1 mid=$2
                find "$m" -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf {} +
                mkdir -p "$m/journal/$mid"
                # One journal only (the persistent one when there is one): its files share a seqnum id, so
                # their names sort by age.
                d=/var/log/journal/$mid
                [ -d "$d" ] || d=/run/log/journal/$mid
                find "$d" -name "system@*.journal" -exec cp --sparse=never {} "$m/journal/$mid/" \;
                dd if=/dev/zero of="$m/filler" bs=1M status=none 2>/dev/null || true
                dd if=/dev/zero of="$m/filler-tail" bs=4k status=none 2>/dev/null || true
                truncate -s -4M "$m/filler"
                sync' "$MNT" "$mid" || fail "journal: could not build the journal directory"
        before=$(journal_files)
        expect_ge "journal: archived files to vacuum" "$(echo "$before" | grep -c . || true)" 3
        echo "    journal files: $(sb_sh 'du -k "$1/journal" | tail -n1' "$MNT"); free: $(avail_bytes) of target $(target_bytes)"
        printf '[Service]\nEnvironment=HEAL_JOURNAL_DIR=%s/journal\n' "$MNT" |
                sb_write "/etc/systemd/system/$UNIT.d/60-journal.conf"
        sb_exec systemctl daemon-reload
        policy live 0 '[{"name": "journal", "journal_vacuum": true, "keep_bytes": 0, "tier": "auto"}]'

        run_reclaim "journal"
        expect_eq "journal: verified records" "$(events disk-pressure verified HEAL_TARGET=$MNT)" 1
        freed=$(field disk-pressure verified HEAL_FACTS | jq -r .result.journal_freed_bytes)
        expect_ge "journal: bytes the vacuum freed" "${freed:-0}" 1
        expect_eq "journal: no vacuum error" "$(field disk-pressure verified HEAL_FACTS | jq -r .result.journal_error)" null
        after=$(journal_files)
        expect_eq "journal: only archived journal files went, none appeared" "$(comm -13 <(echo "$before") <(echo "$after"))" ""
        n_after=$(echo "$after" | grep -c . || true)
        [ "$n_after" -lt "$(echo "$before" | grep -c .)" ] && [ "$n_after" -ge 1 ] &&
                pass "journal: some archived files removed, not all ($(echo "$before" | grep -c .) -> $n_after)" ||
                fail "journal: want some archived files removed and some kept, got $(echo "$before" | grep -c .) -> $n_after"
        [ "$(avail_bytes)" -ge "$(target_bytes)" ] && pass "journal: target reached" || fail "journal: target not reached"
        # Oldest first: what is left is the newest of before (names sort by the file's first seqnum).
        if [ -n "$after" ]; then
                expect_eq "journal: the oldest went first" "$after" \
                        "$(echo "$before" | tail -n "$(echo "$after" | grep -c .)")"
        fi
        sb_exec rm -f "/etc/systemd/system/$UNIT.d/60-journal.conf"
        sb_exec systemctl daemon-reload
}

# A hung walk: a FUSE filesystem whose daemon never answers is mounted inside the first source, so the
# walk's statx() of it waits in the kernel. The helper stops pinging; systemd's watchdog aborts it and,
# when the abort cannot wake it, kills it; the unit's OnFailure= escalates to a human; nothing is deleted.
fuse_mounted() { sb_sh 'grep -q " $1 " /proc/self/mountinfo' "$MNT/cache/hang"; }
reclaim_pid() { sb_exec systemctl show -P MainPID "$UNIT"; }
# The thread of the helper that waits in the kernel: state D (the first field after its command in
# its stat line). The walk runs on worker threads, so it is one of the process's tasks, not the main one.
reclaim_d_task() {
        local pid
        pid=$(reclaim_pid)
        [ -n "$pid" ] && [ "$pid" != 0 ] &&
                sb_sh 'for t in /proc/$1/task/*; do
                               [ "$(sed "s/.*) //" "$t/stat" | cut -d" " -f1)" = D ] && { echo "$t"; exit 0; }
                       done; exit 1' "$pid"
}
reclaim_in_d_state() { reclaim_d_task >/dev/null; }
reclaim_failed() { [ "$(sb_exec systemctl show -P ActiveState "$UNIT")" = failed ]; }
self_escalated() { [ "$(events heal-self escalated "HEAL_TARGET=$UNIT")" -ge 1 ]; }

scenario_hung_walk() {
        local before task wchan
        reset
        populate
        policy live 0
        # Room for one directory; the filesystem stays under pressure.
        sb_exec rm -f "$MNT/filler-tail"
        sb_exec mkdir "$MNT/cache/hang"
        before=$(tree)
        sb_sh '[ -e /dev/fuse ] || mknod /dev/fuse c 10 229'
        sb_exec systemd-run -q --unit=heal-test-fuse-hang --service-type=exec /usr/local/bin/heal-fuse-hang \
                "$MNT/cache/hang" || fail "hung walk: the FUSE daemon did not start"
        sb_wait_for 10 fuse_mounted || fail "hung walk: no FUSE mount at $MNT/cache/hang"
        printf '[Service]\nWatchdogSec=3s\nTimeoutAbortSec=3s\n' |
                sb_write "/etc/systemd/system/$UNIT.d/60-hung-walk.conf"
        sb_exec systemctl daemon-reload
        sb_exec systemctl start --no-block "$UNIT"
        if sb_wait_for 30 reclaim_in_d_state; then
                task=$(reclaim_d_task)
                wchan=$(sb_exec cat "$task/wchan")
                pass "hung walk: a thread of the helper waits in the kernel (D, wchan $wchan)"
        else
                fail "hung walk: the helper never hung on the FUSE mount"
        fi
        sb_wait_for 60 reclaim_failed || fail "hung walk: $UNIT did not fail"
        expect_eq "hung walk: service result" "$(sb_exec systemctl show -P Result "$UNIT")" watchdog
        sb_wait_for 60 self_escalated || fail "hung walk: no escalation of $UNIT"
        expect_eq "hung walk: the escalation says why" \
                "$(field heal-self escalated HEAL_FACTS "HEAL_TARGET=$UNIT" | tail -n1 | jq -r .result)" watchdog
        expect_eq "hung walk: acting records" "$(events disk-pressure acting)" 0

        # Killing the daemon aborts the connection: the mount can go, and the tree can be looked at again.
        sb_exec systemctl stop heal-test-fuse-hang.service || true
        sb_exec umount -l "$MNT/cache/hang" || fail "hung walk: could not unmount the FUSE mount"
        sb_exec rm -f "/etc/systemd/system/$UNIT.d/60-hung-walk.conf"
        sb_exec systemctl daemon-reload
        sb_exec systemctl reset-failed "$UNIT" 2>/dev/null || true
        expect_eq "hung walk: tree unchanged" "$(tree)" "$before"
        sb_exec rmdir "$MNT/cache/hang" || true
}

# ---- main -----------------------------------------------------------------------------------------

command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null || {
        echo "SKIP: needs mkfs.ext4 and losetup"
        exit 77
}
all=(shadow_then_live leaked leaked_approved bad_policy state_full journal hung_walk)
[ "${#SCENARIOS[@]}" -gt 0 ] && all=("${SCENARIOS[@]}")

tmp=$(mktemp -d)
cc -O2 -o "$tmp/heal-fuse-hang" "$here/fuse-hang.c" || {
        rm -rf "$tmp"
        echo "FAIL: cannot build fuse-hang.c" >&2
        exit 1
}
sandbox_up "$build_dir" || exit 1
sb_copy_in "$tmp/heal-fuse-hang" /usr/local/bin/heal-fuse-hang
rm -rf "$tmp"
sb_exec sh -c 'command -v jq' >/dev/null || {
        sandbox_down
        echo "SKIP: jq is not installed"
        exit 77
}
make_fs
# The test filesystem is a source root: operators add their roots the same way (see the unit file).
sb_write /etc/systemd/system/$UNIT.d/50-test.conf <<EOF
[Service]
ReadWritePaths=$MNT
EOF
# A sanitizer build's leak checker needs ptrace, which SystemCallFilter= refuses; leaks are the unit
# tests' job, the unit's hardening is ours.
if grep -q __asan_init "$build_dir/helpers/disk-reclaim/disk-reclaim" 2>/dev/null; then
        sb_write /etc/systemd/system/$UNIT.d/50-asan.conf <<'EOF'
[Service]
Environment=ASAN_OPTIONS=detect_leaks=0
EOF
fi
sb_exec systemctl daemon-reload

for s in "${all[@]}"; do
        echo "--- $s"
        "scenario_$s"
done

scenarios_end disk-reclaim "$UNIT"
