#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The package test: build the .deb (dpkg-buildpackage) and the .rpm (rpmbuild) from a copy of the source,
# lint both, compare their file lists, then install the .deb with apt into a sandboxed systemd that has no
# heal in it, and check what an operator relies on: nothing enabled or running after install; one timer
# enabled fires and audits; an enrolled worker is revived; the kill switch masks everything; remove + purge
# leave nothing behind. Usage: test-package.sh SOURCE_DIR. Needs root (skips with 77 otherwise).
# shellcheck disable=SC2016 # scripts for sb_sh are single-quoted on purpose
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "${1:-$here/../..}" && pwd)
export SB_WHAT="package test" # read by sandbox_require
# shellcheck source=../integration/sandbox.sh
. "$src/tests/integration/sandbox.sh"
# shellcheck source=../integration/check.sh
. "$src/tests/integration/check.sh"

MNT=/mnt/heal-pkg
WORKER=pkgtest-worker.service
step() { printf '\n== %s (%ss)\n' "$*" "$SECONDS"; }

# ---- can this machine run it? ----------------------------------------------------------------------

sandbox_require
for tool in dpkg-buildpackage dh lintian rpmbuild rpmlint scdoc mkfs.ext4 losetup git; do
        command -v "$tool" >/dev/null || {
                echo "SKIP: package test needs $tool (./dev deps installs it)"
                exit 77
        }
done

