/*
 * AVX2 + FMA + F16C versions of the hot block kernels: dot products of
 * every weight type against its activation type, quantisation of
 * activations (q8_0, q8_1, q8_K), and dequantisation of the common types.
 *
 * This file is compiled with -mavx2 -mfma -mf16c; nothing in it may run
 * before kt_cpu_has_avx2() said yes, which is why its only entry point is
 * kt_avx2_fill(), called by quant.c under that check. quant_vnni.c compiles
 * it a second time with KT_VNNI defined and AVX-512 VNNI enabled (entry
 * point kt_vnni_fill): the u8 x s8 dot of the legacy quants then takes one
 * vpdpbusd instead of pmaddubsw + pmaddwd, with the same integer results.
 *
 * The integer dots follow ggml's scheme: unpack the weight quants to bytes,
 * multiply with the int8 activations by pmaddubsw (unsigned x signed ->
 * pairs of int16), widen by pmaddwd (against ones or the sub-block scales),
 * then one float FMA per block with the product of the two block scales.
 * Offsets (q - 8, q - 16, q - 32) are applied as q.y - k*sum(y) so the
 * unsigned operand stays unsigned; q8_0 weights, signed like the
 * activations, go through ggml's sign trick (|w| times y with w's sign).
 * No int16 pair sum can saturate: the largest is 2 * 128 * 127 = 32512
 * (q8_0 with a -128 weight; activations never hold -128).
 *
 * Quantisation gives the same bytes as the scalar code (same formulas,
 * the same round-to-nearest-even); dots differ from it only in the order
 * of float additions; dequantisation is exact except where the compiler
 * fuses x*d - m into one FMA (one rounding fewer).
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/quant.h"

/* ---- helpers ----------------------------------------------------------- */

static inline float hsum_ps(__m256 v)
{
	__m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	r = _mm_add_ps(r, _mm_movehl_ps(r, r));
	r = _mm_add_ss(r, _mm_movehdup_ps(r));
	return _mm_cvtss_f32(r);
}

static inline float hsum_ps128(__m128 r)
{
	r = _mm_add_ps(r, _mm_movehl_ps(r, r));
	r = _mm_add_ss(r, _mm_movehdup_ps(r));
	return _mm_cvtss_f32(r);
}

static inline int hsum_epi32(__m256i v)
{
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
	return _mm_cvtsi128_si32(s);
}

static inline float h2f(uint16_t h)
{
	return _cvtsh_ss(h);
}

/* 16 bytes of nibbles -> 32 bytes: the low nibbles, then the high ones
 * (the element order of every 32-element nibble block). */
static inline __m256i nibbles32(const uint8_t *p)
{
	/* both lanes get the 16 bytes; the high lane shifted right by 4 (bits
	 * crossing into a neighbouring byte are masked off) */
	const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
	const __m256i t = _mm256_srlv_epi64(v, _mm256_set_epi64x(4, 4, 0, 0));
	return _mm256_and_si256(t, _mm256_set1_epi8(0x0f));
}

/* 0xff in byte j where bit j of the little-endian u32 at p is set. */
static inline __m256i bits32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
					       0x0101010101010101, 0);
	__m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)v), shuf);
	/* every bit set except bit (j % 8): all-ones iff bit j was set */
	b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
	return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}

static inline __m256i widen_i16(__m256i p)
{
	return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* Sums of four u8 x s8 products per int32 lane. The int16 pairs of
 * pmaddubsw cannot saturate for the callers' ranges (|u| <= 128 with
 * |s| <= 127, or |u| <= 31), so both versions give the same integers. */
static inline __m256i mul_sum_u8s8(__m256i u, __m256i s)
{
#ifdef KT_VNNI
	return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
	return widen_i16(_mm256_maddubs_epi16(u, s));
#endif
}

/* 16 int8 -> 16 floats times d. */
static inline void store_i8x16_scaled(float *dst, __m128i q, __m256 d)
{
	_mm256_storeu_ps(dst, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
	_mm256_storeu_ps(dst + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(
		_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8))), d));
}

/* 32 int8 -> 32 floats times d. */
static inline void store_i8_scaled(float *dst, __m256i q, __m256 d)
{
	store_i8x16_scaled(dst, _mm256_castsi256_si128(q), d);
	store_i8x16_scaled(dst + 16, _mm256_extracti128_si256(q, 1), d);
}

