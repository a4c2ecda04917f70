/*
 * AVX2/F16C attention of one head over an F16 KV cache (see attn.c for the
 * contract and the rounding it reproduces). head_dim must be a multiple of
 * 8 and at most 256; other shapes and F32 caches go to the scalar code.
 * The same for the query heads that share a KV head (kt_attn_group), two
 * or three at a time, each K and V row converted once per pass.
 *
 * And the attention of a whole sequence (kt_attn_seq), where every query
 * meets every key: for each tile of 6 queries, the scores against all keys
 * are one small GEMM (the keys packed once into k-major panels of 16, the
 * microkernel of simd_avx2.h with hd as its k), exp(score - max) replaces
 * the 6 rows, and the weighted sums are another GEMM (the exponentials
 * broadcast, the value rows read in place as the "panel", 16 dimensions at
 * a time) whose store divides by the row's sum.
 */
#include <immintrin.h>
#include <math.h>

#include "kernels/kernels.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd_avx2.h"

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

/* exp(s_j - max) in place for the n scores of row s (s holds n rounded up
 * to 8 floats); returns 1 / their sum, the softmax's normalisation. */
static float softmax_row(float *s, int n)
{
	__m256 mv = _mm256_set1_ps(-INFINITY);
	int j = 0;
	for (; j + 8 <= n; j += 8)
		mv = _mm256_max_ps(mv, _mm256_loadu_ps(s + j));
	float m = -INFINITY;
	for (; j < n; j++)
		m = s[j] > m ? s[j] : m;
	__m128 r = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
	r = _mm_max_ps(r, _mm_movehl_ps(r, r));
	r = _mm_max_ss(r, _mm_movehdup_ps(r));
	m = _mm_cvtss_f32(r) > m ? _mm_cvtss_f32(r) : m;

	const __m256 mb = _mm256_set1_ps(m);
	__m256 sum = _mm256_setzero_ps();
	for (j = 0; j + 8 <= n; j += 8) {
		const __m256 e = kt_exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), mb));
		_mm256_storeu_ps(s + j, e);
		sum = _mm256_add_ps(sum, e);
	}
	if (j < n) {
		const __m256i mask = kt_mask8(n - j);
		const __m256 e = _mm256_and_ps(kt_exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), mb)),
					       _mm256_castsi256_ps(mask));
		_mm256_storeu_ps(s + j, e);
		sum = _mm256_add_ps(sum, e);
	}
	return 1.0f / hsum(sum);
}

/* The softmax of the n scores of row sc (n rounded up to 8 floats), its
 * weights rounded to F16 as they will meet the values. */
static void softmax_round_row(float *sc, int n)
{
	const __m256 inv = _mm256_set1_ps(softmax_row(sc, n));
	int p = 0;
	for (; p + 8 <= n; p += 8)
		_mm256_storeu_ps(sc + p, round_h8(_mm256_mul_ps(_mm256_loadu_ps(sc + p), inv)));
	for (; p < n; p++)
		sc[p] = kt_fp16_to_fp32(kt_fp32_to_fp16(sc[p] * _mm256_cvtss_f32(inv)));
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
	int p0 = 0;
	/* eight positions at a time, their eight sums reduced together */
	for (; p0 + 8 <= n; p0 += 8) {
		const char *kb = (const char *)k + (size_t)p0 * stride;
		__m256 a[8];
#pragma GCC unroll 8
		for (int i = 0; i < 8; i++)
			a[i] = _mm256_mul_ps(load_h8((const uint16_t *)(kb + i * stride)), qv[0]);
		for (int j = 1; j < nv; j++)
#pragma GCC unroll 8
			for (int i = 0; i < 8; i++)
				a[i] = _mm256_fmadd_ps(
					load_h8((const uint16_t *)(kb + i * stride) + 8 * j), qv[j], a[i]);
		const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
		const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
		const __m256 r = _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
					       _mm256_permute2f128_ps(u0, u1, 0x31));
		_mm256_storeu_ps(sc + p0, _mm256_mul_ps(r, _mm256_set1_ps(scale)));
	}
	for (int p = p0; p < n; p++) {
		const uint16_t *kr = (const uint16_t *)((const char *)k + (size_t)p * stride);
		__m256 acc = _mm256_mul_ps(load_h8(kr), qv[0]);
		for (int j = 1; j < nv; j++)
			acc = _mm256_fmadd_ps(load_h8(kr + 8 * j), qv[j], acc);
		sc[p] = hsum(acc) * scale;
	}
	softmax_round_row(sc, n);
	int p;
	/* eight output dimensions at a time over all positions, in four
	 * chains: the accumulators stay in registers */
	for (int j = 0; j < nv; j++) {
		const char *vb = (const char *)v + 16 * j;
		__m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
		for (p = 0; p + 4 <= n; p += 4) {
			const char *r = vb + (size_t)p * stride;
			o0 = _mm256_fmadd_ps(_mm256_set1_ps(sc[p]), load_h8((const uint16_t *)r), o0);
			o1 = _mm256_fmadd_ps(_mm256_set1_ps(sc[p + 1]),
					     load_h8((const uint16_t *)(r + stride)), o1);
			o2 = _mm256_fmadd_ps(_mm256_set1_ps(sc[p + 2]),
					     load_h8((const uint16_t *)(r + 2 * stride)), o2);
			o3 = _mm256_fmadd_ps(_mm256_set1_ps(sc[p + 3]),
					     load_h8((const uint16_t *)(r + 3 * stride)), o3);
		}
		for (; p < n; p++)
			o0 = _mm256_fmadd_ps(_mm256_set1_ps(sc[p]),
					     load_h8((const uint16_t *)(vb + (size_t)p * stride)), o0);
		_mm256_storeu_ps(out + 8 * j, _mm256_add_ps(_mm256_add_ps(o0, o1), _mm256_add_ps(o2, o3)));
	}
	return 1;
}

