/*
 * Transformers read from GGUF: the decoders llama, qwen2 and gemma3
 * (generation, with a KV cache and batched prefill) and the encoder bert
 * (embeddings, bidirectional attention over whole sequences). Loading
 * checks every tensor's presence, type and shape; the forward passes run
 * on the CPU kernels.
 *
 * Layout follows GGUF/llama.cpp conventions: a weight matrix has ne[0] = its
 * input dimension and ne[1] = its output dimension, i.e. row r of the
 * matrix (ne[0] elements) produces output r. Q and K of llama models are
 * stored already permuted for the interleaved ("NORM") RoPE; qwen2 uses the
 * NeoX RoPE on the unpermuted halves.
 *
 * gemma3 as llama.cpp runs it: embeddings scaled by sqrt(n_embd); per head
 * RMSNorms of q and k (attn_q_norm, attn_k_norm) before the NeoX RoPE;
 * queries scaled by attn_scale; the attention's and the feed-forward's
 * outputs RMSNorm-ed (post_attention_norm, post_ffw_norm) before they are
 * added to the residual; GELU (tanh form) instead of SiLU; five of every six
 * layers attend over a sliding window with their own RoPE base (hparams).
 * The GGUF's norm weights already hold Gemma's 1 + w.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/internal.h"

/* ---- the model: hyperparameters and pointers into the mapped file ------- */

struct layer {
	const float *attn_norm;     /* (n_embd); bert: NULL (post-norm) */
	struct kt_mat wq;           /* (n_head*head_dim rows, n_embd cols) */
	struct kt_mat wk, wv;       /* (n_head_kv*head_dim, n_embd) */
	const float *bq, *bk, *bv;  /* qwen2 biases, NULL for llama */
	struct kt_mat wo;           /* (n_embd, n_head*head_dim) */
	const float *ffn_norm;      /* (n_embd) */
	struct kt_mat w_gate, w_up; /* (n_ff, n_embd) */
	struct kt_mat w_down;       /* (n_embd, n_ff) */
	/* gemma3: RMSNorms of each q and k head (head_dim), and of the
	 * attention's and the feed-forward's outputs (n_embd); else NULL */
	const float *q_norm, *k_norm, *post_attn_norm, *post_ffn_norm;
	/* the layer's RoPE: base and divisors (NULL: none); attends over the
	 * last n_swa positions when swa */
	float rope_base;
	const float *rope_freqs;
	int swa;
	/* bert only: output biases and the post-attention / post-FFN LayerNorms */
	const float *bo, *b_up, *b_down;
	const float *attn_out_norm, *attn_out_norm_b;   /* (n_embd) */
	const float *layer_out_norm, *layer_out_norm_b; /* (n_embd) */
};

struct model {
	struct gguf *g;
	struct tok *tok;
	struct model_hparams hp;
	enum chat_tmpl chat;
	char *chat_template;       /* tokenizer.chat_template, or NULL */
	char name[256];
	struct kt_mat tok_embd;    /* (n_vocab, n_embd): rows are embeddings */
	const float *out_norm;     /* (n_embd) */
	struct kt_mat output;      /* (n_vocab, n_embd); tok_embd when tied */
	const float *rope_freqs;   /* (n_rot/2) divisors, or NULL */
	struct kt_mat pos_embd;    /* bert: (n_ctx_train, n_embd) */
	struct kt_mat type_embd;   /* bert: (token types, n_embd); row 0 is used */
	const float *embd_norm, *embd_norm_b; /* bert: LayerNorm after the embeddings */
	struct layer *layers;      /* n_layer */
	float **owned;             /* vectors converted to F32, freed with the model */
	int n_owned;
	void *packed;              /* mapping of the packed matrices (pack_matrices) */
	size_t packed_bytes;
};

static void fmt_shape(char *buf, size_t n, const struct gguf_tensor *t)
{
	int o = snprintf(buf, n, "[%lld", (long long)t->ne[0]);
	for (int i = 1; i < t->n_dims && o > 0 && (size_t)o < n; i++)
		o += snprintf(buf + o, n - (size_t)o, ", %lld", (long long)t->ne[i]);
	if (o > 0 && (size_t)o < n)
		snprintf(buf + o, n - (size_t)o, "]");
}

/* Find tensor name with ne = {ne0, ne1} (ne1 = 0 for a vector). Missing and
 * required -> error; missing and optional -> NULL with no error. */
static const struct gguf_tensor *want(struct model *m, const char *name,
				      int64_t ne0, int64_t ne1, int optional,
				      char *err, size_t errsz)
{
	const struct gguf_tensor *t = gguf_find_tensor(m->g, name);
	if (!t) {
		if (!optional)
			eng_err(err, errsz, "%s: missing tensor %s", gguf_name(m->g), name);
		return NULL;
	}
	int dims = ne1 ? 2 : 1;
	int ok = t->ne[0] == ne0 && (dims == 1 ? t->ne[1] == 1 : t->ne[1] == ne1) &&
		 t->ne[2] == 1 && t->ne[3] == 1;
	if (!ok) {
		char got[96];
		fmt_shape(got, sizeof got, t);
		if (dims == 1)
			eng_err(err, errsz, "%s: tensor %s has shape %s, expected [%lld]",
				gguf_name(m->g), name, got, (long long)ne0);
		else
			eng_err(err, errsz, "%s: tensor %s has shape %s, expected [%lld, %lld]",
				gguf_name(m->g), name, got, (long long)ne0, (long long)ne1);
		return NULL;
	}
	return t;
}

static int want_mat(struct model *m, struct kt_mat *out, const char *name,
		    int64_t cols, int64_t rows, char *err, size_t errsz)
{
	const struct gguf_tensor *t = want(m, name, cols, rows, 0, err, errsz);
	if (!t)
		return -EINVAL;
	if (t->type == KT_Q8_1 || t->type == KT_Q8_K) {
		eng_err(err, errsz, "%s: tensor %s has type %s, which is for activations, not weights",
			gguf_name(m->g), name, kt_type_name(t->type));
		return -EINVAL;
	}
	out->type = (enum kt_type)t->type;
	out->rows = rows;
	out->cols = cols;
	out->data = t->data;
	return 0;
}

/* Packing on every core: pieces of about PACK_PIECE bytes (row groups of
 * one matrix), taken in turn by the threads. */
#define PACK_PIECE (4u << 20)

struct pack_piece {
	const struct kt_mat *w;
	void *dst;
	int64_t g0, g1;
};

struct pack_work {
	struct pack_piece *p;
	int n;
	atomic_int next;
};

static void *pack_worker(void *arg)
{
	struct pack_work *pw = arg;
	for (int i; (i = atomic_fetch_add(&pw->next, 1)) < pw->n;)
		kt_mat_pack_groups(pw->p[i].w, pw->p[i].dst, pw->p[i].g0, pw->p[i].g1);
	return NULL;
}

/* The packable matrices of all[0..n) into arena, one after another (each
 * 64-byte aligned), on as many threads as there are cores. Their packed
 * pointers are set as the pieces are listed: nothing reads them before the
 * model is loaded. */
