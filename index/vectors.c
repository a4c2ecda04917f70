/*
 * vectors: the FAISS side of the index, through FAISS's C API.
 *
 * An IndexIDMap2 over a flat inner-product index ("IDMap2,Flat"), or over
 * HNSW ("IDMap2,HNSW32,Flat") for large stores, keyed by chunk id. The
 * vectors are L2-normalised, so inner product is cosine similarity. HNSW
 * cannot remove vectors: a removal there asks the caller to rebuild from
 * SQLite, which holds every vector too.
 *
 * The file is FAISS's own format followed by a 24-byte trailer ("seekfsV1",
 * the length before it, its XXH3-64 hash; FAISS's reader ignores what
 * follows the index). A file whose trailer is missing or does not match is
 * refused before FAISS parses it: damage inside the vector data would
 * otherwise load silently, and FAISS's reader leaks what it built when a
 * short file makes it throw. The caller rebuilds from SQLite.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <omp.h>

#include <xxhash.h>

#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/MetaIndexes_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/impl/AuxIndexStructures_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include "index/store_internal.h"

struct vecindex {
	FaissIndex *idx;
	FaissIndexIDMap2 *map; /* the same object, as an IDMap2 */
	int dim;
	enum index_vectors kind;
};

const char *vec_kind_name(enum index_vectors k)
{
	return k == IX_VEC_HNSW ? "hnsw" : "flat";
}

static int faiss_fail(char *err, size_t errsz, const char *what)
{
	const char *m = faiss_get_last_error();
	return ix_err(err, errsz, -EIO, "FAISS: %s: %s", what, m ? m : "unknown error");
}

/* FAISS parallelises over queries; seekfs asks one at a time, and idle
 * OpenMP workers spin and take a core from the embedder. The setting is
 * per calling thread, so every entry into FAISS makes it. */
static void one_thread(void)
{
	omp_set_num_threads(1);
}

struct vecindex *vec_new(int dim, enum index_vectors kind, char *err, size_t errsz)
{
	one_thread();
	struct vecindex *v = calloc(1, sizeof *v);
	if (!v) {
		ix_err(err, errsz, -ENOMEM, "out of memory");
		return NULL;
	}
	const char *desc = kind == IX_VEC_HNSW ? "IDMap2,HNSW32,Flat" : "IDMap2,Flat";
	if (faiss_index_factory(&v->idx, dim, desc, METRIC_INNER_PRODUCT)) {
		faiss_fail(err, errsz, desc);
		free(v);
		return NULL;
	}
	v->map = faiss_IndexIDMap2_cast(v->idx);
	v->dim = dim;
	v->kind = kind;
	return v;
}

void vec_free(struct vecindex *v)
{
	if (!v)
		return;
	faiss_Index_free(v->idx);
	free(v);
}

int64_t vec_count(const struct vecindex *v)
{
	return v ? faiss_Index_ntotal(v->idx) : 0;
}

int vec_add(struct vecindex *v, const int64_t *ids, const float *x, int64_t n,
	    char *err, size_t errsz)
{
	one_thread();
	if (n > 0 && faiss_Index_add_with_ids(v->idx, n, x, ids))
		return faiss_fail(err, errsz, "add");
	return 0;
}

int vec_remove(struct vecindex *v, const int64_t *ids, int64_t n, char *err, size_t errsz)
{
	one_thread();
	if (n <= 0)
		return 0;
	if (v->kind == IX_VEC_HNSW)
		return 1;
	FaissIDSelectorBatch *sel;
	if (faiss_IDSelectorBatch_new(&sel, (size_t)n, ids))
		return faiss_fail(err, errsz, "remove");
	size_t removed;
	int rc = faiss_Index_remove_ids(v->idx, (FaissIDSelector *)sel, &removed);
	faiss_IDSelector_free((FaissIDSelector *)sel);
	return rc ? faiss_fail(err, errsz, "remove") : 0;
}

int vec_search(struct vecindex *v, const float *q, int k, int64_t *ids, float *scores,
	       char *err, size_t errsz)
{
	one_thread();
	if (faiss_Index_search(v->idx, 1, q, k, scores, ids))
		return faiss_fail(err, errsz, "search");
	return 0;
}

int vec_get(struct vecindex *v, int64_t id, float *out)
{
	/* IDMap2 keeps a reverse map; an unknown id is an exception, not a crash */
	return faiss_Index_reconstruct(v->idx, id, out) ? -ENOENT : 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int vec_ids(struct vecindex *v, int64_t **ids, int64_t *n)
{
	idx_t *map;
	size_t len;
	faiss_IndexIDMap2_id_map(v->map, &map, &len);
	int64_t *c = malloc((len ? len : 1) * sizeof *c);
	if (!c)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++)
		c[i] = map[i];
	qsort(c, len, sizeof *c, cmp_i64);
	*ids = c;
	*n = (int64_t)len;
	return 0;
}

