/*
 * GGUF tensor types: the type table, and the scalar reference for
 * dequantisation, quantisation and dot products of every supported type.
 *
 * Layouts and dequantisation formulas are ggml's (ggml-quants.c), because
 * real GGUF files are read with them. Quantisation of weight types is plain
 * round-to-nearest per block (ggml's *_ref for the legacy quants; a min/max
 * scale per sub-block for the K-quants), good enough for tests and for
 * converting models, not tuned like llama-quantize. The activation types
 * (q8_0, q8_1, q8_K) round to nearest even so that the AVX2 versions give
 * the same bytes.
 *
 * The kt_* entry points dispatch through a per-ISA table of function
 * pointers built once; quant_avx2.c fills in the entries it speeds up.
 */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/cpu/quant.h"

/* ---- the type table ---------------------------------------------------- */

struct type_info {
	const char *name;
	int64_t blck;
	size_t bytes;
	int weight; /* can be a weight tensor (kt_type_supported) */
};

static const struct type_info types[KT_TYPE_MAX] = {
	[KT_F32] = { "f32", 1, 4, 1 },
	[KT_F16] = { "f16", 1, 2, 1 },
	[KT_Q4_0] = { "q4_0", KT_QK, sizeof(struct kt_block_q4_0), 1 },
	[KT_Q4_1] = { "q4_1", KT_QK, sizeof(struct kt_block_q4_1), 1 },
	[KT_Q5_0] = { "q5_0", KT_QK, sizeof(struct kt_block_q5_0), 1 },
	[KT_Q5_1] = { "q5_1", KT_QK, sizeof(struct kt_block_q5_1), 1 },
	[KT_Q8_0] = { "q8_0", KT_QK, sizeof(struct kt_block_q8_0), 1 },
	[KT_Q8_1] = { "q8_1", KT_QK, sizeof(struct kt_block_q8_1), 0 },
	[KT_Q4_K] = { "q4_K", KT_QK_K, sizeof(struct kt_block_q4_K), 1 },
	[KT_Q5_K] = { "q5_K", KT_QK_K, sizeof(struct kt_block_q5_K), 1 },
	[KT_Q6_K] = { "q6_K", KT_QK_K, sizeof(struct kt_block_q6_K), 1 },
	[KT_Q8_K] = { "q8_K", KT_QK_K, sizeof(struct kt_block_q8_K), 0 },
	[KT_BF16] = { "bf16", 1, 2, 1 },
};

static const struct type_info *info(uint32_t type)
{
	if (type >= KT_TYPE_MAX || !types[type].name)
		return NULL;
	return &types[type];
}

const char *kt_type_name(uint32_t type)
{
	const struct type_info *t = info(type);
	return t ? t->name : NULL;
}

int kt_type_supported(uint32_t type)
{
	const struct type_info *t = info(type);
	return t && t->weight;
}

int64_t kt_block_elems(enum kt_type type)
{
	const struct type_info *t = info(type);
	return t ? t->blck : 0;
}

size_t kt_block_bytes(enum kt_type type)
{
	const struct type_info *t = info(type);
	return t ? t->bytes : 0;
}

size_t kt_row_bytes(enum kt_type type, int64_t n)
{
	const struct type_info *t = info(type);
	if (!t || n < 0)
		return 0;
	return (size_t)(n / t->blck) * t->bytes;
}

enum kt_type kt_dot_type(enum kt_type w)
{
	switch (w) {
	case KT_Q4_0:
	case KT_Q5_0:
	case KT_Q8_0:
		return KT_Q8_0;
	case KT_Q4_1:
	case KT_Q5_1:
		return KT_Q8_1;
	case KT_Q4_K:
	case KT_Q5_K:
	case KT_Q6_K:
		return KT_Q8_K;
	case KT_F32:
	case KT_F16:
	case KT_BF16:
		return KT_F32;
	default:
		/* not a weight type: no dot product */
		return KT_TYPE_MAX;
	}
}

/* ---- float types ------------------------------------------------------- */

static void dequant_f32(const void *src, float *dst, int64_t n)
{
	memcpy(dst, src, (size_t)n * sizeof(float));
}

static void quant_f32(const float *src, void *dst, int64_t n)
{
	memcpy(dst, src, (size_t)n * sizeof(float));
}

