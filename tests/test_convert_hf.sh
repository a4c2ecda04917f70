#!/usr/bin/env bash
# `seekfs convert hf DIR -o OUT.gguf`: Hugging Face BERT folders to GGUF.
#
# First on a tiny BERT folder made here (zero weights, F32 safetensors written
# byte by byte): the keys and tensors written, and refusals that name the file
# (truncated safetensors, bad header, missing or misshapen tensors, no
# config.json, a non-BERT architecture, PyTorch-only weights). Then on the real
# all-MiniLM-L6-v2 folder that tools/fetch-models.sh installs: every key value,
# 101 tensors with their shapes, F16 output, a truncated copy refused, and,
# with a Python that has gguf and numpy, the vocabulary compared with
# llama.cpp's bert-bge vocabulary and every tensor with the safetensors data.
# Without the real folder the test is skipped (77) after the tiny checks.
set -euo pipefail
bin=${SEEKFS_BIN:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

# le64 N: N as 8 little-endian bytes
le64() {
	local i
	for i in 0 1 2 3 4 5 6 7; do
		printf "\\x$(printf %02x $((($1 >> (8 * i)) & 255)))"
	done
}

# make_st FILE NAME:D0,D1 ...: a safetensors file of F32 zeros
make_st() {
	local file=$1 hdr="{" off=0 sep="" spec name dims n d
	shift
	for spec in "$@"; do
		name=${spec%%:*} dims=${spec#*:} n=1
		for d in ${dims//,/ }; do n=$((n * d)); done
		hdr+="$sep\"$name\":{\"dtype\":\"F32\",\"shape\":[$dims],\"data_offsets\":[$off,$((off + 4 * n))]}"
		off=$((off + 4 * n)) sep=","
	done
	hdr+=',"__metadata__":{"format":"pt"}}'
	{ le64 ${#hdr}; printf '%s' "$hdr"; head -c $off /dev/zero; } >"$file"
}

# expect_refusal WHAT DIR PATTERN...: conversion fails, writes no file, and
# stderr matches every pattern
expect_refusal() {
	local what=$1 dir=$2 p
	shift 2
	rm -f "$tmp/out.gguf"
	if "$bin" convert hf "$dir" -o "$tmp/out.gguf" 2>"$tmp/err"; then
		bad "$what: accepted"
		return
	fi
	[ ! -e "$tmp/out.gguf" ] || bad "$what: an output file was left behind"
	! grep -q Sanitizer "$tmp/err" || bad "$what: $(cat "$tmp/err")"
	for p in "$@"; do
		grep -q -- "$p" "$tmp/err" || bad "$what: message lacks '$p': $(cat "$tmp/err")"
	done
}

# expect_info FILE LINE...: `seekfs info FILE` prints every line exactly
expect_info() {
	local f=$1 l
	shift
	"$bin" info "$f" >"$tmp/info" || { bad "seekfs info $f failed"; return; }
	for l in "$@"; do
		grep -qxF -- "$l" "$tmp/info" || bad "$f: no line '$l' in seekfs info"
	done
}

# ---- a tiny BERT: vocab 8, hidden 4, ffn 8, 1 layer, 2 heads, 16 positions ----
tiny="$tmp/tiny-bert"
mkdir -p "$tiny"
cat >"$tiny/config.json" <<'EOF'
{"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 8, "hidden_size": 4,
 "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
 "max_position_embeddings": 16, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
 "hidden_act": "gelu", "position_embedding_type": "absolute"}
EOF
printf '%s\n' '[PAD]' '[UNK]' '[CLS]' '[SEP]' '[MASK]' 'a' 'b' '##c' >"$tiny/vocab.txt"
echo '{"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}' \
	>"$tiny/special_tokens_map.json"
tensors=(embeddings.word_embeddings.weight:8,4 embeddings.position_embeddings.weight:16,4
	embeddings.token_type_embeddings.weight:2,4 embeddings.LayerNorm.weight:4
	embeddings.LayerNorm.bias:4 embeddings.position_ids:1,16)
for t in query key value; do
	tensors+=(encoder.layer.0.attention.self.$t.weight:4,4 encoder.layer.0.attention.self.$t.bias:4)
done
tensors+=(encoder.layer.0.attention.output.dense.weight:4,4 encoder.layer.0.attention.output.dense.bias:4
	encoder.layer.0.attention.output.LayerNorm.weight:4 encoder.layer.0.attention.output.LayerNorm.bias:4
	encoder.layer.0.intermediate.dense.weight:8,4 encoder.layer.0.intermediate.dense.bias:8
	encoder.layer.0.output.dense.weight:4,8 encoder.layer.0.output.dense.bias:4
	encoder.layer.0.output.LayerNorm.weight:4 encoder.layer.0.output.LayerNorm.bias:4
	pooler.dense.weight:4,4 pooler.dense.bias:4)
make_st "$tiny/model.safetensors" "${tensors[@]}"

if "$bin" convert hf "$tiny" -o "$tmp/tiny.gguf" 2>"$tmp/err"; then
	expect_info "$tmp/tiny.gguf" \
		"$tmp/tiny.gguf: GGUF v3, 25 keys, 21 tensors, alignment 32" \
		'  general.architecture = "bert"' \
		'  general.name = "tiny-bert"' \
		'  bert.block_count = 1' \
		'  bert.embedding_length = 4' \
		'  bert.feed_forward_length = 8' \
		'  bert.attention.head_count = 2' \
		'  bert.context_length = 16' \
		'  bert.attention.causal = 0' \
		'  seekfs.embed.normalize = 0' \
		'  tokenizer.ggml.model = "bert"' \
		'  tokenizer.ggml.tokens = [8 items: "[PAD]", "[UNK]", "[CLS]", "[SEP]", ...]' \
		'  tokenizer.ggml.token_type = [8 items: 3, 3, 3, 3, ...]' \
		'  tokenizer.ggml.cls_token_id = 2' \
		'  tokenizer.ggml.seperator_token_id = 3' \
		'  tokenizer.ggml.bos_token_id = 2' \
		'  tokenizer.ggml.eos_token_id = 3'
	grep -q pooling_type "$tmp/info" && bad "tiny: pooling_type written without modules.json"
	for t in token_embd.weight:'[4, 8]' position_embd.weight:'[4, 16]' token_types.weight:'[4, 2]' \
		blk.0.ffn_up.weight:'[4, 8]' blk.0.ffn_down.weight:'[8, 4]' blk.0.attn_output_norm.bias:'[4]'; do
		grep -qE "^  tensor ${t%%:*} +f32 +\\${t#*:}" "$tmp/info" || bad "tiny: tensor ${t%%:*} is not f32 ${t#*:}"
	done
else
	bad "tiny BERT refused: $(cat "$tmp/err")"
fi

# damaged copies of the tiny folder (links to its files, one file replaced)
variant() {
	rm -rf "$tmp/v"
	mkdir -p "$tmp/v"
	ln -s "$tiny"/* "$tmp/v/"
}
st="$tiny/model.safetensors"
size=$(stat -c %s "$st")
variant
rm "$tmp/v/model.safetensors"
head -c $((size - 4)) "$st" >"$tmp/v/model.safetensors"
expect_refusal "tiny, last 4 bytes cut" "$tmp/v" "$tmp/v/model.safetensors" truncated "file has $((size - 4))"
variant
rm "$tmp/v/model.safetensors"
head -c 60 "$st" >"$tmp/v/model.safetensors"
expect_refusal "tiny, cut inside the header" "$tmp/v" "$tmp/v/model.safetensors" truncated "file has 60"
variant
rm "$tmp/v/model.safetensors"
{ le64 9; printf 'not json!'; } >"$tmp/v/model.safetensors"
expect_refusal "tiny, header not JSON" "$tmp/v" "$tmp/v/model.safetensors" "invalid JSON header"
variant
rm "$tmp/v/model.safetensors"
make_st "$tmp/v/model.safetensors" "${tensors[@]:1}"
expect_refusal "tiny, no word embeddings" "$tmp/v" embeddings.word_embeddings.weight
variant
rm "$tmp/v/model.safetensors"
make_st "$tmp/v/model.safetensors" embeddings.word_embeddings.weight:8,5 "${tensors[@]:1}"
expect_refusal "tiny, misshapen embeddings" "$tmp/v" "$tmp/v/model.safetensors" embeddings.word_embeddings.weight "\[8, 5\]" "\[8, 4\]"
variant
rm "$tmp/v/model.safetensors"
make_st "$tmp/v/model.safetensors" "${tensors[@]}" classifier.weight:2,4
expect_refusal "tiny, an unknown tensor" "$tmp/v" "$tmp/v/model.safetensors" classifier.weight
variant
rm "$tmp/v/config.json"
expect_refusal "no config.json" "$tmp/v" "$tmp/v/config.json"
variant
rm "$tmp/v/config.json"
sed 's/"BertModel"/"XLMRobertaModel"/; s/"bert"/"xlm-roberta"/' "$tiny/config.json" >"$tmp/v/config.json"
expect_refusal "XLM-RoBERTa" "$tmp/v" config.json XLMRobertaModel xlm-roberta
variant
rm "$tmp/v/model.safetensors"
: >"$tmp/v/pytorch_model.bin"
expect_refusal "PyTorch-only folder" "$tmp/v" pytorch_model.bin safetensors
expect_refusal "a folder that does not exist" "$tmp/nowhere" "$tmp/nowhere/config.json"

# ---- the real embedder ----
models=${SEEKFS_MODELS:-$HOME/.local/share/seekfs/models}
hf="$models/hf/all-MiniLM-L6-v2"
if [ ! -f "$hf/model.safetensors" ] || [ ! -f "$hf/config.json" ]; then
	[ $fail = 0 ] || exit 1
	echo "tiny BERT checks passed; skipped: no all-MiniLM-L6-v2 folder at $hf (tools/fetch-models.sh minilm installs it)"
	exit 77
fi
out="$tmp/minilm.gguf"
if "$bin" convert hf "$hf" -o "$out" 2>"$tmp/err"; then
	expect_info "$out" \
		"$out: GGUF v3, 30 keys, 101 tensors, alignment 32" \
		'  general.architecture = "bert"' \
		'  general.name = "all-MiniLM-L6-v2"' \
		'  bert.block_count = 6' \
		'  bert.context_length = 512' \
		'  bert.embedding_length = 384' \
		'  bert.feed_forward_length = 1536' \
		'  bert.attention.head_count = 12' \
		'  bert.attention.layer_norm_epsilon = 1e-12' \
		'  bert.attention.causal = 0' \
		'  bert.pooling_type = 1' \
		'  seekfs.embed.normalize = 1' \
		'  seekfs.embed.max_tokens = 256' \
		'  general.file_type = 0' \
		'  tokenizer.ggml.token_type_count = 2' \
		'  tokenizer.ggml.model = "bert"' \
		'  tokenizer.ggml.pre = "bert-bge"' \
		'  tokenizer.ggml.tokens = [30522 items: "[PAD]", "[unused0]", "[unused1]", "[unused2]", ...]' \
		'  tokenizer.ggml.token_type = [30522 items: 3, 1, 1, 1, ...]' \
		'  tokenizer.ggml.bos_token_id = 101' \
		'  tokenizer.ggml.eos_token_id = 102' \
		'  tokenizer.ggml.unknown_token_id = 100' \
		'  tokenizer.ggml.seperator_token_id = 102' \
		'  tokenizer.ggml.padding_token_id = 0' \
		'  tokenizer.ggml.cls_token_id = 101' \
		'  tokenizer.ggml.mask_token_id = 103' \
		'  tokenizer.ggml.add_bos_token = 1' \
		'  tokenizer.ggml.add_eos_token = 1'
	want=(token_embd.weight:'[384, 30522]' token_types.weight:'[384, 2]' position_embd.weight:'[384, 512]'
		token_embd_norm.weight:'[384]' token_embd_norm.bias:'[384]')
	for l in 0 1 2 3 4 5; do
		for t in attn_q attn_k attn_v attn_output; do
			want+=(blk.$l.$t.weight:'[384, 384]' blk.$l.$t.bias:'[384]')
		done
		want+=(blk.$l.attn_output_norm.weight:'[384]' blk.$l.attn_output_norm.bias:'[384]'
			blk.$l.ffn_up.weight:'[384, 1536]' blk.$l.ffn_up.bias:'[1536]'
			blk.$l.ffn_down.weight:'[1536, 384]' blk.$l.ffn_down.bias:'[384]'
			blk.$l.layer_output_norm.weight:'[384]' blk.$l.layer_output_norm.bias:'[384]')
	done
	[ ${#want[@]} = 101 ] || bad "the test lists ${#want[@]} tensors, not 101"
	for t in "${want[@]}"; do
		grep -qE "^  tensor ${t%%:*} +f32 +\\${t#*:}" "$tmp/info" || bad "minilm: tensor ${t%%:*} is not f32 ${t#*:}"
	done
else
	bad "all-MiniLM-L6-v2 refused: $(cat "$tmp/err")"
fi

if "$bin" convert hf "$hf" -o "$tmp/minilm16.gguf" -t f16 2>"$tmp/err"; then
	"$bin" info "$tmp/minilm16.gguf" >"$tmp/info16"
	grep -qxF '  general.file_type = 1' "$tmp/info16" || bad "f16: general.file_type is not 1"
	for t in token_embd.weight:f16 blk.3.ffn_up.weight:f16 blk.5.attn_q.weight:f16 \
		position_embd.weight:f32 token_types.weight:f32 blk.3.ffn_up.bias:f32 token_embd_norm.weight:f32; do
		grep -qE "^  tensor ${t%%:*} +${t#*:} " "$tmp/info16" || bad "f16: tensor ${t%%:*} is not ${t#*:}"
	done
else
	bad "all-MiniLM-L6-v2 -t f16 refused: $(cat "$tmp/err")"
fi
"$bin" convert hf "$hf" -o "$tmp/x.gguf" -t q4_0 2>/dev/null && bad "-t q4_0 accepted"

# a truncated copy of the real weights
rm -rf "$tmp/v"
mkdir -p "$tmp/v"
ln -s "$hf"/* "$tmp/v/"
rm "$tmp/v/model.safetensors"
head -c 50000000 "$hf/model.safetensors" >"$tmp/v/model.safetensors"
expect_refusal "all-MiniLM-L6-v2, truncated to 50000000 bytes" "$tmp/v" "$tmp/v/model.safetensors" truncated "file has 50000000"

# the vocabulary as llama.cpp stores it, and the weights bit for bit
py="${SEEKFS_SRC:-.}/.venv/bin/python"
[ -x "$py" ] || py=python3
if [ -f "$out" ] && "$py" -c 'import gguf, numpy' 2>/dev/null; then
	"$py" - "$out" "${SEEKFS_DATA:?}/vocab/ggml-vocab-bert-bge.gguf" "$hf/model.safetensors" <<'EOF' || fail=1
import json, struct, sys
import numpy as np
from gguf import GGUFReader

ours, bge = GGUFReader(sys.argv[1]), GGUFReader(sys.argv[2])

def strs(r, k):
    f = r.fields[k]
    return [bytes(f.parts[i]).decode() for i in f.data]

def ints(r, k):
    f = r.fields[k]
    return [int(f.parts[i][0]) for i in f.data]

ok = True
for k in ("tokenizer.ggml.tokens",):
    if strs(ours, k) != strs(bge, k):
        print(f"FAIL: {k} differs from llama.cpp's bert-bge vocabulary", file=sys.stderr)
        ok = False
if ints(ours, "tokenizer.ggml.token_type") != ints(bge, "tokenizer.ggml.token_type"):
    print("FAIL: token types differ from llama.cpp's bert-bge vocabulary", file=sys.stderr)
    ok = False

raw = open(sys.argv[3], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
names = {"token_embd.weight": "embeddings.word_embeddings.weight",
         "token_types.weight": "embeddings.token_type_embeddings.weight",
         "position_embd.weight": "embeddings.position_embeddings.weight",
         "token_embd_norm": "embeddings.LayerNorm"}
blk = {"attn_q": "attention.self.query", "attn_k": "attention.self.key",
       "attn_v": "attention.self.value", "attn_output": "attention.output.dense",
       "attn_output_norm": "attention.output.LayerNorm", "ffn_up": "intermediate.dense",
       "ffn_down": "output.dense", "layer_output_norm": "output.LayerNorm"}
for t in ours.tensors:
    if t.name.startswith("blk."):
        _, l, part, wb = t.name.split(".")
        src = f"encoder.layer.{l}.{blk[part]}.{wb}"
    elif t.name in names:
        src = names[t.name]
    else:
        base, wb = t.name.rsplit(".", 1)
        src = f"{names[base]}.{wb}"
    h = hdr[src]
    b, e = h["data_offsets"]
    want = np.frombuffer(raw[8 + n + b:8 + n + e], dtype="<f4").reshape(h["shape"])
    got = np.asarray(t.data).reshape(h["shape"])
    if not np.array_equal(got, want):
        print(f"FAIL: {t.name} differs from {src}", file=sys.stderr)
        ok = False
sys.exit(0 if ok else 1)
EOF
else
	echo "note: no Python with gguf and numpy: vocabulary and weights not compared value by value" >&2
fi
exit $fail
