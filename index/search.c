/*
 * search: BM25 (SQLite FTS5) and vector (FAISS) retrieval over chunks,
 * fused by reciprocal rank fusion, optionally diversified by maximal
 * marginal relevance.
 *
 * The BM25 query is the question's words (letters and digits, lowercased;
 * common English stop words dropped unless nothing else is left), each
 * quoted and joined with OR, so that no character of the question is read
 * as FTS5 syntax. FTS5 stems them as it stems the documents (porter).
 * A handle opened with bm25_memory ranks from postings in memory once they
 * are built (bm25.c: the same scores as FTS5's, all the words kept); FTS5
 * ranks otherwise, leaving out, in large stores, words most chunks have.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libstemmer.h>

#include "index/store_internal.h"

static const char *const STOP[] = {
	"a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any",
	"are", "as", "at", "be", "because", "been", "before", "being", "below", "between",
	"both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during",
	"each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her",
	"here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into",
	"is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor",
	"not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours",
	"ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such",
	"than", "that", "the", "their", "theirs", "them", "themselves", "then", "there",
	"these", "they", "this", "those", "through", "to", "too", "under", "until", "up",
	"very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom",
	"why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves",
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_stop(const char *w)
{
	return bsearch(&w, STOP, sizeof STOP / sizeof *STOP, sizeof *STOP, cmp_str) != NULL;
}

static int word_byte(unsigned char c)
{
	return isalnum(c) || c >= 0x80;
}

#define MAX_WORDS 64

struct words {
	char *w[MAX_WORDS];
	int n;
};

static void words_free(struct words *ws)
{
	for (int i = 0; i < ws->n; i++)
		free(ws->w[i]);
	ws->n = 0;
}

/* The query's distinct words, stop words dropped unless all are. */
static int query_words(const char *q, struct words *ws)
{
	struct words all = {0};
	for (const char *p = q; *p && all.n < MAX_WORDS;) {
		if (!word_byte((unsigned char)*p)) {
			p++;
			continue;
		}
		const char *s = p;
		while (*p && word_byte((unsigned char)*p))
			p++;
		size_t n = (size_t)(p - s);
		char *w = malloc(n + 1);
		if (!w) {
			words_free(&all);
			return -ENOMEM;
		}
		for (size_t i = 0; i < n; i++)
			w[i] = (char)tolower((unsigned char)s[i]);
		w[n] = 0;
		int dup = 0;
		for (int i = 0; i < all.n && !dup; i++)
			dup = !strcmp(all.w[i], w);
		if (dup)
			free(w);
		else
			all.w[all.n++] = w;
	}
	ws->n = 0;
	for (int i = 0; i < all.n; i++)
		if (!is_stop(all.w[i])) {
			ws->w[ws->n++] = all.w[i];
			all.w[i] = NULL;
		}
	if (!ws->n) { /* nothing but stop words: search for those */
		*ws = all;
		return 0;
	}
	words_free(&all);
	return 0;
}

/* In a store of PRUNE_FROM chunks or more, words in more than this share
 * of the chunks are left out of the BM25 query: their weight is small
 * (idf = log((N - n + 0.5) / (n + 0.5)) < 1.1) and FTS5 would score every
 * row they match before LIMIT applies (60,000 rows of 100,000 for a
 * Cranfield question: 110 ms). On Cranfield's 1,840 chunks, where it does
 * not apply, pruning would cost about 0.01 of MAP. */
#define COMMON_SHARE 0.25
#define KEEP_MIN 3
#define PRUNE_FROM 20000 /* chunks */

/* Drop the common words from ws (under ix->mu). The document count of a
 * word is read from the FTS5 vocabulary under its Porter stem (Snowball's
 * "porter", the algorithm FTS5's porter tokenizer implements); a word
 * whose stem is not found keeps its place. When every word is common, the
 * KEEP_MIN rarest stay. */
