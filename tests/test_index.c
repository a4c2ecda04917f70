/*
 * test_index: the store's index (index/store.c, search.c, vectors.c)
 * through its API, on a fresh index in a temporary folder:
 *  - incremental: 1,000 small documents indexed, one changed, all re-added:
 *    only the changed one is indexed (and embedded) again; searches see the
 *    new word and no longer the old one;
 *  - a copy is reused without embedding; a rename keeps chunks and
 *    vectors; a removal drops exactly the document's chunks;
 *  - bad input (empty, binary, mislabelled, invalid UTF-8, too large, a
 *    newline in the name, a folder, a missing file) is indexed or skipped
 *    with a reason, never a crash; a 50 MB single-line file is indexed
 *    (BM25 index, raised size limit) with every chunk's byte range holding
 *    exactly its text;
 *  - a missing or damaged FAISS file is rebuilt from SQLite, and
 *    index_check then finds FAISS and SQLite agreeing;
 *  - a second writer is refused (-EBUSY) while a reader may open.
 * The lifecycle runs on an index with the embedder (all-MiniLM-L6-v2.gguf
 * in $SEEKFS_MODELS, else ~/.local/share/seekfs/models) when it is
 * installed, and always on one opened with no_embedder; without the
 * embedder the FAISS checks are skipped, saying so.
 */
#define _GNU_SOURCE /* nftw */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index/index.h"
#include "testutil.h"

#define N_SMALL 1000
/* Documents embedded by the embedder lifecycle: all of them, except under
 * AddressSanitizer, where embedding is several times slower (the BM25
 * lifecycle still indexes 1,000 there). */
#if defined(__SANITIZE_ADDRESS__)
#define N_SMALL_EMB 200
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define N_SMALL_EMB 200
#endif
#endif
#ifndef N_SMALL_EMB
#define N_SMALL_EMB N_SMALL
#endif
#define BIG_MB 50

/* ---- the temporary folder, removed at exit (T_REQUIRE exits too) ---------- */

static char root[64];

static void rm_root(void)
{
	if (root[0])
		t_rm_tree(root);
	root[0] = 0;
}

static void write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	T_REQUIRE(f, "%s: %s", path, strerror(errno));
	T_REQUIRE(fwrite(buf, 1, len, f) == len && !fclose(f), "%s: %s", path, strerror(errno));
}

static void write_str(const char *path, const char *s)
{
	write_file(path, s, strlen(s));
}

/* ---- acknowledgements ------------------------------------------------------ */

struct ackrec {
	char *key;
	struct index_add_result r;
};

struct acks {
	struct ackrec *v;
	size_t n, cap;
	size_t by[4]; /* per outcome */
	long embedded, chunks;
};

static void on_ack(void *ctx, const char *key, const char *file, const struct index_add_result *r)
{
	struct acks *a = ctx;
	(void)file;
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 256;
		a->v = realloc(a->v, a->cap * sizeof *a->v);
		T_REQUIRE(a->v, "out of memory");
	}
	a->v[a->n].key = strdup(key);
	a->v[a->n].r = *r;
	a->n++;
	a->by[r->outcome]++;
	a->embedded += r->n_embedded;
	a->chunks += r->n_chunks;
}

static void acks_free(struct acks *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i].key);
	free(a->v);
	memset(a, 0, sizeof *a);
}

static const struct index_add_result *ack_of(const struct acks *a, const char *key)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->v[i].key, key))
			return &a->v[i].r;
	return NULL;
}

static const char *outcome_name(enum index_outcome o)
{
	static const char *const N[] = {"indexed", "unchanged", "reused", "skipped"};
	return (unsigned)o < 4 ? N[o] : "?";
}

/* index_add of keys (files: the same or another list), acknowledged into a. */
static void add(struct index *ix, const char *const *keys, const char *const *files, size_t n,
		struct acks *a)
{
	char err[1024];
	memset(a, 0, sizeof *a);
	int rc = index_add(ix, keys, files, n, on_ack, a, err, sizeof err);
	T_REQUIRE(!rc, "index_add: %s (%d)", err, rc);
	T_CHECK(a->n == n, "%zu documents acknowledged of %zu", a->n, n);
}

static void add1(struct index *ix, const char *key, const char *file, struct index_add_result *r)
{
	struct acks a;
	add(ix, &key, file ? &file : NULL, 1, &a);
	T_REQUIRE(a.n == 1, "%s: not acknowledged", key);
	*r = a.v[0].r;
	acks_free(&a);
}

static int contains(const char *s, const char *sub)
{
	return s && strstr(s, sub) != NULL;
}

/* ---- looking ---------------------------------------------------------------- */

struct found {
	const char *key;
	int found, skipped, n_chunks;
	char reason[300];
	int64_t size;
};

static int find_cb(void *ctx, const struct index_doc *d)
{
	struct found *f = ctx;
	if (strcmp(d->key, f->key))
		return 0;
	f->found = 1;
	f->skipped = d->skipped;
	f->n_chunks = d->n_chunks;
	f->size = d->size;
	snprintf(f->reason, sizeof f->reason, "%s", d->reason ? d->reason : "");
	return 1;
}

static struct found listed(struct index *ix, const char *key)
{
	struct found f = {.key = key};
	char err[512];
	T_REQUIRE(!index_list(ix, find_cb, &f, err, sizeof err), "index_list: %s", err);
	return f;
}

static struct index_info info(struct index *ix)
{
	struct index_info in;
	T_REQUIRE(!index_info(ix, &in), "index_info failed");
	return in;
}

struct hits {
	struct search_hit *h;
	int n;
};

static struct hits search(struct index *ix, const char *q, enum search_mode mode, int k)
{
	struct search_opts so = {.k = k, .mode = mode};
	struct hits r;
	char err[512];
	int rc = index_search(ix, q, &so, &r.h, &r.n, err, sizeof err);
	T_REQUIRE(!rc, "index_search \"%s\": %s (%d)", q, err, rc);
	return r;
}

static void hits_free(struct hits *h)
{
	search_hits_free(h->h, h->n);
	h->h = NULL;
	h->n = 0;
}

/* Rank (1-based) of the first hit of doc, 0 if none. */
static int rank_of(const struct hits *h, const char *doc)
{
	for (int i = 0; i < h->n; i++)
		if (!strcmp(h->h[i].doc, doc))
			return i + 1;
	return 0;
}

static const char *top_doc(const struct hits *h)
{
	return h->n ? h->h[0].doc : "(no hits)";
}

static struct index *open_ix(const char *dir, const char *emb, int read_only, size_t max_bytes)
{
	struct index_opts o = {
		.embedder = emb,
		.no_embedder = !emb,
		.read_only = read_only,
		.max_doc_bytes = max_bytes,
	};
	struct index *ix;
	char err[1024];
	int rc = index_open(dir, &o, &ix, err, sizeof err);
	T_REQUIRE(!rc, "index_open %s: %s (%d)", dir, err, rc);
	return ix;
}

