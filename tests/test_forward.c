/*
 * test_forward: the llama, qwen2 and gemma3 forward passes, on small models with
 * deterministic random weights, against logits from an independent float64
 * implementation (tools/ref_forward.py) committed in tests/data/forward/.
 *
 *   test_forward DATA_DIR            write the models to a temp folder, load
 *                                    each, compare with DATA_DIR/<model>.logits
 *   test_forward --write-only DIR    only write the models (DIR/<model>.gguf),
 *                                    the input of tools/ref_forward.py
 *
 * Each architecture is written with all-F32 weights and with its 2-D
 * matrices (token embedding and output included) in each of F16, BF16,
 * Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K; norms and biases stay F32.
 * The float weights are the same in every variant (seeded per tensor name),
 * quantised with kt_quantize_row. A golden file records the CRC-32 of the
 * tensor data it was computed from, so a change in a quantiser is reported as
 * "regenerate the golden data", not as a wrong forward pass.
 *
 * Beyond the golden comparison the KV-cache path is checked: the same
 * sequence fed one token at a time (single-threaded session) and in two
 * chunks must give the logits of the one-batch pass.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine.h"
#include "testutil.h"

/* ---- the models ---------------------------------------------------------- */

/* One size fits every weight type: each matrix's row length (ne[0], the
 * input dimension) is 256 or 512, a multiple of the K-quants' 256. */
struct cfg {
	const char *arch;
	int n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
	float rope_base, eps;
	int qkv_bias;     /* qwen2: attn_q/k/v.bias */
	int tied;         /* no output.weight: logits use token_embd.weight */
	int write_n_rot;  /* write <arch>.rope.dimension_count (llama files do) */
	const char *pre;  /* tokenizer.ggml.pre */
	/* gemma3: q/k and post norms, a sliding window of n_swa positions on
	 * layers 0-4 (layer 5 sees all, its RoPE scaled linearly by
	 * rope_scale), attention.key_length written */
	int gemma, n_swa;
	float rope_scale;
};

static const struct cfg CFGS[] = {
	/* GQA 2:1, separate output matrix, RoPE NORM (pairs 2i, 2i+1). */
	{ "llama", 256, 2, 4, 2, 64, 512, 10000.0f, 1e-5f, 0, 0, 1, "smollm", 0, 0, 1.0f },
	/* GQA 4:1, q/k/v biases, tied output, RoPE NEOX (pairs i, i+d/2). */
	{ "qwen2", 256, 2, 8, 2, 32, 512, 1000000.0f, 1e-6f, 1, 1, 0, "qwen2", 0, 0, 1.0f },
	/* GQA 4:1, tied output, NEOX, 6 layers: five over a window of 4 of the
	 * 12 positions (RoPE base 10000), the last over all (base 1e6 / 8). */
	{ "gemma3", 256, 6, 4, 1, 64, 512, 1000000.0f, 1e-6f, 0, 1, 0, "default", 1, 4, 8.0f },
};

/* Vocabulary: the 256 byte-level BPE symbols (GPT-2 byte-to-unicode, in
 * byte order), three merged tokens with their merges, three control tokens. */
#define N_BYTE_TOK 256
#define N_VOCAB (N_BYTE_TOK + 3 + 3)
#define TOK_EOT (N_BYTE_TOK + 3) /* <|endoftext|> */
#define TOK_IM_END (N_BYTE_TOK + 5)

/* The sequence every model is run on (ids < N_VOCAB; the same list is in
 * tools/ref_forward.py and in each golden file's header). */
#define N_SEQ 12
static const int32_t SEQ[N_SEQ] = { 260, 84, 104, 101, 32, 113, 258, 255, 0, 7, 261, 128 };

