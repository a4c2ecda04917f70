# Sourced by the shell tests that mount a store for real. Sets bin, models,
# tmp, mnt and store (fresh folders under a temporary one), installs a trap
# that unmounts and removes them, also on failure, and defines:
#   fail MSG...            print MSG and the store's last log lines, exit 1
#   wait_for FILE [SECS]   wait until FILE exists (default 300 s), else fail
#   need_model FILE        skip the test (77) when a model is not installed
# A test may append to cleanup_hooks (commands run before unmounting).
bin=${SEEKFS_BIN:?}
models=${SEEKFS_MODELS:-$HOME/.local/share/seekfs/models}
[ -e /dev/fuse ] || { echo "FAIL: no /dev/fuse: this machine cannot mount FUSE filesystems" >&2; exit 1; }
tmp=$(mktemp -d)
mnt=$tmp/mnt store=$tmp/store
mkdir -p "$mnt" "$store"
cleanup_hooks=()
cleanup() {
	local h
	for h in "${cleanup_hooks[@]}"; do eval "$h" || true; done
	if mountpoint -q "$mnt" || grep -q " $mnt " /proc/mounts; then
		# seekfs umount also waits until the daemon has let go of the store
		"$bin" umount --store "$store" "$mnt" >/dev/null 2>&1 ||
			fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
	fi
	local i
	for ((i = 0; i < 50; i++)); do rm -rf "$tmp" 2>/dev/null && return 0; sleep 0.1; done
	echo "warning: could not remove $tmp" >&2
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	[ -f "$store/seekfs.log" ] && tail -5 "$store/seekfs.log" >&2
	exit 1
}
wait_for() {
	local i
	for ((i = 0; i < ${2:-300} * 10; i++)); do [ -e "$1" ] && return 0; sleep 0.1; done
	fail "$1 did not appear within ${2:-300} s"
}
need_model() {
	[ -f "$1" ] || { echo "SKIP: $1 not installed (bash tools/setup.sh)"; exit 77; }
}
