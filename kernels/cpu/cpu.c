/*
 * Which instruction set the CPU kernels use.
 *
 * The AVX2 paths (quant_avx2.c) also need FMA and F16C; all three are
 * asked of CPUID once (libgcc's __builtin_cpu_supports, which also checks
 * that the OS saves the YMM state). SEEKFS_ISA=scalar in the environment
 * forces the scalar reference, to compare results or to work around a bad
 * fast path; any other value is ignored.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/cpu/quant.h"

/* -1: not yet detected. Detection is idempotent, so threads racing on the
 * first call all store the same value. */
static atomic_int hw_avx2 = -1;
static atomic_int chosen_isa = -1;

int kt_cpu_has_avx2(void)
{
	int v = atomic_load_explicit(&hw_avx2, memory_order_relaxed);
	if (v < 0) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_cpu_init();
		v = __builtin_cpu_supports("avx2") &&
		    __builtin_cpu_supports("fma") &&
		    __builtin_cpu_supports("f16c");
#else
		v = 0;
#endif
		atomic_store_explicit(&hw_avx2, v, memory_order_relaxed);
	}
	return v;
}

enum kt_isa kt_cpu_isa(void)
{
	int v = atomic_load_explicit(&chosen_isa, memory_order_relaxed);
	if (v < 0) {
		const char *env = getenv("SEEKFS_ISA");
		if (env && strcmp(env, "scalar") == 0)
			v = KT_ISA_SCALAR;
		else
			v = kt_cpu_has_avx2() ? KT_ISA_AVX2 : KT_ISA_SCALAR;
		atomic_store_explicit(&chosen_isa, v, memory_order_relaxed);
	}
	return (enum kt_isa)v;
}

const char *kt_isa_name(enum kt_isa isa)
{
	switch (isa) {
	case KT_ISA_SCALAR:
		return "scalar";
	case KT_ISA_AVX2:
		return "avx2";
	}
	return "unknown";
}
