/*
 * gguf.c: the GGUF reader.
 *
 * A file is mapped read-only and walked once at open. Every length, count,
 * offset and size is checked against the bytes that are really there before
 * it is used, so that a truncated or hostile file is refused with a sentence
 * saying what is wrong, never read out of bounds. Allocations grow with what
 * has actually been parsed (or are bounded by what the remaining bytes could
 * hold), so a header claiming billions of entries costs nothing.
 *
 * After open the object is immutable: every getter is a pure lookup and may
 * be called from any number of threads at once. Values are not copied (they
 * point into the mapping); keys and tensor names are copied NUL-terminated.
 * Keys and tensor names are found through indexes sorted by name, and the
 * element offsets of string arrays are indexed at open, so that
 * gguf_get_arr_str is O(1) on a 150k-token vocabulary.
 *
 * The mapping is MAP_PRIVATE and read-only: if another process truncates
 * the file while it is open, touching the lost pages raises SIGBUS, as with
 * any mapped file; seekfs only opens model files after they are complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "GGUF values are handed out in place as little-endian data: little-endian hosts only"
#endif

#define GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define GGUF_HEADER_BYTES 24
#define GGUF_DEFAULT_ALIGNMENT 32
/* The smallest encodings, used to bound counts by the bytes left. */
#define GGUF_MIN_KV_BYTES 13     /* empty key (8) + type (4) + 1-byte value */
#define GGUF_MIN_TENSOR_BYTES 32 /* empty name (8) + n_dims (4) + ne (8) + type (4) + offset (8) */
#define GGUF_MIN_ARR_BYTES 12    /* nested array: element type (4) + count (8) */
#define GGUF_MIN_STR_BYTES 8     /* empty string: its length */
/* Arrays of arrays are legal but unused by any model; nesting is bounded so
 * that skipping them cannot exhaust the stack. */
#define GGUF_MAX_DEPTH 8
/* How much of a key or tensor name a message shows. */
#define GGUF_SHOW_MAX 80

struct gguf_kv {
	const char *key;        /* NUL-terminated copy in g->names */
	uint64_t key_off;       /* key bytes in the file */
	uint64_t key_len;
	enum gguf_vtype type;
	enum gguf_vtype etype;  /* arrays: element type */
	uint64_t n;             /* strings: byte length; arrays: element count */
	uint64_t off;           /* scalar value, string bytes, or first element */
	uint64_t *str_off;      /* string arrays: file offset of each element's bytes */
};

struct name_ix {
	const char *name;
	int64_t idx;
};

struct gguf {
	char *name;
	const uint8_t *base;
	size_t size;
	bool mapped;
	uint32_t version;
	size_t alignment;
	uint64_t data_off;      /* file offset of the data section */

	struct gguf_kv *kv;
	int64_t n_kv;
	struct gguf_tensor *tensors;
	uint64_t *tname_off;    /* per tensor: file offset and length of its name */
	uint64_t *tname_len;
	int64_t n_tensors;

	char *names;            /* all key and tensor name copies */
	struct name_ix *kv_ix;  /* keys sorted by name */
	struct name_ix *t_ix;   /* tensors sorted by name */
};

/* A cursor over the file with the error sink. */
struct rd {
	const uint8_t *base;
	size_t size;
	size_t pos;
	const char *name;
	char *err;
	size_t errsz;
};

