/*
 * test_cranfield: retrieval quality of the store's index on the Cranfield
 * collection (shared data ir/cranfield: 1,400 aeronautics abstracts, 225
 * queries, graded relevance judgements).
 *
 * Each document becomes DOCS/<id>.txt (title, blank line, text) in a fresh
 * store, indexed through index_add; each query is searched in BM25, vector
 * and hybrid mode, its chunk hits turned into a document ranking (first
 * occurrence of each document), and the ranking scored against the qrels:
 *   nDCG@10    graded gain 5 - grade (grade 1, a complete answer, gains 4;
 *              grade 4 gains 1), ideal ranking from the qrels;
 *   MAP        average precision over the top 100, relevant = grade 1..4,
 *              divided by all of the query's relevant documents;
 *   recall@100
 * each averaged over all 225 queries. Asserted: BM25 MAP >= 0.25 (the
 * published BM25 range is 0.25-0.30) and, with the embedder, hybrid MAP >=
 * both BM25's and the vectors' (no tolerance).
 *
 * The embedder (all-MiniLM-L6-v2.gguf in $SEEKFS_MODELS, else
 * ~/.local/share/seekfs/models) may be absent: then only BM25 is measured
 * and the vector and hybrid rows are skipped, saying so. The shared data
 * must exist. SEEKFS_CRANFIELD_STORE=DIR keeps the store in DIR (made if
 * needed) and reuses it next time, so that queries can be re-run without
 * embedding the collection again; by default the store is a temporary
 * folder removed at the end.
 */
#define _GNU_SOURCE /* nftw */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index/index.h"
#include "testutil.h"

#define N_QUERIES 225
#define MAX_DOC 1400
#define K_CHUNKS 300  /* chunk hits asked for, enough to rank 100 documents */
#define TOP_DOCS 100
#define MAP_MIN 0.25

/* ---- the temporary store, removed at exit (T_REQUIRE exits too) ---------- */

static char tmp_store[64];

static void rm_tmp_store(void)
{
	if (tmp_store[0])
		t_rm_tree(tmp_store);
	tmp_store[0] = 0;
}

/* ---- the collection ---------------------------------------------------- */

/* Lines of a file, CR LF or LF, each NUL-terminated in place. */
struct lines {
	char *buf;
	char **v;
	size_t n;
};

static void read_lines(const char *path, struct lines *l)
{
	size_t len;
	l->buf = t_slurp(path, &len);
	T_REQUIRE(l->buf, "%s: cannot read", path);
	size_t cap = 1024;
	l->v = malloc(cap * sizeof *l->v);
	l->n = 0;
	T_REQUIRE(l->v, "out of memory");
	for (char *p = l->buf; p < l->buf + len;) {
		char *e = memchr(p, '\n', (size_t)(l->buf + len - p));
		if (!e)
			e = l->buf + len;
		*e = 0;
		if (e > p && e[-1] == '\r')
			e[-1] = 0;
		if (l->n == cap) {
			l->v = realloc(l->v, (cap *= 2) * sizeof *l->v);
			T_REQUIRE(l->v, "out of memory");
		}
		l->v[l->n++] = p;
		p = e + 1;
	}
}

static void lines_free(struct lines *l)
{
	free(l->buf);
	free(l->v);
}

/* A growing string. */
struct str {
	char *s;
	size_t n, cap;
};

static void str_add(struct str *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		T_REQUIRE(b->s, "out of memory");
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = 0;
}

static int is_field(const char *line)
{
	return line[0] == '.' && strchr("ITABW", line[1]) && (!line[2] || line[2] == ' ');
}

/* Write DOCS/<id>.txt for every document of cran.all.1400 (title, blank
 * line, text; both as in the file, lines kept); their ids into ids. */
static int write_docs(const char *all_path, const char *docs, int *ids)
{
	struct lines l;
	read_lines(all_path, &l);
	int n = 0;
	for (size_t i = 0; i < l.n;) {
		if (strncmp(l.v[i], ".I ", 3)) {
			i++;
			continue;
		}
		int id = atoi(l.v[i] + 3);
		T_REQUIRE(id > 0 && id <= MAX_DOC && n < MAX_DOC, "%s: bad document id %s", all_path,
			  l.v[i] + 3);
		struct str title = {0}, text = {0};
		char field = 0;
		for (i++; i < l.n && strncmp(l.v[i], ".I ", 3); i++) {
			if (is_field(l.v[i])) {
				field = l.v[i][1];
				continue;
			}
			struct str *b = field == 'T' ? &title : field == 'W' ? &text : NULL;
			if (b) {
				str_add(b, l.v[i], strlen(l.v[i]));
				str_add(b, "\n", 1);
			}
		}
		char path[4300];
		snprintf(path, sizeof path, "%s/%d.txt", docs, id);
		FILE *f = fopen(path, "wb");
		T_REQUIRE(f, "%s: %s", path, strerror(errno));
		if (title.n)
			fwrite(title.s, 1, title.n, f);
		fputc('\n', f);
		if (text.n)
			fwrite(text.s, 1, text.n, f);
		T_REQUIRE(!fclose(f), "%s: %s", path, strerror(errno));
		free(title.s);
		free(text.s);
		ids[n++] = id;
	}
	lines_free(&l);
	return n;
}

