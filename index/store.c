/*
 * store: the index's SQLite database and the document life cycle (add,
 * remove, rename, list, check), with FAISS kept in step.
 *
 * Every change is one transaction that also bumps meta 'gen'; FAISS is
 * updated in memory after the commit and written to vectors-GEN.faiss by
 * index_persist. A crash between the two leaves a FAISS file of an older
 * generation, which index_open detects and rebuilds from SQLite.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "index/store_internal.h"

#define SCHEMA_VERSION "1"

int ix_err(char *err, size_t errsz, int rc, const char *fmt, ...)
{
	if (err && errsz) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errsz, fmt, ap);
		va_end(ap);
	}
	return rc;
}

int ix_sql_err(struct index *ix, char *err, size_t errsz, const char *what)
{
	int code = sqlite3_extended_errcode(ix->db);
	int rc = (code & 0xff) == SQLITE_FULL ? -ENOSPC :
		 (code & 0xff) == SQLITE_BUSY ? -EBUSY :
		 (code & 0xff) == SQLITE_NOMEM ? -ENOMEM :
		 (code & 0xff) == SQLITE_CORRUPT ? -EUCLEAN : -EIO;
	return ix_err(err, errsz, rc, "%s/seekfs.db: %s: %s", ix->dir, what,
		      sqlite3_errmsg(ix->db));
}

int ix_exec(struct index *ix, const char *sql, char *err, size_t errsz)
{
	if (sqlite3_exec(ix->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return ix_sql_err(ix, err, errsz, sql);
	return 0;
}

static sqlite3_stmt *prep(struct index *ix, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(ix->db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	return st;
}

int ix_meta_get(struct index *ix, const char *key, char *buf, size_t n)
{
	sqlite3_stmt *st = prep(ix, "SELECT value FROM meta WHERE key = ?");
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int rc = -ENOENT;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		snprintf(buf, n, "%s", v ? v : "");
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

int ix_meta_get_i64(struct index *ix, const char *key, int64_t *v)
{
	char b[32];
	int rc = ix_meta_get(ix, key, b, sizeof b);
	if (!rc)
		*v = strtoll(b, NULL, 10);
	return rc;
}

int ix_meta_set(struct index *ix, const char *key, const char *v)
{
	sqlite3_stmt *st = prep(ix, "INSERT INTO meta(key, value) VALUES(?, ?) "
				    "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	return rc;
}

static int bump_gen(struct index *ix)
{
	char b[32];
	snprintf(b, sizeof b, "%" PRId64, ix->gen + 1);
	if (ix_meta_set(ix, "gen", b))
		return -EIO;
	ix->gen++;
	return 0;
}

static const char SCHEMA[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS docs("
	"  id INTEGER PRIMARY KEY,"
	"  path TEXT NOT NULL UNIQUE,"
	"  size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
	"  hash TEXT NOT NULL, type TEXT,"
	"  skipped INTEGER NOT NULL DEFAULT 0, reason TEXT,"
	"  n_chunks INTEGER NOT NULL DEFAULT 0, chunking TEXT);"
	"CREATE INDEX IF NOT EXISTS docs_hash ON docs(hash);"
	"CREATE TABLE IF NOT EXISTS chunks("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  doc_id INTEGER NOT NULL REFERENCES docs(id) ON DELETE CASCADE,"
	"  seq INTEGER NOT NULL, src_start INTEGER NOT NULL, src_end INTEGER NOT NULL,"
	"  n_tokens INTEGER NOT NULL, text TEXT NOT NULL, vec BLOB);"
	"CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, seq);"
	"CREATE INDEX IF NOT EXISTS chunks_novec ON chunks(id) WHERE vec IS NULL;"
	"CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, content='chunks',"
	"  content_rowid='id', tokenize='" IX_FTS_TOKENIZE "');"
	"CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN"
	"  INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END;"
	"CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN"
	"  INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); END;"
	"CREATE TRIGGER IF NOT EXISTS chunks_au AFTER UPDATE OF text ON chunks BEGIN"
	"  INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);"
	"  INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END;";

/* ---- FAISS files ---------------------------------------------------------- */

static void vec_path(const struct index *ix, int64_t gen, char *buf, size_t n)
{
	snprintf(buf, n, "%s/vectors-%" PRId64 ".faiss", ix->dir, gen);
}

/* Chunk ids with a vector, ascending. */
static int sql_vec_ids(struct index *ix, int64_t **ids, int64_t *n)
{
	sqlite3_stmt *st = prep(ix, "SELECT id FROM chunks WHERE vec IS NOT NULL ORDER BY id");
	if (!st)
		return -EIO;
	int64_t cap = 1024, k = 0;
	int64_t *v = malloc((size_t)cap * sizeof *v);
	int rc = v ? 0 : -ENOMEM;
	while (!rc && sqlite3_step(st) == SQLITE_ROW) {
		if (k == cap) {
			int64_t *p = realloc(v, (size_t)(cap *= 2) * sizeof *p);
			if (!p) {
				rc = -ENOMEM;
				break;
			}
			v = p;
		}
		v[k++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc) {
		free(v);
		return rc;
	}
	*ids = v;
	*n = k;
	return 0;
}

int ix_vec_rebuild(struct index *ix, char *err, size_t errsz)
{
	struct vecindex *v = vec_new(ix->dim, ix->kind, err, errsz);
	if (!v)
		return -EIO;
	sqlite3_stmt *st = prep(ix, "SELECT id, vec FROM chunks WHERE vec IS NOT NULL ORDER BY id");
	if (!st) {
		vec_free(v);
		return ix_sql_err(ix, err, errsz, "reading vectors");
	}
	enum { B = 4096 };
	int64_t *ids = malloc(B * sizeof *ids);
	float *x = malloc((size_t)B * ix->dim * sizeof *x);
	int rc = ids && x ? 0 : ix_err(err, errsz, -ENOMEM, "out of memory");
	int n = 0, s;
	while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 1) != ix->dim * (int)sizeof(float))
			continue; /* a vector of another embedder: not searchable */
		ids[n] = sqlite3_column_int64(st, 0);
		memcpy(x + (size_t)n * ix->dim, sqlite3_column_blob(st, 1),
		       (size_t)ix->dim * sizeof *x);
		if (++n == B) {
			rc = vec_add(v, ids, x, n, err, errsz);
			n = 0;
		}
	}
	if (!rc)
		rc = vec_add(v, ids, x, n, err, errsz);
	sqlite3_finalize(st);
	free(ids);
	free(x);
	if (rc) {
		vec_free(v);
		return rc;
	}
	vec_free(ix->vec);
	ix->vec = v;
	ix->vec_stale = 1;
	ix->n_dead = 0;
	return 0;
}

