# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash disable=SC2016,SC2034
# (SC2016: scripts for sb_sh are single-quoted on purpose; SC2034: SB_* state is for the sourcing test)
# A throwaway systemd for integration tests: heal is installed into an overlay of / whose upper layer is a
# tmpfs, and that tree is booted with systemd-nspawn. Nothing written inside reaches the host's disk.
#
# Source this file, then:
#   sandbox_up BUILD_DIR        boot a sandbox with BUILD_DIR's install in it (skips the test, exit 77,
#                               when not root or systemd-nspawn/nsenter/overlayfs are missing)
#   sandbox_up --no-install     the same with nothing installed (the package test installs its .deb)
#   sb_exec CMD...              run CMD inside (all namespaces), return its exit status
#   sb_sh 'SCRIPT' [ARGS...]    run a shell script inside
#   sb_write PATH [MODE]        write stdin to PATH inside (parents created), default mode 0644
#   sb_copy_in SRC DST          copy a host file or directory to DST inside
#   sb_wait_for TIMEOUT CMD...  run CMD (on the host; use sb_exec for inside) until it succeeds; 1 on timeout
#   sb_journal_json ARGS...     journalctl -o json ARGS... inside, after the journal has caught up
#   sb_journal ARGS...          journalctl ARGS... inside (plain text), after the journal has caught up
#   sandbox_down                power off and remove everything; idempotent, also run by the EXIT/INT/TERM traps
#   sandbox_leftovers           after sandbox_down: print what the last sandbox left on the host, 1 if anything
#   sandbox_sweep               remove sandboxes whose test died without teardown (SIGKILL); sandbox_up runs it
#
# State after sandbox_up: SB_NAME, SB_DIR (work dir, a tmpfs), SB_ROOT (the container's /), SB_PID1 (the
# container's systemd, as the host sees it), SB_NSPAWN_PID, SB_STATE (running or degraded), SB_BOOT_MS (nspawn
# start to running) and SB_UP_MS (all of sandbox_up: mounts, install, boot).
#
# Never boot systemd on the host's own root: only this overlay is booted, and only through nspawn.

SB_RUN_DIR=${SB_RUN_DIR:-/run/heal-sandbox}
SB_TMPFS_SIZE=${SB_TMPFS_SIZE:-2G}
SB_BOOT_TIMEOUT=${SB_BOOT_TIMEOUT:-60}
SB_WHAT=${SB_WHAT:-integration test} # what sandbox_require names when it skips
SB_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Units that the host has enabled but that a test container must not run: databases and monitors that
# would start from /etc (slow, and not ours to test), hardware and clock services, login prompts, and the
# /var/lib/machines loopback image. Add to it with SB_MASK_EXTRA="a.service b.timer".
SB_MASK=(
        postgresql.service redis-server.service redis.service monit.service
        systemd-timesyncd.service systemd-pstore.service systemd-networkd-wait-online.service
        getty@tty1.service console-getty.service serial-getty@console.service
        var-lib-machines.mount machines.target
        apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer man-db.timer
        e2scrub_all.timer e2scrub_reap.service fstrim.timer logrotate.timer
)

_sb_log() { printf 'sandbox: %s\n' "$*" >&2; }

# Exit 77 (meson's "skipped") with the reason when this machine cannot host a sandbox.
sandbox_require() {
        local why=""
        if [ "$(id -u)" -ne 0 ]; then
                why="needs root (mounts an overlay and runs systemd-nspawn)"
        elif ! command -v systemd-nspawn >/dev/null; then
                why="systemd-nspawn not found (Debian package systemd-container)"
        elif ! command -v nsenter >/dev/null; then
                why="nsenter not found (Debian package util-linux)"
        elif ! grep -qw overlay /proc/filesystems && ! modprobe -q overlay 2>/dev/null; then
                why="the kernel has no overlayfs"
        elif [ ! -x /usr/lib/systemd/systemd ] && [ ! -x /lib/systemd/systemd ]; then
                why="systemd is not installed in / (it is what the sandbox boots)"
        fi
        if [ -n "$why" ]; then
                echo "SKIP: ${SB_WHAT:-integration test} $why"
                exit 77
        fi
}

