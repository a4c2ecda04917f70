/*
 * bench_index: figures for the store's index on real text (the Cranfield
 * collection, shared data ir/cranfield), through the public index API.
 *
 *  1. ingest: the Cranfield documents (title, blank line, text; one .txt
 *     each) through index_add with the real embedder: documents/s,
 *     chunks/s, embedding tokens/s; and the same without an embedder, for
 *     what is not embedding.
 *  2. search latency at N chunks (default 100,000) in BM25, vector and
 *     hybrid mode, k = 10, over the 225 Cranfield queries. Embedding N
 *     chunks would take hours here, so the big store is built as: N
 *     one-chunk documents (windows of 40-60 consecutive words of the
 *     corpus, distinct) indexed without an embedder; the first S chunks
 *     embedded for real (index_embed_pending); every other chunk given the
 *     vector of sampled chunk (id - 1) mod S plus Gaussian noise,
 *     re-normalised, written into chunks.vec with our own SQLite
 *     connection while no index is open (meta 'gen' bumped in the same
 *     transaction, so the next index_open rebuilds FAISS from SQLite). A
 *     flat inner-product search costs the same whatever the values.
 *  3. the time from writing a changed 10 KB document to its first correct
 *     hit (index_add, then a hybrid search for a word only it contains).
 *  4. the goals, met or not.
 *
 * A benchmark, not a test: it checks only that the figures mean something
 * (hits found, counts as expected). Figures go to stdout, progress to
 * stderr. Stores live in a mkdtemp folder under /tmp, removed at the end
 * unless --keep DIR (then DIR holds them, and a search store of the same
 * N found there is reused).
 */
#define _GNU_SOURCE /* nftw, getopt_long */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index/index.h"

#ifndef BENCH_DATA
#define BENCH_DATA "../shared/data"
#endif

#define MAX_DOCS 1400
#define MAX_QUERIES 225
#define HIT_K 10
#define CHANGED_BYTES 10240
#define GOAL_CHANGE_S 1.0
#define GOAL_HYBRID_P99_MS 20.0
#define GOAL_CHUNKS 100000

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static char tmp_root[64]; /* removed at exit when set */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void rm_tmp_root(void)
{
	if (tmp_root[0])
		rm_tree(tmp_root);
	tmp_root[0] = 0;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "bench_index: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

static void mkdir_or_die(const char *d)
{
	if (mkdir(d, 0755) && errno != EEXIST)
		die("%s: %s", d, strerror(errno));
}

/* ---- the collection ---------------------------------------------------- */

struct str {
	char *s;
	size_t n, cap;
};

static void str_add(struct str *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		if (!(b->s = realloc(b->s, b->cap)))
			die("out of memory");
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = 0;
}

struct collection {
	int n_docs, n_queries;
	int id[MAX_DOCS];
	struct str title[MAX_DOCS], text[MAX_DOCS]; /* lines as in the file */
	char *query[MAX_QUERIES];                    /* .W lines joined by spaces */
	char **words;    /* every whitespace-separated word of the .W texts, in order */
	size_t n_words;
	char *wbuf;      /* the words' storage */
};

/* The file's lines, each NUL-terminated in place (CR LF or LF). */
static char **read_lines(const char *path, char **buf, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die("%s: %s (set SEEKFS_DATA to the shared data folder)", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = xmalloc((size_t)len + 1);
	if (fread(b, 1, (size_t)len, f) != (size_t)len)
		die("%s: short read", path);
	fclose(f);
	b[len] = 0;
	size_t cap = 1024, k = 0;
	char **v = xmalloc(cap * sizeof *v);
	for (char *p = b; p < b + len;) {
		char *e = memchr(p, '\n', (size_t)(b + len - p));
		if (!e)
			e = b + len;
		*e = 0;
		if (e > p && e[-1] == '\r')
			e[-1] = 0;
		if (k == cap && !(v = realloc(v, (cap *= 2) * sizeof *v)))
			die("out of memory");
		v[k++] = p;
		p = e + 1;
	}
	*buf = b;
	*n = k;
	return v;
}

static int is_field(const char *line)
{
	return line[0] == '.' && line[1] && strchr("ITABW", line[1]) && (!line[2] || line[2] == ' ');
}

/* Records of a Cranfield file: for each .I, calls back with the record's
 * T and W fields (lines kept). */
static void read_records(const char *path, void (*fn)(void *, int id, struct str *t, struct str *w),
			 void *ctx)
{
	char *buf;
	size_t n;
	char **l = read_lines(path, &buf, &n);
	for (size_t i = 0; i < n;) {
		if (strncmp(l[i], ".I ", 3)) {
			i++;
			continue;
		}
		int id = atoi(l[i] + 3);
		struct str t = {0}, w = {0};
		char field = 0;
		for (i++; i < n && strncmp(l[i], ".I ", 3); i++) {
			if (is_field(l[i])) {
				field = l[i][1];
				continue;
			}
			struct str *b = field == 'T' ? &t : field == 'W' ? &w : NULL;
			if (b) {
				str_add(b, l[i], strlen(l[i]));
				str_add(b, "\n", 1);
			}
		}
		fn(ctx, id, &t, &w);
	}
	free(l);
	free(buf);
}

static void on_doc(void *ctx, int id, struct str *t, struct str *w)
{
	struct collection *c = ctx;
	if (c->n_docs == MAX_DOCS)
		die("cran.all.1400: more than %d documents", MAX_DOCS);
	c->id[c->n_docs] = id;
	c->title[c->n_docs] = *t;
	c->text[c->n_docs] = *w;
	c->n_docs++;
}

static void on_query(void *ctx, int id, struct str *t, struct str *w)
{
	struct collection *c = ctx;
	(void)id;
	free(t->s);
	if (c->n_queries == MAX_QUERIES)
		die("cran.qry: more than %d queries", MAX_QUERIES);
	for (size_t i = 0; i < w->n; i++)
		if (w->s[i] == '\n')
			w->s[i] = ' ';
	c->query[c->n_queries++] = w->s ? w->s : strdup("");
}

static void load_collection(struct collection *c)
{
	const char *root = getenv("SEEKFS_DATA") ? getenv("SEEKFS_DATA") : BENCH_DATA;
	char path[4200];
	snprintf(path, sizeof path, "%s/ir/cranfield/cran.all.1400", root);
	read_records(path, on_doc, c);
	snprintf(path, sizeof path, "%s/ir/cranfield/cran.qry", root);
	read_records(path, on_query, c);
	if (c->n_docs != MAX_DOCS || c->n_queries != MAX_QUERIES)
		die("%s/ir/cranfield: %d documents and %d queries, want %d and %d", root, c->n_docs,
		    c->n_queries, MAX_DOCS, MAX_QUERIES);
	/* the words of the texts, in order: the material of synthetic documents */
	size_t total = 0;
	for (int i = 0; i < c->n_docs; i++)
		total += c->text[i].n + 1;
	c->wbuf = xmalloc(total + 1);
	char *p = c->wbuf;
	for (int i = 0; i < c->n_docs; i++) {
		if (c->text[i].n)
			memcpy(p, c->text[i].s, c->text[i].n);
		p += c->text[i].n;
		*p++ = ' ';
	}
	*p = 0;
	size_t cap = total / 2 + 1;
	c->words = xmalloc(cap * sizeof *c->words);
	for (char *s = strtok(c->wbuf, " \t\n"); s; s = strtok(NULL, " \t\n"))
		c->words[c->n_words++] = s;
}

/* Words [at, at + n) of the corpus (wrapping around) into b, a line break
 * every 12 words and a blank line every 120. */
static void add_words(struct str *b, const struct collection *c, size_t at, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *w = c->words[(at + i) % c->n_words];
		if (i)
			str_add(b, i % 120 == 0 ? "\n\n" : i % 12 == 0 ? "\n" : " ", i % 120 == 0 ? 2 : 1);
		str_add(b, w, strlen(w));
	}
	str_add(b, "\n", 1);
}

static void write_file(const char *path, const char *s, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(s, 1, n, f) != n || fclose(f))
		die("%s: %s", path, strerror(errno));
}

