#!/usr/bin/env bash
# A stress run on a mounted docs/ folder, with verification:
#  - fio (crc32c verify): buffered random read/write, O_DIRECT random writes
#    of 4k-256k blocks, and a file written once and verified again at the
#    end with O_DIRECT reads through the mount;
#  - stress-ng --hdd and --iomix with --verify;
#  - meanwhile one loop creates, renames, reads back and removes small .txt
#    files in docs/ (they are indexed), and another reads status/ and lists
#    and stats docs/, timing every ls and stat: the slowest must stay under
#    STRESS_MAX_LATENCY_S (2 s).
# At the end the file system must still be mounted and answering, fio and
# stress-ng must report no errors, and seekfs umount must succeed.
# No model is needed (SEEKFS_MODELS points at an empty folder: BM25 only).
# STRESS_SECONDS (default 30) sets how long fio and stress-ng run.
set -euo pipefail
export LC_ALL=C
bin=${SEEKFS_BIN:?}
secs=${STRESS_SECONDS:-30}
max_latency_s=${STRESS_MAX_LATENCY_S:-2}
for tool in fio stress-ng; do
	command -v "$tool" >/dev/null || {
		echo "FAIL: $tool is not installed: apt-get install $tool (bash tools/setup.sh installs it)" >&2
		exit 1
	}
done
[ -e /dev/fuse ] || { echo "FAIL: no /dev/fuse: this machine cannot mount FUSE filesystems" >&2; exit 1; }

tmp=$(mktemp -d)
mnt=$tmp/mnt store=$tmp/store
mkdir -p "$mnt" "$store" "$tmp/nomodels"
pids=()
cleanup() {
	local p
	touch "$tmp/stop" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if mountpoint -q "$mnt"; then
		"$bin" umount --store "$store" "$mnt" >/dev/null 2>&1 || fusermount3 -u "$mnt" 2>/dev/null ||
			umount -l "$mnt"
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	[ -f "$store/seekfs.log" ] && tail -5 "$store/seekfs.log" >&2
	exit 1
}
# microseconds since the epoch
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }

SEEKFS_MODELS=$tmp/nomodels "$bin" mount --store "$store" "$mnt"
mountpoint -q "$mnt" || fail "not mounted"
mkdir "$mnt/docs/fio" "$mnt/docs/sng" "$mnt/docs/churn"

cat >"$tmp/job.fio" <<EOF
[global]
directory=$mnt/docs/fio
ioengine=psync
size=64m
verify=crc32c
verify_fatal=1
[buffered]
rw=randrw
bs=4k
numjobs=2
verify_backlog=2048
time_based
runtime=$secs
[direct]
rw=randwrite
direct=1
bsrange=4k-256k
numjobs=2
verify_backlog=512
time_based
runtime=$secs
[written]
rw=randwrite
bs=16k
direct=\${DIRECT}
EOF

# ---- the loops that run beside fio ---------------------------------------
churn() {
	local i=0 errors=0 d=$mnt/docs/churn
	while [ ! -e "$tmp/stop" ]; do
		i=$((i + 1))
		{
			echo "churn file $i about tidal pools and basalt $((i * 7919))" >"$d/.n$i.tmp" &&
				mv "$d/.n$i.tmp" "$d/a$i.txt" &&
				mv "$d/a$i.txt" "$d/b$i.txt" &&
				[ "$(cat "$d/b$i.txt")" = "churn file $i about tidal pools and basalt $((i * 7919))" ] &&
				{ ((i % 5 == 0)) || rm "$d/b$i.txt"; } &&
				{ ((i % 20)) || { mkdir "$d/dir$i" && echo x >"$d/dir$i/x.txt" && rm -r "$d/dir$i"; }; }
		} 2>>"$tmp/churn.err" || errors=$((errors + 1))
		echo "$i $errors" >"$tmp/churn.count"
	done
}

