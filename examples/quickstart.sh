#!/usr/bin/env bash
# The main job: mount seekfs, copy the example documents in, ask a question
# with echo and read the answer with cat. Uses the default store
# (~/.local/share/seekfs, or $SEEKFS_STORE) and the models tools/setup.sh
# installed there. The mount point is ./mnt unless given; with --keep it
# stays mounted afterwards (seekfs umount MNT to end it).
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
[ "${1:-}" = --keep ] && { keep=1; shift; }
mnt=${1:-$PWD/mnt}
bin=$PWD/build/seekfs
mkdir -p "$mnt"
run() { echo "\$ $*"; "$@"; }
run "$bin" mount "$mnt"
[ "$keep" = 1 ] || trap '"$bin" umount "$mnt"' EXIT
run cp examples/docs/coffee.txt examples/docs/solar-system.md examples/docs/unix-history.html "$mnt/docs/"
# documents are indexed in the background; status/ says when it is done
for ((i = 0; i < 600; i++)); do
	[ "$(cat "$mnt/status/pending_reindex")" = 0 ] && [ "$(cat "$mnt/status/documents")" -ge 3 ] && break
	sleep 0.1
done
echo "\$ echo 'Which planet is the largest, and how many moons does Mars have?' > $mnt/queries/planets"
echo 'Which planet is the largest, and how many moons does Mars have?' >"$mnt/queries/planets"
echo "\$ cat $mnt/queries/planets.stream   # follows the answer as it is generated"
cat "$mnt/queries/planets.stream"
echo
until [ -e "$mnt/queries/planets.done" ]; do sleep 0.1; done
run cat "$mnt/queries/planets.answer"
run cat "$mnt/queries/planets.hits"
