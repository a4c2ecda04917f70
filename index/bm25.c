/*
 * bm25: BM25 over postings held in memory, for the daemon's long-lived
 * index, where FTS5's own ranking (it scores every row that matches the OR
 * query before ORDER BY ... LIMIT) costs tens of milliseconds at 100,000
 * chunks.
 *
 * The scores are FTS5's bm25() of the same OR query, bit for bit:
 *   - the tokens come from the table's own tokenizer (IX_FTS_TOKENIZE,
 *     obtained from the connection through fts5_api), so terms, per-row
 *     token counts and per-term row counts are those FTS5 keeps;
 *   - each row's score is summed over the query's phrases in query order
 *     with fts5_aux.c's double-precision expression (k1 1.2, b 0.75,
 *     idf = log((N - n + 0.5) / (n + 0.5)), at least 1e-6).
 * Term-at-a-time accumulation into one double per row gives the same sums
 * as FTS5's phrase loop: a phrase missing from a row adds +0.0 there.
 * A query word that the tokenizer splits into several tokens (a phrase) or
 * none is left to FTS5.
 *
 * Life cycle: index_open with index_opts.bm25_memory starts a thread that
 * reads every chunk through a read-only connection of its own and builds
 * the postings; until it is done, search uses FTS5. Each search then first
 * brings the postings up to date when the database changed (PRAGMA
 * data_version for other connections, the change counter for this one):
 * chunk ids are AUTOINCREMENT, so new chunks are those above the highest id
 * seen. store.c names each document whose chunks it deletes
 * (ix_bm25_doc_changed); those documents' chunks that are gone are masked.
 * If the row count still differs (another connection wrote, or a
 * transaction rolled back), a merge of all ids finds the removed ones and
 * any id not seen. Removed chunks' postings stay, masked, until they pass
 * a quarter of the rows; then the postings are compacted. Chunk text is
 * never updated in place by store.c (a changed document gets new chunks).
 *
 * Memory: 8 bytes per (term, chunk) pair plus the terms and 41 bytes per
 * chunk: 46 MiB for 100,000 chunks of 40-60 words.
 *
 * Locking: the postings are used under ix->mu; b->mu hands the builder's
 * result over.
 */
#define _GNU_SOURCE /* qsort_r */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "index/store_internal.h"

#define FTS5_MAX_TOKEN 32768 /* FTS5 truncates longer tokens (fts5Int.h) */
#define BM25_K1 1.2
#define BM25_B 0.75
/* documents noted between two searches; beyond, the next one merges all ids */
#define MAX_PENDING 65536

/* ---- the table's tokenizer ------------------------------------------------ */

struct ftok {
	fts5_tokenizer api;
	Fts5Tokenizer *tok;
};

/* IX_FTS_TOKENIZE split at spaces: the tokenizer's name and its arguments */
static int ftok_open(sqlite3 *db, struct ftok *t)
{
	memset(t, 0, sizeof *t);
	fts5_api *api = NULL;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK)
		return -ENOTSUP;
	sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
	sqlite3_step(st);
	sqlite3_finalize(st);
	if (!api || api->iVersion < 2)
		return -ENOTSUP;
	char spec[] = IX_FTS_TOKENIZE, *argv[8], *save = NULL;
	int argc = 0;
	for (char *w = strtok_r(spec, " ", &save); w && argc < 8; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	void *ud = NULL;
	if (!argc || api->xFindTokenizer(api, argv[0], &ud, &t->api) != SQLITE_OK ||
	    t->api.xCreate(ud, (const char **)argv + 1, argc - 1, &t->tok) != SQLITE_OK) {
		t->tok = NULL;
		return -ENOTSUP;
	}
	return 0;
}

static void ftok_close(struct ftok *t)
{
	if (t->tok)
		t->api.xDelete(t->tok);
	t->tok = NULL;
}

/* ---- postings --------------------------------------------------------------- */

struct posting {
	uint32_t slot, tf;
};

struct term {
	char *s; /* NULL: an empty cell */
	uint32_t len;
	uint64_t hash;
	struct posting *p;
	uint32_t n, cap;
};

