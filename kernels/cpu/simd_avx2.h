/*
 * Private to the *_avx2.c files of kernels/cpu (compiled with -mavx2 -mfma
 * -mf16c): vector exp, erf and GELU (ops_avx2.c, the GEMM's epilogue,
 * softmax), and the pieces of the float GEMM that gemm_avx2.c (matrix
 * products) and attn_avx2.c (attention of whole sequences) share: packing
 * a block of rows into panels and the 6 x 16 register-blocked microkernel.
 *
 * The microkernel computes a tile of 6 activation rows ("tokens") by 16
 * outputs with twelve 8-float accumulators: per k it loads two vectors of
 * the panel (the 16 outputs' weights at k) and broadcasts x_t[k] of each
 * token, 12 FMAs for 8 loads. Each output is a single chain
 * s = fma(w_k, x_k, s) over k = 0, 1, ..., so its value does not depend on
 * where the tile falls: not on the thread, the batch size, or the position
 * of the token in the batch.
 */
#ifndef SEEKFS_KERNELS_CPU_SIMD_AVX2_H
#define SEEKFS_KERNELS_CPU_SIMD_AVX2_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/cpu/quant.h"

#define GM_T 6  /* tokens per tile */
#define GM_R 16 /* outputs per panel */

/* ---- vector math ----------------------------------------------------- */

/* exp(x) for x <= 88: x = n ln2 + r with |r| <= ln2/2, exp(r) by Cephes'
 * degree-5 polynomial (about 1 ulp), times 2^n built in the exponent
 * bits. Below ln(FLT_MIN) (-87.3) the result is 0. */
static inline __m256 kt_exp8(__m256 x)
{
	const __m256 lo = _mm256_set1_ps(-87.33654f);
	const __m256 keep = _mm256_cmp_ps(x, lo, _CMP_GE_OQ);
	x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.0f));
	const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
					 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	/* ln2 in two parts: n * 0.693359375 is exact for |n| <= 128 */
	__m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
	__m256 p = _mm256_set1_ps(1.9875691500e-4f);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
	p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
	const __m256i e = _mm256_slli_epi32(
		_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
	return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
}

/* erf(x) as the rational function x P(x^2) / Q(x^2) on [-4, 4] (Eigen's
 * and XLA's float erf), +-1 beyond; within 4e-7 of the true value. */
static inline __m256 kt_erf8(__m256 x)
{
	x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-4.0f)), _mm256_set1_ps(4.0f));
	const __m256 x2 = _mm256_mul_ps(x, x);
	__m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(-2.72614225801306e-10f),
				   _mm256_set1_ps(2.77068142495902e-08f));
	p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-2.10102402082508e-06f));
	p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-5.69250639462346e-05f));
	p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-7.34990630326855e-04f));
	p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-2.95459980854025e-03f));
	p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-1.60960333262415e-02f));
	p = _mm256_mul_ps(x, p);
	__m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(-1.45660718464996e-05f),
				   _mm256_set1_ps(-2.13374055278905e-04f));
	q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.68282697438203e-03f));
	q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-7.37332916720468e-03f));
	q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.42647390514189e-02f));
	return _mm256_div_ps(p, q);
}

/* GELU, the exact (erf) form: x/2 (1 + erf(x / sqrt 2)). */
static inline __m256 kt_gelu8(__m256 x)
{
	const __m256 e = kt_erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
	return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x),
			     _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* Lanes 0..n-1 set (n <= 8), for maskload/maskstore. */
static inline __m256i kt_mask8(int n)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* ---- packing --------------------------------------------------------- */

/* 8 floats of a weight row of type t (F32, F16 or BF16) from element k. */
static inline __m256 gm_load8(enum kt_type t, const void *row, int64_t k)
{
	if (t == KT_F16)
		return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + k)));
	if (t == KT_BF16) {
		const __m256i v = _mm256_cvtepu16_epi32(
			_mm_loadu_si128((const __m128i *)((const uint16_t *)row + k)));
		return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
	}
	return _mm256_loadu_ps((const float *)row + k);
}

static inline float gm_load1(enum kt_type t, const void *row, int64_t k)
{
	if (t == KT_F16)
		return kt_fp16_to_fp32(((const uint16_t *)row)[k]);
	if (t == KT_BF16)
		return kt_bf16_to_fp32(((const uint16_t *)row)[k]);
	return ((const float *)row)[k];
}

