/*
 * embed: the index's embedding model (a bert-family GGUF).
 *
 * Texts are tokenized with the model's WordPiece vocabulary, cut to the
 * model's input length, framed with [CLS] ... [SEP] and embedded in
 * batches of o.batch_chunks sequences per forward pass.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "index/store_internal.h"

int ix_embedder_open(struct index *ix, const char *path, char *err, size_t errsz)
{
	char e[512];
	struct model *m;
	if (model_load(path, &m, e, sizeof e))
		return ix_err(err, errsz, -EINVAL, "embedder: %s", e);
	const struct model_hparams *hp = model_hparams(m);
	if (hp->arch != ARCH_BERT) {
		int rc = ix_err(err, errsz, -EINVAL,
				"embedder %s is a %s model, not an embedding (bert) model",
				path, hp->arch_name);
		model_free(m);
		return rc;
	}
	int batch = ix->o.batch_chunks > 0 ? ix->o.batch_chunks : 32;
	int max = model_embed_max_tokens(m);
	struct kt_pool *pool = kt_pool_create(ix->o.n_threads);
	struct session *s = NULL;
	if (!pool || session_new(m, batch * max, KT_F32, pool, &s, e, sizeof e)) {
		int rc = ix_err(err, errsz, -ENOMEM, "embedder %s: %s", path,
				pool ? e : "cannot start threads");
		kt_pool_destroy(pool);
		model_free(m);
		return rc;
	}
	/* questions: a session and threads of their own (as many as the
	 * writer's): a question is one short sequence, latency-bound */
	struct kt_pool *qpool = kt_pool_create(ix->o.n_threads);
	struct session *qs = NULL;
	if (!qpool || session_new(m, max, KT_F32, qpool, &qs, e, sizeof e)) {
		int rc = ix_err(err, errsz, -ENOMEM, "embedder %s: %s", path,
				qpool ? e : "cannot start threads");
		kt_pool_destroy(qpool);
		session_free(s);
		kt_pool_destroy(pool);
		model_free(m);
		return rc;
	}
	ix->qsess = qs;
	ix->qpool = qpool;
	struct stat st;
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	snprintf(ix->embedder_id, sizeof ix->embedder_id, "%s:%d:%lld", base, hp->n_embd,
		 stat(path, &st) ? 0LL : (long long)st.st_size);
	snprintf(ix->embedder_path, sizeof ix->embedder_path, "%s", path);
	ix->model = m;
	ix->sess = s;
	ix->pool = pool;
	ix->dim = hp->n_embd;
	ix->max_tokens = max;
	return 0;
}

void ix_embedder_close(struct index *ix)
{
	session_free(ix->sess);
	kt_pool_destroy(ix->pool);
	session_free(ix->qsess);
	kt_pool_destroy(ix->qpool);
	ix->qsess = NULL;
	ix->qpool = NULL;
	model_free(ix->model);
	free(ix->ids);
	ix->sess = NULL;
	ix->pool = NULL;
	ix->model = NULL;
	ix->ids = NULL;
	ix->ids_cap = 0;
	ix->dim = 0;
}

int ix_embed(struct index *ix, const char *const *texts, const size_t *lens, int n,
	     float *out, char *err, size_t errsz)
{
	if (!ix->model)
		return ix_err(err, errsz, -EINVAL, "no embedding model");
	const struct tok *tk = model_tok(ix->model);
	int batch = ix->o.batch_chunks > 0 ? ix->o.batch_chunks : 32;
	int max = ix->max_tokens, rc = 0;
	int64_t need = (int64_t)batch * max;
	int lens_tok[batch];
	pthread_mutex_lock(&ix->emb_mu);
	if (ix->ids_cap < need + 4096) {
		int32_t *p = realloc(ix->ids, (size_t)(need + 4096) * sizeof *p);
		if (!p) {
			rc = ix_err(err, errsz, -ENOMEM, "out of memory");
			goto out;
		}
		ix->ids = p;
		ix->ids_cap = need + 4096;
	}
	/* scratch for one text's full encoding lives after the batch */
	int32_t *tmp = NULL;
	int64_t tmp_cap = 0;
	for (int i0 = 0; i0 < n; i0 += batch) {
		int nb = n - i0 < batch ? n - i0 : batch;
		int64_t at = 0;
		for (int j = 0; j < nb; j++) {
			const char *t = texts[i0 + j];
			size_t len = lens[i0 + j];
			int64_t want = (int64_t)len + 16;
			if (tmp_cap < want) {
				int32_t *p = realloc(tmp, (size_t)want * sizeof *p);
				if (!p) {
					rc = ix_err(err, errsz, -ENOMEM, "out of memory");
					goto done;
				}
				tmp = p;
				tmp_cap = want;
			}
			int64_t k = tok_encode(tk, t, len, 0, tmp, tmp_cap);
			if (k < 0) {
				rc = ix_err(err, errsz, -EINVAL, "cannot tokenize a text for embedding");
				goto done;
			}
			if (k > max - 2)
				k = max - 2;
			int32_t *d = ix->ids + at;
			d[0] = tok_bos(tk);
			memcpy(d + 1, tmp, (size_t)k * sizeof *d);
			d[k + 1] = tok_eos(tk);
			lens_tok[j] = (int)k + 2;
			at += k + 2;
		}
		if (session_embed(ix->sess, ix->ids, lens_tok, nb, out + (size_t)i0 * ix->dim)) {
			rc = ix_err(err, errsz, -EIO, "the embedding forward pass failed");
			goto done;
		}
	}
done:
	free(tmp);
out:
	pthread_mutex_unlock(&ix->emb_mu);
	return rc;
}

int ix_embed_query(struct index *ix, const char *text, size_t len, float *out,
		   char *err, size_t errsz)
{
	if (!ix->model)
		return ix_err(err, errsz, -EINVAL, "no embedding model");
	const struct tok *tk = model_tok(ix->model);
	int max = ix->max_tokens;
	int32_t *ids = malloc((len + 16) * sizeof *ids);
	if (!ids)
		return ix_err(err, errsz, -ENOMEM, "out of memory");
	int64_t k = tok_encode(tk, text, len, 0, ids + 1, (int64_t)len + 8);
	int rc = 0;
	if (k < 0) {
		rc = ix_err(err, errsz, -EINVAL, "cannot tokenize the question");
	} else {
		if (k > max - 2)
			k = max - 2;
		ids[0] = tok_bos(tk);
		ids[k + 1] = tok_eos(tk);
		int n = (int)k + 2;
		pthread_mutex_lock(&ix->q_mu);
		if (session_embed(ix->qsess, ids, &n, 1, out))
			rc = ix_err(err, errsz, -EIO, "the embedding forward pass failed");
		pthread_mutex_unlock(&ix->q_mu);
	}
	free(ids);
	return rc;
}