struct trailer {
	char magic[8];     /* TRAILER_MAGIC */
	uint64_t len;      /* bytes of FAISS data before the trailer */
	uint64_t hash;     /* XXH3-64 of those bytes */
};
#define TRAILER_MAGIC "seekfsV1"

/* XXH3-64 of the first len bytes of fd: 0, or a negative errno. */
static int hash_fd(int fd, uint64_t len, uint64_t *out)
{
	XXH3_state_t *st = XXH3_createState();
	enum { B = 1 << 20 };
	char *buf = malloc(B);
	int rc = st && buf ? 0 : -ENOMEM;
	if (!rc)
		XXH3_64bits_reset(st);
	for (uint64_t at = 0; !rc && at < len;) {
		ssize_t r = pread(fd, buf, len - at < B ? (size_t)(len - at) : B, (off_t)at);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r ? -errno : -EIO;
			break;
		}
		XXH3_64bits_update(st, buf, (size_t)r);
		at += (uint64_t)r;
	}
	if (!rc)
		*out = XXH3_64bits_digest(st);
	free(buf);
	XXH3_freeState(st);
	return rc;
}

int vec_save(struct vecindex *v, const char *path, char *err, size_t errsz)
{
	if (faiss_write_index_fname(v->idx, path))
		return faiss_fail(err, errsz, path);
	int fd = open(path, O_RDWR);
	struct stat sb;
	struct trailer t;
	memcpy(t.magic, TRAILER_MAGIC, sizeof t.magic);
	int rc = fd < 0 || fstat(fd, &sb) ? -errno : 0;
	if (!rc) {
		t.len = (uint64_t)sb.st_size;
		rc = hash_fd(fd, t.len, &t.hash);
	}
	if (!rc) {
		ssize_t w = pwrite(fd, &t, sizeof t, (off_t)t.len);
		rc = w == (ssize_t)sizeof t ? 0 : w < 0 ? -errno : -EIO;
	}
	if (!rc && fsync(fd))
		rc = -errno;
	if (fd >= 0)
		close(fd);
	return rc ? ix_err(err, errsz, rc, "%s: %s", path, strerror(-rc)) : 0;
}

int vec_load(const char *path, int dim, struct vecindex **out, char *err, size_t errsz)
{
	one_thread();
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return ix_err(err, errsz, -errno, "%s: %s", path, strerror(errno));
	struct stat sb;
	struct trailer t;
	uint64_t h = 0;
	int rc = fstat(fd, &sb) ? -errno : 0;
	if (!rc && (sb.st_size < (off_t)sizeof t ||
		    pread(fd, &t, sizeof t, sb.st_size - (off_t)sizeof t) != (ssize_t)sizeof t ||
		    memcmp(t.magic, TRAILER_MAGIC, sizeof t.magic) ||
		    t.len != (uint64_t)sb.st_size - sizeof t))
		rc = ix_err(err, errsz, -EINVAL, "%s: no seekfs trailer (damaged or truncated)", path);
	if (!rc && (rc = hash_fd(fd, t.len, &h)))
		ix_err(err, errsz, rc, "%s: %s", path, strerror(-rc));
	close(fd);
	if (!rc && h != t.hash)
		rc = ix_err(err, errsz, -EINVAL, "%s: checksum mismatch (damaged)", path);
	if (rc)
		return rc;
	struct vecindex *v = calloc(1, sizeof *v);
	if (!v)
		return ix_err(err, errsz, -ENOMEM, "out of memory");
	if (faiss_read_index_fname(path, 0, &v->idx)) {
		free(v);
		return faiss_fail(err, errsz, path);
	}
	v->map = faiss_IndexIDMap2_cast(v->idx);
	if (!v->map || faiss_Index_d(v->idx) != dim ||
	    faiss_Index_metric_type(v->idx) != METRIC_INNER_PRODUCT) {
		int d = faiss_Index_d(v->idx);
		vec_free(v);
		return ix_err(err, errsz, -EINVAL,
			      "%s: not an IDMap2 inner-product index of dimension %d (d=%d)",
			      path, dim, d);
	}
	FaissIndex *sub = faiss_IndexIDMap2_sub_index(v->map);
	v->kind = faiss_IndexFlat_cast(sub) ? IX_VEC_FLAT : IX_VEC_HNSW;
	v->dim = dim;
	*out = v;
	return 0;
}