/* ---- documents ---------------------------------------------------------------- */

static const char *const WORDS[] = {
	"river", "mountain", "violin", "harbour", "glacier", "orchard", "lantern", "compass",
	"meadow", "volcano", "library", "bicycle", "telescope", "falcon", "cathedral", "desert",
	"lighthouse", "kettle", "saddle", "canyon", "tulip", "anchor", "chimney", "ferry",
	"marble", "quarry", "puzzle", "ribbon", "walnut", "blizzard", "carnival", "dolphin",
	"engine", "furnace", "garden", "hammock", "island", "jungle", "kayak", "ladder",
	"magnet", "needle", "oyster", "pepper", "quilt", "rocket", "satellite", "tractor",
	"umbrella", "vineyard",
};
#define N_WORDS (sizeof WORDS / sizeof *WORDS)

/* Document i: one or two sentences, with a word found in no other. */
static void small_doc(int i, char *buf, size_t n)
{
	const char *a = WORDS[i % N_WORDS], *b = WORDS[(i * 7 + 3) % N_WORDS];
	if (i % 3)
		snprintf(buf, n, "Document %d is about the %s and the %s. Its own marker is uq%04dx.",
			 i, a, b, i);
	else
		snprintf(buf, n, "Document %d is about the %s and the %s, marked uq%04dx.", i, a, b, i);
}

/* A document of several chunks (about 40 sentences). */
static char *long_doc(const char *marker)
{
	size_t cap = 8192, len = 0;
	char *s = malloc(cap);
	T_REQUIRE(s, "out of memory");
	for (int i = 0; i < 60; i++)
		len += (size_t)snprintf(s + len, cap - len,
					"Sentence %d of the long report on the %s near the %s mentions %s. ",
					i, WORDS[(i * 3) % N_WORDS], WORDS[(i * 11 + 5) % N_WORDS],
					marker);
	T_REQUIRE(len < cap, "long document too long");
	return s;
}

/* ---- 1. incremental: 1,000 documents, one changed ------------------------------- */

struct corpus {
	char dir[300];
	char **keys, **files;
	int n;
};

static void make_corpus(struct corpus *c, const char *dir, int n)
{
	snprintf(c->dir, sizeof c->dir, "%s", dir);
	T_REQUIRE(!mkdir(dir, 0755), "%s: %s", dir, strerror(errno));
	c->n = n;
	c->keys = calloc((size_t)n, sizeof *c->keys);
	c->files = calloc((size_t)n, sizeof *c->files);
	T_REQUIRE(c->keys && c->files, "out of memory");
	for (int i = 0; i < n; i++) {
		char text[256];
		small_doc(i, text, sizeof text);
		T_REQUIRE(asprintf(&c->keys[i], "doc-%04d.txt", i) > 0 &&
				  asprintf(&c->files[i], "%s/doc-%04d.txt", dir, i) > 0,
			  "out of memory");
		write_str(c->files[i], text);
	}
}

static void corpus_free(struct corpus *c)
{
	for (int i = 0; i < c->n; i++) {
		free(c->keys[i]);
		free(c->files[i]);
	}
	free(c->keys);
	free(c->files);
}

static void test_incremental(const char *what, struct index *ix, const struct corpus *c, int emb)
{
	struct acks a;
	double t0 = t_now();
	add(ix, (const char *const *)c->keys, (const char *const *)c->files, (size_t)c->n, &a);
	double t_add = t_now() - t0;
	T_CHECK(a.by[IX_INDEXED] == (size_t)c->n, "%s: %zu of %d indexed", what, a.by[IX_INDEXED],
		c->n);
	T_CHECK(a.chunks == c->n, "%s: %ld chunks for %d one-chunk documents", what, a.chunks, c->n);
	T_CHECK(a.embedded == (emb ? c->n : 0), "%s: %ld embedded", what, a.embedded);
	acks_free(&a);
	struct index_info in = info(ix);
	T_CHECK(in.n_docs == c->n && in.n_skipped == 0 && in.n_chunks == c->n,
		"%s: info: %lld docs, %lld skipped, %lld chunks", what, (long long)in.n_docs,
		(long long)in.n_skipped, (long long)in.n_chunks);
	T_CHECK(in.n_vectors == (emb ? c->n : 0) && in.n_pending == (emb ? 0 : c->n),
		"%s: info: %lld vectors, %lld pending", what, (long long)in.n_vectors,
		(long long)in.n_pending);
	T_CHECK(emb ? in.dim == 384 : in.dim == 0, "%s: info: dim %d", what, in.dim);

	/* each marker finds its document first */
	for (int i = 0; i < c->n; i += 97) {
		char q[32];
		snprintf(q, sizeof q, "uq%04dx", i);
		struct hits h = search(ix, q, SEARCH_BM25, 5);
		T_CHECK(h.n == 1 && !strcmp(top_doc(&h), c->keys[i]), "%s: \"%s\": %d hits, first %s",
			what, q, h.n, top_doc(&h));
		hits_free(&h);
	}

	/* change one document: its marker replaced by a new word */
	const int ch = c->n / 2;
	char text[256];
	small_doc(ch, text, sizeof text);
	char old[16];
	snprintf(old, sizeof old, "uq%04dx", ch);
	char *m = strstr(text, old);
	T_REQUIRE(m, "marker not in the text");
	memcpy(m, "zq9999k", 7);
	write_str(c->files[ch], text);

	t0 = t_now();
	add(ix, (const char *const *)c->keys, (const char *const *)c->files, (size_t)c->n, &a);
	double t_re = t_now() - t0;
	T_CHECK(a.by[IX_INDEXED] == 1 && a.by[IX_UNCHANGED] == (size_t)c->n - 1,
		"%s: re-add: %zu indexed, %zu unchanged, %zu reused, %zu skipped", what,
		a.by[IX_INDEXED], a.by[IX_UNCHANGED], a.by[IX_REUSED], a.by[IX_SKIPPED]);
	const struct index_add_result *r = ack_of(&a, c->keys[ch]);
	T_CHECK(r && r->outcome == IX_INDEXED && r->n_chunks == 1 &&
			r->n_embedded == (emb ? r->n_chunks : 0),
		"%s: changed document: %s, %d chunks, %d embedded", what,
		r ? outcome_name(r->outcome) : "not acknowledged", r ? r->n_chunks : -1,
		r ? r->n_embedded : -1);
	long other_embedded = 0;
	for (size_t i = 0; i < a.n; i++)
		if (strcmp(a.v[i].key, c->keys[ch]))
			other_embedded += a.v[i].r.n_embedded;
	T_CHECK(other_embedded == 0, "%s: %ld chunks of unchanged documents embedded", what,
		other_embedded);
	acks_free(&a);
	fprintf(stderr, "test_index: %s: %d documents indexed in %.2f s, re-added in %.2f s\n", what,
		c->n, t_add, t_re);

	struct hits h = search(ix, "zq9999k", SEARCH_BM25, 5);
	T_CHECK(h.n == 1 && !strcmp(top_doc(&h), c->keys[ch]), "%s: new word (bm25): %d hits, first %s",
		what, h.n, top_doc(&h));
	hits_free(&h);
	h = search(ix, "zq9999k", SEARCH_HYBRID, 5);
	T_CHECK(h.n >= 1 && !strcmp(top_doc(&h), c->keys[ch]), "%s: new word (hybrid): %d hits, first %s",
		what, h.n, top_doc(&h));
	hits_free(&h);
	h = search(ix, old, SEARCH_BM25, 5);
	T_CHECK(h.n == 0, "%s: the removed word still finds %d hits, first %s", what, h.n, top_doc(&h));
	hits_free(&h);
	in = info(ix);
	T_CHECK(in.n_docs == c->n && in.n_chunks == c->n && in.n_vectors == (emb ? c->n : 0),
		"%s: after the change: %lld docs, %lld chunks, %lld vectors", what,
		(long long)in.n_docs, (long long)in.n_chunks, (long long)in.n_vectors);
}