/* Per weight type: the bound on max|engine - golden| / max|golden| over
 * all 12 x N_VOCAB logits, and on the same measure between the one-batch
 * pass and the incremental passes (one token at a time; two chunks).
 *
 * The golden logits are exact (float64) arithmetic on the dequantised
 * weights. The engine runs in float32 and, for quantised weights, first
 * quantises each activation row to the dot partner type (Q8_0 for Q4_0,
 * Q5_0, Q8_0; Q8_1 for Q4_1, Q5_1; Q8_K for the K-quants), as llama.cpp's
 * CPU backend does. That 8-bit rounding, not the weight type, dominates
 * the error of the quantised variants: llama.cpp itself is 0.6-2.5% from
 * these golden logits (tools/ref_forward.py --check-llama-cpp), and the
 * engine matched llama.cpp to 1e-7 on every variant except where float32
 * summation order moved an activation across a rounding boundary of its
 * 8-bit quantisation (one such flip moved qwen2-q6_K's logits by 0.9%).
 * Measured engine errors, llama / qwen2 (AVX2 and scalar alike), are in
 * the comments; the bounds leave about 2x margin (10x for float types).
 * Batch vs incremental measured 0 for every type; the bound for quantised
 * types allows for one such rounding flip if a kernel sums in another
 * order for batches than for single rows. */
struct tbound {
	enum kt_type type;
	double golden, incr;
};
static const struct tbound TYPES[] = {
	{ KT_F32, 1e-5, 1e-5 },  /* 9.3e-7 / 4.4e-7 */
	{ KT_F16, 1e-5, 1e-5 },  /* 8.8e-7 / 4.4e-7 (activations stay F32) */
	{ KT_BF16, 1e-5, 1e-5 }, /* 9.4e-7 / 3.8e-7 */
	{ KT_Q8_0, 3e-2, 2e-2 }, /* 0.0144 / 0.0071 */
	{ KT_Q4_0, 3e-2, 2e-2 }, /* 0.0146 / 0.0057 */
	{ KT_Q4_1, 3e-2, 2e-2 }, /* 0.0153 / 0.0067 */
	{ KT_Q5_0, 3e-2, 2e-2 }, /* 0.0137 / 0.0059 */
	{ KT_Q5_1, 3e-2, 2e-2 }, /* 0.0146 / 0.0057 */
	{ KT_Q4_K, 4e-2, 2e-2 }, /* 0.0182 / 0.0090 */
	{ KT_Q5_K, 5e-2, 2e-2 }, /* 0.0249 / 0.0112 */
	{ KT_Q6_K, 5e-2, 2e-2 }, /* 0.0227 / 0.0101 */
};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}
#define FNV_OFFSET 0xcbf29ce484222325ULL

/* Uniform [-scale, scale) values for tensor name: the same in every variant. */
static void fill(float *x, int64_t n, const char *name, float offset, float scale)
{
	uint64_t s = fnv1a(FNV_OFFSET, name, strlen(name)) | 1;
	for (int i = 0; i < 8; i++)
		t_rand_u64(&s);
	for (int64_t i = 0; i < n; i++)
		x[i] = offset + scale * t_rand_f(&s);
}

static void add_vec(struct gguf_writer *w, const char *name, int64_t n,
		    float offset, float scale)
{
	float *x = malloc((size_t)n * sizeof *x);
	T_REQUIRE(x, "out of memory");
	fill(x, n, name, offset, scale);
	int64_t ne[1] = { n };
	T_REQUIRE(gguf_w_tensor(w, name, KT_F32, 1, ne, x) == 0, "gguf_w_tensor %s", name);
	free(x);
}

/* A (rows x cols) matrix, GGUF ne = {cols, rows}: cols is the input size.
 * Entries are uniform with standard deviation about 1/sqrt(cols) (so each
 * output is of the order of its input), embeddings with sd about 0.58. */
static void add_mat(struct gguf_writer *w, const char *name, enum kt_type type,
		    int64_t rows, int64_t cols, int is_embd)
{
	float *x = malloc((size_t)(rows * cols) * sizeof *x);
	size_t rb = kt_row_bytes(type, cols);
	unsigned char *q = malloc(rb * (size_t)rows);
	T_REQUIRE(x && q, "out of memory");
	fill(x, rows * cols, name, 0.0f, is_embd ? 1.0f : 1.7f / sqrtf((float)cols));
	for (int64_t r = 0; r < rows; r++)
		kt_quantize_row(type, x + r * cols, q + (size_t)r * rb, cols);
	int64_t ne[2] = { cols, rows };
	T_REQUIRE(gguf_w_tensor(w, name, type, 2, ne, q) == 0, "gguf_w_tensor %s", name);
	free(x);
	free(q);
}

