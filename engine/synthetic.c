/*
 * synthetic.c: GGUF files with the tensor names, shapes and types of named
 * real models and random weights, made on the spot so that benchmarks and
 * device tests need no download (a 7B/8B file is 4.7-8.5 GB).
 *
 * The hyperparameters are those of the real models' config.json (table
 * below). Tensor types follow llama.cpp's llama-quantize for the file type:
 *
 *   Q8_0    every matrix Q8_0; norms, biases and rope_freqs F32.
 *   Q4_K_M  (llama_tensor_get_type) matrices Q4_K, except
 *           - output.weight, or token_embd.weight when the model has no
 *             output.weight (tied), Q6_K;
 *           - attn_v.weight and ffn_down.weight of the layers i where
 *             use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2
 *             Q6_K;
 *           - a matrix whose rows are not a multiple of 256 elements falls
 *             back: Q4_K to Q5_0, Q6_K (and the output) to Q8_0.
 *           Norms, biases and rope_freqs stay F32.
 *   llama-quantize counts layers for use_more_bits in the order it visits
 *   tensors; it now sorts them by layer number (so i is the layer), while
 *   builds before late 2024 sorted by name (blk.0, blk.1, blk.10, ...),
 *   which picks other layers but as many of them: sizes are the same.
 *   Tensors are laid out in the order llama-quantize writes them: the
 *   tensors outside blocks by name, then block by block, by name within.
 *
 * Weights are random quant blocks rather than quantised random floats
 * (quantising 8 G weights to K-quants would take minutes): random quants
 * under fixed block scales chosen so that every weight decodes to a value of
 * mean about 0 and standard deviation about SYNTH_SIGMA, as in a freshly
 * initialised network. Products then stay of order one through all layers
 * (RMSNorm rescales each layer's input) and the logits are finite. Norm
 * weights are 1, biases uniform with the same deviation. Each row's
 * numbers come from its own seed (seed, tensor, row), so the file does not
 * depend on how the writer cuts it into chunks.
 *
 * The vocabulary is byte-level BPE of the model's size: the 256 byte
 * characters, then tokens of two and three characters built by merges
 * (so that any text encodes), then the family's special tokens with their
 * real ids, spellings and types, and the padding tokens that fill the
 * embedding's rows as llama.cpp's converter writes them ([PAD151665] ...).
 * The chat template is the family's, shortened to the plain-chat branch.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/internal.h"
#include "engine/tok_internal.h"

/* Deviation of the decoded weights and of the biases. */
#define SYNTH_SIGMA 0.02f

/* Token types, numbered as llama.cpp's (llama_token_type). */
enum { TT_NORMAL = 1, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5 };

/* ---- the models --------------------------------------------------------- */

/* Qwen2.5: config.json of Qwen/Qwen2.5-{0.5B,1.5B,7B}-Instruct. Llama 3.1:
 * meta-llama/Llama-3.1-8B-Instruct, rope_scaling {"rope_type": "llama3",
 * "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4,
 * "original_max_position_embeddings": 8192}. The tiny ones are small
 * models of the same families for tests: qwen2-tiny has rows of 384
 * elements (not a multiple of 256) so that its Q4_K_M file takes the Q5_0
 * and Q8_0 fallbacks as Qwen2.5-0.5B's does. */
