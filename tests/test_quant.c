/*
 * The CPU block kernels: the type table, hand-built blocks whose values are
 * known (so a layout error cannot pass), quantise/dequantise round trips,
 * dot products against a double-precision reference, the AVX2 paths
 * against the scalar reference, the thread pool, kt_matmul against a
 * naive loop, and the float GEMM with its bias and GELU epilogue against
 * float64.
 *
 * Tolerances are stated where they are used, as bounds derived from the
 * formats (not fitted to the results): "A" is the largest magnitude in the
 * block (32 or 256 elements) an element belongs to.
 */
#include <math.h>
#include <stdatomic.h>

#include "kernels/cpu/quant.h"
#include "kernels/kernels.h"
#include "tests/testutil.h"

#define U 0x1p-23 /* float rounding unit, with a factor 2 of slack */

static const enum kt_type all_types[] = {
	KT_F32, KT_F16, KT_BF16, KT_Q4_0, KT_Q4_1, KT_Q5_0, KT_Q5_1,
	KT_Q8_0, KT_Q8_1, KT_Q4_K, KT_Q5_K, KT_Q6_K, KT_Q8_K,
};
#define N_TYPES (int)(sizeof(all_types) / sizeof(all_types[0]))

static int has_avx2;
static int has_vnni; /* AVX-512 VNNI kernels in use: compared too */

static int is_weight(enum kt_type t)
{
	return t != KT_Q8_1 && t != KT_Q8_K;
}

/* Types whose dequantisation is d*q - m (two roundings, which the AVX2
 * code may fuse into one FMA). */
static int has_min(enum kt_type t)
{
	return t == KT_Q4_1 || t == KT_Q5_1 || t == KT_Q4_K || t == KT_Q5_K;
}

static uint16_t f2h(float f)
{
	uint16_t h;
	kt_quantize_row_isa(KT_ISA_SCALAR, KT_F16, &f, &h, 1);
	return h;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	T_REQUIRE(p, "out of memory");
	return p;
}

/* ---- the type table ---------------------------------------------------- */

static void test_table(void)
{
	static const struct {
		enum kt_type t;
		const char *name;
		int64_t blck;
		size_t bytes;
		enum kt_type dot;
	} want[] = {
		{ KT_F32, "f32", 1, 4, KT_F32 },
		{ KT_F16, "f16", 1, 2, KT_F32 },
		{ KT_BF16, "bf16", 1, 2, KT_F32 },
		{ KT_Q4_0, "q4_0", 32, 18, KT_Q8_0 },
		{ KT_Q4_1, "q4_1", 32, 20, KT_Q8_1 },
		{ KT_Q5_0, "q5_0", 32, 22, KT_Q8_0 },
		{ KT_Q5_1, "q5_1", 32, 24, KT_Q8_1 },
		{ KT_Q8_0, "q8_0", 32, 34, KT_Q8_0 },
		{ KT_Q8_1, "q8_1", 32, 36, KT_TYPE_MAX },
		{ KT_Q4_K, "q4_K", 256, 144, KT_Q8_K },
		{ KT_Q5_K, "q5_K", 256, 176, KT_Q8_K },
		{ KT_Q6_K, "q6_K", 256, 210, KT_Q8_K },
		{ KT_Q8_K, "q8_K", 256, 292, KT_TYPE_MAX },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *name = kt_type_name(want[i].t);
		T_CHECK(name && strcmp(name, want[i].name) == 0, "type %d name %s", want[i].t,
			name ? name : "(null)");
		T_CHECK(kt_block_elems(want[i].t) == want[i].blck, "%s blck", want[i].name);
		T_CHECK(kt_block_bytes(want[i].t) == want[i].bytes, "%s bytes %zu", want[i].name,
			kt_block_bytes(want[i].t));
		/* a 4096-wide row: 4096 / blck blocks */
		T_CHECK(kt_row_bytes(want[i].t, 4096) == (size_t)(4096 / want[i].blck) * want[i].bytes,
			"%s row bytes %zu", want[i].name, kt_row_bytes(want[i].t, 4096));
		T_CHECK(kt_type_supported(want[i].t) == is_weight(want[i].t), "%s supported",
			want[i].name);
		T_CHECK(kt_dot_type(want[i].t) == want[i].dot, "%s dot type", want[i].name);
	}
	T_CHECK(kt_row_bytes(KT_Q4_K, 5120) == 2880, "q4_K 5120 row");
	T_CHECK(kt_row_bytes(KT_Q6_K, 4096) == 3360, "q6_K 4096 row");
	T_CHECK(kt_row_bytes(KT_Q8_0, 4096) == 4352, "q8_0 4096 row");
	T_CHECK(kt_row_bytes(KT_F16, 4096) == 8192, "f16 4096 row");
	/* unknown numbers: 4, 5 (removed q4_2/q4_3), 10, 16 (iq2_xxs), 39 */
	static const uint32_t unknown[] = { 4, 5, 10, 11, 16, 29, 39, 40, 1000 };
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		T_CHECK(!kt_type_name(unknown[i]), "type %u has a name", unknown[i]);
		T_CHECK(!kt_type_supported(unknown[i]), "type %u supported", unknown[i]);
	}
	T_CHECK(strcmp(kt_isa_name(KT_ISA_SCALAR), "scalar") == 0, "isa name");
	T_CHECK(strcmp(kt_isa_name(KT_ISA_AVX2), "avx2") == 0, "isa name");
}

/* ---- half precision ---------------------------------------------------- */