static float dot_f32(const void *w, const void *x, int64_t n)
{
	const float *a = w, *b = x;
	float s = 0;
	for (int64_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

static void dequant_f16(const void *src, float *dst, int64_t n)
{
	const uint16_t *h = src;
	for (int64_t i = 0; i < n; i++)
		dst[i] = kt_fp16_to_fp32(h[i]);
}

static void quant_f16(const float *src, void *dst, int64_t n)
{
	uint16_t *h = dst;
	for (int64_t i = 0; i < n; i++)
		h[i] = kt_fp32_to_fp16(src[i]);
}

static float dot_f16(const void *w, const void *x, int64_t n)
{
	const uint16_t *a = w;
	const float *b = x;
	float s = 0;
	for (int64_t i = 0; i < n; i++)
		s += kt_fp16_to_fp32(a[i]) * b[i];
	return s;
}

static void dequant_bf16(const void *src, float *dst, int64_t n)
{
	const uint16_t *h = src;
	for (int64_t i = 0; i < n; i++)
		dst[i] = kt_bf16_to_fp32(h[i]);
}

static void quant_bf16(const float *src, void *dst, int64_t n)
{
	uint16_t *h = dst;
	for (int64_t i = 0; i < n; i++)
		h[i] = kt_fp32_to_bf16(src[i]);
}

static float dot_bf16(const void *w, const void *x, int64_t n)
{
	const uint16_t *a = w;
	const float *b = x;
	float s = 0;
	for (int64_t i = 0; i < n; i++)
		s += kt_bf16_to_fp32(a[i]) * b[i];
	return s;
}

/* ---- legacy quants (blocks of 32) -------------------------------------- */

/* The signed value of largest magnitude in x[0..n) (the first one on ties). */
static float signed_absmax(const float *x, int n)
{
	float amax = 0, max = 0;
	for (int j = 0; j < n; j++) {
		if (amax < fabsf(x[j])) {
			amax = fabsf(x[j]);
			max = x[j];
		}
	}
	return max;
}

static void minmax(const float *x, int n, float *mn, float *mx)
{
	float lo = x[0], hi = x[0];
	for (int j = 1; j < n; j++) {
		if (x[j] < lo)
			lo = x[j];
		if (x[j] > hi)
			hi = x[j];
	}
	*mn = lo;
	*mx = hi;
}

static void dequant_q4_0(const void *src, float *dst, int64_t n)
{
	const struct kt_block_q4_0 *b = src;
	for (int64_t i = 0; i < n / KT_QK; i++, dst += KT_QK) {
		const float d = kt_fp16_to_fp32(b[i].d);
		for (int j = 0; j < KT_QK / 2; j++) {
			dst[j] = (float)((b[i].qs[j] & 0xf) - 8) * d;
			dst[j + 16] = (float)((b[i].qs[j] >> 4) - 8) * d;
		}
	}
}

static void quant_q4_0(const float *src, void *dst, int64_t n)
{
	struct kt_block_q4_0 *b = dst;
	for (int64_t i = 0; i < n / KT_QK; i++, src += KT_QK) {
		const float d = signed_absmax(src, KT_QK) / -8;
		const float id = d ? 1.0f / d : 0.0f;
		b[i].d = kt_fp32_to_fp16(d);
		for (int j = 0; j < KT_QK / 2; j++) {
			int q0 = (int)(src[j] * id + 8.5f);
			int q1 = (int)(src[j + 16] * id + 8.5f);
			q0 = q0 > 15 ? 15 : q0;
			q1 = q1 > 15 ? 15 : q1;
			b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
		}
	}
}

static float dot_q4_0(const void *vw, const void *vx, int64_t n)
{
	const struct kt_block_q4_0 *w = vw;
	const struct kt_block_q8_0 *x = vx;
	float s = 0;
	for (int64_t i = 0; i < n / KT_QK; i++) {
		int sumi = 0;
		for (int j = 0; j < KT_QK / 2; j++) {
			sumi += ((w[i].qs[j] & 0xf) - 8) * x[i].qs[j];
			sumi += ((w[i].qs[j] >> 4) - 8) * x[i].qs[j + 16];
		}
		s += (float)sumi * (kt_fp16_to_fp32(w[i].d) * kt_fp16_to_fp32(x[i].d));
	}
	return s;
}

static void dequant_q4_1(const void *src, float *dst, int64_t n)
{
	const struct kt_block_q4_1 *b = src;
	for (int64_t i = 0; i < n / KT_QK; i++, dst += KT_QK) {
		const float d = kt_fp16_to_fp32(b[i].d);
		const float m = kt_fp16_to_fp32(b[i].m);
		for (int j = 0; j < KT_QK / 2; j++) {
			dst[j] = (float)(b[i].qs[j] & 0xf) * d + m;
			dst[j + 16] = (float)(b[i].qs[j] >> 4) * d + m;
		}
	}
}

static void quant_q4_1(const float *src, void *dst, int64_t n)
{
	struct kt_block_q4_1 *b = dst;
	for (int64_t i = 0; i < n / KT_QK; i++, src += KT_QK) {
		float mn, mx;
		minmax(src, KT_QK, &mn, &mx);
		const float d = (mx - mn) / 15;
		const float id = d ? 1.0f / d : 0.0f;
		b[i].d = kt_fp32_to_fp16(d);
		b[i].m = kt_fp32_to_fp16(mn);
		for (int j = 0; j < KT_QK / 2; j++) {
			int q0 = (int)((src[j] - mn) * id + 0.5f);
			int q1 = (int)((src[j + 16] - mn) * id + 0.5f);
			q0 = q0 > 15 ? 15 : q0;
			q1 = q1 > 15 ? 15 : q1;
			b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
		}
	}
}

static float dot_q4_1(const void *vw, const void *vx, int64_t n)
{
	const struct kt_block_q4_1 *w = vw;
	const struct kt_block_q8_1 *x = vx;
	float s = 0;
	for (int64_t i = 0; i < n / KT_QK; i++) {
		int sumi = 0;
		for (int j = 0; j < KT_QK / 2; j++) {
			sumi += (w[i].qs[j] & 0xf) * x[i].qs[j];
			sumi += (w[i].qs[j] >> 4) * x[i].qs[j + 16];
		}
		s += (float)sumi * (kt_fp16_to_fp32(w[i].d) * kt_fp16_to_fp32(x[i].d)) +
		     kt_fp16_to_fp32(w[i].m) * kt_fp16_to_fp32(x[i].s);
	}
	return s;
}

static uint32_t load_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void store_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* The 5-bit values of a q5 block: nibble plus bit j of qh as bit 4. */
static void q5_values(const uint8_t *qs, const uint8_t *qh, int *q)
{
	const uint32_t h = load_u32(qh);
	for (int j = 0; j < KT_QK / 2; j++) {
		q[j] = (qs[j] & 0xf) | (int)((h >> j) & 1) << 4;
		q[j + 16] = (qs[j] >> 4) | (int)((h >> (j + 16)) & 1) << 4;
	}
}

static void q5_pack(const int *q, uint8_t *qs, uint8_t *qh)
{
	uint32_t h = 0;
	for (int j = 0; j < KT_QK / 2; j++) {
		qs[j] = (uint8_t)((q[j] & 0xf) | (q[j + 16] & 0xf) << 4);
		h |= (uint32_t)((q[j] >> 4) & 1) << j;
		h |= (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
	}
	store_u32(qh, h);
}

static void dequant_q5_0(const void *src, float *dst, int64_t n)
{
	const struct kt_block_q5_0 *b = src;
	int q[KT_QK];
	for (int64_t i = 0; i < n / KT_QK; i++, dst += KT_QK) {
		const float d = kt_fp16_to_fp32(b[i].d);
		q5_values(b[i].qs, b[i].qh, q);
		for (int j = 0; j < KT_QK; j++)
			dst[j] = (float)(q[j] - 16) * d;
	}
}

static void quant_q5_0(const float *src, void *dst, int64_t n)
{
	struct kt_block_q5_0 *b = dst;
	int q[KT_QK];
	for (int64_t i = 0; i < n / KT_QK; i++, src += KT_QK) {
		const float d = signed_absmax(src, KT_QK) / -16;
		const float id = d ? 1.0f / d : 0.0f;
		b[i].d = kt_fp32_to_fp16(d);
		for (int j = 0; j < KT_QK; j++) {
			int v = (int)(src[j] * id + 16.5f);
			q[j] = v > 31 ? 31 : v;
		}
		q5_pack(q, b[i].qs, b[i].qh);
	}
}

static float dot_q5_0(const void *vw, const void *vx, int64_t n)
{
	const struct kt_block_q5_0 *w = vw;
	const struct kt_block_q8_0 *x = vx;
	int q[KT_QK];
	float s = 0;
	for (int64_t i = 0; i < n / KT_QK; i++) {
		int sumi = 0;
		q5_values(w[i].qs, w[i].qh, q);
		for (int j = 0; j < KT_QK; j++)
			sumi += (q[j] - 16) * x[i].qs[j];
		s += (float)sumi * (kt_fp16_to_fp32(w[i].d) * kt_fp16_to_fp32(x[i].d));
	}
	return s;
}

static void dequant_q5_1(const void *src, float *dst, int64_t n)
{
	const struct kt_block_q5_1 *b = src;
	int q[KT_QK];
	for (int64_t i = 0; i < n / KT_QK; i++, dst += KT_QK) {
		const float d = kt_fp16_to_fp32(b[i].d);
		const float m = kt_fp16_to_fp32(b[i].m);
		q5_values(b[i].qs, b[i].qh, q);
		for (int j = 0; j < KT_QK; j++)
			dst[j] = (float)q[j] * d + m;
	}
}

static void quant_q5_1(const float *src, void *dst, int64_t n)
{
	struct kt_block_q5_1 *b = dst;
	int q[KT_QK];
	for (int64_t i = 0; i < n / KT_QK; i++, src += KT_QK) {
		float mn, mx;
		minmax(src, KT_QK, &mn, &mx);
		const float d = (mx - mn) / 31;
		const float id = d ? 1.0f / d : 0.0f;
		b[i].d = kt_fp32_to_fp16(d);
		b[i].m = kt_fp32_to_fp16(mn);
		for (int j = 0; j < KT_QK; j++) {
			int v = (int)((src[j] - mn) * id + 0.5f);
			q[j] = v > 31 ? 31 : v;
		}
		q5_pack(q, b[i].qs, b[i].qh);
	}
}

static float dot_q5_1(const void *vw, const void *vx, int64_t n)
{
	const struct kt_block_q5_1 *w = vw;
	const struct kt_block_q8_1 *x = vx;
	int q[KT_QK];
	float s = 0;
	for (int64_t i = 0; i < n / KT_QK; i++) {
		int sumi = 0;
		q5_values(w[i].qs, w[i].qh, q);
		for (int j = 0; j < KT_QK; j++)
			sumi += q[j] * x[i].qs[j];
		s += (float)sumi * (kt_fp16_to_fp32(w[i].d) * kt_fp16_to_fp32(x[i].d)) +
		     kt_fp16_to_fp32(w[i].m) * kt_fp16_to_fp32(x[i].s);
	}
	return s;
}

static void dequant_q8_0(const void *src, float *dst, int64_t n)
{
	const struct kt_block_q8_0 *b = src;
	for (int64_t i = 0; i < n / KT_QK; i++, dst += KT_QK) {
		const float d = kt_fp16_to_fp32(b[i].d);
		for (int j = 0; j < KT_QK; j++)
			dst[j] = (float)b[i].qs[j] * d;
	}
}

/* Shared by q8_0 and q8_1: d = amax/127, q = nearest_even(x/d). Returns
 * the sum of the quants; *d_out gets d before rounding to f16. */
static int quant_q8_block(const float *x, int8_t *qs, uint16_t *dh, float *d_out)
{
	float amax = 0;
	for (int j = 0; j < KT_QK; j++)
		amax = fmaxf(amax, fabsf(x[j]));
	const float d = amax / 127;
	const float id = d ? 1.0f / d : 0.0f;
	int sum = 0;
	for (int j = 0; j < KT_QK; j++) {
		qs[j] = (int8_t)kt_nearest_int(x[j] * id);
		sum += qs[j];
	}
	*dh = kt_fp32_to_fp16(d);
	*d_out = d;
	return sum;
}

static void quant_q8_0(const float *src, void *dst, int64_t n)
{
	struct kt_block_q8_0 *b = dst;
	float d;
	for (int64_t i = 0; i < n / KT_QK; i++, src += KT_QK)
		quant_q8_block(src, b[i].qs, &b[i].d, &d);
}

static float dot_q8_0(const void *vw, const void *vx, int64_t n)
{
	const struct kt_block_q8_0 *w = vw;
	const struct kt_block_q8_0 *x = vx;
	float s = 0;
	for (int64_t i = 0; i < n / KT_QK; i++) {
		int sumi = 0;
		for (int j = 0; j < KT_QK; j++)
			sumi += w[i].qs[j] * x[i].qs[j];
		s += (float)sumi * (kt_fp16_to_fp32(w[i].d) * kt_fp16_to_fp32(x[i].d));
	}
	return s;
}

static void dequant_q8_1(const void *src, float *dst, int64_t n)
{
	const struct kt_block_q8_1 *b = src;
	for (int64_t i = 0; i < n / KT_QK; i++, dst += KT_QK) {
		const float d = kt_fp16_to_fp32(b[i].d);
		for (int j = 0; j < KT_QK; j++)
			dst[j] = (float)b[i].qs[j] * d;
	}
}

static void quant_q8_1(const float *src, void *dst, int64_t n)
{
	struct kt_block_q8_1 *b = dst;
	float d;
	for (int64_t i = 0; i < n / KT_QK; i++, src += KT_QK) {
		int sum = quant_q8_block(src, b[i].qs, &b[i].d, &d);
		b[i].s = kt_fp32_to_fp16((float)sum * d);
	}
}

/* ---- K-quants (super-blocks of 256) ------------------------------------ */

static void dequant_q4_K(const void *src, float *dst, int64_t n)
{
	const struct kt_block_q4_K *b = src;
	for (int64_t i = 0; i < n / KT_QK_K; i++) {
		const float d = kt_fp16_to_fp32(b[i].d);
		const float dmin = kt_fp16_to_fp32(b[i].dmin);
		const uint8_t *q = b[i].qs;
		for (int g = 0; g < 4; g++, q += 32) {
			uint8_t sc, m;
			kt_scale_min_k4(2 * g, b[i].scales, &sc, &m);
			const float d1 = d * sc, m1 = dmin * m;
			kt_scale_min_k4(2 * g + 1, b[i].scales, &sc, &m);
			const float d2 = d * sc, m2 = dmin * m;
			for (int l = 0; l < 32; l++)
				*dst++ = d1 * (float)(q[l] & 0xf) - m1;
			for (int l = 0; l < 32; l++)
				*dst++ = d2 * (float)(q[l] >> 4) - m2;
		}
	}
}

static void pack_scale_min_k4(uint8_t *scales, const uint8_t *ls, const uint8_t *lm)
{
	memset(scales, 0, 12);
	for (int j = 0; j < 8; j++) {
		if (j < 4) {
			scales[j] = ls[j];
			scales[j + 4] = lm[j];
		} else {
			scales[j + 4] = (uint8_t)((ls[j] & 0xf) | (lm[j] & 0xf) << 4);
			scales[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
			scales[j] |= (uint8_t)((lm[j] >> 4) << 6);
		}
	}
}

/* Round-to-nearest K-quant with mins (q4_K, q5_K): per sub-block of 32,
 * x ~ s*q - m with s = (max - min)/nmax, m = -min (min clamped to <= 0);
 * s and m are then quantised to 6 bits against the block's largest, and
 * the quants recomputed with the rounded scales. L gets values 0..nmax. */
static void quant_k_mins(const float *x, int nmax, uint16_t *dh, uint16_t *dminh,
			 uint8_t *scales, uint8_t *L)
{
	float sc[8], mn[8], max_sc = 0, max_mn = 0;
	uint8_t ls[8], lm[8];

	for (int j = 0; j < 8; j++) {
		float lo, hi;
		minmax(x + 32 * j, 32, &lo, &hi);
		if (lo > 0)
			lo = 0;
		sc[j] = (hi - lo) / nmax;
		mn[j] = -lo;
		max_sc = fmaxf(max_sc, sc[j]);
		max_mn = fmaxf(max_mn, mn[j]);
	}
	const float inv_sc = max_sc > 0 ? 63.f / max_sc : 0.f;
	const float inv_mn = max_mn > 0 ? 63.f / max_mn : 0.f;
	for (int j = 0; j < 8; j++) {
		int a = kt_nearest_int(inv_sc * sc[j]), b = kt_nearest_int(inv_mn * mn[j]);
		ls[j] = (uint8_t)(a > 63 ? 63 : a);
		lm[j] = (uint8_t)(b > 63 ? 63 : b);
	}
	pack_scale_min_k4(scales, ls, lm);
	*dh = kt_fp32_to_fp16(max_sc / 63.f);
	*dminh = kt_fp32_to_fp16(max_mn / 63.f);

	const float d = kt_fp16_to_fp32(*dh), dmin = kt_fp16_to_fp32(*dminh);
	for (int j = 0; j < 8; j++) {
		uint8_t s, m;
		kt_scale_min_k4(j, scales, &s, &m);
		const float ds = d * s, dm = dmin * m;
		for (int l = 0; l < 32; l++) {
			int q = ds ? kt_nearest_int((x[32 * j + l] + dm) / ds) : 0;
			L[32 * j + l] = (uint8_t)(q < 0 ? 0 : q > nmax ? nmax : q);
		}
	}
}

static void quant_q4_K(const float *src, void *dst, int64_t n)
{
	struct kt_block_q4_K *b = dst;
	uint8_t L[KT_QK_K];
	for (int64_t i = 0; i < n / KT_QK_K; i++, src += KT_QK_K) {
		quant_k_mins(src, 15, &b[i].d, &b[i].dmin, b[i].scales, L);
		for (int g = 0; g < 4; g++)
			for (int l = 0; l < 32; l++)
				b[i].qs[32 * g + l] =
					(uint8_t)(L[64 * g + l] | L[64 * g + 32 + l] << 4);
	}
}

static float dot_q4_K(const void *vw, const void *vx, int64_t n)
{
	const struct kt_block_q4_K *w = vw;
	const struct kt_block_q8_K *x = vx;
	float s = 0;
	for (int64_t i = 0; i < n / KT_QK_K; i++) {
		const uint8_t *q = w[i].qs;
		const int8_t *y = x[i].qs;
		int sumi = 0, summ = 0;
		for (int j = 0; j < 8; j++) {
			uint8_t sc, m;
			kt_scale_min_k4(j, w[i].scales, &sc, &m);
			const int shift = (j & 1) * 4;
			int qs = 0;
			for (int l = 0; l < 32; l++)
				qs += ((q[32 * (j / 2) + l] >> shift) & 0xf) * y[32 * j + l];
			sumi += sc * qs;
			summ += m * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
		}
		s += x[i].d * kt_fp16_to_fp32(w[i].d) * (float)sumi -
		     x[i].d * kt_fp16_to_fp32(w[i].dmin) * (float)summ;
	}
	return s;
}

static void dequant_q5_K(const void *src, float *dst, int64_t n)
{
	const struct kt_block_q5_K *b = src;
	for (int64_t i = 0; i < n / KT_QK_K; i++) {
		const float d = kt_fp16_to_fp32(b[i].d);
		const float dmin = kt_fp16_to_fp32(b[i].dmin);
		const uint8_t *ql = b[i].qs, *qh = b[i].qh;
		for (int g = 0; g < 4; g++, ql += 32) {
			uint8_t sc, m;
			const uint8_t u1 = (uint8_t)(1 << (2 * g)), u2 = (uint8_t)(2 << (2 * g));
			kt_scale_min_k4(2 * g, b[i].scales, &sc, &m);
			const float d1 = d * sc, m1 = dmin * m;
			kt_scale_min_k4(2 * g + 1, b[i].scales, &sc, &m);
			const float d2 = d * sc, m2 = dmin * m;
			for (int l = 0; l < 32; l++)
				*dst++ = d1 * (float)((ql[l] & 0xf) + (qh[l] & u1 ? 16 : 0)) - m1;
			for (int l = 0; l < 32; l++)
				*dst++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
		}
	}
}

static void quant_q5_K(const float *src, void *dst, int64_t n)
{
	struct kt_block_q5_K *b = dst;
	uint8_t L[KT_QK_K];
	for (int64_t i = 0; i < n / KT_QK_K; i++, src += KT_QK_K) {
		quant_k_mins(src, 31, &b[i].d, &b[i].dmin, b[i].scales, L);
		memset(b[i].qh, 0, sizeof(b[i].qh));
		for (int g = 0; g < 4; g++) {
			for (int l = 0; l < 32; l++) {
				const int q1 = L[64 * g + l], q2 = L[64 * g + 32 + l];
				b[i].qs[32 * g + l] = (uint8_t)((q1 & 0xf) | (q2 & 0xf) << 4);
				b[i].qh[l] |= (uint8_t)(((q1 >> 4) << (2 * g)) |
							((q2 >> 4) << (2 * g + 1)));
			}
		}
	}
}

static float dot_q5_K(const void *vw, const void *vx, int64_t n)
{
	const struct kt_block_q5_K *w = vw;
	const struct kt_block_q8_K *x = vx;
	float s = 0;
	for (int64_t i = 0; i < n / KT_QK_K; i++) {
		const int8_t *y = x[i].qs;
		int sumi = 0, summ = 0;
		for (int j = 0; j < 8; j++) {
			uint8_t sc, m;
			kt_scale_min_k4(j, w[i].scales, &sc, &m);
			const int shift = (j & 1) * 4;
			int qs = 0;
			for (int l = 0; l < 32; l++) {
				int q = (w[i].qs[32 * (j / 2) + l] >> shift) & 0xf;
				q |= ((w[i].qh[l] >> j) & 1) << 4;
				qs += q * y[32 * j + l];
			}
			sumi += sc * qs;
			summ += m * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
		}
		s += x[i].d * kt_fp16_to_fp32(w[i].d) * (float)sumi -
		     x[i].d * kt_fp16_to_fp32(w[i].dmin) * (float)summ;
	}
	return s;
}

/* The 6-bit value (0..63, 32 meaning zero) of element e of a q6_K block:
 * within each half of 128, element l + 32k (l < 32) takes the low nibble
 * (k even) or high nibble (k odd) of ql[l + 32*(k&1)] and bits 2k..2k+1 of
 * qh[l]. */
static inline int q6_value(const struct kt_block_q6_K *b, int e)
{
	const int half = e / 128, r = e % 128, k = r / 32, l = r % 32;
	const uint8_t lo = b->ql[64 * half + l + 32 * (k & 1)];
	const int nib = (k & 2) ? lo >> 4 : lo & 0xf;
	return nib | ((b->qh[32 * half + l] >> (2 * k)) & 3) << 4;
}

static void dequant_q6_K(const void *src, float *dst, int64_t n)
{
	const struct kt_block_q6_K *b = src;
	for (int64_t i = 0; i < n / KT_QK_K; i++, dst += KT_QK_K) {
		const float d = kt_fp16_to_fp32(b[i].d);
		for (int e = 0; e < KT_QK_K; e++)
			dst[e] = d * b[i].scales[e / 16] * (float)(q6_value(&b[i], e) - 32);
	}
}

static void quant_q6_K(const float *src, void *dst, int64_t n)
{
	struct kt_block_q6_K *b = dst;
	for (int64_t i = 0; i < n / KT_QK_K; i++, src += KT_QK_K) {
		float sc[16], max_sc = 0, amax_sc = 0;
		uint8_t L[KT_QK_K];

		/* per 16: s = the signed absmax / -32, so x/s lies in [-32, 32] */
		for (int j = 0; j < 16; j++) {
			sc[j] = signed_absmax(src + 16 * j, 16) / -32;
			if (fabsf(sc[j]) > amax_sc) {
				amax_sc = fabsf(sc[j]);
				max_sc = sc[j];
			}
		}
		memset(&b[i], 0, sizeof(b[i]));
		if (amax_sc == 0) {
			/* all zero: d = 0 decodes every quant to 0 */
			continue;
		}
		const float iscale = -128.f / max_sc;
		b[i].d = kt_fp32_to_fp16(1 / iscale);
		for (int j = 0; j < 16; j++) {
			int v = kt_nearest_int(iscale * sc[j]);
			b[i].scales[j] = (int8_t)(v > 127 ? 127 : v);
		}
		const float d = kt_fp16_to_fp32(b[i].d);
		for (int j = 0; j < 16; j++) {
			const float ds = d * b[i].scales[j];
			for (int l = 0; l < 16; l++) {
				int q = ds ? kt_nearest_int(src[16 * j + l] / ds) : 0;
				q = q < -32 ? -32 : q > 31 ? 31 : q;
				L[16 * j + l] = (uint8_t)(q + 32);
			}
		}
		for (int half = 0; half < 2; half++) {
			const uint8_t *Lh = L + 128 * half;
			uint8_t *ql = b[i].ql + 64 * half, *qh = b[i].qh + 32 * half;
			for (int l = 0; l < 32; l++) {
				ql[l] = (uint8_t)((Lh[l] & 0xf) | (Lh[l + 64] & 0xf) << 4);
				ql[l + 32] = (uint8_t)((Lh[l + 32] & 0xf) | (Lh[l + 96] & 0xf) << 4);
				qh[l] = (uint8_t)((Lh[l] >> 4) | (Lh[l + 32] >> 4) << 2 |
						  (Lh[l + 64] >> 4) << 4 | (Lh[l + 96] >> 4) << 6);
			}
		}
	}
}

static float dot_q6_K(const void *vw, const void *vx, int64_t n)
{
	const struct kt_block_q6_K *w = vw;
	const struct kt_block_q8_K *x = vx;
	float s = 0;
	for (int64_t i = 0; i < n / KT_QK_K; i++) {
		int sumi = 0;
		for (int j = 0; j < 16; j++) {
			int qs = 0;
			for (int l = 0; l < 16; l++) {
				const int e = 16 * j + l;
				qs += (q6_value(&w[i], e) - 32) * x[i].qs[e];
			}
			sumi += w[i].scales[j] * qs;
		}
		s += x[i].d * kt_fp16_to_fp32(w[i].d) * (float)sumi;
	}
	return s;
}

static void dequant_q8_K(const void *src, float *dst, int64_t n)
{
	const struct kt_block_q8_K *b = src;
	for (int64_t i = 0; i < n / KT_QK_K; i++)
		for (int j = 0; j < KT_QK_K; j++)
			*dst++ = b[i].d * (float)b[i].qs[j];
}

/* The scale is positive (127/amax): the sign ggml gives it only matters
 * for a -128 quant, which cannot occur here. */
static void quant_q8_K(const float *src, void *dst, int64_t n)
{
	struct kt_block_q8_K *b = dst;
	for (int64_t i = 0; i < n / KT_QK_K; i++, src += KT_QK_K) {
		float amax = 0;
		for (int j = 0; j < KT_QK_K; j++)
			amax = fmaxf(amax, fabsf(src[j]));
		if (amax == 0) {
			memset(&b[i], 0, sizeof(b[i]));
			continue;
		}
		const float iscale = 127.f / amax;
		for (int j = 0; j < KT_QK_K; j++) {
			int v = kt_nearest_int(iscale * src[j]);
			b[i].qs[j] = (int8_t)(v > 127 ? 127 : v);
		}
		for (int j = 0; j < KT_QK_K / 16; j++) {
			int sum = 0;
			for (int l = 0; l < 16; l++)
				sum += b[i].qs[16 * j + l];
			b[i].bsums[j] = (int16_t)sum;
		}
		b[i].d = 1 / iscale;
	}
}

/* ---- dispatch ---------------------------------------------------------- */

static const struct kt_type_fns scalar_fns[KT_TYPE_MAX] = {
	[KT_F32] = { dequant_f32, quant_f32, dot_f32 },
	[KT_F16] = { dequant_f16, quant_f16, dot_f16 },
	[KT_BF16] = { dequant_bf16, quant_bf16, dot_bf16 },
	[KT_Q4_0] = { dequant_q4_0, quant_q4_0, dot_q4_0 },
	[KT_Q4_1] = { dequant_q4_1, quant_q4_1, dot_q4_1 },
	[KT_Q5_0] = { dequant_q5_0, quant_q5_0, dot_q5_0 },
	[KT_Q5_1] = { dequant_q5_1, quant_q5_1, dot_q5_1 },
	[KT_Q8_0] = { dequant_q8_0, quant_q8_0, dot_q8_0 },
	[KT_Q8_1] = { dequant_q8_1, quant_q8_1, NULL },
	[KT_Q4_K] = { dequant_q4_K, quant_q4_K, dot_q4_K },
	[KT_Q5_K] = { dequant_q5_K, quant_q5_K, dot_q5_K },
	[KT_Q6_K] = { dequant_q6_K, quant_q6_K, dot_q6_K },
	[KT_Q8_K] = { dequant_q8_K, quant_q8_K, NULL },
};

static struct kt_type_fns avx2_fns[KT_TYPE_MAX], vnni_fns[KT_TYPE_MAX];
static pthread_once_t avx2_once = PTHREAD_ONCE_INIT;

static void avx2_init(void)
{
	for (int t = 0; t < KT_TYPE_MAX; t++) {
		avx2_fns[t] = scalar_fns[t];
		if (types[t].name && kt_cpu_has_avx2())
			kt_avx2_fill((enum kt_type)t, &avx2_fns[t]);
		vnni_fns[t] = avx2_fns[t];
		if (types[t].name && kt_cpu_has_vnni())
			kt_vnni_fill((enum kt_type)t, &vnni_fns[t]);
	}
}

const struct kt_type_fns *kt_type_fns(enum kt_isa isa, enum kt_type t)
{
	if (!info(t))
		return NULL;
	/* A request for an instruction set the CPU lacks gets the next one
	 * down rather than an illegal instruction. */
	if (isa == KT_ISA_AVX2 || isa == KT_ISA_AVX512VNNI) {
		pthread_once(&avx2_once, avx2_init);
		return isa == KT_ISA_AVX2 ? &avx2_fns[t] : &vnni_fns[t];
	}
	return &scalar_fns[t];
}

void kt_dequant_row_isa(enum kt_isa isa, enum kt_type type, const void *src,
			float *dst, int64_t n)
{
	const struct kt_type_fns *f = kt_type_fns(isa, type);
	if (f)
		f->dequant(src, dst, n);
}

void kt_dequant_row(enum kt_type type, const void *src, float *dst, int64_t n)
{
	kt_dequant_row_isa(kt_cpu_isa(), type, src, dst, n);
}

void kt_quantize_row_isa(enum kt_isa isa, enum kt_type type, const float *src,
			 void *dst, int64_t n)
{
	const struct kt_type_fns *f = kt_type_fns(isa, type);
	if (f)
		f->quant(src, dst, n);
}

void kt_quantize_row(enum kt_type type, const float *src, void *dst, int64_t n)
{
	kt_quantize_row_isa(kt_cpu_isa(), type, src, dst, n);
}

float kt_vec_dot_isa(enum kt_isa isa, enum kt_type w, const void *wrow,
		     const void *xq, int64_t n)
{
	const struct kt_type_fns *f = kt_type_fns(isa, w);
	if (!f || !f->dot)
		return NAN;
	return f->dot(wrow, xq, n);
}

float kt_vec_dot(enum kt_type w, const void *wrow, const void *xq, int64_t n)
{
	return kt_vec_dot_isa(kt_cpu_isa(), w, wrow, xq, n);
}
