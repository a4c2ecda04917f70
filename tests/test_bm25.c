/*
 * test_bm25: BM25 from postings in memory (index/bm25.c) against FTS5's
 * own bm25(), on the 1,400 Cranfield documents (BM25 only, no embedder).
 *
 * For each of the 225 Cranfield questions (every word kept, stop words
 * too), the postings' top 50 must be FTS5's top 50 for the same OR query
 * (ORDER BY bm25, rowid): the same chunks in the same order, with the same
 * scores to the bit. Checked after the background build; after this
 * handle's own removals and additions; after another connection deleted
 * and inserted rows behind the handle's back; and after removing enough
 * documents that the postings are compacted (none masked after). Also: a word the tokenizer
 * splits in two is left to FTS5 (no answer from the postings), a handle
 * opened without bm25_memory keeps none, and index_search's BM25 mode
 * ranks with the postings once they are built.
 */
#define _GNU_SOURCE /* nftw */
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/index.h"
#include "index/store_internal.h"
#include "testutil.h"

#define K 50
#define MAX_Q 256

static char root[64];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb, (void)flag, (void)f;
	return remove(p);
}

static void rm_root(void)
{
	if (root[0])
		nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	T_REQUIRE(f, "%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	T_REQUIRE(b && fread(b, 1, (size_t)n, f) == (size_t)n, "%s: read", path);
	b[n] = 0;
	fclose(f);
	return b;
}

/* Records of a Cranfield file: the text after each ".I" line, field
 * markers (".T", ".W", ...) dropped. Returns how many. */
static int records(char *all, char **out, int max)
{
	int n = 0;
	char *rec = NULL;
	for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strncmp(line, ".I ", 3)) {
			if (n == max)
				break;
			rec = out[n++] = calloc(1, 1);
			continue;
		}
		if (!rec || (line[0] == '.' && isupper((unsigned char)line[1]) && !line[2]))
			continue;
		size_t a = strlen(rec), b = strlen(line);
		rec = realloc(rec, a + b + 2);
		T_REQUIRE(rec, "out of memory");
		memcpy(rec + a, line, b);
		rec[a + b] = '\n';
		rec[a + b + 1] = 0;
		out[n - 1] = rec;
	}
	return n;
}

struct query {
	char *w[64];
	int n;
};

/* The question's distinct words: runs of letters, digits and non-ASCII
 * bytes, lowercased (as search.c reads a question, stop words kept). */
static void words_of(const char *q, struct query *out)
{
	out->n = 0;
	for (const char *p = q; *p && out->n < 64;) {
		if (!isalnum((unsigned char)*p) && (unsigned char)*p < 0x80) {
			p++;
			continue;
		}
		const char *s = p;
		while (*p && (isalnum((unsigned char)*p) || (unsigned char)*p >= 0x80))
			p++;
		char *w = strndup(s, (size_t)(p - s));
		for (char *c = w; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		int dup = 0;
		for (int i = 0; i < out->n && !dup; i++)
			dup = !strcmp(out->w[i], w);
		if (dup)
			free(w);
		else
			out->w[out->n++] = w;
	}
}

static sqlite3 *fts; /* a connection of the test's own */

/* FTS5's top K for the OR of q's words: ids and -bm25. */
static int fts_top(const struct query *q, int64_t *ids, double *scores)
{
	char match[4096] = "";
	for (int i = 0; i < q->n; i++)
		snprintf(match + strlen(match), sizeof match - strlen(match), "%s\"%s\"",
			 i ? " OR " : "", q->w[i]);
	sqlite3_stmt *st;
	T_REQUIRE(sqlite3_prepare_v2(fts, "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE"
					  " chunks_fts MATCH ? ORDER BY bm25(chunks_fts), rowid LIMIT ?",
				     -1, &st, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(fts));
	sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, K);
	int n = 0, s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		ids[n] = sqlite3_column_int64(st, 0);
		scores[n++] = -sqlite3_column_double(st, 1);
	}
	T_REQUIRE(s == SQLITE_DONE, "FTS5 query %s: %s", match, sqlite3_errmsg(fts));
	sqlite3_finalize(st);
	return n;
}

static int mem_top(struct index *ix, const struct query *q, int64_t *ids, double *scores, int *n)
{
	pthread_mutex_lock(&ix->mu);
	int r = ix_bm25_search(ix, q->w, q->n, K, ids, scores, n);
	pthread_mutex_unlock(&ix->mu);
	return r;
}

