/*
 * y = W x for a quantised or float weight matrix W and nb activation rows.
 *
 * The activations are quantised once into kt_dot_type(W) (caller-owned
 * work buffer), then W's rows are handed out to the pool's threads in
 * chunks from a shared atomic counter, so a thread that starts late or
 * runs slower takes fewer chunks. For nb > 1 each chunk is walked in tiles
 * of rows small enough to stay in L2 while every activation row is run
 * against the whole tile: each weight row comes from memory once per call,
 * the activations are re-read from cache. Float weights (F32/F16/BF16) dot
 * against the float activations directly and need no work buffer.
 *
 * Float weights with nb >= KT_GEMM_MIN_NB on AVX2 take the GEMM of
 * gemm_avx2.c instead: for batches the arithmetic, not the weight traffic,
 * is what limits, and a dot product per (row, token) loads both operands
 * for every FMA where the GEMM's microkernel does 12 FMAs per 8 loads. The
 * work is cut into units of KT_GEMM_UNIT_ROWS outputs by
 * KT_GEMM_UNIT_TOKENS tokens, handed out from the same kind of counter.
 * The bias and activation of kt_matmul_ex are applied as outputs are
 * stored, in both paths.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "kernels/cpu/quant.h"

/* Activation rows in the work buffer start on cache-line boundaries. */
#define ROW_ALIGN 64
/* Bytes of weights per tile when nb > 1: well inside a 512 KiB-2 MiB L2
 * next to the activation row being streamed. */
#define TILE_BYTES (128 * 1024)

