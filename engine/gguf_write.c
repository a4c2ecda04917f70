/*
 * gguf_write.c: the GGUF v3 writer (model conversion, synthetic models,
 * tests).
 *
 * Keys and tensors are kept in the order they are added; every value and
 * every tensor's data is copied when added, so callers may free theirs at
 * once. A tensor added with gguf_w_tensor_fill is the exception: its rows
 * are asked for while the file is written, a few MiB at a time, so that a
 * file of many GB (a synthetic model) never has to be held in memory.
 * Tensor data is aligned to 32 bytes, the GGUF default, unless the caller
 * sets general.alignment to another power of two; the layout is the one
 * ggml writes (each tensor padded to the alignment), so the files load in
 * llama.cpp and gguf-py as well.
 *
 * gguf_writer_write never leaves a partial file under the final name: it
 * writes PATH.tmp, flushes and fsyncs it, renames it over PATH and fsyncs
 * the directory, so that after it returns 0 the file survives a crash and a
 * reader (the models/ watcher) only ever sees a complete file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"

#define GGUF_MAGIC 0x46554747u
#define GGUF_WRITE_VERSION 3
#define GGUF_DEFAULT_ALIGNMENT 32

struct wkv {
	char *key;
	enum gguf_vtype type;
	uint8_t *val;      /* the encoded value that follows the type field */
	size_t val_len;
};

struct wtensor {
	char *name;
	enum kt_type type;
	int n_dims;
	int64_t ne[4];
	void *data;         /* the copy, or NULL when fill produces the rows */
	gguf_fill_fn fill;
	void *fill_ctx;
	size_t size;
};

struct gguf_writer {
	struct wkv *kv;
	size_t n_kv, cap_kv;
	struct wtensor *t;
	size_t n_t, cap_t;
	uint64_t alignment;
};

struct gguf_writer *gguf_writer_new(void)
{
	struct gguf_writer *w = calloc(1, sizeof *w);
	if (w)
		w->alignment = GGUF_DEFAULT_ALIGNMENT;
	return w;
}

void gguf_writer_free(struct gguf_writer *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n_kv; i++) {
		free(w->kv[i].key);
		free(w->kv[i].val);
	}
	for (size_t i = 0; i < w->n_t; i++) {
		free(w->t[i].name);
		free(w->t[i].data);
	}
	free(w->kv);
	free(w->t);
	free(w);
}

static size_t scalar_size(enum gguf_vtype t)
{
	switch (t) {
	case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
	case GGUF_U16: case GGUF_I16: return 2;
	case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
	case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
	default: return 0;
	}
}

/* Add key with an encoded value of len bytes, taking ownership of val (freed
 * on failure too). -EINVAL for a missing or empty key, -EEXIST when the key
 * was already added (readers refuse duplicates), -ENOMEM. */
static int add_kv(struct gguf_writer *w, const char *key, enum gguf_vtype type,
		  uint8_t *val, size_t len)
{
	int rc = 0;
	char *k = NULL;
	if (!w || !key || !*key) {
		rc = -EINVAL;
		goto out;
	}
	for (size_t i = 0; i < w->n_kv; i++) {
		if (!strcmp(w->kv[i].key, key)) {
			rc = -EEXIST;
			goto out;
		}
	}
	if (w->n_kv == w->cap_kv) {
		size_t c = w->cap_kv ? w->cap_kv * 2 : 16;
		struct wkv *p = realloc(w->kv, c * sizeof *p);
		if (!p) {
			rc = -ENOMEM;
			goto out;
		}
		w->kv = p;
		w->cap_kv = c;
	}
	if (!(k = strdup(key))) {
		rc = -ENOMEM;
		goto out;
	}
	w->kv[w->n_kv++] = (struct wkv){ k, type, val, len };
	return 0;
out:
	free(val);
	return rc;
}

static int add_scalar(struct gguf_writer *w, const char *key,
		      enum gguf_vtype type, const void *v)
{
	size_t n = scalar_size(type);
	uint8_t *val = malloc(n);
	if (!val)
		return -ENOMEM;
	memcpy(val, v, n);
	return add_kv(w, key, type, val, n);
}

/* general.alignment decides where tensor data goes: only a power of two
 * (as readers require) is accepted. */
static int check_alignment(struct gguf_writer *w, const char *key, uint64_t v)
{
	if (!w || !key || strcmp(key, "general.alignment"))
		return 0;
	if (v == 0 || (v & (v - 1)))
		return -EINVAL;
	return 1;
}