/* ---- 2. copy, rename, remove ------------------------------------------------------ */

static void test_copy_rename_remove(const char *what, struct index *ix, const char *dir, int emb)
{
	char f_long[512], f_copy[512];
	snprintf(f_long, sizeof f_long, "%s/long.txt", dir);
	snprintf(f_copy, sizeof f_copy, "%s/long-copy.txt", dir);
	char *text = long_doc("lq77longmark");
	write_str(f_long, text);
	write_str(f_copy, text);
	free(text);

	struct index_add_result r;
	add1(ix, "long.txt", f_long, &r);
	int nc = r.n_chunks;
	T_CHECK(r.outcome == IX_INDEXED && nc >= 2 && r.n_embedded == (emb ? nc : 0),
		"%s: long document: %s, %d chunks, %d embedded", what, outcome_name(r.outcome), nc,
		r.n_embedded);
	struct index_info in0 = info(ix);

	/* a copy under a new key: reused, nothing embedded */
	add1(ix, "long-copy.txt", f_copy, &r);
	T_CHECK(r.outcome == IX_REUSED && r.n_embedded == 0 && r.n_chunks == nc,
		"%s: copy: %s, %d chunks (want %d), %d embedded", what, outcome_name(r.outcome),
		r.n_chunks, nc, r.n_embedded);
	struct index_info in1 = info(ix);
	T_CHECK(in1.n_docs == in0.n_docs + 1 && in1.n_chunks == in0.n_chunks + nc &&
			in1.n_vectors == in0.n_vectors + (emb ? nc : 0) &&
			in1.n_embedded_total == in0.n_embedded_total,
		"%s: copy: info %lld docs, %lld chunks, %lld vectors, %lld embedded (before %lld, "
		"%lld, %lld, %lld)", what, (long long)in1.n_docs, (long long)in1.n_chunks,
		(long long)in1.n_vectors, (long long)in1.n_embedded_total, (long long)in0.n_docs,
		(long long)in0.n_chunks, (long long)in0.n_vectors, (long long)in0.n_embedded_total);
	struct found f = listed(ix, "long-copy.txt");
	T_CHECK(f.found && !f.skipped && f.n_chunks == nc, "%s: copy listed: %d, %d chunks", what,
		f.found, f.n_chunks);
	struct hits h = search(ix, "lq77longmark", SEARCH_BM25, 4 * nc);
	T_CHECK(h.n == 2 * nc && rank_of(&h, "long.txt") && rank_of(&h, "long-copy.txt"),
		"%s: copy: %d hits for the marker (want %d)", what, h.n, 2 * nc);
	int64_t copy_ids[64];
	int n_copy = 0;
	for (int i = 0; i < h.n && n_copy < 64; i++)
		if (!strcmp(h.h[i].doc, "long-copy.txt"))
			copy_ids[n_copy++] = h.h[i].chunk_id;
	hits_free(&h);
	if (emb) {
		/* the copy's vectors: a chunk's own text finds that chunk of both documents */
		h = search(ix, "Sentence 1 of the long report on the", SEARCH_VECTOR, 2);
		T_CHECK(h.n == 2 && rank_of(&h, "long.txt") && rank_of(&h, "long-copy.txt") &&
				h.h[0].score - h.h[1].score < 1e-5,
			"%s: copy: vector search finds %s then %s", what, top_doc(&h),
			h.n > 1 ? h.h[1].doc : "nothing");
		hits_free(&h);
	}

	/* rename: same chunks, same vectors, new key */
	char err[512];
	int rc = index_rename(ix, "long-copy.txt", "renamed.txt", err, sizeof err);
	T_CHECK(!rc, "%s: index_rename: %s", what, err);
	struct index_info in2 = info(ix);
	T_CHECK(in2.n_docs == in1.n_docs && in2.n_chunks == in1.n_chunks &&
			in2.n_vectors == in1.n_vectors && in2.n_embedded_total == in1.n_embedded_total,
		"%s: rename changed info: %lld docs, %lld chunks, %lld vectors", what,
		(long long)in2.n_docs, (long long)in2.n_chunks, (long long)in2.n_vectors);
	f = listed(ix, "renamed.txt");
	T_CHECK(f.found && f.n_chunks == nc, "%s: renamed: listed %d, %d chunks", what, f.found,
		f.n_chunks);
	T_CHECK(!listed(ix, "long-copy.txt").found, "%s: the old name is still listed", what);
	h = search(ix, "lq77longmark", SEARCH_BM25, 4 * nc);
	T_CHECK(h.n == 2 * nc && rank_of(&h, "renamed.txt") && !rank_of(&h, "long-copy.txt"),
		"%s: rename: %d hits, renamed at %d, old name at %d", what, h.n,
		rank_of(&h, "renamed.txt"), rank_of(&h, "long-copy.txt"));
	int same = 0;
	for (int i = 0; i < h.n; i++)
		for (int j = 0; j < n_copy; j++)
			same += !strcmp(h.h[i].doc, "renamed.txt") && h.h[i].chunk_id == copy_ids[j];
	T_CHECK(same == nc && n_copy == nc, "%s: rename: %d of %d chunks kept their ids", what,
		same, nc);
	hits_free(&h);
	if (emb) {
		h = search(ix, "Sentence 1 of the long report on the", SEARCH_VECTOR, 2);
		T_CHECK(h.n == 2 && rank_of(&h, "renamed.txt") && rank_of(&h, "long.txt"),
			"%s: rename: vector search finds %s", what, top_doc(&h));
		hits_free(&h);
	}
	rc = index_rename(ix, "long-copy.txt", "x.txt", err, sizeof err);
	T_CHECK(rc == -ENOENT, "%s: rename of an unknown key: %d", what, rc);

	/* remove: exactly its chunks go */
	rc = index_remove(ix, "renamed.txt", err, sizeof err);
	T_CHECK(!rc, "%s: index_remove: %s", what, err);
	struct index_info in3 = info(ix);
	T_CHECK(in3.n_docs == in2.n_docs - 1 && in3.n_chunks == in2.n_chunks - nc &&
			in3.n_vectors == in2.n_vectors - (emb ? nc : 0),
		"%s: remove: %lld docs, %lld chunks, %lld vectors (before %lld, %lld, %lld; %d chunks)",
		what, (long long)in3.n_docs, (long long)in3.n_chunks, (long long)in3.n_vectors,
		(long long)in2.n_docs, (long long)in2.n_chunks, (long long)in2.n_vectors, nc);
	T_CHECK(!listed(ix, "renamed.txt").found, "%s: removed document still listed", what);
	h = search(ix, "lq77longmark", SEARCH_BM25, 4 * nc);
	T_CHECK(h.n == nc && !rank_of(&h, "renamed.txt"), "%s: remove: %d hits, removed at %d", what,
		h.n, rank_of(&h, "renamed.txt"));
	hits_free(&h);
	if (emb) {
		h = search(ix, "Sentence 1 of the long report on the", SEARCH_HYBRID, 20);
		T_CHECK(!rank_of(&h, "renamed.txt"), "%s: remove: hybrid search still finds it", what);
		hits_free(&h);
	}
	rc = index_remove(ix, "renamed.txt", err, sizeof err);
	T_CHECK(rc == -ENOENT, "%s: removing it again: %d", what, rc);

	/* the same bytes under a name of another type are not a copy: the name
	 * picks the format */
	static const char *const names[] = {"same.html", "same.txt", "same.xyz", "same2.html"};
	static const enum index_outcome want[] = {IX_INDEXED, IX_INDEXED, IX_SKIPPED, IX_REUSED};
	for (int i = 0; i < 4; i++) {
		char fp[600];
		snprintf(fp, sizeof fp, "%s/%s", dir, names[i]);
		write_str(fp, "<p>An htmlonlyword in <b>bold</b> type.</p>\n");
		add1(ix, names[i], fp, &r);
		T_CHECK(r.outcome == want[i] && r.n_chunks == (want[i] == IX_SKIPPED ? 0 : 1),
			"%s: %s with the bytes of same.html: %s, %d chunks (want %s)", what, names[i],
			outcome_name(r.outcome), r.n_chunks, outcome_name(want[i]));
	}
	h = search(ix, "htmlonlyword", SEARCH_BM25, 5);
	T_CHECK(h.n == 3, "%s: same bytes: %d hits, want 3", what, h.n);
	for (int i = 0; i < h.n; i++) {
		int is_txt = !strcmp(h.h[i].doc, "same.txt");
		T_CHECK(is_txt == contains(h.h[i].text, "<b>"), "%s: %s holds \"%s\"", what,
			h.h[i].doc, h.h[i].text);
	}
	hits_free(&h);
	rc = index_remove(ix, "never-there.txt", err, sizeof err);
	T_CHECK(rc == -ENOENT, "%s: removing an unknown key: %d", what, rc);
}