static void test_half(void)
{
	/* Every binary16 value: f16 -> f32 -> f16 gives it back (NaNs stay
	 * NaN); the AVX2 (F16C) conversions agree bit for bit both ways. */
	uint16_t *h = xmalloc(65536 * 2), *h2 = xmalloc(65536 * 2), *h3 = xmalloc(65536 * 2);
	float *f = xmalloc(65536 * 4), *f2 = xmalloc(65536 * 4);
	for (int i = 0; i < 65536; i++)
		h[i] = (uint16_t)i;
	kt_dequant_row_isa(KT_ISA_SCALAR, KT_F16, h, f, 65536);
	kt_quantize_row_isa(KT_ISA_SCALAR, KT_F16, f, h2, 65536);
	int bad = 0;
	for (int i = 0; i < 65536; i++) {
		const int nan = (i & 0x7c00) == 0x7c00 && (i & 0x3ff);
		if (nan ? !isnan(f[i]) : h2[i] != h[i])
			bad++;
	}
	T_CHECK(bad == 0, "%d halves do not round-trip", bad);
	T_CHECK(f[0x3c00] == 1.0f && f[0xc000] == -2.0f && f[0x0001] == 0x1p-24f &&
		f[0x7bff] == 65504.0f && isinf(f[0x7c00]), "known halves");

	/* Rounding of floats: ties to even, overflow, subnormals. */
	static const struct {
		float f;
		uint16_t h;
	} known[] = {
		{ 1.0f + 0x1p-11f, 0x3c00 },		/* tie -> even (down) */
		{ 1.0f + 3 * 0x1p-11f, 0x3c02 },	/* tie -> even (up) */
		{ 65519.0f, 0x7bff }, { 65520.0f, 0x7c00 }, /* largest finite, then inf */
		{ 0x1p-25f, 0x0000 },			/* half of the smallest subnormal: even */
		{ 0x1.8p-24f, 0x0002 },			/* 1.5 units -> 2 */
		{ -0x1p-14f, 0x8400 }, { 1e9f, 0x7c00 }, { -0.0f, 0x8000 },
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		T_CHECK(f2h(known[i].f) == known[i].h, "fp16(%a) = %04x, want %04x", known[i].f,
			f2h(known[i].f), known[i].h);

	if (has_avx2) {
		kt_dequant_row_isa(KT_ISA_AVX2, KT_F16, h, f2, 65536);
		T_CHECK(memcmp(f, f2, 65536 * 4) == 0, "F16C f16->f32 differs");
		/* random floats over the whole range, and near the subnormals */
		uint64_t s = 7;
		for (int i = 0; i < 65536; i++) {
			uint32_t u = (uint32_t)t_rand_u64(&s);
			if (i & 1)
				u = (u & 0x80000000u) | (0x30000000u + (u % 0x0b000000u));
			memcpy(&f[i], &u, 4);
		}
		/* NaNs, signalling and quiet, with payloads: F16C keeps the top
		 * payload bits and sets the quiet bit */
		const uint32_t nans[] = { 0x7f800001u, 0xffc00000u, 0x7fa5a5a5u, 0x7fffffffu };
		for (int i = 0; i < 4; i++)
			memcpy(&f[i], &nans[i], 4);
		kt_quantize_row_isa(KT_ISA_SCALAR, KT_F16, f, h2, 65536);
		kt_quantize_row_isa(KT_ISA_AVX2, KT_F16, f, h3, 65536);
		T_CHECK(memcmp(h2, h3, 65536 * 2) == 0, "F16C f32->f16 differs");
		kt_quantize_row_isa(KT_ISA_SCALAR, KT_BF16, f, h2, 65536);
		kt_quantize_row_isa(KT_ISA_AVX2, KT_BF16, f, h3, 65536);
		T_CHECK(memcmp(h2, h3, 65536 * 2) == 0, "AVX2 f32->bf16 differs");
	}
	T_CHECK(f2h(NAN) == 0x7e00 || (f2h(NAN) & 0x7e00) == 0x7e00, "NaN -> %04x", f2h(NAN));

	free(h);
	free(h2);
	free(h3);
	free(f);
	free(f2);
}

/* ---- hand-built blocks ------------------------------------------------- */

/* Dequantise with both ISAs and compare with the expected values, exactly:
 * every expected value here is a small integer times a power of two, so
 * any correct formula gives it without rounding. */
static void check_known(const char *what, enum kt_type t, const void *blk, const float *want,
			int n)
{
	float *got = xmalloc((size_t)n * 4);
	for (int isa = 0; isa <= (has_avx2 ? 1 : 0); isa++) {
		kt_dequant_row_isa((enum kt_isa)isa, t, blk, got, n);
		int bad = -1;
		for (int i = 0; i < n && bad < 0; i++)
			if (got[i] != want[i])
				bad = i;
		T_CHECK(bad < 0, "%s (%s): element %d is %g, want %g", what,
			kt_isa_name((enum kt_isa)isa), bad, bad >= 0 ? got[bad] : 0.0,
			bad >= 0 ? want[bad] : 0.0);
	}
	/* The dot with some activations agrees with the known values (this
	 * also takes the q8_0 -128 weight through the AVX2 sign trick). */
	if (is_weight(t)) {
		const enum kt_type dt = kt_dot_type(t);
		float *x = xmalloc((size_t)n * 4), *xd = xmalloc((size_t)n * 4);
		uint8_t *xq = xmalloc(kt_row_bytes(dt, n) + 1);
		for (int i = 0; i < n; i++)
			x[i] = (float)((i * 37) % 23 - 11) / 8;
		kt_quantize_row(dt, x, xq, n);
		kt_dequant_row(dt, xq, xd, n);
		double ref = 0, mag = 0, wmax = 0, xsum = 0;
		for (int i = 0; i < n; i++) {
			ref += (double)want[i] * xd[i];
			mag += fabs(want[i]) * fabs(xd[i]);
			wmax = fmax(wmax, fabs(want[i]));
			xsum += fabs(xd[i]);
		}
		/* rounding as in test_dot, plus for q4_1/q5_1 the q8_1 s term,
		 * 2^-10 |m| sum|x|; the blocks above have a zero code, so |m| is
		 * one of the values, <= wmax */
		const double tol = (n + 16) * U * (mag + wmax * xsum) +
				   (t == KT_Q4_1 || t == KT_Q5_1 ? 0x1p-10 * 1.01 * wmax * xsum : 0);
		for (int isa = 0; isa <= (has_avx2 ? 1 : 0); isa++) {
			const float v = kt_vec_dot_isa((enum kt_isa)isa, t, blk, xq, n);
			T_CHECK(fabs(v - ref) <= tol, "%s (%s): dot %.9g, want %.9g", what,
				kt_isa_name((enum kt_isa)isa), v, ref);
		}
		free(x);
		free(xd);
		free(xq);
	}
	free(got);
}

/* The 12-byte 6-bit scale/min packing of q4_K/q5_K, written from its
 * description in ggml: scales 0-3 and mins 0-3 in the low 6 bits of bytes
 * 0-3 and 4-7; scales/mins 4-7 as a low nibble in bytes 8-11 (scale low,
 * min high) and their top 2 bits in bits 6-7 of bytes 0-3 (scales) and
 * 4-7 (mins). */
static void pack_k4(uint8_t *p, const int *sc, const int *mn)
{
	memset(p, 0, 12);
	for (int j = 0; j < 4; j++) {
		p[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
		p[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
		p[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
	}
}

static void test_known_blocks(void)
{
	float want[256];

	{ /* q4_0: d = 1, qs[j] = j | (15 - j) << 4: x[j] = j - 8, x[16 + j] = 7 - j */
		uint8_t b[18];
		uint16_t d = 0x3c00;
		memcpy(b, &d, 2);
		for (int j = 0; j < 16; j++) {
			b[2 + j] = (uint8_t)(j | (15 - j) << 4);
			want[j] = (float)(j - 8);
			want[16 + j] = (float)(7 - j);
		}
		check_known("q4_0", KT_Q4_0, b, want, 32);
	}
	{ /* q4_1: d = 0.5, m = -1: x = q/2 - 1 */
		uint8_t b[20];
		uint16_t d = 0x3800, m = 0xbc00;
		memcpy(b, &d, 2);
		memcpy(b + 2, &m, 2);
		for (int j = 0; j < 16; j++) {
			b[4 + j] = (uint8_t)((15 - j) | j << 4);
			want[j] = (float)(15 - j) * 0.5f - 1;
			want[16 + j] = (float)j * 0.5f - 1;
		}
		check_known("q4_1", KT_Q4_1, b, want, 32);
	}
	{ /* q5_0: d = 2, qh = 0xA5C3_0F81: bit j is bit 4 of element j */
		uint8_t b[22];
		uint16_t d = 0x4000;
		const uint32_t qh = 0xA5C30F81u;
		memcpy(b, &d, 2);
		for (int k = 0; k < 4; k++)
			b[2 + k] = (uint8_t)(qh >> (8 * k));
		for (int j = 0; j < 16; j++) {
			b[6 + j] = (uint8_t)(j | ((j * 5) & 15) << 4);
			want[j] = 2.0f * (float)((j | (int)((qh >> j) & 1) << 4) - 16);
			want[16 + j] = 2.0f * (float)((((j * 5) & 15) | (int)((qh >> (16 + j)) & 1) << 4) - 16);
		}
		check_known("q5_0", KT_Q5_0, b, want, 32);
	}
	{ /* q5_1: d = 0.25, m = 3 */
		uint8_t b[24];
		uint16_t d = 0x3400, m = 0x4200;
		const uint32_t qh = 0x12345678u;
		memcpy(b, &d, 2);
		memcpy(b + 2, &m, 2);
		for (int k = 0; k < 4; k++)
			b[4 + k] = (uint8_t)(qh >> (8 * k));
		for (int j = 0; j < 16; j++) {
			b[8 + j] = (uint8_t)((j * 3 & 15) | (15 - j) << 4);
			want[j] = 0.25f * (float)((j * 3 & 15) | (int)((qh >> j) & 1) << 4) + 3;
			want[16 + j] = 0.25f * (float)((15 - j) | (int)((qh >> (16 + j)) & 1) << 4) + 3;
		}
		check_known("q5_1", KT_Q5_1, b, want, 32);
	}
	{ /* q8_0 and q8_1: d = 2, q = j - 16 (and -128, 127 at the ends) */
		uint8_t b[36];
		uint16_t d = 0x4000, s = 0;
		memcpy(b, &d, 2);
		for (int j = 0; j < 32; j++) {
			const int q = j == 0 ? -128 : j == 31 ? 127 : j - 16;
			b[2 + j] = (uint8_t)(int8_t)q;
			want[j] = 2.0f * (float)q;
		}
		check_known("q8_0", KT_Q8_0, b, want, 32);
		memmove(b + 4, b + 2, 32);
		memcpy(b + 2, &s, 2);
		check_known("q8_1", KT_Q8_1, b, want, 32);
	}

	/* K-quants: scales and mins chosen so that every 6-bit field has its
	 * top bits in use (values >= 16, and >= 32 for 4-7). */
	const int sc[8] = { 1, 17, 33, 63, 5, 40, 21, 62 };
	const int mn[8] = { 0, 63, 16, 2, 48, 7, 31, 33 };
	{ /* q4_K: d = 0.5, dmin = 0.25; group g of 64: 32 low nibbles use
	   * sub-block 2g, the high nibbles 2g + 1 */
		uint8_t b[144];
		uint16_t d = 0x3800, dmin = 0x3400;
		memcpy(b, &d, 2);
		memcpy(b + 2, &dmin, 2);
		pack_k4(b + 4, sc, mn);
		for (int g = 0; g < 4; g++)
			for (int l = 0; l < 32; l++) {
				const int lo = (l + g) & 15, hi = (3 * l + 7 * g) & 15;
				b[16 + 32 * g + l] = (uint8_t)(lo | hi << 4);
				want[64 * g + l] = 0.5f * sc[2 * g] * lo - 0.25f * mn[2 * g];
				want[64 * g + 32 + l] = 0.5f * sc[2 * g + 1] * hi - 0.25f * mn[2 * g + 1];
			}
		check_known("q4_K", KT_Q4_K, b, want, 256);
	}
	{ /* q5_K: as q4_K plus qh: bit 2g of qh[l] is bit 4 of element
	   * 64g + l, bit 2g + 1 of element 64g + 32 + l */
		uint8_t b[176];
		uint16_t d = 0x3c00, dmin = 0x3800;
		memcpy(b, &d, 2);
		memcpy(b + 2, &dmin, 2);
		pack_k4(b + 4, sc, mn);
		for (int l = 0; l < 32; l++)
			b[16 + l] = (uint8_t)(l * 37 + 11);
		for (int g = 0; g < 4; g++)
			for (int l = 0; l < 32; l++) {
				const int lo = (l * 5 + g) & 15, hi = (l + 3 * g) & 15;
				const uint8_t qh = b[16 + l];
				b[48 + 32 * g + l] = (uint8_t)(lo | hi << 4);
				const int q1 = lo | ((qh >> (2 * g)) & 1) << 4;
				const int q2 = hi | ((qh >> (2 * g + 1)) & 1) << 4;
				want[64 * g + l] = 1.0f * sc[2 * g] * q1 - 0.5f * mn[2 * g];
				want[64 * g + 32 + l] = 1.0f * sc[2 * g + 1] * q2 - 0.5f * mn[2 * g + 1];
			}
		check_known("q5_K", KT_Q5_K, b, want, 256);
	}
	{ /* q6_K, packed as ggml's quantize_row_q6_K_ref does: for each half
	   * of 128 and l < 32, the values L[l], L[l+32], L[l+64], L[l+96]
	   * go to ql[l] (low, high nibble: L[l], L[l+64]), ql[l+32] (L[l+32],
	   * L[l+96]) and qh[l] (top 2 bits of each, in that order). d = 0.5,
	   * signed scales, x = d * scale[e/16] * (L - 32). */
		uint8_t b[210] = { 0 };
		uint8_t *ql = b, *qh = b + 128;
		int8_t *scales = (int8_t *)(b + 192);
		uint16_t d = 0x3800;
		int L[256];
		for (int e = 0; e < 256; e++)
			L[e] = (e * 29 + 3) & 63;
		for (int j = 0; j < 16; j++)
			scales[j] = (int8_t)(j * 17 - 128);
		memcpy(b + 208, &d, 2);
		for (int h = 0; h < 2; h++)
			for (int l = 0; l < 32; l++) {
				const int *Lh = L + 128 * h;
				ql[64 * h + l] = (uint8_t)((Lh[l] & 15) | (Lh[l + 64] & 15) << 4);
				ql[64 * h + l + 32] = (uint8_t)((Lh[l + 32] & 15) | (Lh[l + 96] & 15) << 4);
				qh[32 * h + l] = (uint8_t)((Lh[l] >> 4) | (Lh[l + 32] >> 4) << 2 |
							   (Lh[l + 64] >> 4) << 4 | (Lh[l + 96] >> 4) << 6);
			}
		for (int e = 0; e < 256; e++)
			want[e] = 0.5f * scales[e / 16] * (float)(L[e] - 32);
		check_known("q6_K", KT_Q6_K, b, want, 256);
	}
	{ /* q8_K: float d = 0.125 first */
		uint8_t b[292] = { 0 };
		const float d = 0.125f;
		memcpy(b, &d, 4);
		for (int j = 0; j < 256; j++) {
			b[4 + j] = (uint8_t)(int8_t)(j - 128);
			want[j] = 0.125f * (float)(j - 128);
		}
		check_known("q8_K", KT_Q8_K, b, want, 256);
	}
	{ /* bf16 and f16 */
		uint16_t b[4] = { 0x3f80, 0xc040, 0x0000, 0x4049 };
		float w4[4] = { 1.0f, -3.0f, 0.0f, 3.140625f };
		check_known("bf16", KT_BF16, b, w4, 4);
		uint16_t hb[4] = { 0x3c00, 0xc200, 0x8000, 0x3555 };
		float hw[4] = { 1.0f, -3.0f, -0.0f, 0x1.554p-2f };
		check_known("f16", KT_F16, hb, hw, 4);
	}
}

/* ---- random data ------------------------------------------------------- */

/* Fill x with one of several distributions. */
static void gen(float *x, int64_t n, int mode, uint64_t *s)
{
	const float scales[] = { 1.0f, 3.7f, 0.11f, 1.0f };
	const float sc = scales[t_rand_u64(s) % 4];
	for (int64_t i = 0; i < n; i++) {
		float v = t_rand_f(s) * sc;
		switch (mode) {
		case 1: /* outliers */
			if (t_rand_u64(s) % 17 == 0)
				v *= 8;
			break;
		case 2: /* all positive (the K-quant min is clamped at 0) */
			v = 0.2f + fabsf(v);
			break;
		case 3: /* zero blocks among small values */
			v = ((i / 32) % 3 == 1) ? 0.0f : v * 0.01f;
			break;
		}
		x[i] = v;
	}
}

/* Round-trip bound per element, as a multiple of the block's absmax A.
 * Derivations (d = block scale, R = max - min <= 2A, f16 d rounds by at
 * most 2^-11 relative, q the integer code):
 *  q8_0/q8_1: d = A/127; |err| <= d/2 + 127 d 2^-11 = 0.0044 A.
 *  q8_K: d is a float: A/254 (1 + 2^-22) < 0.0040 A.
 *  q4_0: d = -max/8; -max maps to 8, clamped to 7: |err| <= |d| = A/8,
 *        plus 8 |d| 2^-11 from f16 d: 0.1256 A.
 *  q5_0: likewise A/16 + 16 |d| 2^-11: 0.0630 A.
 *  q4_1: d = R/15; d/2 + 15 d 2^-11 + |min| 2^-11 <= (1/15 + 1/1024 + 1/2048) A.
 *  q5_1: d = R/31: (1/31 + 1/1024 + 1/2048) A.
 *  q4_K: sub-block scale s <= 2A/15 and min m <= A are stored as 6-bit
 *        multiples of d = max s/63 and dmin = max m/63 (error <= d/2,
 *        dmin/2, plus 63 d 2^-11 from f16: 0.531 d); the code is clamped
 *        to 0..15, so |err| <= S/2 + |M - m| + 15 |S - s|
 *        <= 0.0672 A + 0.0085 A + 0.0169 A.
 *  q5_K: the same with 31: 0.0326 A + 0.0085 A + 0.0169 A.
 *  q6_K: per-16 scale s = -max/32 (|s| <= A/32), stored as an int8
 *        multiple S of d = max |s|/128: |S - s| <= d/2 + 128 d 2^-11, or
 *        d when +128 clamps to 127; the code is clamped to -32..31, so
 *        |err| <= |s| + 32 |S - s| <= A/32 + 32 A/4096.
 * An f16 scale below 2^-14 is subnormal: rounded to a multiple of 2^-24,
 * not relative. That adds up to 2^-25 times the largest multiplier of the
 * scale (e.g. 128 * 32 for q6_K's d * sc * q) to the bound; small blocks
 * (mode 3 data) reach it. */
static double rt_bound(enum kt_type t, double A, double x)
{
	const double sub = 0x1p-25; /* subnormal f16 rounding, see above */
	switch (t) {
	case KT_F32: return 0;
	case KT_F16: return fabs(x) * 0x1p-11 + sub;
	case KT_BF16: return fabs(x) * 0x1p-8;
	case KT_Q8_0:
	case KT_Q8_1: return 0.0045 * A + 127 * sub;
	case KT_Q8_K: return 0.0040 * A;
	case KT_Q4_0: return 0.1257 * A + 8 * sub;
	case KT_Q5_0: return 0.0631 * A + 16 * sub;
	case KT_Q4_1: return (1.0 / 15 + 1.0 / 1024 + 1.0 / 2048) * A * 1.001 + 16 * sub;
	case KT_Q5_1: return (1.0 / 31 + 1.0 / 1024 + 1.0 / 2048) * A * 1.001 + 32 * sub;
	case KT_Q4_K: return 0.0945 * A + (63 * 15 + 63) * sub;
	case KT_Q5_K: return 0.0585 * A + (63 * 31 + 63) * sub;
	case KT_Q6_K: return (1.0 / 32 + 32.0 / 4096) * A * 1.001 + 128 * 32 * sub;
	default: return 0;
	}
}

/* Absmax of the block (of the type's block size; 32 for float types, for
 * the dot bounds) containing each element. */
static void block_amax(const float *x, int64_t n, int64_t blck, double *A)
{
	if (blck == 1)
		blck = 32;
	for (int64_t b = 0; b < n; b += blck) {
		double a = 0;
		const int64_t e = b + blck < n ? b + blck : n;
		for (int64_t i = b; i < e; i++)
			a = fmax(a, fabs(x[i]));
		for (int64_t i = b; i < e; i++)
			A[i] = a;
	}
}

static void test_roundtrip(enum kt_type t, int64_t n, int mode, uint64_t seed)
{
	const char *name = kt_type_name(t);
	const size_t rb = kt_row_bytes(t, n);
	float *x = xmalloc((size_t)n * 4), *ds = xmalloc((size_t)n * 4), *da = xmalloc((size_t)n * 4);
	double *A = xmalloc((size_t)n * 8);
	uint8_t *qs = xmalloc(rb), *qa = xmalloc(rb);
	uint64_t s = seed;

	gen(x, n, mode, &s);
	block_amax(x, n, kt_block_elems(t), A);
	memset(qs, 0xAA, rb);
	kt_quantize_row_isa(KT_ISA_SCALAR, t, x, qs, n);
	kt_dequant_row_isa(KT_ISA_SCALAR, t, qs, ds, n);

	double worst = 0;
	int64_t bad = -1;
	for (int64_t i = 0; i < n; i++) {
		const double err = fabs((double)ds[i] - x[i]);
		const double bound = rt_bound(t, A[i], x[i]);
		if (A[i] > 0)
			worst = fmax(worst, err / A[i]);
		if (!(err <= bound) && bad < 0)
			bad = i;
	}
	T_CHECK(bad < 0, "%s n=%lld mode %d seed %llu: round trip x[%lld] = %g -> %g, bound %g",
		name, (long long)n, mode, (unsigned long long)seed, (long long)bad,
		bad >= 0 ? x[bad] : 0.0, bad >= 0 ? ds[bad] : 0.0,
		bad >= 0 ? rt_bound(t, A[bad], x[bad]) : 0.0);
	if (getenv("TEST_QUANT_VERBOSE"))
		fprintf(stderr, "  %s n=%lld mode %d: worst round-trip error %.4f A\n", name,
			(long long)n, mode, worst);

	if (has_avx2) {
		/* Quantisation: the same bytes (identical formulas and rounding). */
		memset(qa, 0x55, rb);
		kt_quantize_row_isa(KT_ISA_AVX2, t, x, qa, n);
		T_CHECK(memcmp(qs, qa, rb) == 0, "%s n=%lld: AVX2 quantisation differs", name,
			(long long)n);
		/* Dequantisation: exact, except d*q - m types where an FMA may
		 * skip one rounding: |diff| <= 2^-23 (|x| + A), A >= |m|. */
		kt_dequant_row_isa(KT_ISA_AVX2, t, qs, da, n);
		bad = -1;
		for (int64_t i = 0; i < n && bad < 0; i++) {
			const double tol = has_min(t) ? U * (fabs(ds[i]) + 2 * A[i]) : 0;
			if (!(fabs((double)da[i] - ds[i]) <= tol))
				bad = i;
		}
		T_CHECK(bad < 0, "%s n=%lld: AVX2 dequant [%lld] %g vs %g", name, (long long)n,
			(long long)bad, bad >= 0 ? da[bad] : 0.0, bad >= 0 ? ds[bad] : 0.0);
	}
	free(x);
	free(ds);
	free(da);
	free(A);
	free(qs);
	free(qa);
}

/* vec_dot against sum(dequant(w) * dequant(xq)) in double, both ISAs. */
static void test_dot(enum kt_type t, int64_t n, int mode, uint64_t seed)
{
	const char *name = kt_type_name(t);
	const enum kt_type dt = kt_dot_type(t);
	const size_t rw = kt_row_bytes(t, n), rx = kt_row_bytes(dt, n);
	float *w = xmalloc((size_t)n * 4), *x = xmalloc((size_t)n * 4);
	float *wd = xmalloc((size_t)n * 4), *xd = xmalloc((size_t)n * 4);
	double *Aw = xmalloc((size_t)n * 8);
	uint8_t *wq = xmalloc(rw), *xq = xmalloc(rx), *xq2 = xmalloc(rx);
	uint64_t s = seed * 7919 + 13;

	gen(w, n, mode, &s);
	gen(x, n, (mode + 1) % 3, &s); /* activations: never all-zero blocks */
	kt_quantize_row_isa(KT_ISA_SCALAR, t, w, wq, n);
	kt_quantize_row_isa(KT_ISA_SCALAR, dt, x, xq, n);
	kt_dequant_row_isa(KT_ISA_SCALAR, t, wq, wd, n);
	kt_dequant_row_isa(KT_ISA_SCALAR, dt, xq, xd, n);
	block_amax(w, n, kt_block_elems(t), Aw);

	/* Float rounding: every path sums at most n/blck + 16 float terms in
	 * sequence, each term a product of two rounded values; so the error
	 * of each against the exact sum is within (n/blck + 16) * 2^-23 *
	 * sum (|w_i| + A_i) |x_i|, where A_i (>= |min|) covers the
	 * cancellation in d*q - m. For q4_1/q5_1, the dot uses q8_1's s =
	 * f16(d * sum q) where the dequantised sum is f16(d) * sum q: two f16
	 * roundings, 2^-10 |m| |sum x| per block at most. */
	double ref = 0, mag = 0, sterm = 0;
	for (int64_t i = 0; i < n; i++) {
		ref += (double)wd[i] * xd[i];
		mag += (fabs(wd[i]) + Aw[i]) * fabs(xd[i]);
		if (t == KT_Q4_1 || t == KT_Q5_1)
			sterm += Aw[i] * fabs(xd[i]) * 0x1p-10 * 1.01;
	}
	const int64_t blck = kt_block_elems(t);
	const double tol = (double)(n / blck + 16) * U * mag + sterm + 1e-30;

	const float vs = kt_vec_dot_isa(KT_ISA_SCALAR, t, wq, xq, n);
	T_CHECK(fabs(vs - ref) <= tol, "%s n=%lld mode %d: scalar dot %.9g, ref %.9g, tol %.3g",
		name, (long long)n, mode, vs, ref, tol);
	if (has_avx2) {
		/* The AVX2 activations are the same bytes (checked above too). */
		kt_quantize_row_isa(KT_ISA_AVX2, dt, x, xq2, n);
		T_CHECK(memcmp(xq, xq2, rx) == 0, "%s: AVX2 activation quantisation differs", name);
		const float va = kt_vec_dot_isa(KT_ISA_AVX2, t, wq, xq, n);
		T_CHECK(fabs(va - ref) <= tol, "%s n=%lld mode %d: AVX2 dot %.9g, ref %.9g, tol %.3g",
			name, (long long)n, mode, va, ref, tol);
		T_CHECK(fabs(va - vs) <= tol - sterm,
			"%s n=%lld mode %d: AVX2 dot %.9g, scalar %.9g", name, (long long)n, mode, va, vs);
	}
	if (has_vnni) {
		/* The VNNI build: same integer sums, same float code. */
		kt_quantize_row_isa(KT_ISA_AVX512VNNI, dt, x, xq2, n);
		T_CHECK(memcmp(xq, xq2, rx) == 0, "%s: VNNI activation quantisation differs", name);
		const float vv = kt_vec_dot_isa(KT_ISA_AVX512VNNI, t, wq, xq, n);
		T_CHECK(fabs(vv - ref) <= tol, "%s n=%lld mode %d: VNNI dot %.9g, ref %.9g, tol %.3g",
			name, (long long)n, mode, vv, ref, tol);
		T_CHECK(fabs(vv - vs) <= tol - sterm,
			"%s n=%lld mode %d: VNNI dot %.9g, scalar %.9g", name, (long long)n, mode, vv, vs);
	}
	/* kt_vec_dot dispatches to one of them. */
	const float vd = kt_vec_dot(t, wq, xq, n);
	T_CHECK(fabs(vd - ref) <= tol, "%s: kt_vec_dot %.9g, ref %.9g", name, vd, ref);

	free(w);
	free(x);
	free(wd);
	free(xd);
	free(Aw);
	free(wq);
	free(xq);
	free(xq2);
}

static void test_random(void)
{
	for (int ti = 0; ti < N_TYPES; ti++) {
		const enum kt_type t = all_types[ti];
		const int64_t blck = kt_block_elems(t);
		int64_t sizes[4];
		if (blck == 1) {
			sizes[0] = 37, sizes[1] = 259, sizes[2] = 1003, sizes[3] = 4096;
		} else if (blck == 32) {
			sizes[0] = 32, sizes[1] = 96, sizes[2] = 288, sizes[3] = 1024;
		} else {
			sizes[0] = 256, sizes[1] = 768, sizes[2] = 2048, sizes[3] = 4096;
		}
		for (int si = 0; si < 4; si++)
			for (int mode = 0; mode < 4; mode++)
				for (uint64_t seed = 1; seed <= 3; seed++) {
					const uint64_t sd = seed * 1000003 + (uint64_t)(si * 31 + mode * 7 + t);
					test_roundtrip(t, sizes[si], mode, sd);
					if (is_weight(t))
						test_dot(t, sizes[si], mode, sd);
				}
	}
}

/* The q4_K/q5_K dots take the min term from q8_K's bsums (as ggml does), so
 * the dot-vs-dequantised checks above, whose reference ignores bsums, also
 * check the bsums the quantisers write. Make sure they are really read. */
static void test_bsums_used(void)
{
	float w[256], x[256];
	uint8_t wq[176], xq[292];
	uint64_t s = 99;
	gen(w, 256, 0, &s);
	gen(x, 256, 0, &s);
	const enum kt_type ks[] = { KT_Q4_K, KT_Q5_K };
	for (int k = 0; k < 2; k++) {
		kt_quantize_row(ks[k], w, wq, 256);
		kt_quantize_row(KT_Q8_K, x, xq, 256);
		for (int isa = 0; isa <= (has_avx2 ? 1 : 0); isa++) {
			const float a = kt_vec_dot_isa((enum kt_isa)isa, ks[k], wq, xq, 256);
			int16_t b;
			memcpy(&b, xq + 4 + 256, 2);
			b = (int16_t)(b + 100);
			memcpy(xq + 4 + 256, &b, 2);
			const float c = kt_vec_dot_isa((enum kt_isa)isa, ks[k], wq, xq, 256);
			b = (int16_t)(b - 100);
			memcpy(xq + 4 + 256, &b, 2);
			T_CHECK(a != c, "%s (%s): bsums not used", kt_type_name(ks[k]),
				kt_isa_name((enum kt_isa)isa));
		}
	}
}

/* ---- thread pool ------------------------------------------------------- */

struct pool_probe {
	atomic_int calls[8];
	atomic_int bad_nth;
	int want_nth;
};

static void probe_task(void *arg, int ith, int nth)
{
	struct pool_probe *p = arg;
	if (nth != p->want_nth || ith < 0 || ith >= nth)
		atomic_fetch_add(&p->bad_nth, 1);
	else
		atomic_fetch_add(&p->calls[ith], 1);
}

static void test_pool(void)
{
	for (int nt = 1; nt <= 4; nt++) {
		struct kt_pool *pool = kt_pool_create(nt);
		T_REQUIRE(pool, "kt_pool_create(%d)", nt);
		T_CHECK(kt_pool_threads(pool) == nt, "threads");
		struct pool_probe p = { .want_nth = nt };
		/* fewer runs with more threads than this machine may have cores:
		 * each run then waits on descheduled threads */
		const int runs = nt <= 2 ? 20000 : 2000;
		for (int r = 0; r < runs; r++)
			kt_pool_run(pool, probe_task, &p);
		T_CHECK(atomic_load(&p.bad_nth) == 0, "bad ith/nth");
		for (int i = 0; i < nt; i++)
			T_CHECK(atomic_load(&p.calls[i]) == runs, "thread %d ran %d of %d", i,
				atomic_load(&p.calls[i]), runs);
		kt_pool_destroy(pool);
	}
	struct pool_probe p = { .want_nth = 1 };
	kt_pool_run(NULL, probe_task, &p);
	T_CHECK(atomic_load(&p.calls[0]) == 1 && kt_pool_threads(NULL) == 1, "NULL pool");
	struct kt_pool *def = kt_pool_create(0);
	T_CHECK(def && kt_pool_threads(def) >= 1, "default pool");
	kt_pool_destroy(def);
	kt_pool_destroy(NULL);
}

/* ---- matmul ------------------------------------------------------------ */

static void test_matmul(struct kt_pool **pools)
{
	const enum kt_type wtypes[] = { KT_F32, KT_F16, KT_BF16, KT_Q4_0, KT_Q4_1, KT_Q5_0,
					KT_Q5_1, KT_Q8_0, KT_Q4_K, KT_Q5_K, KT_Q6_K };
	const int nbs[] = { 1, 3, 17 };
	uint64_t s = 4242;

	for (size_t ti = 0; ti < sizeof(wtypes) / sizeof(wtypes[0]); ti++) {
		const enum kt_type t = wtypes[ti], dt = kt_dot_type(t);
		const int64_t blck = kt_block_elems(t);
		const int64_t cols = blck == 256 ? 512 : blck == 32 ? 160 : 200;
		const int64_t rows = ti % 2 ? 37 : 300;
		const size_t rb = kt_row_bytes(t, cols), rx = kt_row_bytes(dt, cols);
		float *wf = xmalloc((size_t)(rows * cols) * 4), *wd = xmalloc((size_t)(rows * cols) * 4);
		float *x = xmalloc((size_t)(17 * cols) * 4);
		float *y = xmalloc((size_t)(17 * rows) * 4), *yn = xmalloc((size_t)(17 * rows) * 4);
		float *yg = xmalloc((size_t)(17 * rows) * 4);
		uint8_t *wq = xmalloc(rb * (size_t)rows), *xq = xmalloc(rx ? rx : 1);
		double *Ax = xmalloc((size_t)(17 * cols) * 8);
		double *Aw = xmalloc((size_t)(rows * cols) * 8);

		gen(wf, rows * cols, 0, &s);
		gen(x, 17 * cols, 1, &s);
		for (int64_t r = 0; r < rows; r++) {
			kt_quantize_row(t, wf + r * cols, wq + (size_t)r * rb, cols);
			kt_dequant_row(t, wq + (size_t)r * rb, wd + r * cols, cols);
		}
		block_amax(x, 17 * cols, kt_block_elems(dt), Ax);
		block_amax(wd, rows * cols, blck, Aw);
		const struct kt_mat m = { t, rows, cols, wq, NULL };

		for (int ni = 0; ni < 3; ni++) {
			const int nb = nbs[ni];
			/* Float weights in batches go through the GEMM, which sums
			 * in another order: the same bits for every thread count,
			 * and within the float bound below. */
			const int gemm = has_avx2 && nb >= KT_GEMM_MIN_NB && dt == KT_F32;
			/* The naive loop: the same quantisation and dot functions,
			 * one at a time; kt_matmul must give identical floats. */
			for (int b = 0; b < nb; b++) {
				const void *xb = x + b * cols;
				if (dt != KT_F32) {
					kt_quantize_row(dt, x + b * cols, xq, cols);
					xb = xq;
				}
				for (int64_t r = 0; r < rows; r++)
					yn[b * rows + r] = kt_vec_dot(t, wq + (size_t)r * rb, xb, cols);
			}
			for (int pi = 0; pi < 4; pi++) {
				size_t wb = kt_matmul_work_bytes(&m, nb);
				void *work = wb ? xmalloc(wb) : NULL;
				for (int64_t i = 0; i < nb * rows; i++)
					y[i] = NAN;
				kt_matmul(pools[pi], &m, x, nb, y, work);
				if (gemm && pi == 0)
					memcpy(yg, y, (size_t)(nb * rows) * 4);
				const float *want = gemm ? yg : yn;
				int64_t bad = -1;
				for (int64_t i = 0; i < nb * rows && bad < 0; i++)
					if (memcmp(&y[i], &want[i], 4) != 0)
						bad = i;
				T_CHECK(bad < 0, "%s nb=%d threads=%d: y[%lld] = %g, %s %g",
					kt_type_name(t), nb, kt_pool_threads(pools[pi]), (long long)bad,
					bad >= 0 ? y[bad] : 0.0, gemm ? "one thread" : "naive",
					bad >= 0 ? want[bad] : 0.0);
				free(work);
			}
			/* And against float weights x float activations: the
			 * difference is the activation quantisation (rt_bound of
			 * the dot type, per element), rounding, and for q4_1/q5_1
			 * the f16 s term (see test_dot), |m| <= A of the row. */
			for (int b = 0; b < nb; b++)
				for (int64_t r = 0; r < rows; r++) {
					double ref = 0, tol = 0;
					for (int64_t c = 0; c < cols; c++) {
						const double wv = wd[r * cols + c];
						ref += wv * x[b * cols + c];
						const double ax = fabs(x[b * cols + c]);
						tol += fabs(wv) * (rt_bound(dt, Ax[b * cols + c], 0) +
								   (cols + 64) * U * 2 * ax);
						if (t == KT_Q4_1 || t == KT_Q5_1)
							tol += Aw[r * cols + c] * ax * 0x1p-10 * 1.01;
					}
					const float got = gemm ? yg[b * rows + r] : yn[b * rows + r];
					if (!(fabs(got - ref) <= tol + 1e-30)) {
						T_CHECK(0, "%s: y[%d][%lld] = %g, float ref %g, tol %g",
							kt_type_name(t), b, (long long)r, got, ref, tol);
						b = nb;
						break;
					}
				}
		}
		free(wf);
		free(wd);
		free(x);
		free(y);
		free(yn);
		free(yg);
		free(wq);
		free(xq);
		free(Ax);
		free(Aw);
	}
}

/* The float GEMM behind kt_matmul_ex (float weights, nb >= KT_GEMM_MIN_NB,
 * AVX2) and the epilogue of both paths: against float64 products with the
 * bias and GELU, on shapes that leave partial tiles, panels, units and k
 * chunks; the same bits for every thread count and wherever a token sits in
 * the batch. Below KT_GEMM_MIN_NB: bit for bit the dot, the bias added,
 * then kt_gelu. */
static void test_gemm(struct kt_pool **pools)
{
	static const struct {
		int64_t rows, cols;
		int nb;
	} shapes[] = {
		{ 300, 600, 40 }, { 37, 200, 17 }, { 16, 8, 6 }, { 70, 1000, 200 },
		{ 5, 24, 4 }, { 64, 384, 3 }, { 9, 40, 1 },
	};
	const enum kt_type types[] = { KT_F32, KT_F16, KT_BF16 };
	uint64_t s = 777;

	for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++)
	for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++)
	for (int mode = 0; mode < 3; mode++) {
		const int64_t rows = shapes[si].rows, cols = shapes[si].cols;
		const int nb = shapes[si].nb;
		const enum kt_type t = types[ti];
		const enum kt_act act = mode == 2 ? KT_ACT_GELU : KT_ACT_NONE;
		const size_t rb = kt_row_bytes(t, cols), ny = (size_t)(nb * rows);
		float *wf = xmalloc((size_t)(rows * cols) * 4), *wd = xmalloc((size_t)(rows * cols) * 4);
		float *x = xmalloc((size_t)(nb * cols) * 4), *bias = xmalloc((size_t)rows * 4);
		float *y0 = xmalloc(ny * 4), *y = xmalloc(ny * 4), *yn = xmalloc(ny * 4);
		uint8_t *wq = xmalloc(rb * (size_t)rows);
		gen(wf, rows * cols, 1, &s);
		gen(x, nb * cols, 0, &s);
		gen(bias, rows, 0, &s);
		for (int64_t r = 0; r < rows; r++) {
			kt_quantize_row(t, wf + r * cols, wq + (size_t)r * rb, cols);
			kt_dequant_row(t, wq + (size_t)r * rb, wd + r * cols, cols);
		}
		const struct kt_mat m = { t, rows, cols, wq, NULL };
		const float *b = mode ? bias : NULL;
		const int gemm = has_avx2 && nb >= KT_GEMM_MIN_NB;
		char what[96];
		snprintf(what, sizeof what, "%s %lldx%lld nb=%d %s", kt_type_name(t), (long long)rows,
			 (long long)cols, nb, mode == 0 ? "plain" : mode == 1 ? "bias" : "bias+gelu");

		for (int pi = 0; pi < 4; pi++) {
			float *out = pi ? y : y0;
			for (size_t i = 0; i < ny; i++)
				out[i] = NAN;
			kt_matmul_ex(pools[pi], &m, x, nb, out, NULL, b, act);
			if (pi)
				T_CHECK(!memcmp(y, y0, ny * 4), "%s: %d threads differ from one",
					what, kt_pool_threads(pools[pi]));
		}
		/* the same tokens later in a smaller batch */
		const int off = nb / 3;
		if (gemm == (has_avx2 && nb - off >= KT_GEMM_MIN_NB) && off > 0) {
			kt_matmul_ex(pools[2], &m, x + off * cols, nb - off, y, NULL, b, act);
			T_CHECK(!memcmp(y, y0 + off * rows, (size_t)((nb - off) * rows) * 4),
				"%s: tokens %d.. differ in a batch starting with them", what, off);
		}
		if (!gemm) {
			for (int i = 0; i < nb; i++) {
				for (int64_t r = 0; r < rows; r++) {
					yn[i * rows + r] = kt_vec_dot(t, wq + (size_t)r * rb, x + i * cols, cols);
					if (b)
						yn[i * rows + r] += b[r];
				}
				if (act == KT_ACT_GELU)
					kt_gelu(yn + i * rows, rows);
			}
			T_CHECK(!memcmp(y0, yn, ny * 4), "%s: not the dot products bit for bit", what);
		}
		/* float64: the product's rounding bound, through the bias
		 * (one more rounding) and GELU (slope below 1.13, its erf
		 * within 4e-7) */
		int bad = 0;
		for (int i = 0; i < nb && !bad; i++)
			for (int64_t r = 0; r < rows && !bad; r++) {
				double ref = 0, tol = 0;
				for (int64_t c = 0; c < cols; c++) {
					const double p = (double)wd[r * cols + c] * x[i * cols + c];
					ref += p;
					tol += fabs(p) * (cols + 64) * U * 2;
				}
				if (b) {
					ref += b[r];
					tol += fabs(ref) * U;
				}
				if (act == KT_ACT_GELU) {
					tol = 1.13 * tol + 1e-6 * (1 + fabs(ref));
					ref = 0.5 * ref * (1 + erf(ref / sqrt(2.0)));
				}
				const float got = y0[i * rows + r];
				if (!(fabs(got - ref) <= tol + 1e-30)) {
					T_CHECK(0, "%s: y[%d][%lld] = %.9g, float64 %.9g, tol %g", what, i,
						(long long)r, got, ref, tol);
					bad = 1;
				}
			}
		free(wf);
		free(wd);
		free(x);
		free(bias);
		free(y0);
		free(y);
		free(yn);
		free(wq);
	}
}

/* ---- packed rows (pack.c) --------------------------------------------- */

/* The packed copy of every packable type: it unpacks to the very rows it
 * came from (so no element moves to the wrong place), each ISA's packed
 * kernel gives each group's eight outputs as the row kernel's dot products
 * up to the order of float additions, and kt_matmul on the packed matrix
 * (rows past the last group read by rows, bit for bit) gives the same bits
 * for every thread count and batch position.
 *
 * Both compute the same integer dot per block; only the float sums of the
 * blocks' scaled results run in another order. Each result is a sum of
 * nblk terms t_i, so the two differ by at most 2 (nblk + 4) U sum |t_i| (the
 * 4 for the products of scales, rounded in another order); sum |t_i|
 * is bounded by the sum over elements of |w x| with w, x dequantised, plus
 * the q4_1/q4_K min terms, which the reference adds as |m| sum |x|. */
static void test_packed(struct kt_pool **pools)
{
	const enum kt_type types[] = { KT_Q4_0, KT_Q4_1, KT_Q5_0, KT_Q8_0, KT_Q4_K, KT_Q6_K };
	const enum kt_isa isas[] = { KT_ISA_AVX2, KT_ISA_AVX512VNNI };
	uint64_t s = 777;
	if (!has_avx2) {
		fprintf(stderr, "test_quant: no packed kernels without AVX2: skipping test_packed\n");
		return;
	}
	for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
		const enum kt_type t = types[ti], dt = kt_dot_type(t);
		const int64_t blck = kt_block_elems(t);
		const int64_t cols = blck == 256 ? 768 : 544, rows = 8 * 9 + 5;
		const int64_t nblk = cols / blck;
		const size_t rb = kt_row_bytes(t, cols), rx = kt_row_bytes(dt, cols);
		float *wf = xmalloc((size_t)(rows * cols) * 4), *wd = xmalloc((size_t)(rows * cols) * 4);
		float *x = xmalloc((size_t)(17 * cols) * 4), *xd = xmalloc((size_t)cols * 4);
		float *y = xmalloc((size_t)(17 * rows) * 4), *y0 = xmalloc((size_t)(17 * rows) * 4);
		float *yn = xmalloc((size_t)(17 * rows) * 4);
		uint8_t *wq = xmalloc(rb * (size_t)rows), *xq = xmalloc(rx * 17);
		uint8_t *back = xmalloc(rb * KT_PACK_ROWS);
		int32_t *xsum = xmalloc((size_t)(17 * nblk) * 4);
		double *mag = xmalloc((size_t)(17 * rows) * 8);

		gen(wf, rows * cols, ti % 3 == 1 ? 2 : (int)(ti % 2), &s);
		gen(x, 17 * cols, 1, &s);
		for (int64_t r = 0; r < rows; r++) {
			kt_quantize_row(t, wf + r * cols, wq + (size_t)r * rb, cols);
			kt_dequant_row(t, wq + (size_t)r * rb, wd + r * cols, cols);
		}
		struct kt_mat m = { t, rows, cols, wq, NULL };
		void *pk = aligned_alloc(64, (kt_mat_packed_bytes(&m) + 63) / 64 * 64);
		T_REQUIRE(pk, "out of memory");
		T_CHECK(kt_mat_pack(&m, pk) == 0 && m.packed == pk, "%s: kt_mat_pack", kt_type_name(t));
		if (!m.packed) {
			free(pk);
			continue;
		}
		/* the same bytes packed in two pieces, as the model's threads do */
		{
			const size_t pb = kt_mat_packed_bytes(&m);
			const int64_t ng = rows / KT_PACK_ROWS;
			uint8_t *pk2 = xmalloc(pb);
			const size_t cut = pb / (size_t)ng * (size_t)(ng / 3);
			int untouched = 1;
			memset(pk2, 0x5a, pb);
			kt_mat_pack_groups(&m, pk2, ng / 3, ng);
			for (size_t b = 0; b < cut; b++)
				untouched &= pk2[b] == 0x5a;
			T_CHECK(untouched && !memcmp(pk2 + cut, (const uint8_t *)pk + cut, pb - cut),
				"%s: kt_mat_pack_groups of groups %lld.. wrote elsewhere or differs",
				kt_type_name(t), (long long)(ng / 3));
			kt_mat_pack_groups(&m, pk2, 0, ng / 3);
			T_CHECK(!memcmp(pk2, pk, pb) && m.packed == pk,
				"%s: kt_mat_pack_groups in two pieces differs from kt_mat_pack",
				kt_type_name(t));
			free(pk2);
		}
		for (int64_t r0 = 0; r0 + KT_PACK_ROWS <= rows; r0 += KT_PACK_ROWS) {
			memset(back, 0xa5, rb * KT_PACK_ROWS);
			kt_mat_unpack_group(&m, r0, back);
			T_CHECK(!memcmp(back, wq + (size_t)r0 * rb, rb * KT_PACK_ROWS),
				"%s: rows %lld..%lld do not unpack to themselves", kt_type_name(t),
				(long long)r0, (long long)r0 + 7);
		}

		/* the row kernels' dots, and the bound of each */
		for (int b = 0; b < 17; b++) {
			uint8_t *xb = xq + (size_t)b * rx;
			kt_quantize_row(dt, x + b * cols, xb, cols);
			kt_dequant_row(dt, xb, xd, cols);
			for (int64_t i = 0; i < nblk && blck == 32; i++) {
				const struct { uint16_t d; int8_t qs[32]; } *q8 = (const void *)xb;
				int32_t sum = 0;
				for (int k = 0; k < 32; k++)
					sum += q8[i].qs[k];
				xsum[b * nblk + i] = sum;
			}
			for (int64_t r = 0; r < rows; r++) {
				double a = 0, ax = 0, aw = 0;
				for (int64_t c = 0; c < cols; c++) {
					a += fabs((double)wd[r * cols + c] * xd[c]);
					ax += fabs((double)xd[c]);
					aw = fmax(aw, fabs((double)wd[r * cols + c]));
				}
				/* the min terms, |m| <= the row's largest |w| plus a
				 * step: twice that, times sum |x|, and as much again
				 * in the scaled quants d q = w + m */
				mag[b * rows + r] = a + (has_min(t) ? 4 * aw * ax : 0);
				yn[b * rows + r] = kt_vec_dot(t, wq + (size_t)r * rb, xb, cols);
			}
		}
		for (size_t ii = 0; ii < 2; ii++) {
			const enum kt_isa isa = isas[ii];
			if (isa == KT_ISA_AVX512VNNI && !has_vnni)
				continue;
			const kt_pdot_fn f = kt_pdot(isa, t);
			T_CHECK(f != NULL, "%s: no packed kernel for %s", kt_type_name(t),
				kt_isa_name(isa));
			if (!f)
				continue;
			const size_t gb = kt_mat_packed_bytes(&m) / (size_t)(rows / KT_PACK_ROWS);
			for (int b = 0; b < 17; b++)
				for (int64_t g = 0; g < rows / KT_PACK_ROWS; g++) {
					float out[8];
					f((const uint8_t *)m.packed + (size_t)g * gb, xq + (size_t)b * rx,
					  xsum + b * nblk, cols, out);
					for (int r = 0; r < 8; r++) {
						const int64_t i = b * rows + g * 8 + r;
						const double tol = 2.0 * (double)(nblk + 4) * U * mag[i] + 1e-30;
						T_CHECK(fabs((double)out[r] - yn[i]) <= tol,
							"%s %s: token %d row %lld: packed %.9g, rows %.9g "
							"(bound %.3g)", kt_type_name(t), kt_isa_name(isa), b,
							(long long)(g * 8 + r), out[r], yn[i], tol);
					}
				}
		}
		/* kt_matmul: thread counts and batch positions, and the tail rows */
		const int nbs[] = { 1, 3, 17 };
		for (int ni = 0; ni < 3; ni++) {
			const int nb = nbs[ni];
			void *work = xmalloc(kt_matmul_work_bytes(&m, nb));
			for (int pi = 0; pi < 4; pi++) {
				float *out = pi ? y : y0;
				for (int64_t i = 0; i < nb * rows; i++)
					out[i] = NAN;
				kt_matmul(pools[pi], &m, x, nb, out, work);
				if (pi)
					T_CHECK(!memcmp(y, y0, (size_t)(nb * rows) * 4),
						"%s packed nb=%d: %d threads differ from one", kt_type_name(t),
						nb, kt_pool_threads(pools[pi]));
			}
			for (int b = 0; b < nb; b++) {
				for (int64_t r = 0; r < rows; r++) {
					const int64_t i = b * rows + r;
					const double tol = 2.0 * (double)(nblk + 4) * U * mag[i] + 1e-30;
					if (r >= rows / 8 * 8)
						T_CHECK(!memcmp(&y0[i], &yn[i], 4),
							"%s nb=%d: tail row %lld not the row dot", kt_type_name(t),
							nb, (long long)r);
					else
						T_CHECK(fabs((double)y0[i] - yn[i]) <= tol,
							"%s nb=%d: y[%d][%lld] = %.9g, rows %.9g", kt_type_name(t),
							nb, b, (long long)r, y0[i], yn[i]);
				}
			}
			free(work);
		}
		free(pk);
		free(wf), free(wd), free(x), free(xd), free(y), free(y0), free(yn);
		free(wq), free(xq), free(back), free(xsum), free(mag);
	}
}

/* kt_matmul_n: products of the same input through one pass give what
 * kt_matmul_ex gives for each alone, bit for bit, whatever the mix of
 * types (activation formats shared or not, packed or not, float weights
 * through the GEMM in batches) and thread count. */
static void test_matmul_n(struct kt_pool **pools)
{
	const enum kt_type types[] = { KT_Q4_0, KT_Q8_0, KT_Q4_K, KT_F16, KT_Q5_1 };
	const int64_t cols = 512, rows[] = { 40, 77, 24, 19, 33 };
	const int n = 5; /* more than KT_MATMUL_MAX: split into passes */
	uint64_t s = 99;
	struct kt_mat m[5];
	struct kt_mm mm[5];
	void *packed[5] = { NULL };
	float *x = xmalloc((size_t)(9 * cols) * 4), *y[5], *want[5];
	gen(x, 9 * cols, 0, &s);
	for (int i = 0; i < n; i++) {
		const size_t rb = kt_row_bytes(types[i], cols);
		float *wf = xmalloc((size_t)(rows[i] * cols) * 4);
		uint8_t *wq = xmalloc(rb * (size_t)rows[i]);
		gen(wf, rows[i] * cols, 1, &s);
		for (int64_t r = 0; r < rows[i]; r++)
			kt_quantize_row(types[i], wf + r * cols, wq + (size_t)r * rb, cols);
		free(wf);
		m[i] = (struct kt_mat){ types[i], rows[i], cols, wq, NULL };
		const size_t pb = kt_mat_packed_bytes(&m[i]);
		if (pb && (packed[i] = aligned_alloc(64, (pb + 63) / 64 * 64)))
			kt_mat_pack(&m[i], packed[i]);
		y[i] = xmalloc((size_t)(9 * rows[i]) * 4);
		want[i] = xmalloc((size_t)(9 * rows[i]) * 4);
	}
	const int nbs[] = { 1, 9 };
	for (int ni = 0; ni < 2; ni++) {
		const int nb = nbs[ni];
		size_t wb = 0;
		for (int i = 0; i < n; i++) {
			const size_t b = kt_matmul_work_bytes(&m[i], nb);
			wb = b > wb ? b : wb;
		}
		for (int i = 0; i < n; i++)
			mm[i] = (struct kt_mm){ &m[i], y[i], NULL, KT_ACT_NONE };
		const size_t wn = kt_matmul_n_work_bytes(mm, n, nb);
		void *work = xmalloc(wb > wn ? wb : wn);
		for (int i = 0; i < n; i++)
			kt_matmul(pools[1], &m[i], x, nb, want[i], work);
		for (int pi = 0; pi < 4; pi++) {
			for (int i = 0; i < n; i++)
				for (int64_t k = 0; k < nb * rows[i]; k++)
					y[i][k] = NAN;
			kt_matmul_n(pools[pi], mm, n, x, nb, work);
			for (int i = 0; i < n; i++)
				T_CHECK(!memcmp(y[i], want[i], (size_t)(nb * rows[i]) * 4),
					"kt_matmul_n nb=%d threads=%d: product %d (%s) differs from kt_matmul",
					nb, kt_pool_threads(pools[pi]), i, kt_type_name(types[i]));
		}
		free(work);
	}
	for (int i = 0; i < n; i++) {
		free((void *)m[i].data);
		free(packed[i]);
		free(y[i]);
		free(want[i]);
	}
	free(x);
}

int main(void)
{
	has_avx2 = kt_cpu_isa() != KT_ISA_SCALAR;
	has_vnni = kt_cpu_isa() == KT_ISA_AVX512VNNI;
	fprintf(stderr, "test_quant: kernels in use: %s\n", kt_isa_name(kt_cpu_isa()));
	if (!has_avx2)
		fprintf(stderr, "test_quant: AVX2 not in use (%s): skipping the AVX2 vs scalar "
				"comparisons\n",
			getenv("SEEKFS_ISA") ? "SEEKFS_ISA set" : "CPU lacks AVX2/FMA/F16C");

	test_table();
	test_half();
	test_known_blocks();
	test_random();
	test_bsums_used();
	test_pool();

	struct kt_pool *pools[4] = { NULL, kt_pool_create(1), kt_pool_create(2), kt_pool_create(3) };
	T_REQUIRE(pools[1] && pools[2] && pools[3], "kt_pool_create");
	test_matmul(pools);
	test_gemm(pools);
	test_packed(pools);
	test_matmul_n(pools);
	for (int i = 1; i < 4; i++)
		kt_pool_destroy(pools[i]);

	return t_done("test_quant");
}