int gguf_w_u32(struct gguf_writer *w, const char *key, uint32_t v)
{
	int a = check_alignment(w, key, v);
	if (a < 0)
		return a;
	int rc = add_scalar(w, key, GGUF_U32, &v);
	if (!rc && a)
		w->alignment = v;
	return rc;
}

int gguf_w_i32(struct gguf_writer *w, const char *key, int32_t v)
{
	return add_scalar(w, key, GGUF_I32, &v);
}

int gguf_w_u64(struct gguf_writer *w, const char *key, uint64_t v)
{
	int a = check_alignment(w, key, v);
	if (a < 0)
		return a;
	int rc = add_scalar(w, key, GGUF_U64, &v);
	if (!rc && a)
		w->alignment = v;
	return rc;
}

int gguf_w_f32(struct gguf_writer *w, const char *key, float v)
{
	return add_scalar(w, key, GGUF_F32, &v);
}

int gguf_w_bool(struct gguf_writer *w, const char *key, int v)
{
	uint8_t b = v != 0;
	return add_scalar(w, key, GGUF_BOOL, &b);
}

int gguf_w_str(struct gguf_writer *w, const char *key, const char *s)
{
	if (!s)
		return -EINVAL;
	uint64_t len = strlen(s);
	uint8_t *val = malloc(8 + len);
	if (!val)
		return -ENOMEM;
	memcpy(val, &len, 8);
	memcpy(val + 8, s, len);
	return add_kv(w, key, GGUF_STR, val, 8 + len);
}

int gguf_w_arr(struct gguf_writer *w, const char *key, enum gguf_vtype etype,
	       const void *data, uint64_t n)
{
	size_t esz = scalar_size(etype);
	if (!esz || (n && !data) || n > (SIZE_MAX - 12) / esz)
		return -EINVAL;
	uint8_t *val = malloc(12 + n * esz);
	if (!val)
		return -ENOMEM;
	uint32_t et = etype;
	memcpy(val, &et, 4);
	memcpy(val + 4, &n, 8);
	if (n)
		memcpy(val + 12, data, n * esz);
	return add_kv(w, key, GGUF_ARR, val, 12 + n * esz);
}

/* lens may be NULL: the strings are then NUL-terminated. A string of length
 * 0 may be NULL. */
int gguf_w_arr_str(struct gguf_writer *w, const char *key,
		   const char *const *strs, const size_t *lens, uint64_t n)
{
	if (n && !strs)
		return -EINVAL;
	size_t total = 12;
	for (uint64_t i = 0; i < n; i++) {
		size_t len = lens ? lens[i] : strs[i] ? strlen(strs[i]) : 0;
		if (len && !strs[i])
			return -EINVAL;
		if (len > SIZE_MAX - 8 - total)
			return -EINVAL;
		total += 8 + len;
	}
	uint8_t *val = malloc(total);
	if (!val)
		return -ENOMEM;
	uint32_t et = GGUF_STR;
	memcpy(val, &et, 4);
	memcpy(val + 4, &n, 8);
	size_t p = 12;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t len = lens ? lens[i] : strs[i] ? strlen(strs[i]) : 0;
		memcpy(val + p, &len, 8);
		if (len)
			memcpy(val + p + 8, strs[i], len);
		p += 8 + len;
	}
	return add_kv(w, key, GGUF_ARR, val, total);
}

/* Bytes of a tensor of type and shape, after the checks gguf_open makes;
 * 0 for a bad type or shape. */
static size_t tensor_bytes(enum kt_type type, int n_dims, const int64_t *ne)
{
	if (!ne || n_dims < 1 || n_dims > 4 || !kt_type_supported((uint32_t)type))
		return 0;
	int64_t nelem = 1;
	for (int d = 0; d < n_dims; d++) {
		if (ne[d] < 1 || ne[d] > INT64_MAX / nelem)
			return 0;
		nelem *= ne[d];
	}
	int64_t be = kt_block_elems(type);
	if (be < 1 || ne[0] % be)
		return 0;
	uint64_t rows = (uint64_t)(nelem / ne[0]);
	size_t bb = kt_block_bytes(type);
	if ((uint64_t)(ne[0] / be) > SIZE_MAX / bb)
		return 0;
	size_t row = kt_row_bytes(type, ne[0]);
	if (rows > SIZE_MAX / row)
		return 0;
	return row * rows;
}

