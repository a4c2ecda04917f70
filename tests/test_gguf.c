/*
 * test_gguf: the GGUF reader and writer.
 *
 * Round trips through the writer, files built byte by byte (for the types
 * and versions the writer does not produce, and for corrupt headers), the
 * real vocabulary files in the shared data, and truncation at every byte:
 * each bad file must be refused with a message naming what is wrong, never
 * crash or read out of bounds (run under ASan/UBSan to see the latter).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine.h"
#include "testutil.h"

static char tmpdir[] = "/tmp/test_gguf.XXXXXX";

/* ---- a byte builder for hand-made files -------------------------------- */

struct bb {
	uint8_t *p;
	size_t n, cap;
};

static void bb_put(struct bb *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		T_REQUIRE(b->p, "out of memory");
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void bb_u8(struct bb *b, uint8_t v) { bb_put(b, &v, 1); }
static void bb_u16(struct bb *b, uint16_t v) { bb_put(b, &v, 2); }
static void bb_u32(struct bb *b, uint32_t v) { bb_put(b, &v, 4); }
static void bb_u64(struct bb *b, uint64_t v) { bb_put(b, &v, 8); }
static void bb_f32(struct bb *b, float v) { bb_put(b, &v, 4); }
static void bb_f64(struct bb *b, double v) { bb_put(b, &v, 8); }

static void bb_strn(struct bb *b, const char *s, size_t n)
{
	bb_u64(b, n);
	bb_put(b, s, n);
}

static void bb_str(struct bb *b, const char *s)
{
	bb_strn(b, s, strlen(s));
}

static void bb_key(struct bb *b, const char *key, enum gguf_vtype t)
{
	bb_str(b, key);
	bb_u32(b, t);
}

static void bb_header(struct bb *b, uint32_t version, uint64_t n_t, uint64_t n_kv)
{
	bb_put(b, "GGUF", 4);
	bb_u32(b, version);
	bb_u64(b, n_t);
	bb_u64(b, n_kv);
}

static void bb_pad(struct bb *b, size_t a)
{
	while (b->n % a)
		bb_u8(b, 0);
}

static void patch_u32(struct bb *b, size_t off, uint32_t v) { memcpy(b->p + off, &v, 4); }
static void patch_u64(struct bb *b, size_t off, uint64_t v) { memcpy(b->p + off, &v, 8); }

/* Open len bytes copied to a buffer of exactly that size (so that ASan
 * catches any read past the end), close again, and return the result. A
 * failed open must leave *out NULL. */
static int open_exact(const void *p, size_t len, char *err, size_t errsz)
{
	void *copy = malloc(len ? len : 1);
	T_REQUIRE(copy, "out of memory");
	memcpy(copy, p, len);
	struct gguf *g = NULL;
	int rc = gguf_open_mem(copy, len, "t.gguf", &g, err, errsz);
	T_CHECK(!rc == !!g, "rc %d with out %p", rc, (void *)g);
	gguf_close(g);
	free(copy);
	return rc;
}

/* Open must fail with -EINVAL and a message starting with the file name and
 * containing each of the given fragments. */
static void expect_fail_(int line, const struct bb *b, const char *frag1,
			 const char *frag2)
{
	char err[512] = "";
	struct gguf *g = NULL;
	void *copy = malloc(b->n ? b->n : 1);
	if (b->n)
		memcpy(copy, b->p, b->n);
	int rc = gguf_open_mem(copy, b->n, "t.gguf", &g, err, sizeof err);
	if (rc != -EINVAL) {
		fprintf(stderr, "line %d: expected -EINVAL, got %d (%s)\n", line, rc, err);
		t_failures++;
	} else {
		T_CHECK(!g, "line %d: out set on failure", line);
		T_CHECK(!strncmp(err, "t.gguf: ", 8), "line %d: message '%s' does not name the file", line, err);
		T_CHECK(!frag1 || strstr(err, frag1), "line %d: message '%s' lacks '%s'", line, err, frag1);
		T_CHECK(!frag2 || strstr(err, frag2), "line %d: message '%s' lacks '%s'", line, err, frag2);
		T_CHECK(!strchr(err, '\n'), "line %d: message '%s' has a newline", line, err);
	}
	gguf_close(g);
	free(copy);
}
#define expect_fail(b, f1, f2) expect_fail_(__LINE__, b, f1, f2)

/* ---- every scalar type, hand-built (v2 and v3) ------------------------- */

static void build_scalars(struct bb *b, uint32_t version)
{
	bb_header(b, version, 0, 17);
	bb_key(b, "u8", GGUF_U8); bb_u8(b, 255);
	bb_key(b, "i8", GGUF_I8); bb_u8(b, 0x80);
	bb_key(b, "u16", GGUF_U16); bb_u16(b, 65535);
	bb_key(b, "i16", GGUF_I16); bb_u16(b, 0x8000);
	bb_key(b, "u32", GGUF_U32); bb_u32(b, 4294967295u);
	bb_key(b, "i32", GGUF_I32); bb_u32(b, 0x80000000u);
	bb_key(b, "f32", GGUF_F32); bb_f32(b, -2.5f);
	bb_key(b, "bool1", GGUF_BOOL); bb_u8(b, 1);
	bb_key(b, "bool0", GGUF_BOOL); bb_u8(b, 0);
	bb_key(b, "str", GGUF_STR); bb_strn(b, "a\0b\xff", 4);
	bb_key(b, "empty", GGUF_STR); bb_strn(b, "", 0);
	bb_key(b, "u64", GGUF_U64); bb_u64(b, UINT64_MAX);
	bb_key(b, "u64small", GGUF_U64); bb_u64(b, (uint64_t)INT64_MAX);
	bb_key(b, "i64", GGUF_I64); bb_u64(b, (uint64_t)INT64_MIN);
	bb_key(b, "f64", GGUF_F64); bb_f64(b, 1e300);
	bb_key(b, "", GGUF_U8); bb_u8(b, 7); /* an empty key is legal */
	bb_key(b, "arr", GGUF_ARR); bb_u32(b, GGUF_I16); bb_u64(b, 2);
	bb_u16(b, 1); bb_u16(b, 0xffff);
}

static void test_scalars(uint32_t version)
{
	struct bb b = { 0 };
	build_scalars(&b, version);
	struct gguf *g;
	char err[256];
	int rc = gguf_open_mem(b.p, b.n, "s.gguf", &g, err, sizeof err);
	T_REQUIRE(!rc, "v%u scalars: %s", version, err);
	T_CHECK(gguf_version(g) == version, "version %u", gguf_version(g));
	T_CHECK(gguf_n_kv(g) == 17, "n_kv %" PRId64, gguf_n_kv(g));
	T_CHECK(gguf_n_tensors(g) == 0, "n_tensors");
	T_CHECK(gguf_alignment(g) == 32, "alignment %zu", gguf_alignment(g));
	T_CHECK(gguf_file_size(g) == b.n, "file size");
	T_CHECK(!strcmp(gguf_name(g), "s.gguf"), "name");

	static const struct { const char *k; enum gguf_vtype t; int rc; int64_t v; } iv[] = {
		{ "u8", GGUF_U8, 0, 255 },
		{ "i8", GGUF_I8, 0, -128 },
		{ "u16", GGUF_U16, 0, 65535 },
		{ "i16", GGUF_I16, 0, -32768 },
		{ "u32", GGUF_U32, 0, 4294967295LL },
		{ "i32", GGUF_I32, 0, INT32_MIN },
		{ "bool1", GGUF_BOOL, 0, 1 },
		{ "bool0", GGUF_BOOL, 0, 0 },
		{ "u64", GGUF_U64, -EINVAL, 0 },
		{ "u64small", GGUF_U64, 0, INT64_MAX },
		{ "i64", GGUF_I64, 0, INT64_MIN },
		{ "f32", GGUF_F32, -EINVAL, 0 },
		{ "f64", GGUF_F64, -EINVAL, 0 },
		{ "str", GGUF_STR, -EINVAL, 0 },
		{ "arr", GGUF_ARR, -EINVAL, 0 },
		{ "", GGUF_U8, 0, 7 },
		{ "absent", 0, -ENOENT, 0 },
	};
	for (size_t i = 0; i < sizeof iv / sizeof iv[0]; i++) {
		int64_t v = 12345;
		rc = gguf_get_i64(g, iv[i].k, &v);
		T_CHECK(rc == iv[i].rc, "get_i64 %s: rc %d", iv[i].k, rc);
		if (!rc)
			T_CHECK(v == iv[i].v, "get_i64 %s: %" PRId64, iv[i].k, v);
		else
			T_CHECK(v == 12345, "get_i64 %s wrote on failure", iv[i].k);
		T_CHECK(gguf_get_i64_or(g, iv[i].k, -99) == (rc ? -99 : iv[i].v),
			"get_i64_or %s", iv[i].k);
		int64_t idx = gguf_find_key(g, iv[i].k);
		if (iv[i].rc == -ENOENT) {
			T_CHECK(idx == -1, "find absent");
		} else {
			T_CHECK(idx >= 0 && !strcmp(gguf_kv_key(g, idx), iv[i].k), "find %s", iv[i].k);
			T_CHECK(gguf_kv_type(g, idx) == iv[i].t, "type of %s", iv[i].k);
		}
	}
	double d;
	T_CHECK(!gguf_get_f64(g, "f32", &d) && d == -2.5, "f32 %g", d);
	T_CHECK(!gguf_get_f64(g, "f64", &d) && d == 1e300, "f64 %g", d);
	T_CHECK(!gguf_get_f64(g, "i8", &d) && d == -128, "i8 as f64 %g", d);
	T_CHECK(!gguf_get_f64(g, "u64", &d) && d == 18446744073709551615.0, "u64 as f64 %g", d);
	T_CHECK(gguf_get_f64(g, "str", &d) == -EINVAL, "str as f64");
	T_CHECK(gguf_get_f64(g, "bool1", &d) == -EINVAL, "bool as f64");
	T_CHECK(gguf_get_f64(g, "absent", &d) == -ENOENT, "absent f64");
	T_CHECK(gguf_get_f64_or(g, "str", 0.25) == 0.25, "f64_or");
	T_CHECK(gguf_get_f64_or(g, "f32", 0.25) == -2.5, "f64_or");

	size_t len = 99;
	const char *s = gguf_get_str(g, "str", &len);
	T_CHECK(s && len == 4 && !memcmp(s, "a\0b\xff", 4), "binary string");
	s = gguf_get_str(g, "empty", &len);
	T_CHECK(s && len == 0, "empty string");
	T_CHECK(!gguf_get_str(g, "u8", &len), "u8 as string");
	T_CHECK(!gguf_get_str(g, "absent", &len), "absent string");

	enum gguf_vtype et;
	uint64_t n;
	const void *data;
	T_CHECK(!gguf_get_arr(g, "arr", &et, &n, &data) && et == GGUF_I16 && n == 2, "arr");
	int16_t a[2];
	memcpy(a, data, sizeof a);
	T_CHECK(a[0] == 1 && a[1] == -1, "arr values %d %d", a[0], a[1]);
	T_CHECK(gguf_get_arr(g, "u8", &et, &n, &data) == -EINVAL, "scalar as arr");
	T_CHECK(gguf_get_arr(g, "absent", &et, &n, &data) == -ENOENT, "absent arr");
	T_CHECK(!gguf_get_arr_str(g, gguf_find_key(g, "arr"), 0, &len), "numeric arr as strings");
	T_CHECK(!gguf_kv_key(g, -1) && !gguf_kv_key(g, 17), "kv_key out of range");
	T_CHECK(!gguf_tensor_at(g, 0) && !gguf_find_tensor(g, "x"), "no tensors");
	gguf_close(g);
	free(b.p);
}

/* ---- writer round trip ------------------------------------------------- */

struct wt {
	const char *name;
	enum kt_type type;
	int n_dims;
	int64_t ne[4];
	size_t size; /* bytes, computed here independently of the kernels */
};

static const struct wt wts[] = {
	{ "f32.vec", KT_F32, 1, { 3 }, 12 },
	{ "f16.mat", KT_F16, 2, { 4, 3 }, 24 },
	{ "blk.0.q4_0", KT_Q4_0, 2, { 64, 2 }, 4 * 18 },
	{ "blk.0.q8_0", KT_Q8_0, 3, { 32, 1, 2 }, 2 * 34 },
	{ "blk.1.q4_K", KT_Q4_K, 2, { 256, 2 }, 2 * 144 },
	{ "q6_K", KT_Q6_K, 1, { 256 }, 210 },
	{ "bf16.4d", KT_BF16, 4, { 2, 2, 2, 3 }, 48 },
};
#define N_WT (sizeof wts / sizeof wts[0])

static uint8_t *wt_data[N_WT];

static const char *const strs[] = { "hello", "", "a\0b", "\xff\xfe", "\xe2\x96\x81world" };
static const size_t str_lens[] = { 5, 0, 3, 2, 8 };

static int write_sample(const char *path, uint32_t alignment, char *err, size_t errsz)
{
	struct gguf_writer *w = gguf_writer_new();
	T_REQUIRE(w, "writer_new");
	int rc = 0;
	if (alignment)
		rc |= gguf_w_u32(w, "general.alignment", alignment);
	rc |= gguf_w_str(w, "general.architecture", "llama");
	rc |= gguf_w_str(w, "empty", "");
	rc |= gguf_w_u32(w, "u32", 0xdeadbeefu);
	rc |= gguf_w_i32(w, "i32", -5);
	rc |= gguf_w_u64(w, "u64", UINT64_MAX);
	rc |= gguf_w_f32(w, "f32", 1.5f);
	rc |= gguf_w_bool(w, "true", 7);
	rc |= gguf_w_bool(w, "false", 0);
	uint8_t u8s[] = { 0, 1, 255 };
	int8_t i8s[] = { -128, 0, 127 };
	uint16_t u16s[] = { 0, 65535 };
	int16_t i16s[] = { -32768, 32767 };
	uint32_t u32s[] = { 1, 2, 3, 4294967295u };
	int32_t i32s[] = { INT32_MIN, -1, INT32_MAX };
	float f32s[] = { 0.5f, -1e30f, 3.25f };
	uint8_t bools[] = { 1, 0, 1 };
	uint64_t u64s[] = { UINT64_MAX, 0 };
	int64_t i64s[] = { INT64_MIN, INT64_MAX };
	double f64s[] = { 1e-300, -2.0 };
	rc |= gguf_w_arr(w, "arr.u8", GGUF_U8, u8s, 3);
	rc |= gguf_w_arr(w, "arr.i8", GGUF_I8, i8s, 3);
	rc |= gguf_w_arr(w, "arr.u16", GGUF_U16, u16s, 2);
	rc |= gguf_w_arr(w, "arr.i16", GGUF_I16, i16s, 2);
	rc |= gguf_w_arr(w, "arr.u32", GGUF_U32, u32s, 4);
	rc |= gguf_w_arr(w, "arr.i32", GGUF_I32, i32s, 3);
	rc |= gguf_w_arr(w, "arr.f32", GGUF_F32, f32s, 3);
	rc |= gguf_w_arr(w, "arr.bool", GGUF_BOOL, bools, 3);
	rc |= gguf_w_arr(w, "arr.u64", GGUF_U64, u64s, 2);
	rc |= gguf_w_arr(w, "arr.i64", GGUF_I64, i64s, 2);
	rc |= gguf_w_arr(w, "arr.f64", GGUF_F64, f64s, 2);
	rc |= gguf_w_arr(w, "arr.empty", GGUF_U32, NULL, 0);
	rc |= gguf_w_arr_str(w, "arr.str", strs, str_lens, 5);
	rc |= gguf_w_arr_str(w, "arr.str0", NULL, NULL, 0);
	const char *cstrs[] = { "x", "yz" };
	rc |= gguf_w_arr_str(w, "arr.cstr", cstrs, NULL, 2);
	T_CHECK(!rc, "adding keys");

	/* refusals: nothing is added */
	T_CHECK(gguf_w_u32(w, "u32", 1) == -EEXIST, "duplicate key");
	T_CHECK(gguf_w_str(w, "", "x") == -EINVAL, "empty key");
	T_CHECK(gguf_w_str(w, NULL, "x") == -EINVAL, "NULL key");
	T_CHECK(gguf_w_arr(w, "bad", GGUF_STR, u8s, 1) == -EINVAL, "string etype via w_arr");
	T_CHECK(gguf_w_arr(w, "bad", GGUF_ARR, u8s, 1) == -EINVAL, "array etype via w_arr");
	T_CHECK(gguf_w_u32(w, "general.alignment", 48) == -EINVAL, "alignment 48");
	T_CHECK(gguf_w_u64(w, "general.alignment", 0) == -EINVAL, "alignment 0");
	int64_t ne_bad[2] = { 48, 2 };
	uint8_t junk[512] = { 0 };
	T_CHECK(gguf_w_tensor(w, "bad", KT_Q8_0, 2, ne_bad, junk) == -EINVAL, "ne[0] not a block multiple");
	int64_t ne_ok[1] = { 32 };
	T_CHECK(gguf_w_tensor(w, "bad", (enum kt_type)16, 1, ne_ok, junk) == -EINVAL, "unsupported type");
	T_CHECK(gguf_w_tensor(w, "bad", KT_F32, 5, ne_ok, junk) == -EINVAL, "5 dims");
	T_CHECK(gguf_w_tensor(w, "bad", KT_F32, 0, ne_ok, junk) == -EINVAL, "0 dims");
	int64_t ne_zero[2] = { 32, 0 };
	T_CHECK(gguf_w_tensor(w, "bad", KT_F32, 2, ne_zero, junk) == -EINVAL, "ne 0");
	int64_t ne_huge[4] = { 1LL << 40, 1LL << 40, 1, 1 };
	T_CHECK(gguf_w_tensor(w, "bad", KT_F32, 2, ne_huge, junk) == -EINVAL, "overflow");

	for (size_t i = 0; i < N_WT; i++)
		rc |= gguf_w_tensor(w, wts[i].name, wts[i].type, wts[i].n_dims,
				    wts[i].ne, wt_data[i]);
	T_CHECK(!rc, "adding tensors");
	T_CHECK(gguf_w_tensor(w, wts[0].name, KT_F32, 1, ne_ok, junk) == -EEXIST, "duplicate tensor");
	rc = gguf_writer_write(w, path, err, errsz);
	gguf_writer_free(w);
	return rc;
}

static void check_sample(const struct gguf *g, size_t alignment)
{
	T_CHECK(gguf_version(g) == 3, "version");
	T_CHECK(gguf_alignment(g) == alignment, "alignment %zu", gguf_alignment(g));
	T_CHECK(gguf_n_kv(g) == 23 + (alignment != 32), "n_kv %" PRId64, gguf_n_kv(g));
	size_t len;
	const char *s = gguf_get_str(g, "general.architecture", &len);
	T_CHECK(s && len == 5 && !memcmp(s, "llama", 5), "architecture");
	s = gguf_get_str(g, "empty", &len);
	T_CHECK(s && len == 0, "empty");
	int64_t v;
	T_CHECK(!gguf_get_i64(g, "u32", &v) && v == 0xdeadbeefLL, "u32");
	T_CHECK(!gguf_get_i64(g, "i32", &v) && v == -5, "i32");
	T_CHECK(gguf_get_i64(g, "u64", &v) == -EINVAL, "u64 max does not fit i64");
	T_CHECK(gguf_kv_type(g, gguf_find_key(g, "u64")) == GGUF_U64, "u64 type");
	T_CHECK(!gguf_get_i64(g, "true", &v) && v == 1, "true");
	T_CHECK(!gguf_get_i64(g, "false", &v) && v == 0, "false");
	double d;
	T_CHECK(!gguf_get_f64(g, "f32", &d) && d == 1.5, "f32");

	static const struct { const char *k; enum gguf_vtype et; uint64_t n; size_t esz; } arrs[] = {
		{ "arr.u8", GGUF_U8, 3, 1 }, { "arr.i8", GGUF_I8, 3, 1 },
		{ "arr.u16", GGUF_U16, 2, 2 }, { "arr.i16", GGUF_I16, 2, 2 },
		{ "arr.u32", GGUF_U32, 4, 4 }, { "arr.i32", GGUF_I32, 3, 4 },
		{ "arr.f32", GGUF_F32, 3, 4 }, { "arr.bool", GGUF_BOOL, 3, 1 },
		{ "arr.u64", GGUF_U64, 2, 8 }, { "arr.i64", GGUF_I64, 2, 8 },
		{ "arr.f64", GGUF_F64, 2, 8 }, { "arr.empty", GGUF_U32, 0, 4 },
	};
	static const uint8_t u8s[] = { 0, 1, 255 };
	static const int8_t i8s[] = { -128, 0, 127 };
	static const uint16_t u16s[] = { 0, 65535 };
	static const int16_t i16s[] = { -32768, 32767 };
	static const uint32_t u32s[] = { 1, 2, 3, 4294967295u };
	static const int32_t i32s[] = { INT32_MIN, -1, INT32_MAX };
	static const float f32s[] = { 0.5f, -1e30f, 3.25f };
	static const uint8_t bools[] = { 1, 0, 1 };
	static const uint64_t u64s[] = { UINT64_MAX, 0 };
	static const int64_t i64s[] = { INT64_MIN, INT64_MAX };
	static const double f64s[] = { 1e-300, -2.0 };
	const void *want[] = { u8s, i8s, u16s, i16s, u32s, i32s, f32s, bools,
			       u64s, i64s, f64s, u32s };
	for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) {
		enum gguf_vtype et;
		uint64_t n;
		const void *data;
		int rc = gguf_get_arr(g, arrs[i].k, &et, &n, &data);
		T_CHECK(!rc && et == arrs[i].et && n == arrs[i].n, "%s: rc %d", arrs[i].k, rc);
		if (!rc && n)
			T_CHECK(data && !memcmp(data, want[i], n * arrs[i].esz), "%s data", arrs[i].k);
	}
	int64_t ki = gguf_find_key(g, "arr.str");
	enum gguf_vtype et;
	uint64_t n;
	const void *data;
	T_CHECK(!gguf_get_arr(g, "arr.str", &et, &n, &data) && et == GGUF_STR && n == 5,
		"string array");
	for (uint64_t j = 0; j < 5; j++) {
		s = gguf_get_arr_str(g, ki, j, &len);
		T_CHECK(s && len == str_lens[j] && !memcmp(s, strs[j], len),
			"string %" PRIu64, j);
	}
	T_CHECK(!gguf_get_arr_str(g, ki, 5, &len), "string past the end");
	T_CHECK(!gguf_get_arr_str(g, -1, 0, &len), "key -1");
	T_CHECK(!gguf_get_arr_str(g, gguf_n_kv(g), 0, &len), "key past the end");
	T_CHECK(!gguf_get_arr_str(g, gguf_find_key(g, "u32"), 0, &len), "scalar as string array");
	T_CHECK(!gguf_get_arr(g, "arr.str0", &et, &n, &data) && et == GGUF_STR && n == 0, "empty string array");
	ki = gguf_find_key(g, "arr.cstr");
	s = gguf_get_arr_str(g, ki, 1, &len);
	T_CHECK(s && len == 2 && !memcmp(s, "yz", 2), "NUL-terminated strings");

	T_CHECK(gguf_n_tensors(g) == (int64_t)N_WT, "n_tensors");
	for (size_t i = 0; i < N_WT; i++) {
		const struct gguf_tensor *t = gguf_tensor_at(g, (int64_t)i);
		T_REQUIRE(t, "tensor %zu", i);
		T_CHECK(!strcmp(t->name, wts[i].name), "name %s", t->name);
		T_CHECK(gguf_find_tensor(g, wts[i].name) == t, "find %s", wts[i].name);
		T_CHECK(t->type == (uint32_t)wts[i].type, "%s type", t->name);
		T_CHECK(t->n_dims == wts[i].n_dims, "%s n_dims", t->name);
		for (int d = 0; d < 4; d++)
			T_CHECK(t->ne[d] == (d < wts[i].n_dims ? wts[i].ne[d] : 1),
				"%s ne[%d] = %" PRId64, t->name, d, t->ne[d]);
		T_CHECK(t->size == wts[i].size, "%s size %zu", t->name, t->size);
		T_CHECK(t->offset % alignment == 0, "%s offset %" PRIu64, t->name, t->offset);
		T_CHECK(((const uint8_t *)t->data - (const uint8_t *)gguf_tensor_at(g, 0)->data) ==
				(ptrdiff_t)t->offset, "%s data pointer", t->name);
		T_CHECK(!memcmp(t->data, wt_data[i], wts[i].size), "%s data", t->name);
	}
	T_CHECK(!gguf_find_tensor(g, "blk.0"), "prefix is not a name");
	T_CHECK(!gguf_tensor_at(g, -1) && !gguf_tensor_at(g, (int64_t)N_WT), "tensor_at range");
}

