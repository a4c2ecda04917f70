#!/usr/bin/env bash
# The daemon killed with SIGKILL, once during an ingest and once during
# generation; the store is mounted again each time. Every document whose
# copy finished is indexed after the remount, the index checks consistent,
# and the interrupted query is run again to the end (never silently lost).
set -euo pipefail
src=${SEEKFS_SRC:?}
. "$(dirname "$0")/mount_lib.sh"
gen=$models/SmolLM2-135M-Instruct.Q4_1.gguf
need_model "$gen"
crash() {
	local pid
	pid=$(cat "$mnt/status/pid")
	kill -9 "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
}
printf '{"generator": "%s"}\n' "$gen" >"$store/seekfs.json"
"$bin" mount --store "$store" "$mnt"

# 1. during an ingest: 300 documents copied in, the daemon killed while indexing
mkdir -p "$tmp/src"
for ((i = 0; i < 300; i++)); do
	printf 'Note %d about the item code k%dx. %s\n' "$i" "$i" "$(head -c 600 "$src/examples/docs/coffee.txt")" >"$tmp/src/n$i.txt"
done
cp "$tmp/src"/*.txt "$mnt/docs/"
sleep 1
[ "$(cat "$mnt/status/pending_reindex")" != 0 ] || echo "note: indexing had finished before the kill"
crash
"$bin" mount --store "$store" "$mnt"
for ((i = 0; i < 1800; i++)); do
	[ "$(cat "$mnt/status/documents")" = 300 ] && [ "$(cat "$mnt/status/pending_reindex")" = 0 ] && break
	sleep 0.1
done
[ "$(cat "$mnt/status/documents")" = 300 ] || fail "after the remount $(cat "$mnt/status/documents") of 300 documents are indexed"
for i in 0 150 299; do
	echo "{\"q\": \"k${i}x\", \"mode\": \"search\", \"k\": 1}" >"$mnt/queries/find$i"
	wait_for "$mnt/queries/find$i.done"
	[ "$(cut -f3 "$mnt/queries/find$i.hits")" = "n$i.txt" ] || fail "k${i}x found $(cat "$mnt/queries/find$i.hits")"
done

# 2. during generation: the query is run again after the remount
echo '{"q": "Tell a long story about a lighthouse.", "mode": "generate", "max_tokens": 400}' >"$mnt/queries/story"
for ((i = 0; i < 600; i++)); do [ -s "$mnt/queries/story.stream" ] && break; sleep 0.1; done
[ -s "$mnt/queries/story.stream" ] || fail "generation did not start"
crash
[ ! -e "$store/queries/story.done" ] || fail "an interrupted query has NAME.done"
"$bin" mount --store "$store" "$mnt"
wait_for "$mnt/queries/story.done" 600
[ "$(cat "$mnt/queries/story.status")" = done ] || fail "story: $(cat "$mnt/queries/story.status")"
[ -s "$mnt/queries/story.answer" ] || fail "story.answer is empty"
"$bin" umount --store "$store" "$mnt"

# the index itself is consistent
"$bin" index check --store "$store" --no-repair >"$tmp/check" || { cat "$tmp/check" >&2; fail "index check"; }
grep -q '^faiss	ok' "$tmp/check" || { cat "$tmp/check" >&2; fail "faiss"; }
echo ok