static const struct synth_model models[] = {
	{ .name = "qwen2-tiny", .like = "a small Qwen2.5 (8 layers, for tests)", .arch = ARCH_QWEN2,
	  .n_vocab = 4096, .n_ctx_train = 32768, .n_embd = 384, .n_layer = 8, .n_head = 6,
	  .n_head_kv = 2, .head_dim = 64, .n_ff = 1024, .rope_base = 1000000.0f,
	  .norm_eps = 1e-6f, .tied = 1, .qkv_bias = 1 },
	{ .name = "qwen2-0.5b", .like = "Qwen2.5-0.5B-Instruct", .arch = ARCH_QWEN2,
	  .n_vocab = 151936, .n_ctx_train = 32768, .n_embd = 896, .n_layer = 24, .n_head = 14,
	  .n_head_kv = 2, .head_dim = 64, .n_ff = 4864, .rope_base = 1000000.0f,
	  .norm_eps = 1e-6f, .tied = 1, .qkv_bias = 1 },
	{ .name = "qwen2-1.5b", .like = "Qwen2.5-1.5B-Instruct", .arch = ARCH_QWEN2,
	  .n_vocab = 151936, .n_ctx_train = 32768, .n_embd = 1536, .n_layer = 28, .n_head = 12,
	  .n_head_kv = 2, .head_dim = 128, .n_ff = 8960, .rope_base = 1000000.0f,
	  .norm_eps = 1e-6f, .tied = 1, .qkv_bias = 1 },
	{ .name = "qwen2-7b", .like = "Qwen2.5-7B-Instruct", .arch = ARCH_QWEN2,
	  .n_vocab = 152064, .n_ctx_train = 32768, .n_embd = 3584, .n_layer = 28, .n_head = 28,
	  .n_head_kv = 4, .head_dim = 128, .n_ff = 18944, .rope_base = 1000000.0f,
	  .norm_eps = 1e-6f, .tied = 0, .qkv_bias = 1 },
	{ .name = "llama-tiny", .like = "a small Llama 3.1 (8 layers, for tests)",
	  .arch = ARCH_LLAMA,
	  .n_vocab = 4096, .n_ctx_train = 131072, .n_embd = 256, .n_layer = 8, .n_head = 4,
	  .n_head_kv = 2, .head_dim = 64, .n_ff = 768, .rope_base = 500000.0f,
	  .norm_eps = 1e-5f, .tied = 0, .qkv_bias = 0, .rope_factor = 8.0f,
	  .rope_low_freq = 1.0f, .rope_high_freq = 4.0f, .rope_orig_ctx = 8192 },
	{ .name = "llama-8b", .like = "Llama-3.1-8B-Instruct", .arch = ARCH_LLAMA,
	  .n_vocab = 128256, .n_ctx_train = 131072, .n_embd = 4096, .n_layer = 32, .n_head = 32,
	  .n_head_kv = 8, .head_dim = 128, .n_ff = 14336, .rope_base = 500000.0f,
	  .norm_eps = 1e-5f, .tied = 0, .qkv_bias = 0, .rope_factor = 8.0f,
	  .rope_low_freq = 1.0f, .rope_high_freq = 4.0f, .rope_orig_ctx = 8192 },
};
#define N_MODELS ((int)(sizeof models / sizeof models[0]))

static const struct {
	enum synth_ftype f;
	const char *name;
} ftypes[] = { { SYNTH_Q4_K_M, "q4_k_m" }, { SYNTH_Q8_0, "q8_0" } };
#define N_FTYPES ((int)(sizeof ftypes / sizeof ftypes[0]))

const struct synth_model *synth_model(int i)
{
	return i >= 0 && i < N_MODELS ? &models[i] : NULL;
}

const char *synth_ftype_name(enum synth_ftype f)
{
	for (int i = 0; i < N_FTYPES; i++)
		if (ftypes[i].f == f)
			return ftypes[i].name;
	return NULL;
}

int synth_lookup(const char *name, const struct synth_model **m, enum synth_ftype *f,
		 char *err, size_t errsz)
{
	size_t n = name ? strlen(name) : 0;
	for (int i = 0; i < N_MODELS; i++) {
		size_t bl = strlen(models[i].name);
		if (n <= bl + 1 || strncmp(name, models[i].name, bl) || name[bl] != '-')
			continue;
		for (int j = 0; j < N_FTYPES; j++) {
			if (!strcmp(name + bl + 1, ftypes[j].name)) {
				*m = &models[i];
				*f = ftypes[j].f;
				return 0;
			}
		}
	}
	char known[1024];
	size_t k = 0;
	known[0] = 0;
	for (int i = 0; i < N_MODELS; i++)
		for (int j = 0; j < N_FTYPES && k < sizeof known; j++)
			k += (size_t)snprintf(known + k, sizeof known - k, "%s%s-%s",
					      k ? ", " : "", models[i].name, ftypes[j].name);
	eng_err(err, errsz, "unknown synthetic model '%s'; known: %s", name ? name : "", known);
	return -ENOENT;
}

/* ---- tensor list ------------------------------------------------------- */

/* What a tensor's numbers are. */
enum fill_kind { FILL_WEIGHT, FILL_ONES, FILL_BIAS, FILL_ROPE_FREQS };

