/*
 * llama2.c checkpoints to GGUF.
 *
 * The legacy checkpoint (version 0) is a header of seven int32 (dim,
 * hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative
 * vocab_size means the classifier is not shared with the embedding) followed
 * by float32 arrays in this order: token embedding (vocab, dim), rms_att
 * (layer, dim), wq (layer, n_heads*hs, dim), wk and wv (layer, n_kv*hs, dim),
 * wo (layer, dim, n_heads*hs), rms_ffn (layer, dim), w1 (layer, hidden, dim),
 * w2 (layer, dim, hidden), w3 (layer, hidden, dim), rms_final (dim), two RoPE
 * tables (seq_len, hs/2) each, and the classifier (vocab, dim) when unshared.
 * Matrices are (out, in) row-major, which is GGUF's layout with ne = {in, out},
 * and the RoPE pairs are interleaved, so Q and K need no permutation.
 *
 * The tokenizer file: int32 max_token_length, then per token: float32 score,
 * int32 length, bytes. Spaces in pieces stand for SentencePiece's U+2581, and
 * BOS/EOS are spelled "\n<s>\n" and "\n</s>\n".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/internal.h"

static int read_file(const char *path, unsigned char **buf, size_t *len,
		     char *err, size_t errsz)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		eng_err(err, errsz, "%s: %s", path, strerror(e));
		return -e;
	}
	if (fseek(f, 0, SEEK_END) || ftell(f) < 0) {
		int e = errno;
		fclose(f);
		eng_err(err, errsz, "%s: cannot determine size: %s", path, strerror(e));
		return -e;
	}
	size_t n = (size_t)ftell(f);
	rewind(f);
	*buf = malloc(n ? n : 1);
	if (!*buf) {
		fclose(f);
		eng_err(err, errsz, "%s: out of memory for %zu bytes", path, n);
		return -ENOMEM;
	}
	if (fread(*buf, 1, n, f) != n) {
		int e = ferror(f) ? EIO : EINVAL;
		fclose(f);
		free(*buf);
		eng_err(err, errsz, "%s: short read", path);
		return -e;
	}
	fclose(f);
	*len = n;
	return 0;
}

/* Converts the llama2.c vocabulary: pieces back to SentencePiece spelling,
 * token types from their shape. */
static int add_vocab(struct gguf_writer *w, const char *path, int32_t n_vocab,
		     char *err, size_t errsz)
{
	unsigned char *buf;
	size_t len;
	int rc = read_file(path, &buf, &len, err, errsz);
	if (rc)
		return rc;
	char **tokens = calloc((size_t)n_vocab, sizeof *tokens);
	size_t *lens = calloc((size_t)n_vocab, sizeof *lens);
	float *scores = calloc((size_t)n_vocab, sizeof *scores);
	int32_t *types = calloc((size_t)n_vocab, sizeof *types);
	rc = -ENOMEM;
	if (!tokens || !lens || !scores || !types) {
		eng_err(err, errsz, "%s: out of memory", path);
		goto out;
	}
	rc = -EINVAL;
	size_t off = 4;
	if (len < 4) {
		eng_err(err, errsz, "%s: truncated: %zu bytes, no header", path, len);
		goto out;
	}
	for (int32_t i = 0; i < n_vocab; i++) {
		int32_t n;
		if (len - off < 8) {
			eng_err(err, errsz, "%s: truncated: token %d of %d needs a header at offset %zu, file has %zu bytes",
				path, i, n_vocab, off, len);
			goto out;
		}
		memcpy(&scores[i], buf + off, 4);
		memcpy(&n, buf + off + 4, 4);
		off += 8;
		if (n < 0 || (size_t)n > len - off) {
			eng_err(err, errsz, "%s: token %d has length %d at offset %zu, file has %zu bytes",
				path, i, n, off, len);
			goto out;
		}
		const char *p = (const char *)buf + off;
		off += (size_t)n;
		if (i == 0 && n == 5 && !memcmp(p, "<unk>", 5)) {
			types[i] = 2;
		} else if (n == 5 && !memcmp(p, "\n<s>\n", 5)) {
			p = "<s>", n = 3, types[i] = 3;
		} else if (n == 6 && !memcmp(p, "\n</s>\n", 6)) {
			p = "</s>", n = 4, types[i] = 3;
		} else if (n == 6 && !memcmp(p, "<0x", 3) && p[5] == '>') {
			types[i] = 6;
		} else {
			types[i] = 1;
		}
		/* ' ' -> U+2581 (3 bytes in UTF-8): at most triples the length */
		char *t = malloc((size_t)n * 3 + 1);
		if (!t) {
			rc = -ENOMEM;
			eng_err(err, errsz, "%s: out of memory", path);
			goto out;
		}
		size_t k = 0;
		for (int32_t c = 0; c < n; c++) {
			if (p[c] == ' ' && types[i] == 1) {
				memcpy(t + k, "\xe2\x96\x81", 3);
				k += 3;
			} else {
				t[k++] = p[c];
			}
		}
		tokens[i] = t;
		lens[i] = k;
	}
	if ((rc = gguf_w_str(w, "tokenizer.ggml.model", "llama")) ||
	    (rc = gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tokens, lens,
				 (uint64_t)n_vocab)) ||
	    (rc = gguf_w_arr(w, "tokenizer.ggml.scores", GGUF_F32, scores, (uint64_t)n_vocab)) ||
	    (rc = gguf_w_arr(w, "tokenizer.ggml.token_type", GGUF_I32, types, (uint64_t)n_vocab)) ||
	    (rc = gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", 0)) ||
	    (rc = gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 1)) ||
	    (rc = gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 2)) ||
	    (rc = gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 1)) ||
	    (rc = gguf_w_bool(w, "tokenizer.ggml.add_eos_token", 0)))
		eng_err(err, errsz, "%s: cannot add the vocabulary: %s", path, strerror(-rc));