static void pack_all(struct kt_mat **all, int n, char *arena)
{
	int np = 0;
	for (int i = 0; i < n; i++)
		np += (int)((kt_mat_packed_bytes(all[i]) + PACK_PIECE - 1) / PACK_PIECE);
	struct pack_work pw = {.p = calloc((size_t)np + 1, sizeof *pw.p)};
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		const size_t b = kt_mat_packed_bytes(all[i]);
		if (!b)
			continue;
		char *dst = arena + off;
		const int64_t ng = all[i]->rows / KT_PACK_ROWS;
		const int64_t per = (int64_t)(PACK_PIECE / (b / (size_t)ng)) + 1;
		off += (b + 63) / 64 * 64;
		all[i]->packed = dst;
		if (!pw.p) /* no memory for the list: one thread, matrix by matrix */
			kt_mat_pack_groups(all[i], dst, 0, ng);
		for (int64_t g = 0; pw.p && g < ng; g += per)
			pw.p[pw.n++] = (struct pack_piece){all[i], dst, g, g + per < ng ? g + per : ng};
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int nt = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (int)ncpu, started = 0;
	pthread_t tid[64];
	for (int t = 1; t < nt && t < pw.n; t++)
		if (!pthread_create(&tid[started], NULL, pack_worker, &pw))
			started++;
	pack_worker(&pw);
	for (int t = 0; t < started; t++)
		pthread_join(tid[t], NULL);
	free(pw.p);
}

/* Packed copies (kt_mat_pack) of the decoder's matrices, which the
 * matrix-vector products then read, in one anonymous mapping the model
 * owns. The mapping asks for transparent huge pages: decoding streams the
 * whole copy once per token, and with 4 KiB pages every page is a TLB
 * miss. SEEKFS_PACK=0 in the environment keeps the row-major kernels. A
 * matrix that cannot be packed (its type, or this CPU), or all of them
 * when the memory cannot be had, is simply read by rows. */
static void pack_matrices(struct model *m)
{
	const char *env = getenv("SEEKFS_PACK");
	if (m->hp.arch == ARCH_BERT || (env && !strcmp(env, "0")))
		return;
	struct kt_mat **all = calloc((size_t)m->hp.n_layer * 7 + 1, sizeof *all);
	if (!all)
		return;
	int n = 0;
	all[n++] = &m->output;
	for (int i = 0; i < m->hp.n_layer; i++) {
		struct layer *l = &m->layers[i];
		struct kt_mat *ml[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate, &l->w_up, &l->w_down};
		for (size_t j = 0; j < sizeof ml / sizeof ml[0]; j++)
			all[n++] = ml[j];
	}
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += (kt_mat_packed_bytes(all[i]) + 63) / 64 * 64;
	void *arena = total ? mmap(NULL, total, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
	if (arena != MAP_FAILED) {
#ifdef MADV_HUGEPAGE
		madvise(arena, total, MADV_HUGEPAGE);
#endif
		pack_all(all, n, arena);
		mprotect(arena, total, PROT_READ); /* read-only from here on */
		m->packed = arena;
		m->packed_bytes = total;
	}
	free(all);
}

/* Adds p to what the model frees; -ENOMEM (p not added) when it cannot. */
static int own(struct model *m, float *p)
{
	float **o = realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *o);
	if (!o)
		return -ENOMEM;
	m->owned = o;
	m->owned[m->n_owned++] = p;
	return 0;
}

/* A vector (norm weight, bias) as F32. Stored F32 vectors are used in place
 * (GGUF aligns tensor data to at least 32 bytes); others are converted into
 * memory the model owns. */
static int want_vec(struct model *m, const float **out, const char *name,
		    int64_t n, int optional, char *err, size_t errsz)
{
	*out = NULL;
	const struct gguf_tensor *t = want(m, name, n, 0, optional, err, errsz);
	if (!t)
		return optional && !gguf_find_tensor(m->g, name) ? 0 : -EINVAL;
	if (t->type == KT_F32) {
		*out = t->data;
		return 0;
	}
	float *v = malloc((size_t)n * sizeof(float));
	if (!v || own(m, v)) {
		free(v);
		eng_err(err, errsz, "%s: out of memory", gguf_name(m->g));
		return -ENOMEM;
	}
	kt_dequant_row((enum kt_type)t->type, t->data, v, n);
	*out = v;
	return 0;
}

/* want_mat / want_vec for the tensor blk.<layer>.<suffix> of a transformer block. */
static int blk_mat(struct model *m, int layer, const char *suffix, struct kt_mat *out,
		   int64_t cols, int64_t rows, char *err, size_t errsz)
{
	char name[96];
	snprintf(name, sizeof name, "blk.%d.%s", layer, suffix);
	return want_mat(m, out, name, cols, rows, err, errsz);
}

static int blk_vec(struct model *m, int layer, const char *suffix, const float **out,
		   int64_t n, int optional, char *err, size_t errsz)
{
	char name[96];
	snprintf(name, sizeof name, "blk.%d.%s", layer, suffix);
	return want_vec(m, out, name, n, optional, err, errsz);
}

/* Row r of w (an embedding table) as n = w->cols floats. */
static void mat_row(const struct kt_mat *w, int64_t r, float *out)
{
	kt_dequant_row(w->type, (const char *)w->data + (size_t)r * kt_row_bytes(w->type, w->cols),
		       out, w->cols);
}

static int get_hparam(struct model *m, const char *suffix, int64_t def,
		      int32_t *out, char *err, size_t errsz)
{
	char key[128];
	snprintf(key, sizeof key, "%s.%s", m->hp.arch_name, suffix);
	int64_t v;
	int rc = gguf_get_i64(m->g, key, &v);
	if (rc == -ENOENT && def >= 0)
		v = def;
	else if (rc == -ENOENT) {
		eng_err(err, errsz, "%s: missing key %s", gguf_name(m->g), key);
		return -EINVAL;
	} else if (rc) {
		eng_err(err, errsz, "%s: key %s is not an integer", gguf_name(m->g), key);
		return -EINVAL;
	}
	if (v <= 0 || v > (1 << 24)) {
		eng_err(err, errsz, "%s: key %s = %lld is out of range (1..16777216)",
			gguf_name(m->g), key, (long long)v);
		return -EINVAL;
	}
	*out = (int32_t)v;
	return 0;
}

/* gemma3's sliding window, its RoPE bases and scaling, and its query
 * scale, as llama.cpp sets them (llama-model.cpp, LLM_ARCH_GEMMA3). */
static int gemma3_hparams(struct model *m, char *err, size_t errsz)
{
	struct model_hparams *hp = &m->hp;
	int rc = get_hparam(m, "attention.sliding_window", -1, &hp->n_swa, err, errsz);
	if (rc)
		return rc;
	hp->swa_pattern = 6; /* layers 5, 11, 17, ... see everything */
	hp->rope_base_swa = 10000.0f;
	size_t len;
	const char *type = gguf_get_str(m->g, "gemma3.rope.scaling.type", &len);
	if (type && !(len == 4 && !memcmp(type, "none", 4))) {
		if (!(len == 6 && !memcmp(type, "linear", 6))) {
			eng_err(err, errsz, "%s: rope scaling '%.*s' is not supported for gemma3 (linear is)",
				gguf_name(m->g), (int)len, type);
			return -ENOTSUP;
		}
		hp->rope_scale = (float)gguf_get_f64_or(m->g, "gemma3.rope.scaling.factor", 1.0);
		if (!(hp->rope_scale >= 1.0f && hp->rope_scale <= 1024.0f)) {
			eng_err(err, errsz, "%s: gemma3.rope.scaling.factor %g is out of range (1..1024)",
				gguf_name(m->g), hp->rope_scale);
			return -EINVAL;
		}
	}
	/* 27B (62 layers) scales queries by n_embd / n_head, the others by
	 * the head size */
	if (hp->n_layer == 62)
		hp->attn_scale = 1.0f / sqrtf((float)(hp->n_embd / hp->n_head));
	return 0;
}

