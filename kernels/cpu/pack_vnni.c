/*
 * The packed kernels of pack_avx2.c compiled again for CPUs with AVX-512
 * VNNI, VL and BW (entry point kt_pdot_vnni, called by pack.c after
 * kt_cpu_has_vnni() said yes).
 */
#define KT_VNNI 1
#include "kernels/cpu/pack_avx2.c"