/* ---- 3. bad input --------------------------------------------------------------- */

/* A single line of words, about mb MB, with "bigmarkerword" near the end. */
static char *big_line(size_t mb, size_t *len)
{
	size_t n = mb << 20;
	char *s = malloc(n);
	T_REQUIRE(s, "out of memory");
	uint64_t seed = 42;
	size_t at = 0;
	while (at + 32 < n) {
		const char *w = WORDS[t_rand_u64(&seed) % N_WORDS];
		size_t l = strlen(w);
		memcpy(s + at, w, l);
		at += l;
		s[at++] = ' ';
	}
	memset(s + at, 'z', n - at);
	memcpy(s + n - 32, " bigmarkerword ", 15);
	*len = n;
	return s;
}

static void test_bad_input(const char *what, struct index *ix, const char *dir,
			   const char *big_path)
{
	char p[16][600];
	const char *names[] = {
		"empty.txt", "empty.pdf", "photo.pdf", "big.txt", "badutf8.txt", "nul.txt",
		"new\nline.txt", "x.xyz", "adir.txt", "missing.txt",
	};
	enum { EMPTY, EMPTYPDF, JPEG, BIG, BADUTF, NUL, NEWLINE, XYZ, DIR_, MISSING, N };
	for (int i = 0; i < N; i++)
		snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
	write_file(p[EMPTY], "", 0);
	write_file(p[EMPTYPDF], "", 0);
	static const unsigned char jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F',
					     0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
					     0xff, 0xdb, 0x00, 0x43, 0x00, 0x08, 0x06, 0x06};
	write_file(p[JPEG], jpeg, sizeof jpeg);
	T_REQUIRE(!symlink(big_path, p[BIG]), "%s: %s", p[BIG], strerror(errno));
	write_str(p[BADUTF], "Caf\xe9 au lait with badutfword and \xff\xfe stray bytes, "
			     "then \xc3\x28 a broken pair.\n");
	static const char nul[] = "text\0\0\0\x01\x02 binary\0 stuff\0";
	write_file(p[NUL], nul, sizeof nul);
	write_str(p[NEWLINE], "A file whose name holds a newline: nlmarkword.\n");
	write_str(p[XYZ], "plain words in a file of an unknown kind\n");
	T_REQUIRE(!mkdir(p[DIR_], 0755), "%s: %s", p[DIR_], strerror(errno));

	const char *keys[N];
	for (int i = 0; i < N; i++)
		keys[i] = p[i];
	struct acks a;
	add(ix, keys, NULL, N, &a);
	const struct index_add_result *r[N];
	for (int i = 0; i < N; i++) {
		r[i] = ack_of(&a, keys[i]);
		T_REQUIRE(r[i], "%s: %s not acknowledged", what, names[i]);
		fprintf(stderr, "test_index: %s: %-14s %-9s %d chunks  %s\n", what,
			i == NEWLINE ? "new\\nline.txt" : names[i], outcome_name(r[i]->outcome),
			r[i]->n_chunks, r[i]->reason);
		if (r[i]->outcome == IX_SKIPPED) {
			T_CHECK(r[i]->reason[0] && !strchr(r[i]->reason, '\n'),
				"%s: %s skipped without a one-line reason", what, names[i]);
			struct found f = listed(ix, keys[i]);
			T_CHECK(f.found && f.skipped && !strcmp(f.reason, r[i]->reason) && !f.n_chunks,
				"%s: %s: listed %d, skipped %d, reason \"%s\"", what, names[i], f.found,
				f.skipped, f.reason);
		} else {
			T_CHECK(!r[i]->reason[0], "%s: %s indexed with a reason \"%s\"", what, names[i],
				r[i]->reason);
		}
	}