static void test_writer(void)
{
	uint64_t seed = 42;
	for (size_t i = 0; i < N_WT; i++) {
		wt_data[i] = malloc(wts[i].size);
		for (size_t j = 0; j < wts[i].size; j++)
			wt_data[i][j] = (uint8_t)t_rand_u64(&seed);
	}
	char path[512], err[512];
	snprintf(path, sizeof path, "%s/w.gguf", tmpdir);
	int rc = write_sample(path, 0, err, sizeof err);
	T_REQUIRE(!rc, "write: %s", err);
	char tmp[600];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	T_CHECK(access(tmp, F_OK) && errno == ENOENT, "temporary file left behind");

	struct gguf *g;
	rc = gguf_open(path, &g, err, sizeof err);
	T_REQUIRE(!rc, "open: %s", err);
	check_sample(g, 32);
	T_CHECK(gguf_find_key(g, "general.alignment") < 0, "alignment 32 is not written");
	T_CHECK(!strcmp(gguf_name(g), path), "name is the path");

	/* Truncation at every byte: a prefix that ends before the last
	 * tensor's data is incomplete and must be refused with a message;
	 * one that only loses (part of) the final padding is complete. */
	size_t full = gguf_file_size(g);
	gguf_close(g);
	uint8_t *bytes = malloc(full);
	FILE *f = fopen(path, "rb");
	T_REQUIRE(f && fread(bytes, 1, full, f) == full, "read back");
	fclose(f);
	rc = gguf_open_mem(bytes, full, "t.gguf", &g, err, sizeof err);
	T_REQUIRE(!rc, "open_mem: %s", err);
	const struct gguf_tensor *lt = gguf_tensor_at(g, (int64_t)N_WT - 1);
	size_t last_at = (size_t)((const uint8_t *)lt->data - bytes);
	size_t last_end = last_at + lt->size;
	gguf_close(g);
	T_CHECK(full % 32 == 0 && full - last_end < 32, "file padded to 32: %zu", full);
	int refused = 0, accepted = 0;
	for (size_t cut = 0; cut <= full; cut++) {
		err[0] = 0;
		rc = open_exact(bytes, cut, err, sizeof err);
		if (cut < last_end && rc == -EINVAL && !strncmp(err, "t.gguf: ", 8))
			refused++;
		else if (cut >= last_end && !rc)
			accepted++;
		else
			T_CHECK(0, "cut at %zu: rc %d, message '%s'", cut, rc, err);
	}
	T_CHECK(refused == (int)last_end && accepted == (int)(full - last_end + 1),
		"%d of %zu truncations refused, %d accepted", refused, last_end, accepted);
	/* the last tensor's data, cut by one byte: the message has the numbers */
	const struct wt *last = &wts[N_WT - 1];
	char want[256];
	snprintf(want, sizeof want,
		 "t.gguf: truncated: tensor %s needs %zu bytes at offset %zu, file has %zu",
		 last->name, last->size, last_at, last_end - 1);
	struct gguf *h;
	rc = open_exact(bytes, last_end - 1, err, sizeof err);
	T_CHECK(rc == -EINVAL && !strcmp(err, want), "message '%s', want '%s'", err, want);

	/* the same through the file system (mmap path), and an empty file */
	size_t cuts[] = { 0, 3, 24, full / 2, last_end - 1 };
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		char p2[600];
		snprintf(p2, sizeof p2, "%s/cut.gguf", tmpdir);
		f = fopen(p2, "wb");
		T_REQUIRE(f, "create %s", p2);
		fwrite(bytes, 1, cuts[i], f);
		fclose(f);
		rc = gguf_open(p2, &h, err, sizeof err);
		T_CHECK(rc == -EINVAL && !h && !strncmp(err, p2, strlen(p2)),
			"file cut at %zu: rc %d '%s'", cuts[i], rc, err);
		unlink(p2);
	}
	free(bytes);

	/* alignment 64, set by the caller */
	rc = write_sample(path, 64, err, sizeof err);
	T_REQUIRE(!rc, "write: %s", err);
	rc = gguf_open(path, &g, err, sizeof err);
	T_REQUIRE(!rc, "open: %s", err);
	check_sample(g, 64);
	T_CHECK(gguf_file_size(g) % 64 == 0, "file padded to 64");
	gguf_close(g);
	unlink(path);

	/* write errors name the path and keep errno */
	snprintf(path, sizeof path, "%s/no/such/dir/x.gguf", tmpdir);
	rc = write_sample(path, 0, err, sizeof err);
	T_CHECK(rc == -ENOENT && strstr(err, path) && strstr(err, "No such file"),
		"rc %d '%s'", rc, err);

	/* system errors when opening */
	rc = gguf_open(path, &g, err, sizeof err);
	T_CHECK(rc == -ENOENT && !g && strstr(err, path), "open missing: %d '%s'", rc, err);
	rc = gguf_open(tmpdir, &g, err, sizeof err);
	T_CHECK(rc == -EISDIR && !g && strstr(err, tmpdir), "open dir: %d '%s'", rc, err);
	snprintf(path, sizeof path, "%s/fifo.gguf", tmpdir);
	T_REQUIRE(!mkfifo(path, 0600), "mkfifo: %s", strerror(errno));
	rc = gguf_open(path, &g, err, sizeof err); /* must not block */
	T_CHECK(rc == -EINVAL && !g && strstr(err, "not a regular file"), "open fifo: %d '%s'", rc, err);
	unlink(path);
	for (size_t i = 0; i < N_WT; i++)
		free(wt_data[i]);
}