struct postings {
	struct term *t; /* open addressing, linear probing; t_cap a power of two */
	size_t t_cap, t_n;
	/* per slot (a chunk, in the order added) */
	int64_t *id, *doc;
	uint32_t *dl;   /* tokens */
	uint8_t *dead;
	double *acc, *norm; /* query scratch: score, k1 * (1 - b + b * dl / avgdl) */
	uint32_t *touched;
	uint32_t n_slots, slot_cap;
	int64_t n_live, n_dead, tokens; /* rows, masked rows, tokens of the rows */
	int64_t max_id;
	double norm_avgdl; /* the avgdl norm[] holds; 0: none */
	uint32_t norm_n;
	int broken;        /* a chunk was half added (out of memory): unusable */
};

static void postings_free(struct postings *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->t_cap; i++)
		if (m->t[i].s) {
			free(m->t[i].s);
			free(m->t[i].p);
		}
	free(m->t);
	free(m->id);
	free(m->doc);
	free(m->dl);
	free(m->dead);
	free(m->acc);
	free(m->norm);
	free(m->touched);
	free(m);
}

static struct term *term_find(struct postings *m, const char *s, uint32_t len, uint64_t h)
{
	if (!m->t_cap)
		return NULL;
	for (size_t i = h & (m->t_cap - 1);; i = (i + 1) & (m->t_cap - 1)) {
		struct term *t = &m->t[i];
		if (!t->s || (t->hash == h && t->len == len && !memcmp(t->s, s, len)))
			return t;
	}
}

static int terms_grow(struct postings *m)
{
	size_t cap = m->t_cap ? m->t_cap * 2 : 4096;
	struct term *nt = calloc(cap, sizeof *nt);
	if (!nt)
		return -ENOMEM;
	for (size_t i = 0; i < m->t_cap; i++) {
		struct term *o = &m->t[i];
		if (!o->s)
			continue;
		size_t j = o->hash & (cap - 1);
		while (nt[j].s)
			j = (j + 1) & (cap - 1);
		nt[j] = *o;
	}
	free(m->t);
	m->t = nt;
	m->t_cap = cap;
	return 0;
}

static struct term *term_get(struct postings *m, const char *s, uint32_t len)
{
	uint64_t h = XXH3_64bits(s, len);
	if ((m->t_n + 1) * 2 > m->t_cap && terms_grow(m))
		return NULL;
	struct term *t = term_find(m, s, len, h);
	if (!t->s) {
		if (!(t->s = malloc(len ? len : 1)))
			return NULL;
		memcpy(t->s, s, len);
		t->len = len;
		t->hash = h;
		m->t_n++;
	}
	return t;
}

/* *pp (a pointer to an array) resized to n elements of sz bytes: 0, or
 * -ENOMEM with *pp unchanged */
static int resize(void *pp, size_t n, size_t sz)
{
	void *q = realloc(*(void **)pp, n * sz);
	if (!q)
		return -ENOMEM;
	*(void **)pp = q;
	return 0;
}

static int slots_grow(struct postings *m)
{
	uint32_t cap = m->slot_cap ? m->slot_cap * 2 : 1024;
	if (resize(&m->id, cap, sizeof *m->id) || resize(&m->doc, cap, sizeof *m->doc) ||
	    resize(&m->dl, cap, sizeof *m->dl) || resize(&m->dead, cap, sizeof *m->dead) ||
	    resize(&m->acc, cap, sizeof *m->acc) || resize(&m->norm, cap, sizeof *m->norm) ||
	    resize(&m->touched, cap, sizeof *m->touched))
		return -ENOMEM;
	memset(m->acc + m->slot_cap, 0, (cap - m->slot_cap) * sizeof *m->acc);
	m->slot_cap = cap;
	return 0;
}

struct add_ctx {
	struct postings *m;
	uint32_t slot, ntok;
	int rc;
};

