/*
 * Private to index/: the index object shared by store.c (SQLite, documents),
 * vectors.c (FAISS), embed.c (the embedding model) and search.c.
 */
#ifndef SEEKFS_INDEX_STORE_INTERNAL_H
#define SEEKFS_INDEX_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "index/index.h"

struct vecindex; /* vectors.c */
struct bm25;     /* bm25.c */

/* The FTS5 table's tokenizer (store.c's schema; bm25.c tokenizes with it) */
#define IX_FTS_TOKENIZE "porter unicode61 remove_diacritics 2"

struct index {
	char *dir;
	sqlite3 *db;
	int lock_fd;           /* flock'ed by a writer; -1 read-only */
	struct index_opts o;
	/* ix->mu guards db and vec; wmu serialises writers (held across a
	 * writer's embedding work, which runs outside mu); emb_mu guards the
	 * embedding session. Order: wmu, then emb_mu, then mu. */
	pthread_mutex_t mu, wmu, emb_mu;

	/* embedder (embed.c); model NULL: BM25 only */
	struct model *model;
	struct session *sess;
	struct kt_pool *pool;
	/* questions get a session and threads of their own, so that a search
	 * never waits for a writer's embedding batch (q_mu guards them) */
	struct session *qsess;
	struct kt_pool *qpool;
	pthread_mutex_t q_mu;
	int dim, max_tokens;
	char embedder_path[1024], embedder_id[300];
	int32_t *ids;          /* token scratch */
	int64_t ids_cap;

	/* vectors (vectors.c) */
	struct vecindex *vec;
	int64_t gen;           /* SQLite's generation (meta 'gen') */
	int64_t vec_gen;       /* generation the FAISS file on disk holds */
	int vec_stale;         /* in-memory FAISS differs from the file */
	/* HNSW cannot remove: the vectors of removed chunks stay in it, are
	 * skipped by search, and go when they pass a share of the index and
	 * it is rebuilt (ids in FAISS that SQLite no longer has) */
	int64_t n_dead;
	enum index_vectors kind;

	int64_t n_embedded_total;
	int64_t n_chunks_known; /* chunks, for search's term statistics; -1: count again */
	int have_vocab;         /* temp.chunks_vocab (fts5vocab) exists */
	struct bm25 *bm25;      /* BM25 postings in memory (bm25.c); NULL: FTS5 only */
	char chunking[64];     /* chunk parameters + tokenizer, as recorded */
};

/* store.c */
int ix_err(char *err, size_t errsz, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int ix_sql_err(struct index *ix, char *err, size_t errsz, const char *what);
int ix_exec(struct index *ix, const char *sql, char *err, size_t errsz);
int ix_meta_get_i64(struct index *ix, const char *key, int64_t *v);
int ix_meta_get(struct index *ix, const char *key, char *buf, size_t n);
int ix_meta_set(struct index *ix, const char *key, const char *v);

/* embed.c: load the embedder named by o->embedder (or recorded), if any. */
int ix_embedder_open(struct index *ix, const char *path, char *err, size_t errsz);
void ix_embedder_close(struct index *ix);
/* Embed n texts into out (n * dim floats, L2-normalised as the model
 * says). Text beyond the model's input is cut off. Takes emb_mu. */
int ix_embed(struct index *ix, const char *const *texts, const size_t *lens, int n,
	     float *out, char *err, size_t errsz);
/* Embed one question (the query session; takes q_mu only). */
int ix_embed_query(struct index *ix, const char *text, size_t len, float *out,
		   char *err, size_t errsz);

/* vectors.c: FAISS, under ix->mu. */
struct vecindex *vec_new(int dim, enum index_vectors kind, char *err, size_t errsz);
void vec_free(struct vecindex *v);
int64_t vec_count(const struct vecindex *v);
int vec_add(struct vecindex *v, const int64_t *ids, const float *x, int64_t n,
	    char *err, size_t errsz);
/* Removes ids; 1 when the index kind cannot remove (HNSW): rebuild. */
int vec_remove(struct vecindex *v, const int64_t *ids, int64_t n, char *err, size_t errsz);
int vec_search(struct vecindex *v, const float *q, int k, int64_t *ids, float *scores,
	       char *err, size_t errsz);
/* The stored vector of id into out: 0, -ENOENT. */
int vec_get(struct vecindex *v, int64_t id, float *out);
/* Sorted copy of the ids held (caller frees). */
int vec_ids(struct vecindex *v, int64_t **ids, int64_t *n);
int vec_save(struct vecindex *v, const char *path, char *err, size_t errsz);
int vec_load(const char *path, int dim, struct vecindex **out, char *err, size_t errsz);
const char *vec_kind_name(enum index_vectors k);

/* Build the in-memory FAISS index from SQLite's vectors (under ix->mu). */
int ix_vec_rebuild(struct index *ix, char *err, size_t errsz);
/* Whether chunk id still exists (for HNSW's dead vectors; under ix->mu). */
int ix_chunk_exists(struct index *ix, int64_t id);
/* Load vectors-GEN.faiss if it matches SQLite, else rebuild (under ix->mu). */
int ix_vec_open(struct index *ix, char *err, size_t errsz);

/* bm25.c: FTS5's bm25() from postings in memory. ix_bm25_start builds them
 * in a thread of its own from the database at db_path; ix_bm25_search
 * (under ix->mu) answers the OR query of words with FTS5's scores, higher
 * first (ties: lower chunk id): 1 with the k best in ids/scores, 0 when
 * the postings cannot answer (not built yet, a word FTS5 reads as a
 * phrase, a read error): ask FTS5. */
int ix_bm25_start(struct index *ix, const char *db_path);
void ix_bm25_stop(struct index *ix);
int ix_bm25_state(struct index *ix); /* enum bm25_memory_state */
int ix_bm25_search(struct index *ix, char *const *words, int n_words, int k, int64_t *ids,
		   double *scores, int *n);
/* store.c is about to delete the chunks of doc_id (any thread). */
void ix_bm25_doc_changed(struct index *ix, int64_t doc_id);
/* Bytes the postings take (under ix->mu). */
int64_t ix_bm25_bytes(struct index *ix);
/* Rows held and rows masked (removed, awaiting compaction); -1: none held
 * (under ix->mu). */
void ix_bm25_counts(struct index *ix, int64_t *rows, int64_t *masked);

#endif
