/*
 * Private to kernels/cpu: the GGUF block layouts, half-precision
 * conversions, and the per-type function table through which quant.c,
 * quant_avx2.c and matmul.c meet.
 *
 * The structs below are byte for byte ggml's block_* types (ggml-common.h):
 * a GGUF tensor is an array of them, little-endian, with no padding. Every
 * f16 field is stored as raw IEEE binary16 bits (uint16_t).
 */
#ifndef SEEKFS_KERNELS_CPU_QUANT_H
#define SEEKFS_KERNELS_CPU_QUANT_H

#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h"

#define KT_QK 32   /* elements per block of the legacy quants */
#define KT_QK_K 256 /* elements per super-block of the K-quants */

struct kt_block_q4_0 { /* x = d * (q - 8) */
	uint16_t d;
	uint8_t qs[KT_QK / 2]; /* element j in the low nibble of qs[j], j+16 high */
};
struct kt_block_q4_1 { /* x = d * q + m */
	uint16_t d, m;
	uint8_t qs[KT_QK / 2];
};
struct kt_block_q5_0 { /* x = d * (q - 16), q = nibble | bit j of qh << 4 */
	uint16_t d;
	uint8_t qh[4]; /* little-endian u32: bit j is bit 4 of element j */
	uint8_t qs[KT_QK / 2];
};
struct kt_block_q5_1 { /* x = d * q + m */
	uint16_t d, m;
	uint8_t qh[4];
	uint8_t qs[KT_QK / 2];
};
struct kt_block_q8_0 { /* x = d * q */
	uint16_t d;
	int8_t qs[KT_QK];
};
struct kt_block_q8_1 { /* x = d * q; s = d * sum(q), read by the q4_1/q5_1 dots */
	uint16_t d, s;
	int8_t qs[KT_QK];
};
/* K-quants: 8 sub-blocks of 32; 6-bit scale and min per sub-block packed in
 * 12 bytes (see kt_scale_min_k4); x = d * sc * q - dmin * m. */
struct kt_block_q4_K {
	uint16_t d, dmin;
	uint8_t scales[12];
	uint8_t qs[KT_QK_K / 2]; /* 64-element groups: 32 low nibbles, 32 high */
};
struct kt_block_q5_K {
	uint16_t d, dmin;
	uint8_t scales[12];
	uint8_t qh[KT_QK_K / 8]; /* bit 2g (low half) / 2g+1 (high half) of group g */
	uint8_t qs[KT_QK_K / 2];
};
/* 16 sub-blocks of 16; x = d * scales[i] * (q - 32), q 6 bits: low 4 in ql,
 * high 2 in qh. */
struct kt_block_q6_K {
	uint8_t ql[KT_QK_K / 2];
	uint8_t qh[KT_QK_K / 4];
	int8_t scales[KT_QK_K / 16];
	uint16_t d;
};
/* Activations for the K-quant dots: float scale, bsums[i] = sum of qs over
 * elements 16i..16i+15. */
struct kt_block_q8_K {
	float d;
	int8_t qs[KT_QK_K];
	int16_t bsums[KT_QK_K / 16];
};

/* Packed blocks (pack.c): one block column of KT_PACK_ROWS = 8 rows, the
 * same bytes as the 8 row blocks, rearranged. In each 32-byte vector, bytes
 * 4r..4r+3 belong to row r and hold 4 consecutive elements (a "group"), so
 * that one u8 x s8 dot of 4 against the broadcast activation group gives
 * row r's partial sum in lane r. */
