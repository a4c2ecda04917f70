/*
 * y = W x for a quantised or float weight matrix W and nb activation rows.
 *
 * The activations are quantised once into kt_dot_type(W) (caller-owned
 * work buffer), then W's rows are handed out to the pool's threads in
 * chunks from a shared atomic counter, so a thread that starts late or
 * runs slower takes fewer chunks (for one activation row, chunks that
 * shrink as the rows run out: mv_task). For nb > 1 each chunk is walked in
 * tiles of rows small enough to stay in L2 while every activation row is run
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
 *
 * A matrix with a packed copy (kt_mat_pack, pack.c) is read from it where
 * this ISA has the type's packed kernel: eight rows per call, chunks and
 * tiles in whole groups of eight; rows past the last group still come
 * from the row-major data.
 *
 * kt_matmul_n runs several products of the same input in one pass of the
 * pool (a block's q, k and v; its gate and up): x is quantised once per
 * activation format, and the chunks of all the matrices are handed out
 * from one counter, so the threads meet once instead of once per matrix.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "kernels/cpu/quant.h"

/* Activation rows in the work buffer start on cache-line boundaries. */
#define ROW_ALIGN 64
/* Least bytes of weights a thread takes at once in a matrix-vector
 * product. Each take is a new stretch of memory whose first lines come at
 * memory's latency; measured on a 2-core Zen 4 over a small model's
 * decode step, 128 KiB takes beat 32 KiB ones by 10%, more than the
 * threads then lose waiting for each other at the end of a product. */
#define MV_MIN_TAKE_BYTES (128 * 1024)
/* Bytes of weights per tile when nb > 1: well inside a 512 KiB-2 MiB L2
 * next to the activation row being streamed. */
#define TILE_BYTES (128 * 1024)

