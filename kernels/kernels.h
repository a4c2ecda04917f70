/*
 * kernels: the compute layer of seekfs.
 *
 * Everything that touches weights element by element lives here: the block
 * formats of GGUF tensor types (dequantisation, quantisation, dot products),
 * matrix products split over a thread pool, attention, and the small
 * per-token ops of a transformer (RMSNorm, LayerNorm, RoPE, softmax, SwiGLU,
 * GELU). The CPU implementation has a scalar reference for every op and
 * AVX2/FMA fast paths chosen at run time; the CUDA backend (kernels/cuda)
 * implements the same ops and is tested against the CPU.
 *
 * Conventions: a matrix is row-major, one row = kt_row_bytes(type, cols)
 * bytes; GGUF's ne[0] is the number of columns. Functions here never print
 * and never exit.
 */
#ifndef SEEKFS_KERNELS_H
#define SEEKFS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Tensor types, numbered as in GGUF (ggml_type). Only the listed ones are
 * supported; kt_type_supported() says which. */
enum kt_type {
	KT_F32 = 0,
	KT_F16 = 1,
	KT_Q4_0 = 2,
	KT_Q4_1 = 3,
	KT_Q5_0 = 6,
	KT_Q5_1 = 7,
	KT_Q8_0 = 8,
	KT_Q8_1 = 9,  /* activations only: dot partner of Q4_1/Q5_1 */
	KT_Q4_K = 12,
	KT_Q5_K = 13,
	KT_Q6_K = 14,
	KT_Q8_K = 15, /* activations only: dot partner of the K-quants */
	KT_BF16 = 30,
	KT_TYPE_MAX = 40,
};

/* Name as GGUF tools print it ("q4_K"), or NULL for an unknown number. */
const char *kt_type_name(uint32_t type);
/* 1 when tensors of this type can be loaded and multiplied. */
int kt_type_supported(uint32_t type);
/* Elements per block (1 for F32/F16/BF16, 32 or 256 for quantised). */
int64_t kt_block_elems(enum kt_type type);
/* Bytes per block. */
size_t kt_block_bytes(enum kt_type type);
/* Bytes of a row of n elements; n must be a multiple of kt_block_elems. */
size_t kt_row_bytes(enum kt_type type, int64_t n);
/* The type activations are quantised to before a dot product with a row of
 * weights of type w (KT_F32 for F32/F16/BF16 weights). */
enum kt_type kt_dot_type(enum kt_type w);

/* Instruction sets with an implementation. KT_ISA_SCALAR is the reference. */
enum kt_isa { KT_ISA_SCALAR = 0, KT_ISA_AVX2 = 1, KT_ISA_AVX512VNNI = 2 };
/* Best instruction set this CPU runs (detected once, thread-safe). The
 * environment variable SEEKFS_ISA=scalar forces the reference, =avx2 caps
 * it at AVX2. AVX512VNNI is the AVX2 code with AVX-512 VNNI dots. */
enum kt_isa kt_cpu_isa(void);
const char *kt_isa_name(enum kt_isa isa);

/* Dequantise n elements (a multiple of the block size) of src to floats. */
void kt_dequant_row(enum kt_type type, const void *src, float *dst, int64_t n);
void kt_dequant_row_isa(enum kt_isa isa, enum kt_type type, const void *src,
			float *dst, int64_t n);

/* Quantise n floats into type (any supported type, including the activation
 * types Q8_1 and Q8_K). Reference quality: round to nearest per block. */
void kt_quantize_row(enum kt_type type, const float *src, void *dst, int64_t n);
void kt_quantize_row_isa(enum kt_isa isa, enum kt_type type, const float *src,
			 void *dst, int64_t n);

/* Dot product of a weight row of type w with activations xq already in
 * kt_dot_type(w), both n elements long. */
float kt_vec_dot(enum kt_type w, const void *wrow, const void *xq, int64_t n);
float kt_vec_dot_isa(enum kt_isa isa, enum kt_type w, const void *wrow,
		     const void *xq, int64_t n);