/* Append a tensor entry; takes neither data nor ctx (both NULL or one set).
 * -EINVAL for a bad name, type or shape, -EEXIST for a name already
 * added, -ENOMEM. */
static int add_tensor(struct gguf_writer *w, const char *name, enum kt_type type,
		      int n_dims, const int64_t *ne, const void *data,
		      gguf_fill_fn fill, void *fill_ctx)
{
	if (!w || !name || !*name)
		return -EINVAL;
	size_t size = tensor_bytes(type, n_dims, ne);
	if (!size)
		return -EINVAL;
	for (size_t i = 0; i < w->n_t; i++)
		if (!strcmp(w->t[i].name, name))
			return -EEXIST;
	if (w->n_t == w->cap_t) {
		size_t c = w->cap_t ? w->cap_t * 2 : 64;
		struct wtensor *p = realloc(w->t, c * sizeof *p);
		if (!p)
			return -ENOMEM;
		w->t = p;
		w->cap_t = c;
	}
	struct wtensor t = { .type = type, .n_dims = n_dims, .size = size,
			     .fill = fill, .fill_ctx = fill_ctx };
	for (int d = 0; d < 4; d++)
		t.ne[d] = d < n_dims ? ne[d] : 1;
	t.name = strdup(name);
	if (data)
		t.data = malloc(t.size);
	if (!t.name || (data && !t.data)) {
		free(t.name);
		free(t.data);
		return -ENOMEM;
	}
	if (data)
		memcpy(t.data, data, t.size);
	w->t[w->n_t++] = t;
	return 0;
}

/* -EINVAL for a bad name, type or shape (the checks gguf_open makes),
 * -EEXIST for a name already added, -ENOMEM. */
int gguf_w_tensor(struct gguf_writer *w, const char *name, enum kt_type type,
		  int n_dims, const int64_t *ne, const void *data)
{
	if (!data)
		return -EINVAL;
	return add_tensor(w, name, type, n_dims, ne, data, NULL, NULL);
}

int gguf_w_tensor_fill(struct gguf_writer *w, const char *name, enum kt_type type,
		       int n_dims, const int64_t *ne, gguf_fill_fn fill, void *ctx)
{
	if (!fill)
		return -EINVAL;
	return add_tensor(w, name, type, n_dims, ne, NULL, fill, ctx);
}

/* ---- writing ---------------------------------------------------------- */

/* A FILE with the byte position (for padding); failures are seen by
 * ferror/fflush at the end. With f NULL nothing is written and only the
 * position moves: gguf_writer_size runs the same code to count. */
struct out {
	FILE *f;
	uint64_t pos;
};

static void put(struct out *o, const void *p, size_t n)
{
	if (n && o->f)
		fwrite(p, 1, n, o->f);
	o->pos += n;
}

static void put_u32(struct out *o, uint32_t v)
{
	put(o, &v, 4);
}

static void put_u64(struct out *o, uint64_t v)
{
	put(o, &v, 8);
}

static void put_str(struct out *o, const char *s)
{
	uint64_t n = strlen(s);
	put_u64(o, n);
	put(o, s, n);
}

static int out_failed(const struct out *o)
{
	return o->f && ferror(o->f);
}

static void pad_to(struct out *o, uint64_t a)
{
	static const uint8_t zeros[256];
	while (o->pos % a) {
		uint64_t n = a - o->pos % a;
		put(o, zeros, n < sizeof zeros ? (size_t)n : sizeof zeros);
		if (out_failed(o))
			return;
	}
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return x % a ? x + (a - x % a) : x;
}

/* Header, metadata and tensor table, up to the start of the data section
 * (not yet padded). */
static void put_header(struct out *o, const struct gguf_writer *w)
{
	put_u32(o, GGUF_MAGIC);
	put_u32(o, GGUF_WRITE_VERSION);
	put_u64(o, w->n_t);
	put_u64(o, w->n_kv);
	for (size_t i = 0; i < w->n_kv; i++) {
		put_str(o, w->kv[i].key);
		put_u32(o, w->kv[i].type);
		put(o, w->kv[i].val, w->kv[i].val_len);
	}
	uint64_t off = 0;
	for (size_t i = 0; i < w->n_t; i++) {
		const struct wtensor *t = &w->t[i];
		off = align_up(off, w->alignment);
		put_str(o, t->name);
		put_u32(o, (uint32_t)t->n_dims);
		for (int d = 0; d < t->n_dims; d++)
			put_u64(o, (uint64_t)t->ne[d]);
		put_u32(o, (uint32_t)t->type);
		put_u64(o, off);
		off += t->size;
	}
}