struct kt_pblock_q4_0 { /* qs[32v + 4r + b]: low nibble element 4v+b, high 16+4v+b */
	uint16_t d[8];
	uint8_t qs[128];
};
struct kt_pblock_q4_1 { /* qs as q4_0 */
	uint16_t d[8], m[8];
	uint8_t qs[128];
};
struct kt_pblock_q5_0 { /* qs as q4_0; bit 4r+b of qh[u]: bit 4 of element 4u+b */
	uint16_t d[8];
	uint32_t qh[8];
	uint8_t qs[128];
};
struct kt_pblock_q8_0 { /* qs[32u + 4r + b]: element 4u+b */
	uint16_t d[8];
	int8_t qs[256];
};
struct kt_pblock_q4_K { /* qs[256c + 32v + 4r + b]: low nibble element
			 * 64c+4v+b, high 64c+32+4v+b (sub-blocks 2c, 2c+1) */
	uint16_t d[8], dmin[8];
	uint8_t sc[8][8], m[8][8]; /* [sub-block][row], unpacked to bytes */
	uint8_t qs[1024];
};
struct kt_pblock_q6_K { /* ql[512h + 32v + 4r + b]: low nibble element
			 * 128h+4v+b, high 128h+64+4v+b; qh[256h + 32w + 4r + b]:
			 * bits 2q..2q+1 are the top bits of element 128h+32q+4w+b */
	uint16_t d[8];
	int8_t sc[16][8]; /* [sub-block of 16][row] */
	uint8_t ql[1024];
	uint8_t qh[512];
};
_Static_assert(sizeof(struct kt_pblock_q4_0) == 8 * 18, "packed q4_0");
_Static_assert(sizeof(struct kt_pblock_q4_1) == 8 * 20, "packed q4_1");
_Static_assert(sizeof(struct kt_pblock_q5_0) == 8 * 22, "packed q5_0");
_Static_assert(sizeof(struct kt_pblock_q8_0) == 8 * 34, "packed q8_0");
_Static_assert(sizeof(struct kt_pblock_q4_K) == 8 * 144 + 32, "packed q4_K");
_Static_assert(sizeof(struct kt_pblock_q6_K) == 8 * 210, "packed q6_K");