/* ---- thread pool ------------------------------------------------------- */

struct kt_pool;
typedef void (*kt_task_fn)(void *ctx, int ith, int nth);
/* A pool of n_threads workers (the caller counts as one). NULL on failure
 * (errno set). n_threads <= 0 means one per online CPU. */
struct kt_pool *kt_pool_create(int n_threads);
void kt_pool_destroy(struct kt_pool *pool);
int kt_pool_threads(const struct kt_pool *pool);
/* Run fn(ctx, ith, nth) on every thread, ith = 0..nth-1, the caller being
 * thread 0; returns when all are done. pool may be NULL: runs fn(ctx, 0, 1).
 * Not reentrant: one kt_pool_run at a time per pool. */
void kt_pool_run(struct kt_pool *pool, kt_task_fn fn, void *ctx);

/* ---- matrix products --------------------------------------------------- */

struct kt_mat {
	enum kt_type type;
	int64_t rows, cols;
	const void *data; /* rows * kt_row_bytes(type, cols) bytes */
	/* NULL, or kt_mat_pack's copy of the rows in groups of 8, which
	 * kt_matmul then reads instead of data (data stays valid and is still
	 * what rows past the last whole group, and row lookups, read) */
	const void *packed;
};

/* The rows of w copied in groups of KT_PACK_ROWS, interleaved block by
 * block, so that the matrix-vector kernels of the vector ISAs compute
 * eight outputs at once: one broadcast of each activation group serves
 * eight rows and the scales of eight rows load as one vector (see
 * kernels/cpu/pack.c for the layouts). dst: kt_mat_packed_bytes(w) bytes,
 * 64-byte aligned, owned by the caller; w->packed points there on success.
 * Returns 0, or -ENOTSUP when this CPU or w's type or shape has no packed
 * kernels (w->packed stays NULL: the row kernels serve). Results through
 * the packed kernels equal the row kernels' up to the order of float
 * additions. */
#define KT_PACK_ROWS 8
int kt_mat_pack(struct kt_mat *w, void *dst);
/* Bytes kt_mat_pack needs for w (0: not packable, on this CPU or at all). */
size_t kt_mat_packed_bytes(const struct kt_mat *w);
/* Part of kt_mat_pack, for packing one matrix on several threads: the
 * groups [g0, g1) of rows (8 each) into their place in dst (the whole
 * matrix's kt_mat_packed_bytes); w->packed is left as it is (set it to dst
 * once every group is in). w must be packable (kt_mat_packed_bytes > 0). */
void kt_mat_pack_groups(const struct kt_mat *w, void *dst, int64_t g0, int64_t g1);
/* Rows [r0, r0 + 8) of w back from w->packed, in the original row format
 * (8 * kt_row_bytes(type, cols) bytes); r0 a multiple of 8 below the
 * packed rows. For checking the layouts. */
void kt_mat_unpack_group(const struct kt_mat *w, int64_t r0, void *rows);

/* Bytes of scratch kt_matmul needs for nb activation rows. */
size_t kt_matmul_work_bytes(const struct kt_mat *w, int nb);
/* y[b*w->rows + r] = sum_c W[r][c] * x[b*w->cols + c] for b < nb.
 * work: kt_matmul_work_bytes(w, nb) bytes owned by the caller. Rows of W
 * are split over the pool's threads; each row is read once for all nb.
 *
 * Each y is kt_vec_dot of the row and the (quantised) activations, bit for
 * bit, except for float weights (F32, F16, BF16) with nb >= KT_GEMM_MIN_NB
 * on AVX2: those go through a register-blocked GEMM whose sums run in
 * another order (one FMA chain per output over c = 0, 1, ...), equal to
 * the dot products up to float rounding; and for rows read from w->packed,
 * whose block sums are added in another order too. Within each path a y depends
 * only on its row and its activation row: not on the thread count or on
 * where in the batch the row is. */
void kt_matmul(struct kt_pool *pool, const struct kt_mat *w, const float *x,
	       int nb, float *y, void *work);
#define KT_GEMM_MIN_NB 4

