#!/usr/bin/env bash
# The hot-folder pattern, as an older system would use seekfs: drop request
# files into queries/ (written under a temporary name, then renamed, so a
# half-written request is never read), poll for NAME.done, then collect
# NAME.answer, or NAME.error when the request failed.
#
#   examples/hot-folder.sh MOUNTPOINT INBOX OUTBOX
#
# Every file in INBOX is one question (plain text, or a JSON request). Its
# answer goes to OUTBOX/NAME.answer (or OUTBOX/NAME.error), and the request
# is then removed from queries/ so that the folder does not grow.
set -euo pipefail
mnt=${1:?usage: hot-folder.sh MOUNTPOINT INBOX OUTBOX}
inbox=${2:?usage: hot-folder.sh MOUNTPOINT INBOX OUTBOX}
outbox=${3:?usage: hot-folder.sh MOUNTPOINT INBOX OUTBOX}
timeout=${SEEKFS_TIMEOUT:-600}
mkdir -p "$outbox"
q=$mnt/queries
names=() bases=()
n=0
for f in "$inbox"/*; do
	[ -f "$f" ] || continue
	# request names are ours to choose: a number, so that no name can end
	# like a result file (x.json, x.status, ...)
	n=$((n + 1))
	name=hf-$$-$n
	cp "$f" "$q/.$name.tmp"
	mv "$q/.$name.tmp" "$q/$name"
	names+=("$name")
	bases+=("$(basename "$f")")
	echo "submitted $f as $name"
done
for i in "${!names[@]}"; do
	name=${names[$i]} base=${bases[$i]}
	waited=0
	until [ -e "$q/$name.done" ]; do
		sleep 0.2
		waited=$((waited + 1))
		if [ $waited -gt $((timeout * 5)) ]; then
			echo "$name: no answer after ${timeout}s (status: $(cat "$q/$name.status" 2>/dev/null))" >&2
			exit 1
		fi
	done
	if [ -e "$q/$name.answer" ]; then
		cp "$q/$name.answer" "$outbox/$base.answer"
		echo "answered $name"
	else
		cp "$q/$name.error" "$outbox/$base.error"
		echo "failed $name: $(cat "$q/$name.error")"
	fi
	rm "$q/$name"
done