/* ---- hand-built files with tensors, corrupted field by field ----------- */

struct ref_opt {
	uint32_t version;
	int align;        /* 0: no key; 1: u32 value; 2: string value; 3: u64 value */
	uint64_t align_v;
	int dup_key, dup_tensor, nul_key, nul_name;
};

/* Field offsets in the built file. */
struct ref_off {
	size_t version, n_t, n_kv;
	size_t key0_len, str0_len, arr_n, arr_elem1_len, align_val;
	size_t t_ndims[3], t_ne0[3], t_ne1[3], t_type[3], t_offset[3];
	size_t data;
};

/* tok_embd f32 [8 x 2] = 64 bytes; blk.0.attn_q q8_0 [64 x 2] = 136 bytes;
 * output q4_K [256] = 144 bytes. */
static void build_ref(struct bb *b, struct ref_opt o, struct ref_off *f)
{
	/* laid out with the declared alignment when it is a valid one */
	int valid = (o.align == 1 || o.align == 3) && o.align_v && !(o.align_v & (o.align_v - 1));
	uint32_t align = valid ? (uint32_t)o.align_v : 32;
	bb_header(b, o.version ? o.version : 3, 3, 4 + (o.align != 0) + (o.dup_key != 0));
	f->version = 4;
	f->n_t = 8;
	f->n_kv = 16;
	f->key0_len = b->n;
	if (o.nul_key)
		bb_strn(b, "general.arch\0tecture", 20);
	else
		bb_str(b, "general.architecture");
	bb_u32(b, GGUF_STR);
	f->str0_len = b->n;
	bb_str(b, "llama");
	if (o.align == 1) {
		bb_key(b, "general.alignment", GGUF_U32);
		f->align_val = b->n;
		bb_u32(b, (uint32_t)o.align_v);
	} else if (o.align == 2) {
		bb_key(b, "general.alignment", GGUF_STR);
		bb_str(b, "32");
	} else if (o.align == 3) {
		bb_key(b, "general.alignment", GGUF_U64);
		f->align_val = b->n;
		bb_u64(b, o.align_v);
	}
	bb_key(b, "tokenizer.ggml.tokens", GGUF_ARR);
	bb_u32(b, GGUF_STR);
	f->arr_n = b->n;
	bb_u64(b, 3);
	bb_str(b, "a");
	f->arr_elem1_len = b->n;
	bb_str(b, "bc");
	bb_str(b, "");
	bb_key(b, "x.u8", GGUF_U8);
	bb_u8(b, 9);
	bb_key(b, "x.f32", GGUF_F32);
	bb_f32(b, 0.5f);
	if (o.dup_key) {
		bb_key(b, "x.u8", GGUF_U8);
		bb_u8(b, 10);
	}
	static const struct { const char *name; uint32_t type; int64_t ne0, ne1; int nd; uint64_t size; } ts[3] = {
		{ "tok_embd", KT_F32, 8, 2, 2, 64 },
		{ "blk.0.attn_q", KT_Q8_0, 64, 2, 2, 136 },
		{ "output", KT_Q4_K, 256, 1, 1, 144 },
	};
	uint64_t off = 0;
	for (int i = 0; i < 3; i++) {
		const char *name = ts[i].name;
		if (o.dup_tensor && i == 2)
			name = "tok_embd";
		if (o.nul_name && i == 1)
			bb_strn(b, "blk.0\0attn_q", 12);
		else
			bb_str(b, name);
		f->t_ndims[i] = b->n;
		bb_u32(b, (uint32_t)ts[i].nd);
		f->t_ne0[i] = b->n;
		bb_u64(b, (uint64_t)ts[i].ne0);
		f->t_ne1[i] = b->n;
		if (ts[i].nd > 1)
			bb_u64(b, (uint64_t)ts[i].ne1);
		f->t_type[i] = b->n;
		bb_u32(b, ts[i].type);
		f->t_offset[i] = b->n;
		bb_u64(b, off);
		off += ts[i].size;
		off = (off + align - 1) / align * align;
	}
	bb_pad(b, align);
	f->data = b->n;
	for (uint64_t i = 0; i < off; i++)
		bb_u8(b, (uint8_t)(i * 7));
	/* the file ends with the last tensor: drop trailing padding */
	b->n = f->data + 64 + 136;
	b->n = (b->n + align - 1) / align * align + 144;
}

