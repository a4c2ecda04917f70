/*
 * test_synthetic: the synthetic models of `seekfs bench --synthetic`.
 *
 * The tiny models (qwen2-tiny, llama-tiny; Q4_K_M and Q8_0) are written,
 * read back tensor by tensor against the spec, loaded with model_load and
 * run: a chat prompt through the template and tokenizer, then greedy decode
 * steps whose logits must be finite. The same seed must give the same bytes
 * with or without a thread pool.
 *
 * The real-sized models are not written (4-9 GB): their tensor lists are
 * checked against numbers stated here (hyperparameters from the models'
 * config.json, the layers llama-quantize gives more bits, tensor and type
 * counts, bytes) and the file size against the published GGUF files. When
 * the real Qwen2.5-Coder-0.5B-Instruct Q4_K_M of tools/fetch-models.sh is
 * installed, qwen2-0.5b-q4_k_m is compared with it tensor by tensor.
 *
 * The GGUF writer's streamed tensors (gguf_w_tensor_fill), which the
 * synthetic files are written with, are checked on their own too: rows
 * asked for in order across chunks, the size gguf_writer_size promised, and
 * no file left behind when a fill fails.
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

static char tmpdir[] = "/tmp/test_synthetic.XXXXXX";

/* The layers i of n whose attn_v and ffn_down llama-quantize's Q4_K_M
 * gives more bits (use_more_bits: i < n/8, i >= 7n/8, (i - n/8) % 3 == 2),
 * written out. */
static const int more_bits_8[] = {0, 3, 6, 7, -1};
static const int more_bits_24[] = {0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23, -1};
static const int more_bits_28[] = {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27, -1};
static const int more_bits_32[] = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31, -1};

static const int *more_bits_list(int n_layer)
{
	switch (n_layer) {
	case 8: return more_bits_8;
	case 24: return more_bits_24;
	case 28: return more_bits_28;
	case 32: return more_bits_32;
	default: return NULL;
	}
}

static int in_list(const int *l, int i)
{
	for (; l && *l >= 0; l++)
		if (*l == i)
			return 1;
	return 0;
}

static const struct synth_model *find_model(const char *name)
{
	for (int i = 0; synth_model(i); i++)
		if (!strcmp(synth_model(i)->name, name))
			return synth_model(i);
	return NULL;
}

static struct synth_tensor *tensors_of(const struct synth_model *m, enum synth_ftype f, int *n)
{
	*n = synth_tensors(m, f, NULL, 0);
	T_REQUIRE(*n > 0, "synth_tensors(%s) = %d", m->name, *n);
	struct synth_tensor *t = calloc((size_t)*n, sizeof *t);
	T_REQUIRE(t, "out of memory");
	T_REQUIRE(synth_tensors(m, f, t, *n) == *n, "synth_tensors count changed");
	return t;
}

static const struct synth_tensor *find_t(const struct synth_tensor *t, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(t[i].name, name))
			return &t[i];
	return NULL;
}

/* The type llama-quantize gives tensor name of m, restated from its rules
 * with the layer lists above (rows not a multiple of 256 fall back: Q4_K to
 * Q5_0, Q6_K to Q8_0). */
static enum kt_type expected_type(const struct synth_model *m, enum synth_ftype f,
				  const char *name, int64_t ne0, int n_dims)
{
	if (n_dims == 1)
		return KT_F32;
	if (f == SYNTH_Q8_0)
		return KT_Q8_0;
	const int fits = ne0 % 256 == 0;
	if (!strcmp(name, "output.weight") || (m->tied && !strcmp(name, "token_embd.weight")))
		return fits ? KT_Q6_K : KT_Q8_0;
	int layer = -1;
	sscanf(name, "blk.%d.", &layer);
	int more = layer >= 0 && (strstr(name, "attn_v.weight") || strstr(name, "ffn_down.weight")) &&
		   in_list(more_bits_list(m->n_layer), layer);
	if (more)
		return fits ? KT_Q6_K : KT_Q8_0;
	return fits ? KT_Q4_K : KT_Q5_0;
}

/* Tensor name of the list: present, with shape [ne0, ne1] (ne1 = 1: a
 * vector) and the type llama-quantize gives it. */