/* The 225 queries in file order (numbered 1..225 in the qrels). */
static int read_queries(const char *path, char **q)
{
	struct lines l;
	read_lines(path, &l);
	int n = 0;
	for (size_t i = 0; i < l.n;) {
		if (strncmp(l.v[i], ".I ", 3)) {
			i++;
			continue;
		}
		T_REQUIRE(n < N_QUERIES, "%s: more than %d queries", path, N_QUERIES);
		struct str b = {0};
		char field = 0;
		for (i++; i < l.n && strncmp(l.v[i], ".I ", 3); i++) {
			if (is_field(l.v[i])) {
				field = l.v[i][1];
				continue;
			}
			if (field == 'W') {
				if (b.n)
					str_add(&b, " ", 1);
				str_add(&b, l.v[i], strlen(l.v[i]));
			}
		}
		T_REQUIRE(b.n, "%s: query %d has no text", path, n + 1);
		q[n++] = b.s;
	}
	lines_free(&l);
	return n;
}

/* grade[q][doc]: 1..4 relevant (1 most), 0 not judged or not relevant. */
static signed char grade[N_QUERIES + 1][MAX_DOC + 1];
static int n_rel[N_QUERIES + 1];

static void read_qrels(const char *path)
{
	struct lines l;
	read_lines(path, &l);
	int n = 0;
	for (size_t i = 0; i < l.n; i++) {
		int q, d, g;
		if (sscanf(l.v[i], "%d %d %d", &q, &d, &g) != 3)
			continue; /* blank lines */
		T_REQUIRE(q >= 1 && q <= N_QUERIES && d >= 1 && d <= MAX_DOC && (g == -1 || (g >= 1 && g <= 4)),
			  "%s:%zu: bad line \"%s\"", path, i + 1, l.v[i]);
		if (g >= 1 && !grade[q][d]) {
			grade[q][d] = (signed char)g;
			n_rel[q]++;
		}
		n++;
	}
	T_REQUIRE(n > 1000, "%s: only %d judgements", path, n);
	lines_free(&l);
}

/* ---- measures ---------------------------------------------------------- */

static double gain(int g)
{
	return g >= 1 && g <= 4 ? 5 - g : 0;
}

static double ndcg10(int q, const int *rank, int n)
{
	double dcg = 0, idcg = 0;
	for (int i = 0; i < n && i < 10; i++)
		dcg += gain(grade[q][rank[i]]) / log2(i + 2.0);
	/* the ideal: the judged gains, best first */
	int cnt[5] = {0};
	for (int d = 1; d <= MAX_DOC; d++)
		if (grade[q][d] >= 1)
			cnt[(int)grade[q][d]]++;
	int i = 0;
	for (int g = 1; g <= 4; g++)
		for (int c = 0; c < cnt[g] && i < 10; c++, i++)
			idcg += gain(g) / log2(i + 2.0);
	return idcg > 0 ? dcg / idcg : 0;
}

static double avg_prec(int q, const int *rank, int n)
{
	double s = 0;
	int hits = 0;
	for (int i = 0; i < n && i < TOP_DOCS; i++)
		if (grade[q][rank[i]] >= 1)
			s += (double)++hits / (i + 1);
	return n_rel[q] ? s / n_rel[q] : 0;
}

static double recall100(int q, const int *rank, int n)
{
	int hits = 0;
	for (int i = 0; i < n && i < TOP_DOCS; i++)
		hits += grade[q][rank[i]] >= 1;
	return n_rel[q] ? (double)hits / n_rel[q] : 0;
}

/* ---- indexing and searching -------------------------------------------- */

struct counts {
	long indexed, unchanged, reused, skipped, chunks, embedded;
};

static void on_ack(void *ctx, const char *key, const char *file, const struct index_add_result *r)
{
	struct counts *c = ctx;
	(void)file;
	switch (r->outcome) {
	case IX_INDEXED: c->indexed++; break;
	case IX_UNCHANGED: c->unchanged++; break;
	case IX_REUSED: c->reused++; break;
	case IX_SKIPPED:
		c->skipped++;
		fprintf(stderr, "test_cranfield: %s skipped: %s\n", key, r->reason);
		break;
	}
	c->chunks += r->n_chunks;
	c->embedded += r->n_embedded;
}