/* As fts5StorageInsertCallback counts and indexes a token. */
static int add_token(void *ctx, int flags, const char *tok, int len, int start, int end)
{
	(void)start, (void)end;
	struct add_ctx *c = ctx;
	if (len > FTS5_MAX_TOKEN)
		len = FTS5_MAX_TOKEN;
	if (!(flags & FTS5_TOKEN_COLOCATED) || !c->ntok)
		c->ntok++;
	struct term *t = term_get(c->m, tok, (uint32_t)len);
	if (!t) {
		c->rc = -ENOMEM;
		return SQLITE_NOMEM;
	}
	if (t->n && t->p[t->n - 1].slot == c->slot) {
		t->p[t->n - 1].tf++;
		return SQLITE_OK;
	}
	if (t->n == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 4;
		struct posting *p = realloc(t->p, cap * sizeof *p);
		if (!p) {
			c->rc = -ENOMEM;
			return SQLITE_NOMEM;
		}
		t->p = p;
		t->cap = cap;
	}
	t->p[t->n++] = (struct posting){c->slot, 1};
	return SQLITE_OK;
}

static int add_chunk(struct postings *m, struct ftok *tk, int64_t id, int64_t doc, const char *text,
		     int len)
{
	if (m->n_slots == UINT32_MAX - 1)
		return -EOVERFLOW;
	if (m->n_slots == m->slot_cap && slots_grow(m))
		return -ENOMEM;
	struct add_ctx c = {.m = m, .slot = m->n_slots};
	int s = tk->api.xTokenize(tk->tok, &c, FTS5_TOKENIZE_DOCUMENT, text ? text : "", len,
				  add_token);
	if (c.rc || s != SQLITE_OK) {
		m->broken = 1; /* its tokens' postings may be in: the slot cannot be reused */
		return c.rc ? c.rc : -EIO;
	}
	m->id[c.slot] = id;
	m->doc[c.slot] = doc;
	m->dl[c.slot] = c.ntok;
	m->dead[c.slot] = 0;
	m->n_slots++;
	m->n_live++;
	m->tokens += c.ntok;
	if (id > m->max_id)
		m->max_id = id;
	return 0;
}

static void mark_dead(struct postings *m, uint32_t slot)
{
	if (m->dead[slot])
		return;
	m->dead[slot] = 1;
	m->n_live--;
	m->n_dead++;
	m->tokens -= m->dl[slot];
}

/* Drop the masked rows' postings and renumber the slots. */
static void compact(struct postings *m)
{
	uint32_t *map = malloc((m->n_slots ? m->n_slots : 1) * sizeof *map), n = 0;
	if (!map)
		return; /* stays masked: still correct */
	for (uint32_t s = 0; s < m->n_slots; s++) {
		map[s] = m->dead[s] ? UINT32_MAX : n;
		if (!m->dead[s]) {
			m->id[n] = m->id[s];
			m->doc[n] = m->doc[s];
			m->dl[n] = m->dl[s];
			m->dead[n] = 0;
			n++;
		}
	}
	for (size_t i = 0; i < m->t_cap; i++) {
		struct term *t = &m->t[i];
		uint32_t k = 0;
		for (uint32_t j = 0; t->s && j < t->n; j++)
			if (map[t->p[j].slot] != UINT32_MAX)
				t->p[k++] = (struct posting){map[t->p[j].slot], t->p[j].tf};
		if (t->s)
			t->n = k;
	}
	free(map);
	m->n_slots = n;
	m->n_dead = 0;
	m->norm_avgdl = 0;
}

