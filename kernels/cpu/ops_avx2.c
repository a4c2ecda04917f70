/*
 * AVX2 versions of the per-token ops of ops.c that cost enough to matter:
 * GELU in an encoder's batch (erff per element would cost more than the
 * matrix product feeding it), LayerNorm, and the gates SwiGLU and GeGLU,
 * whose expf per element took about 5% of a small model's decode step.
 *
 * Compiled with -mavx2 -mfma -mf16c; called only after kt_cpu_has_avx2().
 */
#include <math.h>

#include "kernels/cpu/simd_avx2.h"

void kt_gelu_avx2(float *x, int64_t n)
{
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(x + i, kt_gelu8(_mm256_loadu_ps(x + i)));
	if (i < n) {
		const __m256i m = kt_mask8((int)(n - i));
		_mm256_maskstore_ps(x + i, m, kt_gelu8(_mm256_maskload_ps(x + i, m)));
	}
}

/* g / (1 + exp(-a)) u, as glu_scalar of ops.c: a = g (SiLU) or, gelu,
 * 2 sqrt(2/pi) (g + 0.044715 g^3) (GELU's tanh form). exp(-a) saturates at
 * exp(88) for a < -88, where the quotient is 0 to float precision anyway. */
static inline __m256 glu8(__m256 g, __m256 u, int gelu)
{
	__m256 a = g;
	if (gelu) {
		const __m256 g3 = _mm256_mul_ps(_mm256_mul_ps(g, g), g);
		const __m256 z = _mm256_mul_ps(_mm256_set1_ps(0.7978845608f),
					       _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), g3, g));
		a = _mm256_mul_ps(_mm256_set1_ps(2.0f), z);
	}
	const __m256 e = kt_exp8(_mm256_sub_ps(_mm256_setzero_ps(), a));
	return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

void kt_glu_avx2(float *gate, const float *up, int64_t n, int gelu)
{
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(gate + i, glu8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i), gelu));
	if (i < n) {
		const __m256i m = kt_mask8((int)(n - i));
		_mm256_maskstore_ps(gate + i, m,
				    glu8(_mm256_maskload_ps(gate + i, m), _mm256_maskload_ps(up + i, m),
					 gelu));
	}
}

static inline double hsum_pd(__m256d v)
{
	__m128d r = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
	return _mm_cvtsd_f64(_mm_add_sd(r, _mm_unpackhi_pd(r, r)));
}

/* As the scalar kt_layernorm: mean and variance summed in double (four
 * lanes each, so in another order), x - mean rounded to float and scaled. */
void kt_layernorm_avx2(float *out, const float *x, const float *w, const float *b, int n,
		       float eps)
{
	__m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
	int i = 0;
	for (; i + 8 <= n; i += 8) {
		const __m256 v = _mm256_loadu_ps(x + i);
		s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
		s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
	}
	double mean = hsum_pd(_mm256_add_pd(s0, s1));
	for (int j = i; j < n; j++)
		mean += x[j];
	mean /= n;

	const __m256d mv = _mm256_set1_pd(mean);
	s0 = s1 = _mm256_setzero_pd();
	for (i = 0; i + 8 <= n; i += 8) {
		const __m256 v = _mm256_loadu_ps(x + i);
		const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), mv);
		const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), mv);
		s0 = _mm256_fmadd_pd(d0, d0, s0);
		s1 = _mm256_fmadd_pd(d1, d1, s1);
	}
	double var = hsum_pd(_mm256_add_pd(s0, s1));
	for (int j = i; j < n; j++)
		var += (x[j] - mean) * (x[j] - mean);
	const float scale = (float)(1.0 / sqrt(var / n + eps));

	const __m256 sv = _mm256_set1_ps(scale);
	for (i = 0; i + 8 <= n; i += 8) {
		const __m256 v = _mm256_loadu_ps(x + i);
		const __m128 c0 = _mm256_cvtpd_ps(
			_mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), mv));
		const __m128 c1 = _mm256_cvtpd_ps(
			_mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), mv));
		__m256 y = _mm256_mul_ps(_mm256_insertf128_ps(_mm256_castps128_ps256(c0), c1, 1), sv);
		if (w)
			y = _mm256_mul_ps(y, _mm256_loadu_ps(w + i));
		if (b)
			y = _mm256_add_ps(y, _mm256_loadu_ps(b + i));
		_mm256_storeu_ps(out + i, y);
	}
	for (; i < n; i++) {
		const float v = (float)(x[i] - mean) * scale;
		out[i] = v * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f);
	}
}
