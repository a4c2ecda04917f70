/*
 * Attention of one query head over the KV cache: scores, softmax, weighted
 * sum of values. The scalar version here is the reference; attn_avx2.c has
 * the fast path for F16 caches, chosen at run time like the quant kernels.
 *
 * With an F16 cache the query is rounded to F16 before it meets the keys and
 * the softmax weights are rounded to F16 before they meet the values, as
 * llama.cpp does: a product of two F16 numbers is exact in F32, so engines
 * differ only in the order of their sums.
 */
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/cpu/quant.h"

static void attn_scalar(enum kt_type kvt, const void *k, const void *v, size_t stride,
			const float *q, int n, int hd, float scale, float *scratch, float *out)
{
	float *sc = scratch, *row = scratch + n;
	float qr[512]; /* head_dim is at most 512 (checked by the caller's contract) */
	if (kvt == KT_F16) {
		for (int i = 0; i < hd; i++)
			qr[i] = kt_fp16_to_fp32(kt_fp32_to_fp16(q[i]));
		q = qr;
	}
	for (int p = 0; p < n; p++)
		sc[p] = kt_vec_dot_isa(KT_ISA_SCALAR, kvt, (const char *)k + (size_t)p * stride, q, hd) *
			scale;
	kt_softmax(sc, n);
	if (kvt == KT_F16)
		for (int p = 0; p < n; p++)
			sc[p] = kt_fp16_to_fp32(kt_fp32_to_fp16(sc[p]));
	memset(out, 0, (size_t)hd * sizeof(float));
	for (int p = 0; p < n; p++) {
		kt_dequant_row_isa(KT_ISA_SCALAR, kvt, (const char *)v + (size_t)p * stride, row, hd);
		for (int i = 0; i < hd; i++)
			out[i] += sc[p] * row[i];
	}
}

void kt_attn_head_isa(enum kt_isa isa, enum kt_type kvt, const void *k, const void *v,
		      size_t stride, const float *q, int n, int hd, float scale,
		      float *scratch, float *out)
{
	if (isa != KT_ISA_SCALAR && kt_cpu_has_avx2() &&
	    kt_attn_avx2(kvt, k, v, stride, q, n, hd, scale, scratch, out))
		return;
	attn_scalar(kvt, k, v, stride, q, n, hd, scale, scratch, out);
}

void kt_attn_head(enum kt_type kvt, const void *k, const void *v, size_t stride,
		  const float *q, int n, int hd, float scale, float *scratch, float *out)
{
	kt_attn_head_isa(kt_cpu_isa(), kvt, k, v, stride, q, n, hd, scale, scratch, out);
}
