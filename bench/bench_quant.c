/*
 * Micro-benchmark of the CPU block kernels: weight bytes per second of
 * vec_dot per type (single thread, from cache and from memory), kt_matmul
 * for one activation row (decode) on 1 and N threads against the machine's
 * read bandwidth, by rows and packed in groups of 8 rows (kt_mat_pack; 0
 * where the type has no packed kernels), and kt_matmul for a batch
 * (prefill).
 *
 * usage: bench_quant [threads [MiB [type]]]   (defaults: all CPUs, 256 MiB
 * of weights per memory-bound measurement, well above any L3; all types)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ULL;
static float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)(rng >> 40) / (float)(1 << 24) * 2 - 1;
}

/* A rows x cols matrix of type t with random contents (quantised from
 * random floats one row at a time). */
static void *make_matrix(enum kt_type t, int64_t rows, int64_t cols)
{
	const size_t rb = kt_row_bytes(t, cols);
	uint8_t *m = malloc(rb * (size_t)rows);
	float *row = malloc((size_t)cols * sizeof(float));
	if (!m || !row) {
		fprintf(stderr, "bench_quant: out of memory\n");
		exit(1);
	}
	for (int64_t c = 0; c < cols; c++)
		row[c] = frand();
	for (int64_t r = 0; r < rows; r++) {
		row[r % cols] = frand(); /* vary rows cheaply */
		kt_quantize_row(t, row, m + (size_t)r * rb, cols);
	}
	free(row);
	return m;
}

struct sum_ctx {
	const float *p;
	size_t n;
	float out[64];
};

