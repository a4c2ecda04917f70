/*
 * gguf_write.c: the GGUF v3 writer (model conversion, tests).
 *
 * Keys and tensors are kept in the order they are added; every value and
 * every tensor's data is copied when added, so callers may free theirs at
 * once. Tensor data is aligned to 32 bytes, the GGUF default, unless the
 * caller sets general.alignment to another power of two; the layout is the
 * one ggml writes (each tensor padded to the alignment), so the files load
 * in llama.cpp and gguf-py as well.
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
	void *data;
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

/* -EINVAL for a bad name, type or shape (the checks gguf_open makes),
 * -EEXIST for a name already added, -ENOMEM. */
int gguf_w_tensor(struct gguf_writer *w, const char *name, enum kt_type type,
		  int n_dims, const int64_t *ne, const void *data)
{
	if (!w || !name || !*name || !ne || !data || n_dims < 1 || n_dims > 4 ||
	    !kt_type_supported((uint32_t)type))
		return -EINVAL;
	int64_t nelem = 1;
	for (int d = 0; d < n_dims; d++) {
		if (ne[d] < 1 || ne[d] > INT64_MAX / nelem)
			return -EINVAL;
		nelem *= ne[d];
	}
	int64_t be = kt_block_elems(type);
	if (be < 1 || ne[0] % be)
		return -EINVAL;
	uint64_t rows = (uint64_t)(nelem / ne[0]);
	size_t bb = kt_block_bytes(type);
	if ((uint64_t)(ne[0] / be) > SIZE_MAX / bb)
		return -EINVAL;
	size_t row = kt_row_bytes(type, ne[0]);
	if (rows > SIZE_MAX / row)
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
	struct wtensor t = { .type = type, .n_dims = n_dims, .size = row * rows };
	for (int d = 0; d < 4; d++)
		t.ne[d] = d < n_dims ? ne[d] : 1;
	t.name = strdup(name);
	t.data = malloc(t.size);
	if (!t.name || !t.data) {
		free(t.name);
		free(t.data);
		return -ENOMEM;
	}
	memcpy(t.data, data, t.size);
	w->t[w->n_t++] = t;
	return 0;
}

/* ---- writing ---------------------------------------------------------- */

/* A FILE with the byte position (for padding); failures are seen by
 * ferror/fflush at the end. */
struct out {
	FILE *f;
	uint64_t pos;
};

static void put(struct out *o, const void *p, size_t n)
{
	if (n)
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

static void pad_to(struct out *o, uint64_t a)
{
	static const uint8_t zeros[256];
	while (o->pos % a) {
		uint64_t n = a - o->pos % a;
		put(o, zeros, n < sizeof zeros ? (size_t)n : sizeof zeros);
		if (ferror(o->f))
			return;
	}
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return x % a ? x + (a - x % a) : x;
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
	errno = 0;
	struct out o = { fopen(tmp, "wb"), 0 };
	if (!o.f)
		goto werr;

	put_u32(&o, GGUF_MAGIC);
	put_u32(&o, GGUF_WRITE_VERSION);
	put_u64(&o, w->n_t);
	put_u64(&o, w->n_kv);
	for (size_t i = 0; i < w->n_kv; i++) {
		put_str(&o, w->kv[i].key);
		put_u32(&o, w->kv[i].type);
		put(&o, w->kv[i].val, w->kv[i].val_len);
	}
	uint64_t off = 0;
	for (size_t i = 0; i < w->n_t; i++) {
		const struct wtensor *t = &w->t[i];
		off = align_up(off, w->alignment);
		put_str(&o, t->name);
		put_u32(&o, (uint32_t)t->n_dims);
		for (int d = 0; d < t->n_dims; d++)
			put_u64(&o, (uint64_t)t->ne[d]);
		put_u32(&o, (uint32_t)t->type);
		put_u64(&o, off);
		off += t->size;
	}
	if (w->n_t) {
		/* The data section starts aligned, so aligning the file
		 * position puts each tensor at its aligned offset. The last
		 * tensor is padded too, as ggml and gguf-py write it: some
		 * readers load the data section as whole padded tensors. */
		for (size_t i = 0; i < w->n_t && !ferror(o.f); i++) {
			pad_to(&o, w->alignment);
			put(&o, w->t[i].data, w->t[i].size);
		}
		pad_to(&o, w->alignment);
	}
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