/* ---- grouped-query attention --------------------------------------------- */

/* Query heads per pass of kt_attn_group_avx2: the loop over values keeps
 * four accumulator chains per head, 12 of the 16 ymm registers for three. */
#define GQ_MAX 3

/* One pass over S heads (2 or 3: a constant once inlined) sharing k and v,
 * every K and V vector converted once for the S of them. Each score and
 * each output is made by kt_attn_avx2's operations in its order, so the
 * result is its result bit for bit:
 * - a score below n rounded down to 8 is the chain a = k_0 q_0,
 *   a = fma(k_j, q_j, a) over the 8-float slices j, summed as
 *   ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)), the sum kt_attn_avx2's
 *   hadd tree gives each of its eight positions whatever its neighbours:
 *   here four positions at a time, 4S chains (12 registers for S = 3);
 * - the last n % 8 scores are the same chain summed by hsum;
 * - slice j of an output is four chains over the positions p = c mod 4
 *   (the last n % 4 into chain 0), added as (o0 + o1) + (o2 + o3). */
static inline __attribute__((always_inline)) void
group_pass(const int S, const void *k, const void *v, size_t stride, const float *q, int n,
	   int hd, float scale, float *scratch, float *out)
{
	const int nv = hd / 8, n8 = n & ~7;
	const size_t ns = ((size_t)n + 7) / 8 * 8; /* scratch: S rows of scores */
	float qr[GQ_MAX][256] __attribute__((aligned(32)));
	for (int h = 0; h < S; h++)
		for (int j = 0; j < nv; j++)
			_mm256_store_ps(qr[h] + 8 * j,
					round_h8(_mm256_loadu_ps(q + (size_t)h * hd + 8 * j)));
	const __m128 scale4 = _mm_set1_ps(scale);
	for (int p0 = 0; p0 < n8; p0 += 4) {
		const char *kb = (const char *)k + (size_t)p0 * stride;
		__m256 a[GQ_MAX][4];
#pragma GCC unroll 4
		for (int i = 0; i < 4; i++) {
			const __m256 kv = load_h8((const uint16_t *)(kb + i * stride));
#pragma GCC unroll 3
			for (int h = 0; h < S; h++)
				a[h][i] = _mm256_mul_ps(kv, _mm256_load_ps(qr[h]));
		}
		for (int j = 1; j < nv; j++)
#pragma GCC unroll 4
			for (int i = 0; i < 4; i++) {
				const __m256 kv = load_h8((const uint16_t *)(kb + i * stride) + 8 * j);
#pragma GCC unroll 3
				for (int h = 0; h < S; h++)
					a[h][i] = _mm256_fmadd_ps(kv, _mm256_load_ps(qr[h] + 8 * j), a[h][i]);
			}
#pragma GCC unroll 3
		for (int h = 0; h < S; h++) {
			const __m256 u = _mm256_hadd_ps(_mm256_hadd_ps(a[h][0], a[h][1]),
							_mm256_hadd_ps(a[h][2], a[h][3]));
			const __m128 r = _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
			_mm_storeu_ps(scratch + h * ns + p0, _mm_mul_ps(r, scale4));
		}
	}
	for (int p = n8; p < n; p++) {
		const uint16_t *kr = (const uint16_t *)((const char *)k + (size_t)p * stride);
		__m256 acc[GQ_MAX];
		const __m256 k0 = load_h8(kr);
#pragma GCC unroll 3
		for (int h = 0; h < S; h++)
			acc[h] = _mm256_mul_ps(k0, _mm256_load_ps(qr[h]));
		for (int j = 1; j < nv; j++) {
			const __m256 kv = load_h8(kr + 8 * j);
#pragma GCC unroll 3
			for (int h = 0; h < S; h++)
				acc[h] = _mm256_fmadd_ps(kv, _mm256_load_ps(qr[h] + 8 * j), acc[h]);
		}
#pragma GCC unroll 3
		for (int h = 0; h < S; h++)
			scratch[h * ns + p] = hsum(acc[h]) * scale;
	}
	for (int h = 0; h < S; h++)
		softmax_round_row(scratch + h * ns, n);
	for (int j = 0; j < nv; j++) {
		const char *vb = (const char *)v + 16 * j;
		__m256 o[GQ_MAX][4];
#pragma GCC unroll 3
		for (int h = 0; h < S; h++)
			o[h][0] = o[h][1] = o[h][2] = o[h][3] = _mm256_setzero_ps();
		int p = 0;
		for (; p + 4 <= n; p += 4) {
			const char *r = vb + (size_t)p * stride;
#pragma GCC unroll 4
			for (int c = 0; c < 4; c++) {
				const __m256 vv = load_h8((const uint16_t *)(r + c * stride));
#pragma GCC unroll 3
				for (int h = 0; h < S; h++)
					o[h][c] = _mm256_fmadd_ps(_mm256_set1_ps(scratch[h * ns + p + c]), vv,
								  o[h][c]);
			}
		}
		for (; p < n; p++) {
			const __m256 vv = load_h8((const uint16_t *)(vb + (size_t)p * stride));
#pragma GCC unroll 3
			for (int h = 0; h < S; h++)
				o[h][0] = _mm256_fmadd_ps(_mm256_set1_ps(scratch[h * ns + p]), vv, o[h][0]);
		}
#pragma GCC unroll 3
		for (int h = 0; h < S; h++)
			_mm256_storeu_ps(out + (size_t)h * hd + 8 * j,
					 _mm256_add_ps(_mm256_add_ps(o[h][0], o[h][1]),
						       _mm256_add_ps(o[h][2], o[h][3])));
	}
}

