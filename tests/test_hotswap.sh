#!/usr/bin/env bash
# Hot swap: a new generator copied into models/ while 8 queries run. All
# of them finish; later queries use the new model; a truncated GGUF copied
# in afterwards is refused with a reason in status/last_error and the model
# in use keeps serving.
set -euo pipefail
. "$(dirname "$0")/mount_lib.sh"
old=$models/SmolLM2-135M-Instruct.Q4_1.gguf
new=$models/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf
need_model "$old"
need_model "$new"
printf '{"generator": "%s", "embedder": ""}\n' "$old" >"$store/seekfs.json"
"$bin" mount --store "$store" "$mnt"
for ((i = 0; i < 100; i++)); do [ "$(cat "$mnt/status/generator")" != "" ] && break; sleep 0.1; done
[ "$(cat "$mnt/status/generator")" = SmolLM2-135M-Instruct.Q4_1.gguf ] || fail "generator: $(cat "$mnt/status/generator")"

for ((i = 1; i <= 8; i++)); do
	echo "{\"q\": \"Count from 1 to 20.\", \"mode\": \"generate\", \"max_tokens\": 24, \"seed\": $i}" >"$mnt/queries/q$i"
done
# the new model arrives while they run
cp "$new" "$mnt/models/qwen.gguf"
for ((i = 1; i <= 8; i++)); do
	wait_for "$mnt/queries/q$i.done"
	[ "$(cat "$mnt/queries/q$i.status")" = done ] || fail "q$i: $(cat "$mnt/queries/q$i.status")"
done
for ((i = 0; i < 600; i++)); do [ "$(cat "$mnt/status/generator")" = qwen.gguf ] && break; sleep 0.1; done
[ "$(cat "$mnt/status/generator")" = qwen.gguf ] || fail "the new model was not taken: $(cat "$mnt/status/generator")"
[ "$(cat "$mnt/models/generator")" = qwen.gguf ] || fail "models/generator: $(cat "$mnt/models/generator")"
used() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["models"]["generator"])' "$1"; }
echo '{"q": "Say hello.", "mode": "generate", "max_tokens": 8}' >"$mnt/queries/after"
wait_for "$mnt/queries/after.done"
[ "$(used "$mnt/queries/after.json")" = qwen.gguf ] || fail "a later query used $(used "$mnt/queries/after.json")"
echo "the 8 queries ran on: $(for ((i = 1; i <= 8; i++)); do used "$mnt/queries/q$i.json"; done | sort | uniq -c | tr '\n' ' ')"

# a truncated model: refused, the running one stays
head -c 3000000 "$new" >"$mnt/models/broken.gguf"
for ((i = 0; i < 100; i++)); do grep -q broken.gguf "$mnt/status/last_error" && break; sleep 0.1; done
grep -q 'broken.gguf' "$mnt/status/last_error" || fail "no reason for the truncated model: $(cat "$mnt/status/last_error")"
[ "$(cat "$mnt/status/generator")" = qwen.gguf ] || fail "the generator changed to $(cat "$mnt/status/generator")"
# and writing its name into models/generator is refused
if echo broken.gguf 2>/dev/null >"$mnt/models/generator"; then fail "switching to a truncated model was accepted"; fi
echo '{"q": "Say hello.", "mode": "generate", "max_tokens": 8}' >"$mnt/queries/still"
wait_for "$mnt/queries/still.done"
[ "$(cat "$mnt/queries/still.status")" = done ] || fail "still: $(cat "$mnt/queries/still.status")"
# switching back by name works
echo SmolLM2-135M-Instruct.Q4_1.gguf >"$mnt/models/generator" 2>/dev/null || true
"$bin" umount --store "$store" "$mnt"
echo ok
