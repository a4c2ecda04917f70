#!/usr/bin/env bash
# The kernel's cache of queries/ against the daemon's changes. Entries and
# attributes there are cached (so that ls -l sends no request per name),
# and the daemon tells the kernel of every result file it writes, replaces
# or removes. Checked through the mount, with every name looked up and
# listed (ls -l) before it changes, so that the kernel holds it:
#  - a name stat'ed before it exists (NAME.done, NAME.error) shows as soon
#    as it is written: a poller sees it;
#  - a request written again: right after its close() returns, no name
#    leads to the previous run's results (a NAME.done that exists is the new
#    run's); once the new NAME.done is there, every result has its new size
#    and content (NAME.status goes from "done" to "error" and back);
#  - the same with three threads reading the results meanwhile: every
#    file they open is whole, and no call fails but with ENOENT;
#  - rm NAME: its results are gone when rm returns;
#  - a listing (READDIRPLUS) while a name further on is renamed through
#    the mount does not bring the old name back;
#  - a result removed directly in STORE/queries is gone within 2 s.
# Search requests (BM25): no model is needed.
set -euo pipefail
export LC_ALL=C
. "$(dirname "$0")/mount_lib.sh"
mkdir -p "$tmp/nomodels"
SEEKFS_MODELS=$tmp/nomodels "$bin" mount --store "$store" "$mnt"
mountpoint -q "$mnt" || fail "not mounted"
q=$mnt/queries

echo "A French press steeps coarse coffee for four minutes before the plunger goes down." >"$mnt/docs/coffee.txt"
echo "Jupiter is the largest planet; its great red spot is a storm older than telescopes." >"$mnt/docs/planets.txt"
for ((i = 0; i < 600; i++)); do
	[ "$(cat "$mnt/status/documents")" = 2 ] && [ "$(cat "$mnt/status/pending_reindex")" = 0 ] && break
	sleep 0.1
done
[ "$(cat "$mnt/status/documents")" = 2 ] || fail "status/documents: $(cat "$mnt/status/documents")"

# wait_done NAME: poll for NAME.done as a client would (test -e, 10 ms apart)
wait_done() {
	local i
	for ((i = 0; i < 3000; i++)); do
		[ -e "$q/$1.done" ] && return 0
		sleep 0.01
	done
	fail "$1.done did not appear within 30 s"
}
# check_sizes NAME: every result's size (stat, from the kernel's cache when
# it holds one) is the length of its content (read through the daemon)
check_sizes() {
	local f
	for f in "$q/$1" "$q/$1".*; do
		[ "$(stat -c %s "$f")" = "$(wc -c <"$f")" ] ||
			fail "$f: stat says $(stat -c %s "$f") bytes, its content has $(wc -c <"$f")"
	done
}
search() { printf '{"q": "%s", "mode": "search", "k": 1}\n' "$1"; }

# ---- a name looked up before it exists ---------------------------------------
ls -l "$q" >/dev/null
! stat "$q/a.done" "$q/a.hits" >/dev/null 2>&1 || fail "a.done or a.hits exists before a was written"
search "coffee french press" >"$q/a"
wait_done a
[ "$(cut -f3 "$q/a.hits")" = coffee.txt ] || fail "a.hits: $(cat "$q/a.hits")"
check_sizes a
! stat "$q/a.error" >/dev/null 2>&1 || fail "a.error exists after a search that worked"

# ---- the same request written again, over cached results ---------------------
# rounds alternate the document found, and a malformed request (a.error,
# a.status "error") with a good one (a.hits, a.status "done")
for ((r = 1; r <= 12; r++)); do
	ls -l "$q" >/dev/null         # listed: READDIRPLUS caches every name and its attributes
	stat "$q"/a "$q"/a.* >/dev/null # and looked up by name
	stat "$q/a.error" >/dev/null 2>&1 || true
	case $((r % 3)) in
	0) question="largest planet storm" doc=planets.txt want=done ;;
	1) question="coffee plunger minutes" doc=coffee.txt want=done ;;
	2) question= doc= want=error ;;
	esac
	if [ $want = done ]; then search "$question" >"$q/a"; else echo '{"q": 5}' >"$q/a"; fi
	# right after close(): a.done, if there, is this run's (its a.json is)
	if [ -e "$q/a.done" ]; then
		grep -q "\"q\": ${question:+\"}${question:-5}" "$q/a.json" ||
			fail "round $r: a.done of the previous run is still seen after a was written again"
	fi
	wait_done a
	status=$(cat "$q/a.status")
	[ "$status" = $want ] || fail "round $r: a.status is '$status', not $want"
	check_sizes a
	if [ $want = done ]; then
		[ "$(cut -f3 "$q/a.hits")" = $doc ] || fail "round $r: a.hits: $(cat "$q/a.hits")"
		! stat "$q/a.error" >/dev/null 2>&1 || fail "round $r: a.error of the previous run is still seen"
	else
		grep -q '"q" must be' "$q/a.error" || fail "round $r: a.error: $(cat "$q/a.error" 2>&1)"
		! stat "$q/a.hits" >/dev/null 2>&1 || fail "round $r: a.hits of the previous run is still seen"
	fi