# Is the host itself run by systemd? Then nspawn gets its cgroup as a scope from it; otherwise we carve
# out a private cgroup per sandbox by hand (nspawn would otherwise put "payload" and "supervisor" at the
# root of every hierarchy, shared by all sandboxes and left behind after them).
_sb_host_has_systemd() { [ -d /run/systemd/system ]; }

# The cgroup hierarchies nspawn uses: the unified one (pure v2, or /unified in hybrid) and name=systemd.
_sb_hierarchies() {
        local fs
        fs=$(stat -f -c %T /sys/fs/cgroup 2>/dev/null) || return 0
        if [ "$fs" = cgroup2fs ]; then
                echo /sys/fs/cgroup
                return 0
        fi
        [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] && echo /sys/fs/cgroup/unified
        [ "$(stat -f -c %T /sys/fs/cgroup/systemd 2>/dev/null)" = cgroupfs ] && echo /sys/fs/cgroup/systemd
        return 0
}

_sb_mask_units() {
        local u
        mkdir -p "$SB_ROOT/etc/systemd/system"
        # shellcheck disable=SC2206 # word splitting of the extra list is the point
        for u in "${SB_MASK[@]}" ${SB_MASK_EXTRA:-}; do
                ln -sfn /dev/null "$SB_ROOT/etc/systemd/system/$u"
        done
}

# The container's PID 1 is the child of nspawn that is PID 1 in its own PID namespace and runs systemd.
_sb_find_pid1() {
        local c nspid
        for c in $(ps --ppid "$SB_NSPAWN_PID" -o pid= 2>/dev/null); do
                nspid=$(awk '/^NSpid:/ { print $NF }' "/proc/$c/status" 2>/dev/null) || continue
                [ "$nspid" = 1 ] || continue
                [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ] || continue
                echo "$c"
                return 0
        done
        return 1
}

_sb_now_ms() { echo $(($(date +%s%N) / 1000000)); }

_sb_console_tail() {
        [ -f "${SB_DIR:-}/console.log" ] || return 0
        _sb_log "last lines of the container console:"
        tail -n 30 "$SB_DIR/console.log" | sed 's/\x1b\[[0-9;]*m//g; s/^/    /' >&2
}

_sb_launch() {
        local -a args=(
                -q -D "$SB_ROOT" -M "$SB_NAME" -b
                --register=no           # not a machine for machined: nothing outside the test needs to see it
                --private-network       # loopback only: tests need no network and must not touch the host's
                --link-journal=no       # the journal stays in the overlay
                --console=read-only     # boot output to console.log, no TTY needed (meson gives none)
                --settings=no           # ignore any .nspawn file on the host
        )
        _sb_host_has_systemd || args+=(--keep-unit) # no host systemd to hand us a scope: use our own cgroup

        # The lock would be a file on the host's /run; the overlay is ours alone anyway.
        (
                if ! _sb_host_has_systemd; then
                        local h
                        for h in "${SB_CGROUPS[@]}"; do
                                echo "$BASHPID" >"$h/cgroup.procs" || exit 1
                        done
                fi
                exec env SYSTEMD_NSPAWN_LOCK=0 systemd-nspawn "${args[@]}" \
                        </dev/null >"$SB_DIR/console.log" 2>&1
        ) &
        SB_NSPAWN_PID=$!
}