/* 32 uint8 -> 32 floats d*q - m. */
static inline void store_u8_affine(float *dst, __m256i q, __m256 d, __m256 m)
{
	const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
	const __m128i parts[4] = { lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8) };
	for (int k = 0; k < 4; k++) {
		const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[k]));
		_mm256_storeu_ps(dst + 8 * k, _mm256_sub_ps(_mm256_mul_ps(d, f), m));
	}
}

/* Four vectors of 8 int32 (each in int8 range) -> 32 int8 in order. */
static inline __m256i pack_i32_to_i8(__m256i a, __m256i b, __m256i c, __m256i d)
{
	a = _mm256_packs_epi32(a, b);
	c = _mm256_packs_epi32(c, d);
	a = _mm256_packs_epi16(a, c);
	/* the packs work per 128-bit lane; put the 4-byte groups back in order */
	return _mm256_permutevar8x32_epi32(a, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline float absmax_ps(const float *x, int n)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 m = _mm256_setzero_ps();
	for (int j = 0; j < n; j += 8)
		m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
	__m128 r = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
	r = _mm_max_ps(r, _mm_movehl_ps(r, r));
	r = _mm_max_ss(r, _mm_movehdup_ps(r));
	return _mm_cvtss_f32(r);
}

/* ---- float types ------------------------------------------------------- */

static float dot_f32(const void *vw, const void *vx, int64_t n)
{
	const float *w = vw, *x = vx;
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	int64_t i = 0;
	for (; i + 32 <= n; i += 32) {
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
		a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
		a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
		a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
	}
	for (; i + 8 <= n; i += 8)
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
	float s = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
	for (; i < n; i++)
		s += w[i] * x[i];
	return s;
}

static inline __m256 load_f16x8(const uint16_t *p)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static float dot_f16(const void *vw, const void *vx, int64_t n)
{
	const uint16_t *w = vw;
	const float *x = vx;
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	int64_t i = 0;
	for (; i + 32 <= n; i += 32) {
		a0 = _mm256_fmadd_ps(load_f16x8(w + i), _mm256_loadu_ps(x + i), a0);
		a1 = _mm256_fmadd_ps(load_f16x8(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
		a2 = _mm256_fmadd_ps(load_f16x8(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
		a3 = _mm256_fmadd_ps(load_f16x8(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
	}
	for (; i + 8 <= n; i += 8)
		a0 = _mm256_fmadd_ps(load_f16x8(w + i), _mm256_loadu_ps(x + i), a0);
	float s = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
	for (; i < n; i++)
		s += h2f(w[i]) * x[i];
	return s;
}

static void dequant_f16(const void *src, float *dst, int64_t n)
{
	const uint16_t *h = src;
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(dst + i, load_f16x8(h + i));
	for (; i < n; i++)
		dst[i] = h2f(h[i]);
}

static void quant_f16(const float *src, void *dst, int64_t n)
{
	uint16_t *h = dst;
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm_storeu_si128((__m128i *)(h + i),
				 _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
	for (; i < n; i++)
		h[i] = kt_fp32_to_fp16(src[i]);
}

static inline __m256 load_bf16x8(const uint16_t *p)
{
	const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
	return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

static float dot_bf16(const void *vw, const void *vx, int64_t n)
{
	const uint16_t *w = vw;
	const float *x = vx;
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	int64_t i = 0;
	for (; i + 32 <= n; i += 32) {
		a0 = _mm256_fmadd_ps(load_bf16x8(w + i), _mm256_loadu_ps(x + i), a0);
		a1 = _mm256_fmadd_ps(load_bf16x8(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
		a2 = _mm256_fmadd_ps(load_bf16x8(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
		a3 = _mm256_fmadd_ps(load_bf16x8(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
	}
	for (; i + 8 <= n; i += 8)
		a0 = _mm256_fmadd_ps(load_bf16x8(w + i), _mm256_loadu_ps(x + i), a0);
	float s = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
	for (; i < n; i++)
		s += kt_bf16_to_fp32(w[i]) * x[i];
	return s;
}

static void dequant_bf16(const void *src, float *dst, int64_t n)
{
	const uint16_t *h = src;
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(dst + i, load_bf16x8(h + i));
	for (; i < n; i++)
		dst[i] = kt_bf16_to_fp32(h[i]);
}

/* 8 floats -> 8 bf16 in the low 16 bits of each int32, as kt_fp32_to_bf16. */
static inline __m256i bf16x8(__m256 f)
{
	const __m256i u = _mm256_castps_si256(f);
	const __m256i is_nan = _mm256_cmpgt_epi32(
		_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
	const __m256i hi = _mm256_srli_epi32(u, 16);
	const __m256i bias = _mm256_add_epi32(_mm256_set1_epi32(0x7fff),
					      _mm256_and_si256(hi, _mm256_set1_epi32(1)));
	const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
	const __m256i nan = _mm256_or_si256(hi, _mm256_set1_epi32(64));
	return _mm256_blendv_epi8(rounded, nan, is_nan);
}

static void quant_bf16(const float *src, void *dst, int64_t n)
{
	uint16_t *h = dst;
	int64_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m256i p = _mm256_packus_epi32(bf16x8(_mm256_loadu_ps(src + i)),
						bf16x8(_mm256_loadu_ps(src + i + 8)));
		p = _mm256_permute4x64_epi64(p, _MM_SHUFFLE(3, 1, 2, 0));
		_mm256_storeu_si256((__m256i *)(h + i), p);
	}
	for (; i < n; i++)
		h[i] = kt_fp32_to_bf16(src[i]);
}

/* ---- legacy quants ----------------------------------------------------- */

static inline __m256 q4_0_block(const struct kt_block_q4_0 *w,
				const struct kt_block_q8_0 *x, __m256 acc)
{
	const __m256i y = _mm256_loadu_si256((const __m256i *)x->qs);
	const __m256i p = _mm256_sub_epi32(mul_sum_u8s8(nibbles32(w->qs), y),
					   mul_sum_u8s8(_mm256_set1_epi8(8), y));
	const __m256 d = _mm256_set1_ps(h2f(w->d) * h2f(x->d));
	return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
}

static float dot_q4_0(const void *vw, const void *vx, int64_t n)
{
	const struct kt_block_q4_0 *w = vw;
	const struct kt_block_q8_0 *x = vx;
	const int64_t nb = n / KT_QK;
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	int64_t i = 0;
	for (; i + 1 < nb; i += 2) {
		acc0 = q4_0_block(&w[i], &x[i], acc0);
		acc1 = q4_0_block(&w[i + 1], &x[i + 1], acc1);
	}
	if (i < nb)
		acc0 = q4_0_block(&w[i], &x[i], acc0);
	return hsum_ps(_mm256_add_ps(acc0, acc1));
}

static void dequant_q4_0(const void *src, float *dst, int64_t n)
{
	const struct kt_block_q4_0 *b = src;
	for (int64_t i = 0; i < n / KT_QK; i++, dst += KT_QK) {
		const __m256i q = _mm256_sub_epi8(nibbles32(b[i].qs), _mm256_set1_epi8(8));
		store_i8_scaled(dst, q, _mm256_set1_ps(h2f(b[i].d)));
	}
}

/* The scales of a q4_1 (or q5_1) block and its q8_1 partner, converted
 * together: {w.d * x.d, w.m * x.s} in lanes 0 and 1 (all three structs
 * start with two halves, so one 32-bit load each). Keeping m * s in a
 * vector accumulator per chain, rather than one scalar sum, keeps the loop
 * from waiting on a serial chain of additions. */
static inline __m128 q4_1_scales(const void *w, const void *x)
{
	uint32_t wb, xb;
	memcpy(&wb, w, 4);
	memcpy(&xb, x, 4);
	const __m128 f = _mm_cvtph_ps(_mm_set_epi32(0, 0, (int)xb, (int)wb)); /* wd wm xd xs */
	return _mm_mul_ps(f, _mm_movehl_ps(f, f));
}

static inline __m256 q4_1_block(const struct kt_block_q4_1 *w,
				const struct kt_block_q8_1 *x, __m256 acc, __m128 *summ)
{
	const __m256i y = _mm256_loadu_si256((const __m256i *)x->qs);
	const __m256i p = mul_sum_u8s8(nibbles32(w->qs), y);
	const __m128 sc = q4_1_scales(w, x);
	*summ = _mm_add_ps(*summ, sc); /* lane 1 collects m * s */
	return _mm256_fmadd_ps(_mm256_broadcastss_ps(sc), _mm256_cvtepi32_ps(p), acc);
}

static float dot_q4_1(const void *vw, const void *vx, int64_t n)
{
	const struct kt_block_q4_1 *w = vw;
	const struct kt_block_q8_1 *x = vx;
	const int64_t nb = n / KT_QK;
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	__m128 summ0 = _mm_setzero_ps(), summ1 = _mm_setzero_ps();
	int64_t i = 0;
	for (; i + 1 < nb; i += 2) {
		acc0 = q4_1_block(&w[i], &x[i], acc0, &summ0);
		acc1 = q4_1_block(&w[i + 1], &x[i + 1], acc1, &summ1);
	}
	if (i < nb)
		acc0 = q4_1_block(&w[i], &x[i], acc0, &summ0);
	const __m128 summ = _mm_add_ps(summ0, summ1);
	return hsum_ps(_mm256_add_ps(acc0, acc1)) + _mm_cvtss_f32(_mm_shuffle_ps(summ, summ, 1));
}

static inline __m256 q5_0_block(const struct kt_block_q5_0 *w,
				const struct kt_block_q8_0 *x, __m256 acc)
{
	const __m256i y = _mm256_loadu_si256((const __m256i *)x->qs);
	const __m256i q = _mm256_or_si256(nibbles32(w->qs),
		_mm256_and_si256(bits32(w->qh), _mm256_set1_epi8(0x10)));
	const __m256i p = _mm256_sub_epi32(mul_sum_u8s8(q, y),
					   mul_sum_u8s8(_mm256_set1_epi8(16), y));
	const __m256 d = _mm256_set1_ps(h2f(w->d) * h2f(x->d));
	return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
}

static float dot_q5_0(const void *vw, const void *vx, int64_t n)
{
	const struct kt_block_q5_0 *w = vw;
	const struct kt_block_q8_0 *x = vx;
	const int64_t nb = n / KT_QK;
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	int64_t i = 0;
	for (; i + 1 < nb; i += 2) {
		acc0 = q5_0_block(&w[i], &x[i], acc0);
		acc1 = q5_0_block(&w[i + 1], &x[i + 1], acc1);
	}
	if (i < nb)
		acc0 = q5_0_block(&w[i], &x[i], acc0);
	return hsum_ps(_mm256_add_ps(acc0, acc1));
}

static inline __m256 q5_1_block(const struct kt_block_q5_1 *w,
				const struct kt_block_q8_1 *x, __m256 acc, __m128 *summ)
{
	const __m256i y = _mm256_loadu_si256((const __m256i *)x->qs);
	const __m256i q = _mm256_or_si256(nibbles32(w->qs),
		_mm256_and_si256(bits32(w->qh), _mm256_set1_epi8(0x10)));
	const __m256i p = mul_sum_u8s8(q, y);
	const __m128 sc = q4_1_scales(w, x); /* q5_1 also starts with d, m */
	*summ = _mm_add_ps(*summ, sc);
	return _mm256_fmadd_ps(_mm256_broadcastss_ps(sc), _mm256_cvtepi32_ps(p), acc);
}

static float dot_q5_1(const void *vw, const void *vx, int64_t n)
{
	const struct kt_block_q5_1 *w = vw;
	const struct kt_block_q8_1 *x = vx;
	const int64_t nb = n / KT_QK;
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	__m128 summ0 = _mm_setzero_ps(), summ1 = _mm_setzero_ps();
	int64_t i = 0;
	for (; i + 1 < nb; i += 2) {
		acc0 = q5_1_block(&w[i], &x[i], acc0, &summ0);
		acc1 = q5_1_block(&w[i + 1], &x[i + 1], acc1, &summ1);
	}
	if (i < nb)
		acc0 = q5_1_block(&w[i], &x[i], acc0, &summ0);
	const __m128 summ = _mm_add_ps(summ0, summ1);
	return hsum_ps(_mm256_add_ps(acc0, acc1)) + _mm_cvtss_f32(_mm_shuffle_ps(summ, summ, 1));
}

static inline __m256 q8_0_block(const struct kt_block_q8_0 *w,
				const struct kt_block_q8_0 *x, __m256 acc)
{
	const __m256i a = _mm256_loadu_si256((const __m256i *)w->qs);
	const __m256i y = _mm256_loadu_si256((const __m256i *)x->qs);
	/* |a| * (y with a's sign): pmaddubsw wants its first operand unsigned.
	 * |a| = 128 reads correctly as unsigned; y is never -128 (the
	 * quantiser stays within +-127). */
	const __m256i p = mul_sum_u8s8(_mm256_sign_epi8(a, a), _mm256_sign_epi8(y, a));
	const __m256 d = _mm256_set1_ps(h2f(w->d) * h2f(x->d));
	return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
}

static float dot_q8_0(const void *vw, const void *vx, int64_t n)
{
	const struct kt_block_q8_0 *w = vw;
	const struct kt_block_q8_0 *x = vx;
	const int64_t nb = n / KT_QK;
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
	int64_t i = 0;
	for (; i + 1 < nb; i += 2) {
		acc0 = q8_0_block(&w[i], &x[i], acc0);
		acc1 = q8_0_block(&w[i + 1], &x[i + 1], acc1);
	}
	if (i < nb)
		acc0 = q8_0_block(&w[i], &x[i], acc0);
	return hsum_ps(_mm256_add_ps(acc0, acc1));
}

static void dequant_q8_0(const void *src, float *dst, int64_t n)
{
	const struct kt_block_q8_0 *b = src;
	for (int64_t i = 0; i < n / KT_QK; i++, dst += KT_QK)
		store_i8_scaled(dst, _mm256_loadu_si256((const __m256i *)b[i].qs),
				_mm256_set1_ps(h2f(b[i].d)));
}

/* Quantise 32 floats as q8_0/q8_1 (d = amax/127, q = nearest even of
 * x/d); returns the sum of the quants, *d_out the unrounded d. */
static inline int q8_block(const float *x, int8_t *qs, uint16_t *dh, float *d_out)
{
	const float amax = absmax_ps(x, KT_QK);
	const float d = amax / 127;
	const float id = d ? 1.0f / d : 0.0f;
	const __m256 mul = _mm256_set1_ps(id);
	const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 0), mul));
	const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), mul));
	const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), mul));
	const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), mul));
	_mm256_storeu_si256((__m256i *)qs, pack_i32_to_i8(i0, i1, i2, i3));
	*dh = kt_fp32_to_fp16(d);
	*d_out = d;
	return hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
}

static void quant_q8_0(const float *src, void *dst, int64_t n)
{
	struct kt_block_q8_0 *b = dst;
	float d;
	for (int64_t i = 0; i < n / KT_QK; i++, src += KT_QK)
		q8_block(src, b[i].qs, &b[i].d, &d);
}

static void quant_q8_1(const float *src, void *dst, int64_t n)
{
	struct kt_block_q8_1 *b = dst;
	float d;
	for (int64_t i = 0; i < n / KT_QK; i++, src += KT_QK) {
		const int sum = q8_block(src, b[i].qs, &b[i].d, &d);
		b[i].s = kt_fp32_to_fp16((float)sum * d);
	}
}

/* ---- K-quants ---------------------------------------------------------- */

/* The 8 scales (bytes 0-7) and 8 mins (bytes 8-15) of a q4_K/q5_K block,
 * unpacked from their 12-byte 6-bit packing (see kt_scale_min_k4). */
static inline __m128i k4_scales_mins(const uint8_t *packed)
{
	uint32_t u[4];
	memcpy(u, packed, 12);
	const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
	u[3] = ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4);
	const uint32_t mins03 = u[1] & m6;
	u[1] = (u[2] & m4) | (((u[0] >> 6) & m2) << 4);
	u[2] = mins03;
	u[0] &= m6;
	return _mm_set_epi32((int)u[3], (int)u[2], (int)u[1], (int)u[0]);
}

/* pshufb control broadcasting int16 element k of each 128-bit lane. */
static inline __m256i bcast16(int k)
{
	return _mm256_set1_epi16((short)((2 * k) | (2 * k + 1) << 8));
}

/* dmin * sum_j min_j * (sum of the activations of sub-block j), 4 lanes. */
static inline __m128 k4_min_term(__m256i mins_scales16, const int16_t *bsums,
				 float dmin, __m128 acc)
{
	const __m256i bs = _mm256_loadu_si256((const __m256i *)bsums);
	const __m128i bs32 = _mm_hadd_epi16(_mm256_castsi256_si128(bs),
					    _mm256_extracti128_si256(bs, 1));
	const __m128i prod = _mm_madd_epi16(_mm256_extracti128_si256(mins_scales16, 1), bs32);
	return _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc);
}

static float dot_q4_K(const void *vw, const void *vx, int64_t n)
{
	const struct kt_block_q4_K *w = vw;
	const struct kt_block_q8_K *x = vx;
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	__m256 acc = _mm256_setzero_ps();
	__m128 accm = _mm_setzero_ps();

	for (int64_t i = 0; i < n / KT_QK_K; i++) {
		const float d = x[i].d * h2f(w[i].d);
		const float dmin = -x[i].d * h2f(w[i].dmin);
		const __m256i ms = _mm256_cvtepu8_epi16(k4_scales_mins(w[i].scales));
		accm = k4_min_term(ms, x[i].bsums, dmin, accm);
		const __m256i sc = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
		const uint8_t *q = w[i].qs;
		const int8_t *y = x[i].qs;
		__m256i sumi = _mm256_setzero_si256();
		for (int g = 0; g < 4; g++) {
			const __m256i bits = _mm256_loadu_si256((const __m256i *)(q + 32 * g));
			const __m256i lo = _mm256_and_si256(bits, m4);
			const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
			__m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(y + 64 * g)));
			__m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(y + 64 * g + 32)));
			pl = _mm256_madd_epi16(pl, _mm256_shuffle_epi8(sc, bcast16(2 * g)));
			ph = _mm256_madd_epi16(ph, _mm256_shuffle_epi8(sc, bcast16(2 * g + 1)));
			sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
	}
	return hsum_ps(acc) + hsum_ps128(accm);
}