struct mode_result {
	const char *name;
	double ndcg, map, recall, ms, docs_ranked;
	int ran;
};

static void run_mode(struct index *ix, enum search_mode mode, char **queries,
		     const struct search_opts *base, struct mode_result *m)
{
	struct search_opts so = *base;
	so.mode = mode;
	so.k = K_CHUNKS;
	double t0 = t_now(), ranked = 0;
	m->ndcg = m->map = m->recall = 0;
	for (int q = 1; q <= N_QUERIES; q++) {
		struct search_hit *h;
		int n;
		char err[512];
		int rc = index_search(ix, queries[q - 1], &so, &h, &n, err, sizeof err);
		T_REQUIRE(!rc, "%s search, query %d: %s", m->name, q, err);
		int rank[TOP_DOCS], nr = 0;
		static char seen[MAX_DOC + 1];
		memset(seen, 0, sizeof seen);
		for (int i = 0; i < n && nr < TOP_DOCS; i++) {
			int d = atoi(h[i].doc);
			T_REQUIRE(d >= 1 && d <= MAX_DOC, "hit names an unknown document %s", h[i].doc);
			if (!seen[d]) {
				seen[d] = 1;
				rank[nr++] = d;
			}
		}
		search_hits_free(h, n);
		ranked += nr;
		m->ndcg += ndcg10(q, rank, nr);
		m->map += avg_prec(q, rank, nr);
		m->recall += recall100(q, rank, nr);
	}
	m->ms = (t_now() - t0) * 1000 / N_QUERIES;
	m->ndcg /= N_QUERIES;
	m->map /= N_QUERIES;
	m->recall /= N_QUERIES;
	m->docs_ranked = ranked / N_QUERIES;
	m->ran = 1;
}

static void embedder_path(char *path, size_t n)
{
	t_models("all-MiniLM-L6-v2.gguf", path, n);
}

/* Search options from the environment, for tuning fusion by hand:
 * SEEKFS_CRANFIELD_CANDIDATES, SEEKFS_CRANFIELD_RRF_K (0: index_search's). */
static void tuning(struct search_opts *so)
{
	const char *c = getenv("SEEKFS_CRANFIELD_CANDIDATES"), *k = getenv("SEEKFS_CRANFIELD_RRF_K");
	so->n_candidates = c ? atoi(c) : 0;
	so->rrf_k = k ? atoi(k) : 0;
}

