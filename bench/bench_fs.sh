#!/usr/bin/env bash
# bench_fs: what the mounted filesystem costs. Prints figures; not a test.
#
#   bash bench/bench_fs.sh [a] [b] [c]        (default: all three)
#
# (a) docs/ sequential throughput: dd of SIZE_MB (default 1024) MiB, written
#     with conv=fsync, through MNT/docs and directly in a folder on the same
#     file system as the store; then read, through MNT/docs and directly, two
#     files of random bytes written alike behind the mount (so that how fast
#     the mount wrote cannot change what the disk does during the reads);
#     buffered and O_DIRECT; caches dropped before every run (as root).
#     Median of REPS (default 3) runs; the ratio mount/direct (goal >= 70%).
# (b) ls and ls -l of queries/ with N_REQ (default 10000) requests in the
#     store, made directly in STORE/queries before mounting: first as plain
#     request files (NAME only: written, never submitted; 10,000 entries),
#     then as finished requests (NAME, NAME.status "done", .stream, .hits,
#     .answer, .json, .done: 70,000 entries; fewer requests when the
#     open-file limit is lower than that, as the daemon holds a descriptor
#     per name the kernel has looked up).
#     Cold (first listing after mounting) and warm (median of 5), and the
#     same ls on STORE/queries directly. Goal < 100 ms.
# (c) the filesystem's cost of a query: from the write of a search request
#     {"q": ..., "mode": "search"} to MNT/queries/NAME until NAME.done exists
#     (polled every 50 us), against the same search through
#     `seekfs search --store STORE` ("N hits in X ms"), over N_Q (default 50)
#     queries; p50 of the difference (goal < 2 ms), and the breakdown that
#     NAME.json's timings allow: close() of the request (its data fsynced;
#     the submission writes NAME.stream and NAME.status, not fsynced: a
#     restart rewrites them), the queue wait (the worker's wake-up), the
#     search itself, and the rest (the result files, each written and
#     renamed, the final ones synced together before NAME.done, and the
#     poll); plus the fsync+rename cost of one small file on the store's
#     file system, measured alone.
#
# Environment: SEEKFS_BIN (default build/seekfs), BENCH_DIR (where the store
# and the test files go; default a new folder under /tmp: it needs 2 x
# SIZE_MB of space), SEEKFS_MODELS (the folder with all-MiniLM-L6-v2.gguf,
# default ~/.local/share/seekfs/models; only the embedder is used).
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${SEEKFS_BIN:-$here/build/seekfs}
size_mb=${SIZE_MB:-1024}
reps=${REPS:-3}
n_req=${N_REQ:-10000}
n_q=${N_Q:-50}
models=${SEEKFS_MODELS:-$HOME/.local/share/seekfs/models}
parts=${*:-a b c}
[ -x "$bin" ] || { echo "bench_fs: $bin not built" >&2; exit 1; }
[ -e /dev/fuse ] || { echo "bench_fs: no /dev/fuse" >&2; exit 1; }

