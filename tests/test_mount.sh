#!/usr/bin/env bash
# The filesystem, mounted for real: documents copied into docs/ become
# searchable, questions written with echo are answered in queries/, the
# stream follows generation, rm cancels, a malformed request gets NAME.error,
# changes made behind the mount are seen, and results survive a remount.
# Needs /dev/fuse and root (or fusermount3); the generator is SmolLM2 (the
# smallest model the setup installs) so that the test stays quick.
set -euo pipefail
src=${SEEKFS_SRC:?}
. "$(dirname "$0")/mount_lib.sh"
gen=$models/SmolLM2-135M-Instruct.Q4_1.gguf
need_model "$gen"
printf '{"generator": "%s", "embedder": ""}\n' "$gen" >"$store/seekfs.json"

"$bin" mount --store "$store" "$mnt"
mountpoint -q "$mnt" || fail "not mounted"
[ "$(ls "$mnt" | tr '\n' ' ')" = "docs models queries status " ] || fail "root is: $(ls "$mnt")"

# documents in, indexed
cp "$src"/examples/docs/* "$mnt/docs/"
for ((i = 0; i < 600; i++)); do
	[ "$(cat "$mnt/status/documents")" = 3 ] && [ "$(cat "$mnt/status/pending_reindex")" = 0 ] && break
	sleep 0.1
done
[ "$(cat "$mnt/status/documents")" = 3 ] || fail "status/documents: $(cat "$mnt/status/documents")"
cmp "$src/examples/docs/coffee.txt" "$mnt/docs/coffee.txt" || fail "docs/ content differs"

# a question with echo; the answer after NAME.done
echo "How long should coffee steep in a French press?" >"$mnt/queries/q1"
[ -e "$mnt/queries/q1.status" ] || fail "no q1.status right after submitting"
wait_for "$mnt/queries/q1.done"
[ "$(cat "$mnt/queries/q1.status")" = done ] || fail "q1.status: $(cat "$mnt/queries/q1.status")"
[ -s "$mnt/queries/q1.answer" ] || fail "q1.answer is empty"
head -1 "$mnt/queries/q1.hits" | awk -F'\t' 'NF != 5 || $3 != "coffee.txt" { exit 1 }' ||
	fail "q1.hits' first line: $(head -1 "$mnt/queries/q1.hits")"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["status"] == "done" and j["hits"] and j["tokens"]["generated"] > 0' \
	"$mnt/queries/q1.json" || fail "q1.json"
grep -q '^\[1\] coffee.txt ' "$mnt/queries/q1.answer" || fail "q1.answer does not list its sources"

# the stream, read while generation runs, ends with the whole answer
echo '{"q": "Write a short poem about the sea.", "mode": "generate", "max_tokens": 48, "seed": 3}' >"$mnt/queries/q2"
timeout 120 cat "$mnt/queries/q2.stream" >"$tmp/q2.streamed" || fail "cat q2.stream did not end"
wait_for "$mnt/queries/q2.done"
python3 - "$mnt/queries/q2.json" "$tmp/q2.streamed" <<'PY' || fail "the stream differs from the answer"
import json, sys
j = json.load(open(sys.argv[1]))
assert open(sys.argv[2]).read() == j["answer"], (open(sys.argv[2]).read(), j["answer"])
PY

# many small writes are one request; a request renamed in is submitted
{ for w in Which planet is the largest "?"; do printf '%s ' "$w"; done; } >"$mnt/queries/q3"
echo "Who created Unix?" >"$mnt/queries/.q4.tmp"
[ ! -e "$mnt/queries/.q4.tmp.status" ] || fail "a hidden name was submitted"
mv "$mnt/queries/.q4.tmp" "$mnt/queries/q4"
wait_for "$mnt/queries/q3.done"
grep -q 'Which planet is the largest ?' "$mnt/queries/q3.json" || fail "q3 request"
wait_for "$mnt/queries/q4.done"
[ "$(cat "$mnt/queries/q4.status")" = done ] || fail "q4: $(cat "$mnt/queries/q4.status")"

# a malformed request: NAME.error says what to fix, and NAME.done follows it
echo '{"q": 5}' >"$mnt/queries/bad"
wait_for "$mnt/queries/bad.done"
grep -q '"q" must be' "$mnt/queries/bad.error" || fail "bad.error: $(cat "$mnt/queries/bad.error")"
[ ! -e "$mnt/queries/bad.answer" ] || fail "a failed request has an answer"
# results are read-only
if echo x 2>/dev/null >"$mnt/queries/q1.answer"; then fail "q1.answer was writable"; fi

# rm cancels a running query and removes its files
echo '{"q": "Tell a very long story.", "mode": "generate", "max_tokens": 4000}' >"$mnt/queries/long"
for ((i = 0; i < 300; i++)); do [ "$(cat "$mnt/queries/long.status" 2>/dev/null)" = running ] && break; sleep 0.1; done
rm "$mnt/queries/long"
sleep 1
ls "$mnt/queries" | grep -q '^long' && fail "files of a cancelled query remain: $(ls "$mnt/queries" | grep '^long')"

# search mode; a document changed through the mount and one behind it
echo "The zebrafish regrows its fins within two weeks." >"$mnt/docs/fish.txt"
echo "Basalt columns form when thick lava cools slowly." >"$store/docs/rocks.txt"
sleep 2
echo '{"q": "zebrafish fins", "mode": "search", "k": 1}' >"$mnt/queries/s1"
echo '{"q": "basalt columns lava", "mode": "search", "k": 1}' >"$mnt/queries/s2"
wait_for "$mnt/queries/s1.done"
wait_for "$mnt/queries/s2.done"
[ "$(cut -f3 "$mnt/queries/s1.hits")" = fish.txt ] || fail "s1: $(cat "$mnt/queries/s1.hits")"
[ "$(cut -f3 "$mnt/queries/s2.hits")" = rocks.txt ] || fail "s2: $(cat "$mnt/queries/s2.hits")"
mv "$mnt/docs/fish.txt" "$mnt/docs/zebrafish.txt"
rm "$mnt/docs/rocks.txt"
sleep 2
echo '{"q": "zebrafish fins", "mode": "search", "k": 1}' >"$mnt/queries/s3"
echo '{"q": "basalt columns lava", "mode": "search", "k": 3}' >"$mnt/queries/s4"
wait_for "$mnt/queries/s4.done"
[ "$(cut -f3 "$mnt/queries/s3.hits")" = zebrafish.txt ] || fail "s3: $(cat "$mnt/queries/s3.hits")"
! grep -q rocks.txt "$mnt/queries/s4.hits" || fail "a removed document is still found"

# a result over 64 KB is read back whole: a 100 KB question in search mode
python3 -c 'import json; print(json.dumps({"q": "zebrafish " * 10000, "mode": "search", "k": 2}))' >"$mnt/queries/big"
wait_for "$mnt/queries/big.done"
size=$(stat -c %s "$mnt/queries/big.json")
[ "$size" -gt 65536 ] || fail "big.json is only $size bytes"
[ "$(cat "$mnt/queries/big.json" | wc -c)" = "$size" ] || fail "big.json read back short"
python3 -c 'import json,sys; assert len(json.load(open(sys.argv[1]))["request"]["q"]) == 100000' "$mnt/queries/big.json" ||
	fail "big.json does not parse whole"

# the examples run: the hot folder and the batch script
mkdir -p "$tmp/inbox"
echo "How long should coffee steep?" >"$tmp/inbox/a.txt"
echo '{"q": "Who created Unix?", "max_tokens": 32}' >"$tmp/inbox/b.json"
echo '{"q": 1}' >"$tmp/inbox/c.json"
bash "$src/examples/hot-folder.sh" "$mnt" "$tmp/inbox" "$tmp/outbox" >/dev/null || fail "hot-folder.sh"
[ -s "$tmp/outbox/a.txt.answer" ] && [ -s "$tmp/outbox/b.json.answer" ] && [ -s "$tmp/outbox/c.json.error" ] ||
	fail "hot-folder outbox: $(ls "$tmp/outbox")"
printf 'Which planet is the largest?\nWhat grind suits a French press?\n' >"$tmp/questions"
bash "$src/examples/batch.sh" "$mnt" "$tmp/questions" >"$tmp/batch.out" || fail "batch.sh"
[ "$(grep -c '^== ' "$tmp/batch.out")" = 2 ] || fail "batch.sh printed: $(cat "$tmp/batch.out")"

# status and metrics
grep -q '^seekfs_queries_total ' "$mnt/status/metrics" || fail "metrics"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$mnt/status/json" || fail "status/json"

# unmount, mount again: the results are still there
answer=$(cat "$mnt/queries/q1.answer")
"$bin" umount "$mnt"
! mountpoint -q "$mnt" || fail "still mounted after seekfs umount"
"$bin" mount --store "$store" "$mnt"
[ "$(cat "$mnt/queries/q1.answer")" = "$answer" ] || fail "q1.answer changed across a remount"
"$bin" umount "$mnt"
echo ok