static int fail(struct rd *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct rd *r, const char *fmt, ...)
{
	if (r->err && r->errsz) {
		int n = snprintf(r->err, r->errsz, "%s: ", r->name);
		if (n >= 0 && (size_t)n < r->errsz) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(r->err + n, r->errsz - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return -EINVAL;
}

/* A key or tensor name from the file as a message may show it: printable
 * ASCII kept, other bytes as '?', long names cut with "...". */
static const char *show(char *buf, const uint8_t *p, uint64_t len)
{
	size_t n = len > GGUF_SHOW_MAX ? GGUF_SHOW_MAX - 3 : (size_t)len;
	for (size_t i = 0; i < n; i++)
		buf[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	if (n < len) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = 0;
	return buf;
}

static bool left(const struct rd *r, uint64_t n)
{
	return n <= r->size - r->pos;
}

static uint32_t rd_u32_at(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

static uint64_t rd_u64_at(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

/* Callers check left() first. */
static uint32_t take_u32(struct rd *r)
{
	uint32_t v = rd_u32_at(r->base + r->pos);
	r->pos += 4;
	return v;
}

static uint64_t take_u64(struct rd *r)
{
	uint64_t v = rd_u64_at(r->base + r->pos);
	r->pos += 8;
	return v;
}

static int truncated(struct rd *r, const char *what, uint64_t need)
{
	return fail(r, "truncated: %s needs %" PRIu64 " bytes at offset %zu, file has %zu",
		    what, need, r->pos, r->size);
}

static const char *const vtype_names[] = {
	"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string",
	"array", "u64", "i64", "f64",
};

static const char *vtype_name(uint32_t t)
{
	return t <= GGUF_F64 ? vtype_names[t] : "unknown";
}

/* Bytes of a scalar of type t; 0 for strings, arrays and unknown types. */
static size_t vtype_size(uint32_t t)
{
	switch (t) {
	case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
	case GGUF_U16: case GGUF_I16: return 2;
	case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
	case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
	default: return 0;
	}
}

/* ---- metadata --------------------------------------------------------- */

/* Parse one array value (element type, count, elements) for key `what`,
 * recursing into nested arrays up to GGUF_MAX_DEPTH. When kv is not NULL
 * (top level) the array is recorded there, including the offsets of string
 * elements. */
static int parse_array(struct rd *r, const char *what, int depth,
		       struct gguf_kv *kv)
{
	if (depth > GGUF_MAX_DEPTH)
		return fail(r, "%s nests arrays more than %d deep", what,
			    GGUF_MAX_DEPTH);
	if (!left(r, 12))
		return truncated(r, what, 12);
	uint32_t et = take_u32(r);
	uint64_t n = take_u64(r);
	if (et > GGUF_F64)
		return fail(r, "%s is an array of unknown element type %" PRIu32,
			    what, et);
	if (kv) {
		kv->etype = (enum gguf_vtype)et;
		kv->n = n;
		kv->off = r->pos;
	}
	size_t esz = vtype_size(et);
	size_t min = esz ? esz : et == GGUF_STR ? GGUF_MIN_STR_BYTES : GGUF_MIN_ARR_BYTES;
	if (n > (r->size - r->pos) / min) {
		const char *s = esz ? "" : "s";
		if (n > UINT64_MAX / min)
			return fail(r, "truncated: %s array of %" PRIu64 " %s%s needs more than 2^64 bytes",
				    what, n, vtype_name(et), s);
		return fail(r, "truncated: %s array of %" PRIu64 " %s%s needs %s%" PRIu64 " bytes at offset %zu, file has %zu",
			    what, n, vtype_name(et), s, esz ? "" : "at least ",
			    n * min, r->pos, r->size);
	}
	if (esz) {
		r->pos += n * esz;
		return 0;
	}
	if (et == GGUF_STR && kv) {
		/* n * 8 <= bytes left: bounded by the file */
		kv->str_off = malloc(n ? n * sizeof *kv->str_off : 1);
		if (!kv->str_off) {
			if (r->err && r->errsz)
				snprintf(r->err, r->errsz, "%s: out of memory indexing %s",
					 r->name, what);
			return -ENOMEM;
		}
	}
	for (uint64_t j = 0; j < n; j++) {
		if (et == GGUF_STR) {
			if (!left(r, 8)) {
				char w[GGUF_SHOW_MAX + 64];
				snprintf(w, sizeof w, "%s element %" PRIu64, what, j);
				return truncated(r, w, 8);
			}
			uint64_t len = take_u64(r);
			if (!left(r, len)) {
				char w[GGUF_SHOW_MAX + 64];
				snprintf(w, sizeof w, "%s element %" PRIu64, what, j);
				return truncated(r, w, len);
			}
			if (kv)
				kv->str_off[j] = r->pos;
			r->pos += len;
		} else {
			int rc = parse_array(r, what, depth + 1, NULL);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int grow(void **p, int64_t *cap, int64_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	int64_t c = *cap ? *cap * 2 : 16;
	void *q = realloc(*p, (size_t)c * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

static int oom(struct rd *r)
{
	if (r->err && r->errsz)
		snprintf(r->err, r->errsz, "%s: out of memory", r->name);
	return -ENOMEM;
}

static int parse_kvs(struct gguf *g, struct rd *r, uint64_t n_kv)
{
	int64_t cap = 0;
	for (uint64_t i = 0; i < n_kv; i++) {
		char what[GGUF_SHOW_MAX + 32];
		snprintf(what, sizeof what, "key #%" PRIu64, i);
		if (!left(r, 8))
			return truncated(r, what, 8);
		uint64_t klen = take_u64(r);
		if (!left(r, klen))
			return truncated(r, what, klen);
		const uint8_t *k = r->base + r->pos;
		if (memchr(k, 0, klen))
			return fail(r, "key #%" PRIu64 " contains a NUL byte", i);
		if (grow((void **)&g->kv, &cap, g->n_kv, sizeof *g->kv))
			return oom(r);
		struct gguf_kv *kv = &g->kv[g->n_kv++];
		memset(kv, 0, sizeof *kv);
		kv->key_off = r->pos;
		kv->key_len = klen;
		r->pos += klen;

		char shown[GGUF_SHOW_MAX + 1];
		snprintf(what, sizeof what, "key '%s'", show(shown, k, klen));
		if (!left(r, 4))
			return truncated(r, what, 4);
		uint32_t t = take_u32(r);
		if (t > GGUF_F64)
			return fail(r, "%s has unknown value type %" PRIu32, what, t);
		kv->type = (enum gguf_vtype)t;
		size_t sz = vtype_size(t);
		if (sz) {
			if (!left(r, sz))
				return truncated(r, what, sz);
			kv->off = r->pos;
			r->pos += sz;
		} else if (t == GGUF_STR) {
			if (!left(r, 8))
				return truncated(r, what, 8);
			uint64_t len = take_u64(r);
			if (!left(r, len))
				return truncated(r, what, len);
			kv->n = len;
			kv->off = r->pos;
			r->pos += len;
		} else {
			int rc = parse_array(r, what, 1, kv);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* ---- tensor infos ----------------------------------------------------- */

static int parse_tensor_infos(struct gguf *g, struct rd *r, uint64_t n_t)
{
	int64_t cap = 0, cap1 = 0, cap2 = 0;
	for (uint64_t i = 0; i < n_t; i++) {
		char what[GGUF_SHOW_MAX + 32];
		snprintf(what, sizeof what, "tensor #%" PRIu64, i);
		if (!left(r, 8))
			return truncated(r, what, 8);
		uint64_t nlen = take_u64(r);
		if (!left(r, nlen))
			return truncated(r, what, nlen);
		const uint8_t *nm = r->base + r->pos;
		if (memchr(nm, 0, nlen))
			return fail(r, "tensor #%" PRIu64 " has a name containing a NUL byte", i);
		if (grow((void **)&g->tensors, &cap, g->n_tensors, sizeof *g->tensors) ||
		    grow((void **)&g->tname_off, &cap1, g->n_tensors, sizeof *g->tname_off) ||
		    grow((void **)&g->tname_len, &cap2, g->n_tensors, sizeof *g->tname_len))
			return oom(r);
		int64_t ti = g->n_tensors++;
		struct gguf_tensor *t = &g->tensors[ti];
		memset(t, 0, sizeof *t);
		g->tname_off[ti] = r->pos;
		g->tname_len[ti] = nlen;
		r->pos += nlen;

		char shown[GGUF_SHOW_MAX + 1];
		show(shown, nm, nlen);
		snprintf(what, sizeof what, "tensor '%s'", shown);
		if (!left(r, 4))
			return truncated(r, what, 4);
		uint32_t nd = take_u32(r);
		if (nd < 1 || nd > 4)
			return fail(r, "tensor '%s' has %" PRIu32 " dimensions (1 to 4 are supported)",
				    shown, nd);
		t->n_dims = (int)nd;
		if (!left(r, 8 * (uint64_t)nd + 12))
			return truncated(r, what, 8 * (uint64_t)nd + 12);
		int64_t nelem = 1;
		for (int d = 0; d < 4; d++) {
			t->ne[d] = 1;
			if (d >= (int)nd)
				continue;
			uint64_t v = take_u64(r);
			if (v < 1 || v > INT64_MAX)
				return fail(r, "tensor '%s' has ne[%d] = %" PRIu64 " (each dimension must be 1 to 2^63-1)",
					    shown, d, v);
			t->ne[d] = (int64_t)v;
			if (t->ne[d] > INT64_MAX / nelem)
				return fail(r, "tensor '%s' has more than 2^63 elements", shown);
			nelem *= t->ne[d];
		}
		uint32_t type = take_u32(r);
		t->type = type;
		t->offset = take_u64(r);
		if (!kt_type_supported(type)) {
			const char *tn = kt_type_name(type);
			return fail(r, "tensor '%s' has type %" PRIu32 "%s%s%s, which is not supported",
				    shown, type, tn ? " (" : "", tn ? tn : "", tn ? ")" : "");
		}
		int64_t be = kt_block_elems((enum kt_type)type);
		if (be < 1 || t->ne[0] % be)
			return fail(r, "tensor '%s' has rows of %" PRId64 " elements, not a multiple of the %s block size %" PRId64,
				    shown, t->ne[0], kt_type_name(type), be);
	}
	return 0;
}

/* ---- lookup indexes --------------------------------------------------- */

/* Keys and tensor names are found by binary search in an index sorted by
 * name: O(log n) per lookup and O(n log n) to build whatever the names are,
 * where a hash table could be driven quadratic by a file full of colliding
 * names. */
static int cmp_name_ix(const void *a, const void *b)
{
	const struct name_ix *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Index of name in ix (n entries), or -1. */
static int64_t ix_find(const struct name_ix *ix, int64_t n, const char *name)
{
	int64_t lo = 0, hi = n;
	while (lo < hi) {
		int64_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ix[mid].name, name);
		if (!c)
			return ix[mid].idx;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int build_indexes(struct gguf *g, struct rd *r)
{
	size_t total = 1;
	for (int64_t i = 0; i < g->n_kv; i++)
		total += g->kv[i].key_len + 1;
	for (int64_t i = 0; i < g->n_tensors; i++)
		total += g->tname_len[i] + 1;
	g->names = malloc(total);
	g->kv_ix = malloc(((size_t)g->n_kv + 1) * sizeof *g->kv_ix);
	g->t_ix = malloc(((size_t)g->n_tensors + 1) * sizeof *g->t_ix);
	if (!g->names || !g->kv_ix || !g->t_ix)
		return oom(r);

	char *p = g->names;
	for (int64_t i = 0; i < g->n_kv; i++) {
		struct gguf_kv *kv = &g->kv[i];
		memcpy(p, g->base + kv->key_off, kv->key_len);
		p[kv->key_len] = 0;
		kv->key = p;
		p += kv->key_len + 1;
		g->kv_ix[i] = (struct name_ix){ kv->key, i };
	}
	for (int64_t i = 0; i < g->n_tensors; i++) {
		uint64_t len = g->tname_len[i];
		memcpy(p, g->base + g->tname_off[i], len);
		p[len] = 0;
		g->tensors[i].name = p;
		p += len + 1;
		g->t_ix[i] = (struct name_ix){ g->tensors[i].name, i };
	}
	qsort(g->kv_ix, (size_t)g->n_kv, sizeof *g->kv_ix, cmp_name_ix);
	qsort(g->t_ix, (size_t)g->n_tensors, sizeof *g->t_ix, cmp_name_ix);
	char shown[GGUF_SHOW_MAX + 1];
	for (int64_t i = 1; i < g->n_kv; i++) {
		const struct name_ix *x = &g->kv_ix[i - 1], *y = &g->kv_ix[i];
		if (!strcmp(x->name, y->name))
			return fail(r, "key '%s' appears twice (keys #%" PRId64 " and #%" PRId64 ")",
				    show(shown, (const uint8_t *)x->name, strlen(x->name)),
				    x->idx, y->idx);
	}
	for (int64_t i = 1; i < g->n_tensors; i++) {
		const struct name_ix *x = &g->t_ix[i - 1], *y = &g->t_ix[i];
		if (!strcmp(x->name, y->name))
			return fail(r, "tensor '%s' appears twice (tensors #%" PRId64 " and #%" PRId64 ")",
				    show(shown, (const uint8_t *)x->name, strlen(x->name)),
				    x->idx, y->idx);
	}
	return 0;
}

/* ---- alignment and tensor data ---------------------------------------- */

static int read_alignment(struct gguf *g, struct rd *r)
{
	g->alignment = GGUF_DEFAULT_ALIGNMENT;
	int64_t i = gguf_find_key(g, "general.alignment");
	if (i < 0)
		return 0;
	const struct gguf_kv *kv = &g->kv[i];
	uint64_t v;
	switch (kv->type) {
	case GGUF_U8: v = g->base[kv->off]; break;
	case GGUF_U16: { uint16_t x; memcpy(&x, g->base + kv->off, 2); v = x; break; }
	case GGUF_U32: v = rd_u32_at(g->base + kv->off); break;
	case GGUF_U64: v = rd_u64_at(g->base + kv->off); break;
	default:
		return fail(r, "key 'general.alignment' has type %s, expected an unsigned integer",
			    vtype_name(kv->type));
	}
	if (v == 0 || (v & (v - 1)) || v > SIZE_MAX)
		return fail(r, "key 'general.alignment' is %" PRIu64 ", expected a power of two",
			    v);
	g->alignment = (size_t)v;
	return 0;
}

struct extent {
	uint64_t start, end;
	int64_t idx;
};

static int cmp_extent(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int place_tensors(struct gguf *g, struct rd *r)
{
	/* Before the data section: the padding to the alignment. Vocabulary-only
	 * files end right after the metadata, without that padding. */
	uint64_t a = g->alignment;
	uint64_t pos = r->pos;
	g->data_off = pos % a ? pos + (a - pos % a) : pos;
	if (!g->n_tensors)
		return 0;

	struct extent *ext = malloc((size_t)g->n_tensors * sizeof *ext);
	if (!ext)
		return oom(r);
	int rc = 0;
	for (int64_t i = 0; i < g->n_tensors && !rc; i++) {
		struct gguf_tensor *t = &g->tensors[i];
		char shown[GGUF_SHOW_MAX + 1];
		show(shown, (const uint8_t *)t->name, g->tname_len[i]);
		enum kt_type type = (enum kt_type)t->type;
		uint64_t rows = (uint64_t)t->ne[1] * (uint64_t)t->ne[2] *
				(uint64_t)t->ne[3];
		/* nblocks * rows <= the element count < 2^63 and a block is
		 * well under 2^16 bytes: the product fits 128 bits. */
		unsigned __int128 need = (unsigned __int128)(t->ne[0] / kt_block_elems(type)) *
					 kt_block_bytes(type) * rows;
		if (t->offset % a) {
			rc = fail(r, "tensor '%s' has offset %" PRIu64 ", not a multiple of the alignment %zu",
				  shown, t->offset, g->alignment);
			break;
		}
		uint64_t room = g->data_off <= g->size ? g->size - g->data_off : 0;
		if (t->offset > room || need > room - t->offset) {
			if (need > UINT64_MAX)
				rc = fail(r, "tensor '%s' (%" PRId64 " x %" PRId64 " x %" PRId64 " x %" PRId64 " %s) is too large for any file",
					  shown, t->ne[0], t->ne[1], t->ne[2], t->ne[3],
					  kt_type_name(type));
			else if (t->offset > UINT64_MAX - g->data_off)
				rc = fail(r, "truncated: tensor '%s' has offset %" PRIu64 ", past the end of the file (%zu bytes)",
					  shown, t->offset, g->size);
			else
				rc = fail(r, "truncated: tensor %s needs %" PRIu64 " bytes at offset %" PRIu64 ", file has %zu",
					  shown, (uint64_t)need, g->data_off + t->offset, g->size);
			break;
		}
		t->size = kt_row_bytes(type, t->ne[0]) * (size_t)rows;
		if (t->size != need) {
			rc = fail(r, "tensor '%s': the size of a %s row of %" PRId64 " elements is inconsistent",
				  shown, kt_type_name(type), t->ne[0]);
			break;
		}
		t->data = g->base + g->data_off + t->offset;
		ext[i] = (struct extent){ t->offset, t->offset + t->size, i };
	}
	if (!rc) {
		qsort(ext, (size_t)g->n_tensors, sizeof *ext, cmp_extent);
		for (int64_t i = 1; i < g->n_tensors; i++) {
			const struct extent *p = &ext[i - 1], *q = &ext[i];
			if (q->start < p->end) {
				char s1[GGUF_SHOW_MAX + 1], s2[GGUF_SHOW_MAX + 1];
				rc = fail(r, "tensors '%s' (bytes %" PRIu64 "-%" PRIu64 ") and '%s' (bytes %" PRIu64 "-%" PRIu64 ") of the data section overlap",
					  show(s1, g->base + g->tname_off[p->idx], g->tname_len[p->idx]),
					  p->start, p->end,
					  show(s2, g->base + g->tname_off[q->idx], g->tname_len[q->idx]),
					  q->start, q->end);
				break;
			}
		}
	}
	free(ext);
	return rc;
}

/* ---- open / close ----------------------------------------------------- */

static int parse(struct gguf *g, struct rd *r)
{
	if (r->size < 4)
		return fail(r, "truncated: the file has %zu bytes, too short for a GGUF header",
			    r->size);
	uint32_t magic = take_u32(r);
	if (magic != GGUF_MAGIC) {
		const uint8_t *m = r->base;
		return fail(r, "not a GGUF file (it starts with bytes %02x %02x %02x %02x, not \"GGUF\")",
			    m[0], m[1], m[2], m[3]);
	}
	if (!left(r, 4))
		return fail(r, "truncated: the header needs %d bytes, file has %zu",
			    GGUF_HEADER_BYTES, r->size);
	uint32_t ver = take_u32(r);
	if (ver == 0x02000000u || ver == 0x03000000u)
		return fail(r, "big-endian GGUF file (version %" PRIu32 "), only little-endian files are supported",
			    __builtin_bswap32(ver));
	if (ver == 1)
		return fail(r, "GGUF version 1 is not supported (only versions 2 and 3): convert the model again with a current llama.cpp");
	if (ver != 2 && ver != 3)
		return fail(r, "GGUF version %" PRIu32 " is not supported (only versions 2 and 3)",
			    ver);
	g->version = ver;
	if (!left(r, 16))
		return fail(r, "truncated: the header needs %d bytes, file has %zu",
			    GGUF_HEADER_BYTES, r->size);
	uint64_t n_t = take_u64(r);
	uint64_t n_kv = take_u64(r);
	size_t rest = r->size - r->pos;
	if (n_kv > rest / GGUF_MIN_KV_BYTES) {
		if (n_kv > UINT64_MAX / GGUF_MIN_KV_BYTES)
			return fail(r, "the header claims %" PRIu64 " keys, more than any file can hold",
				    n_kv);
		return fail(r, "truncated: the header claims %" PRIu64 " keys, which need at least %" PRIu64 " bytes at offset %zu, file has %zu",
			    n_kv, n_kv * GGUF_MIN_KV_BYTES, r->pos, r->size);
	}
	size_t rest_t = rest - n_kv * GGUF_MIN_KV_BYTES;
	if (n_t > rest_t / GGUF_MIN_TENSOR_BYTES) {
		if (n_t > (UINT64_MAX - rest) / GGUF_MIN_TENSOR_BYTES)
			return fail(r, "the header claims %" PRIu64 " tensors, more than any file can hold",
				    n_t);
		return fail(r, "truncated: the header claims %" PRIu64 " tensors and %" PRIu64 " keys, which need at least %" PRIu64 " bytes at offset %zu, file has %zu",
			    n_t, n_kv, n_t * GGUF_MIN_TENSOR_BYTES + (rest - rest_t), r->pos, r->size);
	}
	int rc = parse_kvs(g, r, n_kv);
	if (!rc)
		rc = parse_tensor_infos(g, r, n_t);
	if (!rc)
		rc = build_indexes(g, r);
	if (!rc)
		rc = read_alignment(g, r);
	if (!rc)
		rc = place_tensors(g, r);
	return rc;
}

void gguf_close(struct gguf *g)
{
	if (!g)
		return;
	for (int64_t i = 0; i < g->n_kv; i++)
		free(g->kv[i].str_off);
	free(g->kv);
	free(g->tensors);
	free(g->tname_off);
	free(g->tname_len);
	free(g->names);
	free(g->kv_ix);
	free(g->t_ix);
	if (g->mapped && g->size)
		munmap((void *)g->base, g->size);
	free(g->name);
	free(g);
}

/* Takes the mapping (when mapped): it is released on failure too. */
static int open_buf(const void *buf, size_t len, const char *name, bool mapped,
		    struct gguf **out, char *err, size_t errsz)
{
	*out = NULL;
	if (err && errsz)
		err[0] = 0;
	struct rd r = { buf, len, 0, name, err, errsz };
	struct gguf *g = calloc(1, sizeof *g);
	if (!g || !(g->name = strdup(name))) {
		free(g);
		if (mapped && len)
			munmap((void *)buf, len);
		return oom(&r);
	}
	g->base = buf;
	g->size = len;
	g->mapped = mapped;
	int rc = parse(g, &r);
	/* Only needed for messages while parsing. */
	free(g->tname_off);
	free(g->tname_len);
	g->tname_off = g->tname_len = NULL;
	if (rc) {
		gguf_close(g);
		return rc;
	}
	*out = g;
	return 0;
}

int gguf_open_mem(const void *buf, size_t len, const char *name,
		  struct gguf **out, char *err, size_t errsz)
{
	if (!name)
		name = "(memory)";
	if (!buf && len) {
		*out = NULL;
		if (err && errsz)
			snprintf(err, errsz, "%s: no buffer", name);
		return -EINVAL;
	}
	return open_buf(buf, len, name, false, out, err, errsz);
}

static int sys_fail(const char *path, const char *what, int e, char *err,
		    size_t errsz)
{
	if (err && errsz)
		snprintf(err, errsz, "%s: %s: %s", path, what, strerror(e));
	return -e;
}

int gguf_open(const char *path, struct gguf **out, char *err, size_t errsz)
{
	*out = NULL;
	/* O_NONBLOCK: a FIFO put in place of a model must not hang the
	 * caller; it is refused below as not a regular file. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return sys_fail(path, "cannot open", errno, err, errsz);
	struct stat st;
	if (fstat(fd, &st)) {
		int e = errno;
		close(fd);
		return sys_fail(path, "cannot stat", e, err, errsz);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		int e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		if (err && errsz)
			snprintf(err, errsz, "%s: not a regular file", path);
		return -e;
	}
	size_t len = (size_t)st.st_size;
	const void *base = NULL;
	if (len) {
		void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			int e = errno;
			close(fd);
			return sys_fail(path, "cannot map", e, err, errsz);
		}
		base = m;
	}
	close(fd);
	return open_buf(base, len, path, true, out, err, errsz);
}

/* ---- getters ---------------------------------------------------------- */

const char *gguf_name(const struct gguf *g)
{
	return g->name;
}

uint32_t gguf_version(const struct gguf *g)
{
	return g->version;
}

size_t gguf_alignment(const struct gguf *g)
{
	return g->alignment;
}

size_t gguf_file_size(const struct gguf *g)
{
	return g->size;
}

int64_t gguf_n_kv(const struct gguf *g)
{
	return g->n_kv;
}

const char *gguf_kv_key(const struct gguf *g, int64_t i)
{
	return i >= 0 && i < g->n_kv ? g->kv[i].key : NULL;
}

int64_t gguf_find_key(const struct gguf *g, const char *key)
{
	if (!key || !g->kv_ix)
		return -1;
	return ix_find(g->kv_ix, g->n_kv, key);
}

enum gguf_vtype gguf_kv_type(const struct gguf *g, int64_t i)
{
	return i >= 0 && i < g->n_kv ? g->kv[i].type : (enum gguf_vtype)-1;
}

static const struct gguf_kv *find_kv(const struct gguf *g, const char *key)
{
	int64_t i = gguf_find_key(g, key);
	return i < 0 ? NULL : &g->kv[i];
}

int gguf_get_i64(const struct gguf *g, const char *key, int64_t *out)
{
	const struct gguf_kv *kv = find_kv(g, key);
	if (!kv)
		return -ENOENT;
	const uint8_t *p = g->base + kv->off;
	int64_t v;
	switch (kv->type) {
	case GGUF_U8: v = p[0]; break;
	case GGUF_I8: v = (int8_t)p[0]; break;
	case GGUF_BOOL: v = p[0] != 0; break;
	case GGUF_U16: { uint16_t x; memcpy(&x, p, 2); v = x; break; }
	case GGUF_I16: { int16_t x; memcpy(&x, p, 2); v = x; break; }
	case GGUF_U32: v = rd_u32_at(p); break;
	case GGUF_I32: { int32_t x; memcpy(&x, p, 4); v = x; break; }
	case GGUF_I64: memcpy(&v, p, 8); break;
	case GGUF_U64: {
		uint64_t x = rd_u64_at(p);
		if (x > INT64_MAX)
			return -EINVAL;
		v = (int64_t)x;
		break;
	}
	default:
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int gguf_get_f64(const struct gguf *g, const char *key, double *out)
{
	const struct gguf_kv *kv = find_kv(g, key);
	if (!kv)
		return -ENOENT;
	const uint8_t *p = g->base + kv->off;
	switch (kv->type) {
	case GGUF_F32: { float x; memcpy(&x, p, 4); *out = x; return 0; }
	case GGUF_F64: memcpy(out, p, 8); return 0;
	case GGUF_U64: *out = (double)rd_u64_at(p); return 0;
	case GGUF_BOOL: case GGUF_STR: case GGUF_ARR: return -EINVAL;
	default: {
		int64_t v;
		int rc = gguf_get_i64(g, key, &v);
		if (!rc)
			*out = (double)v;
		return rc;
	}
	}
}

int64_t gguf_get_i64_or(const struct gguf *g, const char *key, int64_t def)
{
	int64_t v;
	return gguf_get_i64(g, key, &v) ? def : v;
}

double gguf_get_f64_or(const struct gguf *g, const char *key, double def)
{
	double v;
	return gguf_get_f64(g, key, &v) ? def : v;
}

const char *gguf_get_str(const struct gguf *g, const char *key, size_t *len)
{
	const struct gguf_kv *kv = find_kv(g, key);
	if (!kv || kv->type != GGUF_STR)
		return NULL;
	if (len)
		*len = (size_t)kv->n;
	return (const char *)g->base + kv->off;
}

int gguf_get_arr(const struct gguf *g, const char *key, enum gguf_vtype *etype,
		 uint64_t *n, const void **data)
{
	const struct gguf_kv *kv = find_kv(g, key);
	if (!kv)
		return -ENOENT;
	if (kv->type != GGUF_ARR)
		return -EINVAL;
	if (etype)
		*etype = kv->etype;
	if (n)
		*n = kv->n;
	if (data)
		*data = vtype_size(kv->etype) ? g->base + kv->off : NULL;
	return 0;
}

const char *gguf_get_arr_str(const struct gguf *g, int64_t key_index,
			     uint64_t j, size_t *len)
{
	if (key_index < 0 || key_index >= g->n_kv)
		return NULL;
	const struct gguf_kv *kv = &g->kv[key_index];
	if (kv->type != GGUF_ARR || kv->etype != GGUF_STR || j >= kv->n)
		return NULL;
	uint64_t off = kv->str_off[j];
	if (len)
		*len = (size_t)rd_u64_at(g->base + off - 8);
	return (const char *)g->base + off;
}

int64_t gguf_n_tensors(const struct gguf *g)
{
	return g->n_tensors;
}

const struct gguf_tensor *gguf_tensor_at(const struct gguf *g, int64_t i)
{
	return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf *g,
					   const char *name)
{
	if (!name || !g->t_ix)
		return NULL;
	int64_t i = ix_find(g->t_ix, g->n_tensors, name);
	return i < 0 ? NULL : &g->tensors[i];
}