static void dequant_q4_K(const void *src, float *dst, int64_t n)
{
	const struct kt_block_q4_K *b = src;
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	for (int64_t i = 0; i < n / KT_QK_K; i++) {
		const float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
		for (int g = 0; g < 4; g++, dst += 64) {
			uint8_t sc, m;
			const __m256i bits = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * g));
			kt_scale_min_k4(2 * g, b[i].scales, &sc, &m);
			store_u8_affine(dst, _mm256_and_si256(bits, m4), _mm256_set1_ps(d * sc),
					_mm256_set1_ps(dmin * m));
			kt_scale_min_k4(2 * g + 1, b[i].scales, &sc, &m);
			store_u8_affine(dst + 32, _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4),
					_mm256_set1_ps(d * sc), _mm256_set1_ps(dmin * m));
		}
	}
}

static float dot_q5_K(const void *vw, const void *vx, int64_t n)
{
	const struct kt_block_q5_K *w = vw;
	const struct kt_block_q8_K *x = vx;
	const __m256i m4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
	__m256 acc = _mm256_setzero_ps();
	__m128 accm = _mm_setzero_ps();

	for (int64_t i = 0; i < n / KT_QK_K; i++) {
		const float d = x[i].d * h2f(w[i].d);
		const float dmin = -x[i].d * h2f(w[i].dmin);
		const __m256i ms = _mm256_cvtepu8_epi16(k4_scales_mins(w[i].scales));
		accm = k4_min_term(ms, x[i].bsums, dmin, accm);
		const __m256i sc = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
		const uint8_t *q = w[i].qs;
		const int8_t *y = x[i].qs;
		/* bit 2g of qh[l] is bit 4 of element 64g + l, bit 2g+1 of
		 * element 64g + 32 + l; hb is shifted down by 2 per group. The
		 * 16-bit shifts never move a kept bit across a byte: only bit 0
		 * of each byte is kept, and the total shift stays below 8. */
		__m256i hb = _mm256_loadu_si256((const __m256i *)w[i].qh);
		__m256i sumi = _mm256_setzero_si256();
		for (int g = 0; g < 4; g++) {
			const __m256i bits = _mm256_loadu_si256((const __m256i *)(q + 32 * g));
			const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(hb, one), 4);
			const __m256i h1 = _mm256_slli_epi16(
				_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4);
			hb = _mm256_srli_epi16(hb, 2);
			const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4), h0);
			const __m256i hi = _mm256_or_si256(
				_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), h1);
			__m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(y + 64 * g)));
			__m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(y + 64 * g + 32)));
			pl = _mm256_madd_epi16(pl, _mm256_shuffle_epi8(sc, bcast16(2 * g)));
			ph = _mm256_madd_epi16(ph, _mm256_shuffle_epi8(sc, bcast16(2 * g + 1)));
			sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
	}
	return hsum_ps(acc) + hsum_ps128(accm);
}

