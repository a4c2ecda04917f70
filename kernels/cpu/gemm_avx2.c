/*
 * Float matrix products for batches (F32, F16 and BF16 weights times F32
 * activations): the cache-blocked GEMM that kt_matmul runs when nb >=
 * KT_GEMM_MIN_NB on AVX2.
 *
 * matmul.c cuts y = W x into units of at most KT_GEMM_UNIT_ROWS outputs by
 * KT_GEMM_UNIT_TOKENS tokens and hands them to the threads. A unit walks k
 * in chunks of at most GEMM_KC: it packs the chunk of its rows into panels
 * laid out k-major (converting F16/BF16 to float on the way), on the stack
 * and small enough to stay in L2, then runs every tile of tokens against
 * each panel with a register-blocked microkernel, keeping partial sums in
 * y between chunks. The bias and the activation are applied by the last
 * chunk as the tile is stored.
 *
 * The microkernel (simd_avx2.h) is 6 tokens x 16 outputs. (A 12 x 32
 * kernel on AVX-512 registers measured no faster on the AMD EPYC this was
 * tuned on, whose AVX-512 runs on the same two 256-bit FMA pipes.)
 *
 * Compiled with -mavx2 -mfma -mf16c; called only after kt_cpu_has_avx2().
 */
#include "kernels/cpu/simd_avx2.h"

/* Most k per packed chunk: a 16-output panel is then 32 KiB (the 384 or
 * 1536 inputs of a BERT-small matrix take one or three chunks). */
#define GEMM_KC 512

#define GEMM_PANELS (KT_GEMM_UNIT_ROWS / GM_R)
_Static_assert(KT_GEMM_UNIT_ROWS % GM_R == 0, "units hold whole panels");
_Static_assert(KT_GEMM_UNIT_TOKENS % GM_T == 0, "units hold whole tiles");

void kt_gemm_avx2(const struct kt_mat *w, const float *x, float *y, int64_t r0, int64_t r1,
		  int64_t b0, int64_t b1, const float *bias, enum kt_act act)
{
	const int64_t K = w->cols, rows = w->rows;
	const size_t wstride = kt_row_bytes(w->type, K);
	const char *wd = (const char *)w->data;
	/* equal chunks of at most GEMM_KC, a multiple of 8 where possible */
	const int64_t n_chunks = (K + GEMM_KC - 1) / GEMM_KC;
	int64_t kcmax = (K + n_chunks - 1) / n_chunks;
	kcmax = (kcmax + 7) / 8 * 8;
	if (kcmax > GEMM_KC)
		kcmax = GEMM_KC;
	const int np = (int)((r1 - r0 + GM_R - 1) / GM_R);
	float pack[GEMM_PANELS][GEMM_KC * GM_R] __attribute__((aligned(64))); /* 64 KiB */
	const enum gm_epi last_epi = act == KT_ACT_GELU ? GM_GELU : bias ? GM_BIAS : GM_STORE;

	for (int64_t k0 = 0; k0 < K; k0 += kcmax) {
		const int kc = (int)(K - k0 < kcmax ? K - k0 : kcmax);
		for (int p = 0; p < np; p++) {
			const int64_t pr = r0 + (int64_t)p * GM_R;
			const int nr = (int)(r1 - pr < GM_R ? r1 - pr : GM_R);
			gm_pack_panel(w->type, wd + (size_t)pr * wstride, wstride, nr, k0, kc, pack[p]);
		}
		struct gm_tile g = {
			.ws = GM_R,
			.kc = kc,
			.accumulate = k0 > 0,
			.ys = (size_t)rows,
			.epi = k0 + kc == K ? last_epi : GM_STORE,
		};
		for (int64_t b = b0; b < b1; b += GM_T) {
			g.nt = (int)(b1 - b < GM_T ? b1 - b : GM_T);
			for (int t = 0; t < GM_T; t++)
				g.x[t] = x + (b + (t < g.nt ? t : g.nt - 1)) * K + k0;
			for (int p = 0; p < np; p++) {
				const int64_t pr = r0 + (int64_t)p * GM_R;
				g.nr = (int)(r1 - pr < GM_R ? r1 - pr : GM_R);
				g.w = pack[p];
				g.y = y + b * rows + pr;
				g.bias = bias ? bias + pr : NULL;
				gm_tile_run(&g);
			}
		}
	}
}