#define OUTCOME(i, o) T_CHECK(r[i]->outcome == (o), "%s: %s: %s, want %s", what, names[i], \
			      outcome_name(r[i]->outcome), outcome_name(o))
	/* an empty text is a document without chunks, every time */
	OUTCOME(EMPTY, IX_INDEXED);
	T_CHECK(r[EMPTY]->n_chunks == 0 && r[EMPTY]->n_embedded == 0, "%s: empty.txt: %d chunks",
		what, r[EMPTY]->n_chunks);
	struct found f = listed(ix, keys[EMPTY]);
	T_CHECK(f.found && !f.skipped && f.n_chunks == 0 && f.size == 0,
		"%s: empty.txt listed %d, skipped %d, %d chunks", what, f.found, f.skipped,
		f.n_chunks);
	OUTCOME(EMPTYPDF, IX_SKIPPED);
	OUTCOME(JPEG, IX_SKIPPED);
	T_CHECK(contains(r[JPEG]->reason, "JPEG"), "%s: JPEG named .pdf: reason \"%s\"", what,
		r[JPEG]->reason);
	OUTCOME(BIG, IX_SKIPPED);
	T_CHECK(contains(r[BIG]->reason, "MB") && contains(r[BIG]->reason, "larger"),
		"%s: %d MB file: reason \"%s\"", what, BIG_MB, r[BIG]->reason);
	OUTCOME(BADUTF, IX_INDEXED);
	OUTCOME(NUL, IX_SKIPPED);
	T_CHECK(contains(r[NUL]->reason, "binary"), "%s: NUL bytes: reason \"%s\"", what,
		r[NUL]->reason);
	OUTCOME(NEWLINE, IX_INDEXED);
	OUTCOME(XYZ, IX_SKIPPED);
	T_CHECK(contains(r[XYZ]->reason, "xyz") || contains(r[XYZ]->reason, "support") ||
			contains(r[XYZ]->reason, "type"),
		"%s: .xyz: reason \"%s\"", what, r[XYZ]->reason);
	OUTCOME(DIR_, IX_SKIPPED);
	T_CHECK(contains(r[DIR_]->reason, "not a regular file"), "%s: folder: reason \"%s\"", what,
		r[DIR_]->reason);
	OUTCOME(MISSING, IX_SKIPPED);
	T_CHECK(contains(r[MISSING]->reason, "cannot read"), "%s: missing file: reason \"%s\"", what,
		r[MISSING]->reason);

	/* invalid UTF-8 became U+FFFD, one per bad byte */
	struct hits h = search(ix, "badutfword", SEARCH_BM25, 3);
	T_CHECK(h.n == 1 && !strcmp(top_doc(&h), keys[BADUTF]), "%s: invalid UTF-8: %d hits, %s",
		what, h.n, top_doc(&h));
	if (h.n) {
		const char *t = h.h[0].text;
		int n_fffd = 0;
		for (const char *q = t; (q = strstr(q, "\xef\xbf\xbd")); q += 3)
			n_fffd++;
		T_CHECK(n_fffd == 4 && contains(t, "Caf\xef\xbf\xbd au lait"),
			"%s: invalid UTF-8: %d U+FFFD in \"%s\"", what, n_fffd, t);
		T_CHECK(h.h[0].start == 0 && h.h[0].end == strlen("Caf\xe9 au lait with badutfword and "
				"\xff\xfe stray bytes, then \xc3\x28 a broken pair."),
			"%s: invalid UTF-8: range %zu-%zu", what, h.h[0].start, h.h[0].end);
	}
	hits_free(&h);

	/* a newline in the name: listed as is, escaped in a hits line */
	f = listed(ix, keys[NEWLINE]);
	T_CHECK(f.found && !f.skipped && f.n_chunks == 1, "%s: new\\nline.txt: listed %d, %d chunks",
		what, f.found, f.n_chunks);
	h = search(ix, "nlmarkword", SEARCH_BM25, 3);
	T_CHECK(h.n == 1 && !strcmp(top_doc(&h), keys[NEWLINE]), "%s: newline name: %d hits", what,
		h.n);
	if (h.n) {
		char line[2048];
		int len = search_hit_line(&h.h[0], 1, line, sizeof line);
		char *nl = strchr(line, '\n');
		T_CHECK(len > 0 && (size_t)len < sizeof line && nl == line + len - 1 &&
				contains(line, "new\\nline.txt\t"),
			"%s: hits line \"%s\"", what, line);
	}
	hits_free(&h);

	/* the same input again: the same outcomes (the indexed ones unchanged) */
	enum index_outcome first[N];
	for (int i = 0; i < N; i++)
		first[i] = r[i]->outcome;
	acks_free(&a);
	add(ix, keys, NULL, N, &a);
	for (int i = 0; i < N; i++) {
		const struct index_add_result *r2 = ack_of(&a, keys[i]);
		enum index_outcome want = first[i] == IX_INDEXED ? IX_UNCHANGED : first[i];
		T_CHECK(r2 && r2->outcome == want && !r2->n_embedded, "%s: %s again: %s, want %s", what,
			names[i], r2 ? outcome_name(r2->outcome) : "not acknowledged",
			outcome_name(want));
	}
	acks_free(&a);
}

/* Every chunk of key: a byte range inside the file that holds exactly its text. */
static void check_ranges(const char *what, const char *ixdir, const char *key, const char *buf,
			 size_t len, int *n_chunks)
{
	char db_path[600];
	snprintf(db_path, sizeof db_path, "%s/seekfs.db", ixdir);
	sqlite3 *db;
	T_REQUIRE(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "%s: %s",
		  db_path, sqlite3_errmsg(db));
	sqlite3_stmt *st;
	T_REQUIRE(sqlite3_prepare_v2(db, "SELECT c.src_start, c.src_end, c.text FROM chunks c JOIN "
					 "docs d ON d.id = c.doc_id WHERE d.path = ? ORDER BY c.seq",
				     -1, &st, NULL) == SQLITE_OK,
		  "%s", sqlite3_errmsg(db));
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int n = 0, bad = 0;
	size_t prev = 0, covered_to = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t s = sqlite3_column_int64(st, 0), e = sqlite3_column_int64(st, 1);
		const char *t = (const char *)sqlite3_column_text(st, 2);
		int64_t tl = sqlite3_column_bytes(st, 2);
		int ok = s >= 0 && s < e && (size_t)e <= len && (size_t)s >= prev && e - s == tl &&
			 !memcmp(buf + s, t, (size_t)tl);
		if (!ok && bad++ < 3)
			fprintf(stderr, "%s: chunk %d: range %lld-%lld, %lld bytes of text\n", what, n,
				(long long)s, (long long)e, (long long)tl);
		prev = (size_t)s;
		if ((size_t)e > covered_to)
			covered_to = (size_t)e;
		n++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	T_CHECK(!bad, "%s: %d of %d chunks' ranges do not hold their text", what, bad, n);
	T_CHECK(covered_to == len, "%s: the chunks end at %zu of %zu bytes", what, covered_to, len);
	*n_chunks = n;
}

