#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# disk-reclaim against systemd-tmpfiles --clean, find -delete and a bare
# unlinkat loop (the floor), each on a fresh identical tree of small old files,
# on a tmpfs and on an ext4 loop image. Needs root (mounts); cleans up always.
# Bare loops show what keeping the issue's safety rules costs by itself here,
# with heal's own economies (inode order within a directory, removed files'
# fds closed by close_range() in runs) but none of its planning or accounting:
# "rules" does the per-file syscalls heal does (statx, open O_NOFOLLOW, flock,
# statx of the fd, unlinkat with the lock held); "rulesmin" the same without
# the statx() before open(); "statwalk" only statx()es every file, what an
# oldest-first plan must do at least. The last two run again with one process
# per CPU splitting the directories ("-par"): the bounds for heal, which walks
# and removes on one thread per CPU (policy key workers, at most 4).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$top/build}
driver=$BUILD_DIR/tests/bench/bench-disk-reclaim
N=${BENCH_DISK_FILES:-1000000}
PER_DIR=${BENCH_DISK_PER_DIR:-1000}
WORKDIR=${BENCH_DISK_WORKDIR:-/var/tmp}
FILESYSTEMS=${BENCH_DISK_FS:-tmpfs ext4}
CPUS=$(nproc)

if [ "$(id -u)" -ne 0 ]; then
        echo "bench-disk: skipped, needs root for the tmpfs and loop mounts"
        exit 0
fi
[ -x "$driver" ] || { echo "bench-disk: $driver not built" >&2; exit 1; }
for tool in systemd-tmpfiles find mkfs.ext4 losetup; do
        command -v "$tool" >/dev/null || { echo "bench-disk: $tool missing" >&2; exit 1; }
done

base=$(mktemp -d "$WORKDIR/heal-bench-disk.XXXXXX")
mnt=$base/mnt
img=$base/ext4.img
loopdev=
mkdir "$mnt"

cleanup() {
        mountpoint -q "$mnt" && umount "$mnt" || true
        [ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null || true
        rm -rf -- "$base"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dirs=$(( (N + PER_DIR - 1) / PER_DIR ))
inodes=$(( N + dirs + 1000 ))

# A fresh empty filesystem of @1 on $mnt.
fresh_fs() {
        mountpoint -q "$mnt" && umount "$mnt"
        case $1 in
        tmpfs)
                mount -t tmpfs -o "size=$(( N / 1024 * 5 + 256 ))m,nr_inodes=$inodes" heal-bench "$mnt" ;;
        ext4)
                [ -n "$loopdev" ] && { losetup -d "$loopdev"; loopdev=; }
                rm -f "$img"
                truncate -s "$(( N / 1024 * 6 + 512 ))M" "$img"
                mkfs.ext4 -q -F -N "$inodes" -E lazy_itable_init=0,lazy_journal_init=0 "$img"
                loopdev=$(losetup --find --show "$img")
                mount "$loopdev" "$mnt" ;;
        esac
}

declare -A secs rss left

# run FS NAME CMD...: fresh fs, fresh tree, then time CMD on it.
run() {
        local fs=$1 name=$2
        shift 2
        fresh_fs "$fs"
        "$driver" mktree "$mnt/tree" "$N" "$PER_DIR" 1
        sync
        local out t0 t1
        t0=$(date +%s%N)
        out=$("$@")
        t1=$(date +%s%N)
        secs[$fs,$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
        rss[$fs,$name]=$(sed -n 's/.*peak_rss_kib=\([0-9]*\).*/\1/p' <<<"$out")
        left[$fs,$name]=$(find "$mnt/tree" -type f | wc -l)
        printf '  %-12s %8ss  files left %7s  %s\n' "$name" "${secs[$fs,$name]}" "${left[$fs,$name]}" "$out" >&2
}

conf=$base/tmpfiles-bench.conf
for fs in $FILESYSTEMS; do
        echo "== $fs: $N files of 1 byte, $PER_DIR per directory, 10 days old" >&2
        # Only this file: never the host's tmpfiles.d. 'e' ages the contents, by mtime.
        echo "e $mnt/tree - - - mM:1d" >"$conf"
        run "$fs" floor "$driver" floor "$mnt/tree"
        run "$fs" heal "$driver" heal "$mnt/tree" 86400 all
        run "$fs" tmpfiles systemd-tmpfiles --clean "$conf"
        run "$fs" find find "$mnt/tree" -type f -mtime +1 -delete
        run "$fs" rules "$driver" rules "$mnt/tree"
        run "$fs" rulesmin "$driver" rulesmin "$mnt/tree"
        run "$fs" statwalk "$driver" statwalk "$mnt/tree"
        run "$fs" rulesmin-par "$driver" rulesmin "$mnt/tree" "$CPUS"
        run "$fs" statwalk-par "$driver" statwalk "$mnt/tree" "$CPUS"
        # The target case: free what 10% of the files take, oldest first.
        fresh_fs "$fs"
        "$driver" mktree "$mnt/probe" 1 1 1
        per_file=$(stat -c '%b * %B' "$mnt/probe/d00000/f0000000")
        need=$(( N / 10 * per_file ))
        run "$fs" heal-10% "$driver" heal "$mnt/tree" 86400 "$need"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v != "-" && v <= t) ? "ok" : "MISSED" }'; }