static float dot_q6_K(const void *vw, const void *vx, int64_t n)
{
	const struct kt_block_q6_K *w = vw;
	const struct kt_block_q8_K *x = vx;
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	const __m256i m2 = _mm256_set1_epi8(0x03), m2_2 = _mm256_set1_epi8(0x0c);
	const __m256i m2_4 = _mm256_set1_epi8(0x30), m2_6 = _mm256_set1_epi8((char)0xc0);
	__m256 acc = _mm256_setzero_ps();

	for (int64_t i = 0; i < n / KT_QK_K; i++) {
		const float d = x[i].d * h2f(w[i].d);
		const __m128i sc8 = _mm_loadu_si128((const __m128i *)w[i].scales);
		/* The quants are stored as q + 32; sum sc*(q+32)*y and take off
		 * 32 * sum_j sc_j * bsums_j. */
		const __m256i corr = _mm256_madd_epi16(
			_mm256_cvtepi8_epi16(sc8), _mm256_loadu_si256((const __m256i *)x[i].bsums));
		__m256i sumi = _mm256_setzero_si256();
		const uint8_t *ql = w[i].ql, *qh = w[i].qh;
		const int8_t *y = x[i].qs;
		for (int half = 0; half < 2; half++, ql += 64, qh += 32, y += 128) {
			const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
			const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
			const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
			const __m256i q0 = _mm256_or_si256(_mm256_and_si256(l0, m4),
				_mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
			const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l1, m4),
				_mm256_slli_epi16(_mm256_and_si256(h, m2_2), 2));
			const __m256i q2 = _mm256_or_si256(
				_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, m2_4));
			const __m256i q3 = _mm256_or_si256(
				_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
				_mm256_srli_epi16(_mm256_and_si256(h, m2_6), 2));
			const __m256i qv[4] = { q0, q1, q2, q3 };
			for (int k = 0; k < 4; k++) {
				/* elements 32k..32k+31 of this half: scales 8*half + 2k
				 * (first 16) and 8*half + 2k + 1 (last 16) */
				const int s = 8 * half + 2 * k;
				const __m128i ctl = _mm_set_epi64x(0x0101010101010101LL * (s + 1),
								   0x0101010101010101LL * s);
				const __m256i scv = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, ctl));
				const __m256i p = _mm256_maddubs_epi16(
					qv[k], _mm256_loadu_si256((const __m256i *)(y + 32 * k)));
				sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scv));
			}
		}
		sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(corr, 5));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
	}
	return hsum_ps(acc);
}