/* ---- 4. FAISS lost or damaged: rebuilt from SQLite ------------------------------- */

static void check_consistent(const char *what, struct index *ix, int repair)
{
	struct index_check_report rep;
	char err[512];
	int rc = index_check(ix, repair, NULL, NULL, NULL, &rep, err, sizeof err);
	T_CHECK(!rc, "%s: index_check: %s", what, err);
	struct index_info in = info(ix);
	fprintf(stderr, "test_index: %s: check%s: sqlite %d, fts %d, %lld docs, %lld chunks, %lld "
			"vectors; faiss missing %lld, extra %lld, wrong %lld, rebuilt %d\n",
		what, repair ? " --repair" : "", rep.sqlite_ok, rep.fts_ok, (long long)rep.n_docs,
		(long long)rep.n_chunks, (long long)rep.n_vectors, (long long)rep.faiss_missing,
		(long long)rep.faiss_extra, (long long)rep.faiss_wrong, rep.faiss_rebuilt);
	if (!repair)
		T_CHECK(rep.sqlite_ok && rep.fts_ok && !rep.faiss_missing && !rep.faiss_extra &&
				!rep.faiss_wrong && !rep.faiss_rebuilt,
			"%s: the index is not consistent", what);
	T_CHECK(rep.n_vectors == in.n_vectors && rep.n_chunks == in.n_chunks,
		"%s: check counts %lld chunks, %lld vectors; info %lld, %lld", what,
		(long long)rep.n_chunks, (long long)rep.n_vectors, (long long)in.n_chunks,
		(long long)in.n_vectors);
}

/* The one FAISS file of the index (there is one after a close). */
static void faiss_file(const char *ixdir, char *out, size_t n)
{
	char pat[600];
	snprintf(pat, sizeof pat, "%s/vectors-*.faiss", ixdir);
	glob_t g;
	int rc = glob(pat, 0, NULL, &g);
	T_REQUIRE(!rc && g.gl_pathc == 1, "%s: %zu files", pat, rc ? (size_t)0 : g.gl_pathc);
	snprintf(out, n, "%s", g.gl_pathv[0]);
	globfree(&g);
}

/* The vectors still find documents: a document's own text finds it first. */
static void check_vector_search(const char *what, struct index *ix, int n)
{
	for (int i = 3; i < n; i += n / 3 - 2) {
		char text[256], key[32];
		small_doc(i, text, sizeof text);
		snprintf(key, sizeof key, "doc-%04d.txt", i);
		struct hits h = search(ix, text, SEARCH_VECTOR, 3);
		T_CHECK(h.n == 3 && !strcmp(top_doc(&h), key) && h.h[0].score > 0.999,
			"%s: vector search for document %d's text: first %s (%.4f)", what, i,
			top_doc(&h), h.n ? h.h[0].score : 0.0);
		hits_free(&h);
	}
}

static void damage(const char *path, int how)
{
	struct stat st;
	T_REQUIRE(!stat(path, &st), "%s: %s", path, strerror(errno));
	int fd = open(path, O_WRONLY);
	T_REQUIRE(fd >= 0, "%s: %s", path, strerror(errno));
	if (how == 0) { /* garbage in the middle */
		char junk[4096];
		for (size_t i = 0; i < sizeof junk; i++)
			junk[i] = (char)(0xa5 ^ (i * 31));
		T_REQUIRE(pwrite(fd, junk, sizeof junk, st.st_size / 2) == (ssize_t)sizeof junk,
			  "%s: %s", path, strerror(errno));
	} else if (how == 1) { /* garbage at the start (the header) */
		char junk[64];
		memset(junk, 0xee, sizeof junk);
		T_REQUIRE(pwrite(fd, junk, sizeof junk, 0) == (ssize_t)sizeof junk, "%s: %s", path,
			  strerror(errno));
	} else { /* cut short */
		T_REQUIRE(!ftruncate(fd, st.st_size / 3), "%s: %s", path, strerror(errno));
	}
	close(fd);
}

static void test_repair(struct index **ixp, const char *ixdir, const char *emb, int n)
{
	struct index_info in0 = info(*ixp);
	index_close(*ixp);
	char path[700];
	faiss_file(ixdir, path, sizeof path);

	/* the FAISS file gone */
	T_REQUIRE(!unlink(path), "%s: %s", path, strerror(errno));
	struct index *ix = open_ix(ixdir, emb, 0, 0);
	struct index_info in = info(ix);
	T_CHECK(in.n_vectors == in0.n_vectors && in.n_chunks == in0.n_chunks,
		"FAISS deleted: %lld vectors after open, %lld before", (long long)in.n_vectors,
		(long long)in0.n_vectors);
	check_vector_search("FAISS deleted", ix, n);
	check_consistent("FAISS deleted", ix, 1);
	check_consistent("FAISS deleted", ix, 0);
	index_close(ix);
	faiss_file(ixdir, path, sizeof path);

	static const char *const how[] = {"FAISS damaged in the middle", "FAISS header damaged",
					  "FAISS truncated"};
	for (int k = 0; k < 3; k++) {
		damage(path, k);
		ix = open_ix(ixdir, emb, 0, 0);
		in = info(ix);
		T_CHECK(in.n_vectors == in0.n_vectors, "%s: %lld vectors after open, %lld before",
			how[k], (long long)in.n_vectors, (long long)in0.n_vectors);
		/* any damage fails the file's checksum: rebuilt from SQLite on open */
		struct index_check_report rep;
		char err[512];
		T_CHECK(!index_check(ix, 0, NULL, NULL, NULL, &rep, err, sizeof err),
			"%s: index_check: %s", how[k], err);
		fprintf(stderr, "test_index: %s: after open: faiss missing %lld, extra %lld, wrong %lld\n",
			how[k], (long long)rep.faiss_missing, (long long)rep.faiss_extra,
			(long long)rep.faiss_wrong);
		T_CHECK(!rep.faiss_missing && !rep.faiss_extra && !rep.faiss_wrong,
			"%s: not rebuilt on open", how[k]);
		check_consistent(how[k], ix, 1);
		check_consistent(how[k], ix, 0);
		check_vector_search(how[k], ix, n);
		index_close(ix);
		faiss_file(ixdir, path, sizeof path);
	}
	/* an intact file is loaded, not rebuilt: a repair then has nothing to do */
	*ixp = open_ix(ixdir, emb, 0, 0);
	struct index_check_report rep;
	char err[512];
	T_CHECK(!index_check(*ixp, 1, NULL, NULL, NULL, &rep, err, sizeof err) && !rep.faiss_rebuilt,
		"reopened: the intact FAISS file was not loaded (rebuilt %d): %s", rep.faiss_rebuilt, err);
	check_consistent("reopened", *ixp, 0);
}