/* Every chunk, through db, into a new set of postings. */
static int postings_build(sqlite3 *db, struct ftok *tk, const atomic_int *cancel,
			  struct postings **out)
{
	struct postings *m = calloc(1, sizeof *m);
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (!m)
		return -ENOMEM;
	if (sqlite3_prepare_v2(db, "SELECT id, doc_id, text FROM chunks ORDER BY id", -1, &st,
			       NULL) != SQLITE_OK) {
		rc = -EIO;
	} else {
		int s;
		while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
			if (cancel && atomic_load(cancel)) {
				rc = -ECANCELED;
				break;
			}
			rc = add_chunk(m, tk, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
				       (const char *)sqlite3_column_text(st, 2),
				       sqlite3_column_bytes(st, 2));
		}
		if (!rc && s != SQLITE_DONE)
			rc = -EIO;
	}
	sqlite3_finalize(st);
	if (rc) {
		postings_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

/* ---- keeping up with the table ----------------------------------------------- */

struct bm25 {
	char *db_path;
	pthread_t thread;
	int thread_started;
	atomic_int cancel;
	pthread_mutex_t mu;  /* guards state, built and the pending documents */
	int state;           /* BM25_MEM_* */
	struct postings *built;
	int64_t *pending;    /* documents whose chunks this handle deleted */
	size_t n_pending, cap_pending;
	int pending_lost;    /* one could not be recorded: merge all ids */
	/* used under ix->mu */
	struct postings *m;
	struct ftok tk;      /* on ix->db */
	int64_t data_version, total_changes;
};

static int64_t one_i64(sqlite3 *db, const char *sql, int *ok)
{
	sqlite3_stmt *st = NULL;
	int64_t v = 0;
	*ok = 0;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			v = sqlite3_column_int64(st, 0);
			*ok = 1;
		}
	}
	sqlite3_finalize(st);
	return v;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_slot_id(const void *a, const void *b, void *ctx)
{
	const int64_t *id = ctx;
	return cmp_i64(&id[*(const uint32_t *)a], &id[*(const uint32_t *)b]);
}

/* Add the chunks of ids[0..n) (by id, from db). */
static int add_ids(struct postings *m, struct ftok *tk, sqlite3 *db, const int64_t *ids, size_t n)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(db, "SELECT doc_id, text FROM chunks WHERE id = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	for (size_t i = 0; !rc && i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, ids[i]);
		if (sqlite3_step(st) == SQLITE_ROW)
			rc = add_chunk(m, tk, ids[i], sqlite3_column_int64(st, 0),
				       (const char *)sqlite3_column_text(st, 1),
				       sqlite3_column_bytes(st, 1));
	}
	sqlite3_finalize(st);
	return rc;
}

/* Merge every id in the table with the live slots: mask the slots whose
 * chunk is gone, add the chunks not held. The ids come from the covering
 * index chunks_doc (a fraction of the table's pages) and are sorted here. */
static int reconcile(struct postings *m, struct ftok *tk, sqlite3 *db)
{
	uint32_t *live = malloc(((size_t)m->n_live + 1) * sizeof *live), nl = 0;
	int64_t *all = NULL, *missing = NULL;
	size_t n_all = 0, cap_all = 0, n_missing = 0;
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (!live)
		return -ENOMEM;
	for (uint32_t s = 0; s < m->n_slots; s++)
		if (!m->dead[s])
			live[nl++] = s;
	qsort_r(live, nl, sizeof *live, cmp_slot_id, m->id);
	if (sqlite3_prepare_v2(db, "SELECT id FROM chunks", -1, &st, NULL) != SQLITE_OK) {
		rc = -EIO;
	} else {
		int s;
		while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
			if (n_all == cap_all) {
				size_t cap = cap_all ? cap_all * 2 : 4096;
				int64_t *p = realloc(all, cap * sizeof *p);
				if (!p) {
					rc = -ENOMEM;
					break;
				}
				all = p;
				cap_all = cap;
			}
			all[n_all++] = sqlite3_column_int64(st, 0);
		}
		if (!rc && s != SQLITE_DONE)
			rc = -EIO;
	}
	sqlite3_finalize(st);
	if (!rc && n_all && !(missing = malloc(n_all * sizeof *missing)))
		rc = -ENOMEM;
	if (!rc) {
		qsort(all, n_all, sizeof *all, cmp_i64);
		uint32_t j = 0;
		for (size_t i = 0; i < n_all; i++) {
			while (j < nl && m->id[live[j]] < all[i])
				mark_dead(m, live[j++]);
			if (j < nl && m->id[live[j]] == all[i])
				j++;
			else
				missing[n_missing++] = all[i];
		}
		while (j < nl)
			mark_dead(m, live[j++]);
		rc = add_ids(m, tk, db, missing, n_missing);
	}
	free(all);
	free(missing);
	free(live);
	return rc;
}