sandbox_up() {
        local build_dir=${1:?usage: sandbox_up BUILD_DIR|--no-install}
        local t0 t_boot h d state

        sandbox_require
        sandbox_sweep
        if [ -n "${SB_DIR:-}" ]; then
                _sb_log "a sandbox is already up ($SB_NAME); call sandbox_down first"
                return 1
        fi
        if [ "$build_dir" != --no-install ] && [ ! -d "$build_dir" ]; then
                _sb_log "no build dir $build_dir"
                return 1
        fi
        [ "$build_dir" = --no-install ] || build_dir=$(cd "$build_dir" && pwd)

        # Teardown is armed before anything exists, so every exit path below cleans up.
        trap sandbox_down EXIT
        trap 'sandbox_down; exit 130' INT
        trap 'sandbox_down; exit 143' TERM

        SB_NAME=heal-test-$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
        SB_DIR=$SB_RUN_DIR/$SB_NAME
        SB_ROOT=$SB_DIR/merged
        SB_CGROUPS=()
        SB_NSPAWN_PID=
        SB_PID1=
        SB_CREATED_DIRS=()
        for d in /run/systemd /run/systemd/nspawn /run/systemd/nspawn/propagate "$SB_RUN_DIR"; do
                [ -e "$d" ] || SB_CREATED_DIRS=("$d" "${SB_CREATED_DIRS[@]}")
        done
        t0=$(_sb_now_ms)

        # A size-limited tmpfs holds the overlay's upper and work dirs, so writes inside cannot fill the
        # host's disk; mode 0700 keeps other host users out of it.
        mkdir -p "$SB_DIR" || return 1
        mount -n -t tmpfs -o "size=$SB_TMPFS_SIZE,mode=0700" heal-sandbox "$SB_DIR" || return 1
        echo "$$" >"$SB_DIR/owner"
        mkdir "$SB_DIR/upper" "$SB_DIR/work" "$SB_ROOT" || return 1
        mount -n -t overlay -o "lowerdir=/,upperdir=$SB_DIR/upper,workdir=$SB_DIR/work" heal-sandbox "$SB_ROOT" ||
                return 1

        _sb_mask_units
        # Its own machine id: the container's journal and any per-machine state must not pose as the host's.
        systemd-id128 new >"$SB_ROOT/etc/machine-id" || return 1

        if [ "$build_dir" != --no-install ] &&
                ! meson install -C "$build_dir" --destdir "$SB_ROOT" --no-rebuild --quiet >"$SB_DIR/install.log" 2>&1; then
                _sb_log "meson install into the sandbox failed:"
                sed 's/^/    /' "$SB_DIR/install.log" >&2
                return 1
        fi

        if ! _sb_host_has_systemd; then
                while read -r h; do
                        mkdir "$h/$SB_NAME" || return 1
                        SB_CGROUPS+=("$h/$SB_NAME")
                done < <(_sb_hierarchies)
        fi

        t_boot=$(_sb_now_ms)
        _sb_launch
        if ! _sb_wait_pid1; then
                _sb_log "container $SB_NAME did not start"
                _sb_console_tail
                return 1
        fi

        # is-system-running --wait blocks until boot is done, but only once PID 1 listens on its socket.
        state=$(_sb_wait_booted) || true
        case "$state" in
        running | degraded) ;;
        *)
                _sb_log "container $SB_NAME did not boot within ${SB_BOOT_TIMEOUT}s (state: ${state:-unknown})"
                _sb_console_tail
                return 1
                ;;
        esac
        SB_STATE=$state
        SB_BOOT_MS=$(($(_sb_now_ms) - t_boot))
        SB_UP_MS=$(($(_sb_now_ms) - t0))
        if [ "$state" = degraded ]; then
                _sb_log "booted degraded; failed units:"
                sb_exec systemctl --failed --no-legend --plain >&2 || true
        fi
        _sb_log "$SB_NAME up in ${SB_UP_MS} ms (boot ${SB_BOOT_MS} ms, $state), PID 1 = $SB_PID1"
        return 0
}

_sb_wait_pid1() {
        local tenths=150
        while [ "$tenths" -gt 0 ] && _sb_alive "$SB_NSPAWN_PID"; do
                SB_PID1=$(_sb_find_pid1) && return 0
                sleep 0.1
                tenths=$((tenths - 1))
        done
        SB_PID1=
        return 1
}

_sb_wait_booted() {
        local deadline state
        deadline=$(($(date +%s) + SB_BOOT_TIMEOUT))
        while [ "$(date +%s)" -lt "$deadline" ]; do
                [ -d "/proc/$SB_PID1" ] || break
                state=$(timeout "$((deadline - $(date +%s) + 1))" \
                        nsenter -t "$SB_PID1" -a -- env -i PATH="$SB_PATH" \
                        systemctl is-system-running --wait 2>/dev/null) || true
                case "$state" in
                running | degraded | maintenance | stopping)
                        echo "$state"
                        return 0
                        ;;
                esac
                sleep 0.1
        done
        echo "${state:-}"
        return 1
}

sb_exec() {
        if [ -z "${SB_PID1:-}" ]; then
                _sb_log "sb_exec: no sandbox is up"
                return 125
        fi
        nsenter -t "$SB_PID1" -a -- env -i PATH="$SB_PATH" HOME=/root LANG=C.UTF-8 TERM=dumb \
                SYSTEMD_PAGER=cat SYSTEMD_COLORS=0 SYSTEMD_LOG_COLOR=0 "$@"
}