/* ---- figures ----------------------------------------------------------- */

struct lat {
	double *v; /* seconds */
	int n, cap;
};

static void lat_add(struct lat *l, double s)
{
	if (l->n == l->cap && !(l->v = realloc(l->v, (size_t)(l->cap = l->cap ? l->cap * 2 : 256) *
							 sizeof *l->v)))
		die("out of memory");
	l->v[l->n++] = s;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile p (0-100) of l, seconds; sorts l. */
static double pct(struct lat *l, double p)
{
	if (!l->n)
		return NAN;
	qsort(l->v, (size_t)l->n, sizeof *l->v, cmp_dbl);
	int r = (int)ceil(p / 100 * l->n);
	return l->v[r < 1 ? 0 : r > l->n ? l->n - 1 : r - 1];
}

static double mean(const struct lat *l)
{
	double s = 0;
	for (int i = 0; i < l->n; i++)
		s += l->v[i];
	return l->n ? s / l->n : NAN;
}

static void lat_row(const char *name, struct lat *l)
{
	printf("  %-22s %7d %9.2f %9.2f %9.2f %9.2f %9.2f\n", name, l->n, pct(l, 50) * 1e3,
	       pct(l, 90) * 1e3, pct(l, 99) * 1e3, mean(l) * 1e3, pct(l, 100) * 1e3);
}

static void lat_header(void)
{
	printf("  %-22s %7s %9s %9s %9s %9s %9s\n", "", "n", "p50 ms", "p90 ms", "p99 ms", "mean ms",
	       "max ms");
}

/* ---- the index --------------------------------------------------------- */

struct counts {
	long indexed, unchanged, reused, skipped, chunks, embedded;
	const char *progress; /* non-NULL: a progress line on stderr under this name */
	size_t total;         /* documents expected, for the progress line */
	double t0;
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
		fprintf(stderr, "bench_index: %s skipped: %s\n", key, r->reason);
		break;
	}
	c->chunks += r->n_chunks;
	c->embedded += r->n_embedded;
	size_t done = (size_t)(c->indexed + c->unchanged + c->reused + c->skipped);
	size_t step = c->total / 50 > 100 ? c->total / 50 : 100;
	if (c->progress && (done % step == 0 || done == c->total))
		fprintf(stderr, "\rbench_index: %s: %zu/%zu documents, %ld chunks, %.0f s   %s",
			c->progress, done, c->total, c->chunks, now() - c->t0,
			done == c->total ? "\n" : "");
}

/* --hnsw: stores made here use HNSW instead of the flat index */
static int use_hnsw;

static struct index *open_ix_o(const char *dir, const char *embedder, int threads, int bm25_memory,
			       int read_only)
{
	struct index_opts o = {.embedder = embedder, .no_embedder = !embedder, .n_threads = threads,
			       .vectors = use_hnsw ? IX_VEC_HNSW : IX_VEC_FLAT,
			       .bm25_memory = bm25_memory, .read_only = read_only};
	struct index *ix;
	char err[1024];
	if (index_open(dir, &o, &ix, err, sizeof err))
		die("index_open %s: %s", dir, err);
	return ix;
}