/* In-place transpose of 8 vectors as an 8 x 8 matrix. */
static inline void gm_transpose8(__m256 r[8])
{
	__m256 t[8], u[8];
	for (int i = 0; i < 4; i++) {
		t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
		t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
	}
	for (int i = 0; i < 2; i++) {
		u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
		u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
		u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
		u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
	}
	for (int i = 0; i < 4; i++) {
		r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
		r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
	}
}

/* Pack nr <= 16 rows (row i at w + i * wstride bytes, elements of type t)
 * over columns k0..k0+kc-1 into dst[k][16] (kc * 16 floats): column k of
 * the rows becomes 16 consecutive floats, rows nr..15 zero. */
static inline void gm_pack_panel(enum kt_type t, const void *w, size_t wstride, int nr,
				 int64_t k0, int kc, float *dst)
{
	for (int h = 0; h < GM_R / 8; h++) {
		const char *wh = (const char *)w + (size_t)(8 * h) * wstride;
		float *dh = dst + 8 * h;
		int k = 0;
		if (8 * h + 8 <= nr)
			for (; k + 8 <= kc; k += 8) {
				__m256 r[8];
				for (int i = 0; i < 8; i++)
					r[i] = gm_load8(t, wh + (size_t)i * wstride, k0 + k);
				gm_transpose8(r);
				for (int j = 0; j < 8; j++)
					_mm256_storeu_ps(dh + (size_t)(k + j) * GM_R, r[j]);
			}
		for (; k < kc; k++)
			for (int i = 0; i < 8; i++)
				dh[(size_t)k * GM_R + i] = 8 * h + i < nr ?
					gm_load1(t, wh + (size_t)i * wstride, k0 + k) : 0.0f;
	}
}

/* ---- the microkernel ------------------------------------------------- */

enum gm_epi {
	GM_STORE = 0,    /* y = acc */
	GM_BIAS = 1,     /* y = acc + bias */
	GM_GELU = 2,     /* y = gelu(acc + bias), bias may be NULL */
	GM_SCALE = 3,    /* y = acc * scale */
	GM_ROWSCALE = 4, /* y = acc * row_scale[t] for token t */
};

struct gm_tile {
	const float *x[GM_T]; /* the tokens' activations at the first k */
	const float *w;       /* k-major weights: 16 outputs at w + k * ws */
	size_t ws;
	int kc;
	int accumulate;       /* start from y instead of 0 */
	float *y;             /* token t's 16 outputs at y + t * ys */
	size_t ys;
	int nt, nr;           /* tokens (<= 6) and outputs (<= 16) stored */
	enum gm_epi epi;      /* applied at the end; GM_STORE for partial sums */
	const float *bias;    /* 16 values for GM_BIAS / GM_GELU */
	float scale;
	const float *row_scale;
};

/* Bias of outputs 8h..8h+7 of the tile, only the nr that exist read. */
static inline __m256 gm_bias(const struct gm_tile *g, int h)
{
	if (g->nr >= 8 * h + 8)
		return _mm256_loadu_ps(g->bias + 8 * h);
	return _mm256_maskload_ps(g->bias + 8 * h, kt_mask8(g->nr - 8 * h));
}

static inline __m256 gm_epilogue(__m256 v, const struct gm_tile *g, int h, int t)
{
	switch (g->epi) {
	case GM_BIAS:
		return _mm256_add_ps(v, gm_bias(g, h));
	case GM_GELU:
		if (g->bias)
			v = _mm256_add_ps(v, gm_bias(g, h));
		return kt_gelu8(v);
	case GM_SCALE:
		return _mm256_mul_ps(v, _mm256_set1_ps(g->scale));
	case GM_ROWSCALE:
		return _mm256_mul_ps(v, _mm256_set1_ps(g->row_scale[t]));
	default:
		return v;
	}
}

static inline void gm_store(const struct gm_tile *g, int t, __m256 c0, __m256 c1)
{
	if (t >= g->nt)
		return;
	float *y = g->y + (size_t)t * g->ys;
	c0 = gm_epilogue(c0, g, 0, t);
	c1 = gm_epilogue(c1, g, 1, t);
	if (g->nr == GM_R) {
		_mm256_storeu_ps(y, c0);
		_mm256_storeu_ps(y + 8, c1);
	} else {
		_mm256_maskstore_ps(y, kt_mask8(g->nr), c0);
		if (g->nr > 8)
			_mm256_maskstore_ps(y + 8, kt_mask8(g->nr - 8), c1);
	}
}

