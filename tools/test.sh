#!/usr/bin/env bash
# The test suite: the tests built with AddressSanitizer and UBSan, then the
# release build's (build/, made by tools/setup.sh). Fails if either fails.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${SEEKFS_PYTHON:-$PWD/.venv/bin/python}"
jobs="$(nproc)"

cmake -S . -B build-asan -DSEEKFS_SANITIZE=ON -DSEEKFS_CUDA=OFF \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEEKFS_PYTHON="$py" >/dev/null
cmake --build build-asan -j"$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
asan=0
ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slow || asan=$?
unset ASAN_OPTIONS UBSAN_OPTIONS

cmake -S . -B build -DSEEKFS_PYTHON="$py" >/dev/null
cmake --build build -j"$jobs"
rel=0
ctest --test-dir build --output-on-failure -j"$jobs" || rel=$?
if [ "$asan" != 0 ]; then
	echo "test: the sanitizer build's tests failed (see above)" >&2
	exit 1
fi
exit "$rel"