/* What kt_matmul_ex applies to each output after the product. */
enum kt_act {
	KT_ACT_NONE = 0,
	KT_ACT_GELU = 1, /* the exact form, x/2 (1 + erf(x / sqrt 2)), as kt_gelu */
};
/* kt_matmul, then y = act(y + bias[r]) (bias may be NULL), fused into the
 * product where the GEMM runs. */
void kt_matmul_ex(struct kt_pool *pool, const struct kt_mat *w, const float *x,
		  int nb, float *y, void *work, const float *bias, enum kt_act act);

/* One product of a kt_matmul_n: mm.y = act(mm.w x + mm.bias). */
struct kt_mm {
	const struct kt_mat *w;
	float *y;
	const float *bias; /* NULL: none */
	enum kt_act act;
};
/* The n products mm[0..n) of the same activations x (nb rows; all the
 * matrices have the same cols), as n calls of kt_matmul_ex would give them
 * bit for bit, in one pass over the pool. work: kt_matmul_n_work_bytes. */
#define KT_MATMUL_MAX 4
void kt_matmul_n(struct kt_pool *pool, const struct kt_mm *mm, int n, const float *x, int nb,
		 void *work);
size_t kt_matmul_n_work_bytes(const struct kt_mm *mm, int n, int nb);

/* ---- transformer ops (CPU, float) -------------------------------------- */

/* out = x / rms(x) * w over n elements (w may be NULL: no scale). */
void kt_rmsnorm(float *out, const float *x, const float *w, int n, float eps);
/* out = (x - mean) / sd * w + b (w, b may be NULL); mean and variance are
 * summed in double. out may be x. */
void kt_layernorm(float *out, const float *x, const float *w, const float *b,
		  int n, float eps);
void kt_layernorm_isa(enum kt_isa isa, float *out, const float *x, const float *w,
		      const float *b, int n, float eps);
/* In-place softmax over n elements. */
void kt_softmax(float *x, int n);
/* gate[i] = silu(gate[i]) * up[i]. The scalar reference uses expf; AVX2
 * the polynomial exp of kt_exp8 (about 1 ulp), a decode step's largest
 * cost outside the matrix products otherwise. */
void kt_swiglu(float *gate, const float *up, int n);
void kt_swiglu_isa(enum kt_isa isa, float *gate, const float *up, int n);
/* gate[i] = gelu(gate[i]) * up[i] with GELU's tanh form (Gemma's
 * feed-forward): g/2 (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))), computed
 * as g / (1 + exp(-2 sqrt(2/pi) (...))); expf or kt_exp8, as kt_swiglu. */
void kt_geglu(float *gate, const float *up, int n);
void kt_geglu_isa(enum kt_isa isa, float *gate, const float *up, int n);
/* x[i] = x[i]/2 (1 + erf(x[i] / sqrt 2)), GELU as BERT models are trained
 * with. The scalar reference uses erff; AVX2 a rational approximation of
 * erf within 4e-7 of it. */
void kt_gelu(float *x, int64_t n);
void kt_gelu_isa(enum kt_isa isa, float *x, int64_t n);

enum kt_rope_mode { KT_ROPE_NORM = 0, KT_ROPE_NEOX = 2 };
/* Rotate n_heads heads of head_dim each in x (contiguous) for position pos.
 * NORM rotates pairs (2i, 2i+1); NEOX rotates (i, i + n_rot/2). Only the
 * first n_rot dims of each head rotate; theta_i = pos * base^(-2i/n_rot),
 * divided by freq_factors[i] when given (n_rot/2 values: Llama 3.1's
 * rope_freqs.weight), else NULL. */
void kt_rope(float *x, int n_heads, int head_dim, int n_rot, int pos,
	     float base, enum kt_rope_mode mode, const float *freq_factors);

/* Attention of one query head over n cached positions: out (hd floats) =
 * softmax(q . k_p * scale) . v_p over p < n. k and v point at the head's
 * first element of position 0; rows of consecutive positions are stride
 * bytes apart; elements are kvt (KT_F16 or KT_F32). With KT_F16 the query
 * and the softmax weights are rounded to F16 where they meet the cache (as
 * llama.cpp does). hd <= 512. scratch: n + hd floats owned by the caller. */