/* GPT-2's byte-to-unicode map: printable bytes stand for themselves, the
 * others for U+0100 upwards in byte order. Writes UTF-8, returns length. */
static int byte_symbol(int b, char *out)
{
	int cp;
	if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
		cp = b;
	} else {
		int n = 0;
		for (int c = 0; c < b; c++)
			if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255)))
				n++;
		cp = 256 + n;
	}
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	out[0] = (char)(0xc0 | (cp >> 6));
	out[1] = (char)(0x80 | (cp & 0x3f));
	return 2;
}

static void add_vocab(struct gguf_writer *w, const struct cfg *c)
{
	static char sym[N_BYTE_TOK][4];
	const char *strs[N_VOCAB];
	size_t lens[N_VOCAB];
	int32_t types[N_VOCAB];
	for (int b = 0; b < N_BYTE_TOK; b++) {
		lens[b] = (size_t)byte_symbol(b, sym[b]);
		strs[b] = sym[b];
		types[b] = 1; /* normal */
	}
	/* "\xc4\xa0" is U+0120, the symbol of the space byte. */
	static const char *const extra[6] = { "\xc4\xa0t", "he", "\xc4\xa0the",
					      "<|endoftext|>", "<|im_start|>", "<|im_end|>" };
	for (int i = 0; i < 6; i++) {
		strs[N_BYTE_TOK + i] = extra[i];
		lens[N_BYTE_TOK + i] = strlen(extra[i]);
		types[N_BYTE_TOK + i] = i < 3 ? 1 : 3; /* normal / control */
	}
	static const char *const merges[3] = { "\xc4\xa0 t", "h e", "\xc4\xa0t he" };
	size_t mlens[3];
	for (int i = 0; i < 3; i++)
		mlens[i] = strlen(merges[i]);

	int rc = gguf_w_str(w, "tokenizer.ggml.model", "gpt2");
	rc |= gguf_w_str(w, "tokenizer.ggml.pre", c->pre);
	rc |= gguf_w_arr_str(w, "tokenizer.ggml.tokens", strs, lens, N_VOCAB);
	rc |= gguf_w_arr(w, "tokenizer.ggml.token_type", GGUF_I32, types, N_VOCAB);
	rc |= gguf_w_arr_str(w, "tokenizer.ggml.merges", merges, mlens, 3);
	rc |= gguf_w_u32(w, "tokenizer.ggml.bos_token_id", TOK_EOT);
	rc |= gguf_w_u32(w, "tokenizer.ggml.eos_token_id", TOK_IM_END);
	rc |= gguf_w_u32(w, "tokenizer.ggml.padding_token_id", TOK_EOT);
	rc |= gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 0);
	rc |= gguf_w_str(w, "tokenizer.chat_template",
			 "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
			 "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
			 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}");
	T_REQUIRE(rc == 0, "writing the vocabulary");
}

/* Write the model of c with matrices of type wt to path. omit: a tensor
 * name to leave out (to test that loading refuses it), or NULL. */
static void write_model(const struct cfg *c, enum kt_type wt, const char *path,
			const char *omit)
{
	struct gguf_writer *w = gguf_writer_new();
	T_REQUIRE(w, "gguf_writer_new");
	char key[128], name[128];
	int rc = gguf_w_str(w, "general.architecture", c->arch);
	snprintf(name, sizeof name, "test-%s-%s", c->arch, kt_type_name(wt));
	rc |= gguf_w_str(w, "general.name", name);
#define KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, c->arch), key)
	rc |= gguf_w_u32(w, KEY("context_length"), 4096);
	rc |= gguf_w_u32(w, KEY("embedding_length"), (uint32_t)c->n_embd);
	rc |= gguf_w_u32(w, KEY("block_count"), (uint32_t)c->n_layer);
	rc |= gguf_w_u32(w, KEY("feed_forward_length"), (uint32_t)c->n_ff);
	rc |= gguf_w_u32(w, KEY("attention.head_count"), (uint32_t)c->n_head);
	rc |= gguf_w_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_head_kv);
	rc |= gguf_w_f32(w, KEY("rope.freq_base"), c->rope_base);
	rc |= gguf_w_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->eps);
	if (c->write_n_rot)
		rc |= gguf_w_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim);
	if (c->gemma) {
		rc |= gguf_w_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim);
		rc |= gguf_w_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim);
		rc |= gguf_w_u32(w, KEY("attention.sliding_window"), (uint32_t)c->n_swa);
		rc |= gguf_w_str(w, KEY("rope.scaling.type"), "linear");
		rc |= gguf_w_f32(w, KEY("rope.scaling.factor"), c->rope_scale);
	}
