#!/usr/bin/env bash
# A batch of questions, one per line of a file: all submitted at once with
# echo, served by seekfs side by side, and printed in order as they finish.
#
#   examples/batch.sh MOUNTPOINT QUESTIONS.txt
set -euo pipefail
mnt=${1:?usage: batch.sh MOUNTPOINT QUESTIONS.txt}
list=${2:?usage: batch.sh MOUNTPOINT QUESTIONS.txt}
q=$mnt/queries
n=0
while IFS= read -r line; do
	[ -n "$line" ] || continue
	n=$((n + 1))
	echo "$line" >"$q/batch-$$-$n"
done <"$list"
for ((i = 1; i <= n; i++)); do
	while [ ! -e "$q/batch-$$-$i.done" ]; do sleep 0.2; done
	echo "== $(cat "$q/batch-$$-$i")"
	cat "$q/batch-$$-$i.answer" 2>/dev/null || cat "$q/batch-$$-$i.error"
	echo
done
