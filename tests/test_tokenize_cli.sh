#!/usr/bin/env bash
# `seekfs tokenize -m VOCAB.gguf -f FILE` prints the ids of FILE's exact
# bytes with no BOS: every input of the shared vocabulary tests, written to a
# file byte for byte, must print its expected line. (The tokenizer itself is
# tested more deeply by test_vocab; this holds the command's contract.)
set -euo pipefail
vocab="${SEEKFS_DATA:?}/vocab"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for name in llama-spm gpt-2 deepseek-coder falcon; do
	inp="$vocab/ggml-vocab-$name.gguf.inp" out="$vocab/ggml-vocab-$name.gguf.out"
	for f in "$inp" "$out" "$vocab/ggml-vocab-$name.gguf"; do
		[ -f "$f" ] || { echo "missing shared test data: $f" >&2; exit 1; }
	done
	# split the inputs at the separator lines into case files, byte exact
	rm -f "$tmp"/case.*
	awk -v dir="$tmp" 'BEGIN { RS = "\n__ggml_vocab_test__\n"; ORS = "" }
		{ f = sprintf("%s/case.%03d", dir, NR); printf "%s", $0 > f; close(f) }' "$inp"
	n=0
	while IFS= read -r want; do
		n=$((n + 1))
		case_file=$(printf '%s/case.%03d' "$tmp" "$n")
		[ -f "$case_file" ] || : >"$case_file" # an empty input
		got=$("$SEEKFS_BIN" tokenize -m "$vocab/ggml-vocab-$name.gguf" -f "$case_file")
		if [ "$(echo $got)" != "$(echo $want)" ]; then
			echo "$name case $n: got '$got', want '$want'" >&2
			fail=1
		fi
	done <"$out"
	[ "$n" = 46 ] || { echo "$name: $n expected lines, want 46" >&2; fail=1; }
done
if "$SEEKFS_BIN" tokenize -m "$vocab/ggml-vocab-gpt-2.gguf" -f "$tmp/missing" 2>"$tmp/err"; then
	echo "a missing input file was accepted" >&2
	fail=1
fi
grep -q "$tmp/missing" "$tmp/err" || { echo "error does not name the file" >&2; fail=1; }
exit $fail