void ix_bm25_doc_changed(struct index *ix, int64_t doc_id)
{
	struct bm25 *b = ix->bm25;
	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	if (b->n_pending == b->cap_pending) {
		size_t cap = b->cap_pending ? b->cap_pending * 2 : 64;
		int64_t *p = realloc(b->pending, cap * sizeof *p);
		if (p) {
			b->pending = p;
			b->cap_pending = cap;
		}
	}
	if (b->n_pending < b->cap_pending && b->n_pending < MAX_PENDING) {
		b->pending[b->n_pending++] = doc_id;
	} else { /* merge all ids at the next search instead */
		b->pending_lost = 1;
		b->n_pending = 0;
	}
	pthread_mutex_unlock(&b->mu);
}

/* Mask the chunks of the documents this handle changed that are no longer
 * in the table (a rolled-back deletion leaves them). */
static int apply_pending(struct bm25 *b, sqlite3 *db)
{
	pthread_mutex_lock(&b->mu);
	int64_t *docs = b->pending;
	size_t n = b->n_pending;
	int lost = b->pending_lost;
	b->pending = NULL;
	b->n_pending = b->cap_pending = 0;
	b->pending_lost = 0;
	pthread_mutex_unlock(&b->mu);
	int rc = lost ? 1 : 0;
	struct postings *m = b->m;
	sqlite3_stmt *st = NULL;
	if (n && sqlite3_prepare_v2(db, "SELECT 1 FROM chunks WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		rc = -EIO;
	if (n && rc >= 0) {
		qsort(docs, n, sizeof *docs, cmp_i64);
		for (uint32_t s = 0; s < m->n_slots; s++) {
			if (m->dead[s] || !bsearch(&m->doc[s], docs, n, sizeof *docs, cmp_i64))
				continue;
			sqlite3_reset(st);
			sqlite3_bind_int64(st, 1, m->id[s]);
			int r = sqlite3_step(st);
			if (r == SQLITE_DONE)
				mark_dead(m, s);
			else if (r != SQLITE_ROW)
				rc = 1; /* unsure: merge all ids */
		}
	}
	sqlite3_finalize(st);
	free(docs);
	return rc;
}

/* Bring b->m up to date with ix->db (under ix->mu). */
static int bm25_sync(struct bm25 *b, sqlite3 *db)
{
	int ok;
	int64_t dv = one_i64(db, "PRAGMA data_version", &ok);
	int64_t tc = sqlite3_total_changes64(db);
	if (!ok)
		return -EIO;
	if (dv == b->data_version && tc == b->total_changes)
		return 0;
	struct postings *m = b->m;
	int rc = apply_pending(b, db), full = rc == 1;
	if (rc < 0)
		return rc;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT id, doc_id, text FROM chunks WHERE id > ? ORDER BY id", -1,
			       &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, m->max_id);
	int s;
	rc = 0;
	while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW)
		rc = add_chunk(m, &b->tk, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
			       (const char *)sqlite3_column_text(st, 2), sqlite3_column_bytes(st, 2));
	if (!rc && s != SQLITE_DONE)
		rc = -EIO;
	sqlite3_finalize(st);
	if (rc)
		return rc;
	int64_t n = one_i64(db, "SELECT count(*) FROM chunks", &ok);
	if (!ok)
		return -EIO;
	if ((full || n != m->n_live) && (rc = reconcile(m, &b->tk, db)))
		return rc;
	if (m->n_live != n)
		return -EIO; /* changed under us: not in sync, try again next time */
	if (m->n_dead > 64 && m->n_dead > m->n_live / 4)
		compact(m);
	b->data_version = dv;
	b->total_changes = tc;
	return 0;
}

/* ---- the builder thread ------------------------------------------------------ */

