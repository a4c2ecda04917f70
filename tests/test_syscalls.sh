#!/usr/bin/env bash
# POSIX system calls on a mounted docs/ folder: mounts a fresh store (with
# -o allow_other, so that a check run as uid 65534 gets in), runs
# test_syscalls MNT/docs STORE/docs, and unmounts, also when it fails.
# No model is needed: SEEKFS_MODELS points at an empty folder, so the
# daemon starts without a generator or an embedder (BM25 only).
# Needs /dev/fuse and root (or fusermount3; the other-user check then skips).
set -euo pipefail
bin=${SEEKFS_BIN:?}
prog=${SYSCALLS_BIN:-${SEEKFS_BUILD:?}/tests/test_syscalls}
[ -x "$prog" ] || { echo "FAIL: $prog not built (cmake --build build --target test_syscalls)" >&2; exit 1; }
[ -e /dev/fuse ] || { echo "FAIL: no /dev/fuse: this machine cannot mount FUSE filesystems" >&2; exit 1; }
tmp=$(mktemp -d)
mnt=$tmp/mnt store=$tmp/store
mkdir -p "$mnt" "$store" "$tmp/nomodels"
chmod 755 "$tmp" # the check run as another user walks through it
cleanup() {
	if mountpoint -q "$mnt"; then
		"$bin" umount --store "$store" "$mnt" >/dev/null 2>&1 || fusermount3 -u "$mnt" 2>/dev/null ||
			umount -l "$mnt"
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# The soft limit of open files a Debian login has (1024): the daemon holds a
# descriptor per inode the kernel knows, and readdir's 5000 names need more.
(ulimit -Sn 1024 && SEEKFS_MODELS=$tmp/nomodels exec "$bin" mount --store "$store" -o allow_other "$mnt")
mountpoint -q "$mnt" || { echo "FAIL: $mnt is not mounted" >&2; exit 1; }
rc=0
"$prog" "$mnt/docs" "$store/docs" "$@" || rc=$?
if ((rc)); then
	echo "--- the last lines of $store/seekfs.log:" >&2
	tail -20 "$store/seekfs.log" >&2 || true
fi
# still there and answering after all that, and it unmounts cleanly
ls "$mnt/docs" >/dev/null || { echo "FAIL: ls $mnt/docs after the checks" >&2; rc=1; }
"$bin" umount --store "$store" "$mnt" || { echo "FAIL: seekfs umount" >&2; rc=1; }
! mountpoint -q "$mnt" || { echo "FAIL: still mounted after seekfs umount" >&2; rc=1; }
exit $rc
