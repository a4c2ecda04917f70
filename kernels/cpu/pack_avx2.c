/*
 * Packed kernels (pack.c): eight outputs of a group of interleaved rows
 * per call, AVX2 + FMA + F16C. pack_vnni.c compiles this file again with
 * KT_VNNI, where each u8 x s8 dot of 4 is one vpdpbusd (and q5_0's fifth
 * bits are added under a byte mask); the integer results are the same.
 *
 * Every kernel runs over the block columns of the group: the integer dot
 * of each row's block (lane r of an 8 x int32 vector) is built from
 * vectors of 4-element groups against the broadcast activation group,
 * then scaled by the 8 rows' scales (one vector) times the activation
 * block's scale. Offsets are applied exactly on the integers (q - 8 as
 * q.x - 8 sum(x), with sum(x) from xsum or the q8_K bsums); q4_1's min and
 * q4_K's mins go to a second accumulator, as in the row kernels.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/quant.h"

/* acc + the sums of four u8 x s8 products per int32 lane (no int16 pair
 * can saturate for the ranges used here: |u| <= 128 with |s| <= 127, or
 * u <= 63). */
static inline __m256i dp(__m256i acc, __m256i u, __m256i s)
{
#ifdef KT_VNNI
	return _mm256_dpbusd_epi32(acc, u, s);
#else
	return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s),
						       _mm256_set1_epi16(1)));
#endif
}

/* The 4 activation bytes at p in every lane. */
static inline __m256i bcast4(const int8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return _mm256_set1_epi32(v);
}

/* Prefetch n bytes from p on, a line at a time: the blocks PF_AHEAD bytes
 * ahead, so that the next lines are on their way from memory while this
 * block is computed (the hardware prefetcher alone ramps up too slowly
 * over the short stretches one call reads). 64 lines ahead keep one
 * core's stream at memory's pace; 16 (1 KiB) left a small model's decode
 * step 5% slower on a 2-core Zen 4. */
#define PF_AHEAD 4096
static inline void pf(const void *p, size_t n)
{
	for (size_t o = 0; o < n; o += 64)
		_mm_prefetch((const char *)p + o, _MM_HINT_T0);
}

static inline __m256 h8(const uint16_t *p)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline __m256i lo4(__m256i q)
{
	return _mm256_and_si256(q, _mm256_set1_epi8(0x0f));
}

static inline __m256i hi4(__m256i q)
{
	return _mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(0x0f));
}

static inline __m256i add4(const __m256i a[4])
{
	return _mm256_add_epi32(_mm256_add_epi32(a[0], a[1]), _mm256_add_epi32(a[2], a[3]));
}

/* The integer dots of a legacy 4-bit block (qs as kt_pblock_q4_0) with x.
 * Four short chains of products rather than two long ones: the dot's
 * latency, not its throughput, would otherwise bound the loop. */
static inline __m256i nib_block(const uint8_t *qs, const int8_t *x)
{
	__m256i a[4];
#pragma GCC unroll 4
	for (int v = 0; v < 4; v++) {
		const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * v));
		a[v] = dp(dp(_mm256_setzero_si256(), lo4(q), bcast4(x + 4 * v)), hi4(q),
			  bcast4(x + 16 + 4 * v));
	}
	return add4(a);
}

static void pdot_q4_0(const void *wg, const void *xq, const int32_t *xsum, int64_t n,
		      float *y)
{
	const struct kt_pblock_q4_0 *w = wg;
	const struct kt_block_q8_0 *x = xq;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / KT_QK; i++) {
		pf((const char *)&w[i] + PF_AHEAD, sizeof w[i]);
		__m256i p = nib_block(w[i].qs, x[i].qs);
		p = _mm256_sub_epi32(p, _mm256_set1_epi32(8 * xsum[i]));
		const __m256 d = _mm256_mul_ps(h8(w[i].d), _mm256_set1_ps(_cvtsh_ss(x[i].d)));
		acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
	}
	_mm256_storeu_ps(y, acc);
}

static void pdot_q4_1(const void *wg, const void *xq, const int32_t *xsum, int64_t n,
		      float *y)
{
	const struct kt_pblock_q4_1 *w = wg;
	const struct kt_block_q8_1 *x = xq;
	__m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
	(void)xsum;
	for (int64_t i = 0; i < n / KT_QK; i++) {
		pf((const char *)&w[i] + PF_AHEAD, sizeof w[i]);
		const __m256i p = nib_block(w[i].qs, x[i].qs);
		const __m256 d = _mm256_mul_ps(h8(w[i].d), _mm256_set1_ps(_cvtsh_ss(x[i].d)));
		acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
		accm = _mm256_fmadd_ps(h8(w[i].m), _mm256_set1_ps(_cvtsh_ss(x[i].s)), accm);
	}
	_mm256_storeu_ps(y, _mm256_add_ps(acc, accm));
}

