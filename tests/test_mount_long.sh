#!/usr/bin/env bash
# An answer over 64 KB through the mount. The generator is a tiny model
# whose every token is a 200-byte word (tests/make_long_answer_model.py, so
# no download is needed): 400 tokens make an answer of about 80 KB.
# NAME.answer's size (stat) is the length cat reads back, its bytes are
# NAME.json's answer, and NAME.stream, read by cat while the answer grows,
# ends with the same bytes.
set -euo pipefail
src=${SEEKFS_SRC:?}
. "$(dirname "$0")/mount_lib.sh"
py=${SEEKFS_PYTHON:-python3}
gen=$tmp/long-answer.gguf
"$py" "$src/tests/make_long_answer_model.py" "$gen" ||
	fail "cannot write the test model (needs python with gguf and numpy: bash tools/setup.sh)"
printf '{"generator": "%s", "embedder": ""}\n' "$gen" >"$store/seekfs.json"
"$bin" mount --store "$store" "$mnt"
mountpoint -q "$mnt" || fail "not mounted"

echo '{"q": "Say it all.", "mode": "generate", "max_tokens": 400}' >"$mnt/queries/long"
timeout 120 cat "$mnt/queries/long.stream" >"$tmp/streamed" || fail "cat long.stream did not end"
wait_for "$mnt/queries/long.done" 120
[ "$(cat "$mnt/queries/long.status")" = done ] || fail "long.status: $(cat "$mnt/queries/long.status")"
size=$(stat -c %s "$mnt/queries/long.answer")
[ "$size" -gt 65536 ] || fail "long.answer is only $size bytes"
cat "$mnt/queries/long.answer" >"$tmp/answer"
[ "$(wc -c <"$tmp/answer")" = "$size" ] || fail "long.answer read back $(wc -c <"$tmp/answer") of $size bytes"
"$py" - "$mnt/queries/long.json" "$tmp/answer" "$tmp/streamed" <<'PY' || fail "long.answer, long.json and long.stream disagree"
import json, sys
j = json.load(open(sys.argv[1]))
answer = open(sys.argv[2], encoding="utf-8").read()
streamed = open(sys.argv[3], encoding="utf-8").read()
assert j["status"] == "done", j["status"]
assert j["tokens"]["generated"] == 400, j["tokens"]
word = " seekfs-" + "long-answer-" * 16
assert j["answer"] == word * 400, (len(j["answer"]), j["answer"][:80])
assert answer.startswith(j["answer"]), (len(answer), answer[:80])
assert streamed == j["answer"], (len(streamed), streamed[:80])
print(f"long answer: {len(answer)} bytes in NAME.answer, {len(streamed)} streamed")
PY
"$bin" umount --store "$store" "$mnt" || fail "seekfs umount"
echo "ok: an answer of $size bytes read back whole"
