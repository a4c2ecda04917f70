#!/usr/bin/env bash
# More names than the daemon may hold descriptors, through a daemon held to
# 4,096 open files (without CAP_SYS_RESOURCE, so that it cannot raise the
# limit): in queries/, 1,500 finished requests with their six result files
# (10,500 names), made in STORE/queries before mounting and listed with
# ls -l; in docs/, 6,000 documents in 30 folders, listed with find -ls.
# Every name is listed with its size, none fails with "Too many open
# files", and files read back; a result replaced behind the mount while
# the kernel knows the old file reads back new.
# No model is needed (SEEKFS_MODELS is an empty folder).
set -euo pipefail
. "$(dirname "$0")/mount_lib.sh"
n=1500
mkdir -p "$store/queries" "$store/docs" "$tmp/nomodels"
python3 "$(dirname "$0")/make_requests.py" "$store/queries" "$n" finished
python3 - "$store/docs" <<'PY'
import os, sys
for f in range(30):
    os.mkdir(os.path.join(sys.argv[1], "f%02d" % f))
    for i in range(200):
        with open(os.path.join(sys.argv[1], "f%02d" % f, "doc%03d.txt" % i), "w") as fh:
            fh.write("Document %d of folder %d.\n" % (i, f))
PY
# as root, the daemon would raise its limit to fs.nr_open: setpriv drops
# the capability that allows it
drop=()
if setpriv --bounding-set -sys_resource true 2>/dev/null; then
	drop=(setpriv --bounding-set -sys_resource --inh-caps -sys_resource)
fi
(ulimit -n 4096 && SEEKFS_MODELS=$tmp/nomodels exec "${drop[@]}" "$bin" mount --store "$store" "$mnt")
mountpoint -q "$mnt" || fail "not mounted"
pid=$(pgrep -f "mount --store $store" | head -1 || true)
[ -z "$pid" ] || echo "daemon's open-file limit: $(awk '/open files/ {print $4}' "/proc/$pid/limits")"

ls -l "$mnt/queries" >"$tmp/ls" 2>"$tmp/ls.err" || fail "ls -l queries/: $(head -3 "$tmp/ls.err")"
[ ! -s "$tmp/ls.err" ] || fail "ls -l queries/ complained: $(head -3 "$tmp/ls.err")"
got=$(grep -c ' r[0-9]' "$tmp/ls" || true)
[ "$got" = $((n * 7)) ] || fail "ls -l listed $got names, not $((n * 7))"
# sizes are the backing files' (.answer of r01234 is 17 bytes)
size=$(awk '$NF == "r01234.answer" {print $5}' "$tmp/ls")
[ "$size" = 17 ] || fail "r01234.answer listed with size '$size', not 17"
# a second listing, now that the kernel knows every name, and reads
ls -l "$mnt/queries" >/dev/null 2>"$tmp/ls.err" && [ ! -s "$tmp/ls.err" ] ||
	fail "second ls -l: $(head -3 "$tmp/ls.err")"
[ "$(cat "$mnt/queries/r00007.answer")" = "Answer 7 [1]." ] || fail "r00007.answer reads wrong"
[ "$(cat "$mnt/queries/r01499.status")" = done ] || fail "r01499.status reads wrong"

find "$mnt/docs" -type f -ls >"$tmp/find" 2>"$tmp/find.err" || fail "find docs/ -ls: $(head -3 "$tmp/find.err")"
[ ! -s "$tmp/find.err" ] || fail "find docs/ -ls complained: $(head -3 "$tmp/find.err")"
got=$(wc -l <"$tmp/find")
[ "$got" = 6000 ] || fail "find docs/ listed $got files, not 6000"
[ "$(cat "$mnt/docs/f29/doc199.txt")" = "Document 199 of folder 29." ] || fail "docs/f29/doc199.txt reads wrong"

# replaced behind the mount (as the daemon writes results: a new file
# renamed over the old) while the kernel holds the old file's node
stat "$mnt/queries/r00042.status" >/dev/null
printf 'cancelled\n' >"$store/queries/.r00042.status.new"
mv "$store/queries/.r00042.status.new" "$store/queries/r00042.status"
[ "$(cat "$mnt/queries/r00042.status")" = cancelled ] ||
	fail "r00042.status replaced behind the mount reads '$(cat "$mnt/queries/r00042.status")'"
[ "$(stat -c %s "$mnt/queries/r00042.status")" = 10 ] || fail "r00042.status: stale size"
# removed behind the mount: gone through the mount too
rm "$store/queries/r00043.hits"
[ ! -e "$mnt/queries/r00043.hits" ] || fail "r00043.hits removed behind the mount is still seen"

"$bin" umount --store "$store" "$mnt" || fail "seekfs umount"
echo "ok: ls -l of $((n * 7)) names in queries/ and find -ls of 6000 in docs/ through a daemon limited to 4096 descriptors"