sb_sh() {
        local script=${1:?usage: sb_sh SCRIPT [ARGS...]}
        shift
        sb_exec sh -c "$script" sh "$@"
}

sb_write() {
        local path=${1:?usage: sb_write PATH [MODE] <CONTENT}
        local mode=${2:-0644}
        sb_sh 'mkdir -p "$(dirname "$1")" && cat >"$1" && chmod "$2" "$1"' "$path" "$mode"
}

# Through the container (not $SB_ROOT), so paths under its own /run and /tmp work too.
sb_copy_in() {
        local src=${1:?usage: sb_copy_in SRC DST} dst=${2:?usage: sb_copy_in SRC DST}
        if [ -d "$src" ]; then
                sb_sh 'mkdir -p "$1"' "$dst" || return 1
                tar -C "$src" -cf - . | sb_exec tar -C "$dst" -xf -
        else
                local mode
                mode=$(stat -c %a "$src") || return 1
                sb_write "$dst" "$mode" <"$src"
        fi
}

sb_wait_for() {
        local timeout=${1:?usage: sb_wait_for TIMEOUT CMD...}
        shift
        local deadline=$(($(_sb_now_ms) + timeout * 1000))
        while :; do
                "$@" && return 0
                [ "$(_sb_now_ms)" -lt "$deadline" ] || return 1
                sleep 0.1
        done
}

sb_journal() {
        sb_exec journalctl --sync >/dev/null 2>&1 || true
        sb_exec journalctl --no-pager -q "$@"
}

sb_journal_json() {
        sb_journal -o json "$@"
}

_sb_alive() { [ -n "$1" ] && [ -d "/proc/$1" ]; }

_sb_wait_gone() {
        local pid=$1 tenths=$2
        while _sb_alive "$pid" && [ "$tenths" -gt 0 ]; do
                sleep 0.1
                tenths=$((tenths - 1))
        done
        ! _sb_alive "$pid"
}

_sb_stop_container() {
        local pid=$SB_NSPAWN_PID
        _sb_alive "$pid" || return 0
        # nspawn turns SIGTERM into SIGRTMIN+3 for the container's systemd: a clean halt.
        kill -TERM "$pid" 2>/dev/null || true
        _sb_wait_gone "$pid" 150 && return 0
        _sb_log "$SB_NAME did not halt within 15 s; killing it"
        # Killing a PID namespace's init kills everything in it.
        if _sb_alive "${SB_PID1:-}"; then
                kill -KILL "$SB_PID1" 2>/dev/null || true
        fi
        kill -KILL "$pid" 2>/dev/null || true
        _sb_wait_gone "$pid" 50 || _sb_log "systemd-nspawn $pid survived SIGKILL"
        return 0
}

_sb_remove_cgroups() {
        local h
        for h in "${SB_CGROUPS[@]}"; do
                [ -d "$h" ] || continue
                # Anything still in there (it should not be) is ours to end.
                find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do
                        kill -KILL "$pid" 2>/dev/null || true
                done
                for _ in 1 2 3 4 5 6 7 8 9 10; do
                        find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
                        [ -d "$h" ] || break
                        sleep 0.2
                done
                [ -d "$h" ] && _sb_log "could not remove cgroup $h"
        done
        return 0
}

_sb_unmount() {
        local m
        for m in "$SB_ROOT" "$SB_DIR"; do
                mountpoint -q "$m" 2>/dev/null || continue
                umount -n "$m" 2>/dev/null || {
                        sleep 0.5
                        umount -n "$m" 2>/dev/null
                } || {
                        _sb_log "$m busy; detaching it lazily"
                        umount -n -l "$m" || true
                }
        done
        return 0
}