#undef KEY
	rc |= gguf_w_u32(w, "general.quantization_version", 2);
	T_REQUIRE(rc == 0, "writing metadata");
	add_vocab(w, c);

	const int E = c->n_embd, Q = c->n_head * c->head_dim;
	const int KV = c->n_head_kv * c->head_dim, F = c->n_ff;
	add_mat(w, "token_embd.weight", wt, N_VOCAB, E, 1);
	for (int l = 0; l < c->n_layer; l++) {
		struct {
			const char *suffix;
			int rows, cols; /* 0 cols: a vector of rows */
		} t[] = {
			{ "attn_norm.weight", E, 0 }, { "attn_q.weight", Q, E },
			{ "attn_q.bias", Q, 0 },      { "attn_k.weight", KV, E },
			{ "attn_k.bias", KV, 0 },     { "attn_v.weight", KV, E },
			{ "attn_v.bias", KV, 0 },     { "attn_output.weight", E, Q },
			{ "ffn_norm.weight", E, 0 },  { "ffn_gate.weight", F, E },
			{ "ffn_up.weight", F, E },    { "ffn_down.weight", E, F },
			{ "attn_q_norm.weight", c->head_dim, 0 },
			{ "attn_k_norm.weight", c->head_dim, 0 },
			{ "post_attention_norm.weight", E, 0 },
			{ "post_ffw_norm.weight", E, 0 },
		};
		for (size_t j = 0; j < sizeof t / sizeof t[0]; j++) {
			int is_bias = strstr(t[j].suffix, ".bias") != NULL;
			int gemma_only = strstr(t[j].suffix, "q_norm") || strstr(t[j].suffix, "k_norm") ||
					 strstr(t[j].suffix, "post_");
			if ((is_bias && !c->qkv_bias) || (gemma_only && !c->gemma))
				continue;
			snprintf(name, sizeof name, "blk.%d.%s", l, t[j].suffix);
			if (omit && !strcmp(omit, name))
				continue;
			if (t[j].cols)
				add_mat(w, name, wt, t[j].rows, t[j].cols, 0);
			else if (is_bias)
				add_vec(w, name, t[j].rows, 0.0f, 0.5f);
			else
				add_vec(w, name, t[j].rows, 1.0f, 0.2f); /* norm scale near 1 */
		}
	}
	add_vec(w, "output_norm.weight", E, 1.0f, 0.2f);
	if (!c->tied)
		add_mat(w, "output.weight", wt, N_VOCAB, E, 0);

	char err[512] = "";
	T_REQUIRE(gguf_writer_write(w, path, err, sizeof err) == 0, "%s: %s", path, err);
	gguf_writer_free(w);
}

static void model_file(char *buf, size_t n, const char *dir, const struct cfg *c,
		       enum kt_type t, const char *ext)
{
	snprintf(buf, n, "%s/%s-%s%s", dir, c->arch, kt_type_name(t), ext);
}

/* ---- golden files -------------------------------------------------------- */

/* CRC-32 (zlib's) of every tensor's data in file order: what the golden
 * logits were computed from. */