static void dequant_q6_K(const void *src, float *dst, int64_t n)
{
	const struct kt_block_q6_K *b = src;
	const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x03);
	const __m256i off = _mm256_set1_epi8(32);
	for (int64_t i = 0; i < n / KT_QK_K; i++) {
		const float d = h2f(b[i].d);
		const uint8_t *ql = b[i].ql, *qh = b[i].qh;
		for (int half = 0; half < 2; half++, ql += 64, qh += 32) {
			const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
			const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
			const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
			for (int k = 0; k < 4; k++, dst += 32) {
				const __m256i lo = (k & 1) ? l1 : l0;
				const __m256i nib = (k & 2) ? _mm256_and_si256(_mm256_srli_epi16(lo, 4), m4)
							    : _mm256_and_si256(lo, m4);
				/* bits 2k..2k+1 of qh, moved to bits 4..5 */
				const __m256i hb = _mm256_and_si256(
					_mm256_srli_epi16(h, 2 * k), m2);
				const __m256i q = _mm256_sub_epi8(
					_mm256_or_si256(nib, _mm256_slli_epi16(hb, 4)), off);
				/* the two halves of the 32 have their own scales */
				const int s = 8 * half + 2 * k;
				store_i8x16_scaled(dst, _mm256_castsi256_si128(q),
						   _mm256_set1_ps(d * b[i].scales[s]));
				store_i8x16_scaled(dst + 16, _mm256_extracti128_si256(q, 1),
						   _mm256_set1_ps(d * b[i].scales[s + 1]));
			}
		}
	}
}