/* 0x10 in the bytes of q whose bit in mask is set, added to q. */
static inline __m256i add_bit4(__m256i q, uint32_t mask)
{
#ifdef KT_VNNI
	return _mm256_mask_add_epi8(q, (__mmask32)mask, q, _mm256_set1_epi8(0x10));
#else
	const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
					       0x0101010101010101, 0);
	__m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)mask), shuf);
	b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
	b = _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
	return _mm256_or_si256(q, _mm256_and_si256(b, _mm256_set1_epi8(0x10)));
#endif
}

static void pdot_q5_0(const void *wg, const void *xq, const int32_t *xsum, int64_t n,
		      float *y)
{
	const struct kt_pblock_q5_0 *w = wg;
	const struct kt_block_q8_0 *x = xq;
	__m256 acc = _mm256_setzero_ps();
	for (int64_t i = 0; i < n / KT_QK; i++) {
		pf((const char *)&w[i] + PF_AHEAD, sizeof w[i]);
		__m256i a[4];
#pragma GCC unroll 4
		for (int v = 0; v < 4; v++) {
			const __m256i q = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * v));
			a[v] = dp(dp(_mm256_setzero_si256(), add_bit4(lo4(q), w[i].qh[v]),
				     bcast4(x[i].qs + 4 * v)),
				  add_bit4(hi4(q), w[i].qh[4 + v]), bcast4(x[i].qs + 16 + 4 * v));
		}
		const __m256i p = _mm256_sub_epi32(add4(a), _mm256_set1_epi32(16 * xsum[i]));
		const __m256 d = _mm256_mul_ps(h8(w[i].d), _mm256_set1_ps(_cvtsh_ss(x[i].d)));
		acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
	}
	_mm256_storeu_ps(y, acc);
}

static void pdot_q8_0(const void *wg, const void *xq, const int32_t *xsum, int64_t n,
		      float *y)
{
	const struct kt_pblock_q8_0 *w = wg;
	const struct kt_block_q8_0 *x = xq;
	__m256 acc = _mm256_setzero_ps();
	(void)xsum;
	for (int64_t i = 0; i < n / KT_QK; i++) {
		pf((const char *)&w[i] + PF_AHEAD, sizeof w[i]);
		__m256i a[4];
#pragma GCC unroll 4
		for (int u = 0; u < 4; u++) {
			/* |w| times x with w's sign: the unsigned operand must be |w| */
			const __m256i q0 = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * u));
			const __m256i q1 = _mm256_loadu_si256((const __m256i *)(w[i].qs + 128 + 32 * u));
			a[u] = dp(dp(_mm256_setzero_si256(), _mm256_sign_epi8(q0, q0),
				     _mm256_sign_epi8(bcast4(x[i].qs + 4 * u), q0)),
				  _mm256_sign_epi8(q1, q1), _mm256_sign_epi8(bcast4(x[i].qs + 16 + 4 * u), q1));
		}
		const __m256 d = _mm256_mul_ps(h8(w[i].d), _mm256_set1_ps(_cvtsh_ss(x[i].d)));
		acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(add4(a)), acc);
	}
	_mm256_storeu_ps(y, acc);
}

