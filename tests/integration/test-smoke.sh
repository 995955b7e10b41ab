#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The sandbox every integration test stands on: systemd really runs it, journald, D-Bus, timers and the
# watchdog work in it, heal's install landed in it, and tearing it down leaves nothing on the host.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=sandbox.sh
. "$here/sandbox.sh"
build_dir=${1:?usage: test-smoke.sh BUILD_DIR}

step() { printf '== %s\n' "$*"; }
fail() {
        echo "FAIL: $*" >&2
        exit 1
}

journal_has() { sb_journal "${@:2}" -o cat | grep -qxF -- "$1"; }
unit_prop_is() { [ "$(sb_exec systemctl show -P "$2" -- "$1")" = "$3" ]; }

sandbox_up "$build_dir"
echo "up in ${SB_UP_MS} ms, of which boot ${SB_BOOT_MS} ms ($SB_STATE)"

step "systemd is PID 1 of a container"
[ "$(sb_exec cat /proc/1/comm)" = systemd ] || fail "PID 1 in the sandbox is $(sb_exec cat /proc/1/comm)"
virt=$(sb_exec systemd-detect-virt --container) || true
[ "$virt" = systemd-nspawn ] || fail "systemd-detect-virt says '$virt', not systemd-nspawn"

step "journald records what is logged inside, under the sandbox's own machine id"
marker="heal-smoke-$SB_NAME-$RANDOM"
sb_exec logger -t heal-smoke -- "$marker"
echo "$marker-cat" | sb_exec systemd-cat -t heal-smoke-cat
sb_wait_for 10 journal_has "$marker" -t heal-smoke || fail "logger's message never reached the journal"
sb_wait_for 10 journal_has "$marker-cat" -t heal-smoke-cat || fail "systemd-cat's message never reached the journal"
machine_id=$(sb_exec cat /etc/machine-id)
[ "$machine_id" != "$(cat /etc/machine-id 2>/dev/null)" ] || fail "the sandbox shares the host's machine id"
sb_journal_json -t heal-smoke | /usr/bin/python3 -c '
import json, sys
entries = [json.loads(line) for line in sys.stdin if line.strip()]
mine = [e for e in entries if e.get("MESSAGE") == sys.argv[1]]
assert mine, "marker not in journalctl -o json output"
assert mine[0]["_MACHINE_ID"] == sys.argv[2], "entry carries machine id %s" % mine[0]["_MACHINE_ID"]
' "$marker" "$machine_id" || fail "journalctl -o json does not show the marker as the sandbox's"

step "D-Bus: the system bus is up and systemd answers on it"
owner=$(sb_exec busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
        GetNameOwner s org.freedesktop.systemd1) || fail "org.freedesktop.systemd1 has no owner on the bus"
[[ "$owner" == 's ":1.'* ]] || fail "unexpected GetNameOwner reply: $owner"
virt=$(sb_exec busctl get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 \
        org.freedesktop.systemd1.Manager Virtualization)
[ "$virt" = 's "systemd-nspawn"' ] || fail "Manager.Virtualization over the bus is $virt"

step "a transient timer fires"
sb_exec test ! -e /run/heal-smoke-timer || fail "timer flag exists before the timer was started"
# AccuracySec defaults to a minute: without it the timer may legally fire up to a minute late.
sb_exec systemd-run --quiet --unit=heal-smoke-timer --on-active=1 --timer-property=AccuracySec=100ms \
        touch /run/heal-smoke-timer
unit_prop_is heal-smoke-timer.timer LoadState loaded || fail "the transient timer was not created"
if ! sb_wait_for 15 sb_exec test -e /run/heal-smoke-timer; then
        sb_exec systemctl status --no-pager heal-smoke-timer.timer heal-smoke-timer.service || true
        fail "the timer did not fire within 15 s"
fi

step "WatchdogSec=: a service that pings lives, one that does not is killed"
# Same settings for both; only the pings differ. The pinger speaks sd_notify itself so every ping comes
# from the main PID (a short-lived systemd-notify per ping can lose the race with its own exit).
pinger='
import os, socket, time
addr = os.environ["NOTIFY_SOCKET"]
addr = "\0" + addr[1:] if addr.startswith("@") else addr
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", addr)
while True:
    s.sendto(b"WATCHDOG=1", addr)
    time.sleep(0.2)
'
wd_props=(-p Type=notify -p WatchdogSec=1 -p LimitCORE=0)
sb_exec systemd-run --quiet --unit=heal-smoke-pinger "${wd_props[@]}" /usr/bin/python3 -c "$pinger"
sb_exec systemd-run --quiet --unit=heal-smoke-silent "${wd_props[@]}" -p NotifyAccess=all \
        /bin/sh -c 'systemd-notify --ready; exec sleep infinity'
sb_wait_for 15 unit_prop_is heal-smoke-silent.service Result watchdog ||
        fail "the silent service was not killed by the watchdog (Result=$(sb_exec systemctl show -P Result heal-smoke-silent.service))"
sb_journal -u heal-smoke-silent.service -o cat | grep -q 'Watchdog timeout' ||
        fail "no watchdog timeout in the silent service's journal"
sleep 2 # two more watchdog periods for the pinger
unit_prop_is heal-smoke-pinger.service ActiveState active ||
        fail "the pinging service did not survive its watchdog: $(sb_exec systemctl show -P Result heal-smoke-pinger.service)"
unit_prop_is heal-smoke-pinger.service Result success || fail "the pinging service has a failure result"
sb_exec systemctl stop heal-smoke-pinger.service

step "heal's install landed (every file meson installs is there)"
mapfile -t installed < <(meson introspect --installed "$build_dir" |
        /usr/bin/python3 -c 'import json, sys; print("\n".join(sorted(json.load(sys.stdin).values())))')
if [ "${#installed[@]}" -eq 0 ] || [ -z "${installed[0]}" ]; then
        fail "meson installs nothing from $build_dir"
fi
for path in "${installed[@]}"; do
        sb_exec test -e "$path" || fail "$path is not in the sandbox"
        case "$path" in
        */libexec/heal/* | */bin/*)
                sb_exec test -x "$path" || fail "$path is not executable"
                ;;
        */systemd/system/*.service | */systemd/system/*.timer | */systemd/system/*.path | \
                */systemd/system/*.socket | */systemd/system/*.target)
                sb_exec systemctl cat -- "${path##*/}" >/dev/null || fail "systemd does not know ${path##*/}"
                ;;
        */policy.d/*.json)
                sb_exec /usr/bin/python3 -m json.tool "$path" >/dev/null || fail "$path is not JSON"
                ;;
        esac
        echo "  $path"
done

step "teardown leaves nothing on the host"
sandbox_down
sandbox_leftovers || fail "the sandbox left things behind"
echo "PASS (boot ${SB_BOOT_MS} ms)"