/* ---- 5. one writer, any readers -------------------------------------------------- */

static void test_read_only(const char *what, const char *ixdir, const char *emb, int n)
{
	struct index_opts o = {.embedder = emb, .no_embedder = !emb};
	struct index *ix2 = NULL;
	char err[512] = "";
	int rc = index_open(ixdir, &o, &ix2, err, sizeof err);
	T_CHECK(rc == -EBUSY && !ix2, "%s: a second writer: %d (%s)", what, rc, err);
	if (!rc)
		index_close(ix2);
	o.read_only = 1;
	rc = index_open(ixdir, &o, &ix2, err, sizeof err);
	T_CHECK(!rc, "%s: a reader beside the writer: %s", what, err);
	if (rc)
		return;
	struct hits h = search(ix2, "uq0042x", SEARCH_BM25, 3);
	T_CHECK(h.n == 1 && !strcmp(top_doc(&h), "doc-0042.txt"), "%s: reader: %d hits, first %s",
		what, h.n, top_doc(&h));
	hits_free(&h);
	h = search(ix2, "uq0042x", SEARCH_HYBRID, 3);
	T_CHECK(h.n >= 1 && !strcmp(top_doc(&h), "doc-0042.txt"), "%s: reader (hybrid): first %s", what,
		top_doc(&h));
	hits_free(&h);
	if (emb)
		check_vector_search("reader", ix2, n);
	const char *k = "doc-0001.txt";
	rc = index_add(ix2, &k, NULL, 1, NULL, NULL, err, sizeof err);
	T_CHECK(rc == -EROFS, "%s: index_add on a reader: %d", what, rc);
	rc = index_remove(ix2, k, err, sizeof err);
	T_CHECK(rc == -EROFS, "%s: index_remove on a reader: %d", what, rc);
	index_close(ix2);
}

/* ---- the lifecycle on one index ---------------------------------------------------- */

/* Maximal marginal relevance: three copies of one text crowd the top of
 * the ranking; with MMR the second place goes to a different text. */
static void test_mmr(const char *emb)
{
	char base[256], ixdir[300];
	snprintf(base, sizeof base, "%s/mmr", root);
	snprintf(ixdir, sizeof ixdir, "%s/index", base);
	T_REQUIRE(!mkdir(base, 0755), "%s: %s", base, strerror(errno));
	static const char *const names[] = {"a1.txt", "a2.txt", "a3.txt", "b.txt", "c.txt"};
	static const char *const texts[] = {
		"The zeppelin airship floats on hydrogen held in gas cells inside its envelope.",
		"The zeppelin airship floats on hydrogen held in gas cells inside its envelope.",
		"The zeppelin airship floats on hydrogen held in gas cells inside its envelope.",
		"A zeppelin is moored to a tall mast and handled by a ground crew with lines.",
		"Sourdough bread rises slowly because of wild yeast and lactic acid bacteria.",
	};
	const char *keys[5], *files[5];
	char paths[5][400];
	for (int i = 0; i < 5; i++) {
		snprintf(paths[i], sizeof paths[i], "%s/%s", base, names[i]);
		write_str(paths[i], texts[i]);
		keys[i] = names[i];
		files[i] = paths[i];
	}
	struct index *ix = open_ix(ixdir, emb, 0, 0);
	struct acks acks;
	add(ix, keys, files, 5, &acks);
	acks_free(&acks);
	struct search_opts so = {.k = 3, .mode = SEARCH_HYBRID};
	struct search_hit *h;
	int n;
	char err[512];
	T_REQUIRE(!index_search(ix, "zeppelin airship", &so, &h, &n, err, sizeof err), "%s", err);
	int copies = 0;
	for (int i = 0; i < n; i++)
		copies += h[i].doc[0] == 'a';
	T_CHECK(n == 3 && copies == 3, "mmr: without MMR the top 3 should be the 3 copies (%d of %d)",
		copies, n);
	search_hits_free(h, n);
	so.mmr_lambda = 0.5f;
	T_REQUIRE(!index_search(ix, "zeppelin airship", &so, &h, &n, err, sizeof err), "%s", err);
	T_CHECK(n == 3 && h[0].doc[0] == 'a' && !strcmp(h[1].doc, "b.txt"),
		"mmr: with MMR (0.5) the ranking is %s, %s, ...: a copy, then b.txt expected",
		n > 0 ? h[0].doc : "-", n > 1 ? h[1].doc : "-");
	search_hits_free(h, n);
	index_close(ix);
}

/* HNSW cannot remove vectors: a changed document leaves its old vectors
 * in FAISS as dead ones, which search skips and check reports apart; the
 * index is not rebuilt for every change, and reopening keeps it. */
static void test_hnsw(const char *emb)
{
	char base[256], ixdir[300], a[300], b[300];
	snprintf(base, sizeof base, "%s/hnsw", root);
	snprintf(ixdir, sizeof ixdir, "%s/index", base);
	snprintf(a, sizeof a, "%s/a.txt", base);
	snprintf(b, sizeof b, "%s/b.txt", base);
	T_REQUIRE(!mkdir(base, 0755), "%s: %s", base, strerror(errno));
	write_str(a, "Glaciers carve valleys as the ice grinds the rock beneath it.");
	write_str(b, "Tides rise and fall twice a day under the pull of the moon.");
	struct index_opts o = {.embedder = emb, .n_threads = 2, .vectors = IX_VEC_HNSW};
	struct index *ix;
	char err[512];
	T_REQUIRE(!index_open(ixdir, &o, &ix, err, sizeof err), "index_open: %s", err);
	struct index_add_result r;
	add1(ix, "a.txt", a, &r);
	add1(ix, "b.txt", b, &r);
	write_str(a, "Volcanoes build islands where magma rises through the ocean floor.");
	add1(ix, "a.txt", a, &r);
	T_CHECK(r.outcome == IX_INDEXED, "hnsw: changed a.txt: %s", outcome_name(r.outcome));
	for (int pass = 0; pass < 2; pass++) {
		struct hits h = search(ix, "glaciers ice valleys", SEARCH_VECTOR, 5);
		T_CHECK(h.n == 2, "hnsw (%s): %d vector hits for 2 documents (a dead vector counted?)",
			pass ? "reopened" : "open", h.n);
		hits_free(&h);
		h = search(ix, "volcano magma island", SEARCH_VECTOR, 1);
		T_CHECK(h.n == 1 && !strcmp(top_doc(&h), "a.txt"), "hnsw: volcano found %s",
			top_doc(&h));
		hits_free(&h);
		struct index_check_report rep;
		T_REQUIRE(!index_check(ix, 0, NULL, NULL, NULL, &rep, err, sizeof err), "check: %s", err);
		T_CHECK(rep.faiss_dead == 1 && !rep.faiss_extra && !rep.faiss_missing && !rep.faiss_wrong,
			"hnsw: dead %lld extra %lld missing %lld wrong %lld", (long long)rep.faiss_dead,
			(long long)rep.faiss_extra, (long long)rep.faiss_missing,
			(long long)rep.faiss_wrong);
		index_close(ix);
		o.vectors = IX_VEC_FLAT; /* an existing index keeps its kind */
		T_REQUIRE(!index_open(ixdir, &o, &ix, err, sizeof err), "index_open: %s", err);
		T_CHECK(!strcmp(info(ix).vectors, "hnsw"), "hnsw: reopened as %s", info(ix).vectors);
	}
	index_close(ix);
}