static uint32_t crc32_update(uint32_t crc, const void *p, size_t n)
{
	static uint32_t table[256];
	if (!table[1])
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	const unsigned char *b = p;
	crc = ~crc;
	for (size_t i = 0; i < n; i++)
		crc = table[(crc ^ b[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static uint32_t weights_crc(const char *path)
{
	struct gguf *g;
	char err[512];
	T_REQUIRE(gguf_open(path, &g, err, sizeof err) == 0, "%s", err);
	uint32_t crc = 0;
	for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(g, i);
		crc = crc32_update(crc, t->data, t->size);
	}
	gguf_close(g);
	return crc;
}

/* Read DIR/<model>.logits: one header line, then n_tokens * n_vocab
 * little-endian float32 (token-major). NULL when absent. */
static float *read_golden(const char *path, uint32_t *crc)
{
	size_t len;
	char *b = t_slurp(path, &len);
	if (!b)
		return NULL;
	char *nl = memchr(b, '\n', len);
	T_REQUIRE(nl, "%s: no header line", path);
	*nl = 0;
	int nt = 0, nv = 0;
	unsigned h = 0;
	const char *p;
	T_REQUIRE(!strncmp(b, "seekfs-forward-logits 1 ", 24) &&
			  (p = strstr(b, " n_tokens=")) && sscanf(p, " n_tokens=%d", &nt) == 1 &&
			  (p = strstr(b, " n_vocab=")) && sscanf(p, " n_vocab=%d", &nv) == 1 &&
			  (p = strstr(b, " weights_crc32=")) &&
			  sscanf(p, " weights_crc32=%x", &h) == 1,
		  "%s: bad header '%s'", path, b);
	T_REQUIRE(nt == N_SEQ && nv == N_VOCAB, "%s: %d x %d logits, expected %d x %d", path,
		  nt, nv, N_SEQ, N_VOCAB);
	char want[256] = " tokens=";
	for (int i = 0; i < N_SEQ; i++)
		snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", i ? "," : "",
			 (int)SEQ[i]);
	T_REQUIRE(strstr(b, want), "%s: computed for another token sequence than%s", path, want);
	size_t nbytes = (size_t)nt * (size_t)nv * sizeof(float);
	size_t off = (size_t)(nl + 1 - b);
	T_REQUIRE(len - off == nbytes, "%s: %zu bytes of logits, expected %zu", path, len - off,
		  nbytes);
	float *x = malloc(nbytes);
	T_REQUIRE(x, "out of memory");
	memcpy(x, b + off, nbytes); /* the files are little-endian, as is every target */
	free(b);
	*crc = h;
	return x;
}

/* max|a - b| / max|b|, and where the largest difference is. */
static double rel_err(const float *a, const float *b, size_t n, size_t *where)
{
	double md = 0, mb = 0;
	*where = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - (double)b[i]);
		if (!(d <= md)) { /* also catches NaN */
			md = d;
			*where = i;
		}
		if (fabs((double)b[i]) > mb)
			mb = fabs((double)b[i]);
	}
	return mb > 0 ? md / mb : md;
}

/* ---- the checks ---------------------------------------------------------- */

static void check_hparams(const struct model *m, const struct cfg *c, const char *path)
{
	const struct model_hparams *hp = model_hparams(m);
	T_CHECK(hp->arch == (!strcmp(c->arch, "llama") ? ARCH_LLAMA :
			     !strcmp(c->arch, "qwen2") ? ARCH_QWEN2 : ARCH_GEMMA3), "%s", path);
	T_CHECK(hp->n_vocab == N_VOCAB && hp->n_embd == c->n_embd && hp->n_layer == c->n_layer &&
			hp->n_head == c->n_head && hp->n_head_kv == c->n_head_kv &&
			hp->head_dim == c->head_dim && hp->n_ff == c->n_ff &&
			hp->n_rot == c->head_dim,
		"%s: hparams vocab %d embd %d layer %d head %d/%d head_dim %d ff %d rot %d", path,
		hp->n_vocab, hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->head_dim,
		hp->n_ff, hp->n_rot);
	T_CHECK(hp->rope_mode == (strcmp(c->arch, "llama") ? KT_ROPE_NEOX : KT_ROPE_NORM), "%s: rope mode %d",
		path, (int)hp->rope_mode);
	T_CHECK(hp->rope_base == c->rope_base && hp->norm_eps == c->eps,
		"%s: rope base %g eps %g", path, hp->rope_base, hp->norm_eps);
	T_CHECK(tok_n_vocab(model_tok(m)) == N_VOCAB, "%s: tokenizer has %d tokens", path,
		tok_n_vocab(model_tok(m)));
}

static void report(const char *what, const char *path, double e, double bound, size_t where)
{
	fprintf(stderr, "  %-34s %-12s max rel err %.3g (bound %.0e) at token %zu logit %zu\n",
		path, what, e, bound, where / N_VOCAB, where % N_VOCAB);
}