_Static_assert(sizeof(struct kt_block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(struct kt_block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(struct kt_block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(struct kt_block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(struct kt_block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(struct kt_block_q8_1) == 36, "q8_1 layout");
_Static_assert(sizeof(struct kt_block_q4_K) == 144, "q4_K layout");
_Static_assert(sizeof(struct kt_block_q5_K) == 176, "q5_K layout");
_Static_assert(sizeof(struct kt_block_q6_K) == 210, "q6_K layout");
_Static_assert(sizeof(struct kt_block_q8_K) == 292, "q8_K layout");

/* ---- half precision, portable ----------------------------------------- */

static inline uint32_t kt_f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return u;
}

static inline float kt_bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

static inline float kt_fp16_to_fp32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;

	if (e == 0x1f) /* inf, or NaN made quiet as F16C does */
		return kt_bits_f32(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0));
	if (e)
		return kt_bits_f32(sign | ((e + 112) << 23) | (m << 13));
	/* zero or subnormal: m * 2^-24 is exact in float */
	float v = (float)m * 0x1p-24f;
	return sign ? -v : v;
}

/* Round to nearest even, like F16C's vcvtps2ph with imm 0: overflow gives
 * infinity, NaN stays a (quiet) NaN, subnormals are kept. */
static inline uint16_t kt_fp32_to_fp16(float f)
{
	uint32_t x = kt_f32_bits(f);
	uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
	uint32_t ax = x & 0x7fffffffu;

	if (ax > 0x7f800000u)
		return sign | 0x7e00 | (uint16_t)((ax >> 13) & 0x3ff);
	if (ax >= 0x477ff000u) /* 65520 and above round to infinity */
		return sign | 0x7c00;
	if (ax >= 0x38800000u) { /* normal half */
		uint32_t r = ax - 0x38000000u; /* rebias exponent by 127 - 15 */
		r += 0xfff + ((r >> 13) & 1);
		return sign | (uint16_t)(r >> 13);
	}
	/* Below 2^-14: adding 0.5 puts the value's 2^-24 units in the low
	 * mantissa bits of the sum, rounded to nearest even by the FPU. */
	float s = kt_bits_f32(ax) + 0.5f;
	return sign | (uint16_t)(kt_f32_bits(s) - 0x3f000000u);
}

static inline float kt_bf16_to_fp32(uint16_t h)
{
	return kt_bits_f32((uint32_t)h << 16);
}

/* Round to nearest even; NaN stays NaN (as ggml_compute_fp32_to_bf16). */
static inline uint16_t kt_fp32_to_bf16(float f)
{
	uint32_t u = kt_f32_bits(f);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 64);
	return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

/* The 6-bit scale and min of sub-block j (0..7) of a q4_K/q5_K block, as
 * ggml's get_scale_min_k4: bytes 0-3 hold scales 0-3 (low 6 bits), bytes
 * 4-7 mins 0-3; bytes 8-11 hold the low nibbles of scales 4-7 (low half)
 * and mins 4-7 (high half), whose top 2 bits sit in bits 6-7 of bytes 0-7. */
static inline void kt_scale_min_k4(int j, const uint8_t *q, uint8_t *sc,
				   uint8_t *m)
{
	if (j < 4) {
		*sc = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*sc = (uint8_t)((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
		*m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
	}
}

/* Round to nearest, ties to even (the default MXCSR mode, so the same as
 * _mm256_cvtps_epi32). |f| must be below 2^22. */
static inline int kt_nearest_int(float f)
{
	float v = f + 12582912.f; /* 1.5 * 2^23: the integer lands in the mantissa */
	return (int)(kt_f32_bits(v) & 0x007fffff) - 0x00400000;
}

/* ---- per-type entry points -------------------------------------------- */

typedef void (*kt_dequant_fn)(const void *src, float *dst, int64_t n);
typedef void (*kt_quant_fn)(const float *src, void *dst, int64_t n);
/* w: a weight row; x: activations in kt_dot_type(w); n elements. */
typedef float (*kt_dot_fn)(const void *w, const void *x, int64_t n);

struct kt_type_fns {
	kt_dequant_fn dequant;
	kt_quant_fn quant;
	kt_dot_fn dot;
};

/* The functions of type t for isa, never NULL for a supported type (an
 * ISA without its own version of a function gets the scalar one). NULL
 * for an unsupported type. */
const struct kt_type_fns *kt_type_fns(enum kt_isa isa, enum kt_type t);

/* 1 when the CPU runs the AVX2 paths (AVX2, FMA and F16C, with OS
 * support), whatever SEEKFS_ISA says. */
int kt_cpu_has_avx2(void);

/* Filled by quant_avx2.c: the AVX2 versions it has (NULL entries fall back
 * to scalar). Only called after kt_cpu_isa() reported AVX2. */
void kt_avx2_fill(enum kt_type t, struct kt_type_fns *fns);
/* quant_vnni.c: the same kernels built for AVX-512 VNNI. */
void kt_vnni_fill(enum kt_type t, struct kt_type_fns *fns);
int kt_cpu_has_vnni(void);
/* attn_avx2.c: attention of one head (kt_attn_head's contract); returns 0
 * without doing anything when the shape or type has no AVX2 path. */
int kt_attn_avx2(enum kt_type kvt, const void *k, const void *v, size_t stride,
		 const float *q, int n, int hd, float scale, float *scratch, float *out);
/* attn_avx2.c: kt_attn_group's contract; returns 0 without doing anything
 * when the shape or type has no AVX2 path. */
int kt_attn_group_avx2(enum kt_type kvt, const void *k, const void *v, size_t stride,
		       const float *q, int group, int n, int hd, float scale, float *scratch,
		       float *out);
/* attn_avx2.c: kt_attn_seq's contract; returns 0 without doing anything
 * when hd is not a multiple of 8. */
int kt_attn_seq_avx2(const float *q, const float *k, const float *v, size_t stride, int n,
		     int hd, float scale, float *scratch, float *out);

/* gemm_avx2.c: kt_matmul_ex for float weights (F32, F16, BF16) and nb >=
 * KT_GEMM_MIN_NB, one unit of the work: outputs [r0, r1) (at most
 * KT_GEMM_UNIT_ROWS of them) of tokens [b0, b1) (x and y as kt_matmul's). */
#define KT_GEMM_UNIT_ROWS 32
#define KT_GEMM_UNIT_TOKENS 192
void kt_gemm_avx2(const struct kt_mat *w, const float *x, float *y, int64_t r0,
		  int64_t r1, int64_t b0, int64_t b1, const float *bias, enum kt_act act);
/* Eight outputs y[0..8) of one packed group of rows (wg: its n / block
 * elements packed blocks) against activations xq in kt_dot_type(w), with
 * xsum the integer sum of each 32-element activation block's quants (read
 * by the types with an offset: q4_0, q5_0). */
typedef void (*kt_pdot_fn)(const void *wg, const void *xq, const int32_t *xsum, int64_t n,
			   float *y);
/* pack_avx2.c / pack_vnni.c: the packed kernel of type t, or NULL. */
kt_pdot_fn kt_pdot_avx2(enum kt_type t);
kt_pdot_fn kt_pdot_vnni(enum kt_type t);
/* pack.c: the packed kernel of type t for isa, NULL where there is none. */
kt_pdot_fn kt_pdot(enum kt_isa isa, enum kt_type t);
/* 1 when packed q4_0/q5_0 kernels need the activation block sums */
int kt_pdot_needs_xsum(enum kt_type t);

/* ops_avx2.c: kt_gelu with the vector erf of simd_avx2.h, kt_swiglu and
 * kt_geglu with its vector exp (gelu 0 or 1), kt_layernorm. */
void kt_gelu_avx2(float *x, int64_t n);
void kt_glu_avx2(float *gate, const float *up, int64_t n, int gelu);
void kt_layernorm_avx2(float *out, const float *x, const float *w, const float *b, int n,
		       float eps);

#endif