static int load_hparams(struct model *m, char *err, size_t errsz)
{
	struct model_hparams *hp = &m->hp;
	size_t len;
	const char *arch = gguf_get_str(m->g, "general.architecture", &len);
	if (!arch) {
		eng_err(err, errsz, "%s: missing key general.architecture (not a model file?)",
			gguf_name(m->g));
		return -EINVAL;
	}
	if (len >= sizeof hp->arch_name)
		len = sizeof hp->arch_name - 1;
	memcpy(hp->arch_name, arch, len);
	hp->arch_name[len] = 0;
	if (!strcmp(hp->arch_name, "llama")) {
		hp->arch = ARCH_LLAMA;
		hp->rope_mode = KT_ROPE_NORM;
	} else if (!strcmp(hp->arch_name, "qwen2")) {
		hp->arch = ARCH_QWEN2;
		hp->rope_mode = KT_ROPE_NEOX;
	} else if (!strcmp(hp->arch_name, "gemma3")) {
		hp->arch = ARCH_GEMMA3;
		hp->rope_mode = KT_ROPE_NEOX;
	} else if (!strcmp(hp->arch_name, "bert")) {
		hp->arch = ARCH_BERT;
	} else {
		eng_err(err, errsz,
			"%s: architecture '%s' is not supported (supported: llama, qwen2, gemma3, bert)",
			gguf_name(m->g), hp->arch_name);
		return -ENOTSUP;
	}
	int rc;
	if ((rc = get_hparam(m, "embedding_length", -1, &hp->n_embd, err, errsz)) ||
	    (rc = get_hparam(m, "block_count", -1, &hp->n_layer, err, errsz)) ||
	    (rc = get_hparam(m, "feed_forward_length", -1, &hp->n_ff, err, errsz)) ||
	    (rc = get_hparam(m, "attention.head_count", -1, &hp->n_head, err, errsz)) ||
	    (rc = get_hparam(m, "attention.head_count_kv", hp->n_head, &hp->n_head_kv, err, errsz)) ||
	    (rc = get_hparam(m, "context_length", 2048, &hp->n_ctx_train, err, errsz)))
		return rc;
	if (hp->n_head_kv > hp->n_head || hp->n_head % hp->n_head_kv) {
		eng_err(err, errsz, "%s: %d attention heads cannot be grouped over %d KV heads",
			gguf_name(m->g), hp->n_head, hp->n_head_kv);
		return -EINVAL;
	}
	if ((rc = get_hparam(m, "attention.key_length", hp->n_embd / hp->n_head,
			     &hp->head_dim, err, errsz)) ||
	    (rc = get_hparam(m, "rope.dimension_count", hp->head_dim, &hp->n_rot, err, errsz)))
		return rc;
	if (hp->head_dim > 512) {
		eng_err(err, errsz, "%s: head size %d is larger than the 512 seekfs supports",
			gguf_name(m->g), hp->head_dim);
		return -EINVAL;
	}
	if (hp->n_rot > hp->head_dim || hp->n_rot % 2) {
		eng_err(err, errsz, "%s: rope dimension %d does not fit head size %d",
			gguf_name(m->g), hp->n_rot, hp->head_dim);
		return -EINVAL;
	}
	char key[128];
	snprintf(key, sizeof key, "%s.rope.freq_base", hp->arch_name);
	hp->rope_base = (float)gguf_get_f64_or(m->g, key, 10000.0);
	snprintf(key, sizeof key, hp->arch == ARCH_BERT ? "%s.attention.layer_norm_epsilon" :
			"%s.attention.layer_norm_rms_epsilon", hp->arch_name);
	hp->norm_eps = (float)gguf_get_f64_or(m->g, key, hp->arch == ARCH_BERT ? 1e-12 : 1e-5);
	snprintf(key, sizeof key, "%s.pooling_type", hp->arch_name);
	int64_t pool = gguf_get_i64_or(m->g, key, hp->arch == ARCH_BERT ? POOL_MEAN : POOL_NONE);
	if (pool != POOL_NONE && pool != POOL_MEAN && pool != POOL_CLS) {
		eng_err(err, errsz, "%s: pooling type %lld is not supported (1 mean, 2 cls)",
			gguf_name(m->g), (long long)pool);
		return -EINVAL;
	}
	hp->pooling = (enum model_pooling)pool;
	if (hp->arch == ARCH_BERT && hp->pooling == POOL_NONE) {
		eng_err(err, errsz, "%s: pooling type 0 (one vector per token) is not supported for embeddings",
			gguf_name(m->g));
		return -EINVAL;
	}
	hp->normalize = (int)gguf_get_i64_or(m->g, "seekfs.embed.normalize", 1);
	hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
	hp->rope_scale = 1.0f;
	if (hp->arch == ARCH_GEMMA3 && (rc = gemma3_hparams(m, err, errsz)))
		return rc;
	if (!(hp->rope_base > 0) || !(hp->norm_eps > 0)) {
		eng_err(err, errsz, "%s: rope base %g and norm epsilon %g must be positive",
			gguf_name(m->g), hp->rope_base, hp->norm_eps);
		return -EINVAL;
	}
	return 0;
}

static int load_bert_tensors(struct model *m, char *err, size_t errsz);