uint64_t gguf_writer_size(const struct gguf_writer *w)
{
	struct out o = { NULL, 0 };
	put_header(&o, w);
	if (w->n_t) {
		for (size_t i = 0; i < w->n_t; i++) {
			o.pos = align_up(o.pos, w->alignment);
			o.pos += w->t[i].size;
		}
		o.pos = align_up(o.pos, w->alignment);
	}
	return o.pos;
}

/* Rows handed to a fill function at a time: about this many bytes. */
#define FILL_CHUNK ((size_t)4 << 20)

/* The rows of a fill tensor, asked for and written a chunk at a time
 * through *buf (grown as needed, freed by the caller). 0, or the fill
 * function's negative errno, or -ENOMEM. */
static int put_filled(struct out *o, const struct wtensor *t, void **buf, size_t *cap)
{
	size_t row = kt_row_bytes(t->type, t->ne[0]);
	int64_t rows = (int64_t)(t->size / row);
	int64_t per = (int64_t)(FILL_CHUNK / row);
	if (per < 1)
		per = 1;
	if (per > rows)
		per = rows;
	size_t need = (size_t)per * row;
	if (*cap < need) {
		void *nb = realloc(*buf, need);
		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = need;
	}
	for (int64_t r = 0; r < rows && !out_failed(o); r += per) {
		int64_t n = rows - r < per ? rows - r : per;
		int rc = t->fill(t->fill_ctx, r, n, *buf);
		if (rc)
			return rc < 0 ? rc : -EIO;
		put(o, *buf, (size_t)n * row);
	}
	return 0;
}

/* fsync the directory holding path, so that the rename is durable. */
static int fsync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return -1;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

int gguf_writer_write(struct gguf_writer *w, const char *path, char *err,
		      size_t errsz)
{
	if (err && errsz)
		err[0] = 0;
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 5);
	if (!tmp) {
		if (err && errsz)
			snprintf(err, errsz, "%s: out of memory", path);
		return -ENOMEM;
	}
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp", 5);

	/* o.pos stays 0 until the file is created */
	const char *what = "cannot write";
	char what_buf[160];
	void *fbuf = NULL;
	size_t fcap = 0;
	errno = 0;
	struct out o = { fopen(tmp, "wb"), 0 };
	if (!o.f)
		goto werr;

	put_header(&o, w);
	if (w->n_t) {
		/* The data section starts aligned, so aligning the file
		 * position puts each tensor at its aligned offset. The last
		 * tensor is padded too, as ggml and gguf-py write it: some
		 * readers load the data section as whole padded tensors. */
		for (size_t i = 0; i < w->n_t && !ferror(o.f); i++) {
			const struct wtensor *t = &w->t[i];
			pad_to(&o, w->alignment);
			if (!t->fill) {
				put(&o, t->data, t->size);
				continue;
			}
			int rc = put_filled(&o, t, &fbuf, &fcap);
			if (rc) {
				snprintf(what_buf, sizeof what_buf,
					 "cannot produce the data of tensor %s", t->name);
				what = what_buf;
				errno = -rc;
				goto werr;
			}
		}
		pad_to(&o, w->alignment);
	}
	free(fbuf);
	fbuf = NULL;
	if (ferror(o.f)) {
		/* errno is the failed write's (cleared above); EIO if
		 * stdio failed without one */
		goto werr;
	}
	if (fflush(o.f) || fsync(fileno(o.f)))
		goto werr;
	if (fclose(o.f)) {
		o.f = NULL;
		goto werr;
	}
	o.f = NULL;
	what = "cannot rename the temporary file into place";
	if (rename(tmp, path))
		goto werr;
	free(tmp);
	if (fsync_dir(path)) {
		int e = errno;
		if (err && errsz)
			snprintf(err, errsz, "%s: cannot sync its directory: %s",
				 path, strerror(e));
		return -e;
	}
	return 0;

werr:;
	int e = errno ? errno : EIO;
	free(fbuf);
	if (o.f)
		fclose(o.f);
	unlink(tmp);
	if (err && errsz && !o.pos)
		snprintf(err, errsz, "%s: cannot create %s: %s", path, tmp,
			 strerror(e));
	else if (err && errsz)
		snprintf(err, errsz, "%s: %s: %s", path, what, strerror(e));
	free(tmp);
	errno = e;
	return -e;
}