/* q8_K: iscale = 127/amax, q = nearest even of x*iscale, d = 1/iscale,
 * bsums over each 16; the same bytes as the scalar quant_q8_K. */
static void quant_q8_K(const float *src, void *dst, int64_t n)
{
	struct kt_block_q8_K *b = dst;
	for (int64_t i = 0; i < n / KT_QK_K; i++, src += KT_QK_K) {
		const float amax = absmax_ps(src, KT_QK_K);
		if (amax == 0) {
			memset(&b[i], 0, sizeof(b[i]));
			continue;
		}
		const float iscale = 127.f / amax;
		const __m256 mul = _mm256_set1_ps(iscale);
		__m128i bs[4];
		for (int c = 0; c < 4; c++) { /* 64 elements = 4 bsums */
			const float *x = src + 64 * c;
			__m256i v[8];
			for (int k = 0; k < 8; k++)
				v[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), mul));
			_mm256_storeu_si256((__m256i *)(b[i].qs + 64 * c),
					    pack_i32_to_i8(v[0], v[1], v[2], v[3]));
			_mm256_storeu_si256((__m256i *)(b[i].qs + 64 * c + 32),
					    pack_i32_to_i8(v[4], v[5], v[6], v[7]));
			const __m256i g0 = _mm256_add_epi32(v[0], v[1]), g1 = _mm256_add_epi32(v[2], v[3]);
			const __m256i g2 = _mm256_add_epi32(v[4], v[5]), g3 = _mm256_add_epi32(v[6], v[7]);
			const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(g0, g1),
							    _mm256_hadd_epi32(g2, g3));
			bs[c] = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
		}
		_mm_storeu_si128((__m128i *)b[i].bsums, _mm_packs_epi32(bs[0], bs[1]));
		_mm_storeu_si128((__m128i *)(b[i].bsums + 8), _mm_packs_epi32(bs[2], bs[3]));
		b[i].d = 1 / iscale;
	}
}

