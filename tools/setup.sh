#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for seekfs, idempotently: the system
# packages the build needs, a Python environment (.venv) for the test tools
# and model packages, the default models, and the release build in build/.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config dpkg-dev libpcre2-dev libjansson-dev libutf8proc-dev
	libsqlite3-dev libxxhash-dev libpoppler-glib-dev libcairo2-dev libfaiss-dev libfuse3-dev fuse3 libstemmer-dev
	python3 python3-venv fio stress-ng)
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

# FAISS's C API: Debian ships its headers and libfaiss.a but not its compiled
# code, so the build compiles faiss/c_api from Debian's faiss source package.
if [ ! -f .deps/faiss/c_api/Index_c.cpp ] && ! ldconfig -p | grep -q 'libfaiss_c\.so'; then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	if ! apt-get source --print-uris faiss >/dev/null 2>&1; then
		echo "setup: enabling Debian source packages (deb-src) for apt-get source faiss"
		$sudo tee /etc/apt/sources.list.d/seekfs-deb-src.sources >/dev/null <<-EOF
			Types: deb-src
			URIs: http://deb.debian.org/debian
			Suites: bookworm
			Components: main
			Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
		EOF
		$sudo apt-get update -q
	fi
	rm -rf .deps/faiss .deps/faiss-src
	mkdir -p .deps/faiss-src
	(cd .deps/faiss-src && apt-get source --download-only -q faiss && dpkg-source -x faiss_*.dsc src >/dev/null)
	mv .deps/faiss-src/src .deps/faiss
	rm -rf .deps/faiss-src
	echo "setup: faiss source in .deps/faiss"
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
