/*
 * The CUDA backend's device handling: whether a device is usable, its
 * description, and memory transfers. Availability is probed without
 * aborting, so a build with CUDA runs on machines without a GPU.
 */
#include "kernels/cuda/common.cuh"
#include "kernels/kernels.h"

extern "C" int kt_cuda_available(void)
{
	int n = 0;
	if (cudaGetDeviceCount(&n) != cudaSuccess) {
		cudaGetLastError(); /* clear the sticky "no driver" error */
		return 0;
	}
	return n > 0;
}

extern "C" void kt_cuda_describe(char *buf, size_t n)
{
	cudaDeviceProp p;
	if (!kt_cuda_available() || cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
		snprintf(buf, n, "cuda (no device)");
		return;
	}
	snprintf(buf, n, "cuda (%s, %.1f GiB, sm_%d%d)", p.name,
		 p.totalGlobalMem / 1073741824.0, p.major, p.minor);
}

extern "C" void *kt_cuda_malloc(size_t bytes)
{
	void *p = NULL;
	CUDA_CHECK(cudaMalloc(&p, bytes));
	return p;
}

extern "C" void kt_cuda_free(void *p)
{
	CUDA_CHECK(cudaFree(p));
}

extern "C" void kt_cuda_upload(void *dst, const void *src, size_t bytes)
{
	CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

extern "C" void kt_cuda_download(void *dst, const void *src, size_t bytes)
{
	CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