static void test_corrupt(void)
{
	struct bb b = { 0 };
	struct ref_off f;
	struct ref_opt o = { 0 };
	char err[512];
	struct gguf *g;

	build_ref(&b, o, &f);
	T_REQUIRE(!gguf_open_mem(b.p, b.n, "t.gguf", &g, err, sizeof err), "ref: %s", err);
	T_CHECK(gguf_n_tensors(g) == 3, "ref tensors");
	const struct gguf_tensor *t = gguf_find_tensor(g, "output");
	T_CHECK(t && t->size == 144 && t->offset == 224 && t->data == b.p + f.data + 224,
		"output tensor");
	gguf_close(g);

	size_t n = b.n;
	uint8_t *orig = malloc(n);
	memcpy(orig, b.p, n);
#define RESET() memcpy(b.p, orig, n)

	patch_u32(&b, f.version, 1);
	expect_fail(&b, "version 1 is not supported", NULL);
	RESET();
	patch_u32(&b, f.version, 4);
	expect_fail(&b, "version 4", NULL);
	RESET();
	patch_u32(&b, f.version, 0x03000000u);
	expect_fail(&b, "big-endian", NULL);
	RESET();
	b.p[0] = 'X';
	expect_fail(&b, "not a GGUF file", NULL);
	RESET();
	patch_u64(&b, f.n_kv, 1ULL << 40);
	expect_fail(&b, "truncated: the header claims 1099511627776 keys, which need at least 14293651161088 bytes at offset 24", NULL);
	RESET();
	patch_u64(&b, f.n_kv, UINT64_MAX);
	expect_fail(&b, "the header claims 18446744073709551615 keys, more than any file can hold", NULL);
	RESET();
	patch_u64(&b, f.n_t, 1ULL << 40);
	expect_fail(&b, "claims 1099511627776 tensors", NULL);
	RESET();
	patch_u64(&b, f.n_kv, 5); /* reads the first tensor info as a key */
	expect_fail(&b, NULL, NULL);
	RESET();
	patch_u64(&b, f.key0_len, UINT64_MAX - 3);
	expect_fail(&b, "truncated: key #0 needs 18446744073709551612 bytes at offset 32", NULL);
	RESET();
	patch_u64(&b, f.str0_len, 1ULL << 62);
	expect_fail(&b, "truncated: key 'general.architecture'", NULL);
	RESET();
	patch_u32(&b, f.str0_len - 4, 13);
	expect_fail(&b, "key 'general.architecture' has unknown value type 13", NULL);
	RESET();
	patch_u64(&b, f.arr_n, 1ULL << 61);
	expect_fail(&b, "truncated: key 'tokenizer.ggml.tokens' array of 2305843009213693952 strings needs more than 2^64 bytes", NULL);
	RESET();
	patch_u64(&b, f.arr_n, 1000);
	expect_fail(&b, "truncated: key 'tokenizer.ggml.tokens' array of 1000 strings needs at least 8000 bytes at offset", NULL);
	RESET();
	patch_u32(&b, f.arr_n - 4, 99);
	expect_fail(&b, "key 'tokenizer.ggml.tokens' is an array of unknown element type 99", NULL);
	RESET();
	patch_u64(&b, f.arr_elem1_len, 1ULL << 40);
	expect_fail(&b, "key 'tokenizer.ggml.tokens' element 1 needs 1099511627776 bytes", NULL);
	RESET();
	patch_u32(&b, f.t_ndims[0], 5);
	expect_fail(&b, "tensor 'tok_embd' has 5 dimensions", NULL);
	RESET();
	patch_u32(&b, f.t_ndims[2], 0);
	expect_fail(&b, "tensor 'output' has 0 dimensions", NULL);
	RESET();
	patch_u64(&b, f.t_ne0[0], 0);
	expect_fail(&b, "tensor 'tok_embd' has ne[0] = 0", NULL);
	RESET();
	patch_u64(&b, f.t_ne1[1], 1ULL << 63);
	expect_fail(&b, "tensor 'blk.0.attn_q' has ne[1] = 9223372036854775808", NULL);
	RESET();
	patch_u64(&b, f.t_ne1[0], 1ULL << 62);
	expect_fail(&b, "tensor 'tok_embd' has more than 2^63 elements", NULL);
	RESET();
	patch_u64(&b, f.t_ne1[0], 1ULL << 40);
	expect_fail(&b, "truncated: tensor tok_embd needs 35184372088832 bytes at offset", NULL);
	RESET();
	patch_u64(&b, f.t_ne0[0], 1ULL << 60);
	patch_u64(&b, f.t_ne1[0], 7);
	expect_fail(&b, "tensor 'tok_embd'", "too large");
	RESET();
	patch_u64(&b, f.t_ne0[1], 48);
	expect_fail(&b, "tensor 'blk.0.attn_q' has rows of 48 elements, not a multiple of the q8_0 block size 32", NULL);
	RESET();
	patch_u32(&b, f.t_type[1], 99);
	expect_fail(&b, "tensor 'blk.0.attn_q' has type 99", "not supported");
	RESET();
	patch_u32(&b, f.t_type[1], 16);
	expect_fail(&b, "tensor 'blk.0.attn_q' has type 16", "not supported");
	RESET();
	patch_u64(&b, f.t_offset[1], 65);
	expect_fail(&b, "tensor 'blk.0.attn_q' has offset 65, not a multiple of the alignment 32", NULL);
	RESET();
	patch_u64(&b, f.t_offset[1], 4096);
	char want[200];
	snprintf(want, sizeof want,
		 "t.gguf: truncated: tensor blk.0.attn_q needs 136 bytes at offset %zu, file has %zu",
		 f.data + 4096, n);
	expect_fail(&b, want, NULL);
	RESET();
	patch_u64(&b, f.t_offset[1], UINT64_MAX - 31);
	expect_fail(&b, "truncated: tensor 'blk.0.attn_q' has offset 18446744073709551584", NULL);
	RESET();
	patch_u64(&b, f.t_offset[2], 32);
	expect_fail(&b, "tensors 'tok_embd' (bytes 0-64) and 'output' (bytes 32-176) of the data section overlap", NULL);
	RESET();
	patch_u64(&b, f.t_offset[1], 0);
	expect_fail(&b, "overlap", NULL);
	RESET();
	/* data section cut inside the padding before it */
	b.n = f.data - 1;
	expect_fail(&b, "truncated: tensor", NULL);
	b.n = n;
	free(orig);
	free(b.p);

	/* variants built differently */
	struct { struct ref_opt o; const char *f1, *f2; } v[] = {
		{ { .align = 2 }, "key 'general.alignment' has type string, expected an unsigned integer", NULL },
		{ { .align = 1, .align_v = 48 }, "key 'general.alignment' is 48, expected a power of two", NULL },
		{ { .align = 1, .align_v = 0 }, "key 'general.alignment' is 0", NULL },
		{ { .dup_key = 1 }, "key 'x.u8' appears twice", NULL },
		{ { .dup_tensor = 1 }, "tensor 'tok_embd' appears twice", NULL },
		{ { .nul_key = 1 }, "key #0 contains a NUL byte", NULL },
		{ { .nul_name = 1 }, "tensor #1 has a name containing a NUL byte", NULL },
		{ { .version = 1 }, "version 1", NULL },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		struct bb c = { 0 };
		build_ref(&c, v[i].o, &f);
		expect_fail(&c, v[i].f1, v[i].f2);
		free(c.p);
	}
	/* valid variants: alignment 64 (u32), 16 (u64), version 2 */
	struct ref_opt ok[] = { { .align = 1, .align_v = 64 }, { .align = 3, .align_v = 16 },
				{ .version = 2 } };
	size_t want_align[] = { 64, 16, 32 };
	for (size_t i = 0; i < 3; i++) {
		struct bb c = { 0 };
		build_ref(&c, ok[i], &f);
		int rc = gguf_open_mem(c.p, c.n, "t.gguf", &g, err, sizeof err);
		T_CHECK(!rc, "variant %zu: %s", i, err);
		if (!rc) {
			T_CHECK(gguf_alignment(g) == want_align[i], "alignment %zu", gguf_alignment(g));
			T_CHECK(gguf_version(g) == (ok[i].version ? ok[i].version : 3), "version");
			t = gguf_find_tensor(g, "blk.0.attn_q");
			T_CHECK(t && t->offset % want_align[i] == 0 &&
					t->data == c.p + f.data + t->offset, "q offset");
			int64_t ki = gguf_find_key(g, "tokenizer.ggml.tokens");
			size_t len;
			const char *s = gguf_get_arr_str(g, ki, 1, &len);
			T_CHECK(s && len == 2 && !memcmp(s, "bc", 2), "token 1");
			s = gguf_get_arr_str(g, ki, 2, &len);
			T_CHECK(s && len == 0, "token 2");
			gguf_close(g);
		}
		free(c.p);
	}
}

