#!/usr/bin/env python3
"""Requests in a store's queries/ folder, made directly (not through a
mount), for tests/test_mount_many.sh and bench/bench_fs.sh (b).

  make_requests.py DIR N plain      N request files r00000 .. (NAME only)
  make_requests.py DIR N finished   the same, each with the six result files
                                    of a finished query (.status "done",
                                    .stream, .hits, .answer, .json, .done)

Request i reads "What is question number i?"; its .answer (and .stream)
"Answer i [1]." (r01234.answer is 17 bytes).
"""
import os
import sys


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in ("plain", "finished"):
        sys.exit(__doc__)
    d, n, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    for i in range(n):
        b = os.path.join(d, "r%05d" % i)
        files = [("", "What is question number %d?\n" % i)]
        if kind == "finished":
            files += [(".status", "done\n"), (".stream", "Answer %d [1].\n" % i),
                      (".hits", "1\tdoc.txt\t0.5\n"), (".answer", "Answer %d [1].\n" % i),
                      (".json", "{}\n"), (".done", "")]
        for sfx, text in files:
            with open(b + sfx, "w") as f:
                f.write(text)


if __name__ == "__main__":
    main()
