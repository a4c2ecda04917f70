/*
 * AVX2/F16C attention of one head over an F16 KV cache (see attn.c for the
 * contract and the rounding it reproduces). head_dim must be a multiple of
 * 8 and at most 256; other shapes and F32 caches go to the scalar code.
 */
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/cpu/quant.h"

static inline float hsum(__m256 v)
{
	__m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	r = _mm_add_ps(r, _mm_movehl_ps(r, r));
	r = _mm_add_ss(r, _mm_movehdup_ps(r));
	return _mm_cvtss_f32(r);
}

static inline __m256 load_h8(const uint16_t *p)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline __m256 round_h8(__m256 x)
{
	return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
}

int kt_attn_avx2(enum kt_type kvt, const void *k, const void *v, size_t stride,
		 const float *q, int n, int hd, float scale, float *scratch, float *out)
{
	if (kvt != KT_F16 || hd % 8 || hd > 256)
		return 0;
	const int nv = hd / 8;
	__m256 qv[32];
	for (int j = 0; j < nv; j++)
		qv[j] = round_h8(_mm256_loadu_ps(q + 8 * j));
	float *sc = scratch;
	for (int p = 0; p < n; p++) {
		const uint16_t *kr = (const uint16_t *)((const char *)k + (size_t)p * stride);
		__m256 acc = _mm256_mul_ps(load_h8(kr), qv[0]);
		for (int j = 1; j < nv; j++)
			acc = _mm256_fmadd_ps(load_h8(kr + 8 * j), qv[j], acc);
		sc[p] = hsum(acc) * scale;
	}
	kt_softmax(sc, n);
	int p = 0;
	for (; p + 8 <= n; p += 8)
		_mm256_storeu_ps(sc + p, round_h8(_mm256_loadu_ps(sc + p)));
	for (; p < n; p++)
		sc[p] = kt_fp16_to_fp32(kt_fp32_to_fp16(sc[p]));
	__m256 o[32];
	for (int j = 0; j < nv; j++)
		o[j] = _mm256_setzero_ps();
	for (p = 0; p < n; p++) {
		const uint16_t *vr = (const uint16_t *)((const char *)v + (size_t)p * stride);
		const __m256 a = _mm256_set1_ps(sc[p]);
		for (int j = 0; j < nv; j++)
			o[j] = _mm256_fmadd_ps(a, load_h8(vr + 8 * j), o[j]);
	}
	for (int j = 0; j < nv; j++)
		_mm256_storeu_ps(out + 8 * j, o[j]);
	return 1;
}