static int load_tensors(struct model *m, char *err, size_t errsz)
{
	if (m->hp.arch == ARCH_BERT)
		return load_bert_tensors(m, err, errsz);
	struct model_hparams *hp = &m->hp;
	int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim;
	int64_t KV = (int64_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
	const struct gguf_tensor *te = gguf_find_tensor(m->g, "token_embd.weight");
	if (!te) {
		eng_err(err, errsz, "%s: missing tensor token_embd.weight", gguf_name(m->g));
		return -EINVAL;
	}
	hp->n_vocab = (int32_t)te->ne[1];
	int rc;
	if ((rc = want_mat(m, &m->tok_embd, "token_embd.weight", E, hp->n_vocab, err, errsz)) ||
	    (rc = want_vec(m, &m->out_norm, "output_norm.weight", E, 0, err, errsz)))
		return rc;
	if (gguf_find_tensor(m->g, "output.weight")) {
		if ((rc = want_mat(m, &m->output, "output.weight", E, hp->n_vocab, err, errsz)))
			return rc;
	} else {
		m->output = m->tok_embd; /* tied embeddings */
	}
	if ((rc = want_vec(m, &m->rope_freqs, "rope_freqs.weight", hp->n_rot / 2, 1, err, errsz)))
		return rc;
	/* linear RoPE scaling (gemma3's dense layers): theta / factor */
	const float *scaled = m->rope_freqs;
	if (hp->rope_scale != 1.0f) {
		float *f = malloc((size_t)(hp->n_rot / 2) * sizeof *f);
		if (!f || own(m, f)) {
			free(f);
			return -ENOMEM;
		}
		for (int i = 0; i < hp->n_rot / 2; i++)
			f[i] = hp->rope_scale;
		scaled = f;
	}
	m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
	if (!m->layers)
		return -ENOMEM;
	const int gemma = hp->arch == ARCH_GEMMA3;
	for (int i = 0; i < hp->n_layer; i++) {
		struct layer *l = &m->layers[i];
		l->swa = hp->n_swa > 0 && i % hp->swa_pattern < hp->swa_pattern - 1;
		l->rope_base = l->swa ? hp->rope_base_swa : hp->rope_base;
		l->rope_freqs = l->swa ? NULL : scaled;
		if (gemma &&
		    ((rc = blk_vec(m, i, "attn_q_norm.weight", &l->q_norm, hp->head_dim, 0, err, errsz)) ||
		     (rc = blk_vec(m, i, "attn_k_norm.weight", &l->k_norm, hp->head_dim, 0, err, errsz)) ||
		     (rc = blk_vec(m, i, "post_attention_norm.weight", &l->post_attn_norm, E, 0, err, errsz)) ||
		     (rc = blk_vec(m, i, "post_ffw_norm.weight", &l->post_ffn_norm, E, 0, err, errsz))))
			return rc;
		int bias_optional = hp->arch != ARCH_QWEN2;
		if ((rc = blk_vec(m, i, "attn_norm.weight", &l->attn_norm, E, 0, err, errsz)) ||
		    (rc = blk_mat(m, i, "attn_q.weight", &l->wq, E, Q, err, errsz)) ||
		    (rc = blk_mat(m, i, "attn_k.weight", &l->wk, E, KV, err, errsz)) ||
		    (rc = blk_mat(m, i, "attn_v.weight", &l->wv, E, KV, err, errsz)) ||
		    (rc = blk_mat(m, i, "attn_output.weight", &l->wo, Q, E, err, errsz)) ||
		    (rc = blk_vec(m, i, "ffn_norm.weight", &l->ffn_norm, E, 0, err, errsz)) ||
		    (rc = blk_mat(m, i, "ffn_gate.weight", &l->w_gate, E, F, err, errsz)) ||
		    (rc = blk_mat(m, i, "ffn_up.weight", &l->w_up, E, F, err, errsz)) ||
		    (rc = blk_mat(m, i, "ffn_down.weight", &l->w_down, F, E, err, errsz)) ||
		    (rc = blk_vec(m, i, "attn_q.bias", &l->bq, Q, bias_optional, err, errsz)) ||
		    (rc = blk_vec(m, i, "attn_k.bias", &l->bk, KV, bias_optional, err, errsz)) ||
		    (rc = blk_vec(m, i, "attn_v.bias", &l->bv, KV, bias_optional, err, errsz)))
			return rc;
	}
	return 0;
}

/* bert (llama.cpp's tensor names): embeddings of token, position and token
 * type summed and LayerNorm-ed; per layer post-norm attention and GELU FFN,
 * every product with a bias. */
static int load_bert_tensors(struct model *m, char *err, size_t errsz)
{
	struct model_hparams *hp = &m->hp;
	int64_t E = hp->n_embd, F = hp->n_ff;
	const struct gguf_tensor *te = gguf_find_tensor(m->g, "token_embd.weight");
	const struct gguf_tensor *tt = gguf_find_tensor(m->g, "token_types.weight");
	if (!te || !tt) {
		eng_err(err, errsz, "%s: missing tensor %s", gguf_name(m->g),
			te ? "token_types.weight" : "token_embd.weight");
		return -EINVAL;
	}
	hp->n_vocab = (int32_t)te->ne[1];
	hp->n_head_kv = hp->n_head;
	int rc;
	if ((rc = want_mat(m, &m->tok_embd, "token_embd.weight", E, hp->n_vocab, err, errsz)) ||
	    (rc = want_mat(m, &m->type_embd, "token_types.weight", E, tt->ne[1], err, errsz)) ||
	    (rc = want_mat(m, &m->pos_embd, "position_embd.weight", E, hp->n_ctx_train, err, errsz)) ||
	    (rc = want_vec(m, &m->embd_norm, "token_embd_norm.weight", E, 0, err, errsz)) ||
	    (rc = want_vec(m, &m->embd_norm_b, "token_embd_norm.bias", E, 0, err, errsz)))
		return rc;
	m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
	if (!m->layers)
		return -ENOMEM;
	for (int i = 0; i < hp->n_layer; i++) {
		struct layer *l = &m->layers[i];
		if ((rc = blk_mat(m, i, "attn_q.weight", &l->wq, E, E, err, errsz)) ||
		    (rc = blk_vec(m, i, "attn_q.bias", &l->bq, E, 0, err, errsz)) ||
		    (rc = blk_mat(m, i, "attn_k.weight", &l->wk, E, E, err, errsz)) ||
		    (rc = blk_vec(m, i, "attn_k.bias", &l->bk, E, 0, err, errsz)) ||
		    (rc = blk_mat(m, i, "attn_v.weight", &l->wv, E, E, err, errsz)) ||
		    (rc = blk_vec(m, i, "attn_v.bias", &l->bv, E, 0, err, errsz)) ||
		    (rc = blk_mat(m, i, "attn_output.weight", &l->wo, E, E, err, errsz)) ||
		    (rc = blk_vec(m, i, "attn_output.bias", &l->bo, E, 0, err, errsz)) ||
		    (rc = blk_vec(m, i, "attn_output_norm.weight", &l->attn_out_norm, E, 0, err, errsz)) ||
		    (rc = blk_vec(m, i, "attn_output_norm.bias", &l->attn_out_norm_b, E, 0, err, errsz)) ||
		    (rc = blk_mat(m, i, "ffn_up.weight", &l->w_up, E, F, err, errsz)) ||
		    (rc = blk_vec(m, i, "ffn_up.bias", &l->b_up, F, 0, err, errsz)) ||
		    (rc = blk_mat(m, i, "ffn_down.weight", &l->w_down, F, E, err, errsz)) ||
		    (rc = blk_vec(m, i, "ffn_down.bias", &l->b_down, E, 0, err, errsz)) ||
		    (rc = blk_vec(m, i, "layer_output_norm.weight", &l->layer_out_norm, E, 0, err, errsz)) ||
		    (rc = blk_vec(m, i, "layer_output_norm.bias", &l->layer_out_norm_b, E, 0, err, errsz)))
			return rc;
	}
	return 0;
}

int model_load(const char *path, struct model **out, char *err, size_t errsz)
{
	*out = NULL;
	struct model *m = calloc(1, sizeof *m);
	if (!m)
		return -ENOMEM;
	int rc = gguf_open(path, &m->g, err, errsz);
	if (rc) {
		free(m);
		return rc;
	}
	if ((rc = load_hparams(m, err, errsz)) || (rc = load_tensors(m, err, errsz)) ||
	    (rc = tok_load(m->g, &m->tok, err, errsz))) {
		model_free(m);
		return rc;
	}
	if (tok_n_vocab(m->tok) > m->hp.n_vocab) {
		eng_err(err, errsz, "%s: tokenizer has %d tokens but token_embd.weight only %d rows",
			path, tok_n_vocab(m->tok), m->hp.n_vocab);
		model_free(m);
		return -EINVAL;
	}
	pack_matrices(m);
	size_t tl;
	const char *tmpl = gguf_get_str(m->g, "tokenizer.chat_template", &tl);
	if (tmpl) {
		if (!(m->chat_template = strndup(tmpl, tl))) {
			model_free(m);
			return -ENOMEM;
		}
		m->chat = chat_detect(m->chat_template);
	} else if (m->hp.arch == ARCH_GEMMA3) {
		m->chat = CHAT_GEMMA; /* Gemma 3 files converted without their template */
	}
	size_t nl;
	const char *name = gguf_get_str(m->g, "general.name", &nl);
	if (name && nl) {
		if (nl >= sizeof m->name)
			nl = sizeof m->name - 1;
		memcpy(m->name, name, nl);
		m->name[nl] = 0;
	} else {
		const char *base = strrchr(path, '/');
		snprintf(m->name, sizeof m->name, "%s", base ? base + 1 : path);
	}
	*out = m;
	return 0;
}

void model_free(struct model *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->n_owned; i++)
		free(m->owned[i]);
	free(m->owned);
	if (m->packed)
		munmap(m->packed, m->packed_bytes);
	free(m->layers);
	free(m->chat_template);
	tok_free(m->tok);
	gguf_close(m->g);
	free(m);
}