static struct index *open_ix(const char *dir, const char *embedder, int threads)
{
	return open_ix_o(dir, embedder, threads, 0, 0);
}

static void add_or_die(struct index *ix, const char *const *keys, const char *const *files, size_t n,
		       struct counts *c)
{
	char err[1024];
	if (index_add(ix, keys, files, n, on_ack, c, err, sizeof err))
		die("index_add: %s", err);
}

/* Our own connection to a store's database (no index open on it while
 * we write). */
static sqlite3 *db_open(const char *ixdir)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/seekfs.db", ixdir);
	sqlite3 *db;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		die("%s: %s", path, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 10000);
	return db;
}

static int64_t db_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die("%s: %s", sql, sqlite3_errmsg(db));
	int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_finalize(st);
	return v;
}

static void db_exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		die("%s: %s", sql, sqlite3_errmsg(db));
}

/* Keys "NAME" and files "DOCS/NAME" for n documents named by fmt(i). */
struct names {
	char **keys, **files;
	size_t n;
};

static void names_make(struct names *nm, const char *docs, const char *fmt, size_t n)
{
	nm->keys = xmalloc(n * sizeof *nm->keys);
	nm->files = xmalloc(n * sizeof *nm->files);
	nm->n = n;
	for (size_t i = 0; i < n; i++) {
		char k[64], f[4300];
		snprintf(k, sizeof k, fmt, (int)i);
		snprintf(f, sizeof f, "%s/%s", docs, k);
		if (!(nm->keys[i] = strdup(k)) || !(nm->files[i] = strdup(f)))
			die("out of memory");
	}
}

static void names_free(struct names *nm)
{
	for (size_t i = 0; i < nm->n; i++) {
		free(nm->keys[i]);
		free(nm->files[i]);
	}
	free(nm->keys);
	free(nm->files);
}

/* ---- 1. ingest --------------------------------------------------------- */

static void ingest_once(const char *store, const struct names *nm, const char *embedder,
			int threads, double *secs, struct counts *c, int64_t *tokens)
{
	char ixdir[2400];
	snprintf(ixdir, sizeof ixdir, "%s/index", store);
	rm_tree(ixdir);
	struct index *ix = open_ix(ixdir, embedder, threads);
	double t0 = now();
	*c = (struct counts){.progress = embedder ? "ingest" : "ingest, no embedder",
			     .total = nm->n, .t0 = t0};
	add_or_die(ix, (const char *const *)nm->keys, (const char *const *)nm->files, nm->n, c);
	*secs = now() - t0;
	index_close(ix);
	sqlite3 *db = db_open(ixdir);
	/* what the embedder was fed: the chunk's tokens plus [CLS] and [SEP] */
	*tokens = db_int(db, "SELECT COALESCE(SUM(n_tokens), 0) + 2 * count(*) FROM chunks");
	int64_t n = db_int(db, "SELECT count(*) FROM chunks");
	if (n != c->chunks)
		die("ingest: %" PRId64 " chunks in SQLite, %ld acknowledged", n, c->chunks);
	sqlite3_close(db);
}

static void bench_ingest(const struct collection *col, const char *root, int n_docs,
			 const char *embedder, int threads)
{
	char store[2200], docs[2400];
	snprintf(store, sizeof store, "%s/ingest", root);
	snprintf(docs, sizeof docs, "%s/docs", store);
	mkdir_or_die(store);
	mkdir_or_die(docs);
	struct names nm;
	names_make(&nm, docs, "%d.txt", (size_t)n_docs);
	int64_t bytes = 0;
	for (int i = 0; i < n_docs; i++) {
		/* name by position: keys[i] is "i.txt" for document col->id[i] */
		struct str b = {0};
		const struct str *t = &col->title[i], *w = &col->text[i];
		if (t->n)
			str_add(&b, t->s, t->n);
		str_add(&b, "\n", 1);
		if (w->n)
			str_add(&b, w->s, w->n);
		write_file(nm.files[i], b.s, b.n);
		bytes += (int64_t)b.n;
		free(b.s);
	}
	double t_emb, t_bm;
	struct counts ce, cb;
	int64_t tok_e, tok_b;
	ingest_once(store, &nm, embedder, threads, &t_emb, &ce, &tok_e);
	ingest_once(store, &nm, NULL, threads, &t_bm, &cb, &tok_b);
	printf("\n== 1. ingest: %d Cranfield documents (%.2f MB), index_add, %d threads ==\n", n_docs,
	       bytes / 1e6, threads);
	printf("  with the embedder:    %.1f s  %8.1f docs/s %8.1f chunks/s %9.0f tokens/s"
	       "   (%ld chunks, %" PRId64 " tokens incl. [CLS]/[SEP], %ld embedded)\n",
	       t_emb, ce.indexed / t_emb, ce.chunks / t_emb, tok_e / t_emb, ce.chunks, tok_e,
	       ce.embedded);
	printf("  without an embedder:  %.1f s  %8.1f docs/s %8.1f chunks/s"
	       "   (BM25 only; word-count chunking, %ld chunks)\n",
	       t_bm, cb.indexed / t_bm, cb.chunks / t_bm, cb.chunks);
	if (ce.skipped || cb.skipped)
		printf("  skipped: %ld / %ld documents\n", ce.skipped, cb.skipped);
	printf("  (the FAISS file is written by index_close, not counted)\n");
	names_free(&nm);
}