static void check_one(const struct synth_model *m, enum synth_ftype f,
		      const struct synth_tensor *t, int n, const char *name, int64_t ne0, int64_t ne1)
{
	const struct synth_tensor *x = find_t(t, n, name);
	if (!x) {
		T_CHECK(0, "%s: no tensor %s", m->name, name);
		return;
	}
	int dims = ne1 > 1 ? 2 : 1;
	enum kt_type et = expected_type(m, f, name, ne0, dims);
	T_CHECK(x->n_dims == dims && x->ne[0] == ne0 && x->ne[1] == ne1,
		"%s: %s is %d-D [%lld, %lld], expected [%lld, %lld]", m->name, name, x->n_dims,
		(long long)x->ne[0], (long long)x->ne[1], (long long)ne0, (long long)ne1);
	T_CHECK(x->type == et, "%s-%s: %s is %s, expected %s", m->name, synth_ftype_name(f), name,
		kt_type_name(x->type), kt_type_name(et));
	T_CHECK(x->bytes == kt_row_bytes(x->type, ne0) * (uint64_t)ne1, "%s: %s bytes %llu",
		m->name, name, (unsigned long long)x->bytes);
}

/* Every tensor the loader needs, with its shape from the hyperparameters,
 * and no other. */
static void check_tensor_set(const struct synth_model *m, enum synth_ftype f,
			     const struct synth_tensor *t, int n)
{
	const int64_t E = m->n_embd, V = m->n_vocab, F = m->n_ff;
	const int64_t Q = (int64_t)m->n_head * m->head_dim;
	const int64_t KV = (int64_t)m->n_head_kv * m->head_dim;
	int want = 2 + !m->tied + (m->rope_factor > 0) + m->n_layer * (9 + 3 * m->qkv_bias);
	T_CHECK(n == want, "%s: %d tensors, expected %d", m->name, n, want);
	check_one(m, f, t, n, "token_embd.weight", E, V);
	check_one(m, f, t, n, "output_norm.weight", E, 1);
	if (!m->tied)
		check_one(m, f, t, n, "output.weight", E, V);
	if (m->rope_factor > 0)
		check_one(m, f, t, n, "rope_freqs.weight", m->head_dim / 2, 1);
	const struct {
		const char *suffix;
		int64_t ne0, ne1;
	} per_layer[] = {
		{"attn_norm.weight", E, 1}, {"attn_q.weight", E, Q}, {"attn_k.weight", E, KV},
		{"attn_v.weight", E, KV}, {"attn_output.weight", Q, E}, {"ffn_norm.weight", E, 1},
		{"ffn_gate.weight", E, F}, {"ffn_up.weight", E, F}, {"ffn_down.weight", F, E},
		{"attn_q.bias", Q, 1}, {"attn_k.bias", KV, 1}, {"attn_v.bias", KV, 1},
	};
	const size_t n_per_layer = m->qkv_bias ? 12 : 9;
	for (int i = 0; i < m->n_layer; i++) {
		for (size_t j = 0; j < n_per_layer; j++) {
			char name[64];
			snprintf(name, sizeof name, "blk.%d.%s", i, per_layer[j].suffix);
			check_one(m, f, t, n, name, per_layer[j].ne0, per_layer[j].ne1);
		}
	}
}

/* ---- the writer's streamed tensors ---------------------------------------- */

struct counting {
	int calls;
	int64_t next_row; /* rows must come in order, each once */
	int fail_at;      /* call that fails, 0 for none */
};

static int fill_index(void *ctx, int64_t row0, int64_t n_rows, void *buf)
{
	struct counting *c = ctx;
	c->calls++;
	if (c->fail_at && c->calls == c->fail_at)
		return -EDOM;
	T_CHECK(row0 == c->next_row, "rows %lld.. asked for, %lld expected", (long long)row0,
		(long long)c->next_row);
	c->next_row = row0 + n_rows;
	float *f = buf;
	for (int64_t r = 0; r < n_rows; r++)
		for (int64_t i = 0; i < 1024; i++)
			f[r * 1024 + i] = (float)((row0 + r) * 1024 + i);
	return 0;
}

/* A 6 MiB F32 tensor (more than one chunk) streamed between two copied
 * ones; a failing fill leaves no file behind. */
