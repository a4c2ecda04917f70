/*
 * RMSNorm on the device: one block per row, a warp-shuffle reduction of the
 * sum of squares. CPU twin: kt_rmsnorm in kernels/cpu/ops.c.
 */
#include "kernels/cuda/common.cuh"
#include "kernels/kernels.h"

static __global__ void rmsnorm_f32(float *out, const float *x, const float *w,
				   int n, float eps)
{
	const float *xr = x + (size_t)blockIdx.x * n;
	float *outr = out + (size_t)blockIdx.x * n;
	float ss = 0.0f;
	for (int i = threadIdx.x; i < n; i += blockDim.x)
		ss += xr[i] * xr[i];
	for (int off = 16; off > 0; off >>= 1)
		ss += __shfl_xor_sync(0xffffffff, ss, off);
	__shared__ float partial[32];
	int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
	if (lane == 0)
		partial[warp] = ss;
	__syncthreads();
	if (warp == 0) {
		ss = lane < (int)(blockDim.x / 32) ? partial[lane] : 0.0f;
		for (int off = 16; off > 0; off >>= 1)
			ss += __shfl_xor_sync(0xffffffff, ss, off);
		if (lane == 0)
			partial[0] = ss;
	}
	__syncthreads();
	float scale = rsqrtf(partial[0] / n + eps);
	for (int i = threadIdx.x; i < n; i += blockDim.x)
		outr[i] = xr[i] * scale * (w ? w[i] : 1.0f);
}

static void rmsnorm_launch(float *out, const float *x, const float *w, int n,
			   int rows, float eps, cudaStream_t stream)
{
	int threads = n < 1024 ? ((n + 31) / 32) * 32 : 1024;
	rmsnorm_f32<<<rows, threads, 0, stream>>>(out, x, w, n, eps);
	CUDA_CHECK(cudaGetLastError());
}

extern "C" void kt_cuda_rmsnorm(float *out, const float *x, const float *w,
				int n, int rows, float eps)
{
	rmsnorm_launch(out, x, w, n, rows, eps, 0);
	CUDA_CHECK(cudaStreamSynchronize(0));
}
