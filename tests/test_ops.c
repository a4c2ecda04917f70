/*
 * The transformer ops of kernels/cpu against plain double-precision
 * references on random inputs, and the AVX2 attention against the scalar
 * one. Bounds are normalised errors: max |got - want| / max |want|.
 */
#include <math.h>

#include "kernels/kernels.h"
#include "testutil.h"

static double norm_err(const float *got, const double *want, int n)
{
	double num = 0, den = 0;
	for (int i = 0; i < n; i++) {
		num = fmax(num, fabs(got[i] - want[i]));
		den = fmax(den, fabs(want[i]));
	}
	return den > 0 ? num / den : num;
}

static void test_rmsnorm_softmax(uint64_t *seed)
{
	enum { N = 896 };
	float x[N], w[N], out[N];
	double want[N];
	for (int i = 0; i < N; i++)
		x[i] = t_rand_f(seed) * 8, w[i] = t_rand_f(seed);
	double ss = 0;
	for (int i = 0; i < N; i++)
		ss += (double)x[i] * x[i];
	for (int i = 0; i < N; i++)
		want[i] = x[i] / sqrt(ss / N + 1e-6) * w[i];
	kt_rmsnorm(out, x, w, N, 1e-6f);
	T_CHECK(norm_err(out, want, N) < 1e-6, "rmsnorm error %g", norm_err(out, want, N));

	double mx = -1e300, sum = 0;
	for (int i = 0; i < N; i++)
		mx = fmax(mx, x[i]);
	for (int i = 0; i < N; i++)
		sum += exp(x[i] - mx);
	for (int i = 0; i < N; i++)
		want[i] = exp(x[i] - mx) / sum;
	memcpy(out, x, sizeof x);
	kt_softmax(out, N);
	T_CHECK(norm_err(out, want, N) < 1e-6, "softmax error %g", norm_err(out, want, N));
}

/* RoPE NORM rotates (2i, 2i+1), NEOX (i, i + n_rot/2), by pos * base^(-2i/n_rot). */
static void test_rope(uint64_t *seed)
{
	enum { H = 3, D = 64 };
	float x[H * D], got[H * D];
	double want[H * D];
	const float base = 10000.0f;
	for (int mode = 0; mode < 2; mode++) {
		enum kt_rope_mode m = mode ? KT_ROPE_NEOX : KT_ROPE_NORM;
		for (int pos = 0; pos < 300; pos += 37) {
			for (int i = 0; i < H * D; i++)
				x[i] = got[i] = t_rand_f(seed);
			for (int h = 0; h < H; h++)
				for (int i = 0; i < D / 2; i++) {
					int a = m == KT_ROPE_NEOX ? i : 2 * i;
					int b = m == KT_ROPE_NEOX ? i + D / 2 : 2 * i + 1;
					double th = pos * pow(base, -2.0 * i / D);
					double x0 = x[h * D + a], x1 = x[h * D + b];
					want[h * D + a] = x0 * cos(th) - x1 * sin(th);
					want[h * D + b] = x0 * sin(th) + x1 * cos(th);
				}
			kt_rope(got, H, D, D, pos, base, m, NULL);
			double e = norm_err(got, want, H * D);
			/* float theta by repeated multiplication: ~1e-7 * pos relative */
			T_CHECK(e < 1e-4, "rope mode %d pos %d error %g", mode, pos, e);
		}
	}
}

static void test_attention(uint64_t *seed)
{
	static const int ns[] = {1, 7, 64, 301};
	static const int hds[] = {32, 64, 128, 40};
	const int stride_elems = 512; /* rows of several heads: the head is a slice */
	for (size_t a = 0; a < 4; a++)
		for (size_t b = 0; b < 4; b++) {
			int n = ns[a], hd = hds[b];
			float *kf = malloc((size_t)n * stride_elems * 4), *vf = malloc((size_t)n * stride_elems * 4);
			uint16_t *kh = malloc((size_t)n * stride_elems * 2), *vh = malloc((size_t)n * stride_elems * 2);
			float q[128], o32[128], o_s[128], o_v[128], *scratch = malloc((size_t)(n + hd) * 4);
			double want[128], *p = malloc((size_t)n * 8);
			T_REQUIRE(kf && vf && kh && vh && scratch && p, "out of memory");
			for (int i = 0; i < n * stride_elems; i++)
				kf[i] = t_rand_f(seed) * 2, vf[i] = t_rand_f(seed);
			for (int i = 0; i < hd; i++)
				q[i] = t_rand_f(seed) * 2;
			kt_quantize_row(KT_F16, kf, kh, (int64_t)n * stride_elems);
			kt_quantize_row(KT_F16, vf, vh, (int64_t)n * stride_elems);
			const float scale = 1.0f / sqrtf((float)hd);
			/* F32 cache against double precision */
			double mx = -1e300, sum = 0;
			for (int t = 0; t < n; t++) {
				double d = 0;
				for (int i = 0; i < hd; i++)
					d += (double)q[i] * kf[(size_t)t * stride_elems + i];
				p[t] = d * scale;
				mx = fmax(mx, p[t]);
			}
			for (int t = 0; t < n; t++)
				sum += (p[t] = exp(p[t] - mx));
			for (int i = 0; i < hd; i++) {
				want[i] = 0;
				for (int t = 0; t < n; t++)
					want[i] += p[t] / sum * vf[(size_t)t * stride_elems + i];
			}
			kt_attn_head(KT_F32, kf, vf, stride_elems * 4, q, n, hd, scale, scratch, o32);
			double e = norm_err(o32, want, hd);
			T_CHECK(e < 1e-5, "attention f32 n=%d hd=%d: error %g", n, hd, e);
			/* F16 cache: AVX2 against the scalar reference (sum order only),
			 * and both near the F32 result (F16 rounding, ~1e-3) */
			kt_attn_head_isa(KT_ISA_SCALAR, KT_F16, kh, vh, stride_elems * 2, q, n, hd, scale, scratch, o_s);
			kt_attn_head_isa(KT_ISA_AVX2, KT_F16, kh, vh, stride_elems * 2, q, n, hd, scale, scratch, o_v);
			double ws[128];
			for (int i = 0; i < hd; i++)
				ws[i] = o_s[i];
			e = norm_err(o_v, ws, hd);
			T_CHECK(e < 1e-5, "attention f16 n=%d hd=%d: avx2 vs scalar error %g", n, hd, e);
			e = norm_err(o_s, want, hd);
			T_CHECK(e < 1e-2, "attention f16 n=%d hd=%d: error %g against f32", n, hd, e);
			free(kf), free(vf), free(kh), free(vh), free(scratch), free(p);
		}
}

int main(void)
{
	uint64_t seed = 0x0b5e55edULL;
	if (kt_cpu_isa() == KT_ISA_SCALAR)
		fprintf(stderr, "test_ops: no AVX2 here: the AVX2 attention is compared as the scalar one\n");
	test_rmsnorm_softmax(&seed);
	test_rope(&seed);
	test_attention(&seed);
	return t_done("test_ops");
}