static void run_model(const struct cfg *c, const struct tbound *tb, const char *tmp,
		      const char *data, struct kt_pool *pool)
{
	char path[4096], gpath[4096], err[512] = "";
	model_file(path, sizeof path, tmp, c, tb->type, ".gguf");
	write_model(c, tb->type, path, NULL);
	const char *base = strrchr(path, '/') + 1;

	uint32_t want_crc = 0;
	model_file(gpath, sizeof gpath, data, c, tb->type, ".logits");
	float *golden = read_golden(gpath, &want_crc);
	T_CHECK(golden, "%s: missing; make it with tools/ref_forward.py", gpath);
	uint32_t have_crc = weights_crc(path);
	if (golden && have_crc != want_crc) {
		T_CHECK(0,
			"%s: the weights differ from those %s was computed from "
			"(crc32 %08x, golden %08x): kt_quantize_row(%s) or the test's "
			"weights changed; regenerate with tools/ref_forward.py",
			base, gpath, (unsigned)have_crc, (unsigned)want_crc,
			kt_type_name(tb->type));
		free(golden);
		golden = NULL;
	}

	struct model *m = NULL;
	int rc = model_load(path, &m, err, sizeof err);
	T_CHECK(rc == 0, "model_load %s: %d %s", base, rc, err);
	if (rc) {
		free(golden);
		return;
	}
	check_hparams(m, c, base);

	const size_t nl = (size_t)N_SEQ * N_VOCAB;
	float *batch = calloc(nl, sizeof(float)), *incr = calloc(nl, sizeof(float));
	float *chunk = calloc(nl, sizeof(float));
	T_REQUIRE(batch && incr && chunk, "out of memory");
	struct session *s = NULL, *s1 = NULL;
	T_REQUIRE(session_new(m, 16, KT_F32, pool, &s, err, sizeof err) == 0, "session_new: %s", err);
	T_REQUIRE(session_new(m, 16, KT_F32, NULL, &s1, err, sizeof err) == 0, "session_new: %s", err);

	/* One batch, all logits, on the thread pool. */
	rc = session_forward(s, SEQ, N_SEQ, 1, batch);
	T_CHECK(rc == 0 && session_pos(s) == N_SEQ, "%s: batch forward %d pos %d", base, rc,
		session_pos(s));
	size_t where;
	if (golden) {
		double e = rel_err(batch, golden, nl, &where);
		report("vs golden", base, e, tb->golden, where);
		T_CHECK(e <= tb->golden, "%s: logits differ from %s: max rel err %g > %g at token "
			"%zu logit %zu (engine %g, golden %g)", base, gpath, e, tb->golden,
			where / N_VOCAB, where % N_VOCAB, batch[where], golden[where]);
	}

	/* One token at a time, single-threaded: the KV-cache path. */
	for (int i = 0; i < N_SEQ; i++) {
		rc = session_forward(s1, SEQ + i, 1, 0, incr + (size_t)i * N_VOCAB);
		T_CHECK(rc == 0 && session_pos(s1) == i + 1, "%s: step %d: %d", base, i, rc);
	}
	double e = rel_err(incr, batch, nl, &where);
	report("incremental", base, e, tb->incr, where);
	T_CHECK(e <= tb->incr, "%s: one token at a time differs from one batch: max rel err %g "
		"> %g at token %zu logit %zu (%g vs %g)", base, e, tb->incr, where / N_VOCAB,
		where % N_VOCAB, incr[where], batch[where]);

	/* Reset, then two chunks (5 + 7) with all logits: a batch that starts
	 * at a non-zero position attends to the cache. */
	session_reset(s);
	T_CHECK(session_pos(s) == 0, "%s: pos %d after reset", base, session_pos(s));
	rc = session_forward(s, SEQ, 5, 1, chunk);
	rc |= session_forward(s, SEQ + 5, N_SEQ - 5, 1, chunk + (size_t)5 * N_VOCAB);
	T_CHECK(rc == 0 && session_pos(s) == N_SEQ, "%s: chunked forward %d", base, rc);
	e = rel_err(chunk, batch, nl, &where);
	report("chunks 5+7", base, e, tb->incr, where);
	T_CHECK(e <= tb->incr, "%s: two chunks differ from one batch: max rel err %g > %g at "
		"token %zu logit %zu", base, e, tb->incr, where / N_VOCAB, where % N_VOCAB);

	/* Continuous batching: three sessions at different positions take one
	 * decode step each in one pass, twice; each must give the logits the
	 * whole sequence gave at that position. */
	{
		struct session *sb[3] = {NULL, NULL, NULL};
		static const int at[3] = {4, 7, 9};
		float *out = calloc((size_t)3 * N_VOCAB, sizeof(float));
		T_REQUIRE(out, "out of memory");
		for (int i = 0; i < 3; i++) {
			T_REQUIRE(session_new(m, 16, KT_F32, pool, &sb[i], err, sizeof err) == 0,
				  "session_new: %s", err);
			T_CHECK(session_forward(sb[i], SEQ, at[i], 0, NULL) == 0, "%s: prefix", base);
		}
		for (int step = 0; step < 2; step++) {
			int32_t tok[3];
			for (int i = 0; i < 3; i++)
				tok[i] = SEQ[at[i] + step];
			rc = session_decode_batch(sb, tok, 3, out);
			T_CHECK(rc == 0, "%s: session_decode_batch: %d", base, rc);
			for (int i = 0; i < 3 && !rc; i++) {
				const float *want = batch + (size_t)(at[i] + step) * N_VOCAB;
				e = rel_err(out + (size_t)i * N_VOCAB, want, N_VOCAB, &where);
				T_CHECK(e <= tb->incr, "%s: batched decode of session %d at position %d "
					"differs from one batch: max rel err %g > %g at logit %zu",
					base, i, at[i] + step, e, tb->incr, where);
				T_CHECK(session_pos(sb[i]) == at[i] + step + 1, "%s: pos %d", base,
					session_pos(sb[i]));
			}
		}
		struct session *twice[2] = {sb[0], sb[0]};
		int32_t two[2] = {1, 2};
		T_CHECK(session_decode_batch(twice, two, 2, out) == -EINVAL,
			"%s: a session twice in one batch was accepted", base);
		/* a later session with a longer context than the first's would
		 * overrun the first's attention scratch */
		struct session *longer = NULL;
		T_REQUIRE(session_new(m, 64, KT_F32, pool, &longer, err, sizeof err) == 0,
			  "session_new: %s", err);
		struct session *mixed[2] = {sb[1], longer};
		T_CHECK(session_decode_batch(mixed, two, 2, out) == -EINVAL,
			"%s: a batch after a shorter-context session was accepted", base);
		session_free(longer);
		for (int i = 0; i < 3; i++)
			session_free(sb[i]);
		free(out);
	}

	/* Errors: the context is 16 and 12 are used; ids must be < n_vocab. */
	int32_t bad = N_VOCAB;
	T_CHECK(session_forward(s1, &bad, 1, 0, incr) == -EINVAL, "%s: id %d accepted", base,
		bad);
	T_CHECK(session_forward(s1, SEQ, 5, 0, incr) == -ENOSPC, "%s: 12 + 5 tokens fit in 16",
		base);

	session_free(s);
	session_free(s1);
	model_free(m);
	free(batch);
	free(incr);
	free(chunk);
	free(golden);
	unlink(path);
}