/* ---- 2. the big store --------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static double urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return ((double)(rng >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
}

static double gauss(void)
{
	return sqrt(-2 * log(urand())) * cos(2 * M_PI * urand());
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* Give every chunk without a vector the vector of sampled chunk
 * (id - 1) mod S plus noise of norm ~noise, re-normalised; bump 'gen' so
 * that FAISS is rebuilt from SQLite on the next open. Returns S. */
static int64_t perturb_vectors(const char *ixdir, double noise)
{
	sqlite3 *db = db_open(ixdir);
	db_exec(db, "BEGIN IMMEDIATE");
	int dim = (int)db_int(db, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'dim'");
	int64_t s = db_int(db, "SELECT count(*) FROM chunks WHERE vec IS NOT NULL");
	int64_t todo = db_int(db, "SELECT count(*) FROM chunks WHERE vec IS NULL");
	if (dim <= 0 || s <= 0)
		die("%s: no embedded sample (dim %d, %" PRId64 " vectors)", ixdir, dim, s);
	float *sample = xmalloc((size_t)s * dim * sizeof *sample);
	int64_t *ids = xmalloc((size_t)(todo > 0 ? todo : 1) * sizeof *ids);
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "SELECT vec FROM chunks WHERE vec IS NOT NULL ORDER BY id", -1, &st, NULL);
	for (int64_t i = 0; i < s && sqlite3_step(st) == SQLITE_ROW; i++) {
		if (sqlite3_column_bytes(st, 0) != dim * (int)sizeof(float))
			die("%s: a vector of %d bytes, want %d", ixdir, sqlite3_column_bytes(st, 0),
			    dim * (int)sizeof(float));
		memcpy(sample + (size_t)i * dim, sqlite3_column_blob(st, 0), (size_t)dim * sizeof(float));
	}
	sqlite3_finalize(st);
	sqlite3_prepare_v2(db, "SELECT id FROM chunks WHERE vec IS NULL ORDER BY id", -1, &st, NULL);
	int64_t n = 0;
	while (n < todo && sqlite3_step(st) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "UPDATE chunks SET vec = ? WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		die("update: %s", sqlite3_errmsg(db));
	float *v = xmalloc((size_t)dim * sizeof *v);
	const double sigma = noise / sqrt(dim);
	for (int64_t i = 0; i < n; i++) {
		const float *src = sample + (size_t)((ids[i] - 1) % s) * dim;
		double norm = 0;
		for (int d = 0; d < dim; d++) {
			v[d] = (float)(src[d] + sigma * gauss());
			norm += (double)v[d] * v[d];
		}
		for (int d = 0; d < dim; d++)
			v[d] = (float)(v[d] / sqrt(norm));
		sqlite3_reset(st);
		sqlite3_bind_blob(st, 1, v, dim * (int)sizeof(float), SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, ids[i]);
		if (sqlite3_step(st) != SQLITE_DONE)
			die("update: %s", sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	db_exec(db, "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'gen'");
	db_exec(db, "COMMIT");
	sqlite3_close(db);
	free(v);
	free(ids);
	free(sample);
	return s;
}

struct big_info {
	double t_files, t_ingest, t_embed, t_perturb;
	int64_t sample, sample_tokens, reused;
	int built;
};

/* Document i of the big store: words [off, off + len) of the corpus, with
 * (off, len) distinct for i < 21 * m (see below). */
static size_t small_doc(const struct collection *c, uint64_t m, uint64_t i, struct str *b)
{
	const uint64_t P = 7919; /* a prime not dividing m */
	uint64_t off = i * P % m, len = 40 + (i + i / m) % 21;
	b->n = 0;
	add_words(b, c, off, len);
	return b->n;
}

/* Build (or reuse, with --keep) STORE/index with n one-chunk documents,
 * vectors as described at the top. */
static void build_big(const struct collection *col, const char *store, int64_t n, int64_t s,
		      const char *embedder, int threads, struct big_info *bi)
{
	char ixdir[2400], docs[2400];
	snprintf(ixdir, sizeof ixdir, "%s/index", store);
	snprintf(docs, sizeof docs, "%s/docs", store);
	memset(bi, 0, sizeof *bi);
	char dbp[2600];
	snprintf(dbp, sizeof dbp, "%s/seekfs.db", ixdir);
	if (!access(dbp, F_OK)) {
		sqlite3 *db = db_open(ixdir);
		int64_t nc = db_int(db, "SELECT count(*) FROM chunks");
		int64_t nv = db_int(db, "SELECT count(*) FROM chunks WHERE vec IS NOT NULL");
		int64_t ns = db_int(db, "SELECT count(*) FROM meta WHERE key = 'embedder_id'");
		sqlite3_close(db);
		if (nc == n && nv == n && ns == 1) {
			fprintf(stderr, "bench_index: reusing the search store %s (%" PRId64 " chunks)\n",
				store, n);
			bi->sample = -1;
			return;
		}
		fprintf(stderr, "bench_index: %s holds %" PRId64 " chunks, %" PRId64
				" vectors: rebuilding it\n", store, nc, nv);
		rm_tree(store);
	}
	bi->built = 1;
	mkdir_or_die(store);
	mkdir_or_die(docs);

	/* m: offsets i * P mod m are distinct for i < m; lengths 40 + (i + i / m)
	 * mod 21 then differ between i and i + k m unless 21 | k (m + 1), so
	 * gcd(m + 1, 21) == 1 keeps windows distinct for i < 21 m */
	uint64_t m = col->n_words - 61;
	while (gcd(m + 1, 21) != 1 || m % 7919 == 0)
		m--;
	if ((uint64_t)n > 21 * m)
		die("-n %" PRId64 ": at most %" PRIu64 " distinct documents from this corpus", n, 21 * m);
	struct names nm;
	names_make(&nm, docs, "%07d.txt", (size_t)n);
	double t0 = now();
	struct str b = {0};
	for (int64_t i = 0; i < n; i++) {
		small_doc(col, m, (uint64_t)i, &b);
		write_file(nm.files[i], b.s, b.n);
		if (i % 10000 == 9999 || i == n - 1)
			fprintf(stderr, "\rbench_index: writing documents: %" PRId64 "/%" PRId64 "   ",
				i + 1, n);
	}
	free(b.s);
	fputc('\n', stderr);
	bi->t_files = now() - t0;

	/* BM25 only: fast */
	struct index *ix = open_ix(ixdir, NULL, threads);
	t0 = now();
	struct counts c = {.progress = "BM25-only ingest", .total = nm.n, .t0 = t0};
	add_or_die(ix, (const char *const *)nm.keys, (const char *const *)nm.files, nm.n, &c);
	bi->t_ingest = now() - t0;
	bi->reused = c.reused;
	index_close(ix);
	if (c.chunks != n || c.skipped)
		die("big store: %ld chunks from %" PRId64 " documents (%ld skipped), want one each",
		    c.chunks, n, c.skipped);
	names_free(&nm);

	/* the sample, embedded for real: the lowest ids */
	ix = open_ix(ixdir, embedder, threads);
	char err[1024];
	int64_t done = 0;
	t0 = now();
	for (int64_t k = 0; k < s;) {
		int64_t step = s - k < 256 ? s - k : 256, d;
		if (index_embed_pending(ix, step, &d, err, sizeof err))
			die("index_embed_pending: %s", err);
		if (!d)
			break;
		k += d;
		done += d;
		fprintf(stderr, "\rbench_index: embedding the sample: %" PRId64 "/%" PRId64
				" chunks, %.0f s   ", done, s, now() - t0);
	}
	fputc('\n', stderr);
	bi->t_embed = now() - t0;
	index_close(ix);

	t0 = now();
	fprintf(stderr, "bench_index: writing perturbed copies of the sample vectors\n");
	bi->sample = perturb_vectors(ixdir, 0.25);
	bi->t_perturb = now() - t0;
	sqlite3 *db = db_open(ixdir);
	char q[200];
	snprintf(q, sizeof q, "SELECT COALESCE(SUM(n_tokens), 0) + 2 * count(*) FROM "
			      "(SELECT n_tokens FROM chunks ORDER BY id LIMIT %" PRId64 ")", bi->sample);
	bi->sample_tokens = db_int(db, q);
	sqlite3_close(db);
}

/* The timed searches: the big store in each mode, and vector mode in a
 * one-chunk store (the query's embedding plus fixed costs). Interleaved
 * per query, so that load from elsewhere on the machine falls on every
 * mode alike. */
enum { M_BM25, M_VECTOR, M_HYBRID, M_EMBED, M_FTS5, N_MODES };
static const char *const mode_name[N_MODES] = {"bm25", "vector", "hybrid", "query embedding*",
					       "bm25, FTS5 ranking**"};

/* reps timed passes over the queries after one warm-up pass; hits[m]: the
 * mean number of hits per query. */
static void run_queries(struct index *ix, struct index *tiny, struct index *fts,
			const struct collection *col, int reps, struct lat *l, double *hits)
{
	static const enum search_mode mode[N_MODES] = {SEARCH_BM25, SEARCH_VECTOR, SEARCH_HYBRID,
						       SEARCH_VECTOR, SEARCH_BM25};
	struct index *const handle[N_MODES] = {ix, ix, ix, tiny, fts};
	long nh[N_MODES] = {0};
	for (int r = -1; r < reps; r++) {
		fprintf(stderr, "\rbench_index: searching: pass %d/%d%s   ", r + 2, reps + 1,
			r < 0 ? " (warm-up)" : "");
		for (int q = 0; q < col->n_queries; q++) {
			for (int m = 0; m < N_MODES; m++) {
				struct search_opts so = {.k = HIT_K, .mode = mode[m]};
				struct search_hit *h;
				int n;
				char err[1024];
				double t0 = now();
				if (index_search(handle[m], col->query[q], &so, &h, &n, err, sizeof err))
					die("%s search, query %d: %s", mode_name[m], q + 1, err);
				double t = now() - t0;
				search_hits_free(h, n);
				if (r >= 0) {
					lat_add(&l[m], t);
					nh[m] += n;
				}
			}
		}
	}
	fputc('\n', stderr);
	for (int m = 0; m < N_MODES; m++)
		hits[m] = (double)nh[m] / ((double)reps * col->n_queries);
}

/* ---- 3. a changed document --------------------------------------------- */

/* A ~10 KB document of Cranfield text (from word at) with word somewhere
 * in its middle. */
static void changed_doc(const struct collection *c, size_t at, const char *word, struct str *b)
{
	b->n = 0;
	size_t n1 = 700 + at % 300;
	add_words(b, c, at, n1);
	str_add(b, word, strlen(word));
	str_add(b, " ", 1);
	size_t i = at + n1;
	while (b->n < CHANGED_BYTES) {
		const char *w = c->words[i++ % c->n_words];
		str_add(b, w, strlen(w));
		str_add(b, (i - at) % 12 ? " " : "\n", 1);
	}
}

struct change_times {
	struct lat total, add, search;
	int worst_rank, missed;
};

/* Write key's file in STORE/docs with text b, index_add it, search
 * (hybrid) for word; times into ct unless r < 0 (the untimed first write). */
static void change_once(struct index *ix, const char *store, const struct str *b,
			const char *word, int r, const char *tag, struct change_times *ct)
{
	char file[2600];
	const char *key = "changed.txt";
	snprintf(file, sizeof file, "%s/docs/%s", store, key);
	const char *keys[1] = {key}, *files[1] = {file};
	struct counts c = {0};
	struct search_opts so = {.k = HIT_K, .mode = SEARCH_HYBRID};
	struct search_hit *h;
	int n;
	char err[1024];
	double t0 = now();
	write_file(file, b->s, b->n);
	add_or_die(ix, keys, files, 1, &c);
	double t1 = now();
	if (index_search(ix, word, &so, &h, &n, err, sizeof err))
		die("search %s: %s", word, err);
	double t2 = now();
	int rank = 0;
	for (int i = 0; i < n && !rank; i++)
		if (!strcmp(h[i].doc, key) && strstr(h[i].text, word))
			rank = i + 1;
	search_hits_free(h, n);
	if (c.indexed != 1)
		die("changed document: not indexed");
	if (r < 0)
		return;
	lat_add(&ct->total, t2 - t0);
	lat_add(&ct->add, t1 - t0);
	lat_add(&ct->search, t2 - t1);
	if (!rank)
		ct->missed++;
	else if (rank > ct->worst_rank)
		ct->worst_rank = rank;
	fprintf(stderr, "bench_index: change %d (%s): %.0f ms (add %.0f, search %.0f), %ld chunks,"
			" hit rank %d\n", r + 1, tag, (t2 - t0) * 1e3, (t1 - t0) * 1e3, (t2 - t1) * 1e3,
		c.chunks, rank);
}

static void change_cleanup(struct index *ix, const char *store)
{
	char file[2600], err[1024];
	snprintf(file, sizeof file, "%s/docs/changed.txt", store);
	if (index_remove(ix, "changed.txt", err, sizeof err)) /* leave the store as it was */
		die("index_remove changed.txt: %s", err);
	unlink(file);
}

/* reps changes of one document, each with a new unique word, alternately
 * in the big store and in the one-chunk store (so that load from elsewhere
 * falls on both alike); one untimed first write makes the document exist. */
static void bench_change(struct index *big, const char *big_store, struct index *tiny,
			 const char *tiny_store, const struct collection *col, int reps,
			 struct change_times *cb, struct change_times *ct)
{
	struct str b = {0};
	memset(cb, 0, sizeof *cb);
	memset(ct, 0, sizeof *ct);
	for (int r = -1; r < reps; r++) {
		char word[32];
		snprintf(word, sizeof word, "zqfresh%d", r + 2);
		changed_doc(col, (size_t)(r + 2) * 9973 % col->n_words, word, &b);
		change_once(big, big_store, &b, word, r, "big", cb);
		change_once(tiny, tiny_store, &b, word, r, "1-doc", ct);
	}
	free(b.s);
	change_cleanup(big, big_store);
	change_cleanup(tiny, tiny_store);
}

/* ---- main -------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_index [-t THREADS] [-n CHUNKS] [-s SAMPLE] [-d DOCS] [-r REPS]\n"
		"                   [-c CHANGES] [--embedder FILE.gguf] [--keep DIR] [--hnsw]\n"
		"  -t  embedding threads (default 2)\n"
		"  -n  chunks in the search store (default 100000)\n"
		"  -s  of which embedded for real (default 2000); the rest are perturbed copies\n"
		"  -d  Cranfield documents to ingest (default 1400; 0: skip the ingest figures)\n"
		"  -r  timed passes over the 225 queries per mode (default 3, after one warm-up)\n"
		"  -c  changed-document repetitions (default 5)\n"
		"  --embedder  default $SEEKFS_MODELS/all-MiniLM-L6-v2.gguf, else\n"
		"              ~/.local/share/seekfs/models/all-MiniLM-L6-v2.gguf\n"
		"  --keep DIR  keep the stores in DIR (a search store of the same size there is reused)\n"
		"  --hnsw      new stores index their vectors with HNSW32 instead of a flat index\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int threads = 2, n_docs = MAX_DOCS, reps = 3, changes = 5;
	int64_t n_chunks = GOAL_CHUNKS, sample = 2000;
	const char *embedder = NULL, *keep = NULL;
	static const struct option lo[] = {
		{"embedder", required_argument, NULL, 'e'},
		{"keep", required_argument, NULL, 'k'},
		{"hnsw", no_argument, NULL, 'H'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0},
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "t:n:s:d:r:c:h", lo, NULL)) != -1) {
		switch (opt) {
		case 't': threads = atoi(optarg); break;
		case 'n': n_chunks = atoll(optarg); break;
		case 's': sample = atoll(optarg); break;
		case 'd': n_docs = atoi(optarg); break;
		case 'r': reps = atoi(optarg); break;
		case 'c': changes = atoi(optarg); break;
		case 'e': embedder = optarg; break;
		case 'k': keep = optarg; break;
		case 'H': use_hnsw = 1; break;
		default: usage();
		}
	}
	if (optind != argc || threads < 1 || n_chunks < 1 || sample < 1 || n_docs < 0 ||
	    n_docs > MAX_DOCS || reps < 1 || changes < 1)
		usage();
	if (sample > n_chunks)
		sample = n_chunks;
	char emb[4200];
	if (!embedder) {
		const char *dir = getenv("SEEKFS_MODELS");
		if (dir && *dir)
			snprintf(emb, sizeof emb, "%s/all-MiniLM-L6-v2.gguf", dir);
		else
			snprintf(emb, sizeof emb, "%s/.local/share/seekfs/models/all-MiniLM-L6-v2.gguf",
				 getenv("HOME") ? getenv("HOME") : ".");
		embedder = emb;
	}
	if (access(embedder, R_OK))
		die("%s: %s (tools/setup.sh converts it; or give --embedder FILE.gguf)", embedder,
		    strerror(errno));

	setvbuf(stdout, NULL, _IOLBF, 0); /* figures as they come, into a file too */
	static struct collection col;
	load_collection(&col);

	char root[2048];
	if (keep) {
		snprintf(root, sizeof root, "%s", keep);
		mkdir_or_die(root);
	} else {
		snprintf(tmp_root, sizeof tmp_root, "/tmp/seekfs-bench-XXXXXX");
		if (!mkdtemp(tmp_root))
			die("mkdtemp: %s", strerror(errno));
		atexit(rm_tmp_root);
		snprintf(root, sizeof root, "%s", tmp_root);
	}
	fprintf(stderr, "bench_index: stores in %s%s\n", root, keep ? " (kept)" : "");
	const char *base = strrchr(embedder, '/');
	printf("bench_index: embedder %s, %d threads, corpus %zu words\n", base ? base + 1 : embedder,
	       threads, col.n_words);
	/* FAISS's OpenMP threads busy-wait after each search unless told not to,
	 * which shows in the figures: say how it was run */
	printf("  OMP_WAIT_POLICY=%s OMP_NUM_THREADS=%s\n",
	       getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "(unset)",
	       getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "(unset)");

	/* 1 */
	if (n_docs)
		bench_ingest(&col, root, n_docs, embedder, threads);
	fflush(stdout);

	/* 2 */
	char big[2200], ixdir[2400];
	snprintf(big, sizeof big, "%s/search", root);
	snprintf(ixdir, sizeof ixdir, "%s/index", big);
	struct big_info bi;
	build_big(&col, big, n_chunks, sample, embedder, threads, &bi);
	double t0 = now();
	struct index *ix = open_ix_o(ixdir, embedder, threads, 1, 0);
	double t_open = now() - t0;
	char err[1024];
	struct index_info in;
	do {
		usleep(1000);
		if (index_info(ix, &in))
			die("index_info failed");
	} while (in.bm25_memory == BM25_MEM_BUILDING);
	double t_bm25 = now() - t0;
	if (in.bm25_memory != BM25_MEM_READY)
		die("the BM25 postings were not built (state %d)", in.bm25_memory);
	t0 = now();
	if (index_persist(ix, err, sizeof err))
		die("index_persist: %s", err);
	double t_persist = now() - t0;
	if (index_info(ix, &in))
		die("index_info failed");
	/* HNSW keeps the vectors of chunks removed by earlier runs (skipped by search) */
	if (in.n_chunks != n_chunks || in.n_vectors < n_chunks ||
	    (in.n_vectors != n_chunks && strcmp(in.vectors, "hnsw")) || in.n_pending)
		die("search store: %" PRId64 " chunks, %" PRId64 " vectors, %" PRId64
		    " pending; want %" PRId64 " each, none pending", in.n_chunks, in.n_vectors,
		    in.n_pending, n_chunks);

	printf("\n== 2. search latency at %" PRId64 " chunks (%" PRId64 " one-chunk documents of "
	       "40-60 Cranfield words; %s vectors, dim %d) ==\n", in.n_chunks, in.n_docs,
	       in.vectors, in.dim);
	if (bi.built) {
		printf("  building it: files %.1f s; BM25-only index_add %.1f s (%.0f docs/s, %" PRId64
		       " reused as duplicates)\n", bi.t_files, bi.t_ingest, n_chunks / bi.t_ingest,
		       bi.reused);
		printf("  sample embedded for real: %" PRId64 " chunks in %.1f s (%.1f chunks/s, ~%.0f "
		       "tokens/s, index_embed_pending;\n    tokens as the chunker estimated them "
		       "without the tokenizer, + [CLS]/[SEP])\n", bi.sample, bi.t_embed,
		       bi.sample / bi.t_embed, bi.sample_tokens / bi.t_embed);
		if (bi.sample != sample)
			printf("  NOTE: asked index_embed_pending for %" PRId64 " chunks in steps of <= 256,"
			       " it embedded %" PRId64 "\n", sample, bi.sample);
		printf("  the other %" PRId64 " vectors are perturbed copies of the sample's (vector of "
		       "chunk (id-1) mod %" PRId64 " + Gaussian noise of norm ~0.25, re-normalised),"
		       " written in %.1f s\n", n_chunks - bi.sample, bi.sample, bi.t_perturb);
		printf("  (a flat inner-product search costs the same whatever the values)\n");
	} else {
		printf("  store reused from --keep; its vectors beyond the embedded sample are perturbed "
		       "copies (a flat search costs the same whatever the values)\n");
	}
	printf("  index_open with the embedder, FAISS rebuilt from SQLite: %.2f s; index_persist "
	       "(FAISS file): %.2f s\n", t_open, t_persist);
	printf("  BM25 postings in memory (bm25_memory, built by their own thread): ready %.2f s "
	       "after index_open began, %.1f MiB\n", t_bm25, in.bm25_bytes / 1048576.0);
	fflush(stdout);

	/* the one-chunk store, for the query embedding alone */
	char tiny[2200], tdocs[2400], tix[2400], tfile[2600];
	snprintf(tiny, sizeof tiny, "%s/tiny", root);
	snprintf(tdocs, sizeof tdocs, "%s/docs", tiny);
	snprintf(tix, sizeof tix, "%s/index", tiny);
	snprintf(tfile, sizeof tfile, "%s/one.txt", tdocs);
	rm_tree(tiny);
	mkdir_or_die(tiny);
	mkdir_or_die(tdocs);
	write_file(tfile, col.text[0].s, col.text[0].n);
	struct index *tx = open_ix(tix, embedder, threads);
	{
		const char *k[1] = {"one.txt"}, *f[1] = {tfile};
		struct counts c = {0};
		add_or_die(tx, k, f, 1, &c);
	}

	struct lat ls[N_MODES] = {{0}};
	double hits[N_MODES];
	/* FTS5's own ranking, through a read-only handle without the postings */
	struct index *fx = open_ix_o(ixdir, embedder, threads, 0, 1);
	run_queries(ix, tx, fx, &col, reps, ls, hits);
	index_close(fx);
	for (int m = 0; m < N_MODES; m++)
		if (hits[m] <= 0)
			die("%s search found nothing", mode_name[m]);
	printf("  per query, k=%d, %d queries x %d timed passes (after one warm-up pass), "
	       "modes interleaved per query:\n", HIT_K, col.n_queries, reps);
	lat_header();
	for (int m = 0; m < N_MODES; m++)
		lat_row(mode_name[m], &ls[m]);
	printf("  * vector search in a 1-chunk store: the query's embedding plus fixed costs\n");
	printf("  ** BM25 ranked by FTS5 (a handle without bm25_memory; in stores this large it leaves"
	       " out\n     words found in over a quarter of the chunks); bm25 and hybrid rank from "
	       "the postings in memory\n");
	printf("  hits/query: bm25 %.1f, vector %.1f, hybrid %.1f\n", hits[M_BM25], hits[M_VECTOR],
	       hits[M_HYBRID]);
	double m_b = mean(&ls[M_BM25]), m_v = mean(&ls[M_VECTOR]), m_h = mean(&ls[M_HYBRID]),
	       m_e = mean(&ls[M_EMBED]);
	printf("  means: vector = embedding %.2f + the rest (FAISS flat scan, hit rows) %.2f ms;\n"
	       "         hybrid = vector + %.2f ms (BM25 alone: %.2f ms)\n",
	       m_e * 1e3, (m_v - m_e) * 1e3, (m_h - m_v) * 1e3, m_b * 1e3);
	double p99_h = pct(&ls[M_HYBRID], 99);
	fflush(stdout);

	/* 3 */
	struct change_times cb, cs;
	bench_change(ix, big, tx, tiny, &col, changes, &cb, &cs);
	printf("\n== 3. a changed %d KB document: write, index_add, hybrid search (k=%d) for a word "
	       "only it holds ==\n", CHANGED_BYTES / 1024, HIT_K);
	printf("  %d changes of one document (after one untimed first write), each with a new word;"
	       "\n  alternately in the big store and in a 1-chunk store\n", changes);
	lat_header();
	lat_row("write to hit (big)", &cb.total);
	lat_row("  index_add", &cb.add);
	lat_row("  search", &cb.search);
	lat_row("same, 1-doc store", &cs.total);
	lat_row("  index_add", &cs.add);
	printf("  in %" PRId64 " chunks: hit found %d/%d times, worst rank %d; "
	       "median add, big - 1-doc store: %.0f ms\n", n_chunks,
	       changes - cb.missed, changes, cb.worst_rank, (pct(&cb.add, 50) - pct(&cs.add, 50)) * 1e3);
	double ch_med = pct(&cb.total, 50), ch_max = pct(&cb.total, 100);

	index_close(tx);
	t0 = now();
	index_close(ix);
	fprintf(stderr, "bench_index: index_close (FAISS written): %.2f s\n", now() - t0);

	if (!keep)
		fprintf(stderr, "bench_index: removing %s\n", root);
	/* 4 */
	int ok_change = !cb.missed && ch_max <= GOAL_CHANGE_S;
	int ok_p99 = p99_h * 1e3 < GOAL_HYBRID_P99_MS;
	printf("\n== goals ==\n");
	printf("  changed 10 KB document searchable within 1 s:  median %.2f s, max %.2f s%s  %s\n",
	       ch_med, ch_max, cb.missed ? " (hit missed)" : "", ok_change ? "met" : "NOT MET");
	printf("  hybrid p99 under 20 ms at 100,000 chunks:      p99 %.1f ms at %" PRId64 " chunks"
	       "%s  %s\n", p99_h * 1e3, n_chunks,
	       n_chunks == GOAL_CHUNKS ? "" : " (not the goal's size)",
	       ok_p99 ? "met" : "NOT MET");
	for (int m = 0; m < N_MODES; m++)
		free(ls[m].v);
	free(cb.total.v), free(cb.add.v), free(cb.search.v);
	free(cs.total.v), free(cs.add.v), free(cs.search.v);
	for (int i = 0; i < col.n_docs; i++)
		free(col.title[i].s), free(col.text[i].s);
	for (int i = 0; i < col.n_queries; i++)
		free(col.query[i]);
	free(col.words);
	free(col.wbuf);
	return 0;
}