# Every step runs whatever the one before it did: a half-torn-down sandbox is the worst outcome.
sandbox_down() {
        local d
        [ -n "${SB_DIR:-}" ] || return 0
        trap '' INT TERM # a second Ctrl-C must not interrupt the teardown halfway
        _sb_stop_container || true
        _sb_remove_cgroups || true
        _sb_unmount || true
        rmdir "$SB_DIR" 2>/dev/null || _sb_log "could not remove $SB_DIR"
        rmdir "/run/systemd/nspawn/propagate/$SB_NAME" 2>/dev/null || true
        # Only the directories this sandbox created, and only when no other sandbox is using them.
        for d in "${SB_CREATED_DIRS[@]}"; do
                rmdir "$d" 2>/dev/null || true
        done
        SB_LAST_NAME=$SB_NAME
        SB_LAST_DIR=$SB_DIR
        SB_LAST_NSPAWN_PID=$SB_NSPAWN_PID
        SB_LAST_CGROUPS=("${SB_CGROUPS[@]}")
        SB_NAME='' SB_DIR='' SB_ROOT='' SB_PID1='' SB_NSPAWN_PID='' SB_CGROUPS=() SB_CREATED_DIRS=()
        trap - EXIT INT TERM
        return 0
}

# A test killed with SIGKILL runs no trap. The next sandbox_up removes what such a test left: every
# sandbox whose owning shell is gone.
sandbox_sweep() {
        local dir name owner h pid
        for dir in "$SB_RUN_DIR"/heal-test-*; do
                [ -d "$dir" ] || continue
                name=${dir##*/}
                owner=$(cat "$dir/owner" 2>/dev/null) || owner=
                [ -n "$owner" ] && [ -d "/proc/$owner" ] && continue
                # No owner yet: another test may be between mkdir and mount right now.
                [ -z "$owner" ] && [ $(($(date +%s) - $(stat -c %Y "$dir"))) -lt 30 ] && continue
                _sb_log "removing $name, left behind by a test that is gone"
                for pid in $(pgrep -f -- "systemd-nspawn .*-M $name "); do
                        kill -KILL "$pid" 2>/dev/null || true
                done
                while read -r h; do
                        [ -d "$h/$name" ] || continue
                        find "$h/$name" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do
                                kill -KILL "$pid" 2>/dev/null || true
                        done
                        sleep 0.2
                        find "$h/$name" -depth -type d -exec rmdir {} + 2>/dev/null || true
                done < <(_sb_hierarchies)
                umount -n "$dir/merged" 2>/dev/null || umount -n -l "$dir/merged" 2>/dev/null || true
                umount -n "$dir" 2>/dev/null || umount -n -l "$dir" 2>/dev/null || true
                rmdir "$dir" 2>/dev/null || true
        done
        for dir in /run/systemd/nspawn/propagate/heal-test-*; do
                [ -d "$dir" ] || continue
                pgrep -f -- "systemd-nspawn .*-M ${dir##*/} " >/dev/null || rmdir "$dir" 2>/dev/null || true
        done
        # Empty parents are nobody's: nspawn and sandbox_up create them again when needed.
        rmdir "$SB_RUN_DIR" /run/systemd/nspawn/propagate /run/systemd/nspawn 2>/dev/null || true
        return 0
}

sandbox_leftovers() {
        local bad=0 h mounts
        [ -n "${SB_LAST_NAME:-}" ] || {
                _sb_log "sandbox_leftovers: no sandbox was torn down"
                return 1
        }
        # Captured first: under pipefail, "| grep -q" can fail by SIGPIPE after a match.
        mounts=$(findmnt -rn -o TARGET | grep -F "$SB_LAST_DIR" || true)
        if [ -n "$mounts" ]; then
                echo "leftover mounts: $(tr '\n' ' ' <<<"$mounts")"
                bad=1
        fi
        [ -e "$SB_LAST_DIR" ] && { echo "leftover dir $SB_LAST_DIR"; bad=1; }
        _sb_alive "$SB_LAST_NSPAWN_PID" && { echo "leftover systemd-nspawn $SB_LAST_NSPAWN_PID"; bad=1; }
        for h in "${SB_LAST_CGROUPS[@]}"; do
                [ -e "$h" ] && { echo "leftover cgroup $h"; bad=1; }
        done
        if pgrep -f -- "-M $SB_LAST_NAME" >/dev/null; then
                echo "leftover processes: $(pgrep -a -f -- "-M $SB_LAST_NAME" | tr '\n' ' ')"
                bad=1
        fi
        [ -e "/run/systemd/nspawn/propagate/$SB_LAST_NAME" ] && { echo "leftover nspawn propagate dir"; bad=1; }
        return "$bad"
}
