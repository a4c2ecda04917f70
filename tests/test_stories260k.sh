#!/usr/bin/env bash
# End to end on a real tiny llama: convert the llama2.c checkpoint
# stories260K to GGUF, generate 256 tokens greedily from an empty prompt, and
# compare with the reference implementation's output byte for byte.
set -euo pipefail
data="${SEEKFS_DATA:?}/tinyllamas"
for f in stories260K.bin tok512.bin stories260K.greedy.txt; do
	[ -f "$data/$f" ] || { echo "missing shared test data: $data/$f" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$SEEKFS_BIN" convert llama2c "$data/stories260K.bin" "$data/tok512.bin" -o "$tmp/stories260K.gguf"
"$SEEKFS_BIN" generate -m "$tmp/stories260K.gguf" --temp 0 -n 256 -t 2 >"$tmp/out.txt"
if ! cmp "$tmp/out.txt" "$data/stories260K.greedy.txt"; then
	diff <(fold -w 80 "$data/stories260K.greedy.txt") <(fold -w 80 "$tmp/out.txt") | head -20 >&2
	exit 1
fi

# The same with one thread: threading must not change a greedy result.
"$SEEKFS_BIN" generate -m "$tmp/stories260K.gguf" --temp 0 -n 256 -t 1 >"$tmp/out1.txt"
cmp "$tmp/out1.txt" "$data/stories260K.greedy.txt"

# Sampling: the same seed gives the same text, another seed another text.
gen() { "$SEEKFS_BIN" generate -m "$tmp/stories260K.gguf" -p "Once upon a time" -n 64 --temp 1 --top-p 0.95 --seed "$1" 2>/dev/null; }
a=$(gen 1) b=$(gen 1) c=$(gen 2)
[ "$a" = "$b" ] || { echo "seed 1 gave two different texts" >&2; exit 1; }
[ "$a" != "$c" ] || { echo "seeds 1 and 2 gave the same text" >&2; exit 1; }
case "$a" in "Once upon a time"*) echo "the prompt was echoed into the output" >&2; exit 1 ;; esac

# --chat on a model without a chat template: the plain prompt, and a note.
"$SEEKFS_BIN" generate -m "$tmp/stories260K.gguf" --chat -p "Once upon a time" -n 8 --temp 0 \
	>"$tmp/chat.out" 2>"$tmp/chat.err"
grep -q "no chat template" "$tmp/chat.err" || { echo "no note about the missing template:" >&2; cat "$tmp/chat.err" >&2; exit 1; }
"$SEEKFS_BIN" generate -m "$tmp/stories260K.gguf" -p "Once upon a time" -n 8 --temp 0 >"$tmp/plain.out" 2>/dev/null
cmp "$tmp/chat.out" "$tmp/plain.out" || { echo "--chat without a template changed the text" >&2; exit 1; }

# A truncated copy is refused with a message naming the file, not a crash.
head -c 500000 "$tmp/stories260K.gguf" >"$tmp/cut.gguf"
if "$SEEKFS_BIN" generate -m "$tmp/cut.gguf" -n 4 >"$tmp/cut.out" 2>"$tmp/cut.err"; then
	echo "a truncated model was accepted" >&2
	exit 1
fi
grep -q "cut.gguf" "$tmp/cut.err" || { echo "error does not name the file:" >&2; cat "$tmp/cut.err" >&2; exit 1; }
echo "stories260K: greedy text identical ($(wc -c <"$tmp/out.txt") bytes)"