static size_t xq_stride(enum kt_type dt, int64_t cols)
{
	size_t b = kt_row_bytes(dt, cols);
	return (b + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
}

size_t kt_matmul_work_bytes(const struct kt_mat *w, int nb)
{
	enum kt_type dt = kt_dot_type(w->type);
	if (dt == KT_F32 || dt == KT_TYPE_MAX || nb <= 0)
		return 0;
	return (size_t)nb * xq_stride(dt, w->cols);
}

struct mm_ctx {
	const struct kt_mat *w;
	const float *x;
	int nb;
	float *y;

	const uint8_t *xq; /* activations in the dot type, xstride apart */
	size_t xstride;
	kt_dot_fn dot;
	size_t wstride;

	/* quantisation phase */
	kt_quant_fn quant;
	uint8_t *xq_out;

	int64_t chunk, tile;
	atomic_llong next;

	const float *bias;
	enum kt_act act;
	enum kt_isa isa;
};

/* bias and activation of y[r0..r1) of one token */
static void epilogue(const struct mm_ctx *c, float *yb, int64_t r0, int64_t r1)
{
	if (c->bias)
		for (int64_t r = r0; r < r1; r++)
			yb[r] += c->bias[r];
	if (c->act == KT_ACT_GELU)
		kt_gelu_isa(c->isa, yb + r0, r1 - r0);
}

static void quant_task(void *arg, int ith, int nth)
{
	struct mm_ctx *c = arg;
	for (int b = ith; b < c->nb; b += nth)
		c->quant(c->x + (int64_t)b * c->w->cols, c->xq_out + (size_t)b * c->xstride,
			 c->w->cols);
}

static void mm_task(void *arg, int ith, int nth)
{
	struct mm_ctx *c = arg;
	const int64_t rows = c->w->rows, cols = c->w->cols;
	const uint8_t *wd = c->w->data;
	(void)ith;
	(void)nth;

	for (;;) {
		const int64_t start = atomic_fetch_add_explicit(&c->next, c->chunk,
								memory_order_relaxed);
		if (start >= rows)
			break;
		const int64_t end = start + c->chunk < rows ? start + c->chunk : rows;

		if (c->nb == 1) {
			for (int64_t r = start; r < end; r++)
				c->y[r] = c->dot(wd + (size_t)r * c->wstride, c->xq, cols);
			epilogue(c, c->y, start, end);
			continue;
		}
		for (int64_t t0 = start; t0 < end; t0 += c->tile) {
			const int64_t t1 = t0 + c->tile < end ? t0 + c->tile : end;
			for (int b = 0; b < c->nb; b++) {
				const uint8_t *xb = c->xq + (size_t)b * c->xstride;
				float *yb = c->y + (int64_t)b * rows;
				for (int64_t r = t0; r < t1; r++)
					yb[r] = c->dot(wd + (size_t)r * c->wstride, xb, cols);
				epilogue(c, yb, t0, t1);
			}
		}
	}
}

struct gemm_ctx {
	const struct kt_mat *w;
	const float *x;
	float *y;
	int64_t nb;
	const float *bias;
	enum kt_act act;
	int64_t row_units, units;
	atomic_llong next;
};

static void gemm_task(void *arg, int ith, int nth)
{
	struct gemm_ctx *c = arg;
	(void)ith;
	(void)nth;
	for (;;) {
		const int64_t u = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
		if (u >= c->units)
			break;
		/* rows first: a thread's next unit usually reads the same
		 * tokens, still in its cache */
		const int64_t r0 = u % c->row_units * KT_GEMM_UNIT_ROWS;
		const int64_t b0 = u / c->row_units * KT_GEMM_UNIT_TOKENS;
		const int64_t r1 = r0 + KT_GEMM_UNIT_ROWS < c->w->rows ? r0 + KT_GEMM_UNIT_ROWS
								 : c->w->rows;
		const int64_t b1 = b0 + KT_GEMM_UNIT_TOKENS < c->nb ? b0 + KT_GEMM_UNIT_TOKENS : c->nb;
		kt_gemm_avx2(c->w, c->x, c->y, r0, r1, b0, b1, c->bias, c->act);
	}
}

static int gemm_applies(enum kt_isa isa, const struct kt_mat *w, int nb)
{
	if (isa == KT_ISA_SCALAR || nb < KT_GEMM_MIN_NB || !kt_cpu_has_avx2())
		return 0;
	return w->type == KT_F32 || w->type == KT_F16 || w->type == KT_BF16;
}

void kt_matmul_ex(struct kt_pool *pool, const struct kt_mat *w, const float *x,
		  int nb, float *y, void *work, const float *bias, enum kt_act act)
{
	const enum kt_isa isa = kt_cpu_isa();
	const enum kt_type dt = kt_dot_type(w->type);
	const struct kt_type_fns *wf = kt_type_fns(isa, w->type);
	const int nth = kt_pool_threads(pool);
	struct mm_ctx c = {
		.w = w,
		.x = x,
		.nb = nb,
		.y = y,
		.wstride = kt_row_bytes(w->type, w->cols),
		.bias = bias,
		.act = act,
		.isa = isa,
	};

	if (nb <= 0 || w->rows <= 0 || !wf || !wf->dot)
		return;
	if (gemm_applies(isa, w, nb)) {
		struct gemm_ctx g = {
			.w = w,
			.x = x,
			.y = y,
			.nb = nb,
			.bias = bias,
			.act = act,
			.row_units = (w->rows + KT_GEMM_UNIT_ROWS - 1) / KT_GEMM_UNIT_ROWS,
		};
		g.units = g.row_units * ((nb + KT_GEMM_UNIT_TOKENS - 1) / KT_GEMM_UNIT_TOKENS);
		atomic_init(&g.next, 0);
		kt_pool_run(pool, gemm_task, &g);
		return;
	}
	c.dot = wf->dot;

	if (dt == KT_F32) {
		c.xq = (const uint8_t *)x;
		c.xstride = (size_t)w->cols * sizeof(float);
	} else {
		c.quant = kt_type_fns(isa, dt)->quant;
		c.xq_out = work;
		c.xq = work;
		c.xstride = xq_stride(dt, w->cols);
		if (nb == 1 || nth == 1)
			quant_task(&c, 0, 1);
		else
			kt_pool_run(pool, quant_task, &c);
	}

	/* Tiles of rows for nb > 1; chunks of about 8 per thread so the
	 * counter balances uneven threads, rounded to whole tiles. */
	int64_t tile = (int64_t)(TILE_BYTES / (c.wstride ? c.wstride : 1));
	tile = tile < 1 ? 1 : tile > 64 ? 64 : tile;
	int64_t chunk = w->rows / ((int64_t)nth * 8);
	if (nb > 1)
		chunk = (chunk + tile - 1) / tile * tile;
	c.tile = tile;
	c.chunk = chunk < 1 ? 1 : chunk;
	atomic_init(&c.next, 0);

	kt_pool_run(pool, mm_task, &c);
}

void kt_matmul(struct kt_pool *pool, const struct kt_mat *w, const float *x,
	       int nb, float *y, void *work)
{
	kt_matmul_ex(pool, w, x, nb, y, work, NULL, KT_ACT_NONE);
}