static int use_more_bits(int i, int n)
{
	return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* llama-quantize's choice for a matrix whose rows have ne0 elements. */
static enum kt_type pick_type(enum synth_ftype f, int is_output, int more_bits, int64_t ne0)
{
	if (f == SYNTH_Q8_0)
		return KT_Q8_0;
	if (is_output)
		return ne0 % 256 ? KT_Q8_0 : KT_Q6_K;
	enum kt_type t = more_bits ? KT_Q6_K : KT_Q4_K;
	if (ne0 % 256 == 0)
		return t;
	t = t == KT_Q6_K ? KT_Q8_0 : KT_Q5_0;
	return ne0 % 32 ? KT_F16 : t;
}

struct tdesc {
	struct synth_tensor t;
	int layer;            /* -1 outside the blocks */
	enum fill_kind kind;
};

static void add(struct tdesc *d, int *n, int layer, const char *suffix, enum kt_type type,
		int64_t ne0, int64_t ne1, enum fill_kind kind)
{
	struct tdesc *x = &d[(*n)++];
	memset(x, 0, sizeof *x);
	if (layer >= 0)
		snprintf(x->t.name, sizeof x->t.name, "blk.%d.%s", layer, suffix);
	else
		snprintf(x->t.name, sizeof x->t.name, "%s", suffix);
	x->t.type = type;
	x->t.n_dims = ne1 ? 2 : 1;
	x->t.ne[0] = ne0;
	x->t.ne[1] = ne1 ? ne1 : 1;
	x->t.bytes = (uint64_t)kt_row_bytes(type, ne0) * (uint64_t)x->t.ne[1];
	x->layer = layer;
	x->kind = kind;
}

/* llama-quantize's order (llama_model_loader's weight_name_comparer):
 * tensors outside the blocks first, then by layer number, then by name. */
static int cmp_tdesc(const void *a, const void *b)
{
	const struct tdesc *x = a, *y = b;
	if (x->layer != y->layer)
		return x->layer < y->layer ? -1 : 1;
	return strcmp(x->t.name, y->t.name);
}

static int max_tensors(const struct synth_model *m)
{
	return 4 + 12 * m->n_layer;
}

/* All tensors of m in file order into d (max_tensors(m) entries); returns
 * their count. */
static int describe(const struct synth_model *m, enum synth_ftype f, struct tdesc *d)
{
	const int64_t E = m->n_embd, V = m->n_vocab, F = m->n_ff;
	const int64_t Q = (int64_t)m->n_head * m->head_dim;
	const int64_t KV = (int64_t)m->n_head_kv * m->head_dim;
	int n = 0;
	add(d, &n, -1, "token_embd.weight", pick_type(f, m->tied, 0, E), E, V, FILL_WEIGHT);
	add(d, &n, -1, "output_norm.weight", KT_F32, E, 0, FILL_ONES);
	if (!m->tied)
		add(d, &n, -1, "output.weight", pick_type(f, 1, 0, E), E, V, FILL_WEIGHT);
	if (m->rope_factor > 0)
		add(d, &n, -1, "rope_freqs.weight", KT_F32, m->head_dim / 2, 0, FILL_ROPE_FREQS);
	for (int i = 0; i < m->n_layer; i++) {
		const int mb = use_more_bits(i, m->n_layer);
		add(d, &n, i, "attn_norm.weight", KT_F32, E, 0, FILL_ONES);
		add(d, &n, i, "attn_q.weight", pick_type(f, 0, 0, E), E, Q, FILL_WEIGHT);
		add(d, &n, i, "attn_k.weight", pick_type(f, 0, 0, E), E, KV, FILL_WEIGHT);
		add(d, &n, i, "attn_v.weight", pick_type(f, 0, mb, E), E, KV, FILL_WEIGHT);
		add(d, &n, i, "attn_output.weight", pick_type(f, 0, 0, Q), Q, E, FILL_WEIGHT);
		if (m->qkv_bias) {
			add(d, &n, i, "attn_q.bias", KT_F32, Q, 0, FILL_BIAS);
			add(d, &n, i, "attn_k.bias", KT_F32, KV, 0, FILL_BIAS);
			add(d, &n, i, "attn_v.bias", KT_F32, KV, 0, FILL_BIAS);
		}
		add(d, &n, i, "ffn_norm.weight", KT_F32, E, 0, FILL_ONES);
		add(d, &n, i, "ffn_gate.weight", pick_type(f, 0, 0, E), E, F, FILL_WEIGHT);
		add(d, &n, i, "ffn_up.weight", pick_type(f, 0, 0, E), E, F, FILL_WEIGHT);
		add(d, &n, i, "ffn_down.weight", pick_type(f, 0, mb, F), F, E, FILL_WEIGHT);
	}
	qsort(d, (size_t)n, sizeof *d, cmp_tdesc);
	return n;
}

int synth_tensors(const struct synth_model *m, enum synth_ftype f, struct synth_tensor *out,
		  int n)
{
	if (!m || !synth_ftype_name(f) || n < 0 || (n && !out))
		return -EINVAL;
	struct tdesc *d = malloc((size_t)max_tensors(m) * sizeof *d);
	if (!d)
		return -ENOMEM;
	int count = describe(m, f, d);
	for (int i = 0; i < count && i < n; i++)
		out[i] = d[i].t;
	free(d);
	return count;
}

/* ---- vocabulary ----------------------------------------------------------- */

/* Qwen2.5's added tokens from id 151643 on (tokenizer.json), their types as
 * llama.cpp's converter gives them: control, except the two tool-call tags
 * (not special, not spelled like a control token: user-defined). */
static const char *const qwen_specials[] = {
	"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
	"<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>",
	"<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
	"<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
	"<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
	"<|repo_name|>", "<|file_sep|>",
};
#define QWEN_N_SPECIAL ((int)(sizeof qwen_specials / sizeof qwen_specials[0]))
#define QWEN_N_NORMAL 151643 /* Qwen2.5's BPE tokens before the added ones */
/* Llama 3's 256 special tokens from id 128000; the rest of the 256 are
 * <|reserved_special_token_N|>. All control. */
static const char *const llama_specials[] = {
	"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
	"<|reserved_special_token_1|>", "<|finetune_right_pad_id|>",
	"<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
	"<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
};
#define LLAMA_N_NAMED ((int)(sizeof llama_specials / sizeof llama_specials[0]))
#define LLAMA_N_SPECIAL 256

/* Qwen2.5's template (its branch for conversations without tools, with its
 * default system message) and Llama 3.1's (without the tool and date
 * preamble); chat_detect knows both families by these markers. */
static const char qwen_template[] =
	"{%- if messages[0]['role'] == 'system' %}"
	"{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
	"{%- else %}"
	"{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. "
	"You are a helpful assistant.<|im_end|>\\n' }}"
	"{%- endif %}"
	"{%- for message in messages %}"
	"{%- if not (message.role == 'system' and loop.first) %}"
	"{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
	"{%- endif %}"
	"{%- endfor %}"
	"{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}\n";
static const char llama_template[] =
	"{{- bos_token }}"
	"{%- for message in messages %}"
	"{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
	"message['content'] | trim + '<|eot_id|>' }}"
	"{%- endfor %}"
	"{%- if add_generation_prompt %}"
	"{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}\n";

/* The characters merged tokens are made of, most common first. */
static const char alphabet[] =
	" etaoinsrhldcumfpgwybvkxjqzETAOINSRHLDCUMFPGWYBVKXJQZ0123456789.";
#define N_ALPHA 64
_Static_assert(sizeof alphabet - 1 == N_ALPHA, "64 characters");

/* Strings laid end to end: s[i] = buf + off[i], len[i] bytes. */
struct strs {
	char *buf;
	size_t used, cap;
	size_t *off, *len;
	const char **ptr;
	int64_t n, max;
};

static int strs_init(struct strs *s, int64_t max)
{
	memset(s, 0, sizeof *s);
	s->max = max;
	s->cap = (size_t)max * 8 + 64;
	s->buf = malloc(s->cap);
	s->off = malloc((size_t)(max ? max : 1) * sizeof *s->off);
	s->len = malloc((size_t)(max ? max : 1) * sizeof *s->len);
	s->ptr = malloc((size_t)(max ? max : 1) * sizeof *s->ptr);
	return s->buf && s->off && s->len && s->ptr ? 0 : -ENOMEM;
}

static void strs_free(struct strs *s)
{
	free(s->buf);
	free(s->off);
	free(s->len);
	free(s->ptr);
}

/* Append the concatenation of up to three byte strings. */
static int strs_add(struct strs *s, const char *a, size_t al, const char *b, size_t bl,
		    const char *c, size_t cl)
{
	size_t n = al + bl + cl;
	if (s->n >= s->max)
		return -EINVAL;
	if (s->used + n > s->cap) {
		size_t nc = (s->used + n) * 2;
		char *nb = realloc(s->buf, nc);
		if (!nb)
			return -ENOMEM;
		s->buf = nb;
		s->cap = nc;
	}
	char *p = s->buf + s->used;
	memcpy(p, a, al);
	memcpy(p + al, b, bl);
	memcpy(p + al + bl, c, cl);
	s->off[s->n] = s->used;
	s->len[s->n++] = n;
	s->used += n;
	return 0;
}

/* Pointers into buf, valid once every string is added. */
static const char *const *strs_ptrs(struct strs *s)
{
	for (int64_t i = 0; i < s->n; i++)
		s->ptr[i] = s->buf + s->off[i];
	return s->ptr;
}

/* Two-character token k (0..N_ALPHA^2-1), ordered so that tokens of the
 * most common characters come first: by the larger alphabet index m, then
 * (a, m) for a <= m before (m, b) for b < m. */
static void pair_at(int k, int *a, int *b)
{
	int m = 0;
	while ((m + 1) * (m + 1) <= k)
		m++;
	int r = k - m * m; /* 0 .. 2m */
	if (r <= m) {
		*a = r;
		*b = m;
	} else {
		*a = m;
		*b = r - m - 1;
	}
}

/* The byte-level characters of alphabet[i]. */
static size_t alpha_char(int i, char out[2])
{
	return tok_byte_char((unsigned char)alphabet[i], out);
}

/* Tokens, types and merges of the vocabulary of m; added to w. */
static int write_vocab(struct gguf_writer *w, const struct synth_model *m)
{
	const int qwen = m->arch == ARCH_QWEN2;
	const int n_special = qwen ? QWEN_N_SPECIAL : LLAMA_N_SPECIAL;
	int64_t n_normal = m->n_vocab - n_special;
	if (qwen && n_normal > QWEN_N_NORMAL)
		n_normal = QWEN_N_NORMAL;
	const int64_t n_merges = n_normal - 256;
	if (n_merges < 0 || n_merges > (int64_t)N_ALPHA * N_ALPHA * (1 + N_ALPHA))
		return -EINVAL;
	struct strs tok, mrg;
	int32_t *type = malloc((size_t)m->n_vocab * sizeof *type);
	int rc = -ENOMEM;
	int bad = strs_init(&tok, m->n_vocab);
	bad |= strs_init(&mrg, n_merges); /* both, so that both can be freed */
	if (bad || !type)
		goto out;

	/* the 256 byte characters in code point order, as GPT-2's vocabulary
	 * (and Qwen's and Llama 3's) has them: the printable bytes stand for
	 * themselves, the others for U+0100 on */
	static const char no[1];
	for (int pass = 0; pass < 2; pass++) {
		for (int b = 0; b < 256; b++) {
			char c[2];
			size_t cl = tok_byte_char((unsigned char)b, c);
			int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
			if (printable != (pass == 0))
				continue;
			if ((rc = strs_add(&tok, c, cl, no, 0, no, 0)))
				goto out;
		}
	}
	for (int64_t k = 0; k < n_merges; k++) {
		char ca[2], cb[2], cc[2];
		int a, b;
		if (k < N_ALPHA * N_ALPHA) {
			pair_at((int)k, &a, &b);
			size_t al = alpha_char(a, ca), bl = alpha_char(b, cb);
			rc = strs_add(&tok, ca, al, cb, bl, no, 0);
			if (!rc)
				rc = strs_add(&mrg, ca, al, " ", 1, cb, bl);
		} else {
			int64_t j = k - N_ALPHA * N_ALPHA;
			pair_at((int)(j / N_ALPHA), &a, &b);
			size_t al = alpha_char(a, ca), bl = alpha_char(b, cb);
			size_t cl = alpha_char((int)(j % N_ALPHA), cc);
			char ab[4];
			memcpy(ab, ca, al);
			memcpy(ab + al, cb, bl);
			rc = strs_add(&tok, ab, al + bl, cc, cl, no, 0);
			if (!rc)
				rc = strs_add(&mrg, ab, al + bl, " ", 1, cc, cl);
		}
		if (rc)
			goto out;
	}
	for (int64_t i = 0; i < n_normal; i++)
		type[i] = TT_NORMAL;
	for (int i = 0; i < n_special; i++) {
		char buf[48];
		const char *s = buf;
		if (qwen)
			s = qwen_specials[i];
		else if (i < LLAMA_N_NAMED)
			s = llama_specials[i];
		else
			snprintf(buf, sizeof buf, "<|reserved_special_token_%d|>",
				 i - LLAMA_N_NAMED + 3);
		if ((rc = strs_add(&tok, s, strlen(s), no, 0, no, 0)))
			goto out;
		type[n_normal + i] = qwen && s[1] != '|' ? TT_USER_DEFINED : TT_CONTROL;
	}
	for (int64_t i = n_normal + n_special; i < m->n_vocab; i++) {
		char buf[32];
		int len = snprintf(buf, sizeof buf, "[PAD%lld]", (long long)i);
		if ((rc = strs_add(&tok, buf, (size_t)len, no, 0, no, 0)))
			goto out;
		type[i] = TT_UNUSED;
	}

	const int32_t bos = (int32_t)n_normal;
	if ((rc = gguf_w_str(w, "tokenizer.ggml.model", "gpt2")) ||
	    (rc = gguf_w_str(w, "tokenizer.ggml.pre", qwen ? "qwen2" : "llama-bpe")) ||
	    (rc = gguf_w_arr_str(w, "tokenizer.ggml.tokens", strs_ptrs(&tok), tok.len,
				 (uint64_t)tok.n)) ||
	    (rc = gguf_w_arr(w, "tokenizer.ggml.token_type", GGUF_I32, type,
			     (uint64_t)m->n_vocab)) ||
	    (rc = gguf_w_arr_str(w, "tokenizer.ggml.merges", strs_ptrs(&mrg), mrg.len,
				 (uint64_t)mrg.n)))
		goto out;
	if (qwen) {
		/* <|endoftext|> is BOS and padding, <|im_end|> ends a turn */
		if ((rc = gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)bos + 2)) ||
		    (rc = gguf_w_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)bos)) ||
		    (rc = gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos)) ||
		    (rc = gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 0)) ||
		    (rc = gguf_w_str(w, "tokenizer.chat_template", qwen_template)))
			goto out;
	} else {
		/* <|begin_of_text|> and, for the Instruct model, <|eot_id|> */
		if ((rc = gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos)) ||
		    (rc = gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)bos + 9)) ||
		    (rc = gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 1)) ||
		    (rc = gguf_w_str(w, "tokenizer.chat_template", llama_template)))
			goto out;
	}
	rc = 0;