const struct model_hparams *model_hparams(const struct model *m)
{
	return &m->hp;
}

const struct tok *model_tok(const struct model *m)
{
	return m->tok;
}

enum chat_tmpl model_chat(const struct model *m)
{
	return m->chat;
}

const char *model_chat_template(const struct model *m)
{
	return m->chat_template;
}

const char *model_name(const struct model *m)
{
	return m->name;
}

/* Bytes a product with w reads: its packed copy and the rows after it,
 * or its rows. */
static size_t mat_bytes(const struct kt_mat *w)
{
	if (w->packed)
		return kt_mat_packed_bytes(w) +
		       (size_t)(w->rows % KT_PACK_ROWS) * kt_row_bytes(w->type, w->cols);
	return (size_t)w->rows * kt_row_bytes(w->type, w->cols);
}

size_t model_packed_bytes(const struct model *m)
{
	return m->packed_bytes;
}

size_t model_weight_bytes(const struct model *m)
{
	size_t b = mat_bytes(&m->output) + kt_row_bytes(m->tok_embd.type, m->tok_embd.cols);
	for (int i = 0; i < m->hp.n_layer; i++) {
		const struct layer *l = &m->layers[i];
		b += mat_bytes(&l->wq) + mat_bytes(&l->wk) + mat_bytes(&l->wv) +
		     mat_bytes(&l->wo) + mat_bytes(&l->w_gate) + mat_bytes(&l->w_up) +
		     mat_bytes(&l->w_down);
	}
	return b;
}

static int64_t mat_elems(const struct kt_mat *w)
{
	return w->rows * w->cols;
}

int64_t model_output_params(const struct model *m)
{
	return mat_elems(&m->output);
}

int64_t model_matmul_params(const struct model *m)
{
	int64_t n = mat_elems(&m->output);
	for (int i = 0; i < m->hp.n_layer; i++) {
		const struct layer *l = &m->layers[i];
		n += mat_elems(&l->wq) + mat_elems(&l->wk) + mat_elems(&l->wv) +
		     mat_elems(&l->wo) + mat_elems(&l->w_gate) + mat_elems(&l->w_up) +
		     mat_elems(&l->w_down);
	}
	return n;
}

/* ---- a sequence: KV cache and run state ---------------------------------- */

/* Tokens processed per batch of a prefill: activations for this many rows
 * are allocated once per session. */
#define SESSION_BATCH 64

struct session {
	struct model *m;
	struct kt_pool *pool;
	int n_ctx, pos;
	enum kt_type kv_type; /* KT_F16 or KT_F32 */
	size_t kv_row;        /* bytes of one position's K (or V): n_head_kv*head_dim */
	char *k_cache;        /* (n_layer, n_ctx, n_head_kv*head_dim) of kv_type */
	char *v_cache;        /* (n_layer, n_ctx, n_head_kv*head_dim) of kv_type */
	float *x;        /* (batch, n_embd) residual stream */
	float *xb;       /* (batch, n_embd) normalised input of a block */
	float *q;        /* (batch, n_head*head_dim) */
	float *k, *v;    /* (batch, n_head_kv*head_dim) */
	float *att_out;  /* (batch, n_head*head_dim) */
	float *gate, *up; /* (batch, n_ff) */
	int *seq_idx;    /* bert: (2, batch): first row of each sequence, then each
			  * token's position in its sequence */
	float *scores;   /* (n_threads, attn_scratch) attention scratch */
	size_t attn_scratch; /* floats per thread: kt_attn_group_scratch of a
			      * whole group over n_ctx positions (bert:
			      * kt_attn_seq_scratch of the longest sequence) */
	void *work;      /* kt_matmul scratch, sized for the largest matrix */
};

static void *xcalloc(size_t n, size_t size, int *fail)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		*fail = 1;
	return p;
}