/* A model that lacks a tensor is refused with a message naming it. */
static void check_missing_tensor(const char *tmp)
{
	char path[4096], err[512] = "";
	snprintf(path, sizeof path, "%s/missing.gguf", tmp);
	write_model(&CFGS[1], KT_F32, path, "blk.1.ffn_up.weight");
	struct model *m = NULL;
	int rc = model_load(path, &m, err, sizeof err);
	T_CHECK(rc < 0 && !m, "model without blk.1.ffn_up.weight loaded (rc %d)", rc);
	T_CHECK(strstr(err, "blk.1.ffn_up.weight"), "message does not name the tensor: '%s'", err);
	if (m)
		model_free(m);
	unlink(path);
}

/* An architecture the engine does not implement is refused by name. */
static void check_unsupported_arch(const char *tmp)
{
	char path[4096], err[512] = "";
	snprintf(path, sizeof path, "%s/mamba.gguf", tmp);
	struct cfg c = CFGS[0];
	c.arch = "mamba";
	write_model(&c, KT_F32, path, NULL);
	struct model *m = NULL;
	int rc = model_load(path, &m, err, sizeof err);
	T_CHECK(rc < 0 && !m, "a mamba model loaded (rc %d)", rc);
	T_CHECK(strstr(err, "'mamba'") && strstr(err, "not supported"),
		"message does not name the architecture: '%s'", err);
	if (m)
		model_free(m);
	unlink(path);
}