/* ---- nested arrays, odd headers ---------------------------------------- */

static void test_nested(void)
{
	struct bb b = { 0 };
	char err[512];
	struct gguf *g;

	/* [[1, 2], []] of u32, [["x"], ["", "yz"]] of strings, then a key after */
	bb_header(&b, 3, 0, 3);
	bb_key(&b, "nest.u32", GGUF_ARR);
	bb_u32(&b, GGUF_ARR); bb_u64(&b, 2);
	bb_u32(&b, GGUF_U32); bb_u64(&b, 2); bb_u32(&b, 1); bb_u32(&b, 2);
	bb_u32(&b, GGUF_U32); bb_u64(&b, 0);
	bb_key(&b, "nest.str", GGUF_ARR);
	bb_u32(&b, GGUF_ARR); bb_u64(&b, 2);
	bb_u32(&b, GGUF_STR); bb_u64(&b, 1); bb_str(&b, "x");
	bb_u32(&b, GGUF_STR); bb_u64(&b, 2); bb_str(&b, ""); bb_str(&b, "yz");
	bb_key(&b, "after", GGUF_U16); bb_u16(&b, 77);
	int rc = gguf_open_mem(b.p, b.n, "t.gguf", &g, err, sizeof err);
	T_REQUIRE(!rc, "nested: %s", err);
	enum gguf_vtype et;
	uint64_t n;
	const void *data = &n;
	T_CHECK(!gguf_get_arr(g, "nest.u32", &et, &n, &data) && et == GGUF_ARR && n == 2 && !data,
		"array of arrays");
	T_CHECK(!gguf_get_arr_str(g, gguf_find_key(g, "nest.str"), 0, NULL), "no strings in nested");
	T_CHECK(gguf_get_i64_or(g, "after", 0) == 77, "key after nested arrays");
	gguf_close(g);

	/* a nested string cut short */
	b.n -= 2 + 4 + 8 + 8 + 1 + 20;
	expect_fail(&b, "truncated: key 'nest.str'", NULL);
	free(b.p);

	/* nesting deeper than the reader goes */
	memset(&b, 0, sizeof b);
	bb_header(&b, 3, 0, 1);
	bb_key(&b, "deep", GGUF_ARR);
	for (int i = 0; i < 20; i++) {
		bb_u32(&b, GGUF_ARR);
		bb_u64(&b, 1);
	}
	bb_u32(&b, GGUF_U8);
	bb_u64(&b, 0);
	expect_fail(&b, "key 'deep' nests arrays more than", NULL);
	free(b.p);

	/* a huge count of nested arrays */
	memset(&b, 0, sizeof b);
	bb_header(&b, 3, 0, 1);
	bb_key(&b, "many", GGUF_ARR);
	bb_u32(&b, GGUF_ARR);
	bb_u64(&b, UINT64_MAX / 2);
	expect_fail(&b, "truncated: key 'many' array of 9223372036854775807 arrays needs more than 2^64 bytes", NULL);
	free(b.p);

	/* a numeric array whose byte count overflows 64 bits */
	memset(&b, 0, sizeof b);
	bb_header(&b, 3, 0, 1);
	bb_key(&b, "wide", GGUF_ARR);
	bb_u32(&b, GGUF_F64);
	bb_u64(&b, UINT64_MAX / 4);
	expect_fail(&b, "truncated: key 'wide' array of 4611686018427387903 f64 needs more than 2^64 bytes", NULL);
	b.n -= 8;
	bb_u64(&b, 1000);
	bb_u64(&b, 1);
	expect_fail(&b, "truncated: key 'wide' array of 1000 f64 needs 8000 bytes at offset 52, file has 60", NULL);
	free(b.p);

	/* short files and unprintable key names */
	memset(&b, 0, sizeof b);
	expect_fail(&b, "too short", NULL);
	bb_put(&b, "GGUF", 4);
	expect_fail(&b, "the header needs 24 bytes, file has 4", NULL);
	bb_u32(&b, 3);
	bb_u64(&b, 0);
	expect_fail(&b, "the header needs 24 bytes, file has 16", NULL);
	bb_u64(&b, 1);
	expect_fail(&b, "truncated: the header claims 1 keys, which need at least 13 bytes at offset 24, file has 24", NULL);
	bb_strn(&b, "\x01\xff", 2);
	bb_u32(&b, 200);
	bb_u8(&b, 0);
	expect_fail(&b, "key '?" "?' has unknown value type 200", NULL);
	free(b.p);

	/* a minimal v2 file with nothing in it, and with one tensor */
	memset(&b, 0, sizeof b);
	bb_header(&b, 2, 0, 0);
	rc = gguf_open_mem(b.p, b.n, "t.gguf", &g, err, sizeof err);
	T_CHECK(!rc && gguf_version(g) == 2 && gguf_n_kv(g) == 0 && gguf_find_key(g, "x") == -1,
		"empty v2: %s", err);
	gguf_close(g);
	b.n = 0;
	bb_header(&b, 2, 1, 0);
	bb_str(&b, "w");
	bb_u32(&b, 1);
	bb_u64(&b, 2);
	bb_u32(&b, KT_F16);
	bb_u64(&b, 0);
	bb_pad(&b, 32);
	bb_u16(&b, 0x3c00);
	bb_u16(&b, 0xc000);
	rc = gguf_open_mem(b.p, b.n, "t.gguf", &g, err, sizeof err);
	T_CHECK(!rc, "v2 tensor: %s", err);
	if (!rc) {
		const struct gguf_tensor *t = gguf_find_tensor(g, "w");
		T_CHECK(t && t->size == 4 && t->data == b.p + 64, "v2 tensor placement");
		gguf_close(g);
	}
	free(b.p);
}