tmp=${BENCH_DIR:-$(mktemp -d /tmp/bench_fs.XXXXXX)}
mkdir -p "$tmp"
mnt=$tmp/mnt
mkdir -p "$mnt" "$tmp/nomodels" "$tmp/emb"
cur_store=
cleanup() {
	if mountpoint -q "$mnt"; then "$bin" umount --store "$cur_store" "$mnt" >/dev/null 2>&1 || umount -l "$mnt"; fi
	[ -n "${BENCH_DIR:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

# mount STORE [MODELS_DIR]
mount_store() {
	cur_store=$1
	mkdir -p "$1"
	SEEKFS_MODELS=${2:-$tmp/nomodels} "$bin" mount --store "$1" "$mnt"
}
umount_store() { "$bin" umount --store "$cur_store" "$mnt"; }
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
# drop_caches: every timed run starts from cold caches and an idle disk (the
# second after sync lets a virtual disk finish what the last run gave it)
drop_caches() {
	sync
	if [ -w /proc/sys/vm/drop_caches ]; then echo 3 >/proc/sys/vm/drop_caches; else dropped=no; fi
	sleep 1
}
dropped=yes
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---- (a) ----------------------------------------------------------------------
# run_dd write|read FILE [direct]: MB/s (10^6 bytes per second)
run_dd() {
	local what=$1 file=$2 flag=${3:-} t0 t1
	drop_caches
	t0=$(now_us)
	if [ "$what" = write ]; then
		dd if=/dev/zero of="$file" bs=1M count="$size_mb" conv=fsync ${flag:+oflag=$flag} status=none
	else
		dd if="$file" of=/dev/null bs=1M ${flag:+iflag=$flag} status=none
	fi
	t1=$(now_us)
	awk -v b=$((size_mb * 1048576)) -v us=$((t1 - t0)) 'BEGIN { printf "%.0f\n", b / us }'
}

bench_a() {
	echo "(a) docs/ sequential throughput, $size_mb MiB with dd bs=1M; MB/s, median (best) of $reps runs"
	echo "    (mount and direct runs alternate, so that a busy machine slows both alike)"
	mount_store "$tmp/store-a"
	mkdir -p "$tmp/direct"
	# the files the read runs read: written the same way, behind the mount
	local f
	for f in "$tmp/store-a/docs/rd.bin" "$tmp/direct/rd.bin"; do
		dd if=/dev/urandom of="$f" bs=1M count="$size_mb" conv=fsync status=none
	done
	local mode flag i
	for mode in buffered direct; do
		flag=
		[ $mode = direct ] && flag=direct
		: >"$tmp/a.txt"
		for ((i = 0; i < reps; i++)); do
			echo "wm $(run_dd write "$mnt/docs/seq.bin" $flag)" >>"$tmp/a.txt"
			echo "wd $(run_dd write "$tmp/direct/seq.bin" $flag)" >>"$tmp/a.txt"
		done
		# the reads: of two files written alike (in the backing folders),
		# after the disk has settled from the writes
		sleep 5
		for ((i = 0; i < reps; i++)); do
			echo "rm $(run_dd read "$mnt/docs/rd.bin" $flag)" >>"$tmp/a.txt"
			echo "rd $(run_dd read "$tmp/direct/rd.bin" $flag)" >>"$tmp/a.txt"
		done
		awk -v m="$mode" '
			{ v[$1, ++n[$1]] = $2 }
			function med(k,   a, i, j, t, c) {
				c = n[k]; for (i = 1; i <= c; i++) a[i] = v[k, i]
				for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
				best[k] = a[c]
				return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2 }
			END {
				wm = med("wm"); wd = med("wd"); rm = med("rm"); rd = med("rd")
				printf "  %-8s write (conv=fsync): mount %5.0f (%5.0f)  direct %5.0f (%5.0f)  ratio %3.0f%% (%3.0f%%)\n", m, wm, best["wm"], wd, best["wd"], 100 * wm / wd, 100 * best["wm"] / best["wd"]
				printf "  %-8s read:               mount %5.0f (%5.0f)  direct %5.0f (%5.0f)  ratio %3.0f%% (%3.0f%%)\n", m, rm, best["rm"], rd, best["rd"], 100 * rm / rd, 100 * best["rm"] / best["rd"] }' "$tmp/a.txt"
		rm -f "$mnt/docs/seq.bin" "$tmp/direct/seq.bin"
	done
	rm -f "$mnt/docs/rd.bin" "$tmp/direct/rd.bin"
	[ $dropped = yes ] || echo "  (caches could not be dropped: not root?)"
	umount_store
	rm -rf "$tmp/store-a" "$tmp/direct"
}

# ---- (b) ----------------------------------------------------------------------
# time_ls ARGS...: milliseconds of one ls
time_ls() {
	local t0 t1
	t0=$(now_us)
	ls "$@" >/dev/null
	t1=$(now_us)
	awk -v us=$((t1 - t0)) 'BEGIN { printf "%.1f\n", us / 1000 }'
}

ls_figures() {
	local label=$1 store=$2 cold_ls cold_l warm_ls warm_l back_ls back_l
	drop_caches
	mount_store "$store"
	cold_ls=$(time_ls "$mnt/queries")
	cold_l=$(time_ls -l "$mnt/queries")
	warm_ls=$(for i in 1 2 3 4 5; do time_ls "$mnt/queries"; done | median)
	warm_l=$(for i in 1 2 3 4 5; do time_ls -l "$mnt/queries"; done | median)
	local n
	n=$(ls "$mnt/queries" | wc -l)
	umount_store
	back_ls=$(for i in 1 2 3 4 5; do time_ls "$store/queries"; done | median)
	back_l=$(for i in 1 2 3 4 5; do time_ls -l "$store/queries"; done | median)
	echo "  $label ($n entries):"
	echo "    ls queries/     cold $cold_ls ms, warm $warm_ls ms   (STORE/queries directly: $back_ls ms)"
	echo "    ls -l queries/  cold $cold_l ms, warm $warm_l ms   (STORE/queries directly: $back_l ms)"
}

bench_b() {
	echo "(b) listing queries/ with $n_req requests in the store (goal < 100 ms)"
	mkdir -p "$tmp/store-b/queries"
	python3 "$here/tests/make_requests.py" "$tmp/store-b/queries" "$n_req" plain
	ls_figures "$n_req plain request files (NAME only)" "$tmp/store-b"
	# the daemon needs a descriptor per entry (and some for itself); as root
	# it raises its limit to fs.nr_open
	local n_done=$n_req limit
	limit=$(ulimit -Hn)
	if [ "$(id -u)" = 0 ]; then limit=$(cat /proc/sys/fs/nr_open); fi
	if [ "$limit" != unlimited ] && (((limit - 2000) / 7 < n_done)); then n_done=$(((limit - 2000) / 7)); fi
	rm -rf "$tmp/store-b/queries"
	mkdir -p "$tmp/store-b/queries"
	python3 "$here/tests/make_requests.py" "$tmp/store-b/queries" "$n_done" finished
	((n_done == n_req)) || echo "  (only $n_done finished requests: the open-file limit is $limit)"
	ls_figures "$n_done finished requests (NAME and its 6 result files)" "$tmp/store-b"
	rm -rf "$tmp/store-b"
}

# ---- (c) ----------------------------------------------------------------------
bench_c() {
	local emb=$models/all-MiniLM-L6-v2.gguf store=$tmp/store-c
	[ -f "$emb" ] || { echo "(c) skipped: $emb not found (bash tools/fetch-models.sh)"; return; }
	ln -sf "$emb" "$tmp/emb/all-MiniLM-L6-v2.gguf" # the embedder alone: no generator is loaded
	echo "(c) the filesystem's cost of a search query ($n_q queries; goal: p50 < 2 ms)"
	mount_store "$store" "$tmp/emb"
	cp "$here"/examples/docs/* "$mnt/docs/"
	local i
	for ((i = 0; i < 600; i++)); do
		[ "$(cat "$mnt/status/documents")" -ge 3 ] && [ "$(cat "$mnt/status/pending_reindex")" = 0 ] &&
			[ "$(cat "$mnt/status/vectors")" = "$(cat "$mnt/status/chunks")" ] && break
		sleep 0.1
	done
	echo "  store: $(cat "$mnt/status/documents") documents, $(cat "$mnt/status/chunks") chunks, $(cat "$mnt/status/vectors") vectors, embedder $(cat "$mnt/status/embedder")"
	python3 - "$mnt/queries" "$store" "$bin" "$emb" "$n_q" <<'PY'
import json, os, re, statistics, subprocess, sys, time
qdir, store, seekfs, emb, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
questions = [
    "How long should coffee steep in a French press?", "What grind size for a French press?",
    "Which planet is the largest?", "How many moons does Mars have?", "Who created Unix?",
    "When was the C language written?", "What is the hottest planet?", "water temperature for brewing coffee",
    "Bell Labs operating system history", "rings of Saturn", "espresso pressure", "the asteroid belt",
    "pipes and small tools philosophy", "coffee bloom carbon dioxide", "distance from the sun to Neptune",
]
def q(i):
    return questions[i % len(questions)] + ("" if i < len(questions) else " (%d)" % i)

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]

def fs_query(name, text):
    path = os.path.join(qdir, name)
    done = path + ".done"
    t0 = time.perf_counter()
    with open(path, "w") as f:
        f.write(json.dumps({"q": text, "mode": "search"}) + "\n")
    t1 = time.perf_counter()
    while not os.path.exists(done):
        time.sleep(0.00005)
    t2 = time.perf_counter()
    j = json.load(open(path + ".json"))
    return t1 - t0, t2 - t0, j["timings"]["queue"], j["timings"]["retrieve"], j.get("status")

for i in range(5):  # warm-up
    fs_query("warm%d" % i, q(i))
rows = []
for i in range(n):
    rows.append(fs_query("b%03d" % i, q(i)))
bad = [r for r in rows if r[4] != "done"]
cli = []
for i in range(n):
    p = subprocess.run([seekfs, "search", "--store", store, "--embedder", emb, "-k", "5", q(i)],
                       capture_output=True, text=True)
    m = re.search(r"(\d+) hits in ([0-9.]+) ms", p.stderr)
    if not m:
        sys.exit("seekfs search: " + p.stderr)
    cli.append(float(m.group(2)) / 1e3)
ms = lambda x: "%7.2f" % (x * 1e3)
total = [r[1] for r in rows]
close = [r[0] for r in rows]
queue = [r[2] for r in rows]
retr = [r[3] for r in rows]
rest = [r[1] - r[0] - r[2] - r[3] for r in rows]
diff_cli = [t - c for t, c in zip(total, cli)]
diff_own = [t - s for t, s in zip(total, retr)]
print("  %-58s %7s %7s %7s" % ("(ms)", "p50", "p90", "max"))
def line(label, v):
    print("  %-58s %s %s %s" % (label, ms(pct(v, 50)), ms(pct(v, 90)), ms(max(v))))
line("write request -> NAME.done exists, through the mount", total)
line("seekfs search --store (its own 'hits in X ms')", cli)
line("difference, query by query (total - CLI search)", diff_cli)
line("difference to the daemon's own search time (total - retrieve)", diff_own)
print("  breakdown:")
line("  open+write+close of the request (submit: 2 result files)", close)
line("  queue: submitted -> a worker runs it (NAME.json)", queue)
line("  retrieve: the search in the daemon (NAME.json)", retr)
line("  the rest: result files (hits, json, status, done) + poll", rest)
# one small file written, fsynced and renamed on the store's file system
d = os.path.join(store, "fsync-probe")
os.makedirs(d, exist_ok=True)
fs = []
for i in range(50):
    t0 = time.perf_counter()
    fd = os.open(os.path.join(d, ".x.tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"done\n")
    os.fsync(fd)
    os.close(fd)
    os.rename(os.path.join(d, ".x.tmp"), os.path.join(d, "x%d" % i))
    fs.append(time.perf_counter() - t0)
line("one result file alone (write+fsync+close+rename, store fs)", fs)
print("  a search query writes 7 result files (.stream, .status x3, .hits, .json, .done); before .done,\n"
      "  writeback of .hits, .json and .status is started, then each is synced, then the folder")
if bad:
    print("  %d queries did not finish as done" % len(bad))
PY
	umount_store
}

for p in $parts; do "bench_$p"; done