int session_new(struct model *m, int n_ctx, enum kt_type kv_type,
		struct kt_pool *pool, struct session **out, char *err, size_t errsz)
{
	*out = NULL;
	const struct model_hparams *hp = &m->hp;
	if (kv_type != KT_F16 && kv_type != KT_F32) {
		eng_err(err, errsz, "KV cache type %s is not supported (f16, f32)",
			kt_type_name(kv_type) ? kt_type_name(kv_type) : "?");
		return -EINVAL;
	}
	if (n_ctx <= 0)
		n_ctx = hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
	struct session *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->m = m;
	s->pool = pool;
	s->n_ctx = n_ctx;
	s->kv_type = kv_type;
	/* bert runs whole sequences in one batch and keeps no cache */
	int bert = hp->arch == ARCH_BERT;
	size_t B = bert ? (size_t)n_ctx : SESSION_BATCH, E = (size_t)hp->n_embd;
	size_t Q = (size_t)hp->n_head * hp->head_dim, KV = (size_t)hp->n_head_kv * hp->head_dim;
	size_t cache = bert ? 0 : (size_t)hp->n_layer * (size_t)n_ctx * KV;
	int nth = pool ? kt_pool_threads(pool) : 1, fail = 0;
	s->kv_row = kt_row_bytes(kv_type, (int64_t)KV);
	s->k_cache = xcalloc(cache, kt_row_bytes(kv_type, 1), &fail);
	s->v_cache = xcalloc(cache, kt_row_bytes(kv_type, 1), &fail);
	s->x = xcalloc(B * E, sizeof(float), &fail);
	s->xb = xcalloc(B * E, sizeof(float), &fail);
	s->q = xcalloc(B * Q, sizeof(float), &fail);
	s->k = xcalloc(B * KV, sizeof(float), &fail);
	s->v = xcalloc(B * KV, sizeof(float), &fail);
	s->att_out = xcalloc(B * Q, sizeof(float), &fail);
	s->gate = xcalloc(B * (size_t)hp->n_ff, sizeof(float), &fail);
	s->up = xcalloc(B * (size_t)hp->n_ff, sizeof(float), &fail);
	if (bert)
		s->seq_idx = xcalloc(2 * B, sizeof(int), &fail);
	s->attn_scratch = kt_attn_group_scratch(hp->n_head / hp->n_head_kv, n_ctx, hp->head_dim);
	if (bert)
		s->attn_scratch = kt_attn_seq_scratch(n_ctx < hp->n_ctx_train ? n_ctx : hp->n_ctx_train,
						      hp->head_dim);
	s->scores = xcalloc((size_t)nth * s->attn_scratch, sizeof(float), &fail);
	size_t wmax = kt_matmul_work_bytes(&m->output, (int)B);
	for (int i = 0; i < hp->n_layer; i++) {
		const struct layer *l = &m->layers[i];
		const struct kt_mm qkv[] = {{.w = &l->wq}, {.w = &l->wk}, {.w = &l->wv}};
		const struct kt_mm gate_up[] = {{.w = &l->w_gate}, {.w = &l->w_up}};
		size_t w[] = {kt_matmul_n_work_bytes(qkv, 3, (int)B),
			      kt_matmul_n_work_bytes(gate_up, 2, (int)B),
			      kt_matmul_work_bytes(&l->wo, (int)B),
			      kt_matmul_work_bytes(&l->w_down, (int)B)};
		for (size_t j = 0; j < sizeof w / sizeof w[0]; j++)
			if (w[j] > wmax)
				wmax = w[j];
	}
	s->work = xcalloc(wmax, 1, &fail);
	if (fail) {
		eng_err(err, errsz, "out of memory for a %d-token context (%.1f MiB of KV cache)",
			n_ctx, 2.0 * cache * kt_row_bytes(kv_type, 1) / 1048576.0);
		session_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	free(s->k_cache);
	free(s->v_cache);
	free(s->x);
	free(s->xb);
	free(s->q);
	free(s->k);
	free(s->v);
	free(s->att_out);
	free(s->gate);
	free(s->up);
	free(s->seq_idx);
	free(s->scores);
	free(s->work);
	free(s);
}

int session_pos(const struct session *s)
{
	return s->pos;
}

void session_reset(struct session *s)
{
	s->pos = 0;
}

/* ---- forward pass -------------------------------------------------------- */

/* Causal self-attention of nb new tokens over the cache of one layer.
 * Token t attends with its session's cache (ss[t], at that session's
 * position), or, ss NULL, with buf's own cache at position pos0 + t; its
 * queries are in buf->q. */
struct attn_job {
	struct session *buf;
	struct session *const *ss;
	int layer, pos0, nb;
};

/* The first position token t of the job attends to: 0, or the start of
 * its window in a sliding-window layer. */
static int attn_first(const struct attn_job *j, int t)
{
	const struct model_hparams *hp = &j->buf->m->hp;
	const int pos = j->ss ? j->ss[t]->pos : j->pos0 + t;
	return j->buf->m->layers[j->layer].swa && pos >= hp->n_swa ? pos - hp->n_swa + 1 : 0;
}

/* The positions token t of the job attends to, from attn_first on. */
static int attn_len(const struct attn_job *j, int t)
{
	return (j->ss ? j->ss[t]->pos : j->pos0 + t) + 1 - attn_first(j, t);
}

/* The (token, query head) pairs, in that order and each weighted by the
 * positions it attends to, are cut into nth ranges of equal weight, one per
 * thread; the heads of a range that share a KV head go to kt_attn_group
 * together, which reads their K and V rows once. A range holds whole
 * groups but at its ends, so the threads get equal work even when the KV
 * heads are fewer than the threads or not a multiple of them (decode with
 * 9 heads over 3 KV heads on 2 threads: heads 0-2 and 3-4, then 5 and 6-8),
 * while a long batch still goes by whole groups. */
static void attn_task(void *ctx, int ith, int nth)
{
	struct attn_job *j = ctx;
	struct session *b = j->buf;
	const struct model_hparams *hp = &b->m->hp;
	int hd = hp->head_dim, nh = hp->n_head, group = hp->n_head / hp->n_head_kv;
	float *scratch = b->scores + (size_t)ith * b->attn_scratch;
	const float scale = hp->attn_scale;
	long long total = 0;
	for (int t = 0; t < j->nb; t++)
		total += (long long)attn_len(j, t) * nh;
	const long long lo = total * ith / nth, hi = total * (ith + 1) / nth;
	long long c = 0; /* the weight of the tokens before t */
	for (int t = 0; t < j->nb && c < hi; t++) {
		const struct session *s = j->ss ? j->ss[t] : b;
		const int n = attn_len(j, t);
		const long long w = (long long)nh * n;
		if (c + w <= lo) {
			c += w;
			continue;
		}
		/* head h starts at c + h*n: it is this thread's when in [lo, hi) */
		const int h0 = lo > c ? (int)((lo - c + n - 1) / n) : 0;
		const int h1 = hi - c < w ? (int)((hi - c + n - 1) / n) : nh;
		c += w;
		size_t head_bytes = kt_row_bytes(s->kv_type, hd);
		const size_t first = (size_t)j->layer * s->n_ctx + (size_t)attn_first(j, t);
		const char *kc = s->k_cache + first * s->kv_row;
		const char *vc = s->v_cache + first * s->kv_row;
		for (int h = h0; h < h1;) {
			const int kvh = h / group;
			const int h2 = (kvh + 1) * group < h1 ? (kvh + 1) * group : h1;
			const size_t off = (size_t)kvh * head_bytes;
			const size_t qo = (size_t)t * nh * hd + (size_t)h * hd;
			kt_attn_group(s->kv_type, kc + off, vc + off, s->kv_row, b->q + qo, h2 - h, n,
				      hd, scale, scratch, b->att_out + qo);
			h = h2;
		}
	}
}

static void add_bias(float *x, const float *b, int nb, int n)
{
	if (!b)
		return;
	for (int t = 0; t < nb; t++)
		for (int i = 0; i < n; i++)
			x[(size_t)t * n + i] += b[i];
}

/* RMSNorm of rows rows of n floats each, x into out (out may be x). */
static void norm_rows(float *out, const float *x, const float *w, int rows, int n, float eps)
{
	for (int r = 0; r < rows; r++)
		kt_rmsnorm(out + (size_t)r * n, x + (size_t)r * n, w, n, eps);
}

/* x += xb for the nb tokens of the batch, xb first RMSNorm-ed with
 * post_norm when there is one (gemma3). */
static void add_residual(struct session *b, const float *post_norm, int nb)
{
	const struct model_hparams *hp = &b->m->hp;
	const size_t n = (size_t)nb * hp->n_embd;
	if (post_norm)
		norm_rows(b->xb, b->xb, post_norm, nb, hp->n_embd, hp->norm_eps);
	for (size_t i = 0; i < n; i++)
		b->x[i] += b->xb[i];
}

/* A block's input for the nb tokens in b->x: the attention norm, then q,
 * k and v with their biases (and, gemma3, each head RMSNorm-ed). */
static void block_qkv(struct session *b, const struct layer *l, int nb)
{
	const struct model_hparams *hp = &b->m->hp;
	int hd = hp->head_dim;
	norm_rows(b->xb, b->x, l->attn_norm, nb, hp->n_embd, hp->norm_eps);
	const struct kt_mm qkv[] = {{.w = &l->wq, .y = b->q}, {.w = &l->wk, .y = b->k},
				    {.w = &l->wv, .y = b->v}};
	kt_matmul_n(b->pool, qkv, 3, b->xb, nb, b->work);
	add_bias(b->q, l->bq, nb, hp->n_head * hd);
	add_bias(b->k, l->bk, nb, hp->n_head_kv * hd);
	add_bias(b->v, l->bv, nb, hp->n_head_kv * hd);
	if (l->q_norm)
		norm_rows(b->q, b->q, l->q_norm, nb * hp->n_head, hd, hp->norm_eps);
	if (l->k_norm)
		norm_rows(b->k, b->k, l->k_norm, nb * hp->n_head_kv, hd, hp->norm_eps);
}

/* A block's output: x += Wo * att_out (through xb as the product's
 * destination), then the gated feed-forward (SwiGLU; GeGLU for gemma3),
 * added to x too. */
static void block_out_ffn(struct session *b, const struct layer *l, int nb)
{
	const struct model_hparams *hp = &b->m->hp;
	kt_matmul(b->pool, &l->wo, b->att_out, nb, b->xb, b->work);
	add_residual(b, l->post_attn_norm, nb);
	norm_rows(b->xb, b->x, l->ffn_norm, nb, hp->n_embd, hp->norm_eps);
	const struct kt_mm gate_up[] = {{.w = &l->w_gate, .y = b->gate}, {.w = &l->w_up, .y = b->up}};
	kt_matmul_n(b->pool, gate_up, 2, b->xb, nb, b->work);
	if (hp->arch == ARCH_GEMMA3)
		kt_geglu(b->gate, b->up, nb * hp->n_ff);
	else
		kt_swiglu(b->gate, b->up, nb * hp->n_ff);
	kt_matmul(b->pool, &l->w_down, b->gate, nb, b->xb, b->work);
	add_residual(b, l->post_ffn_norm, nb);
}

/* The embeddings of n tokens into x (gemma3 scales them by sqrt(n_embd)). */
static void embed_tokens(const struct model *m, const int32_t *tokens, int n, float *x)
{
	const int E = m->hp.n_embd;
	for (int t = 0; t < n; t++) {
		float *row = x + (size_t)t * E;
		mat_row(&m->tok_embd, tokens[t], row);
		if (m->hp.arch == ARCH_GEMMA3) {
			const float sc = sqrtf((float)E);
			for (int i = 0; i < E; i++)
				row[i] *= sc;
		}
	}
}

/* The RoPE of one token's q and k at position pos, with layer l's base and
 * divisors. */
static void rope_qk(const struct model *m, const struct layer *l, float *q, float *k, int pos)
{
	const struct model_hparams *hp = &m->hp;
	kt_rope(q, hp->n_head, hp->head_dim, hp->n_rot, pos, l->rope_base, hp->rope_mode,
		l->rope_freqs);
	kt_rope(k, hp->n_head_kv, hp->head_dim, hp->n_rot, pos, l->rope_base, hp->rope_mode,
		l->rope_freqs);
}

/* Logits of the n rows of x from row first on. */
static void out_logits(struct session *b, int first, int n, float *logits)
{
	struct model *m = b->m;
	norm_rows(b->xb, b->x + (size_t)first * m->hp.n_embd, m->out_norm, n, m->hp.n_embd,
		  m->hp.norm_eps);
	kt_matmul(b->pool, &m->output, b->xb, n, logits, b->work);
}

/* One batch of nb <= SESSION_BATCH tokens at s->pos. Writes the logits of
 * all nb tokens (logits != NULL, all) or of the last one (logits != NULL). */
static void forward_batch(struct session *s, const int32_t *tokens, int nb,
			  int all, float *logits)
{
	struct model *m = s->m;
	const struct model_hparams *hp = &m->hp;
	int hd = hp->head_dim;
	int Q = hp->n_head * hd, KV = hp->n_head_kv * hd;
	embed_tokens(m, tokens, nb, s->x);
	for (int li = 0; li < hp->n_layer; li++) {
		const struct layer *l = &m->layers[li];
		block_qkv(s, l, nb);
		char *kc = s->k_cache + ((size_t)li * s->n_ctx + s->pos) * s->kv_row;
		char *vc = s->v_cache + ((size_t)li * s->n_ctx + s->pos) * s->kv_row;
		for (int t = 0; t < nb; t++)
			rope_qk(m, l, s->q + (size_t)t * Q, s->k + (size_t)t * KV, s->pos + t);
		kt_quantize_row(s->kv_type, s->k, kc, (int64_t)nb * KV);
		kt_quantize_row(s->kv_type, s->v, vc, (int64_t)nb * KV);
		struct attn_job job = {s, NULL, li, s->pos, nb};
		kt_pool_run(s->pool, attn_task, &job);
		block_out_ffn(s, l, nb);
	}
	s->pos += nb;
	if (logits) {
		int first = all ? 0 : nb - 1;
		out_logits(s, first, nb - first, logits);
	}
}

int session_forward(struct session *s, const int32_t *tokens, int n,
		    int all_logits, float *logits)
{
	const struct model_hparams *hp = &s->m->hp;
	if (n <= 0 || hp->arch == ARCH_BERT)
		return -EINVAL;
	if (s->pos + n > s->n_ctx)
		return -ENOSPC;
	for (int i = 0; i < n; i++)
		if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
			return -EINVAL;
	for (int done = 0; done < n;) {
		int nb = n - done < SESSION_BATCH ? n - done : SESSION_BATCH;
		int last = done + nb == n;
		float *out = NULL;
		if (logits && all_logits)
			out = logits + (size_t)done * hp->n_vocab;
		else if (logits && last)
			out = logits;
		forward_batch(s, tokens + done, nb, all_logits, out);
		done += nb;
	}
	return 0;
}

/* ---- decode steps of several sessions in one pass ------------------------- */

int session_decode_batch(struct session *const *ss, const int32_t *tokens, int n, float *logits)
{
	if (n <= 0 || n > SESSION_BATCH)
		return -EINVAL;
	struct session *b = ss[0];
	struct model *m = b->m;
	const struct model_hparams *hp = &m->hp;
	if (hp->arch == ARCH_BERT)
		return -EINVAL;
	for (int t = 0; t < n; t++) {
		/* attention runs in the first session's scratch, sized for its
		 * n_ctx positions */
		if (ss[t]->m != m || ss[t]->pool != b->pool || ss[t]->n_ctx > b->n_ctx)
			return -EINVAL;
		if (ss[t]->pos + 1 > ss[t]->n_ctx)
			return -ENOSPC;
		if (tokens[t] < 0 || tokens[t] >= hp->n_vocab)
			return -EINVAL;
		for (int u = 0; u < t; u++)
			if (ss[u] == ss[t])
				return -EINVAL; /* one token per session */
	}
	/* the batch's activations live in the first session's buffers (sized
	 * for SESSION_BATCH tokens); each token's K/V go to its own cache */
	int hd = hp->head_dim;
	int Q = hp->n_head * hd, KV = hp->n_head_kv * hd;
	embed_tokens(m, tokens, n, b->x);
	for (int li = 0; li < hp->n_layer; li++) {
		const struct layer *l = &m->layers[li];
		block_qkv(b, l, n);
		for (int t = 0; t < n; t++) {
			struct session *s = ss[t];
			rope_qk(m, l, b->q + (size_t)t * Q, b->k + (size_t)t * KV, s->pos);
			char *kc = s->k_cache + ((size_t)li * s->n_ctx + s->pos) * s->kv_row;
			char *vc = s->v_cache + ((size_t)li * s->n_ctx + s->pos) * s->kv_row;
			kt_quantize_row(s->kv_type, b->k + (size_t)t * KV, kc, KV);
			kt_quantize_row(s->kv_type, b->v + (size_t)t * KV, vc, KV);
		}
		struct attn_job job = {b, ss, li, 0, n};
		kt_pool_run(b->pool, attn_task, &job);
		block_out_ffn(b, l, n);
	}
	for (int t = 0; t < n; t++)
		ss[t]->pos++;
	if (logits)
		out_logits(b, 0, n, logits);
	return 0;
}

int session_batch_max(void)
{
	return SESSION_BATCH;
}

int model_embed_max_tokens(const struct model *m)
{
	int64_t v = gguf_get_i64_or(m->g, "seekfs.embed.max_tokens", m->hp.n_ctx_train);
	return v >= 3 && v <= m->hp.n_ctx_train ? (int)v : m->hp.n_ctx_train;
}

/* ---- bert: embeddings ---------------------------------------------------- */

/* Everything but the matrix products runs on the pool too: per token (the
 * embeddings, the residual adds and LayerNorms) in even slices, per
 * (sequence, head) for attention from a shared counter, as sequences
 * differ in length. */

/* The first of tokens [0, n) that thread ith of nth takes. */
static int slice(int n, int ith, int nth)
{
	return (int)((int64_t)n * ith / nth);
}

struct bert_embd_job {
	struct session *s;
	const int32_t *tokens;
	int n;
};

/* x = LayerNorm(token + position + type embedding) of each token */
static void bert_embd_task(void *ctx, int ith, int nth)
{
	struct bert_embd_job *j = ctx;
	struct session *s = j->s;
	const struct model *m = s->m;
	const size_t E = (size_t)m->hp.n_embd;
	const int *pos = s->seq_idx + s->n_ctx;
	for (int t = slice(j->n, ith, nth); t < slice(j->n, ith + 1, nth); t++) {
		float *x = s->x + (size_t)t * E, *row = s->xb + (size_t)t * E;
		mat_row(&m->tok_embd, j->tokens[t], x);
		mat_row(&m->pos_embd, pos[t], row);
		for (size_t e = 0; e < E; e++)
			x[e] += row[e];
		mat_row(&m->type_embd, 0, row);
		for (size_t e = 0; e < E; e++)
			x[e] += row[e];
		kt_layernorm(x, x, m->embd_norm, m->embd_norm_b, (int)E, m->hp.norm_eps);
	}
}

struct bert_norm_job {
	struct session *s;
	const float *w, *b; /* the LayerNorm's scale and shift */
	int n;
};

/* x = LayerNorm(x + xb) of each token: a block's residual and post-norm */
static void bert_norm_task(void *ctx, int ith, int nth)
{
	struct bert_norm_job *j = ctx;
	struct session *s = j->s;
	const size_t E = (size_t)s->m->hp.n_embd;
	for (int t = slice(j->n, ith, nth); t < slice(j->n, ith + 1, nth); t++) {
		float *x = s->x + (size_t)t * E;
		const float *y = s->xb + (size_t)t * E;
		for (size_t e = 0; e < E; e++)
			x[e] += y[e];
		kt_layernorm(x, x, j->w, j->b, (int)E, s->m->hp.norm_eps);
	}
}

/* Attention of each sequence over itself (no mask, no cache), one (sequence,
 * head) at a time. */
struct bert_attn_job {
	struct session *s;
	const int *lens;
	int n_seq;
	atomic_int next;
};

static void bert_attn_task(void *ctx, int ith, int nth)
{
	struct bert_attn_job *j = ctx;
	struct session *s = j->s;
	const struct model_hparams *hp = &s->m->hp;
	const int hd = hp->head_dim, nh = hp->n_head;
	const size_t E = (size_t)hp->n_embd;
	float *scratch = s->scores + (size_t)ith * s->attn_scratch;
	const float scale = 1.0f / sqrtf((float)hd);
	(void)nth;
	for (;;) {
		const int w = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
		if (w >= j->n_seq * nh)
			break;
		const int i = w / nh, h = w % nh;
		const size_t first = (size_t)s->seq_idx[i] * E + (size_t)h * hd;
		kt_attn_seq(s->q + first, s->k + first, s->v + first, E, j->lens[i], hd, scale,
			    scratch, s->att_out + first);
	}
}

int session_embed(struct session *s, const int32_t *tokens, const int *lens,
		  int n_seq, float *out)
{
	struct model *m = s->m;
	const struct model_hparams *hp = &m->hp;
	if (hp->arch != ARCH_BERT || n_seq <= 0)
		return -EINVAL;
	int n = 0;
	for (int i = 0; i < n_seq; i++) {
		if (lens[i] <= 0 || lens[i] > hp->n_ctx_train)
			return -EINVAL;
		n += lens[i];
		if (n > s->n_ctx)
			return -ENOSPC;
	}
	for (int i = 0; i < n; i++)
		if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
			return -EINVAL;
	const size_t E = (size_t)hp->n_embd;
	int *seq_first = s->seq_idx, *pos = s->seq_idx + s->n_ctx;
	for (int i = 0, t = 0; i < n_seq; i++) {
		seq_first[i] = t;
		for (int p = 0; p < lens[i]; p++)
			pos[t++] = p;
	}
	struct bert_embd_job ej = {s, tokens, n};
	kt_pool_run(s->pool, bert_embd_task, &ej);
	for (int li = 0; li < hp->n_layer; li++) {
		const struct layer *l = &m->layers[li];
		kt_matmul_ex(s->pool, &l->wq, s->x, n, s->q, s->work, l->bq, KT_ACT_NONE);
		kt_matmul_ex(s->pool, &l->wk, s->x, n, s->k, s->work, l->bk, KT_ACT_NONE);
		kt_matmul_ex(s->pool, &l->wv, s->x, n, s->v, s->work, l->bv, KT_ACT_NONE);
		struct bert_attn_job aj = {.s = s, .lens = lens, .n_seq = n_seq};
		atomic_init(&aj.next, 0);
		kt_pool_run(s->pool, bert_attn_task, &aj);
		kt_matmul_ex(s->pool, &l->wo, s->att_out, n, s->xb, s->work, l->bo, KT_ACT_NONE);
		struct bert_norm_job nj = {s, l->attn_out_norm, l->attn_out_norm_b, n};
		kt_pool_run(s->pool, bert_norm_task, &nj);
		kt_matmul_ex(s->pool, &l->w_up, s->x, n, s->up, s->work, l->b_up, KT_ACT_GELU);
		kt_matmul_ex(s->pool, &l->w_down, s->up, n, s->xb, s->work, l->b_down, KT_ACT_NONE);
		nj.w = l->layer_out_norm;
		nj.b = l->layer_out_norm_b;
		kt_pool_run(s->pool, bert_norm_task, &nj);
	}
	for (int i = 0; i < n_seq; i++) {
		const float *x = s->x + (size_t)seq_first[i] * E;
		float *o = out + (size_t)i * E;
		if (hp->pooling == POOL_CLS) {
			memcpy(o, x, E * sizeof(float));
		} else {
			memset(o, 0, E * sizeof(float));
			for (int t = 0; t < lens[i]; t++)
				for (size_t e = 0; e < E; e++)
					o[e] += x[(size_t)t * E + e];
			for (size_t e = 0; e < E; e++)
				o[e] /= (float)lens[i];
		}
		if (hp->normalize) {
			double ss = 0;
			for (size_t e = 0; e < E; e++)
				ss += (double)o[e] * o[e];
			float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
			for (size_t e = 0; e < E; e++)
				o[e] *= inv;
		}
	}
	return 0;
}