/* ---- the shared vocabulary files --------------------------------------- */

static const struct { const char *file; int64_t n_tokens; int64_t id; const char *text; } vocabs[] = {
	{ "ggml-vocab-llama-spm.gguf", 32000, 1, "<s>" },
	{ "ggml-vocab-bert-bge.gguf", 30522, 101, "[CLS]" },
	{ "ggml-vocab-gpt-2.gguf", 50257, 50256, "<|endoftext|>" },
	{ "ggml-vocab-deepseek-llm.gguf", 102400, 0, "!" },
	{ "ggml-vocab-deepseek-coder.gguf", 32256, 0, "!" },
	{ "ggml-vocab-falcon.gguf", 65024, 0, ">>TITLE<<" },
};
#define N_VOCABS (sizeof vocabs / sizeof vocabs[0])

static void check_vocab(const char *path, const char *file)
{
	struct gguf *g;
	char err[512];
	int rc = gguf_open(path, &g, err, sizeof err);
	T_CHECK(!rc, "%s", err);
	if (rc)
		return;
	int64_t ki = gguf_find_key(g, "tokenizer.ggml.tokens");
	enum gguf_vtype et;
	uint64_t n = 0;
	T_CHECK(ki >= 0 && !gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, NULL) &&
			et == GGUF_STR, "%s: tokens", file);
	/* element j + 1 follows element j in the file: the index is exact */
	const char *prev = NULL;
	size_t prev_len = 0;
	for (uint64_t j = 0; j < n; j++) {
		size_t len;
		const char *s = gguf_get_arr_str(g, ki, j, &len);
		if (!s || (prev && s != prev + prev_len + 8)) {
			T_CHECK(0, "%s: token %" PRIu64 " misplaced", file, j);
			break;
		}
		prev = s;
		prev_len = len;
	}
	uint64_t nt = 0;
	T_CHECK(!gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &nt, NULL) &&
			et == GGUF_I32 && nt == n, "%s: token_type", file);
	size_t len;
	T_CHECK(gguf_get_str(g, "tokenizer.ggml.model", &len) && len > 0, "%s: model", file);
	T_CHECK(gguf_version(g) == 3 && gguf_n_tensors(g) == 0, "%s: v3 vocabulary only", file);
	for (size_t i = 0; i < N_VOCABS; i++) {
		if (strcmp(file, vocabs[i].file))
			continue;
		T_CHECK(n == (uint64_t)vocabs[i].n_tokens, "%s: %" PRIu64 " tokens", file, n);
		const char *s = gguf_get_arr_str(g, ki, (uint64_t)vocabs[i].id, &len);
		T_CHECK(s && len == strlen(vocabs[i].text) && !memcmp(s, vocabs[i].text, len),
			"%s: token %" PRId64, file, vocabs[i].id);
	}
	if (!strcmp(file, "ggml-vocab-llama-spm.gguf")) {
		uint64_t ns;
		const void *data;
		T_CHECK(!gguf_get_arr(g, "tokenizer.ggml.scores", &et, &ns, &data) &&
				et == GGUF_F32 && ns == 32000, "spm scores");
		T_CHECK(gguf_get_i64_or(g, "tokenizer.ggml.bos_token_id", -1) == 1, "bos");
		double eps = gguf_get_f64_or(g, "llama.attention.layer_norm_rms_epsilon", 0);
		T_CHECK(fabs(eps - 1e-5) < 1e-9, "eps %g", eps);
	}
	gguf_close(g);
}

