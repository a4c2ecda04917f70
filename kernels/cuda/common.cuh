/*
 * Shared by the CUDA sources: error checks that report the failing call,
 * file and line, then abort (a CUDA error leaves the context unusable).
 */
#pragma once

#include <cstdio>
#include <cstdlib>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#define CUDA_CHECK(call)                                                       \
	do {                                                                   \
		cudaError_t err_ = (call);                                     \
		if (err_ != cudaSuccess) {                                     \
			fprintf(stderr, "CUDA error: %s: %s at %s:%d\n", #call,     \
				cudaGetErrorString(err_), __FILE__, __LINE__); \
			abort();                                               \
		}                                                              \
	} while (0)

#define CUBLAS_CHECK(call)                                                     \
	do {                                                                   \
		cublasStatus_t st_ = (call);                                   \
		if (st_ != CUBLAS_STATUS_SUCCESS) {                            \
			fprintf(stderr, "cuBLAS error: %s: %s at %s:%d\n",     \
				#call, cublasGetStatusString(st_), __FILE__,   \
				__LINE__);                                     \
			abort();                                               \
		}                                                              \
	} while (0)