/* The F16 KV cache (the default for generation) against the exact F32
 * one on the F32 models: the difference is F16 rounding of keys, values,
 * queries and attention weights, about 1e-3 relative to the largest logit
 * (a bound of 1e-2 leaves room and still catches a wrong layout, which
 * moves logits by tens of percent). */
static void check_f16_cache(const char *tmp, struct kt_pool *pool)
{
	static const int32_t toks[12] = {72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33};
	for (size_t a = 0; a < sizeof CFGS / sizeof CFGS[0]; a++) {
		char path[4096], err[512] = "";
		model_file(path, sizeof path, tmp, &CFGS[a], KT_F32, "-kv.gguf");
		write_model(&CFGS[a], KT_F32, path, NULL);
		struct model *m;
		T_REQUIRE(model_load(path, &m, err, sizeof err) == 0, "%s", err);
		struct session *s32, *s16;
		T_REQUIRE(session_new(m, 16, KT_F32, pool, &s32, err, sizeof err) == 0, "%s", err);
		T_REQUIRE(session_new(m, 16, KT_F16, pool, &s16, err, sizeof err) == 0, "%s", err);
		size_t nv = (size_t)model_hparams(m)->n_vocab;
		float *l32 = malloc(12 * nv * sizeof(float)), *l16 = malloc(12 * nv * sizeof(float));
		T_REQUIRE(l32 && l16, "out of memory");
		T_REQUIRE(session_forward(s32, toks, 12, 1, l32) == 0, "forward f32 cache");
		T_REQUIRE(session_forward(s16, toks, 12, 1, l16) == 0, "forward f16 cache");
		size_t where;
		double e = rel_err(l16, l32, 12 * nv, &where);
		report("f16 KV cache", path, e, 1e-2, where);
		T_CHECK(e > 0 && e <= 1e-2, "%s: F16 cache error %g not in (0, 1e-2]", path, e);
		struct session *sq = NULL;
		T_CHECK(session_new(m, 16, KT_Q8_0, pool, &sq, err, sizeof err) == -EINVAL && !sq &&
				strstr(err, "q8_0"),
			"a q8_0 KV cache was not refused: '%s'", err);
		free(l32);
		free(l16);
		session_free(s16);
		session_free(s32);
		model_free(m);
		unlink(path);
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--write-only")) {
		mkdir(argv[2], 0777);
		for (size_t a = 0; a < sizeof CFGS / sizeof CFGS[0]; a++)
			for (size_t t = 0; t < N_TYPES; t++) {
				char path[4096];
				model_file(path, sizeof path, argv[2], &CFGS[a], TYPES[t].type, ".gguf");
				write_model(&CFGS[a], TYPES[t].type, path, NULL);
				printf("%s\n", path);
			}
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: %s DATA_DIR | --write-only DIR\n", argv[0]);
		return 2;
	}
	const char *data = argv[1];

	char tmp[] = "/tmp/seekfs-test-forward.XXXXXX";
	T_REQUIRE(mkdtemp(tmp), "mkdtemp");
	struct kt_pool *pool = kt_pool_create(2);
	T_REQUIRE(pool, "kt_pool_create");
	/* SEEKFS_TEST_FORWARD=llama-q4_K runs only that model (debugging). */
	const char *only = getenv("SEEKFS_TEST_FORWARD");
	for (size_t a = 0; a < sizeof CFGS / sizeof CFGS[0]; a++)
		for (size_t t = 0; t < N_TYPES; t++) {
			char name[64];
			snprintf(name, sizeof name, "%s-%s", CFGS[a].arch, kt_type_name(TYPES[t].type));
			if (only && *only && strcmp(only, name))
				continue;
			run_model(&CFGS[a], &TYPES[t], tmp, data, pool);
		}
	check_missing_tensor(tmp);
	check_unsupported_arch(tmp);
	check_f16_cache(tmp, pool);
	kt_pool_destroy(pool);
	rmdir(tmp);
	return t_done("test_forward");
}