static void check_writer_fill(void)
{
	char path[512], tmp[520], err[512];
	snprintf(path, sizeof path, "%s/fill.gguf", tmpdir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	const int64_t ne[2] = {1024, 1536}, small[1] = {3};
	const float three[3] = {1, 2, 3};
	struct counting c = {0};
	struct gguf_writer *w = gguf_writer_new();
	T_REQUIRE(w, "gguf_writer_new");
	T_CHECK(gguf_w_u32(w, "general.alignment", 64) == 0, "alignment");
	T_CHECK(gguf_w_tensor(w, "a", KT_F32, 1, small, three) == 0, "tensor a");
	T_CHECK(gguf_w_tensor_fill(w, "big", KT_F32, 2, ne, fill_index, &c) == 0, "tensor big");
	T_CHECK(gguf_w_tensor(w, "z", KT_F32, 1, small, three) == 0, "tensor z");
	T_CHECK(gguf_w_tensor_fill(w, "big", KT_F32, 2, ne, fill_index, &c) == -EEXIST, "duplicate");
	T_CHECK(gguf_w_tensor_fill(w, "nofn", KT_F32, 2, ne, NULL, &c) == -EINVAL, "no function");
	const int64_t odd[2] = {100, 2};
	T_CHECK(gguf_w_tensor_fill(w, "odd", KT_Q4_K, 2, odd, fill_index, &c) == -EINVAL,
		"a row that is not whole blocks");
	T_REQUIRE(gguf_writer_write(w, path, err, sizeof err) == 0, "%s", err);
	T_CHECK(c.calls >= 2 && c.next_row == ne[1], "%d calls, %lld rows", c.calls,
		(long long)c.next_row);
	struct stat st;
	T_CHECK(stat(path, &st) == 0 && (uint64_t)st.st_size == gguf_writer_size(w),
		"file of %lld bytes, gguf_writer_size %llu", (long long)st.st_size,
		(unsigned long long)gguf_writer_size(w));
	struct gguf *g;
	T_REQUIRE(gguf_open(path, &g, err, sizeof err) == 0, "%s", err);
	const struct gguf_tensor *big = gguf_find_tensor(g, "big"), *z = gguf_find_tensor(g, "z");
	T_REQUIRE(big && z && big->size == 1024 * 1536 * 4, "tensor big");
	int ok = 1;
	for (int64_t i = 0; i < 1024 * 1536; i++)
		ok &= ((const float *)big->data)[i] == (float)i;
	T_CHECK(ok && (uintptr_t)big->data % 64 == 0, "streamed rows read back wrong");
	T_CHECK(!memcmp(z->data, three, sizeof three), "tensor z after the streamed one");
	gguf_close(g);
	unlink(path);

	c = (struct counting){.fail_at = 2};
	err[0] = 0;
	T_CHECK(gguf_writer_write(w, path, err, sizeof err) == -EDOM && strstr(err, "tensor big"),
		"a failing fill: %s", err);
	T_CHECK(access(path, F_OK) && access(tmp, F_OK), "a failed write left a file");
	gguf_writer_free(w);
}

/* ---- tiny models: written, loaded, run ------------------------------------ */

static void weight_stats(const char *what, const struct gguf_tensor *gt)
{
	const int64_t n = gt->ne[0];
	float *row = malloc((size_t)n * sizeof *row);
	T_REQUIRE(row, "out of memory");
	const size_t rb = kt_row_bytes((enum kt_type)gt->type, n);
	const int64_t rows = gt->ne[1];
	const int64_t pick[3] = {0, rows / 2, rows - 1};
	double s = 0, s2 = 0;
	int finite = 1;
	for (int k = 0; k < 3; k++) {
		kt_dequant_row((enum kt_type)gt->type, (const char *)gt->data + (size_t)pick[k] * rb,
			       row, n);
		for (int64_t i = 0; i < n; i++) {
			finite &= isfinite(row[i]);
			s += row[i];
			s2 += (double)row[i] * row[i];
		}
	}
	free(row);
	double mean = s / (3.0 * n), sd = sqrt(s2 / (3.0 * n) - mean * mean);
	T_CHECK(finite, "%s: %s decodes to non-finite values", what, gt->name);
	/* 0.02 by construction; the mean of 3n values of deviation 0.02
	 * is within 0.004 with n >= 256 */
	T_CHECK(fabs(mean) < 0.004 && sd > 0.014 && sd < 0.027,
		"%s: %s (%s) decodes to mean %g, deviation %g; expected about 0 and 0.02", what,
		gt->name, kt_type_name(gt->type), mean, sd);
}

static int logits_ok(const float *l, int n, double *sd)
{
	double s = 0, s2 = 0;
	for (int i = 0; i < n; i++) {
		if (!isfinite(l[i]))
			return 0;
		s += l[i];
		s2 += (double)l[i] * l[i];
	}
	double mean = s / n;
	*sd = sqrt(s2 / n - mean * mean);
	return 1;
}

static void check_tiny(const char *base, enum synth_ftype f, struct kt_pool *pool)
{
	const struct synth_model *m = find_model(base);
	T_REQUIRE(m, "no model %s", base);
	char name[64], path[512], path2[512], err[1024];
	snprintf(name, sizeof name, "%s-%s", base, synth_ftype_name(f));
	const struct synth_model *lm;
	enum synth_ftype lf;
	T_CHECK(synth_lookup(name, &lm, &lf, err, sizeof err) == 0 && lm == m && lf == f,
		"lookup %s: %s", name, err);
	snprintf(path, sizeof path, "%s/%s.gguf", tmpdir, name);
	snprintf(path2, sizeof path2, "%s/%s.pool.gguf", tmpdir, name);
	T_REQUIRE(synth_write(m, f, 7, NULL, path, err, sizeof err) == 0, "%s", err);
	T_REQUIRE(synth_write(m, f, 7, pool, path2, err, sizeof err) == 0, "%s", err);

	/* the size promised, the same bytes with a pool */
	size_t len1, len2;
	char *b1 = t_slurp(path, &len1), *b2 = t_slurp(path2, &len2);
	T_REQUIRE(b1 && b2, "cannot read %s back", path);
	T_CHECK((int64_t)len1 == synth_file_size(m, f), "%s: file has %zu bytes, synth_file_size %lld",
		name, len1, (long long)synth_file_size(m, f));
	T_CHECK(len1 == len2 && !memcmp(b1, b2, len1), "%s: a pool changes the bytes", name);
	free(b1);
	free(b2);
	unlink(path2);

	/* tensors as the spec says, in its order */
	int n;
	struct synth_tensor *t = tensors_of(m, f, &n);
	check_tensor_set(m, f, t, n);
	struct gguf *g;
	T_REQUIRE(gguf_open(path, &g, err, sizeof err) == 0, "%s", err);
	T_CHECK(gguf_n_tensors(g) == n, "%s: %lld tensors in the file, %d in the spec", name,
		(long long)gguf_n_tensors(g), n);
	for (int i = 0; i < n && i < gguf_n_tensors(g); i++) {
		const struct gguf_tensor *gt = gguf_tensor_at(g, i);
		T_CHECK(!strcmp(gt->name, t[i].name), "%s: tensor %d is %s, spec %s", name, i,
			gt->name, t[i].name);
		T_CHECK(gt->type == (uint32_t)t[i].type && gt->n_dims == t[i].n_dims &&
				gt->ne[0] == t[i].ne[0] && gt->ne[1] == t[i].ne[1] &&
				gt->size == t[i].bytes,
			"%s: %s is %s [%lld, %lld] %zu bytes; spec %s [%lld, %lld] %llu", name,
			gt->name, kt_type_name(gt->type), (long long)gt->ne[0], (long long)gt->ne[1],
			gt->size, kt_type_name(t[i].type), (long long)t[i].ne[0],
			(long long)t[i].ne[1], (unsigned long long)t[i].bytes);
		if (gt->n_dims == 2)
			weight_stats(name, gt);
	}
	size_t sl;
	const char *sv = gguf_get_str(g, "seekfs.synthetic", &sl);
	T_CHECK(sv && sl == strlen(name) && !memcmp(sv, name, sl), "%s: seekfs.synthetic", name);
	T_CHECK(gguf_get_i64_or(g, "general.file_type", -1) == (int64_t)f, "%s: general.file_type",
		name);
	const struct gguf_tensor *rf = gguf_find_tensor(g, "rope_freqs.weight");
	if (m->rope_factor > 0 && rf) {
		/* Llama 3.1's scaling: the fastest pairs unscaled, the slowest
		 * divided by the factor, a smooth ramp between */
		const float *v = rf->data;
		int h = m->head_dim / 2, ramp = 1;
		for (int i = 1; i < h; i++)
			ramp &= v[i] >= v[i - 1];
		T_CHECK(v[0] == 1.0f && v[h - 1] == m->rope_factor && ramp,
			"%s: rope_freqs %g .. %g", name, v[0], v[h - 1]);
	}
	gguf_close(g);
	free(t);

	/* the engine loads it as the model it imitates */
	struct model *mod;
	T_REQUIRE(model_load(path, &mod, err, sizeof err) == 0, "%s", err);
	const struct model_hparams *hp = model_hparams(mod);
	T_CHECK(hp->arch == m->arch && hp->n_vocab == m->n_vocab && hp->n_embd == m->n_embd &&
			hp->n_layer == m->n_layer && hp->n_head == m->n_head &&
			hp->n_head_kv == m->n_head_kv && hp->head_dim == m->head_dim &&
			hp->n_ff == m->n_ff && hp->n_ctx_train == m->n_ctx_train &&
			hp->rope_base == m->rope_base && hp->norm_eps == m->norm_eps,
		"%s: loaded hyperparameters differ from the table", name);
	const struct tok *tk = model_tok(mod);
	T_CHECK(tok_n_vocab(tk) == m->n_vocab, "%s: %d tokens", name, tok_n_vocab(tk));
	const int qwen = m->arch == ARCH_QWEN2;
	T_CHECK(model_chat(mod) == (qwen ? CHAT_CHATML : CHAT_LLAMA3), "%s: chat template %s", name,
		chat_name(model_chat(mod)));
	int32_t end_turn = tok_find(tk, qwen ? "<|im_end|>" : "<|eot_id|>");
	T_CHECK(end_turn >= 0 && tok_eos(tk) == end_turn && tok_is_eog(tk, end_turn),
		"%s: end of turn %d, eos %d", name, end_turn, tok_eos(tk));
	T_CHECK(tok_add_bos(tk) == !qwen, "%s: add_bos %d", name, tok_add_bos(tk));
	T_CHECK(!strcmp(tok_pre_name(tk), qwen ? "qwen2" : "llama-bpe"), "%s: pre-tokenizer %s",
		name, tok_pre_name(tk));
	if (qwen) {
		char sys[256];
		T_CHECK(chat_default_system(model_chat_template(mod), sys, sizeof sys) > 0 &&
				strstr(sys, "You are Qwen"),
			"%s: the template's default system message", name);
	}

	/* any text encodes and decodes back */
	static const char text[] = "The quick brown fox, 1234 jumps over: \xc3\xa9t\xc3\xa9!\n";
	int32_t ids[256];
	int64_t ni = tok_encode(tk, text, sizeof text - 1, 0, ids, 256);
	T_CHECK(ni > 0 && ni < (int64_t)sizeof text, "%s: %lld ids", name, (long long)ni);
	char back[256];
	size_t bl = 0;
	for (int64_t i = 0; i < ni && ni > 0; i++) {
		int pl = tok_piece(tk, ids[i], back + bl, sizeof back - bl);
		T_REQUIRE(pl >= 0 && bl + (size_t)pl < sizeof back, "piece");
		bl += (size_t)pl;
	}
	T_CHECK(bl == sizeof text - 1 && !memcmp(back, text, bl), "%s: decode(encode(text)) differs",
		name);

	/* a chat prompt, then greedy decode steps: finite, varied logits */
	struct chat_msg msg = {"user", "Hello, who are you?"};
	char prompt[1024];
	int pl = chat_apply(model_chat(mod), &msg, 1, 1, prompt, sizeof prompt);
	T_REQUIRE(pl > 0 && pl < (int)sizeof prompt, "chat_apply %d", pl);
	int64_t np = tok_encode(tk, prompt, (size_t)pl, 1, ids, 256);
	T_REQUIRE(np > 4 && np < 200, "%s: prompt of %lld tokens", name, (long long)np);
	T_CHECK(ids[0] == (qwen ? tok_find(tk, "<|im_start|>") : tok_bos(tk)),
		"%s: the prompt starts with %d", name, ids[0]);
	struct session *s;
	T_REQUIRE(session_new(mod, 64 + (int)np, KT_F16, pool, &s, err, sizeof err) == 0, "%s", err);
	float *logits = malloc((size_t)m->n_vocab * sizeof *logits);
	T_REQUIRE(logits, "out of memory");
	T_REQUIRE(session_forward(s, ids, (int)np, 0, logits) == 0, "%s: prefill", name);
	for (int step = 0; step < 5; step++) {
		double sd = 0;
		T_CHECK(logits_ok(logits, m->n_vocab, &sd) && sd > 0.05 && sd < 20,
			"%s: step %d: logits not finite or flat (deviation %g)", name, step, sd);
		int32_t best = 0;
		for (int i = 1; i < m->n_vocab; i++)
			if (logits[i] > logits[best])
				best = i;
		T_REQUIRE(session_forward(s, &best, 1, 0, logits) == 0, "%s: decode", name);
	}
	T_CHECK(session_pos(s) == (int)np + 5, "%s: position %d", name, session_pos(s));
	free(logits);
	session_free(s);
	model_free(mod);
	unlink(path);
}

/* ---- real sizes: the tensor lists ------------------------------------------ */

/* One file type of a model: tensors, bytes of tensor data, tensors of
 * each type, bytes of the published GGUF. */
struct real_file {
	int n;
	uint64_t bytes;
	int f32, q4_k, q6_k, q8_0, q5_0;
	double published;
};

struct real {
	const char *name;
	/* hyperparameters as in the model's config.json */
	int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
	float rope_base, norm_eps;
	int tied, bias, rope_freqs;
	struct real_file q4, q8; /* Q4_K_M, Q8_0 */
};

/* Published sizes: bartowski's GGUF files as the Hugging Face file listings
 * show them (MB = 10^6, GB = 10^9 bytes): Qwen2.5-0.5B-Instruct-GGUF Q4_K_M
 * 398 MB, Q8_0 531 MB; Qwen2.5-1.5B-Instruct-GGUF 986 MB, 1.65 GB;
 * Qwen2.5-7B-Instruct-GGUF 4.68 GB, 8.10 GB; Meta-Llama-3.1-8B-Instruct-GGUF
 * 4.92 GB, 8.54 GB. Ours differ by the vocabulary's metadata (shorter token
 * strings; Llama 3 has 280147 merges, ours one per token) and the
 * shortened chat template: well under 1%. Tensor bytes are exact, from the
 * shapes and ggml's block sizes (Q4_K 144 B per 256, Q6_K 210 per 256,
 * Q8_0 34 per 32, Q5_0 22 per 32). */
static const struct real reals[] = {
	{"qwen2-0.5b", 151936, 896, 24, 14, 2, 64, 4864, 1e6f, 1e-6f, 1, 1, 0,
	 {290, 391859712, 121, 12, 12, 13, 132, 398e6}, {290, 525120000, 121, 0, 0, 169, 0, 531e6}},
	{"qwen2-1.5b", 151936, 1536, 28, 12, 2, 128, 8960, 1e6f, 1e-6f, 1, 1, 0,
	 {338, 980097536, 141, 168, 29, 0, 0, 986e6}, {338, 1640622080, 141, 0, 0, 197, 0, 1.65e9}},
	{"qwen2-7b", 152064, 3584, 28, 28, 4, 128, 18944, 1e6f, 1e-6f, 0, 1, 0,
	 {339, 4677120000, 141, 169, 29, 0, 0, 4.68e9}, {339, 8092571648, 141, 0, 0, 198, 0, 8.10e9}},
	{"llama-8b", 128256, 4096, 32, 32, 8, 128, 14336, 5e5f, 1e-5f, 0, 0, 1,
	 {292, 4912898304, 66, 193, 33, 0, 0, 4.92e9}, {292, 8532934912, 66, 0, 0, 226, 0, 8.54e9}},
};

static void check_real(const struct real *r)
{
	const struct synth_model *m = find_model(r->name);
	T_REQUIRE(m, "no model %s", r->name);
	T_CHECK(m->n_vocab == r->n_vocab && m->n_embd == r->n_embd && m->n_layer == r->n_layer &&
			m->n_head == r->n_head && m->n_head_kv == r->n_head_kv &&
			m->head_dim == r->head_dim && m->n_ff == r->n_ff &&
			m->rope_base == r->rope_base && m->norm_eps == r->norm_eps &&
			m->tied == r->tied && m->qkv_bias == r->bias &&
			(m->rope_factor > 0) == r->rope_freqs,
		"%s: hyperparameters differ from the real model's", r->name);
	for (int k = 0; k < 2; k++) {
		enum synth_ftype f = k ? SYNTH_Q8_0 : SYNTH_Q4_K_M;
		const struct real_file *e = k ? &r->q8 : &r->q4;
		int n;
		struct synth_tensor *t = tensors_of(m, f, &n);
		check_tensor_set(m, f, t, n);
		uint64_t bytes = 0;
		int cnt[KT_TYPE_MAX] = {0};
		for (int i = 0; i < n; i++) {
			bytes += t[i].bytes;
			cnt[t[i].type]++;
		}
		T_CHECK(n == e->n && bytes == e->bytes,
			"%s-%s: %d tensors of %llu bytes, expected %d of %llu", r->name,
			synth_ftype_name(f), n, (unsigned long long)bytes, e->n,
			(unsigned long long)e->bytes);
		T_CHECK(cnt[KT_F32] == e->f32 && cnt[KT_Q4_K] == e->q4_k && cnt[KT_Q6_K] == e->q6_k &&
				cnt[KT_Q8_0] == e->q8_0 && cnt[KT_Q5_0] == e->q5_0,
			"%s-%s: f32 %d q4_K %d q6_K %d q8_0 %d q5_0 %d", r->name, synth_ftype_name(f),
			cnt[KT_F32], cnt[KT_Q4_K], cnt[KT_Q6_K], cnt[KT_Q8_0], cnt[KT_Q5_0]);
		int64_t size = synth_file_size(m, f);
		double rel = (size - e->published) / e->published;
		T_CHECK(size > 0 && fabs(rel) < 0.01,
			"%s-%s: file of %lld bytes, %.2f%% off the published %.0f", r->name,
			synth_ftype_name(f), (long long)size, 100 * rel, e->published);
		fprintf(stderr, "test_synthetic: %s-%s: %d tensors, %lld bytes "
			"(%+.2f%% of the published file)\n", r->name, synth_ftype_name(f), n,
			(long long)size, 100 * rel);
		free(t);
	}
}

/* qwen2-0.5b-q4_k_m against the real Qwen2.5-Coder-0.5B-Instruct Q4_K_M
 * (the same hyperparameters). That file was made by a llama-quantize that
 * counted layers for use_more_bits in name order (blk.0, blk.1, blk.10,
 * blk.11, ...), so its layer at name position p got the type our layer p
 * gets; it also keeps an untied output.weight (Q8_0, the type of our tied
 * token_embd) next to a token_embd of the untied kind (Q4_K, fallen back to
 * Q5_0). Everything else must match tensor for tensor. */
static void check_real_file(void)
{
	char path[1200], err[512];
	t_models("Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf", path, sizeof path);
	struct stat st;
	if (stat(path, &st)) {
		fprintf(stderr, "test_synthetic: SKIP the comparison with a real file: %s is not "
			"installed (tools/fetch-models.sh installs it)\n", path);
		return;
	}
	struct gguf *g;
	T_REQUIRE(gguf_open(path, &g, err, sizeof err) == 0, "%s", err);
	const int failures = t_failures;
	const struct synth_model *m = find_model("qwen2-0.5b");
	int n;
	struct synth_tensor *t = tensors_of(m, SYNTH_Q4_K_M, &n);
	/* name position of each layer */
	int pos_of[64];
	char names[64][16];
	for (int i = 0; i < m->n_layer; i++)
		snprintf(names[i], sizeof names[i], "%d", i);
	for (int i = 0; i < m->n_layer; i++) {
		pos_of[i] = 0;
		for (int j = 0; j < m->n_layer; j++)
			pos_of[i] += strcmp(names[j], names[i]) < 0;
	}
	T_CHECK(gguf_get_i64_or(g, "qwen2.embedding_length", 0) == m->n_embd &&
			gguf_get_i64_or(g, "qwen2.block_count", 0) == m->n_layer &&
			gguf_get_i64_or(g, "qwen2.feed_forward_length", 0) == m->n_ff &&
			gguf_get_i64_or(g, "qwen2.attention.head_count", 0) == m->n_head &&
			gguf_get_i64_or(g, "qwen2.attention.head_count_kv", 0) == m->n_head_kv,
		"%s: hyperparameters", path);
	int checked = 0;
	for (int i = 0; i < n; i++) {
		const char *name = t[i].name;
		const struct gguf_tensor *rt;
		enum kt_type want = t[i].type;
		int layer = -1;
		char suffix[48] = "";
		if (!strcmp(name, "token_embd.weight")) {
			rt = gguf_find_tensor(g, "output.weight");
		} else if (sscanf(name, "blk.%d.%47s", &layer, suffix) == 2) {
			/* our layer pos_of[L] has the type the file's layer L has */
			int real_layer = -1;
			for (int L = 0; L < m->n_layer; L++)
				if (pos_of[L] == layer)
					real_layer = L;
			char other[80];
			snprintf(other, sizeof other, "blk.%d.%s", real_layer, suffix);
			rt = real_layer >= 0 ? gguf_find_tensor(g, other) : NULL;
		} else {
			rt = gguf_find_tensor(g, name);
		}
		T_CHECK(rt, "%s: no counterpart of %s", path, name);
		if (!rt)
			continue;
		T_CHECK(rt->type == (uint32_t)want && rt->ne[0] == t[i].ne[0] && rt->ne[1] == t[i].ne[1],
			"%s: for our %s (%s [%lld, %lld]) the file's %s is %s [%lld, %lld]", path, name,
			kt_type_name(want), (long long)t[i].ne[0], (long long)t[i].ne[1], rt->name,
			kt_type_name(rt->type), (long long)rt->ne[0], (long long)rt->ne[1]);
		checked++;
	}
	const struct gguf_tensor *te = gguf_find_tensor(g, "token_embd.weight");
	T_CHECK(te && te->type == KT_Q5_0, "%s: its untied token_embd should be q5_0", path);
	T_CHECK(checked == n && gguf_n_tensors(g) == n + 1, "%s: %d of %d tensors matched", path,
		checked, n);
	if (t_failures == failures)
		fprintf(stderr, "test_synthetic: qwen2-0.5b-q4_k_m matches %s tensor for tensor\n",
			path);
	free(t);
	gguf_close(g);
}

int main(void)
{
	T_REQUIRE(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
	struct kt_pool *pool = kt_pool_create(2);
	T_REQUIRE(pool, "kt_pool_create");

	/* names */
	const struct synth_model *m;
	enum synth_ftype f;
	char err[1024];
	T_CHECK(synth_lookup("qwen2-7b-q4_k_m", &m, &f, err, sizeof err) == 0 &&
			!strcmp(m->name, "qwen2-7b") && f == SYNTH_Q4_K_M,
		"lookup qwen2-7b-q4_k_m");
	T_CHECK(synth_lookup("llama-8b-q8_0", &m, &f, err, sizeof err) == 0 &&
			!strcmp(m->name, "llama-8b") && f == SYNTH_Q8_0,
		"lookup llama-8b-q8_0");
	static const char *const bad[] = {"qwen2-7b", "qwen2-7b-", "qwen2-7b-q4_0", "gpt-9b-q8_0",
					  "qwen2-7b-q8_0x", "", "-q8_0"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = 0;
		T_CHECK(synth_lookup(bad[i], &m, &f, err, sizeof err) == -ENOENT &&
				strstr(err, "qwen2-1.5b-q4_k_m") && strstr(err, "llama-8b-q8_0"),
			"'%s' must be refused with the known names: %s", bad[i], err);
	}

	check_writer_fill();
	check_tiny("qwen2-tiny", SYNTH_Q4_K_M, pool);
	check_tiny("qwen2-tiny", SYNTH_Q8_0, pool);
	check_tiny("llama-tiny", SYNTH_Q4_K_M, pool);
	check_tiny("llama-tiny", SYNTH_Q8_0, pool);
	/* the tiny qwen2 takes the fallbacks a 896-wide model takes */
	m = find_model("qwen2-tiny");
	int n;
	struct synth_tensor *t = tensors_of(m, SYNTH_Q4_K_M, &n);
	const struct synth_tensor *x = find_t(t, n, "blk.1.attn_q.weight");
	T_CHECK(x && x->type == KT_Q5_0, "qwen2-tiny: attn_q should fall back to q5_0");
	x = find_t(t, n, "blk.0.attn_v.weight");
	T_CHECK(x && x->type == KT_Q8_0, "qwen2-tiny: blk.0.attn_v should fall back to q8_0");
	x = find_t(t, n, "token_embd.weight");
	T_CHECK(x && x->type == KT_Q8_0, "qwen2-tiny: tied token_embd should be q8_0");
	free(t);

	for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
		check_real(&reals[i]);
	check_real_file();

	kt_pool_destroy(pool);
	rmdir(tmpdir);
	return t_done("test_synthetic");
}