/* Every question: the postings' top K is FTS5's, to the bit. */
static void compare_all(const char *what, struct index *ix, struct query *qs, int nq)
{
	int bad = 0, rows = 0;
	for (int i = 0; i < nq; i++) {
		int64_t a[K], b[K];
		double sa[K], sb[K];
		int na = 0;
		int r = mem_top(ix, &qs[i], a, sa, &na);
		T_CHECK(r == 1, "%s: question %d not answered from the postings", what, i + 1);
		int nb = fts_top(&qs[i], b, sb);
		int same = r == 1 && na == nb;
		for (int j = 0; same && j < na; j++)
			same = a[j] == b[j] && sa[j] == sb[j];
		if (!same && bad++ < 3) {
			fprintf(stderr, "%s: question %d: %d hits vs FTS5's %d\n", what, i + 1, na, nb);
			for (int j = 0; j < (na > nb ? na : nb) && j < 12; j++)
				fprintf(stderr, "  %2d: %6lld %.17g | %6lld %.17g\n", j + 1,
					j < na ? (long long)a[j] : -1LL, j < na ? sa[j] : 0.0,
					j < nb ? (long long)b[j] : -1LL, j < nb ? sb[j] : 0.0);
		}
		rows += nb;
	}
	T_CHECK(!bad, "%s: %d of %d questions ranked differently from FTS5", what, bad, nq);
	T_CHECK(rows > nq * K / 2, "%s: only %d hits over %d questions", what, rows, nq);
	fprintf(stderr, "%s: %d questions, %d hits, all as FTS5 ranks them\n", what, nq, rows);
}