out:
	if (tokens)
		for (int32_t i = 0; i < n_vocab; i++)
			free(tokens[i]);
	free(tokens);
	free(lens);
	free(scores);
	free(types);
	free(buf);
	return rc;
}

int convert_llama2c(const char *ckpt, const char *tokenizer, const char *out,
		    char *err, size_t errsz)
{
	unsigned char *buf;
	size_t len;
	int rc = read_file(ckpt, &buf, &len, err, errsz);
	if (rc)
		return rc;
	struct gguf_writer *w = NULL;
	int32_t h[7];
	rc = -EINVAL;
	if (len < sizeof h) {
		eng_err(err, errsz, "%s: truncated: %zu bytes, the header needs 28", ckpt, len);
		goto out;
	}
	memcpy(h, buf, sizeof h);
	if (!memcmp(buf, "ak42", 4)) {
		eng_err(err, errsz, "%s: this is a versioned llama2.c checkpoint; only the legacy (version 0) format is supported", ckpt);
		goto out;
	}
	int32_t dim = h[0], hidden = h[1], n_layer = h[2], n_head = h[3], n_kv = h[4];
	int32_t n_vocab = h[5] < 0 ? -h[5] : h[5], seq_len = h[6];
	int shared = h[5] > 0;
	if (dim <= 0 || hidden <= 0 || n_layer <= 0 || n_head <= 0 || n_kv <= 0 ||
	    n_vocab <= 0 || seq_len <= 0 || dim % n_head || n_head % n_kv || dim > 65536 ||
	    hidden > 262144 || n_layer > 1024 || n_vocab > 1 << 20 || seq_len > 1 << 20) {
		eng_err(err, errsz, "%s: implausible header: dim %d, hidden %d, layers %d, heads %d, kv heads %d, vocab %d, seq_len %d",
			ckpt, dim, hidden, n_layer, n_head, n_kv, n_vocab, seq_len);
		goto out;
	}
	int64_t hs = dim / n_head, kvd = hs * n_kv;
	int64_t L = n_layer, D = dim, F = hidden, V = n_vocab;
	/* element counts in file order */
	int64_t need = V * D + L * D + L * D * D + 2 * L * kvd * D + L * D * D + L * D +
		       3 * L * F * D + D + (int64_t)seq_len * hs + (shared ? 0 : V * D);
	if ((int64_t)(len - sizeof h) / 4 < need) {
		eng_err(err, errsz, "%s: truncated: the weights need %lld bytes after the header, file has %zu",
			ckpt, (long long)need * 4, len - sizeof h);
		goto out;
	}
	rc = -ENOMEM;
	if (!(w = gguf_writer_new())) {
		eng_err(err, errsz, "out of memory");
		goto out;
	}
	const char *base = strrchr(ckpt, '/');
	base = base ? base + 1 : ckpt;
	char name[256];
	snprintf(name, sizeof name, "%.*s", (int)(strcspn(base, ".") ? strcspn(base, ".") : strlen(base)), base);
	if ((rc = gguf_w_str(w, "general.architecture", "llama")) ||
	    (rc = gguf_w_str(w, "general.name", name)) ||
	    (rc = gguf_w_u32(w, "llama.context_length", (uint32_t)seq_len)) ||
	    (rc = gguf_w_u32(w, "llama.embedding_length", (uint32_t)dim)) ||
	    (rc = gguf_w_u32(w, "llama.block_count", (uint32_t)n_layer)) ||
	    (rc = gguf_w_u32(w, "llama.feed_forward_length", (uint32_t)hidden)) ||
	    (rc = gguf_w_u32(w, "llama.attention.head_count", (uint32_t)n_head)) ||
	    (rc = gguf_w_u32(w, "llama.attention.head_count_kv", (uint32_t)n_kv)) ||
	    (rc = gguf_w_u32(w, "llama.rope.dimension_count", (uint32_t)hs)) ||
	    (rc = gguf_w_f32(w, "llama.rope.freq_base", 10000.0f)) ||
	    (rc = gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f)) ||
	    (rc = gguf_w_u32(w, "general.file_type", 0))) {
		eng_err(err, errsz, "%s: cannot write metadata: %s", out, strerror(-rc));
		goto out;
	}
	if ((rc = add_vocab(w, tokenizer, n_vocab, err, errsz)))
		goto out;

	const float *p = (const float *)(buf + sizeof h);
	const float *embd = p;
	p += V * D;
	const float *rms_att = p;
	p += L * D;
	const float *wq = p;
	p += L * D * D;
	const float *wk = p;
	p += L * kvd * D;
	const float *wv = p;
	p += L * kvd * D;
	const float *wo = p;
	p += L * D * D;
	const float *rms_ffn = p;
	p += L * D;
	const float *w1 = p;
	p += L * F * D;
	const float *w2 = p;
	p += L * D * F;
	const float *w3 = p;
	p += L * F * D;
	const float *rms_final = p;
	p += D;
	p += (int64_t)seq_len * hs; /* RoPE tables: recomputed by the engine */
	const float *wcls = shared ? NULL : p;

	int64_t ne_vec[1] = {D};
	int64_t ne_embd[2] = {D, V};
	if ((rc = gguf_w_tensor(w, "token_embd.weight", KT_F32, 2, ne_embd, embd)) ||
	    (rc = gguf_w_tensor(w, "output_norm.weight", KT_F32, 1, ne_vec, rms_final)) ||
	    (wcls && (rc = gguf_w_tensor(w, "output.weight", KT_F32, 2, ne_embd, wcls))))
		goto werr;
	for (int64_t l = 0; l < L; l++) {
		char tn[64];
		struct {
			const char *suffix;
			const float *data;
			int64_t rows, cols;
		} t[] = {
			{"attn_norm.weight", rms_att + l * D, 1, D},
			{"attn_q.weight", wq + l * D * D, D, D},
			{"attn_k.weight", wk + l * kvd * D, kvd, D},
			{"attn_v.weight", wv + l * kvd * D, kvd, D},
			{"attn_output.weight", wo + l * D * D, D, D},
			{"ffn_norm.weight", rms_ffn + l * D, 1, D},
			{"ffn_gate.weight", w1 + l * F * D, F, D},
			{"ffn_down.weight", w2 + l * D * F, D, F},
			{"ffn_up.weight", w3 + l * F * D, F, D},
		};
		for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
			int64_t ne[2] = {t[i].cols, t[i].rows};
			snprintf(tn, sizeof tn, "blk.%lld.%s", (long long)l, t[i].suffix);
			if ((rc = gguf_w_tensor(w, tn, KT_F32, t[i].rows == 1 ? 1 : 2, ne, t[i].data)))
				goto werr;
		}
	}
	rc = gguf_writer_write(w, out, err, errsz);
	goto out;
werr:
	eng_err(err, errsz, "%s: cannot add tensors: %s", out, strerror(-rc));
out:
	gguf_writer_free(w);
	free(buf);
	return rc;
}