work=$(mktemp -d "${TMPDIR:-/var/tmp}/heal-package.XXXXXX")
lintian_pid=
cleanup_work() {
        [ -z "$lintian_pid" ] || kill "$lintian_pid" 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup_work EXIT

version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$src/meson.build" | head -n 1)
[ -n "$version" ] || {
        echo "FAIL: no version in $src/meson.build" >&2
        exit 1
}

# ---- build both packages from a copy (nothing is written into the checkout) --------------------------

step "copying the source (tracked and new files, not build dirs)"
copy_source() {
        local dst=$1
        mkdir -p "$dst"
        if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
                git -C "$src" ls-files -z --cached --others --exclude-standard |
                        (cd "$src" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
                        tar -C "$src" --null -T - -cf - | tar -C "$dst" -xf -
        else
                tar -C "$src" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$dst" -xf -
        fi
}
copy_source "$work/deb/heal"
mkdir -p "$work/rpm/SOURCES" "$work/rpm/tmp"
cp -a "$work/deb/heal" "$work/rpm/heal-$version"
tar -C "$work/rpm" -czf "$work/rpm/SOURCES/heal-$version.tar.gz" "heal-$version"

step "building the .deb and the .rpm (in parallel)"
(cd "$work/deb/heal" && DEB_BUILD_OPTIONS="parallel=2 nocheck noautodbgsym" dpkg-buildpackage -us -uc -b) \
        >"$work/deb.log" 2>&1 &
deb_pid=$!
rpm_rc=0
rpmbuild -bb --nodeps --define "_topdir $work/rpm" --define "_tmppath $work/rpm/tmp" \
        "$work/rpm/heal-$version/rpm/heal.spec" >"$work/rpm.log" 2>&1 || rpm_rc=$?
deb_rc=0
wait "$deb_pid" || deb_rc=$?
[ "$deb_rc" -eq 0 ] || {
        tail -n 40 "$work/deb.log" >&2
        echo "FAIL: dpkg-buildpackage exited with $deb_rc" >&2
        exit 1
}
[ "$rpm_rc" -eq 0 ] || {
        tail -n 40 "$work/rpm.log" >&2
        echo "FAIL: rpmbuild exited with $rpm_rc" >&2
        exit 1
}
deb=$(ls "$work"/deb/heal_"$version"_*.deb)
rpm=$(ls "$work"/rpm/RPMS/*/heal-"$version"-*.rpm)
pass "built $(basename "$deb") and $(basename "$rpm")"

step "rpmlint (lintian runs meanwhile; its verdict comes at the end)"
lintian --fail-on error --display-info "$work"/deb/heal_"$version"_*.changes >"$work/lintian.log" 2>&1 &
lintian_pid=$!
rpmlint_rc=0
rpmlint -r "$src/rpm/heal.rpmlintrc" "$rpm" >"$work/rpmlint.log" 2>&1 || rpmlint_rc=$?
grep -E '^[^ ]+: [EW]: |packages and' "$work/rpmlint.log" || true
if grep -q ': E: ' "$work/rpmlint.log" || [ "$rpmlint_rc" -ne 0 ]; then
        fail "rpmlint reports errors (exit $rpmlint_rc)"
else
        pass "rpmlint: no errors"
fi

step "the .rpm ships what the .deb ships"
# Files and symlinks only; /lib is /usr/lib (merged /usr), man pages compressed either way, the docs dir
# named with or without the version; packaging metadata (Debian's changelog, copyright and lintian
# overrides, RPM's build-id links) is each format's own.
normalise() {
        sed -e 's|^\./|/|' -e 's|^/lib/|/usr/lib/|' -e 's|\.gz$||' \
                -e "s|^/usr/share/doc/heal-$version/|/usr/share/doc/heal/|" |
                grep -v -e '^/usr/lib/\.build-id/' -e '^/usr/share/doc/heal/changelog' \
                        -e '^/usr/share/doc/heal/copyright$' -e '^/usr/share/lintian/overrides/heal$' | sort -u
}
dpkg-deb --fsys-tarfile "$deb" | tar -tvf - | awk '$1 !~ /^d/ { print $6 }' | normalise >"$work/deb.files"
rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpm" 2>/dev/null | awk '$1 !~ /^d/ { print $2 }' |
        normalise >"$work/rpm.files"
if diff -u "$work/deb.files" "$work/rpm.files"; then
        pass "same $(wc -l <"$work/deb.files") shipped paths in both packages"
else
        fail "the .deb and the .rpm ship different files (diff above: - deb only, + rpm only)"
fi
for f in /usr/lib/systemd/system-preset/90-heal.preset /usr/share/bash-completion/completions/healctl \
        /usr/share/man/man5/heal.policy.5 /usr/share/man/man7/heal.7 /usr/share/man/man8/healctl.8; do
        grep -qx "$f" "$work/deb.files" || fail "$f is not in the packages"
done

# ---- install into a sandbox without heal ------------------------------------------------------------

step "booting a sandbox with nothing of heal installed"
sandbox_up --no-install
trap 'sandbox_down; cleanup_work' EXIT
alive() {
        [ -d "/proc/$SB_PID1" ] || {
                echo "FAIL: the sandbox died" >&2
                exit 1
        }
}
if sb_sh 'command -v healctl || ls /lib/systemd/system/heal* /usr/lib/systemd/system/heal* 2>/dev/null' |
        grep -q .; then
        echo "FAIL: heal is already installed on the host; the package test needs a host without it" >&2
        exit 1
fi

step "apt-get install ./$(basename "$deb") (offline: every dependency is on the host image)"
sb_copy_in "$deb" "/root/$(basename "$deb")"
if sb_sh 'cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o Acquire::Languages=none ./"$1"' "$(basename "$deb")" >"$work/apt.log" 2>&1; then
        pass "apt-get installed the package"
else
        sed 's/^/    /' "$work/apt.log" >&2
        echo "FAIL: apt-get install failed" >&2
        exit 1
fi
expect_state=$(sb_exec dpkg-query -W -f='${Status}' heal)
if [ "$expect_state" = "install ok installed" ]; then
        pass "dpkg: $expect_state"
else
        fail "dpkg status: $expect_state"
fi
sb_exec dpkg-query -L heal | sort >"$work/installed.list"

step "nothing heal ships is enabled or running"
sb_exec systemctl list-unit-files 'heal*' --no-legend --plain >"$work/unit-files" || true
sed 's/^/    /' "$work/unit-files"
[ "$(wc -l <"$work/unit-files")" -ge 5 ] || fail "fewer unit files than expected"
if awk '$2 != "disabled" && $2 != "static" && $2 != "indirect" { bad = 1 } END { exit !bad }' "$work/unit-files"; then
        fail "a heal unit is enabled after install"
else
        pass "every heal unit file is disabled, static or indirect"
fi
active=$(sb_exec systemctl list-units 'heal*' --all --no-legend --plain --state=active,activating,reloading ||
        true)
if [ -z "$active" ]; then pass "no heal unit is active"; else fail "active after install: $active"; fi
if sb_exec test -f /usr/lib/systemd/system-preset/90-heal.preset; then
        pass "preset file installed"
else
        fail "no /usr/lib/systemd/system-preset/90-heal.preset"
fi
sb_exec systemctl preset heal-disk-reclaim.timer heal-disk-reclaim.path >/dev/null 2>&1 || true
state=$(sb_exec systemctl is-enabled heal-disk-reclaim.timer || true)
if [ "$state" = disabled ]; then
        pass "systemctl preset keeps heal-disk-reclaim.timer disabled"
else
        fail "after systemctl preset: heal-disk-reclaim.timer is $state"
fi
mode=$(sb_exec stat -c %a /var/lib/heal 2>/dev/null || echo missing)
if [ "$mode" = 700 ]; then
        pass "/var/lib/heal created by tmpfiles (0700)"
else
        fail "/var/lib/heal: $mode"
fi
if sb_exec journalctl --list-catalog 3a0f2b0c2ac447fa9aca98cc275b422f 2>/dev/null | grep -q heal; then
        pass "journal catalog updated (journalctl -x explains heal's records)"
else
        fail "heal's catalog is not in the catalog database"
fi
if sb_exec healctl policy check >/dev/null; then
        pass "healctl policy check: the shipped policy is valid"
else
        fail "healctl policy check failed"
fi
if sb_exec man -w heal.policy >/dev/null 2>&1; then
        pass "man heal.policy finds the page"
else
        fail "man -w heal.policy"
fi

# ---- one failure class, enabled the way README.md says -------------------------------------------------

step "a small full filesystem and a worker to enroll"
img=$SB_DIR/heal-pkg.img
truncate -s 16M "$img"
mkfs.ext4 -q -F -m 0 "$img"
loop=$(losetup -f --show "$img")
devno=$(cat "/sys/class/block/$(basename "$loop")/dev")
sb_sh 'mkdir -p "$1" && { [ -e "$2" ] || mknod "$2" b "${3%%:*}" "${3##*:}"; } && mount "$2" "$1"' \
        "$MNT" "$loop" "$devno"
losetup -d "$loop" # autoclear: the loop device goes with the sandbox's mount
sb_sh 'set -e; mkdir -p "$1/cache"; old=$(($(date +%s) - 10 * 86400))
        for i in 0 1 2; do dd if=/dev/zero of="$1/cache/old-$i.bin" bs=1M count=1 status=none; done
        touch -d "@$old" "$1"/cache/old-*.bin
        dd if=/dev/zero of="$1/filler" bs=1M status=none 2>/dev/null || true; sync' "$MNT"
sb_write "/etc/systemd/system/$WORKER" <<'EOF'
[Unit]
Description=package test worker
[Service]
ExecStart=/bin/sleep infinity
EOF
# The operator's policy: disk-pressure on the test filesystem only (shadow, as shipped), worker-dead live.
sb_write /etc/heal/policy.d/50-package-test.json <<EOF
{"version": 1,
 "classes": {
   "disk-pressure": {"mounts": ["$MNT"], "include_loop": true, "dwell_s": 0,
     "sources": [{"name": "pkg-cache", "root": "$MNT/cache", "patterns": ["*.bin"], "min_age_s": 86400,
                  "times": ["mtime"], "tier": "auto"}]},
   "worker-dead": {"mode": "live", "settle_s": 2}}}
EOF
if sb_exec healctl policy check >/dev/null; then
        pass "healctl policy check accepts the operator's policy"
else
        fail "healctl policy check rejects the test policy"
fi

step "systemctl enable --now heal-disk-reclaim.timer (first run 2 s after start)"
sb_write /etc/systemd/system/heal-disk-reclaim.timer.d/50-package-test.conf <<'EOF'
[Timer]
OnActiveSec=2s
RandomizedDelaySec=0
EOF
sb_exec systemctl daemon-reload
sb_exec systemctl enable --now heal-disk-reclaim.timer >/dev/null 2>&1
state=$(sb_exec systemctl is-enabled heal-disk-reclaim.timer || true)
if [ "$state" = enabled ]; then
        pass "heal-disk-reclaim.timer enabled"
else
        fail "heal-disk-reclaim.timer is $state"
fi
audited() { sb_journal HEAL_HEALER=disk-reclaim "HEAL_EVENT=$1" "HEAL_TARGET=$MNT" -o cat | grep -q .; }
if sb_wait_for 60 audited would-act; then
        pass "the timer fired: disk-reclaim audited would-act on $MNT (shadow mode)"
else
        fail "no would-act record of disk-reclaim on $MNT within 60 s"
        sb_journal -u heal-disk-reclaim.service -n 30 >&2 || true
fi
alive
for ev in detected confirmed; do
        if audited "$ev"; then pass "audit: HEAL_EVENT=$ev"; else fail "no $ev record"; fi
done
result=$(sb_exec systemctl show -P Result heal-disk-reclaim.service)
if [ "$result" = success ]; then
        pass "heal-disk-reclaim.service ran to success"
else
        fail "service result: $result"
fi
n=$(sb_sh 'ls "$1"/cache/old-*.bin | wc -l' "$MNT")
if [ "$n" = 3 ]; then
        pass "shadow mode removed nothing"
else
        fail "shadow mode removed files: $n of 3 left"
fi

step "healctl enroll $WORKER; kill it; heal revives it"
sb_exec systemctl start "$WORKER"
if sb_exec healctl enroll "$WORKER" >/dev/null; then pass "enrolled"; else fail "healctl enroll $WORKER"; fi
pid=$(sb_exec systemctl show -P MainPID "$WORKER")
sb_exec systemctl kill -s KILL "$WORKER"
revived() { sb_journal HEAL_HEALER=worker-reviver "HEAL_TARGET=$WORKER" HEAL_EVENT=verified -o cat | grep -q .; }
if sb_wait_for 60 revived; then
        newpid=$(sb_exec systemctl show -P MainPID "$WORKER")
        if [ "$(sb_exec systemctl is-active "$WORKER")" = active ] && [ "$newpid" != "$pid" ]; then
                pass "$WORKER revived (PID $pid -> $newpid), audited as verified"
        else
                fail "verified record, but $WORKER is not running a new process"
        fi
else
        fail "$WORKER was not revived within 60 s"
        sb_journal HEAL_TARGET="$WORKER" -o cat >&2 || true
fi
alive

step "the kill switch: healctl kill-switch on --persistent"
if sb_exec healctl kill-switch on --persistent >/dev/null; then
        pass "kill switch on"
else
        fail "healctl kill-switch on"
fi
rc=0
sb_exec healctl kill-switch status --quiet || rc=$?
if [ "$rc" = 10 ]; then
        pass "kill-switch status --quiet: 10 (on)"
else
        fail "kill-switch status --quiet: $rc"
fi
for u in heal.target heal-disk-reclaim.timer heal-disk-reclaim.service heal-worker-reviver@.service; do
        state=$(sb_exec systemctl is-enabled "$u" 2>/dev/null || true)
        [ "$state" = masked ] || fail "$u is $state, not masked"
done
rc=0
sb_exec systemctl start heal-disk-reclaim.service >/dev/null 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then pass "a masked helper cannot be started"; else fail "a masked helper started"; fi

# ---- remove, then purge ----------------------------------------------------------------------------

step "apt-get remove heal"
sb_exec env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q heal >"$work/remove.log" 2>&1 ||
        fail "apt-get remove heal (log: $(tail -n 5 "$work/remove.log"))"
active=$(sb_exec systemctl list-units 'heal*' --all --no-legend --plain --state=active,activating || true)
if [ -z "$active" ]; then
        pass "no heal unit active after remove"
else
        fail "still active after remove: $active"
fi
if sb_exec test -d /var/lib/heal; then
        pass "remove keeps /var/lib/heal (purge removes it)"
else
        fail "remove dropped /var/lib/heal"
fi

step "dpkg --purge heal"
# The operator's own files go first, as an operator would remove them.
sb_sh 'rm -f /etc/heal/policy.d/50-package-test.json && rmdir /etc/heal/policy.d /etc/heal
        rm -rf /etc/systemd/system/heal-disk-reclaim.timer.d'
sb_exec dpkg --purge heal >"$work/purge.log" 2>&1 || fail "dpkg --purge heal (log: $(cat "$work/purge.log"))"
if [ -z "$(sb_exec dpkg-query -W -f='${Status}' heal 2>/dev/null || true)" ]; then
        pass "dpkg forgot heal"
else
        fail "dpkg still knows heal"
fi
left=$(sb_sh 'while read -r f; do if [ ! -d "$f" ] && { [ -e "$f" ] || [ -L "$f" ]; }; then echo "$f"; fi; done' \
        <"$work/installed.list")
if [ -z "$left" ]; then pass "no file of dpkg -L heal is left"; else fail "left behind: $left"; fi
left=$(sb_sh 'ls -d /var/lib/heal /run/heal /etc/heal /usr/libexec/heal /usr/share/heal \
        /etc/systemd/system/heal* /etc/systemd/system/*.wants/heal* /run/systemd/system/heal* \
        /lib/systemd/system/heal* /usr/lib/systemd/system/heal* \
        /etc/systemd/system/*.d/50-heal-reviver.conf /var/lib/systemd/deb-systemd-helper-*/*heal* 2>/dev/null; true')
if [ -z "$left" ]; then
        pass "no state, unit file, mask, enable link or enrollment drop-in is left"
else
        fail "left behind: $left"
fi
# Captured first: under pipefail, "| grep -q" can fail by SIGPIPE after a match and pass this in silence.
catalog=$(sb_exec journalctl --list-catalog 3a0f2b0c2ac447fa9aca98cc275b422f 2>/dev/null || true)
if grep -q heal <<<"$catalog"; then
        fail "heal's catalog entries are still in the catalog database"
else
        pass "catalog database updated on removal"
fi
if [ -z "$(sb_exec systemctl list-unit-files 'heal*' --no-legend || true)" ]; then
        pass "systemd knows no heal unit"
else
        fail "systemd still lists heal unit files"
fi

sandbox_down
trap cleanup_work EXIT
if ! sandbox_leftovers; then
        fail "the sandbox left something on the host"
fi

step "lintian"
lintian_rc=0
wait "$lintian_pid" || lintian_rc=$?
lintian_pid=
grep -v 'running with root privileges' "$work/lintian.log" || true
if [ "$lintian_rc" -eq 0 ]; then pass "lintian: no errors"; else fail "lintian exited with $lintian_rc"; fi

echo
if [ "$failures" -gt 0 ]; then
        echo "$failures check(s) failed (${SECONDS}s)" >&2
        exit 1
fi
echo "all package checks passed (${SECONDS}s)"