/* The 8 rows' bytes at p (unsigned or signed) as int32 lanes. */
static inline __m256i u8x8(const uint8_t *p)
{
	return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

static inline __m256i s8x8(const int8_t *p)
{
	return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

static void pdot_q4_K(const void *wg, const void *xq, const int32_t *xsum, int64_t n,
		      float *y)
{
	const struct kt_pblock_q4_K *w = wg;
	const struct kt_block_q8_K *x = xq;
	__m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
	(void)xsum;
	for (int64_t i = 0; i < n / KT_QK_K; i++) {
		pf((const char *)&w[i] + PF_AHEAD, sizeof w[i]);
		const int8_t *xs = x[i].qs;
		__m256i s = _mm256_setzero_si256(), mins = _mm256_setzero_si256();
#pragma GCC unroll 4
		for (int c = 0; c < 4; c++) {
			const uint8_t *qs = w[i].qs + 256 * c;
			__m256i a[4], b[4];
#pragma GCC unroll 4
			for (int v = 0; v < 4; v++) {
				const __m256i q0 = _mm256_loadu_si256((const __m256i *)(qs + 32 * v));
				const __m256i q1 = _mm256_loadu_si256((const __m256i *)(qs + 128 + 32 * v));
				const int8_t *x0 = xs + 64 * c + 4 * v;
				a[v] = dp(dp(_mm256_setzero_si256(), lo4(q0), bcast4(x0)), lo4(q1),
					  bcast4(x0 + 16));
				b[v] = dp(dp(_mm256_setzero_si256(), hi4(q0), bcast4(x0 + 32)), hi4(q1),
					  bcast4(x0 + 48));
			}
			s = _mm256_add_epi32(s, _mm256_mullo_epi32(add4(a), u8x8(w[i].sc[2 * c])));
			s = _mm256_add_epi32(s, _mm256_mullo_epi32(add4(b), u8x8(w[i].sc[2 * c + 1])));
		}
		for (int j = 0; j < 8; j++) {
			const int bs = x[i].bsums[2 * j] + x[i].bsums[2 * j + 1];
			mins = _mm256_add_epi32(mins, _mm256_mullo_epi32(u8x8(w[i].m[j]),
									 _mm256_set1_epi32(bs)));
		}
		const __m256 dx = _mm256_set1_ps(x[i].d);
		acc = _mm256_fmadd_ps(_mm256_mul_ps(h8(w[i].d), dx), _mm256_cvtepi32_ps(s), acc);
		accm = _mm256_fmadd_ps(_mm256_mul_ps(h8(w[i].dmin), dx), _mm256_cvtepi32_ps(mins),
				       accm);
	}
	_mm256_storeu_ps(y, _mm256_sub_ps(acc, accm));
}

static void pdot_q6_K(const void *wg, const void *xq, const int32_t *xsum, int64_t n,
		      float *y)
{
	const struct kt_pblock_q6_K *w = wg;
	const struct kt_block_q8_K *x = xq;
	const __m256i m30 = _mm256_set1_epi8(0x30);
	__m256 acc = _mm256_setzero_ps();
	(void)xsum;
	for (int64_t i = 0; i < n / KT_QK_K; i++) {
		pf((const char *)&w[i] + PF_AHEAD, sizeof w[i]);
		__m256i s = _mm256_setzero_si256();
		/* a quarter of 64 elements per (h, k): groups g = 4k..4k+3 of
		 * each quarter q (32 elements) make its sub-block 8h + 2q + k */
#pragma GCC unroll 1
		for (int hk = 0; hk < 4; hk++) {
			const int h = hk >> 1, k = hk & 1;
			const int8_t *xs = x[i].qs + 128 * h + 16 * k;
			const uint8_t *ql = w[i].ql + 512 * h + 128 * k, *qh = w[i].qh + 256 * h + 128 * k;
			__m256i p0 = _mm256_setzero_si256(), p1 = p0, p2 = p0, p3 = p0;
#pragma GCC unroll 4
			for (int g = 0; g < 4; g++) {
				const __m256i hb = _mm256_loadu_si256((const __m256i *)(qh + 32 * g));
				const __m256i l0 = _mm256_loadu_si256((const __m256i *)(ql + 32 * g));
				const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 256 + 32 * g));
				const __m256i q0 = _mm256_or_si256(
					lo4(l0), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
				const __m256i q1 = _mm256_or_si256(
					lo4(l1), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
				const __m256i q2 = _mm256_or_si256(hi4(l0), _mm256_and_si256(hb, m30));
				const __m256i q3 = _mm256_or_si256(
					hi4(l1), _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
				p0 = dp(p0, q0, bcast4(xs + 4 * g));
				p1 = dp(p1, q1, bcast4(xs + 32 + 4 * g));
				p2 = dp(p2, q2, bcast4(xs + 64 + 4 * g));
				p3 = dp(p3, q3, bcast4(xs + 96 + 4 * g));
			}
			const int j = 8 * h + k;
			const int16_t *bs = x[i].bsums;
			/* (q - 32) . x = q . x - 32 sum(x), times the sub-block scale */
			p0 = _mm256_sub_epi32(p0, _mm256_set1_epi32(32 * bs[j]));
			p1 = _mm256_sub_epi32(p1, _mm256_set1_epi32(32 * bs[j + 2]));
			p2 = _mm256_sub_epi32(p2, _mm256_set1_epi32(32 * bs[j + 4]));
			p3 = _mm256_sub_epi32(p3, _mm256_set1_epi32(32 * bs[j + 6]));
			s = _mm256_add_epi32(s, _mm256_mullo_epi32(p0, s8x8(w[i].sc[j])));
			s = _mm256_add_epi32(s, _mm256_mullo_epi32(p1, s8x8(w[i].sc[j + 2])));
			s = _mm256_add_epi32(s, _mm256_mullo_epi32(p2, s8x8(w[i].sc[j + 4])));
			s = _mm256_add_epi32(s, _mm256_mullo_epi32(p3, s8x8(w[i].sc[j + 6])));
		}
		const __m256 d = _mm256_mul_ps(h8(w[i].d), _mm256_set1_ps(x[i].d));
		acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc);
	}
	_mm256_storeu_ps(y, acc);
}

#ifdef KT_VNNI
kt_pdot_fn kt_pdot_vnni(enum kt_type t)
#else
kt_pdot_fn kt_pdot_avx2(enum kt_type t)
#endif
{
	switch (t) {
	case KT_Q4_0:
		return pdot_q4_0;
	case KT_Q4_1:
		return pdot_q4_1;
	case KT_Q5_0:
		return pdot_q5_0;
	case KT_Q8_0:
		return pdot_q8_0;
	case KT_Q4_K:
		return pdot_q4_K;
	case KT_Q6_K:
		return pdot_q6_K;
	default:
		return NULL;
	}
}