int kt_attn_group_avx2(enum kt_type kvt, const void *k, const void *v, size_t stride,
		       const float *q, int group, int n, int hd, float scale, float *scratch,
		       float *out)
{
	if (kvt != KT_F16 || hd % 8 || hd > 256)
		return 0;
	/* passes of 2 or 3 heads, as even as possible (7 = 2 + 2 + 3); a lone
	 * head goes to kt_attn_avx2, whose eight chains per block suit it */
	for (int done = 0; done < group;) {
		const int left = group - done, npass = (left + GQ_MAX - 1) / GQ_MAX;
		const int S = left / npass;
		const float *qh = q + (size_t)done * hd;
		float *oh = out + (size_t)done * hd;
		if (S == 1)
			kt_attn_avx2(kvt, k, v, stride, qh, n, hd, scale, scratch, oh);
		else if (S == 2)
			group_pass(2, k, v, stride, qh, n, hd, scale, scratch, oh);
		else
			group_pass(3, k, v, stride, qh, n, hd, scale, scratch, oh);
		done += S;
	}
	return 1;
}

int kt_attn_seq_avx2(const float *q, const float *k, const float *v, size_t stride, int n,
		     int hd, float scale, float *scratch, float *out)
{
	if (hd % 8 || hd > 512 || n <= 0)
		return 0;
	const int np = (n + GM_R - 1) / GM_R * GM_R;
	float *kp = scratch;                 /* np/16 panels of hd x 16 */
	float *sc = kp + (size_t)np * hd;    /* scores of a tile: 6 rows of np */
	for (int j0 = 0; j0 < n; j0 += GM_R)
		gm_pack_panel(KT_F32, k + (size_t)j0 * stride, stride * sizeof(float),
			      n - j0 < GM_R ? n - j0 : GM_R, 0, hd, kp + (size_t)j0 * hd);
	for (int i0 = 0; i0 < n; i0 += GM_T) {
		const int ni = n - i0 < GM_T ? n - i0 : GM_T;
		struct gm_tile g = {
			.ws = GM_R,
			.kc = hd,
			.ys = (size_t)np,
			.nt = ni,
			.nr = GM_R,
			.epi = GM_SCALE,
			.scale = scale,
		};
		for (int t = 0; t < GM_T; t++)
			g.x[t] = q + (size_t)(i0 + (t < ni ? t : ni - 1)) * stride;
		for (int j0 = 0; j0 < np; j0 += GM_R) {
			g.w = kp + (size_t)j0 * hd;
			g.y = sc + j0;
			gm_tile_run(&g);
		}
		float inv[GM_T];
		for (int t = 0; t < ni; t++)
			inv[t] = softmax_row(sc + (size_t)t * np, n);

		/* out = P V / sum: the exponentials are the broadcast operand, k
		 * runs over the keys, the 16 outputs are dimensions of the value
		 * rows */
		g.ws = stride;
		g.kc = n;
		g.ys = stride;
		g.epi = GM_ROWSCALE;
		g.row_scale = inv;
		for (int t = 0; t < GM_T; t++)
			g.x[t] = sc + (size_t)(t < ni ? t : ni - 1) * np;
		for (int d0 = 0; d0 < hd; d0 += GM_R) {
			g.nr = hd - d0 < GM_R ? hd - d0 : GM_R;
			g.w = v + d0;
			g.y = out + (size_t)i0 * stride + d0;
			gm_tile_run(&g);
		}
	}
	return 1;
}