static void drop_common(struct index *ix, struct words *ws)
{
	if (!ix->have_vocab || ws->n <= 1)
		return;
	if (ix->n_chunks_known < 0) {
		sqlite3_stmt *c;
		if (sqlite3_prepare_v2(ix->db, "SELECT count(*) FROM chunks", -1, &c, NULL) == SQLITE_OK &&
		    sqlite3_step(c) == SQLITE_ROW)
			ix->n_chunks_known = sqlite3_column_int64(c, 0);
		sqlite3_finalize(c);
	}
	int64_t n = ix->n_chunks_known;
	if (n < PRUNE_FROM)
		return; /* scoring every match is cheap here, and every word counts */
	struct sb_stemmer *stem = sb_stemmer_new("porter", NULL);
	sqlite3_stmt *st = NULL;
	if (!stem || sqlite3_prepare_v2(ix->db, "SELECT doc FROM temp.chunks_vocab WHERE term = ?",
					-1, &st, NULL) != SQLITE_OK) {
		sb_stemmer_delete(stem);
		return;
	}
	int64_t df[MAX_WORDS];
	for (int i = 0; i < ws->n; i++) {
		const sb_symbol *r = sb_stemmer_stem(stem, (const sb_symbol *)ws->w[i],
						     (int)strlen(ws->w[i]));
		int len = sb_stemmer_length(stem);
		df[i] = 0;
		if (!r || len <= 0)
			continue;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, (const char *)r, len, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW)
			df[i] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	sb_stemmer_delete(stem);
	int common = 0;
	for (int i = 0; i < ws->n; i++)
		common += df[i] > COMMON_SHARE * (double)n;
	if (!common)
		return;
	/* keep the rare ones; when none is rare, the KEEP_MIN rarest */
	int keep_common = ws->n > common ? 0 : KEEP_MIN;
	struct words out = {0};
	for (int i = 0; i < ws->n; i++) {
		int is_common = df[i] > COMMON_SHARE * (double)n, take = !is_common;
		if (is_common && keep_common > 0) {
			int rarer = 0; /* common words rarer than this one */
			for (int j = 0; j < ws->n; j++)
				rarer += df[j] > COMMON_SHARE * (double)n &&
					 (df[j] < df[i] || (df[j] == df[i] && j < i));
			take = rarer < keep_common;
		}
		if (take)
			out.w[out.n++] = ws->w[i];
		else
			free(ws->w[i]);
	}
	*ws = out;
}

static char *fts_query(const struct words *ws)
{
	size_t n = 1;
	for (int i = 0; i < ws->n; i++)
		n += strlen(ws->w[i]) + 6;
	char *q = malloc(n), *p = q;
	if (!q)
		return NULL;
	*p = 0;
	for (int i = 0; i < ws->n; i++)
		p += sprintf(p, "%s\"%s\"", i ? " OR " : "", ws->w[i]);
	return q;
}

struct cand {
	int64_t id;
	int r_bm25, r_vec;      /* 1-based ranks, 0: not in that list */
	double s_bm25, s_vec;
	double fused;
};

static struct cand *cand_find(struct cand *c, int n, int64_t id)
{
	for (int i = 0; i < n; i++)
		if (c[i].id == id)
			return &c[i];
	return NULL;
}

static int cmp_fused(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->fused != y->fused)
		return x->fused < y->fused ? 1 : -1;
	/* RRF ties a chunk one list ranks r with one the other list ranks r:
	 * the chunk holding the query's words goes first (a word found in one
	 * document only must not lose to the nearest vector of noise) */
	if (!x->r_bm25 != !y->r_bm25)
		return x->r_bm25 ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/* One line of at most ~200 bytes around the first query word in text. */