echo
printf '%-6s %-12s %9s %12s %10s %12s\n' fs run seconds vs-tmpfiles vs-floor peak-rss-MiB
for fs in $FILESYSTEMS; do
        for name in floor heal tmpfiles find rules rulesmin statwalk rulesmin-par statwalk-par heal-10%; do
                r=${rss[$fs,$name]:-}
                printf '%-6s %-12s %9s %12s %10s %12s\n' "$fs" "$name" "${secs[$fs,$name]}" \
                        "$(ratio "${secs[$fs,$name]}" "${secs[$fs,tmpfiles]}")" \
                        "$(ratio "${secs[$fs,$name]}" "${secs[$fs,floor]}")" \
                        "${r:+$(awk -v k="$r" 'BEGIN { printf "%.1f", k / 1024 }')}"
        done
done

echo
echo "targets:"
for fs in $FILESYSTEMS; do
        v=$(ratio "${secs[$fs,heal]}" "${secs[$fs,tmpfiles]}")
        echo "  $fs heal all <= 1.0x tmpfiles: $v $(verdict "$v" 1.0)"
        v=$(ratio "${secs[$fs,heal-10%]}" "${secs[$fs,tmpfiles]}")
        echo "  $fs heal 10% target <= 0.2x tmpfiles: $v $(verdict "$v" 0.2)"
        v=$(awk -v k="${rss[$fs,heal-10%]}" 'BEGIN { printf "%.1f", k / 1024 }')
        echo "  $fs heal 10% target peak RSS <= 32 MiB: $v $(verdict "$v" 32)"
        [ "${left[$fs,heal]}" -eq 0 ] && [ "${left[$fs,heal-10%]}" -eq $(( N - N / 10 )) ] ||
                echo "  $fs: UNEXPECTED files left (heal ${left[$fs,heal]}, heal-10% ${left[$fs,heal-10%]})"
done
v=$(ratio "${secs[tmpfs,heal]:-0}" "${secs[tmpfs,floor]:-0}")
[[ " $FILESYSTEMS " == *" tmpfs "* ]] && echo "  tmpfs heal all <= 1.2x floor: $v $(verdict "$v" 1.2)"

# What the safety rules alone cost on this machine: a target below these loops
# is out of reach for a deleter keeping them on as many CPUs.
echo
echo "bounds (bare loops keeping the safety rules, no planning; below them a target is out of reach on as many CPUs):"
for fs in $FILESYSTEMS; do
        echo "  $fs rules loop: $(ratio "${secs[$fs,rules]}" "${secs[$fs,tmpfiles]}")x tmpfiles," \
                "$(ratio "${secs[$fs,rules]}" "${secs[$fs,floor]}")x floor; heal all is" \
                "$(ratio "${secs[$fs,heal]}" "${secs[$fs,rules]}")x the rules loop"
        echo "  $fs rulesmin loop (no statx before open): $(ratio "${secs[$fs,rulesmin]}" "${secs[$fs,tmpfiles]}")x tmpfiles," \
                "$(ratio "${secs[$fs,rulesmin]}" "${secs[$fs,floor]}")x floor; on $CPUS CPUs" \
                "$(ratio "${secs[$fs,rulesmin-par]}" "${secs[$fs,tmpfiles]}")x tmpfiles," \
                "$(ratio "${secs[$fs,rulesmin-par]}" "${secs[$fs,floor]}")x floor"
        b=$(awk -v w="${secs[$fs,statwalk-par]}" -v r="${secs[$fs,rulesmin-par]}" 'BEGIN { printf "%.2f", w + r }')
        echo "  $fs everything eligible on $CPUS CPUs (statx of every file, then the rulesmin loop):" \
                "$(ratio "$b" "${secs[$fs,tmpfiles]}")x tmpfiles, $(ratio "$b" "${secs[$fs,floor]}")x floor;" \
                "heal all is $(ratio "${secs[$fs,heal]}" "$b")x that"
        b=$(awk -v w="${secs[$fs,statwalk]}" -v r="${secs[$fs,rules]}" 'BEGIN { printf "%.2f", w + r / 10 }')
        echo "  $fs 10% target: statx of every file $(ratio "${secs[$fs,statwalk]}" "${secs[$fs,tmpfiles]}")x tmpfiles;" \
                "with the rules loop on 10% of the files $(ratio "$b" "${secs[$fs,tmpfiles]}")x tmpfiles;" \
                "heal-10% is $(ratio "${secs[$fs,heal-10%]}" "$b")x that"
        b=$(awk -v w="${secs[$fs,statwalk-par]}" -v r="${secs[$fs,rulesmin-par]}" 'BEGIN { printf "%.2f", w + r / 10 }')
        echo "  $fs 10% target on $CPUS CPUs, rulesmin: $(ratio "$b" "${secs[$fs,tmpfiles]}")x tmpfiles at best;" \
                "heal-10% is $(ratio "${secs[$fs,heal-10%]}" "$b")x that"
done
exit 0
