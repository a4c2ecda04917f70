/*
 * Every CUDA kernel against its CPU twin on fresh random inputs, with a
 * normalised error bound. Skipped (exit 77) when the build has no CUDA
 * backend or the machine has no usable device.
 */
#include <math.h>

#include "kernels/kernels.h"
#include "testutil.h"

#ifdef SEEKFS_HAVE_CUDA
/* max |a-b| / max |b|: scale-free, so one bound serves every input size. */
static double norm_err(const float *a, const float *b, size_t n)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		num = fmax(num, fabs((double)a[i] - b[i]));
		den = fmax(den, fabs((double)b[i]));
	}
	return den > 0 ? num / den : num;
}

static void check_rmsnorm(uint64_t *seed, int n, int rows)
{
	size_t total = (size_t)n * rows;
	float *x = malloc(total * 4), *w = malloc((size_t)n * 4);
	float *ref = malloc(total * 4), *got = malloc(total * 4);
	for (size_t i = 0; i < total; i++)
		x[i] = t_rand_f(seed) * 4.0f;
	for (int i = 0; i < n; i++)
		w[i] = t_rand_f(seed);
	for (int r = 0; r < rows; r++)
		kt_rmsnorm(ref + (size_t)r * n, x + (size_t)r * n, w, n, 1e-5f);
	float *dx = kt_cuda_malloc(total * 4), *dw = kt_cuda_malloc((size_t)n * 4);
	float *dout = kt_cuda_malloc(total * 4);
	kt_cuda_upload(dx, x, total * 4);
	kt_cuda_upload(dw, w, (size_t)n * 4);
	kt_cuda_rmsnorm(dout, dx, dw, n, rows, 1e-5f);
	kt_cuda_download(got, dout, total * 4);
	double e = norm_err(got, ref, total);
	T_CHECK(e < 1e-5, "rmsnorm n=%d rows=%d: normalised error %g >= 1e-5", n, rows, e);
	kt_cuda_free(dx);
	kt_cuda_free(dw);
	kt_cuda_free(dout);
	free(x);
	free(w);
	free(ref);
	free(got);
}
#endif

int main(void)
{
#ifndef SEEKFS_HAVE_CUDA
	fprintf(stderr, "test_cuda_ops: skipped: built without the CUDA backend\n");
	return T_SKIP;
#else
	if (!kt_cuda_available()) {
		fprintf(stderr, "test_cuda_ops: skipped: no CUDA device on this machine\n");
		return T_SKIP;
	}
	char desc[256];
	kt_cuda_describe(desc, sizeof desc);
	fprintf(stderr, "test_cuda_ops: %s\n", desc);
	uint64_t seed = 0x5eedf00dULL;
	int sizes[] = {64, 896, 1536, 4096, 5120};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		check_rmsnorm(&seed, sizes[i], 7);
	return t_done("test_cuda_ops");
#endif
}