static void sum_task(void *arg, int ith, int nth)
{
	struct sum_ctx *c = arg;
	size_t a = c->n * (size_t)ith / (size_t)nth, b = c->n * (size_t)(ith + 1) / (size_t)nth;
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
	for (size_t i = a; i + 8 <= b; i += 8) {
		s0 += c->p[i], s1 += c->p[i + 1], s2 += c->p[i + 2], s3 += c->p[i + 3];
		s4 += c->p[i + 4], s5 += c->p[i + 5], s6 += c->p[i + 6], s7 += c->p[i + 7];
	}
	c->out[ith % 64] = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

/* Read bandwidth of the machine with nth threads, GB/s (best of 5). */
static double read_bw(struct kt_pool *pool, size_t bytes)
{
	struct sum_ctx c = { .n = bytes / sizeof(float) };
	float *p = malloc(bytes);
	for (size_t i = 0; i < c.n; i++)
		p[i] = (float)(i & 7);
	c.p = p;
	double best = 1e30;
	for (int k = 0; k < 5; k++) {
		double t0 = now();
		kt_pool_run(pool, sum_task, &c);
		double t = now() - t0;
		best = t < best ? t : best;
	}
	free(p);
	return (double)bytes / best / 1e9;
}

int main(int argc, char **argv)
{
	int max_threads = argc > 1 ? atoi(argv[1]) : 0;
	const size_t big = (size_t)(argc > 2 ? atoi(argv[2]) : 256) << 20;
	struct kt_pool *pool = kt_pool_create(max_threads);
	if (!pool) {
		perror("kt_pool_create");
		return 1;
	}
	max_threads = kt_pool_threads(pool);
	struct kt_pool *pool1 = kt_pool_create(1);

	const enum kt_type types[] = { KT_Q4_0, KT_Q4_1, KT_Q5_0, KT_Q5_1, KT_Q8_0, KT_Q4_K,
				       KT_Q5_K, KT_Q6_K, KT_F16, KT_BF16, KT_F32 };
	const int64_t cols = 4096;

	printf("isa %s, %d threads\n", kt_isa_name(kt_cpu_isa()), max_threads);
	printf("read bandwidth: 1 thread %.1f GB/s, %d threads %.1f GB/s\n", read_bw(pool1, big),
	       max_threads, read_bw(pool, big));
	printf("%-5s %12s %12s %12s %12s %12s %12s %14s\n", "type", "dot-L2 GB/s", "dot-mem GB/s",
	       "mm1 1t GB/s", "mm1 Nt GB/s", "pk1 1t GB/s", "pk1 Nt GB/s", "mm64 Nt GFLOP/s");

	for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
		const enum kt_type t = types[ti], dt = kt_dot_type(t);
		if (argc > 3 && strcmp(argv[3], kt_type_name(t)) != 0)
			continue;
		const size_t rb = kt_row_bytes(t, cols);
		float *x = malloc(64 * cols * sizeof(float));
		for (int64_t i = 0; i < 64 * cols; i++)
			x[i] = frand();
		uint8_t *xq = malloc(kt_row_bytes(dt, cols) + 64);
		kt_quantize_row(dt, x, xq, cols);
		const void *xin = dt == KT_F32 ? (const void *)x : xq;

		/* vec_dot over a matrix that fits in L2 (256 KiB), repeated */
		const int64_t small_rows = (int64_t)((256 << 10) / rb);
		uint8_t *ms = make_matrix(t, small_rows, cols);
		volatile float sink = 0;
		double best = 1e30;
		for (int k = 0; k < 20; k++) {
			double t0 = now();
			for (int64_t r = 0; r < small_rows; r++)
				sink += kt_vec_dot(t, ms + (size_t)r * rb, xin, cols);
			double el = now() - t0;
			best = el < best ? el : best;
		}
		const double dot_l2 = (double)(rb * (size_t)small_rows) / best / 1e9;
		free(ms);

		/* from memory: big matrix, one pass */
		const int64_t rows = (int64_t)(big / rb);
		uint8_t *mb = make_matrix(t, rows, cols);
		best = 1e30;
		for (int k = 0; k < 3; k++) {
			double t0 = now();
			for (int64_t r = 0; r < rows; r++)
				sink += kt_vec_dot(t, mb + (size_t)r * rb, xin, cols);
			double el = now() - t0;
			best = el < best ? el : best;
		}
		const double dot_mem = (double)(rb * (size_t)rows) / best / 1e9;

		/* kt_matmul, one activation row: 1 thread and all, by rows and
		 * (where the type has packed kernels) packed */
		struct kt_mat m = { t, rows, cols, mb, NULL };
		float *y = malloc((size_t)rows * 64 * sizeof(float));
		const size_t pbytes = kt_mat_packed_bytes(&m);
		void *pk = pbytes ? aligned_alloc(64, (pbytes + 63) / 64 * 64) : NULL;
		double mm[4] = { 0 };
		struct kt_pool *pp[2] = { pool1, pool };
		for (int v = 0; v < 2; v++) {
			if (v && (!pk || kt_mat_pack(&m, pk)))
				break;
			void *work = malloc(kt_matmul_work_bytes(&m, 1) + 64);
			for (int pi = 0; pi < 2; pi++) {
				best = 1e30;
				for (int k = 0; k < 3; k++) {
					double t0 = now();
					kt_matmul(pp[pi], &m, x, 1, y, work);
					double el = now() - t0;
					best = el < best ? el : best;
				}
				mm[2 * v + pi] = (double)(rb * (size_t)rows) / best / 1e9;
			}
			free(work);
		}
		void *work = malloc(kt_matmul_work_bytes(&m, 64) + 64);

		/* prefill-like: 64 activation rows on a 4096 x 4096 matrix */
		m.packed = NULL;
		const struct kt_mat m64 = { t, 4096 < rows ? 4096 : rows, cols, mb, NULL };
		best = 1e30;
		for (int k = 0; k < 2; k++) {
			double t0 = now();
			kt_matmul(pool, &m64, x, 64, y, work);
			double el = now() - t0;
			best = el < best ? el : best;
		}
		const double gflops = 2.0 * (double)m64.rows * (double)cols * 64 / best / 1e9;

		printf("%-5s %12.1f %12.1f %12.1f %12.1f %12.1f %12.1f %14.1f\n", kt_type_name(t),
		       dot_l2, dot_mem, mm[0], mm[1], mm[2], mm[3], gflops);
		fflush(stdout);
		(void)sink;
		free(mb);
		free(pk);
		free(y);
		free(work);
		free(x);
		free(xq);
	}
	kt_pool_destroy(pool);
	kt_pool_destroy(pool1);
	return 0;
}