static void test_vocabs(void)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", t_data("vocab/ggml-vocab-llama-spm.gguf"));
	*strrchr(dir, '/') = 0;
	DIR *d = opendir(dir);
	T_REQUIRE(d, "cannot list %s", dir);
	int seen = 0, known = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (strncmp(e->d_name, "ggml-vocab-", 11) || l < 5 ||
		    strcmp(e->d_name + l - 5, ".gguf"))
			continue;
		char path[8192];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		check_vocab(path, e->d_name);
		seen++;
		for (size_t i = 0; i < N_VOCABS; i++)
			known += !strcmp(e->d_name, vocabs[i].file);
	}
	closedir(d);
	T_CHECK(known == (int)N_VOCABS, "found %d of the %zu known vocabularies in %s",
		known, N_VOCABS, dir);
	fprintf(stderr, "test_gguf: %d vocabulary files\n", seen);

	/* truncations of a real file: a dense sample of cut points, plus
	 * every one of the last 64 bytes (a vocabulary ends with its data) */
	size_t len;
	char *buf = t_slurp(t_data("vocab/ggml-vocab-llama-spm.gguf"), &len);
	T_REQUIRE(buf, "read the llama-spm vocabulary");
	int bad = 0, tried = 0;
	for (size_t cut = 0; cut < len; cut += cut + 64 >= len ? 1 : 1009) {
		char err[512] = "";
		int rc = open_exact(buf, cut, err, sizeof err);
		tried++;
		if (rc != -EINVAL || strncmp(err, "t.gguf: ", 8)) {
			if (bad++ < 5)
				T_CHECK(0, "cut at %zu: rc %d '%s'", cut, rc, err);
		}
	}
	T_CHECK(!bad, "%d of %d truncations of the llama-spm vocabulary not refused", bad, tried);
	free(buf);
}

int main(void)
{
	T_REQUIRE(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
	test_scalars(3);
	test_scalars(2);
	test_writer();
	test_corrupt();
	test_nested();
	test_vocabs();
	rmdir(tmpdir);
	return t_done("test_gguf");
}