static inline void gm_load(const struct gm_tile *g, int t, __m256 *c0, __m256 *c1)
{
	if (!g->accumulate || t >= g->nt) {
		*c0 = *c1 = _mm256_setzero_ps();
		return;
	}
	const float *y = g->y + (size_t)t * g->ys;
	if (g->nr == GM_R) {
		*c0 = _mm256_loadu_ps(y);
		*c1 = _mm256_loadu_ps(y + 8);
	} else {
		*c0 = _mm256_maskload_ps(y, kt_mask8(g->nr));
		*c1 = g->nr > 8 ? _mm256_maskload_ps(y + 8, kt_mask8(g->nr - 8)) : _mm256_setzero_ps();
	}
}

/* One k step: w0, w1 hold the 16 weights; x0..x5 the tokens' rows. */
#define GM_STEP(k)                                                              \
	do {                                                                    \
		__m256 b;                                                       \
		b = _mm256_broadcast_ss(x0 + (k));                              \
		c00 = _mm256_fmadd_ps(w0, b, c00);                              \
		c01 = _mm256_fmadd_ps(w1, b, c01);                              \
		b = _mm256_broadcast_ss(x1 + (k));                              \
		c10 = _mm256_fmadd_ps(w0, b, c10);                              \
		c11 = _mm256_fmadd_ps(w1, b, c11);                              \
		b = _mm256_broadcast_ss(x2 + (k));                              \
		c20 = _mm256_fmadd_ps(w0, b, c20);                              \
		c21 = _mm256_fmadd_ps(w1, b, c21);                              \
		b = _mm256_broadcast_ss(x3 + (k));                              \
		c30 = _mm256_fmadd_ps(w0, b, c30);                              \
		c31 = _mm256_fmadd_ps(w1, b, c31);                              \
		b = _mm256_broadcast_ss(x4 + (k));                              \
		c40 = _mm256_fmadd_ps(w0, b, c40);                              \
		c41 = _mm256_fmadd_ps(w1, b, c41);                              \
		b = _mm256_broadcast_ss(x5 + (k));                              \
		c50 = _mm256_fmadd_ps(w0, b, c50);                              \
		c51 = _mm256_fmadd_ps(w1, b, c51);                              \
	} while (0)

/* y[t][0..nr) (=|+=) sum_k x_t[k] w[k][0..nr) for t < nt, then the
 * epilogue. Tokens t >= nt must still point at readable rows (callers
 * repeat the last one); outputs >= nr of w must be readable when nr > 8
 * (packed panels are zero-padded), and when nr <= 8 only the first 8 are
 * read. */
static inline __attribute__((always_inline)) void gm_tile_run(const struct gm_tile *g)
{
	__m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
	gm_load(g, 0, &c00, &c01);
	gm_load(g, 1, &c10, &c11);
	gm_load(g, 2, &c20, &c21);
	gm_load(g, 3, &c30, &c31);
	gm_load(g, 4, &c40, &c41);
	gm_load(g, 5, &c50, &c51);
	const float *x0 = g->x[0], *x1 = g->x[1], *x2 = g->x[2];
	const float *x3 = g->x[3], *x4 = g->x[4], *x5 = g->x[5];
	const float *w = g->w;
	const size_t ws = g->ws;
	const int kc = g->kc;
	if (g->nr > 8) {
		for (int k = 0; k < kc; k++, w += ws) {
			const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
			GM_STEP(k);
		}
	} else {
		/* one vector of outputs: the second chain runs on zeros */
		const __m256 w1 = _mm256_setzero_ps();
		for (int k = 0; k < kc; k++, w += ws) {
			const __m256 w0 = _mm256_loadu_ps(w);
			GM_STEP(k);
		}
	}
	gm_store(g, 0, c00, c01);
	gm_store(g, 1, c10, c11);
	gm_store(g, 2, c20, c21);
	gm_store(g, 3, c30, c31);
	gm_store(g, 4, c40, c41);
	gm_store(g, 5, c50, c51);
}

#endif