static void *build_main(void *arg)
{
	struct bm25 *b = arg;
	sqlite3 *db = NULL;
	struct ftok tk = {0};
	struct postings *m = NULL;
	int rc = -EIO;
	if (sqlite3_open_v2(b->db_path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) ==
	    SQLITE_OK) {
		sqlite3_busy_timeout(db, 10000);
		rc = ftok_open(db, &tk);
		if (!rc)
			rc = postings_build(db, &tk, &b->cancel, &m);
	}
	ftok_close(&tk);
	sqlite3_close(db);
	pthread_mutex_lock(&b->mu);
	b->built = m;
	b->state = rc ? BM25_MEM_FAILED : BM25_MEM_READY;
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

int ix_bm25_start(struct index *ix, const char *db_path)
{
	struct bm25 *b = calloc(1, sizeof *b);
	if (!b || !(b->db_path = strdup(db_path))) {
		free(b);
		return -ENOMEM;
	}
	pthread_mutex_init(&b->mu, NULL);
	b->state = BM25_MEM_BUILDING;
	b->data_version = b->total_changes = -1;
	if (pthread_create(&b->thread, NULL, build_main, b)) {
		pthread_mutex_destroy(&b->mu);
		free(b->db_path);
		free(b);
		return -EAGAIN;
	}
	b->thread_started = 1;
	ix->bm25 = b;
	return 0;
}

void ix_bm25_stop(struct index *ix)
{
	struct bm25 *b = ix->bm25;
	if (!b)
		return;
	atomic_store(&b->cancel, 1);
	if (b->thread_started)
		pthread_join(b->thread, NULL);
	postings_free(b->built);
	postings_free(b->m);
	free(b->pending);
	ftok_close(&b->tk);
	pthread_mutex_destroy(&b->mu);
	free(b->db_path);
	free(b);
	ix->bm25 = NULL;
}

int ix_bm25_state(struct index *ix)
{
	struct bm25 *b = ix->bm25;
	if (!b)
		return BM25_MEM_OFF;
	pthread_mutex_lock(&b->mu);
	int s = b->state;
	pthread_mutex_unlock(&b->mu);
	return s;
}

static int64_t postings_bytes(const struct postings *m)
{
	int64_t n = (int64_t)(m->t_cap * sizeof *m->t) +
		    (int64_t)m->slot_cap * (2 * sizeof(int64_t) + sizeof(uint32_t) + 1 +
					    2 * sizeof(double) + sizeof(uint32_t));
	for (size_t i = 0; i < m->t_cap; i++)
		if (m->t[i].s)
			n += m->t[i].len + (int64_t)m->t[i].cap * (int64_t)sizeof(struct posting);
	return n;
}

int64_t ix_bm25_bytes(struct index *ix)
{
	struct bm25 *b = ix->bm25;
	if (!b)
		return 0;
	pthread_mutex_lock(&b->mu);
	const struct postings *m = b->m ? b->m : b->built;
	int64_t n = m ? postings_bytes(m) : 0;
	pthread_mutex_unlock(&b->mu);
	return n;
}

void ix_bm25_counts(struct index *ix, int64_t *rows, int64_t *masked)
{
	const struct postings *m = ix->bm25 ? ix->bm25->m : NULL;
	*rows = m ? m->n_live : -1;
	*masked = m ? m->n_dead : -1;
}

/* ---- search ------------------------------------------------------------------ */

struct tok1 {
	const char *s;
	int len, n;
};

static int query_token(void *ctx, int flags, const char *tok, int len, int start, int end)
{
	(void)flags, (void)start, (void)end;
	struct tok1 *q = ctx;
	if (!q->n++) {
		q->s = tok;
		q->len = len > FTS5_MAX_TOKEN ? FTS5_MAX_TOKEN : len;
	}
	return SQLITE_OK;
}

struct top {
	double score;
	int64_t id;
};

/* a ranks before b: higher score, then lower id */
static int top_before(const struct top *a, const struct top *b)
{
	return a->score > b->score || (a->score == b->score && a->id < b->id);
}

/* min-heap on rank: h[0] is the worst kept */
static void heap_down(struct top *h, int n, int i)
{
	for (;;) {
		int w = i, l = 2 * i + 1, r = l + 1;
		if (l < n && top_before(&h[w], &h[l]))
			w = l;
		if (r < n && top_before(&h[w], &h[r]))
			w = r;
		if (w == i)
			return;
		struct top t = h[i];
		h[i] = h[w];
		h[w] = t;
		i = w;
	}
}

static int cmp_top(const void *a, const void *b)
{
	return top_before(a, b) ? -1 : top_before(b, a) ? 1 : 0;
}

/* Out of memory, or the tokenizer failed: FTS5 answers from now on. */
static int give_up(struct bm25 *b)
{
	postings_free(b->m);
	b->m = NULL;
	pthread_mutex_lock(&b->mu);
	b->state = BM25_MEM_FAILED;
	pthread_mutex_unlock(&b->mu);
	return 0;
}

int ix_bm25_search(struct index *ix, char *const *words, int n_words, int k, int64_t *ids,
		   double *scores, int *n_out)
{
	struct bm25 *b = ix->bm25;
	*n_out = 0;
	if (!b || k <= 0)
		return 0;
	if (!b->m) {
		pthread_mutex_lock(&b->mu);
		int ready = b->state == BM25_MEM_READY;
		b->m = b->built;
		b->built = NULL;
		pthread_mutex_unlock(&b->mu);
		if (!ready || !b->m)
			return 0;
		if (ftok_open(ix->db, &b->tk))
			return give_up(b);
	}
	int rc = bm25_sync(b, ix->db);
	if (b->m->broken)
		return give_up(b);
	if (rc)
		return 0; /* FTS5 answers this one */
	struct postings *m = b->m;
	if (!m->n_live)
		return 1;
	struct term *t[n_words > 0 ? n_words : 1];
	for (int i = 0; i < n_words; i++) {
		struct tok1 q = {0};
		if (b->tk.api.xTokenize(b->tk.tok, &q, FTS5_TOKENIZE_QUERY, words[i],
					(int)strlen(words[i]), query_token) != SQLITE_OK ||
		    q.n != 1)
			return 0;
		t[i] = term_find(m, q.s, (uint32_t)q.len, XXH3_64bits(q.s, (size_t)q.len));
		if (t[i] && !t[i]->s)
			t[i] = NULL;
	}
	const double avgdl = (double)m->tokens / (double)m->n_live;
	if (m->norm_avgdl != avgdl || m->norm_n != m->n_slots) {
		for (uint32_t s = 0; s < m->n_slots; s++)
			m->norm[s] = BM25_K1 * (1 - BM25_B + BM25_B * (double)m->dl[s] / avgdl);
		m->norm_avgdl = avgdl;
		m->norm_n = m->n_slots;
	}
	uint32_t nt = 0;
	for (int i = 0; i < n_words; i++) {
		if (!t[i])
			continue;
		const struct posting *p = t[i]->p;
		int64_t hits = t[i]->n;
		for (uint32_t j = 0; m->n_dead && j < t[i]->n; j++)
			hits -= m->dead[p[j].slot];
		if (!hits)
			continue;
		double idf = log((m->n_live - hits + 0.5) / (hits + 0.5));
		if (idf <= 0.0)
			idf = 1e-6;
		for (uint32_t j = 0; j < t[i]->n; j++) {
			const uint32_t s = p[j].slot;
			const double f = (double)p[j].tf;
			if (m->acc[s] == 0.0)
				m->touched[nt++] = s;
			m->acc[s] += idf * ((f * (BM25_K1 + 1.0)) / (f + m->norm[s]));
		}
	}
	struct top heap[k];
	int nh = 0;
	for (uint32_t j = 0; j < nt; j++) {
		const uint32_t s = m->touched[j];
		const struct top x = {m->acc[s], m->id[s]};
		m->acc[s] = 0.0;
		if (m->dead[s])
			continue;
		if (nh < k) {
			heap[nh++] = x;
			if (nh == k)
				for (int i = k / 2 - 1; i >= 0; i--)
					heap_down(heap, k, i);
		} else if (top_before(&x, &heap[0])) {
			heap[0] = x;
			heap_down(heap, k, 0);
		}
	}
	qsort(heap, (size_t)nh, sizeof *heap, cmp_top);
	for (int i = 0; i < nh; i++) {
		ids[i] = heap[i].id;
		scores[i] = heap[i].score;
	}
	*n_out = nh;
	return 1;
}