static size_t xq_stride(enum kt_type dt, int64_t cols)
{
	size_t b = kt_row_bytes(dt, cols);
	return (b + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
}

/* Packed kernel for w on isa, NULL when w is read by rows. */
static kt_pdot_fn packed_fn(enum kt_isa isa, const struct kt_mat *w)
{
	return w->packed ? kt_pdot(isa, w->type) : NULL;
}

/* int32 activation block sums per activation row that w's packed kernel
 * reads (q4_0, q5_0), 0 for the others. */
static int64_t xsum_count(enum kt_isa isa, const struct kt_mat *w)
{
	return packed_fn(isa, w) && kt_pdot_needs_xsum(w->type) ? w->cols / KT_QK : 0;
}

/* One activation format of a call: x quantised into type dt once for all
 * the products that read it, with block sums when one of them needs them. */
struct mm_xq {
	enum kt_type dt;
	kt_quant_fn quant;
	uint8_t *out;   /* nb rows, stride apart */
	size_t stride;
	int32_t *xsum;  /* nb * nsum, or NULL */
	int64_t nsum;
};

/* One product of the call. */
struct mm_part {
	const struct kt_mat *w;
	float *y;
	const float *bias;
	enum kt_act act;
	kt_dot_fn dot;
	size_t wstride;
	kt_pdot_fn pdot; /* packed rows: groups of 8 below prows, gstride bytes each */
	const uint8_t *pk;
	size_t gstride;
	int64_t prows;
	const uint8_t *xq; /* its activations, xstride apart, and their sums */
	size_t xstride;
	const int32_t *xsum;
	int64_t nsum;
	int64_t chunk, tile;
	int64_t min_take;
	int64_t u0; /* its first unit of the shared counter */
};

struct mm_ctx {
	struct mm_part part[KT_MATMUL_MAX];
	int n, nb;
	const float *x;
	struct mm_xq q[KT_MATMUL_MAX];
	int nq;
	int64_t units;
	atomic_llong next;
	enum kt_isa isa;
};

/* The activation formats of the products in mm: q[0..return) with their
 * sizes laid out one after another from work (NULL: sizes only). */
static int plan_xq(enum kt_isa isa, const struct kt_mm *mm, int n, int nb, uint8_t *work,
		   struct mm_xq *q, size_t *bytes)
{
	int nq = 0;
	*bytes = 0;
	for (int i = 0; i < n; i++) {
		const struct kt_mat *w = mm[i].w;
		const enum kt_type dt = kt_dot_type(w->type);
		if (dt == KT_F32 || dt == KT_TYPE_MAX)
			continue;
		int j = 0;
		while (j < nq && q[j].dt != dt)
			j++;
		if (j == nq)
			q[nq++] = (struct mm_xq){.dt = dt, .stride = xq_stride(dt, w->cols)};
		if (xsum_count(isa, w))
			q[j].nsum = xsum_count(isa, w);
	}
	for (int j = 0; j < nq; j++) {
		if (work) {
			q[j].out = work + *bytes;
			q[j].xsum = q[j].nsum ? (int32_t *)(q[j].out + (size_t)nb * q[j].stride) : NULL;
			q[j].quant = kt_type_fns(isa, q[j].dt)->quant;
		}
		*bytes += (size_t)nb * (q[j].stride + (size_t)q[j].nsum * sizeof(int32_t));
	}
	return nq;
}

size_t kt_matmul_n_work_bytes(const struct kt_mm *mm, int n, int nb)
{
	struct mm_xq q[KT_MATMUL_MAX];
	size_t bytes = 0;
	if (nb <= 0 || n <= 0)
		return 0;
	if (n > KT_MATMUL_MAX) { /* run in passes of KT_MATMUL_MAX: the largest */
		size_t a = kt_matmul_n_work_bytes(mm, KT_MATMUL_MAX, nb);
		size_t b = kt_matmul_n_work_bytes(mm + KT_MATMUL_MAX, n - KT_MATMUL_MAX, nb);
		return a > b ? a : b;
	}
	/* the most any ISA asks for: with block sums wherever packed */
	plan_xq(kt_cpu_isa(), mm, n, nb, NULL, q, &bytes);
	return bytes;
}

size_t kt_matmul_work_bytes(const struct kt_mat *w, int nb)
{
	const struct kt_mm mm = {.w = w};
	return kt_matmul_n_work_bytes(&mm, 1, nb);
}

/* bias and activation of y[r0..r1) of one token */
static void epilogue(const struct mm_ctx *c, const struct mm_part *p, float *yb, int64_t r0,
		     int64_t r1)
{
	if (p->bias)
		for (int64_t r = r0; r < r1; r++)
			yb[r] += p->bias[r];
	if (p->act == KT_ACT_GELU)
		kt_gelu_isa(c->isa, yb + r0, r1 - r0);
}

static void quant_task(void *arg, int ith, int nth)
{
	struct mm_ctx *c = arg;
	const int64_t cols = c->part[0].w->cols;
	for (int k = ith; k < c->nb * c->nq; k += nth) {
		const struct mm_xq *q = &c->q[k % c->nq];
		const int b = k / c->nq;
		uint8_t *xq = q->out + (size_t)b * q->stride;
		q->quant(c->x + (int64_t)b * cols, xq, cols);
		if (!q->xsum)
			continue;
		const struct kt_block_q8_0 *xb = (const void *)xq;
		int32_t *s = q->xsum + b * q->nsum;
		for (int64_t i = 0; i < q->nsum; i++) {
			int32_t t = 0;
			for (int e = 0; e < KT_QK; e++)
				t += xb[i].qs[e];
			s[i] = t;
		}
	}
}

/* yb[r0..r1) of part p for activation row xb (block sums xs): whole
 * packed groups eight at a time, the rest row by row. */
static void mm_rows(const struct mm_part *p, int64_t r0, int64_t r1, const uint8_t *xb,
		    const int32_t *xs, float *yb)
{
	const int64_t cols = p->w->cols;
	const uint8_t *wd = p->w->data;
	int64_t r = r0;
	if (p->pdot)
		for (; r + KT_PACK_ROWS <= r1 && r + KT_PACK_ROWS <= p->prows; r += KT_PACK_ROWS)
			p->pdot(p->pk + (size_t)(r / KT_PACK_ROWS) * p->gstride, xb, xs, cols, yb + r);
	for (; r < r1; r++)
		yb[r] = p->dot(wd + (size_t)r * p->wstride, xb, cols);
}

/* The index of the part unit u of the shared counter belongs to. */
static int part_of(const struct mm_ctx *c, int64_t u)
{
	int k = 0;
	while (k + 1 < c->n && u >= c->part[k + 1].u0)
		k++;
	return k;
}

/* Matrix-vector products (nb == 1): the units are the parts' rows in
 * whole packed groups (p->chunk rows each), and each take from the counter
 * is a share of what is left (1 / (4 threads) of it), at least
 * MV_MIN_TAKE_BYTES of weights and never past the end of its part: long
 * stretches of memory first, shorter ones as the product runs out, so
 * the threads finish close together. */
static void mv_task(struct mm_ctx *c, int nth)
{
	int64_t u = atomic_load_explicit(&c->next, memory_order_relaxed);
	for (;;) {
		if (u >= c->units)
			break;
		const int k = part_of(c, u);
		const struct mm_part *p = &c->part[k];
		const int64_t pend = k + 1 < c->n ? c->part[k + 1].u0 : c->units;
		int64_t take = (c->units - u) / (4 * (int64_t)nth);
		take = take < p->min_take ? p->min_take : take;
		take = take > pend - u ? pend - u : take;
		if (!atomic_compare_exchange_weak_explicit(&c->next, &u, u + take, memory_order_relaxed,
							   memory_order_relaxed))
			continue; /* u now holds the counter's value */
		const int64_t rows = p->w->rows;
		const int64_t start = (u - p->u0) * p->chunk;
		int64_t end = (u + take - p->u0) * p->chunk;
		end = end < rows ? end : rows;
		mm_rows(p, start, end, p->xq, p->xsum, p->y);
		epilogue(c, p, p->y, start, end);
		u = atomic_load_explicit(&c->next, memory_order_relaxed);
	}
}

static void mm_task(void *arg, int ith, int nth)
{
	struct mm_ctx *c = arg;
	(void)ith;

	if (c->nb == 1) {
		mv_task(c, nth);
		return;
	}
	for (;;) {
		const int64_t u = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
		if (u >= c->units)
			break;
		const struct mm_part *p = &c->part[part_of(c, u)];
		const int64_t rows = p->w->rows;
		const int64_t start = (u - p->u0) * p->chunk;
		const int64_t end = start + p->chunk < rows ? start + p->chunk : rows;

		for (int64_t t0 = start; t0 < end; t0 += p->tile) {
			const int64_t t1 = t0 + p->tile < end ? t0 + p->tile : end;
			for (int b = 0; b < c->nb; b++) {
				float *yb = p->y + (int64_t)b * rows;
				mm_rows(p, t0, t1, p->xq + (size_t)b * p->xstride,
					p->xsum ? p->xsum + b * p->nsum : NULL, yb);
				epilogue(c, p, yb, t0, t1);
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

static void gemm_run(struct kt_pool *pool, const struct kt_mm *mm, const float *x, int nb)
{
	const struct kt_mat *w = mm->w;
	struct gemm_ctx g = {
		.w = w,
		.x = x,
		.y = mm->y,
		.nb = nb,
		.bias = mm->bias,
		.act = mm->act,
		.row_units = (w->rows + KT_GEMM_UNIT_ROWS - 1) / KT_GEMM_UNIT_ROWS,
	};
	g.units = g.row_units * ((nb + KT_GEMM_UNIT_TOKENS - 1) / KT_GEMM_UNIT_TOKENS);
	atomic_init(&g.next, 0);
	kt_pool_run(pool, gemm_task, &g);
}

/* Part i of c for product mm, reading the activation formats c->q. */
static int plan_part(struct mm_ctx *c, int i, const struct kt_mm *mm, const float *x, int nth)
{
	const struct kt_mat *w = mm->w;
	const struct kt_type_fns *wf = kt_type_fns(c->isa, w->type);
	const enum kt_type dt = kt_dot_type(w->type);
	struct mm_part *p = &c->part[i];
	if (w->rows <= 0 || !wf || !wf->dot)
		return 0;
	*p = (struct mm_part){
		.w = w,
		.y = mm->y,
		.bias = mm->bias,
		.act = mm->act,
		.dot = wf->dot,
		.wstride = kt_row_bytes(w->type, w->cols),
	};
	if ((p->pdot = packed_fn(c->isa, w))) {
		p->pk = w->packed;
		p->prows = w->rows / KT_PACK_ROWS * KT_PACK_ROWS;
		p->gstride = kt_mat_packed_bytes(w) / (size_t)(w->rows / KT_PACK_ROWS);
	}
	if (dt == KT_F32) {
		p->xq = (const uint8_t *)x;
		p->xstride = (size_t)w->cols * sizeof(float);
	} else {
		int j = 0;
		while (c->q[j].dt != dt)
			j++;
		p->xq = c->q[j].out;
		p->xstride = c->q[j].stride;
		if (xsum_count(c->isa, w)) {
			p->xsum = c->q[j].xsum;
			p->nsum = c->q[j].nsum;
		}
	}

	/* Tiles of rows for nb > 1; chunks of about 8 per thread so the
	 * counter balances uneven threads, rounded to whole tiles (and whole
	 * packed groups: a chunk never splits one). */
	int64_t tile = (int64_t)(TILE_BYTES / (p->wstride ? p->wstride : 1));
	tile = tile < 1 ? 1 : tile > 64 ? 64 : tile;
	int64_t chunk = c->nb == 1 ? 1 : w->rows / ((int64_t)nth * 8);
	if (p->pdot) {
		tile = (tile + KT_PACK_ROWS - 1) / KT_PACK_ROWS * KT_PACK_ROWS;
		chunk = (chunk + KT_PACK_ROWS - 1) / KT_PACK_ROWS * KT_PACK_ROWS;
	}
	if (c->nb > 1)
		chunk = (chunk + tile - 1) / tile * tile;
	if (c->nb == 1) {
		const int64_t unit = (int64_t)p->wstride * chunk;
		p->min_take = (MV_MIN_TAKE_BYTES + unit - 1) / unit;
	}
	p->tile = tile;
	p->chunk = chunk < 1 ? 1 : chunk;
	p->u0 = c->units;
	c->units += (w->rows + p->chunk - 1) / p->chunk;
	return 1;
}

void kt_matmul_n(struct kt_pool *pool, const struct kt_mm *mm, int n, const float *x, int nb,
		 void *work)
{
	const enum kt_isa isa = kt_cpu_isa();
	const int nth = kt_pool_threads(pool);
	if (nb <= 0 || n <= 0)
		return;
	if (n > KT_MATMUL_MAX) {
		for (int i = 0; i < n; i += KT_MATMUL_MAX)
			kt_matmul_n(pool, mm + i, n - i < KT_MATMUL_MAX ? n - i : KT_MATMUL_MAX, x, nb,
				    work);
		return;
	}
	/* float weights in batches: the GEMM, one product at a time; the
	 * others (left) in one pass */
	struct kt_mm left[KT_MATMUL_MAX];
	int nl = 0;
	for (int i = 0; i < n; i++) {
		if (gemm_applies(isa, mm[i].w, nb))
			gemm_run(pool, &mm[i], x, nb);
		else
			left[nl++] = mm[i];
	}
	if (!nl)
		return;

	struct mm_ctx c = {.nb = nb, .x = x, .isa = isa};
	size_t bytes;
	c.nq = plan_xq(isa, left, nl, nb, work, c.q, &bytes);
	for (int i = 0; i < nl; i++)
		c.n += plan_part(&c, c.n, &left[i], x, nth);
	if (!c.n)
		return;
	if (c.nq) {
		if (nb == 1 || nth == 1)
			quant_task(&c, 0, 1);
		else
			kt_pool_run(pool, quant_task, &c);
	}
	atomic_init(&c.next, 0);
	kt_pool_run(pool, mm_task, &c);
}

void kt_matmul_ex(struct kt_pool *pool, const struct kt_mat *w, const float *x,
		  int nb, float *y, void *work, const float *bias, enum kt_act act)
{
	const struct kt_mm mm = {.w = w, .y = y, .bias = bias, .act = act};
	kt_matmul_n(pool, &mm, 1, x, nb, work);
}

void kt_matmul(struct kt_pool *pool, const struct kt_mat *w, const float *x,
	       int nb, float *y, void *work)
{
	kt_matmul_ex(pool, w, x, nb, y, work, NULL, KT_ACT_NONE);
}