static char *make_snippet(const char *text, const struct words *ws)
{
	size_t len = strlen(text), at = len;
	for (int i = 0; i < ws->n; i++) {
		size_t wl = strlen(ws->w[i]);
		if (wl > 5)
			wl = 5; /* a stem's worth: "flows" finds "flow" */
		for (size_t j = 0; j + wl <= len && j < at; j++) {
			if ((j == 0 || !word_byte((unsigned char)text[j - 1])) &&
			    !strncasecmp(text + j, ws->w[i], wl)) {
				at = j;
				break;
			}
		}
	}
	size_t s = at == len || at < 60 ? 0 : at - 60;
	while (s > 0 && s < len && ((unsigned char)text[s] & 0xc0) == 0x80)
		s--;
	while (s > 0 && s < len && word_byte((unsigned char)text[s - 1]) && at - s < 80)
		s--;
	size_t e = s + 200 < len ? s + 200 : len;
	while (e < len && ((unsigned char)text[e] & 0xc0) == 0x80)
		e--;
	char *out = malloc(e - s + 8), *o = out;
	if (!out)
		return NULL;
	if (s > 0)
		o += sprintf(o, "...");
	int sp = 0;
	for (size_t i = s; i < e; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
			sp = 1;
			continue;
		}
		if (sp && o > out)
			*o++ = ' ';
		sp = 0;
		*o++ = (char)c;
	}
	if (e < len)
		o += sprintf(o, "...");
	*o = 0;
	return out;
}