out:
	strs_free(&tok);
	strs_free(&mrg);
	free(type);
	return rc;
}

/* ---- random weights ---------------------------------------------------- */

struct fill {
	const struct synth_model *m;
	struct kt_pool *pool;   /* NULL: the writing thread alone */
	enum kt_type type;
	enum fill_kind kind;
	int64_t ne0;
	uint64_t seed;          /* this tensor's */
	uint16_t d, dmin;       /* fp16 block scales */
};

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* xorshift64*: fast, and good enough for weights nobody reads. */
static inline uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static void rnd_bytes(uint64_t *s, uint8_t *p, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v = rnd(s);
		memcpy(p + i, &v, 8);
	}
	if (i < n) {
		uint64_t v = rnd(s);
		memcpy(p + i, &v, n - i);
	}
}

/* Uniform in [-1, 1). */
static inline float rnd_unit(uint64_t *s)
{
	return (float)((rnd(s) >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static uint16_t to_fp16(float f)
{
	uint16_t h;
	kt_quantize_row(KT_F16, &f, &h, 1);
	return h;
}

/* Block layouts (ggml's block_q8_0, block_q5_0, block_q4_K, block_q6_K)
 * and the deviation of their quants: uniform over 2^b values has deviation
 * sqrt((4^b - 1) / 12). */
#define Q8_0_BYTES 34 /* d, qs[32] (int8) */
#define Q5_0_BYTES 22 /* d, qh[4], qs[16]: q = 0..31, x = d (q - 16) */
#define Q4_K_BYTES 144 /* d, dmin, scales[12], qs[128]: x = d sc q - dmin m */
#define Q6_K_BYTES 210 /* ql[128], qh[64], scales[16] (int8), d: x = d sc (q - 32) */
#define SD_U8 73.9f   /* int8 over -128..127 */
#define SD_U5 9.23f
#define SD_U4 4.61f
#define SD_U6 18.47f
/* Q4_K sub-block scales are drawn from 32..63 (mins equal to them, and
 * dmin = 7.5 d, centre the 0..15 quants), Q6_K's from 4..15: their root
 * mean squares. */
#define RMS_SC4 48.3f
#define RMS_SC6 10.1f

static void setup_fill(struct fill *fl)
{
	switch (fl->type) {
	case KT_Q8_0: fl->d = to_fp16(SYNTH_SIGMA / SD_U8); break;
	case KT_Q5_0: fl->d = to_fp16(SYNTH_SIGMA / SD_U5); break;
	case KT_Q4_K: {
		float d = SYNTH_SIGMA / (SD_U4 * RMS_SC4);
		fl->d = to_fp16(d);
		fl->dmin = to_fp16(7.5f * d);
		break;
	}
	case KT_Q6_K: fl->d = to_fp16(SYNTH_SIGMA / (SD_U6 * RMS_SC6)); break;
	default: break;
	}
}

/* One Q4_K block: sub-block scales sc and mins m equal, 6 bits each, packed
 * as ggml's get_scale_min_k4 reads them. */
static void q4_k_block(const struct fill *fl, uint64_t *s, uint8_t *p)
{
	uint8_t sc[8];
	uint64_t r = rnd(s);
	for (int j = 0; j < 8; j++)
		sc[j] = (uint8_t)(32 + ((r >> (8 * j)) & 31));
	put16(p, fl->d);
	put16(p + 2, fl->dmin);
	uint8_t *q = p + 4;
	for (int j = 0; j < 4; j++) {
		q[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
		q[j + 4] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
		q[j + 8] = (uint8_t)((sc[j + 4] & 0xf) | ((sc[j + 4] & 0xf) << 4));
	}
	rnd_bytes(s, p + 16, 128);
}

static void q6_k_block(const struct fill *fl, uint64_t *s, uint8_t *p)
{
	rnd_bytes(s, p, 192);
	uint64_t r0 = rnd(s), r1 = rnd(s);
	for (int j = 0; j < 16; j++) {
		uint64_t r = j < 8 ? r0 : r1;
		p[192 + j] = (uint8_t)(4 + ((r >> (8 * (j & 7))) & 0xff) % 12);
	}
	put16(p + 208, fl->d);
}

/* Row r of a weight matrix. */
static void weight_row(const struct fill *fl, uint64_t *s, uint8_t *p, float *tmp)
{
	const int64_t n = fl->ne0;
	switch (fl->type) {
	case KT_Q8_0:
		for (int64_t b = 0; b < n / 32; b++, p += Q8_0_BYTES) {
			put16(p, fl->d);
			rnd_bytes(s, p + 2, 32);
		}
		return;
	case KT_Q5_0:
		for (int64_t b = 0; b < n / 32; b++, p += Q5_0_BYTES) {
			put16(p, fl->d);
			rnd_bytes(s, p + 2, 20);
		}
		return;
	case KT_Q4_K:
		for (int64_t b = 0; b < n / 256; b++, p += Q4_K_BYTES)
			q4_k_block(fl, s, p);
		return;
	case KT_Q6_K:
		for (int64_t b = 0; b < n / 256; b++, p += Q6_K_BYTES)
			q6_k_block(fl, s, p);
		return;
	default:
		/* float types: uniform with the same deviation */
		for (int64_t i = 0; i < n; i++)
			tmp[i] = rnd_unit(s) * SYNTH_SIGMA * 1.7320508f;
		kt_quantize_row(fl->type, tmp, p, n);
		return;
	}
}

/* The rope divisors of Llama 3.1's "llama3" scaling, computed as llama.cpp's
 * converter computes them (LlamaModel.generate_extra_tensors). */
static void rope_freqs(const struct synth_model *m, float *out)
{
	const int dim = m->head_dim;
	const double lo_wavelen = m->rope_orig_ctx / m->rope_low_freq;
	const double hi_wavelen = m->rope_orig_ctx / m->rope_high_freq;
	for (int i = 0; i < dim / 2; i++) {
		double freq = 1.0 / pow(m->rope_base, (double)(2 * i) / dim);
		double wavelen = 2 * M_PI / freq;
		if (wavelen < hi_wavelen) {
			out[i] = 1.0f;
		} else if (wavelen > lo_wavelen) {
			out[i] = m->rope_factor;
		} else {
			double smooth = (m->rope_orig_ctx / wavelen - m->rope_low_freq) /
					(m->rope_high_freq - m->rope_low_freq);
			out[i] = (float)(1.0 / ((1 - smooth) / m->rope_factor + smooth));
		}
	}
}

/* Rows [r0, r1) of the chunk that starts at row row0, into buf. */
static int fill_range(const struct fill *fl, int64_t row0, int64_t r0, int64_t r1, void *buf)
{
	const size_t rb = kt_row_bytes(fl->type, fl->ne0);
	float *tmp = NULL;
	if (fl->kind != FILL_WEIGHT || kt_block_elems(fl->type) == 1) {
		if (!(tmp = malloc((size_t)fl->ne0 * sizeof *tmp)))
			return -ENOMEM;
	}
	for (int64_t r = r0; r < r1; r++) {
		uint8_t *p = (uint8_t *)buf + (size_t)r * rb;
		uint64_t s = splitmix64(fl->seed ^ splitmix64((uint64_t)(row0 + r))) | 1;
		switch (fl->kind) {
		case FILL_WEIGHT:
			weight_row(fl, &s, p, tmp);
			continue;
		case FILL_ONES:
			for (int64_t i = 0; i < fl->ne0; i++)
				tmp[i] = 1.0f;
			break;
		case FILL_BIAS:
			for (int64_t i = 0; i < fl->ne0; i++)
				tmp[i] = rnd_unit(&s) * SYNTH_SIGMA * 1.7320508f;
			break;
		case FILL_ROPE_FREQS:
			rope_freqs(fl->m, tmp);
			break;
		}
		kt_quantize_row(fl->type, tmp, p, fl->ne0);
	}
	free(tmp);
	return 0;
}

struct fill_job {
	const struct fill *fl;
	int64_t row0, n_rows;
	void *buf;
	int rc[64];
};

static void fill_task(void *ctx, int ith, int nth)
{
	struct fill_job *j = ctx;
	int64_t per = (j->n_rows + nth - 1) / nth;
	int64_t r0 = per * ith, r1 = r0 + per < j->n_rows ? r0 + per : j->n_rows;
	int rc = r0 < r1 ? fill_range(j->fl, j->row0, r0, r1, j->buf) : 0;
	if (rc)
		j->rc[ith & 63] = rc;
}

/* gguf_fill_fn: the rows are independent, so the pool's threads share
 * them. */
static int fill_rows(void *ctx, int64_t row0, int64_t n_rows, void *buf)
{
	const struct fill *fl = ctx;
	struct fill_job j = { .fl = fl, .row0 = row0, .n_rows = n_rows, .buf = buf };
	if (!fl->pool || n_rows < 2 * kt_pool_threads(fl->pool))
		return fill_range(fl, row0, 0, n_rows, buf);
	kt_pool_run(fl->pool, fill_task, &j);
	for (int i = 0; i < 64; i++)
		if (j.rc[i])
			return j.rc[i];
	return 0;
}

/* ---- the file ------------------------------------------------------------ */

/* The writer for m with every key and tensor added, and the fill states it
 * points at (*fills, freed by the caller after the write). */
static int build(const struct synth_model *m, enum synth_ftype f, uint64_t seed,
		 struct kt_pool *pool, struct gguf_writer **out, struct fill **fills)
{
	*out = NULL;
	*fills = NULL;
	const char *fname = synth_ftype_name(f);
	if (!m || !fname)
		return -EINVAL;
	if (kt_block_bytes(KT_Q8_0) != Q8_0_BYTES || kt_block_bytes(KT_Q5_0) != Q5_0_BYTES ||
	    kt_block_bytes(KT_Q4_K) != Q4_K_BYTES || kt_block_bytes(KT_Q6_K) != Q6_K_BYTES)
		return -EINVAL;
	struct tdesc *d = malloc((size_t)max_tensors(m) * sizeof *d);
	struct gguf_writer *w = gguf_writer_new();
	struct fill *fl = NULL;
	int rc = -ENOMEM;
	if (!d || !w)
		goto fail;
	const int n = describe(m, f, d);
	if (!(fl = calloc((size_t)n, sizeof *fl)))
		goto fail;

	const char *arch = m->arch == ARCH_QWEN2 ? "qwen2" : "llama";
	char name[160], key[96];
	snprintf(name, sizeof name, "%s-%s", m->name, fname);
	char title[200], descr[320];
	snprintf(title, sizeof title, "synthetic %s", name);
	char ft[16];
	snprintf(ft, sizeof ft, "%s", fname);
	for (char *c = ft; *c; c++)
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 'a' + 'A');
	snprintf(descr, sizeof descr, "random weights with the shapes and tensor types of %s %s",
		 m->like, ft);
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
	if ((rc = gguf_w_str(w, "general.architecture", arch)) ||
	    (rc = gguf_w_str(w, "general.type", "model")) ||
	    (rc = gguf_w_str(w, "general.name", title)) ||
	    (rc = gguf_w_str(w, "general.description", descr)) ||
	    (rc = gguf_w_str(w, "seekfs.synthetic", name)) ||
	    (rc = gguf_w_u64(w, "seekfs.synthetic.seed", seed)) ||
	    (rc = gguf_w_u32(w, KEY("block_count"), (uint32_t)m->n_layer)) ||
	    (rc = gguf_w_u32(w, KEY("context_length"), (uint32_t)m->n_ctx_train)) ||
	    (rc = gguf_w_u32(w, KEY("embedding_length"), (uint32_t)m->n_embd)) ||
	    (rc = gguf_w_u32(w, KEY("feed_forward_length"), (uint32_t)m->n_ff)) ||
	    (rc = gguf_w_u32(w, KEY("attention.head_count"), (uint32_t)m->n_head)) ||
	    (rc = gguf_w_u32(w, KEY("attention.head_count_kv"), (uint32_t)m->n_head_kv)) ||
	    (rc = gguf_w_f32(w, KEY("rope.freq_base"), m->rope_base)) ||
	    (rc = gguf_w_f32(w, KEY("attention.layer_norm_rms_epsilon"), m->norm_eps)))
		goto fail;
	if (m->head_dim * m->n_head != m->n_embd &&
	    ((rc = gguf_w_u32(w, KEY("attention.key_length"), (uint32_t)m->head_dim)) ||
	     (rc = gguf_w_u32(w, KEY("attention.value_length"), (uint32_t)m->head_dim))))
		goto fail;
	if (m->arch == ARCH_LLAMA &&
	    ((rc = gguf_w_u32(w, KEY("vocab_size"), (uint32_t)m->n_vocab)) ||
	     (rc = gguf_w_u32(w, KEY("rope.dimension_count"), (uint32_t)m->head_dim))))
		goto fail;
#undef KEY
	if ((rc = gguf_w_u32(w, "general.file_type", (uint32_t)f)) || (rc = write_vocab(w, m)) ||
	    (rc = gguf_w_u32(w, "general.quantization_version", 2)))
		goto fail;
	for (int i = 0; i < n; i++) {
		fl[i] = (struct fill){ .m = m, .pool = pool, .type = d[i].t.type, .kind = d[i].kind,
				       .ne0 = d[i].t.ne[0],
				       .seed = splitmix64(seed + 0x1000193ULL * (uint64_t)(i + 1)) };
		setup_fill(&fl[i]);
		if ((rc = gguf_w_tensor_fill(w, d[i].t.name, d[i].t.type, d[i].t.n_dims,
					     d[i].t.ne, fill_rows, &fl[i])))
			goto fail;
	}
	free(d);
	*out = w;
	*fills = fl;
	return 0;
fail:
	free(d);
	free(fl);
	gguf_writer_free(w);
	return rc;
}

int64_t synth_file_size(const struct synth_model *m, enum synth_ftype f)
{
	struct gguf_writer *w;
	struct fill *fl;
	int rc = build(m, f, 0, NULL, &w, &fl);
	if (rc)
		return rc;
	int64_t size = (int64_t)gguf_writer_size(w);
	gguf_writer_free(w);
	free(fl);
	return size;
}

int synth_write(const struct synth_model *m, enum synth_ftype f, uint64_t seed,
		struct kt_pool *pool, const char *path, char *err, size_t errsz)
{
	struct gguf_writer *w;
	struct fill *fl;
	int rc = build(m, f, seed, pool, &w, &fl);
	if (rc) {
		eng_err(err, errsz, "%s: cannot describe synthetic model %s-%s: %s", path,
			m ? m->name : "?", synth_ftype_name(f) ? synth_ftype_name(f) : "?",
			strerror(-rc));
		return rc;
	}
	rc = gguf_writer_write(w, path, err, errsz);
	gguf_writer_free(w);
	free(fl);
	return rc;
}