void kt_attn_head(enum kt_type kvt, const void *k, const void *v, size_t stride,
		  const float *q, int n, int hd, float scale, float *scratch, float *out);
void kt_attn_head_isa(enum kt_isa isa, enum kt_type kvt, const void *k,
		      const void *v, size_t stride, const float *q, int n, int hd,
		      float scale, float *scratch, float *out);

/* Attention of the group query heads that share one KV head (grouped-query
 * attention): q and out hold group heads of hd floats one after the other,
 * and head h's out is kt_attn_head_isa's for q + h*hd with the same isa,
 * bit for bit; k, v, stride, n, hd and scale as there. Each K and V row is
 * read and converted once per pass over up to three heads (AVX2) or once
 * for all of them (scalar) instead of once per head. scratch:
 * kt_attn_group_scratch(group, n, hd) floats owned by the caller. */
size_t kt_attn_group_scratch(int group, int n, int hd);
void kt_attn_group(enum kt_type kvt, const void *k, const void *v, size_t stride,
		   const float *q, int group, int n, int hd, float scale, float *scratch,
		   float *out);
void kt_attn_group_isa(enum kt_isa isa, enum kt_type kvt, const void *k, const void *v,
		       size_t stride, const float *q, int group, int n, int hd, float scale,
		       float *scratch, float *out);

/* Attention of one head over a whole sequence of n tokens, every token
 * seeing every other (an encoder's self-attention): out_i = softmax_j(q_i .
 * k_j * scale) . v_j for i < n. Row i of q, k, v and out is at + i*stride
 * floats (a head's slice of rows holding all heads); all F32; hd <= 512.
 * scratch: kt_attn_seq_scratch(n, hd) floats owned by the caller. The
 * scalar reference is kt_attn_head per row; AVX2 (hd a multiple of 8)
 * computes the scores and the weighted sums as small matrix products and
 * exp with a polynomial, equal up to float rounding. */
size_t kt_attn_seq_scratch(int n, int hd);
void kt_attn_seq(const float *q, const float *k, const float *v, size_t stride, int n,
		 int hd, float scale, float *scratch, float *out);
void kt_attn_seq_isa(enum kt_isa isa, const float *q, const float *k, const float *v,
		     size_t stride, int n, int hd, float scale, float *scratch, float *out);

/* ---- backends ---------------------------------------------------------- */

/* The table of compute backends compiled in. "cpu" is always there; "cuda"
 * when built with the CUDA toolkit. available() tells whether a device can
 * run it now (0/1), describe() fills a one-line description. */
struct kt_backend {
	const char *name;
	int (*available)(void);
	void (*describe)(char *buf, size_t n);
};
/* NULL-terminated list of compiled-in backends. */
const struct kt_backend *const *kt_backends(void);
const struct kt_backend *kt_backend_find(const char *name);

#ifdef SEEKFS_HAVE_CUDA
/* ---- CUDA backend (kernels/cuda; built when the toolkit is present) ---- */

/* 1 when at least one CUDA device can be used, 0 otherwise (no driver, no
 * device): never aborts. */
int kt_cuda_available(void);
void kt_cuda_describe(char *buf, size_t n);
/* RMSNorm of rows rows of n floats on the device: out = x / rms(x) * w.
 * Device pointers; runs on the default stream and waits for it. */
void kt_cuda_rmsnorm(float *out, const float *x, const float *w, int n,
		     int rows, float eps);
/* Device memory helpers for tests and the engine; abort on CUDA errors
 * naming the call, file and line. */
void *kt_cuda_malloc(size_t bytes);
void kt_cuda_free(void *p);
void kt_cuda_upload(void *dst, const void *src, size_t bytes);
void kt_cuda_download(void *dst, const void *src, size_t bytes);
#endif

#ifdef __cplusplus
}
#endif
#endif
