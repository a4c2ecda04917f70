/*
 * Attention of one query head over the KV cache: scores, softmax, weighted
 * sum of values. The scalar version here is the reference; attn_avx2.c has
 * the fast path for F16 caches, chosen at run time like the quant kernels.
 * kt_attn_group does the query heads that share one KV head (grouped-query
 * attention) together, reading each cached row once for all of them.
 * Also the attention of whole sequences (kt_attn_seq, bert): the same
 * reference row by row; attn_avx2.c runs it as small matrix products.
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

/* ---- grouped-query attention ---------------------------------------------- */

size_t kt_attn_group_scratch(int group, int n, int hd)
{
	/* per head a row of scores, n rounded up to 8 (the AVX2 softmax
	 * writes whole vectors), and the rounded query; then one K or V row */
	const size_t ns = ((size_t)n + 7) / 8 * 8;
	return (size_t)group * (ns + (size_t)hd) + (size_t)hd;
}

/* The reference: attn_scalar's operations for each head in the same order,
 * with the loops over positions outside the loops over heads, so that a K or
 * V row is converted once. kvt's scalar dot product is this same sum from
 * i = 0 up (F16 to F32 is exact), hence the identical result. */
static void attn_group_scalar(enum kt_type kvt, const void *k, const void *v, size_t stride,
			      const float *q, int group, int n, int hd, float scale,
			      float *scratch, float *out)
{
	const size_t ns = ((size_t)n + 7) / 8 * 8;
	float *sc = scratch, *qr = sc + (size_t)group * ns, *row = qr + (size_t)group * hd;
	for (size_t i = 0; i < (size_t)group * hd; i++)
		qr[i] = kvt == KT_F16 ? kt_fp16_to_fp32(kt_fp32_to_fp16(q[i])) : q[i];
	for (int p = 0; p < n; p++) {
		kt_dequant_row_isa(KT_ISA_SCALAR, kvt, (const char *)k + (size_t)p * stride, row, hd);
		for (int h = 0; h < group; h++) {
			const float *qh = qr + (size_t)h * hd;
			float s = 0;
			for (int i = 0; i < hd; i++)
				s += row[i] * qh[i];
			sc[(size_t)h * ns + p] = s * scale;
		}
	}
	for (int h = 0; h < group; h++) {
		float *sh = sc + (size_t)h * ns;
		kt_softmax(sh, n);
		if (kvt == KT_F16)
			for (int p = 0; p < n; p++)
				sh[p] = kt_fp16_to_fp32(kt_fp32_to_fp16(sh[p]));
	}
	memset(out, 0, (size_t)group * hd * sizeof(float));
	for (int p = 0; p < n; p++) {
		kt_dequant_row_isa(KT_ISA_SCALAR, kvt, (const char *)v + (size_t)p * stride, row, hd);
		for (int h = 0; h < group; h++) {
			const float w = sc[(size_t)h * ns + p];
			float *oh = out + (size_t)h * hd;
			for (int i = 0; i < hd; i++)
				oh[i] += w * row[i];
		}
	}
}

void kt_attn_group_isa(enum kt_isa isa, enum kt_type kvt, const void *k, const void *v,
		       size_t stride, const float *q, int group, int n, int hd, float scale,
		       float *scratch, float *out)
{
	if (isa != KT_ISA_SCALAR && kt_cpu_has_avx2() &&
	    kt_attn_group_avx2(kvt, k, v, stride, q, group, n, hd, scale, scratch, out))
		return;
	attn_group_scalar(kvt, k, v, stride, q, group, n, hd, scale, scratch, out);
}

void kt_attn_group(enum kt_type kvt, const void *k, const void *v, size_t stride,
		   const float *q, int group, int n, int hd, float scale, float *scratch,
		   float *out)
{
	kt_attn_group_isa(kt_cpu_isa(), kvt, k, v, stride, q, group, n, hd, scale, scratch, out);
}

/* ---- whole sequences (encoders) ------------------------------------------ */

size_t kt_attn_seq_scratch(int n, int hd)
{
	/* AVX2: the keys packed in panels of 16 (n rounded up x hd) and the
	 * scores of a tile of 6 queries; scalar: n scores and a row */
	const size_t np = ((size_t)n + 15) / 16 * 16;
	return np * ((size_t)hd + 8) + (size_t)hd;
}

void kt_attn_seq_isa(enum kt_isa isa, const float *q, const float *k, const float *v,
		     size_t stride, int n, int hd, float scale, float *scratch, float *out)
{
	if (isa != KT_ISA_SCALAR && kt_cpu_has_avx2() &&
	    kt_attn_seq_avx2(q, k, v, stride, n, hd, scale, scratch, out))
		return;
	const size_t bytes = stride * sizeof(float);
	for (int i = 0; i < n; i++)
		attn_scalar(KT_F32, k, v, bytes, q + (size_t)i * stride, n, hd, scale, scratch,
			    out + (size_t)i * stride);
}

void kt_attn_seq(const float *q, const float *k, const float *v, size_t stride, int n,
		 int hd, float scale, float *scratch, float *out)
{
	kt_attn_seq_isa(kt_cpu_isa(), q, k, v, stride, n, hd, scale, scratch, out);
}
