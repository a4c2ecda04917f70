#!/usr/bin/env bash
# Crash safety of the index: `seekfs index add` of a few hundred documents
# (some rewritten between runs, so that replacing chunks is under way too)
# is killed with SIGKILL at random points, 20 times. After each kill
# `seekfs index check` must find SQLite sound and repair FAISS if it lags,
# every document the killed run acknowledged (printed) must be listed with
# its chunks, and a search for the unique word of an acknowledged version
# must find that document first. A last uninterrupted run then brings
# everything up to date, and every document is checked.
set -euo pipefail
bin=${SEEKFS_BIN:?}
models=${SEEKFS_MODELS:-$HOME/.local/share/seekfs/models}
emb=(--no-embedder)
if [ -f "$models/all-MiniLM-L6-v2.gguf" ]; then
	emb=(--embedder "$models/all-MiniLM-L6-v2.gguf")
else
	echo "note: no $models/all-MiniLM-L6-v2.gguf: crash test on BM25 alone (no FAISS)"
fi
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
store=$tmp/store
mkdir -p "$store/docs"
N=600
RANDOM=7
words=(airfoil boundary layer shock wave heat transfer flutter wing nozzle plate shell
	pressure turbulent laminar supersonic hypersonic buckling cylinder vortex jet)

# doc I version V: a unique word uIvV plus ordinary text
write_doc() {
	local i=$1 v=$2 f
	f=$(printf '%s/docs/d%04d.txt' "$store" "$i")
	{
		printf 'Report %d, revision %d, keyword u%dv%d.\n\n' "$i" "$v" "$i" "$v"
		for ((p = 0; p < 12; p++)); do
			printf 'The %s of the %s near the %s was measured in run %d of %d. ' \
				"${words[RANDOM % 20]}" "${words[RANDOM % 20]}" "${words[RANDOM % 20]}" "$p" "$i"
		done
		printf '\n'
	} >"$f.tmp"
	mv "$f.tmp" "$f"
	ver[$i]=$v
}
declare -a ver
for ((i = 0; i < N; i++)); do write_doc "$i" 0; done

check_store() { # $1: the killed run's output
	local out=$1
	"$bin" index check --store "$store" >"$tmp/check" 2>&1 || {
		echo "index check failed after a kill:" >&2; cat "$tmp/check" >&2; exit 1; }
	grep -q '^sqlite	ok$' "$tmp/check" || { cat "$tmp/check" >&2; exit 1; }
	"$bin" index list --store "$store" >"$tmp/list"
	# every acknowledged document is listed, with chunks
	local key n
	while IFS=$'\t' read -r what key _; do
		case $what in indexed | unchanged | reused) ;; *) continue ;; esac
		n=$(awk -F'\t' -v k="$key" '$1 == k && $2 == "indexed" { print $3 }' "$tmp/list")
		[ -n "$n" ] && [ "$n" -gt 0 ] || {
			echo "acknowledged $key is not in the index after a kill" >&2; exit 1; }
	done <"$out"
	# the listed chunk counts add up to what the index holds: no phantom chunk
	local sum held
	sum=$(awk -F'\t' '{ s += $3 } END { print s + 0 }' "$tmp/list")
	held=$(awk -F'\t' '$1 == "chunks" { print $2 }' "$tmp/check")
	[ "$sum" = "$held" ] || { echo "documents list $sum chunks, the index holds $held" >&2; exit 1; }
	# a few acknowledged documents are found by their version's unique word
	{ grep -E '^indexed	' "$out" || true; } | shuf -n 4 --random-source=<(yes) | while IFS=$'\t' read -r _ key _; do
		local i=${key#d}
		i=$((10#${i%.txt}))
		local got
		got=$("$bin" search --store "$store" --mode bm25 -k 1 "u${i}v${ver[$i]}" 2>/dev/null | cut -f3)
		[ "$got" = "$key" ] || { echo "u${i}v${ver[$i]}: found '$got', not $key" >&2; exit 1; }
	done
}

kills=0
for ((round = 1; round <= 20; round++)); do
	# rewrite a few documents: their chunks get replaced during the run
	for ((j = 0; j < 8; j++)); do
		i=$((RANDOM % N))
		write_doc "$i" $((ver[i] + 1))
	done
	out=$tmp/out.$round
	"$bin" index add --store "$store" "${emb[@]}" -t 2 "$store/docs" >"$out" 2>"$tmp/err.$round" &
	pid=$!
	# somewhere between opening the store and the end of the ingest
	sleep "$((RANDOM % 3)).$((RANDOM % 10))$((RANDOM % 10))"
	if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
	wait "$pid" 2>/dev/null || true
	pid=
	check_store "$out"
	echo "round $round: $(grep -c . "$out" || true) documents acknowledged before the kill"
done
[ "$kills" -ge 20 ] || { echo "only $kills of 20 runs were still going when killed" >&2; exit 1; }

# an uninterrupted run: everything current, every version findable
"$bin" index add --store "$store" "${emb[@]}" -t 2 "$store/docs" >"$tmp/final" 2>"$tmp/final.err" || {
	cat "$tmp/final.err" >&2; exit 1; }
check_store "$tmp/final"
"$bin" index check --store "$store" --no-repair >"$tmp/check2" || {
	echo "the index is not consistent after a clean run:" >&2; cat "$tmp/check2" >&2; exit 1; }
grep -q '^faiss	ok' "$tmp/check2" && grep -q '^stale	0$' "$tmp/check2" || { cat "$tmp/check2" >&2; exit 1; }
[ "$(grep -c '	indexed	' "$tmp/list")" = "$N" ] || { echo "not all $N documents are indexed" >&2; exit 1; }
for ((i = 0; i < N; i += 7)); do
	key=$(printf 'd%04d.txt' "$i")
	got=$("$bin" search --store "$store" --mode bm25 -k 1 "u${i}v${ver[$i]}" 2>/dev/null | cut -f3)
	[ "$got" = "$key" ] || { echo "u${i}v${ver[$i]}: found '$got', not $key" >&2; exit 1; }
done
echo "ok: $kills kills, no acknowledged document lost, index consistent"