/* Whether FAISS holds exactly SQLite's vector ids. */
static int vec_matches(struct index *ix, int *match)
{
	int64_t *a = NULL, *b = NULL, na, nb;
	int rc = sql_vec_ids(ix, &a, &na);
	if (!rc)
		rc = vec_ids(ix->vec, &b, &nb);
	if (!rc && ix->kind == IX_VEC_HNSW) {
		/* every SQLite id in FAISS; FAISS may hold dead ones besides */
		int64_t j = 0;
		for (int64_t i = 0; i < na; i++) {
			while (j < nb && b[j] < a[i])
				j++;
			if (j == nb || b[j] != a[i]) {
				nb = -1;
				break;
			}
		}
		*match = nb >= na;
		ix->n_dead = *match ? nb - na : 0;
	} else if (!rc) {
		*match = na == nb && (!na || !memcmp(a, b, (size_t)na * sizeof *a));
	}
	free(a);
	free(b);
	return rc;
}

int ix_vec_open(struct index *ix, char *err, size_t errsz)
{
	char path[4200];
	vec_path(ix, ix->gen, path, sizeof path);
	struct vecindex *v;
	if (!access(path, F_OK) && !vec_load(path, ix->dim, &v, NULL, 0)) {
		vec_free(ix->vec);
		ix->vec = v;
		int match = 0;
		if (!vec_matches(ix, &match) && match) {
			ix->vec_gen = ix->gen;
			ix->vec_stale = 0;
			return 0;
		}
	}
	/* missing, of another generation, unreadable or different: from SQLite */
	return ix_vec_rebuild(ix, err, errsz);
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) ? -errno : 0;
	close(fd);
	return rc;
}