static int64_t scalar(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	T_REQUIRE(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
		  sqlite3_errmsg(db));
	T_REQUIRE(sqlite3_step(st) == SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(db));
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void wait_ready(struct index *ix)
{
	struct index_info in;
	for (int i = 0; i < 6000; i++) {
		index_info(ix, &in);
		if (in.bm25_memory != BM25_MEM_BUILDING)
			break;
		usleep(10000);
	}
	T_REQUIRE(in.bm25_memory == BM25_MEM_READY, "postings not built (state %d)", in.bm25_memory);
}

static void add_files(struct index *ix, char **keys, int n)
{
	char err[1024];
	int rc = index_add(ix, (const char *const *)keys, NULL, (size_t)n, NULL, NULL, err, sizeof err);
	T_REQUIRE(!rc, "index_add: %s", err);
}

int main(void)
{
	static char *docs[1500], *qtext[MAX_Q];
	char *all = slurp(t_data("ir/cranfield/cran.all.1400"));
	int nd = records(all, docs, 1500);
	free(all);
	T_REQUIRE(nd == 1400, "%d Cranfield documents", nd);
	all = slurp(t_data("ir/cranfield/cran.qry"));
	int nq = records(all, qtext, MAX_Q);
	free(all);
	T_REQUIRE(nq == 225, "%d Cranfield questions", nq);
	static struct query qs[MAX_Q];
	for (int i = 0; i < nq; i++)
		words_of(qtext[i], &qs[i]);

	snprintf(root, sizeof root, "/tmp/seekfs-bm25-XXXXXX");
	T_REQUIRE(mkdtemp(root), "mkdtemp: %s", strerror(errno));
	atexit(rm_root);
	char path[256], ixdir[128];
	static char *keys[1500];
	for (int i = 0; i < nd; i++) {
		snprintf(path, sizeof path, "%s/d%04d.txt", root, i + 1);
		FILE *f = fopen(path, "w");
		T_REQUIRE(f && fputs(docs[i], f) >= 0 && !fclose(f), "%s", path);
		keys[i] = strdup(path);
	}
	snprintf(ixdir, sizeof ixdir, "%s/index", root);
	char err[1024];
	struct index *ix;
	struct index_opts plain = {.no_embedder = 1};
	T_REQUIRE(!index_open(ixdir, &plain, &ix, err, sizeof err), "index_open: %s", err);
	add_files(ix, keys, 1000);
	struct index_info in;
	index_info(ix, &in);
	T_CHECK(in.bm25_memory == BM25_MEM_OFF, "postings without bm25_memory (state %d)",
		in.bm25_memory);
	int64_t ids[K];
	double sc[K];
	int n;
	T_CHECK(mem_top(ix, &qs[0], ids, sc, &n) == 0, "postings answered on a handle without them");
	index_close(ix);

	/* the build (in the background), then while more arrive on this handle */
	struct index_opts o = {.no_embedder = 1, .bm25_memory = 1};
	T_REQUIRE(!index_open(ixdir, &o, &ix, err, sizeof err), "index_open: %s", err);
	snprintf(path, sizeof path, "%s/seekfs.db", ixdir);
	T_REQUIRE(sqlite3_open_v2(path, &fts, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK,
		  "%s: %s", path, sqlite3_errmsg(fts));
	sqlite3_busy_timeout(fts, 10000);
	wait_ready(ix);
	compare_all("built", ix, qs, nq);
	add_files(ix, keys + 1000, nd - 1000);
	for (int i = 0; i < 100; i++)
		T_REQUIRE(!index_remove(ix, keys[i * 7], err, sizeof err), "index_remove: %s", err);
	compare_all("after this handle added 400 and removed 100", ix, qs, nq);
	int64_t rows, masked;
	pthread_mutex_lock(&ix->mu);
	ix_bm25_counts(ix, &rows, &masked);
	pthread_mutex_unlock(&ix->mu);
	T_CHECK(rows == scalar(fts, "SELECT count(*) FROM chunks") && masked > 0,
		"%lld rows held, %lld masked", (long long)rows, (long long)masked);

	/* another connection changes the table */
	char *e = NULL;
	T_REQUIRE(sqlite3_exec(fts,
			       "PRAGMA foreign_keys=ON;"
			       "DELETE FROM docs WHERE id IN (SELECT id FROM docs ORDER BY id DESC LIMIT 20);"
			       "INSERT INTO chunks(doc_id, seq, src_start, src_end, n_tokens, text)"
			       "  SELECT doc_id, 99, 0, 0, 0, text || ' boundary layer flutter'"
			       "  FROM chunks ORDER BY id LIMIT 30;",
			       NULL, NULL, &e) == SQLITE_OK, "foreign change: %s", e);
	compare_all("after another connection removed 20 documents and added 30 chunks", ix, qs, nq);

	/* removals past a quarter of the rows: compacted */
	for (int i = 0; i < nd; i++)
		if (i % 7 && i % 3 == 1)
			index_remove(ix, keys[i], err, sizeof err);
	compare_all("after compaction", ix, qs, nq);
	pthread_mutex_lock(&ix->mu);
	ix_bm25_counts(ix, &rows, &masked);
	pthread_mutex_unlock(&ix->mu);
	T_CHECK(rows == scalar(fts, "SELECT count(*) FROM chunks") && masked == 0,
		"%lld rows held, %lld masked: not compacted", (long long)rows, (long long)masked);

	/* a word FTS5 reads as two tokens: left to FTS5 */
	struct query split = {.n = 2};
	split.w[0] = "wing";
	split.w[1] = "lift\xe2\x80\x94" "drag"; /* an em dash inside */
	T_CHECK(mem_top(ix, &split, ids, sc, &n) == 0, "a two-token word answered from the postings");

	/* index_search's BM25 mode ranks with the postings */
	struct query q = {.n = 3, .w = {"boundary", "layer", "transition"}};
	int64_t b[K];
	double sb[K];
	int nb = fts_top(&q, b, sb);
	struct search_opts so = {.k = 10, .mode = SEARCH_BM25};
	struct search_hit *h;
	int nh;
	T_REQUIRE(!index_search(ix, "boundary layer transition", &so, &h, &nh, err, sizeof err),
		  "index_search: %s", err);
	T_CHECK(nh == 10 && nb >= 10, "%d hits", nh);
	for (int i = 0; i < nh && i < nb; i++)
		T_CHECK(h[i].chunk_id == b[i] && h[i].score == sb[i],
			"hit %d: chunk %lld score %.17g, FTS5: %lld %.17g", i + 1,
			(long long)h[i].chunk_id, h[i].score, (long long)b[i], sb[i]);
	search_hits_free(h, nh);

	sqlite3_close(fts);
	index_close(ix);
	for (int i = 0; i < nd; i++) {
		free(docs[i]);
		free(keys[i]);
	}
	for (int i = 0; i < nq; i++) {
		free(qtext[i]);
		for (int j = 0; j < qs[i].n; j++)
			free(qs[i].w[j]);
	}
	return t_done("test_bm25");
}