/* ---- the table --------------------------------------------------------- */

#ifdef KT_VNNI
void kt_vnni_fill(enum kt_type t, struct kt_type_fns *f)
#else
void kt_avx2_fill(enum kt_type t, struct kt_type_fns *f)
#endif
{
	switch (t) {
	case KT_F32:
		f->dot = dot_f32;
		break;
	case KT_F16:
		f->dequant = dequant_f16;
		f->quant = quant_f16;
		f->dot = dot_f16;
		break;
	case KT_BF16:
		f->dequant = dequant_bf16;
		f->quant = quant_bf16;
		f->dot = dot_bf16;
		break;
	case KT_Q4_0:
		f->dequant = dequant_q4_0;
		f->dot = dot_q4_0;
		break;
	case KT_Q4_1:
		f->dot = dot_q4_1;
		break;
	case KT_Q5_0:
		f->dot = dot_q5_0;
		break;
	case KT_Q5_1:
		f->dot = dot_q5_1;
		break;
	case KT_Q8_0:
		f->dequant = dequant_q8_0;
		f->quant = quant_q8_0;
		f->dot = dot_q8_0;
		break;
	case KT_Q8_1:
		f->quant = quant_q8_1;
		break;
	case KT_Q4_K:
		f->dequant = dequant_q4_K;
		f->dot = dot_q4_K;
		break;
	case KT_Q5_K:
		f->dot = dot_q5_K;
		break;
	case KT_Q6_K:
		f->dequant = dequant_q6_K;
		f->dot = dot_q6_K;
		break;
	case KT_Q8_K:
		f->quant = quant_q8_K;
		break;
	default:
		break;
	}
}