done

# ---- the same, with readers beside it -----------------------------------------------
# three threads open, fstat, read and stat p's results without pause while
# p is written again and again: every file they open is whole (its fstat
# size is what they read; p.json parses; p.status is a word), no call fails
# but with ENOENT, and each run's results are its own
python3 - "$q" <<'PY' || fail "readers beside a request written again"
import json, os, sys, threading, time
q = sys.argv[1]
path = lambda n: os.path.join(q, n)
errors, stop = [], False

def reader():
    while not stop:
        for name in ("p.json", "p.status", "p.hits", "p.done"):
            try:
                with open(path(name), "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    data = f.read()
                if size != len(data):
                    errors.append("%s: fstat says %d bytes, read %d" % (name, size, len(data)))
                if name == "p.json":
                    json.loads(data)
                elif name == "p.status" and data not in (b"queued\n", b"running\n", b"done\n"):
                    errors.append("p.status: %r" % data)
                os.stat(path(name))
            except FileNotFoundError:
                pass
            except Exception as e:
                errors.append("%s: %r" % (name, e))

def run(i, question, doc):
    with open(path("p"), "w") as f:
        f.write(json.dumps({"q": question, "mode": "search", "k": 1}))
    if os.path.exists(path("p.done")):
        try:
            asked = json.load(open(path("p.json")))["request"]["q"]
        except FileNotFoundError:
            asked = None
        if asked != question:
            errors.append("run %d: p.done of the run before is seen after p was written" % i)
    t0 = time.time()
    while not os.path.exists(path("p.done")):
        if time.time() - t0 > 30:
            raise RuntimeError("run %d: p.done did not appear" % i)
        time.sleep(0.001)
    j = json.load(open(path("p.json")))
    hits = open(path("p.hits")).read().split("\t")
    if j["request"]["q"] != question or hits[2] != doc:
        errors.append("run %d: p.json asks %r, p.hits finds %r" % (i, j["request"]["q"], hits[2]))
    for name in ("p.json", "p.hits", "p.status"):
        if os.stat(path(name)).st_size != len(open(path(name), "rb").read()):
            errors.append("run %d: %s: stat and content differ in size" % (i, name))

threads = [threading.Thread(target=reader) for _ in range(3)]
for t in threads:
    t.start()
runs = [("coffee french press", "coffee.txt"), ("largest planet storm", "planets.txt")]
try:
    for i in range(60):
        run(i, *runs[i % 2])
except Exception as e:
    errors.append(repr(e))
finally:
    stop = True
    for t in threads:
        t.join()
for e in errors[:10]:
    print(e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
rm "$q/p"

# ---- rm NAME: its results go at once --------------------------------------------
ls -l "$q" >/dev/null
stat "$q"/a.* >/dev/null
rm "$q/a"
for f in a.done a.status a.json a.hits a.stream; do
	! stat "$q/$f" >/dev/null 2>&1 || fail "$f is still seen right after rm a"
done
[ -z "$(ls "$q")" ] || fail "queries/ after rm a: $(ls "$q")"

# ---- a listing while names change through the mount ----------------------------------
# ls -l style (a stat per name read, so every batch carries attributes) over
# 3,000 names in docs/ (*.tmp: stored, never indexed); a name further on is
# renamed half-way: it must neither be listed after the rename (the daemon
# reads names ahead of the batch it answers) nor stat afterwards
mkdir "$store/docs/many"
for ((i = 0; i < 3000; i++)); do : >"$store/docs/many/f$i.tmp"; done
python3 - "$mnt/docs/many" <<'PY' || fail "a listing while names change"
import os, sys
d = sys.argv[1]
os.system("ls -l '%s' >/dev/null" % d)  # the kernel knows every name
order = [e.name for e in os.scandir(d)]
bad = []
for r in range(4):
    victim = order[600 + 10 * r]
    seen = []
    with os.scandir(d) as it:
        for i, e in enumerate(it):
            seen.append(e.name)
            try:
                os.lstat(e.path)
            except FileNotFoundError:
                pass
            if i == 300:
                os.rename(os.path.join(d, victim), os.path.join(d, "moved%d.tmp" % r))
    if victim in seen[301:]:
        bad.append("%s listed after it was renamed" % victim)
    if os.path.lexists(os.path.join(d, victim)):
        bad.append("%s still stats after it was renamed" % victim)
    order = [e.name for e in os.scandir(d)]
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY

# ---- a result removed behind the mount ---------------------------------------------
search "coffee" >"$q/b"
wait_done b
stat "$q"/b.* >/dev/null
rm "$store/queries/b.json"
for ((i = 0; i < 20; i++)); do
	[ -e "$q/b.json" ] || break
	sleep 0.1
done
[ ! -e "$q/b.json" ] || fail "b.json, removed in the store, is still seen after 2 s"

"$bin" umount "$mnt"
echo ok