static void lifecycle(const char *what, const char *emb, const char *big_path)
{
	char base[256], ixdir[300], docs[300], bad[300];
	snprintf(base, sizeof base, "%s/%s", root, what);
	snprintf(ixdir, sizeof ixdir, "%s/index", base);
	snprintf(docs, sizeof docs, "%s/docs", base);
	snprintf(bad, sizeof bad, "%s/bad", base);
	T_REQUIRE(!mkdir(base, 0755) && !mkdir(bad, 0755), "%s: %s", base, strerror(errno));
	struct corpus c;
	make_corpus(&c, docs, emb ? N_SMALL_EMB : N_SMALL);

	struct index *ix = open_ix(ixdir, emb, 0, 0);
	double t0 = t_now();
	test_incremental(what, ix, &c, emb != NULL);
	double t1 = t_now();
	test_copy_rename_remove(what, ix, docs, emb != NULL);
	double t2 = t_now();
	test_bad_input(what, ix, bad, big_path);
	double t3 = t_now();
	test_read_only(what, ixdir, emb, c.n);
	check_consistent(what, ix, 0);
	if (emb)
		test_repair(&ix, ixdir, emb, c.n);
	double t4 = t_now();
	fprintf(stderr, "test_index: %s: incremental %.1f s, copy/rename/remove %.1f s, bad input "
			"%.1f s, read-only/check/repair %.1f s\n",
		what, t1 - t0, t2 - t1, t3 - t2, t4 - t3);
	index_close(ix);
	corpus_free(&c);
}

/* A large single-line file: skipped at the default limit, indexed under a
 * raised one (BM25 index), its chunks' ranges exact. */
static void test_big(const char *big_path, const char *big, size_t len)
{
	char ixdir[300];
	snprintf(ixdir, sizeof ixdir, "%s/big-index", root);
	struct index *ix = open_ix(ixdir, NULL, 0, (size_t)64 << 20);
	struct index_add_result r;
	double t0 = t_now();
	add1(ix, "big.txt", big_path, &r);
	double t = t_now() - t0;
	T_CHECK(r.outcome == IX_INDEXED && r.n_chunks > 0 && r.n_embedded == 0,
		"%d MB file, 64 MiB limit: %s, %d chunks: %s", BIG_MB, outcome_name(r.outcome),
		r.n_chunks, r.reason);
	fprintf(stderr, "test_index: %d MB single-line file: %d chunks in %.1f s (BM25 index)\n",
		BIG_MB, r.n_chunks, t);
	int n = 0;
	check_ranges("big.txt", ixdir, "big.txt", big, len, &n);
	T_CHECK(n == r.n_chunks, "%d chunks stored, %d acknowledged", n, r.n_chunks);
	struct hits h = search(ix, "bigmarkerword", SEARCH_BM25, 3);
	size_t at = len - 31;
	T_CHECK(h.n == 1 && h.h[0].start <= at && h.h[0].end >= at + 13 && h.h[0].end <= len,
		"big file: marker at %zu: %d hits, %zu-%zu", at, h.n, h.n ? h.h[0].start : 0,
		h.n ? h.h[0].end : 0);
	hits_free(&h);
	/* 44,000 chunks of the same few words: in a store this large, words in
	 * more than a quarter of the chunks leave the BM25 query, so with the
	 * marker only its chunk matches; common words alone still find chunks */
	char q[256];
	snprintf(q, sizeof q, "%s %s bigmarkerword", WORDS[0], WORDS[1]);
	h = search(ix, q, SEARCH_BM25, 3);
	T_CHECK(h.n == 1 && h.h[0].start <= at && h.h[0].end >= at + 13,
		"big file: \"%s\": %d hits (the common words should have been dropped)", q, h.n);
	hits_free(&h);
	snprintf(q, sizeof q, "%s %s", WORDS[0], WORDS[1]);
	h = search(ix, q, SEARCH_BM25, 3);
	T_CHECK(h.n == 3, "big file: \"%s\": %d hits, 3 wanted (common words alone are kept)", q,
		h.n);
	hits_free(&h);
	index_close(ix);
}

static void embedder_path(char *path, size_t n)
{
	t_models("all-MiniLM-L6-v2.gguf", path, n);
}

int main(void)
{
	char emb[4200];
	embedder_path(emb, sizeof emb);
	int have_emb = !access(emb, R_OK);
	if (!have_emb)
		fprintf(stderr, "test_index: %s is not installed (tools/setup.sh converts it): "
				"the embedder lifecycle and the FAISS repair checks are skipped; "
				"BM25 only\n", emb);

	snprintf(root, sizeof root, "/tmp/seekfs-test-index-XXXXXX");
	T_REQUIRE(mkdtemp(root), "mkdtemp: %s", strerror(errno));
	atexit(rm_root);

	/* the big file, shared by every index through a symlink */
	char big_path[300];
	snprintf(big_path, sizeof big_path, "%s/big-single-line.txt", root);
	size_t big_len;
	char *big = big_line(BIG_MB, &big_len);
	write_file(big_path, big, big_len);

	double t0 = t_now();
	lifecycle("no-embedder", NULL, big_path);
	double t1 = t_now();
	if (have_emb) {
		lifecycle("embedder", emb, big_path);
		test_mmr(emb);
		test_hnsw(emb);
	}
	double t2 = t_now();
	test_big(big_path, big, big_len);
	double t3 = t_now();
	fprintf(stderr, "test_index: no-embedder lifecycle %.1f s, embedder lifecycle %.1f s, "
			"big file %.1f s\n", t1 - t0, t2 - t1, t3 - t2);
	free(big);
	rm_root();
	return t_done("test_index");
}
