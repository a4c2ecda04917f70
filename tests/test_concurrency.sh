#!/usr/bin/env bash
# 32 queries at once: all complete with correct files, and the total
# throughput beats answering them one after another (continuous batching:
# the decode steps of running queries share one pass over the weights).
# Prints both rates and their ratio.
set -euo pipefail
. "$(dirname "$0")/mount_lib.sh"
gen=$models/SmolLM2-135M-Instruct.Q4_1.gguf
need_model "$gen"
wait_done() {
	local i
	for ((i = 0; i < 6000; i++)); do [ -e "$1.done" ] && return 0; sleep 0.05; done
	fail "$1.done did not appear"
}
printf '{"generator": "%s", "embedder": ""}\n' "$gen" >"$store/seekfs.json"
"$bin" mount --store "$store" "$mnt"
N=${SEEKFS_CONCURRENCY:-32} T=48
req() { echo "{\"q\": \"Write a few sentences about the number $1.\", \"mode\": \"generate\", \"max_tokens\": $T, \"temperature\": 0}"; }
tokens() { python3 -c 'import json,sys; print(sum(json.load(open(f))["tokens"]["generated"] for f in sys.argv[1:]))' "$@"; }
now() { date +%s.%N; }

# warm up (the model loads), then one at a time
echo '{"q": "Hi", "mode": "generate", "max_tokens": 4}' >"$mnt/queries/warm"
wait_done "$mnt/queries/warm"
S=6
t0=$(now)
for ((i = 0; i < S; i++)); do
	req "$i" >"$mnt/queries/seq$i"
	wait_done "$mnt/queries/seq$i"
done
t1=$(now)
seq_tok=$(tokens "$mnt"/queries/seq*.json)

# all at once
t2=$(now)
for ((i = 0; i < N; i++)); do req "$i" >"$mnt/queries/par$i"; done
for ((i = 0; i < N; i++)); do wait_done "$mnt/queries/par$i"; done
t3=$(now)
par_tok=$(tokens "$mnt"/queries/par*.json)
for ((i = 0; i < N; i++)); do
	q=$mnt/queries/par$i
	[ "$(cat "$q.status")" = done ] || fail "par$i: $(cat "$q.status")"
	[ -s "$q.answer" ] || fail "par$i.answer is empty"
	python3 - "$q.json" "$q.stream" "$i" <<'PY' || fail "par$i.json"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["status"] == "done", j["status"]
assert str(sys.argv[3]) in j["request"]["q"]
assert j["answer"] == open(sys.argv[2]).read()
assert j["tokens"]["generated"] > 0
PY
done
python3 - "$seq_tok" "$t0" "$t1" "$par_tok" "$t2" "$t3" "$N" <<'PY' || fail "32 at once were not faster than one at a time"
import sys
st, t0, t1, pt, t2, t3, n = float(sys.argv[1]), *map(float, sys.argv[2:4]), float(sys.argv[4]), *map(float, sys.argv[5:7]), int(sys.argv[7])
seq, par = st / (t1 - t0), pt / (t3 - t2)
print(f"one at a time: {seq:.1f} tokens/s; {n} at once: {par:.1f} tokens/s; ratio {par / seq:.2f}")
sys.exit(0 if par > seq else 1)
PY
"$bin" umount --store "$store" "$mnt"
echo ok