static int persist_locked(struct index *ix, char *err, size_t errsz)
{
	if (ix->o.read_only || !ix->vec || (!ix->vec_stale && ix->vec_gen == ix->gen))
		return 0;
	char path[4200], tmp[4300];
	vec_path(ix, ix->gen, path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int rc = vec_save(ix->vec, tmp, err, errsz);
	if (!rc && rename(tmp, path))
		rc = ix_err(err, errsz, -errno, "%s: %s", path, strerror(errno));
	if (rc) {
		unlink(tmp);
		return rc;
	}
	fsync_dir(ix->dir);
	ix->vec_gen = ix->gen;
	ix->vec_stale = 0;
	/* older generations are obsolete now */
	DIR *d = opendir(ix->dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		long long g;
		char tail[8];
		if (sscanf(e->d_name, "vectors-%lld.%7s", &g, tail) == 2 && g != ix->gen) {
			char p[4200];
			snprintf(p, sizeof p, "%s/%s", ix->dir, e->d_name);
			unlink(p);
		}
	}
	if (d)
		closedir(d);
	return 0;
}

int index_persist(struct index *ix, char *err, size_t errsz)
{
	pthread_mutex_lock(&ix->mu);
	int rc = persist_locked(ix, err, errsz);
	pthread_mutex_unlock(&ix->mu);
	return rc;
}

/* ---- open / close ---------------------------------------------------------- */

static void set_chunking(struct index *ix)
{
	const struct chunk_opts *c = &ix->o.chunk;
	snprintf(ix->chunking, sizeof ix->chunking, "%s:%d/%d/%zu",
		 ix->model ? "wordpiece" : "words", c->target_tokens, c->overlap_tokens,
		 c->max_bytes);
}

/* Record the embedder; a different one than the vectors were made with
 * makes every vector stale (re-embedded by index_embed_pending). */
static int adopt_embedder(struct index *ix, char *err, size_t errsz)
{
	char old[300] = "";
	ix_meta_get(ix, "embedder_id", old, sizeof old);
	if (!strcmp(old, ix->embedder_id)) {
		/* the same model, perhaps moved: remember where it is now */
		return ix_meta_set(ix, "embedder", ix->embedder_path) ?
			ix_sql_err(ix, err, errsz, "recording the embedder") : 0;
	}
	int rc = ix_exec(ix, "BEGIN IMMEDIATE", err, errsz);
	if (rc)
		return rc;
	char dim[16];
	snprintf(dim, sizeof dim, "%d", ix->dim);
	if ((old[0] && ix_exec(ix, "UPDATE chunks SET vec = NULL WHERE vec IS NOT NULL", err, errsz)) ||
	    ix_meta_set(ix, "embedder", ix->embedder_path) ||
	    ix_meta_set(ix, "embedder_id", ix->embedder_id) || ix_meta_set(ix, "dim", dim) ||
	    bump_gen(ix)) {
		rc = ix_sql_err(ix, err, errsz, "switching the embedder");
		ix_exec(ix, "ROLLBACK", NULL, 0);
		return rc;
	}
	return ix_exec(ix, "COMMIT", err, errsz);
}

int index_open(const char *dir, const struct index_opts *o, struct index **out,
	       char *err, size_t errsz)
{
	struct index *ix = calloc(1, sizeof *ix);
	if (!ix)
		return ix_err(err, errsz, -ENOMEM, "out of memory");
	if (o)
		ix->o = *o;
	if (!ix->o.chunk.target_tokens) {
		ix->o.chunk.target_tokens = CHUNK_TARGET_DEFAULT;
		ix->o.chunk.overlap_tokens = CHUNK_OVERLAP_DEFAULT;
	}
	if (!ix->o.max_doc_bytes)
		ix->o.max_doc_bytes = (size_t)16 << 20;
	ix->o.embedder = ix->o.default_embedder = NULL; /* not kept: the caller's strings */
	ix->lock_fd = -1;
	pthread_mutex_init(&ix->mu, NULL);
	pthread_mutex_init(&ix->wmu, NULL);
	pthread_mutex_init(&ix->emb_mu, NULL);
	pthread_mutex_init(&ix->q_mu, NULL);
	int rc;
	char path[4200];
	if (!(ix->dir = strdup(dir))) {
		rc = ix_err(err, errsz, -ENOMEM, "out of memory");
		goto fail;
	}
	if (!ix->o.read_only) {
		if (mkdir(dir, 0755) && errno != EEXIST) {
			rc = ix_err(err, errsz, -errno, "%s: %s", dir, strerror(errno));
			goto fail;
		}
		snprintf(path, sizeof path, "%s/lock", dir);
		ix->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (ix->lock_fd < 0) {
			rc = ix_err(err, errsz, -errno, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (flock(ix->lock_fd, LOCK_EX | LOCK_NB)) {
			rc = ix_err(err, errsz, -EBUSY,
				    "%s is being written by another seekfs process", dir);
			goto fail;
		}
	}
	snprintf(path, sizeof path, "%s/seekfs.db", dir);
	if (ix->o.read_only && access(path, F_OK)) {
		rc = ix_err(err, errsz, -ENOENT, "no index at %s (nothing was added yet)", dir);
		goto fail;
	}
	int flags = ix->o.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &ix->db, flags | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		rc = ix_err(err, errsz, -EIO, "%s: %s", path,
			    ix->db ? sqlite3_errmsg(ix->db) : "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(ix->db, 10000);
	if (!ix->o.read_only &&
	    ((rc = ix_exec(ix, "PRAGMA journal_mode=WAL", err, errsz)) ||
	     (rc = ix_exec(ix, SCHEMA, err, errsz))))
		goto fail;
	if ((rc = ix_exec(ix, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", err, errsz)))
		goto fail;
	char ver[16] = "";
	if (ix_meta_get(ix, "schema", ver, sizeof ver)) {
		if (ix->o.read_only) {
			rc = ix_err(err, errsz, -EINVAL, "%s: not a seekfs index", path);
			goto fail;
		}
		char kind[8];
		snprintf(kind, sizeof kind, "%s", vec_kind_name(ix->o.vectors));
		if (ix_meta_set(ix, "schema", SCHEMA_VERSION) || ix_meta_set(ix, "gen", "0") ||
		    ix_meta_set(ix, "vectors", kind)) {
			rc = ix_sql_err(ix, err, errsz, "creating the index");
			goto fail;
		}
	} else if (strcmp(ver, SCHEMA_VERSION)) {
		rc = ix_err(err, errsz, -EINVAL, "%s: index schema %s, this seekfs reads %s",
			    path, ver, SCHEMA_VERSION);
		goto fail;
	}
	char kind[8] = "flat";
	ix_meta_get(ix, "vectors", kind, sizeof kind);
	ix->kind = strcmp(kind, "hnsw") ? IX_VEC_FLAT : IX_VEC_HNSW;
	ix_meta_get_i64(ix, "gen", &ix->gen);
	ix->vec_gen = -1;

	/* the embedder: the one asked for, else the one recorded if it exists */
	char recorded[1024] = "";
	ix_meta_get(ix, "embedder", recorded, sizeof recorded);
	const char *emb = o && o->embedder ? o->embedder :
			  recorded[0] ? (access(recorded, R_OK) ? NULL : recorded) :
			  o ? o->default_embedder : NULL;
	if (emb && !ix->o.no_embedder) {
		if ((rc = ix_embedder_open(ix, emb, err, errsz)))
			goto fail;
		char old[300] = "";
		ix_meta_get(ix, "embedder_id", old, sizeof old);
		if (ix->o.read_only) {
			if (strcmp(old, ix->embedder_id))
				ix_embedder_close(ix); /* its vectors are not these */
		} else if ((rc = adopt_embedder(ix, err, errsz))) {
			goto fail;
		}
	}
	set_chunking(ix);
	if (ix->model && (rc = ix_vec_open(ix, err, errsz)))
		goto fail;
	/* per-term document counts of the FTS5 table, for search.c */
	ix->n_chunks_known = -1;
	ix->have_vocab = sqlite3_exec(ix->db, "CREATE VIRTUAL TABLE temp.chunks_vocab USING "
					      "fts5vocab(main, 'chunks_fts', 'row')",
				      NULL, NULL, NULL) == SQLITE_OK;
	if (ix->o.bm25_memory && (rc = ix_bm25_start(ix, path))) {
		rc = ix_err(err, errsz, rc, "starting the BM25 postings' thread: %s", strerror(-rc));
		goto fail;
	}
	*out = ix;
	return 0;
fail:
	index_close(ix);
	return rc;
}

void index_close(struct index *ix)
{
	if (!ix)
		return;
	ix_bm25_stop(ix);
	if (ix->db)
		persist_locked(ix, NULL, 0);
	vec_free(ix->vec);
	ix_embedder_close(ix);
	if (ix->db)
		sqlite3_close(ix->db);
	if (ix->lock_fd >= 0)
		close(ix->lock_fd);
	pthread_mutex_destroy(&ix->mu);
	pthread_mutex_destroy(&ix->wmu);
	pthread_mutex_destroy(&ix->emb_mu);
	pthread_mutex_destroy(&ix->q_mu);
	free(ix->dir);
	free(ix);
}

/* ---- adding documents ------------------------------------------------------- */

struct pdoc {
	const char *key, *file;
	struct index_add_result r;
	int64_t size, mtime_ns;
	char hash[33];
	const char *type;
	struct chunk_list chunks;
	float *vecs;          /* chunks.n * dim, or NULL without an embedder */
	int64_t reuse_from;   /* IX_REUSED: the document whose chunks are copied */
};

static void pdoc_free(struct pdoc *p)
{
	chunk_list_free(&p->chunks);
	free(p->vecs);
	memset(p, 0, sizeof *p);
}

static void skip(struct pdoc *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void skip(struct pdoc *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->r.reason, sizeof p->r.reason, fmt, ap);
	va_end(ap);
	p->r.outcome = IX_SKIPPED;
}

static int read_all(int fd, size_t size, char **out, size_t *len)
{
	size_t cap = size + 1, n = 0;
	char *b = malloc(cap);
	if (!b)
		return -ENOMEM;
	for (;;) {
		if (n == cap - 1) {
			char *p = realloc(b, cap *= 2);
			if (!p) {
				free(b);
				return -ENOMEM;
			}
			b = p;
		}
		ssize_t r = read(fd, b + n, cap - 1 - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			free(b);
			return e;
		}
		if (!r)
			break;
		n += (size_t)r;
	}
	b[n] = 0;
	*out = b;
	*len = n;
	return 0;
}

/* Read, hash, compare, extract and chunk one document (no embedding yet). */
static int prepare(struct index *ix, struct pdoc *p, char *err, size_t errsz)
{
	int fd = open(p->file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ELOOP)
		fd = open(p->file, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st)) {
		skip(p, "cannot read: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return 0;
	}
	p->size = st.st_size;
	p->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		skip(p, "not a regular file");
		return 0;
	}
	if ((uint64_t)st.st_size > ix->o.max_doc_bytes) {
		close(fd);
		skip(p, "%.1f MB, larger than the %.1f MB a document may have",
		     st.st_size / 1e6, ix->o.max_doc_bytes / 1e6);
		return 0;
	}
	char *buf = NULL;
	size_t len = 0;
	int rc = read_all(fd, (size_t)st.st_size, &buf, &len);
	close(fd);
	if (rc == -ENOMEM)
		return ix_err(err, errsz, rc, "%s: out of memory", p->file);
	if (rc) {
		skip(p, "cannot read: %s", strerror(-rc));
		return 0;
	}
	p->size = (int64_t)len; /* what was read, if the file changed meanwhile */
	XXH128_hash_t h = XXH3_128bits(buf, len);
	snprintf(p->hash, sizeof p->hash, "%016llx%016llx", (unsigned long long)h.high64,
		 (unsigned long long)h.low64);

	/* the same content under this key, indexed the same way: nothing to do */
	pthread_mutex_lock(&ix->mu);
	sqlite3_stmt *st1 = prep(ix, "SELECT 1 FROM docs WHERE path = ? AND hash = ? AND "
				     "skipped = 0 AND chunking = ?");
	if (st1) {
		sqlite3_bind_text(st1, 1, p->key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st1, 2, p->hash, -1, SQLITE_STATIC);
		sqlite3_bind_text(st1, 3, ix->chunking, -1, SQLITE_STATIC);
		if (sqlite3_step(st1) == SQLITE_ROW)
			p->r.outcome = IX_UNCHANGED;
		sqlite3_finalize(st1);
	}
	pthread_mutex_unlock(&ix->mu);
	if (!st1) {
		free(buf);
		return ix_sql_err(ix, err, errsz, "looking up a document");
	}
	if (p->r.outcome == IX_UNCHANGED) {
		free(buf);
		return 0;
	}

	/* The name picks the format, so the same bytes under another name may
	 * extract differently (a.html copied to a.txt) or not at all (a.xyz):
	 * extract first, and reuse only a document of the same type. */
	struct extract_result x;
	rc = extract_text(p->key, buf, len, &x);
	free(buf);
	if (rc == -ENOMEM) {
		extract_free(&x);
		return ix_err(err, errsz, rc, "%s: out of memory", p->file);
	}
	if (rc) {
		skip(p, "%s", x.reason[0] ? x.reason : strerror(-rc));
		extract_free(&x);
		return 0;
	}
	p->type = x.type;

	/* the same content and type under another key: take its chunks and vectors */
	pthread_mutex_lock(&ix->mu);
	st1 = prep(ix, "SELECT id FROM docs WHERE hash = ? AND skipped = 0 AND chunking = ? "
		       "AND type = ? AND path != ? LIMIT 1");
	if (st1) {
		sqlite3_bind_text(st1, 1, p->hash, -1, SQLITE_STATIC);
		sqlite3_bind_text(st1, 2, ix->chunking, -1, SQLITE_STATIC);
		sqlite3_bind_text(st1, 3, p->type, -1, SQLITE_STATIC);
		sqlite3_bind_text(st1, 4, p->key, -1, SQLITE_STATIC);
		if (sqlite3_step(st1) == SQLITE_ROW) {
			p->r.outcome = IX_REUSED;
			p->reuse_from = sqlite3_column_int64(st1, 0);
		}
		sqlite3_finalize(st1);
	}
	pthread_mutex_unlock(&ix->mu);
	if (!st1) {
		extract_free(&x);
		return ix_sql_err(ix, err, errsz, "looking up a document");
	}
	if (p->r.outcome == IX_REUSED) {
		extract_free(&x);
		return 0;
	}
	rc = chunk_text(&x, ix->model ? model_tok(ix->model) : NULL, &ix->o.chunk, &p->chunks);
	extract_free(&x);
	if (rc)
		return ix_err(err, errsz, rc, "%s: chunking failed: %s", p->file, strerror(-rc));
	p->r.outcome = IX_INDEXED;
	p->r.n_chunks = (int)p->chunks.n;
	return 0;
}

/* Embed the chunks of the prepared documents that need it. */
static int embed_docs(struct index *ix, struct pdoc *ps, int n, char *err, size_t errsz)
{
	if (!ix->model)
		return 0;
	size_t total = 0;
	for (int i = 0; i < n; i++)
		if (ps[i].r.outcome == IX_INDEXED)
			total += ps[i].chunks.n;
	if (!total)
		return 0;
	const char **texts = malloc(total * sizeof *texts);
	size_t *lens = malloc(total * sizeof *lens);
	float *all = malloc(total * (size_t)ix->dim * sizeof *all);
	int rc = texts && lens && all ? 0 : ix_err(err, errsz, -ENOMEM, "out of memory");
	size_t k = 0;
	for (int i = 0; !rc && i < n; i++)
		for (size_t j = 0; ps[i].r.outcome == IX_INDEXED && j < ps[i].chunks.n; j++) {
			texts[k] = ps[i].chunks.v[j].text;
			lens[k++] = ps[i].chunks.v[j].len;
		}
	if (!rc)
		rc = ix_embed(ix, texts, lens, (int)total, all, err, errsz);
	k = 0;
	for (int i = 0; !rc && i < n; i++) {
		if (ps[i].r.outcome != IX_INDEXED || !ps[i].chunks.n)
			continue;
		size_t sz = ps[i].chunks.n * (size_t)ix->dim * sizeof(float);
		if (!(ps[i].vecs = malloc(sz))) {
			rc = ix_err(err, errsz, -ENOMEM, "out of memory");
			break;
		}
		memcpy(ps[i].vecs, all + k * ix->dim, sz);
		k += ps[i].chunks.n;
		ps[i].r.n_embedded = (int)ps[i].chunks.n;
	}
	free(texts);
	free(lens);
	free(all);
	return rc;
}

struct idvec {
	int64_t *ids;
	float *x;
	int64_t n, cap;
	int dim;
};

static int idvec_push(struct idvec *v, int64_t id, const void *x)
{
	if (v->n == v->cap) {
		int64_t cap = v->cap ? v->cap * 2 : 64;
		int64_t *ids = realloc(v->ids, (size_t)cap * sizeof *ids);
		if (!ids)
			return -ENOMEM;
		v->ids = ids;
		if (v->dim) {
			float *x2 = realloc(v->x, (size_t)cap * v->dim * sizeof *x2);
			if (!x2)
				return -ENOMEM;
			v->x = x2;
		}
		v->cap = cap;
	}
	if (v->dim && x)
		memcpy(v->x + (size_t)v->n * v->dim, x, (size_t)v->dim * sizeof(float));
	v->ids[v->n++] = id;
	return 0;
}

static void idvec_free(struct idvec *v)
{
	free(v->ids);
	free(v->x);
}

/* Delete the chunks of document doc_id (FTS5 follows by trigger); the ids
 * that had vectors go to gone. */
static int delete_chunks(struct index *ix, int64_t doc_id, struct idvec *gone)
{
	sqlite3_stmt *st = prep(ix, "SELECT id FROM chunks WHERE doc_id = ? AND vec IS NOT NULL");
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, doc_id);
	int rc = 0;
	while (!rc && sqlite3_step(st) == SQLITE_ROW)
		rc = idvec_push(gone, sqlite3_column_int64(st, 0), NULL);
	sqlite3_finalize(st);
	if (rc)
		return rc;
	ix_bm25_doc_changed(ix, doc_id);
	if (!(st = prep(ix, "DELETE FROM chunks WHERE doc_id = ?")))
		return -EIO;
	sqlite3_bind_int64(st, 1, doc_id);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	return rc;
}

static int64_t doc_id_of(struct index *ix, const char *key)
{
	sqlite3_stmt *st = prep(ix, "SELECT id FROM docs WHERE path = ?");
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int64_t id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -ENOENT;
	sqlite3_finalize(st);
	return id;
}

static int64_t upsert_doc(struct index *ix, const struct pdoc *p)
{
	sqlite3_stmt *st = prep(ix,
		"INSERT INTO docs(path, size, mtime_ns, hash, type, skipped, reason, n_chunks, chunking)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(path) DO UPDATE SET"
		" size = ?2, mtime_ns = ?3, hash = ?4, type = ?5, skipped = ?6, reason = ?7,"
		" n_chunks = ?8, chunking = ?9 RETURNING id");
	if (!st)
		return -EIO;
	int sk = p->r.outcome == IX_SKIPPED;
	sqlite3_bind_text(st, 1, p->key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, p->size);
	sqlite3_bind_int64(st, 3, p->mtime_ns);
	sqlite3_bind_text(st, 4, p->hash, -1, SQLITE_STATIC);
	if (p->type)
		sqlite3_bind_text(st, 5, p->type, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, sk);
	if (sk)
		sqlite3_bind_text(st, 7, p->r.reason, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 8, p->r.n_chunks);
	sqlite3_bind_text(st, 9, ((struct index *)ix)->chunking, -1, SQLITE_STATIC);
	int64_t id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -EIO;
	sqlite3_finalize(st);
	return id;
}

static int insert_chunks(struct index *ix, int64_t doc_id, const struct pdoc *p,
			 struct idvec *added)
{
	sqlite3_stmt *st = prep(ix, "INSERT INTO chunks(doc_id, seq, src_start, src_end, n_tokens,"
				    " text, vec) VALUES(?, ?, ?, ?, ?, ?, ?)");
	if (!st)
		return -EIO;
	int rc = 0;
	for (size_t j = 0; !rc && j < p->chunks.n; j++) {
		const struct chunk *c = &p->chunks.v[j];
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, doc_id);
		sqlite3_bind_int64(st, 2, (int64_t)j);
		sqlite3_bind_int64(st, 3, (int64_t)c->src_start);
		sqlite3_bind_int64(st, 4, (int64_t)c->src_end);
		sqlite3_bind_int(st, 5, c->n_tokens);
		sqlite3_bind_text(st, 6, c->text, (int)c->len, SQLITE_STATIC);
		const float *x = p->vecs ? p->vecs + j * (size_t)ix->dim : NULL;
		if (x)
			sqlite3_bind_blob(st, 7, x, ix->dim * (int)sizeof(float), SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 7);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = -EIO;
		else if (x)
			rc = idvec_push(added, sqlite3_last_insert_rowid(ix->db), x);
	}
	sqlite3_finalize(st);
	return rc;
}

static int copy_chunks(struct index *ix, int64_t doc_id, int64_t from, struct idvec *added)
{
	sqlite3_stmt *st = prep(ix, "INSERT INTO chunks(doc_id, seq, src_start, src_end, n_tokens,"
				    " text, vec) SELECT ?, seq, src_start, src_end, n_tokens, text, vec"
				    " FROM chunks WHERE doc_id = ? ORDER BY seq");
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, doc_id);
	sqlite3_bind_int64(st, 2, from);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	if (rc || !ix->vec)
		return rc;
	if (!(st = prep(ix, "SELECT id, vec FROM chunks WHERE doc_id = ? AND vec IS NOT NULL")))
		return -EIO;
	sqlite3_bind_int64(st, 1, doc_id);
	while (!rc && sqlite3_step(st) == SQLITE_ROW)
		if (sqlite3_column_bytes(st, 1) == ix->dim * (int)sizeof(float))
			rc = idvec_push(added, sqlite3_column_int64(st, 0),
					sqlite3_column_blob(st, 1));
	sqlite3_finalize(st);
	return rc;
}

/* Delete document id and its chunks; the chunk ids that had vectors go to
 * gone. */
static int delete_doc(struct index *ix, int64_t id, struct idvec *gone)
{
	int rc = delete_chunks(ix, id, gone);
	sqlite3_stmt *st = rc ? NULL : prep(ix, "DELETE FROM docs WHERE id = ?");
	if (!rc && !st)
		return -EIO;
	if (st) {
		sqlite3_bind_int64(st, 1, id);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
		sqlite3_finalize(st);
	}
	return rc;
}

static void vec_apply(struct index *ix, struct idvec *gone, struct idvec *added);

/* End the transaction of a change (under mu). rc == 0: bump the
 * generation (when bump), commit, and apply the vector changes to FAISS;
 * otherwise, or when the commit fails, roll back and say what failed. */
static int end_change(struct index *ix, int rc, int bump, const char *what,
		      struct idvec *gone, struct idvec *added, char *err, size_t errsz)
{
	if (!rc && bump)
		rc = bump_gen(ix);
	if (!rc && sqlite3_exec(ix->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	if (rc) {
		rc = rc == -ENOMEM ? ix_err(err, errsz, rc, "out of memory")
				   : ix_sql_err(ix, err, errsz, what);
		ix_exec(ix, "ROLLBACK", NULL, 0);
		ix_meta_get_i64(ix, "gen", &ix->gen);
		return rc;
	}
	vec_apply(ix, gone, added);
	ix->n_chunks_known = -1;
	return 0;
}

/* Apply removals and additions to FAISS after a commit (under mu). A
 * failure, or an index kind that cannot remove, rebuilds from SQLite. */
static void vec_apply(struct index *ix, struct idvec *gone, struct idvec *added)
{
	if (!ix->vec)
		return;
	char e[256];
	int rc = vec_remove(ix->vec, gone->ids, gone->n, e, sizeof e);
	if (!rc)
		rc = vec_add(ix->vec, added->ids, added->x, added->n, e, sizeof e);
	if (rc == 1) {
		/* HNSW: the removed vectors stay until they are a fifth of it */
		ix->n_dead += gone->n;
		rc = vec_add(ix->vec, added->ids, added->x, added->n, e, sizeof e);
		if (!rc && ix->n_dead > 1000 && ix->n_dead * 5 > vec_count(ix->vec))
			rc = -1;
	}
	if (rc)
		ix_vec_rebuild(ix, e, sizeof e);
	ix->vec_stale = 1;
}

int ix_chunk_exists(struct index *ix, int64_t id)
{
	sqlite3_stmt *st = prep(ix, "SELECT 1 FROM chunks WHERE id = ? AND vec IS NOT NULL");
	if (!st)
		return 1;
	sqlite3_bind_int64(st, 1, id);
	int yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return yes;
}

static int commit_docs(struct index *ix, struct pdoc *ps, int n, char *err, size_t errsz)
{
	struct idvec gone = {0}, added = {.dim = ix->dim};
	pthread_mutex_lock(&ix->mu);
	int rc = ix_exec(ix, "BEGIN IMMEDIATE", err, errsz), changed = 0, ix_begun = !rc;
	for (int i = 0; !rc && i < n; i++) {
		struct pdoc *p = &ps[i];
		if (p->r.outcome == IX_UNCHANGED) {
			sqlite3_stmt *st = prep(ix, "UPDATE docs SET size = ?, mtime_ns = ? WHERE path = ?");
			if (!st)
				rc = -EIO;
			else {
				sqlite3_bind_int64(st, 1, p->size);
				sqlite3_bind_int64(st, 2, p->mtime_ns);
				sqlite3_bind_text(st, 3, p->key, -1, SQLITE_STATIC);
				rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
				sqlite3_finalize(st);
			}
			continue;
		}
		int64_t old = doc_id_of(ix, p->key);
		if (old >= 0)
			rc = delete_chunks(ix, old, &gone);
		else if (old != -ENOENT)
			rc = (int)old;
		if (rc)
			break;
		if (p->r.outcome == IX_REUSED) {
			/* the chunk count comes from the source document */
			sqlite3_stmt *st = prep(ix, "SELECT n_chunks, type FROM docs WHERE id = ?");
			if (!st) {
				rc = -EIO;
				break;
			}
			sqlite3_bind_int64(st, 1, p->reuse_from);
			if (sqlite3_step(st) == SQLITE_ROW) {
				p->r.n_chunks = sqlite3_column_int(st, 0);
				const char *t = (const char *)sqlite3_column_text(st, 1);
				p->type = !t ? NULL : !strcmp(t, "html") ? "html" :
					  !strcmp(t, "markdown") ? "markdown" :
					  !strcmp(t, "pdf") ? "pdf" : "text";
			}
			sqlite3_finalize(st);
		}
		int64_t id = upsert_doc(ix, p);
		if (id < 0) {
			rc = (int)id;
			break;
		}
		if (p->r.outcome == IX_INDEXED)
			rc = insert_chunks(ix, id, p, &added);
		else if (p->r.outcome == IX_REUSED)
			rc = copy_chunks(ix, id, p->reuse_from, &added);
		changed = 1;
	}
	if (ix_begun)
		rc = end_change(ix, rc, changed, "indexing", &gone, &added, err, errsz);
	pthread_mutex_unlock(&ix->mu);
	idvec_free(&gone);
	idvec_free(&added);
	return rc;
}

int index_add(struct index *ix, const char *const *keys, const char *const *files,
	      size_t n, index_ack_fn ack, void *ctx, char *err, size_t errsz)
{
	if (ix->o.read_only)
		return ix_err(err, errsz, -EROFS, "the index is open read-only");
	int batch = ix->o.batch_chunks > 0 ? ix->o.batch_chunks : 32;
	enum { MAXDOCS = 64 };
	struct pdoc ps[MAXDOCS];
	int np = 0, rc = 0;
	size_t pending = 0;
	memset(ps, 0, sizeof ps);
	pthread_mutex_lock(&ix->wmu);
	for (size_t i = 0; i <= n && !rc; i++) {
		if (i < n) {
			struct pdoc *p = &ps[np++];
			p->key = keys[i];
			p->file = files ? files[i] : keys[i];
			rc = prepare(ix, p, err, errsz);
			if (p->r.outcome == IX_INDEXED)
				pending += p->chunks.n;
		}
		if (rc || !np || (i < n && np < MAXDOCS && pending < (size_t)batch))
			continue;
		/* a batch is ready (or this is the end): embed, commit, acknowledge */
		rc = embed_docs(ix, ps, np, err, errsz);
		if (!rc)
			rc = commit_docs(ix, ps, np, err, errsz);
		for (int j = 0; j < np; j++) {
			if (!rc) {
				ix->n_embedded_total += ps[j].r.n_embedded;
				if (ack)
					ack(ctx, ps[j].key, ps[j].file, &ps[j].r);
			}
			pdoc_free(&ps[j]);
		}
		np = 0;
		pending = 0;
	}
	for (int j = 0; j < np; j++)
		pdoc_free(&ps[j]);
	pthread_mutex_unlock(&ix->wmu);
	return rc;
}

int index_embed_pending(struct index *ix, int64_t max, int64_t *done, char *err, size_t errsz)
{
	int64_t total = 0;
	if (done)
		*done = 0;
	if (ix->o.read_only || !ix->model)
		return 0;
	int batch = ix->o.batch_chunks > 0 ? ix->o.batch_chunks : 32;
	int rc = 0;
	pthread_mutex_lock(&ix->wmu);
	while (!rc && (max <= 0 || total < max)) {
		int64_t ids[256];
		char *texts[256];
		size_t lens[256];
		int n = 0;
		pthread_mutex_lock(&ix->mu);
		sqlite3_stmt *st = prep(ix, "SELECT id, text FROM chunks WHERE vec IS NULL ORDER BY id LIMIT ?");
		if (!st)
			rc = ix_sql_err(ix, err, errsz, "reading chunks");
		else {
			int64_t want = batch * 4 < 256 ? batch * 4 : 256;
			if (max > 0 && max - total < want)
				want = max - total;
			sqlite3_bind_int64(st, 1, want);
			while (sqlite3_step(st) == SQLITE_ROW) {
				ids[n] = sqlite3_column_int64(st, 0);
				lens[n] = (size_t)sqlite3_column_bytes(st, 1);
				texts[n] = strndup((const char *)sqlite3_column_text(st, 1), lens[n]);
				if (!texts[n])
					break;
				n++;
			}
			sqlite3_finalize(st);
		}
		pthread_mutex_unlock(&ix->mu);
		if (rc || !n)
			break;
		float *x = malloc((size_t)n * ix->dim * sizeof *x);
		rc = x ? ix_embed(ix, (const char *const *)texts, lens, n, x, err, errsz)
		       : ix_err(err, errsz, -ENOMEM, "out of memory");
		for (int i = 0; i < n; i++)
			free(texts[i]);
		if (!rc) {
			struct idvec gone = {0}, added = {.dim = ix->dim};
			pthread_mutex_lock(&ix->mu);
			rc = ix_exec(ix, "BEGIN IMMEDIATE", err, errsz);
			int begun = !rc;
			st = rc ? NULL : prep(ix, "UPDATE chunks SET vec = ? WHERE id = ? AND vec IS NULL");
			if (begun && !st)
				rc = -EIO;
			for (int i = 0; st && !rc && i < n; i++) {
				sqlite3_reset(st);
				sqlite3_bind_blob(st, 1, x + (size_t)i * ix->dim,
						  ix->dim * (int)sizeof(float), SQLITE_STATIC);
				sqlite3_bind_int64(st, 2, ids[i]);
				if (sqlite3_step(st) != SQLITE_DONE)
					rc = -EIO;
				else if (sqlite3_changes(ix->db))
					rc = idvec_push(&added, ids[i], x + (size_t)i * ix->dim);
			}
			sqlite3_finalize(st);
			if (begun)
				rc = end_change(ix, rc, 1, "storing vectors", &gone, &added, err, errsz);
			pthread_mutex_unlock(&ix->mu);
			idvec_free(&added);
			if (!rc) {
				ix->n_embedded_total += n;
				total += n;
				if (done)
					*done = total;
			}
		}
		free(x);
	}
	pthread_mutex_unlock(&ix->wmu);
	return rc;
}

/* ---- remove, rename, list, info --------------------------------------------- */

int index_remove(struct index *ix, const char *key, char *err, size_t errsz)
{
	if (ix->o.read_only)
		return ix_err(err, errsz, -EROFS, "the index is open read-only");
	struct idvec gone = {0}, none = {0};
	pthread_mutex_lock(&ix->wmu);
	pthread_mutex_lock(&ix->mu);
	int64_t id = doc_id_of(ix, key);
	int rc = id < 0 ? (int)id : ix_exec(ix, "BEGIN IMMEDIATE", err, errsz);
	if (id == -ENOENT)
		ix_err(err, errsz, rc, "%s: not in the index", key);
	else if (!rc)
		rc = end_change(ix, delete_doc(ix, id, &gone), 1, "removing a document", &gone, &none,
				err, errsz);
	pthread_mutex_unlock(&ix->mu);
	pthread_mutex_unlock(&ix->wmu);
	idvec_free(&gone);
	return rc;
}

int index_rename(struct index *ix, const char *from, const char *to, char *err, size_t errsz)
{
	if (ix->o.read_only)
		return ix_err(err, errsz, -EROFS, "the index is open read-only");
	if (!strcmp(from, to))
		return 0;
	struct idvec gone = {0}, none = {0};
	pthread_mutex_lock(&ix->wmu);
	pthread_mutex_lock(&ix->mu);
	int64_t id = doc_id_of(ix, from), dst = -ENOENT;
	int rc = id < 0 ? (int)id : ix_exec(ix, "BEGIN IMMEDIATE", err, errsz);
	if (id == -ENOENT)
		ix_err(err, errsz, rc, "%s: not in the index", from);
	else if (!rc) {
		dst = doc_id_of(ix, to);
		if (dst >= 0)
			rc = delete_doc(ix, dst, &gone); /* replaced */
		sqlite3_stmt *st = rc ? NULL : prep(ix, "UPDATE docs SET path = ? WHERE id = ?");
		if (st) {
			sqlite3_bind_text(st, 1, to, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, id);
			rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
			sqlite3_finalize(st);
		} else if (!rc) {
			rc = -EIO;
		}
		rc = end_change(ix, rc, 1, "renaming a document", &gone, &none, err, errsz);
	}
	pthread_mutex_unlock(&ix->mu);
	pthread_mutex_unlock(&ix->wmu);
	idvec_free(&gone);
	return rc;
}

/* A docs row as index_list and index_check read it (DOC_COLUMNS). */
#define DOC_COLUMNS "path, size, mtime_ns, hash, type, skipped, reason, n_chunks"

static struct index_doc doc_row(sqlite3_stmt *st)
{
	return (struct index_doc){
		.key = (const char *)sqlite3_column_text(st, 0),
		.size = sqlite3_column_int64(st, 1),
		.mtime_ns = sqlite3_column_int64(st, 2),
		.hash = (const char *)sqlite3_column_text(st, 3),
		.type = (const char *)sqlite3_column_text(st, 4),
		.skipped = sqlite3_column_int(st, 5),
		.reason = (const char *)sqlite3_column_text(st, 6),
		.n_chunks = sqlite3_column_int(st, 7),
	};
}

int index_list(struct index *ix, index_doc_fn fn, void *ctx, char *err, size_t errsz)
{
	pthread_mutex_lock(&ix->mu);
	sqlite3_stmt *st = prep(ix, "SELECT " DOC_COLUMNS " FROM docs ORDER BY path");
	int rc = st ? 0 : ix_sql_err(ix, err, errsz, "listing");
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		struct index_doc d = doc_row(st);
		if (fn(ctx, &d))
			break;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ix->mu);
	return rc;
}

static int64_t count(struct index *ix, const char *sql)
{
	sqlite3_stmt *st = prep(ix, sql);
	int64_t n = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_finalize(st);
	return n;
}

int index_info(struct index *ix, struct index_info *info)
{
	memset(info, 0, sizeof *info);
	pthread_mutex_lock(&ix->mu);
	info->n_docs = count(ix, "SELECT count(*) FROM docs WHERE skipped = 0");
	info->n_skipped = count(ix, "SELECT count(*) FROM docs WHERE skipped = 1");
	info->n_chunks = count(ix, "SELECT count(*) FROM chunks");
	info->n_pending = count(ix, "SELECT count(*) FROM chunks WHERE vec IS NULL");
	info->n_vectors = vec_count(ix->vec);
	info->dim = ix->model ? ix->dim : 0;
	if (ix->model) {
		const char *b = strrchr(ix->embedder_path, '/');
		snprintf(info->embedder, sizeof info->embedder, "%.255s",
			 b ? b + 1 : ix->embedder_path);
	}
	info->vectors = vec_kind_name(ix->kind);
	info->n_embedded_total = ix->n_embedded_total;
	info->bm25_bytes = ix_bm25_bytes(ix);
	pthread_mutex_unlock(&ix->mu);
	info->bm25_memory = ix_bm25_state(ix);
	return info->n_docs < 0 ? -EIO : 0;
}

/* ---- check ------------------------------------------------------------------ */

int index_check(struct index *ix, int repair, const char *base, index_doc_fn stale,
		void *ctx, struct index_check_report *rep, char *err, size_t errsz)
{
	memset(rep, 0, sizeof *rep);
	if (repair && ix->o.read_only)
		return ix_err(err, errsz, -EROFS, "the index is open read-only");
	pthread_mutex_lock(&ix->wmu);
	pthread_mutex_lock(&ix->mu);
	int rc = 0;
	sqlite3_stmt *st = prep(ix, "PRAGMA integrity_check");
	rep->sqlite_ok = st && sqlite3_step(st) == SQLITE_ROW &&
			 !strcmp((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	rep->fts_ok = sqlite3_exec(ix->db, "INSERT INTO chunks_fts(chunks_fts, rank) "
				   "VALUES('integrity-check', 1)", NULL, NULL, NULL) == SQLITE_OK;
	if (!rep->fts_ok && repair &&
	    (rc = ix_exec(ix, "INSERT INTO chunks_fts(chunks_fts) VALUES('rebuild')", err, errsz)))
		goto out;
	/* chunks of no document, documents whose count disagrees */
	int64_t orphans = count(ix, "SELECT count(*) FROM chunks WHERE doc_id NOT IN (SELECT id FROM docs)");
	if (orphans > 0 && repair &&
	    (rc = ix_exec(ix, "DELETE FROM chunks WHERE doc_id NOT IN (SELECT id FROM docs)", err, errsz)))
		goto out;
	if (repair &&
	    (rc = ix_exec(ix, "UPDATE docs SET n_chunks = (SELECT count(*) FROM chunks "
			      "WHERE doc_id = docs.id) WHERE n_chunks != (SELECT count(*) FROM "
			      "chunks WHERE doc_id = docs.id)", err, errsz)))
		goto out;
	rep->n_docs = count(ix, "SELECT count(*) FROM docs");
	rep->n_chunks = count(ix, "SELECT count(*) FROM chunks");
	rep->n_vectors = count(ix, "SELECT count(*) FROM chunks WHERE vec IS NOT NULL");

	/* FAISS against SQLite: every id, every vector */
	if (ix->vec) {
		int64_t *have = NULL, nh = 0;
		if ((rc = vec_ids(ix->vec, &have, &nh)))
			goto out;
		float *x = malloc((size_t)ix->dim * sizeof *x);
		st = prep(ix, "SELECT id, vec FROM chunks WHERE vec IS NOT NULL ORDER BY id");
		int64_t i = 0;
		while (x && st && sqlite3_step(st) == SQLITE_ROW) {
			int64_t id = sqlite3_column_int64(st, 0);
			while (i < nh && have[i] < id) {
				rep->faiss_extra++;
				i++;
			}
			if (i < nh && have[i] == id) {
				i++;
				if (sqlite3_column_bytes(st, 1) != ix->dim * (int)sizeof(float) ||
				    vec_get(ix->vec, id, x) ||
				    memcmp(x, sqlite3_column_blob(st, 1), (size_t)ix->dim * sizeof *x))
					rep->faiss_wrong++;
			} else {
				rep->faiss_missing++;
			}
		}
		rep->faiss_extra += nh - i;
		if (ix->kind == IX_VEC_HNSW) {
			rep->faiss_dead = rep->faiss_extra; /* removed, not yet compacted */
			rep->faiss_extra = 0;
		}
		sqlite3_finalize(st);
		free(x);
		free(have);
		if (repair && (rep->faiss_extra || rep->faiss_missing || rep->faiss_wrong ||
			       ix->vec_gen != ix->gen)) {
			if ((rc = ix_vec_rebuild(ix, err, errsz)) || (rc = persist_locked(ix, err, errsz)))
				goto out;
			rep->faiss_rebuilt = 1;
		}
	}

	/* documents whose file is gone or changed */
	if (base && stale) {
		st = prep(ix, "SELECT " DOC_COLUMNS " FROM docs ORDER BY path");
		while (st && sqlite3_step(st) == SQLITE_ROW) {
			struct index_doc d = doc_row(st);
			char p[4200];
			if (d.key[0] == '/')
				snprintf(p, sizeof p, "%s", d.key);
			else
				snprintf(p, sizeof p, "%s/%s", base, d.key);
			struct stat sb;
			if (stat(p, &sb) || sb.st_size != d.size ||
			    (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec != d.mtime_ns) {
				rep->stale_docs++;
				if (stale(ctx, &d))
					break;
			}
		}
		sqlite3_finalize(st);
	}
out:
	pthread_mutex_unlock(&ix->mu);
	pthread_mutex_unlock(&ix->wmu);
	return rc;
}