watch_latency() {
	local t0 t1 dt max_ls=0 max_stat=0 n=0 f
	shopt -s nullglob
	while [ ! -e "$tmp/stop" ]; do
		for f in "$mnt"/status/*; do cat "$f" >/dev/null || echo "cat $f failed" >>"$tmp/watch.err"; done
		t0=$(now_us)
		ls -l "$mnt/docs/churn" >/dev/null 2>&1 || true # names vanish while they are listed
		t1=$(now_us)
		dt=$((t1 - t0))
		((dt > max_ls)) && max_ls=$dt
		t0=$(now_us)
		ls "$mnt/docs" "$mnt/docs/fio" >/dev/null || echo "ls docs failed" >>"$tmp/watch.err"
		t1=$(now_us)
		dt=$((t1 - t0))
		((dt > max_ls)) && max_ls=$dt
		t0=$(now_us)
		stat "$mnt/docs" "$mnt/docs/fio" "$mnt/docs/fio"/* "$mnt/status/json" >/dev/null \
			2>>"$tmp/watch.err" || echo "stat failed" >>"$tmp/watch.err"
		t1=$(now_us)
		dt=$((t1 - t0))
		((dt > max_stat)) && max_stat=$dt
		n=$((n + 1))
		echo "$n $max_ls $max_stat" >"$tmp/watch.max"
		sleep 0.05
	done
}

# ---- the run -----------------------------------------------------------------
echo "stress: fio and stress-ng for $secs s, with renames and listings beside them"
t_start=$(now_us)
DIRECT=0 fio --output-format=json --output="$tmp/fio.json" "$tmp/job.fio" >"$tmp/fio.out" 2>&1 &
fio_pid=$!
pids+=("$fio_pid")
(cd "$mnt/docs/sng" && exec stress-ng --hdd 1 --hdd-bytes 32M --hdd-opts wr-rnd,rd-rnd --iomix 1 \
	--iomix-bytes 16M --verify --temp-path "$mnt/docs/sng" --timeout "${secs}s" --metrics-brief) \
	>"$tmp/stress-ng.out" 2>&1 &
sng_pid=$!
pids+=("$sng_pid")
churn &
pids+=("$!")
watch_latency &
pids+=("$!")

fio_rc=0 sng_rc=0
wait "$fio_pid" || fio_rc=$?
wait "$sng_pid" || sng_rc=$?
touch "$tmp/stop"
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
echo "stress: ran $(((($(now_us) - t_start)) / 1000000)) s"

# ---- what came out -------------------------------------------------------------
mountpoint -q "$mnt" || fail "the file system is no longer mounted after the run"
((fio_rc == 0)) || { tail -30 "$tmp/fio.out" >&2; fail "fio exited with $fio_rc"; }
python3 - "$tmp/fio.json" <<'PY' || fail "fio reported errors"
import json, sys
j = json.load(open(sys.argv[1]))
bad = 0
for x in j["jobs"]:
    r, w = x["read"], x["write"]
    print("  fio %-9s error %d  read %6d MiB  written %6d MiB" %
          (x["jobname"], x["error"], r["io_bytes"] >> 20, w["io_bytes"] >> 20))
    if x["error"] or not w["io_bytes"]:
        bad = 1
sys.exit(bad)
PY
((sng_rc == 0)) || { tail -20 "$tmp/stress-ng.out" >&2; fail "stress-ng exited with $sng_rc"; }
grep -q "successful run completed" "$tmp/stress-ng.out" || { cat "$tmp/stress-ng.out" >&2; fail "stress-ng"; }
grep -E "^stress-ng: metrc: .* (hdd|iomix) " "$tmp/stress-ng.out" | sed 's/^stress-ng: metrc: \[[0-9]*\]/  stress-ng/' | head -2

read -r churn_n churn_errors <"$tmp/churn.count"
echo "  churn: $churn_n create/rename/read/remove rounds, $churn_errors failed"
((churn_errors == 0)) || { head -20 "$tmp/churn.err" >&2; fail "$churn_errors churn rounds failed"; }
((churn_n >= 20)) || fail "only $churn_n churn rounds in $secs s"
[ ! -s "$tmp/watch.err" ] || { head -20 "$tmp/watch.err" >&2; fail "reading status/ or listing docs/ failed"; }
read -r watch_n max_ls max_stat <"$tmp/watch.max"
awk -v n="$watch_n" -v l="$max_ls" -v s="$max_stat" -v lim="$max_latency_s" 'BEGIN {
	printf "  latency: %d rounds; slowest ls %.3f s, slowest stat %.3f s (limit %s s)\n", n, l / 1e6, s / 1e6, lim }'
limit_us=$((max_latency_s * 1000000))
((max_ls <= limit_us)) || fail "an ls took $max_ls us, more than $max_latency_s s"
((max_stat <= limit_us)) || fail "a stat took $max_stat us, more than $max_latency_s s"

# the file written during the run, verified again through the mount with
# O_DIRECT reads (the daemon's reads of the backing file, not the page cache)
DIRECT=1 fio --section=written --verify_only --output-format=json --output="$tmp/verify.json" \
	"$tmp/job.fio" >"$tmp/verify.out" 2>&1 || { cat "$tmp/verify.out" >&2; fail "fio --verify_only"; }
python3 - "$tmp/verify.json" <<'PY' || fail "fio --verify_only reported errors"
import json, sys
x = json.load(open(sys.argv[1]))["jobs"][0]
print("  fio verify_only: error %d, %d MiB read back" % (x["error"], x["read"]["io_bytes"] >> 20))
sys.exit(1 if x["error"] or x["read"]["io_bytes"] < 64 << 20 else 0)
PY

# still answering: a listing, status/json, and the daemon catches up with
# the documents the churn left
t0=$(now_us)
ls -la "$mnt/docs" "$mnt/docs/churn" >/dev/null || fail "ls after the run"
echo "  ls -la docs/ docs/churn/ after the run: $((($(now_us) - t0) / 1000)) ms"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$mnt/status/json" || fail "status/json"
kept=$(find "$store/docs/churn" -name 'b*.txt' | wc -l)
for ((i = 0; i < 600; i++)); do
	[ "$(cat "$mnt/status/pending_reindex")" = 0 ] && break
	sleep 0.1
done
[ "$(cat "$mnt/status/pending_reindex")" = 0 ] || fail "status/pending_reindex: $(cat "$mnt/status/pending_reindex") after 60 s"
docs=$(cat "$mnt/status/documents")
echo "  indexed: $docs documents ($kept .txt files kept by the churn)"
((docs >= kept)) || fail "status/documents is $docs, fewer than the $kept .txt files in docs/churn"

"$bin" umount --store "$store" "$mnt" || fail "seekfs umount"
! mountpoint -q "$mnt" || fail "still mounted after seekfs umount"
echo ok
