/*
 * Which instruction set the CPU kernels use.
 *
 * The AVX2 paths (quant_avx2.c) also need FMA and F16C; all three are
 * asked of CPUID once, together with XGETBV to check that the OS saves the
 * YMM state (without it AVX instructions fault). CPUID is read directly
 * because compilers differ in which features __builtin_cpu_supports knows. SEEKFS_ISA=scalar in the environment
 * forces the scalar reference and SEEKFS_ISA=avx2 caps the choice at AVX2,
 * to compare results or to work around a bad fast path; any other value is
 * ignored.
 */
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/cpu/quant.h"

/* -1: not yet detected. Detection is idempotent, so threads racing on the
 * first call all store the same value. */
static atomic_int hw_avx2 = -1;
static atomic_int chosen_isa = -1;

#if defined(__x86_64__) || defined(__i386__)
static int detect_avx2(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
	int f16c = (c >> 29) & 1;
	if (!(fma && osxsave && avx && f16c))
		return 0;
	unsigned xlo, xhi;
	__asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
	if ((xlo & 6) != 6) /* XMM and YMM state enabled by the OS */
		return 0;
	if (__get_cpuid_max(0, NULL) < 7)
		return 0;
	__cpuid_count(7, 0, a, b, c, d);
	return (b >> 5) & 1; /* AVX2 */
}

/* AVX-512 F + VL + BW + VNNI, with the OS saving the opmask and ZMM state. */
static int detect_vnni(void)
{
	if (!detect_avx2())
		return 0;
	unsigned a, b, c, d, xlo, xhi;
	__cpuid_count(7, 0, a, b, c, d);
	int f = (b >> 16) & 1, vl = (b >> 31) & 1, bw = (b >> 30) & 1, vnni = (c >> 11) & 1;
	__asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
	return f && vl && bw && vnni && (xlo & 0xe6) == 0xe6;
}
#endif

static atomic_int hw_vnni = -1;

int kt_cpu_has_vnni(void)
{
	int v = atomic_load_explicit(&hw_vnni, memory_order_relaxed);
	if (v < 0) {
#if defined(__x86_64__) || defined(__i386__)
		v = detect_vnni();
#else
		v = 0;
#endif
		atomic_store_explicit(&hw_vnni, v, memory_order_relaxed);
	}
	return v;
}

int kt_cpu_has_avx2(void)
{
	int v = atomic_load_explicit(&hw_avx2, memory_order_relaxed);
	if (v < 0) {
#if defined(__x86_64__) || defined(__i386__)
		v = detect_avx2();
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
		else if (kt_cpu_has_vnni() && !(env && strcmp(env, "avx2") == 0))
			v = KT_ISA_AVX512VNNI;
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
	case KT_ISA_AVX512VNNI:
		return "avx512vnni";
	}
	return "unknown";
}