int main(void)
{
	const char *all = t_data("ir/cranfield/cran.all.1400");
	const char *qry = t_data("ir/cranfield/cran.qry");
	const char *rel = t_data("ir/cranfield/cranqrel");

	char emb[4200];
	embedder_path(emb, sizeof emb);
	int have_emb = !access(emb, R_OK);
	if (!have_emb)
		fprintf(stderr, "test_cranfield: %s is not installed (tools/setup.sh converts it): "
				"BM25 only, the vector and hybrid measures are skipped\n", emb);

	/* the store: kept in $SEEKFS_CRANFIELD_STORE, else a temporary one */
	char store[4096], docs[4200], ixdir[4200];
	const char *keep = getenv("SEEKFS_CRANFIELD_STORE");
	if (keep && *keep) {
		snprintf(store, sizeof store, "%s", keep);
		T_REQUIRE(!mkdir(store, 0755) || errno == EEXIST, "%s: %s", store, strerror(errno));
	} else {
		snprintf(tmp_store, sizeof tmp_store, "/tmp/seekfs-cranfield-XXXXXX");
		T_REQUIRE(mkdtemp(tmp_store), "mkdtemp: %s", strerror(errno));
		atexit(rm_tmp_store);
		snprintf(store, sizeof store, "%s", tmp_store);
	}
	snprintf(docs, sizeof docs, "%s/docs", store);
	snprintf(ixdir, sizeof ixdir, "%s/index", store);
	T_REQUIRE(!mkdir(docs, 0755) || errno == EEXIST, "%s: %s", docs, strerror(errno));
	fprintf(stderr, "test_cranfield: store %s%s\n", store, keep && *keep ? " (kept)" : "");

	static int ids[MAX_DOC];
	int n_docs = write_docs(all, docs, ids);
	T_REQUIRE(n_docs == MAX_DOC, "%s: %d documents, want %d", all, n_docs, MAX_DOC);
	static char *queries[N_QUERIES];
	int n_q = read_queries(qry, queries);
	T_REQUIRE(n_q == N_QUERIES, "%s: %d queries, want %d", qry, n_q, N_QUERIES);
	read_qrels(rel);

	/* index */
	struct index_opts io = {.embedder = have_emb ? emb : NULL, .no_embedder = !have_emb};
	struct index *ix;
	char err[1024];
	T_REQUIRE(!index_open(ixdir, &io, &ix, err, sizeof err), "index_open %s: %s", ixdir, err);
	static char keybuf[MAX_DOC][16], filebuf[MAX_DOC][4300];
	static const char *keys[MAX_DOC], *files[MAX_DOC];
	for (int i = 0; i < n_docs; i++) {
		snprintf(keybuf[i], sizeof keybuf[i], "%d.txt", ids[i]);
		snprintf(filebuf[i], sizeof filebuf[i], "%s/%s", docs, keybuf[i]);
		keys[i] = keybuf[i];
		files[i] = filebuf[i];
	}
	struct counts c = {0};
	double t0 = t_now();
	T_REQUIRE(!index_add(ix, keys, files, (size_t)n_docs, on_ack, &c, err, sizeof err),
		  "index_add: %s", err);
	int64_t pending = 0;
	if (have_emb)
		T_REQUIRE(!index_embed_pending(ix, 0, &pending, err, sizeof err),
			  "index_embed_pending: %s", err);
	T_REQUIRE(!index_persist(ix, err, sizeof err), "index_persist: %s", err);
	double t_add = t_now() - t0;
	struct index_info in;
	T_REQUIRE(!index_info(ix, &in), "index_info failed");
	fprintf(stderr,
		"test_cranfield: indexed %ld, unchanged %ld, reused %ld, skipped %ld documents; "
		"%ld chunks, %ld embedded (+%lld pending) in %.1f s: %.1f docs/s, %.1f chunks/s\n",
		c.indexed, c.unchanged, c.reused, c.skipped, c.chunks, c.embedded,
		(long long)pending, t_add, (c.indexed + c.reused) / t_add, c.chunks / t_add);
	if (c.embedded)
		fprintf(stderr, "test_cranfield: embedding: %.1f chunks/s\n",
			(c.embedded + pending) / t_add);
	fprintf(stderr, "test_cranfield: index: %lld docs (%lld skipped), %lld chunks, "
			"%lld vectors, %lld pending, embedder \"%s\"\n",
		(long long)in.n_docs, (long long)in.n_skipped, (long long)in.n_chunks,
		(long long)in.n_vectors, (long long)in.n_pending, in.embedder);
	T_CHECK(c.skipped == 0, "%ld documents skipped", c.skipped);
	/* two documents (471, 995) have no text at all: indexed, no chunks */
	T_CHECK(in.n_docs == n_docs, "index has %lld documents, want %d", (long long)in.n_docs,
		n_docs);
	if (have_emb)
		T_CHECK(in.n_vectors == in.n_chunks && !in.n_pending,
			"%lld vectors for %lld chunks (%lld pending)", (long long)in.n_vectors,
			(long long)in.n_chunks, (long long)in.n_pending);

	/* search */
	struct search_opts base = {0};
	tuning(&base);
	struct mode_result m[3] = {{.name = "bm25"}, {.name = "vector"}, {.name = "hybrid"}};
	run_mode(ix, SEARCH_BM25, queries, &base, &m[0]);
	if (have_emb && in.n_vectors > 0) {
		run_mode(ix, SEARCH_VECTOR, queries, &base, &m[1]);
		run_mode(ix, SEARCH_HYBRID, queries, &base, &m[2]);
	}
	fprintf(stderr, "\ntest_cranfield: %d queries, %d documents (k=%d chunks, n_candidates=%d, rrf_k=%d)\n",
		N_QUERIES, n_docs, K_CHUNKS, base.n_candidates, base.rrf_k);
	fprintf(stderr, "  %-8s %8s %8s %10s %12s %10s\n", "mode", "nDCG@10", "MAP", "recall@100",
		"ms/query", "docs/query");
	for (int i = 0; i < 3; i++) {
		if (m[i].ran)
			fprintf(stderr, "  %-8s %8.4f %8.4f %10.4f %12.2f %10.1f\n", m[i].name,
				m[i].ndcg, m[i].map, m[i].recall, m[i].ms, m[i].docs_ranked);
		else
			fprintf(stderr, "  %-8s skipped: no embedder\n", m[i].name);
	}
	fputc('\n', stderr);

	T_CHECK(m[0].map >= MAP_MIN, "BM25 MAP %.4f < %.2f", m[0].map, MAP_MIN);
	if (m[2].ran) {
		double best = m[0].map > m[1].map ? m[0].map : m[1].map;
		T_CHECK(m[2].map >= best, "hybrid MAP %.4f < max(BM25 %.4f, vector %.4f)", m[2].map,
			m[0].map, m[1].map);
	}

	index_close(ix);
	for (int i = 0; i < N_QUERIES; i++)
		free(queries[i]);
	rm_tmp_store();
	return t_done("test_cranfield");
}
