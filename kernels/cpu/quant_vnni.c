/*
 * The AVX2 kernels of quant_avx2.c compiled again for CPUs with AVX-512
 * VNNI (and VL): the legacy quants' u8 x s8 dots become one vpdpbusd each.
 * Compiled with -mavx512vnni -mavx512vl on top of the AVX2 flags; only
 * kt_vnni_fill() is called, after kt_cpu_has_vnni() said yes.
 */
#define KT_VNNI 1
#include "kernels/cpu/quant_avx2.c"