static double dot(const float *a, const float *b, int n)
{
	double s = 0;
	for (int i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

/* Reorder c[0..n) so that its first k are the MMR choice. */
static void mmr(struct index *ix, struct cand *c, int n, int k, double lambda)
{
	int dim = ix->dim;
	float *v = malloc((size_t)n * dim * sizeof *v);
	char *have = calloc((size_t)n, 1);
	double *maxsim = malloc((size_t)n * sizeof *maxsim);
	if (!v || !have || !maxsim)
		goto out;
	for (int i = 0; i < n; i++)
		have[i] = !vec_get(ix->vec, c[i].id, v + (size_t)i * dim);
	double top = c[0].fused > 0 ? c[0].fused : 1;
	for (int i = 0; i < n; i++)
		maxsim[i] = 0;
	for (int sel = 0; sel < k && sel < n; sel++) {
		int best = sel;
		double bs = -INFINITY;
		for (int i = sel; i < n; i++) {
			double s = lambda * c[i].fused / top - (sel ? (1 - lambda) * maxsim[i] : 0);
			if (s > bs) {
				bs = s;
				best = i;
			}
		}
		struct cand t = c[sel];
		c[sel] = c[best];
		c[best] = t;
		float tv[dim];
		memcpy(tv, v + (size_t)sel * dim, sizeof tv);
		memcpy(v + (size_t)sel * dim, v + (size_t)best * dim, sizeof tv);
		memcpy(v + (size_t)best * dim, tv, sizeof tv);
		char th = have[sel];
		have[sel] = have[best];
		have[best] = th;
		double tm = maxsim[sel];
		maxsim[sel] = maxsim[best];
		maxsim[best] = tm;
		for (int i = sel + 1; i < n && have[sel]; i++) {
			double s = have[i] ? dot(v + (size_t)i * dim, v + (size_t)sel * dim, dim) : 0;
			if (s > maxsim[i])
				maxsim[i] = s;
		}
	}
out:
	free(v);
	free(have);
	free(maxsim);
}

int index_search(struct index *ix, const char *query, const struct search_opts *o,
		 struct search_hit **hits, int *n_hits, char *err, size_t errsz)
{
	struct search_opts so = o ? *o : (struct search_opts){0};
	int k = so.k > 0 ? so.k : 5;
	int ncand = so.n_candidates > 0 ? so.n_candidates : (4 * k > 50 ? 4 * k : 50);
	if (ncand < k)
		ncand = k;
	int rrf = so.rrf_k > 0 ? so.rrf_k : 60;
	*hits = NULL;
	*n_hits = 0;
	struct words ws = {0};
	int rc = query_words(query, &ws);
	if (rc)
		return ix_err(err, errsz, rc, "out of memory");
	int use_bm25 = so.mode != SEARCH_VECTOR;
	int use_vec = so.mode != SEARCH_BM25 && ix->model && ix->vec;
	if (so.mode == SEARCH_VECTOR && !use_vec) {
		words_free(&ws);
		return ix_err(err, errsz, -ENOTSUP, "no vectors: the index has no embedding model");
	}
	float *qv = NULL;
	if (use_vec) {
		size_t ql = strlen(query);
		if (!(qv = malloc((size_t)ix->dim * sizeof *qv)))
			rc = ix_err(err, errsz, -ENOMEM, "out of memory");
		else
			rc = ix_embed_query(ix, query, ql, qv, err, errsz);
		if (rc) {
			free(qv);
			words_free(&ws);
			return rc;
		}
	}
	struct cand *c = calloc((size_t)ncand * 2, sizeof *c);
	int64_t *vid = malloc((size_t)ncand * 2 * sizeof *vid);
	float *vsc = malloc((size_t)ncand * 2 * sizeof *vsc);
	int nc = 0;
	if (!c || !vid || !vsc) {
		rc = ix_err(err, errsz, -ENOMEM, "out of memory");
		goto out;
	}
	pthread_mutex_lock(&ix->mu);
	int bm25_done = 0;
	if (use_bm25 && ws.n) {
		int64_t *bid = malloc((size_t)ncand * sizeof *bid);
		double *bsc = malloc((size_t)ncand * sizeof *bsc);
		int nb = 0;
		if (bid && bsc && (bm25_done = ix_bm25_search(ix, ws.w, ws.n, ncand, bid, bsc, &nb)))
			for (; nc < nb; nc++)
				c[nc] = (struct cand){.id = bid[nc], .s_bm25 = bsc[nc], .r_bm25 = nc + 1};
		free(bid);
		free(bsc);
	}
	if (use_bm25 && ws.n && !bm25_done) {
		struct words q = {0};
		for (int i = 0; i < ws.n; i++) /* ws keeps every word, for the snippets */
			if ((q.w[q.n] = strdup(ws.w[i])))
				q.n++;
		char *fq = NULL;
		if (q.n == ws.n) {
			drop_common(ix, &q);
			fq = fts_query(&q);
		}
		words_free(&q);
		sqlite3_stmt *st = NULL;
		if (!fq || sqlite3_prepare_v2(ix->db, "SELECT rowid, bm25(chunks_fts) FROM chunks_fts"
						      " WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts)"
						      " LIMIT ?", -1, &st, NULL) != SQLITE_OK) {
			rc = fq ? ix_sql_err(ix, err, errsz, "BM25 search") : -ENOMEM;
		} else {
			sqlite3_bind_text(st, 1, fq, -1, SQLITE_STATIC);
			sqlite3_bind_int(st, 2, ncand);
			int s;
			while ((s = sqlite3_step(st)) == SQLITE_ROW && nc < ncand) {
				c[nc].id = sqlite3_column_int64(st, 0);
				c[nc].s_bm25 = -sqlite3_column_double(st, 1);
				c[nc].r_bm25 = nc + 1;
				nc++;
			}
			if (s != SQLITE_DONE && s != SQLITE_ROW)
				rc = ix_sql_err(ix, err, errsz, "BM25 search");
		}
		sqlite3_finalize(st);
		free(fq);
	}
	if (!rc && use_vec && vec_count(ix->vec) > 0) {
		/* HNSW may hold the vectors of removed chunks: ask for more, skip them */
		int64_t want = ncand + (ix->n_dead < ncand ? ix->n_dead : ncand);
		int kk = vec_count(ix->vec) < want ? (int)vec_count(ix->vec) : (int)want;
		rc = vec_search(ix->vec, qv, kk, vid, vsc, err, errsz);
		for (int i = 0, r = 0; !rc && i < kk && r < ncand; i++) {
			if (vid[i] < 0 || (ix->n_dead && !ix_chunk_exists(ix, vid[i])))
				continue;
			r++;
			struct cand *x = cand_find(c, nc, vid[i]);
			if (!x) {
				x = &c[nc++];
				x->id = vid[i];
			}
			x->r_vec = r;
			x->s_vec = vsc[i];
		}
	}
	for (int i = 0; !rc && i < nc; i++) {
		if (so.mode == SEARCH_BM25 || !use_vec)
			c[i].fused = c[i].r_bm25 ? c[i].s_bm25 : -INFINITY;
		else if (so.mode == SEARCH_VECTOR)
			c[i].fused = c[i].r_vec ? c[i].s_vec : -INFINITY;
		else
			c[i].fused = (c[i].r_bm25 ? 1.0 / (rrf + c[i].r_bm25) : 0) +
				     (c[i].r_vec ? 1.0 / (rrf + c[i].r_vec) : 0);
	}
	if (!rc && nc) {
		qsort(c, (size_t)nc, sizeof *c, cmp_fused);
		if (so.mmr_lambda > 0 && use_vec && so.mode == SEARCH_HYBRID)
			mmr(ix, c, nc, k, so.mmr_lambda);
	}
	int nh = rc ? 0 : nc < k ? nc : k;
	struct search_hit *h = nh ? calloc((size_t)nh, sizeof *h) : NULL;
	if (nh && !h)
		rc = ix_err(err, errsz, -ENOMEM, "out of memory");
	sqlite3_stmt *st = NULL;
	if (!rc && nh &&
	    sqlite3_prepare_v2(ix->db, "SELECT c.src_start, c.src_end, c.text, d.path FROM chunks c"
				       " JOIN docs d ON d.id = c.doc_id WHERE c.id = ?", -1, &st,
			       NULL) != SQLITE_OK)
		rc = ix_sql_err(ix, err, errsz, "reading hits");
	int got = 0;
	for (int i = 0; !rc && i < nh; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, c[i].id);
		if (sqlite3_step(st) != SQLITE_ROW)
			continue; /* removed meanwhile */
		struct search_hit *x = &h[got];
		x->chunk_id = c[i].id;
		x->start = (size_t)sqlite3_column_int64(st, 0);
		x->end = (size_t)sqlite3_column_int64(st, 1);
		x->text = strdup((const char *)sqlite3_column_text(st, 2));
		x->doc = strdup((const char *)sqlite3_column_text(st, 3));
		x->score = c[i].fused;
		x->snippet = x->text ? make_snippet(x->text, &ws) : NULL;
		got++;
		if (!x->text || !x->doc || !x->snippet)
			rc = ix_err(err, errsz, -ENOMEM, "out of memory");
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ix->mu);
	if (rc) {
		search_hits_free(h, got);
	} else {
		*hits = h;
		*n_hits = got;
	}
out:
	free(c);
	free(vid);
	free(vsc);
	free(qv);
	words_free(&ws);
	return rc;
}

void search_hits_free(struct search_hit *h, int n)
{
	for (int i = 0; h && i < n; i++) {
		free(h[i].doc);
		free(h[i].snippet);
		free(h[i].text);
	}
	free(h);
}

int search_hit_line(const struct search_hit *h, int rank, char *buf, size_t n)
{
	/* the document name is escaped so that a line stays one line */
	size_t dl = strlen(h->doc);
	char doc[dl * 2 + 1], *d = doc;
	for (size_t i = 0; i < dl; i++) {
		char ch = h->doc[i];
		if (ch == '\\' || ch == '\t' || ch == '\n' || ch == '\r') {
			*d++ = '\\';
			*d++ = ch == '\t' ? 't' : ch == '\n' ? 'n' : ch == '\r' ? 'r' : '\\';
		} else {
			*d++ = ch;
		}
	}
	*d = 0;
	return snprintf(buf, n, "%d\t%.6g\t%s\t%zu-%zu\t%s\n", rank, h->score, doc, h->start,
			h->end, h->snippet ? h->snippet : "");
}
