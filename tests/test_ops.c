/*
 * The transformer ops of kernels/cpu against plain double-precision
 * references on random inputs, and the AVX2 attention against the scalar
 * one, and grouped-query attention against the same per head; GELU,
 * LayerNorm and whole-sequence attention in both their scalar
 * and AVX2 versions. Bounds are normalised errors: max |got - want| / max
 * |want| (GELU's: per element, see there).
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

/* Grouped-query attention (kt_attn_group) against kt_attn_head run for each
 * head, with the same instruction set: equal bit for bit, for F16 caches
 * (scalar and AVX2) and F32 (scalar), the KV head a slice of rows holding
 * several. Lengths around the blocks of the AVX2 path (4 and 8 positions),
 * groups split into passes of 2 and 3 heads (7 = 2 + 2 + 3), and head sizes
 * of an odd number of vectors (40), one the AVX2 path declines (36) and its
 * largest (256). Nothing is written past the group's outputs or the
 * scratch. */
static void test_attn_group(uint64_t *seed)
{
	static const int ns[] = {1, 7, 8, 9, 100, 1000};
	static const int hds[] = {64, 128, 40, 36, 256};
	static const int groups[] = {1, 2, 3, 7};
	enum { GUARD = 16 };
	const float canary = -12345.0f;
	for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
		for (size_t b = 0; b < sizeof hds / sizeof hds[0]; b++)
			for (size_t c = 0; c < sizeof groups / sizeof groups[0]; c++) {
				const int n = ns[a], hd = hds[b], g = groups[c];
				if (hd > 128 && n > 100)
					continue; /* the shape is covered; keep the test fast */
				const int stride_elems = 3 * hd; /* three KV heads per row, the middle one used */
				const size_t cache = (size_t)n * stride_elems, gq = (size_t)g * hd;
				const size_t nsc = kt_attn_group_scratch(g, n, hd);
				float *kf = malloc(cache * 4), *vf = malloc(cache * 4), *q = malloc(gq * 4);
				uint16_t *kh = malloc(cache * 2), *vh = malloc(cache * 2);
				float *want = malloc(gq * 4), *got = malloc((gq + GUARD) * 4);
				float *scratch = malloc((nsc + GUARD) * 4);
				T_REQUIRE(kf && vf && q && kh && vh && want && got && scratch, "out of memory");
				for (size_t i = 0; i < cache; i++)
					kf[i] = t_rand_f(seed) * 2, vf[i] = t_rand_f(seed);
				for (size_t i = 0; i < gq; i++)
					q[i] = t_rand_f(seed) * 3;
				kt_quantize_row(KT_F16, kf, kh, (int64_t)cache);
				kt_quantize_row(KT_F16, vf, vh, (int64_t)cache);
				const float scale = 1.0f / sqrtf((float)hd);
				for (int run = 0; run < 3; run++) {
					const enum kt_isa isa = run == 1 ? KT_ISA_AVX2 : KT_ISA_SCALAR;
					const enum kt_type kvt = run == 2 ? KT_F32 : KT_F16;
					const void *k = kvt == KT_F16 ? (const void *)(kh + hd) : (const void *)(kf + hd);
					const void *v = kvt == KT_F16 ? (const void *)(vh + hd) : (const void *)(vf + hd);
					const size_t stride = (size_t)stride_elems * (kvt == KT_F16 ? 2 : 4);
					const char *name = run == 0 ? "f16 scalar" : run == 1 ? "f16 avx2" : "f32 scalar";
					for (int h = 0; h < g; h++)
						kt_attn_head_isa(isa, kvt, k, v, stride, q + (size_t)h * hd, n, hd,
								 scale, scratch, want + (size_t)h * hd);
					for (size_t i = 0; i < gq + GUARD; i++)
						got[i] = canary;
					for (size_t i = nsc; i < nsc + GUARD; i++)
						scratch[i] = canary;
					kt_attn_group_isa(isa, kvt, k, v, stride, q, g, n, hd, scale, scratch, got);
					size_t diff = 0, first = 0;
					for (size_t i = gq; i-- > 0;)
						if (memcmp(&got[i], &want[i], 4))
							diff++, first = i;
					T_CHECK(diff == 0,
						"attn_group %s n=%d hd=%d group=%d: %zu of %zu outputs differ from "
						"kt_attn_head, first head %zu dim %zu: %.9g, want %.9g",
						name, n, hd, g, diff, gq, first / hd, first % hd, got[first],
						want[first]);
					int outside = 0;
					for (size_t i = 0; i < GUARD; i++)
						outside += got[gq + i] != canary || scratch[nsc + i] != canary;
					T_CHECK(!outside, "attn_group %s n=%d hd=%d group=%d: %d floats written "
						"past the outputs or the scratch", name, n, hd, g, outside);
				}
				free(kf), free(vf), free(q), free(kh), free(vh), free(want), free(got),
					free(scratch);
			}
}

/* GELU, exact form, against erf in double: erff (scalar) and the rational
 * erf of the AVX2 path (within 4e-7) on values through the whole range,
 * with a tail shorter than a vector; elements past n stay untouched. */
static void test_gelu(uint64_t *seed)
{
	enum { N = 1000 + 5 };
	static float x[N + 3], got[N + 3];
	for (int i = 0; i < N; i++)
		x[i] = i < 200 ? (float)(i - 100) * 0.08f : t_rand_f(seed) * (i % 3 ? 3.0f : 12.0f);
	for (int isa = 0; isa < 2; isa++) {
		memcpy(got, x, sizeof x);
		got[N] = got[N + 1] = got[N + 2] = 42.0f;
		kt_gelu_isa(isa ? KT_ISA_AVX2 : KT_ISA_SCALAR, got, N);
		double worst = 0;
		for (int i = 0; i < N; i++) {
			double want = 0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0)));
			/* erf's error times |x|/2, and the float roundings */
			double e = fabs(got[i] - want) / (1e-7 + 1e-7 * fabs(x[i]));
			if (e > worst)
				worst = e;
		}
		T_CHECK(worst <= (isa ? 3.0 : 1.0), "gelu %s: error %g x (1e-7 + 1e-7 |x|)",
			isa ? "avx2" : "scalar", worst);
		T_CHECK(got[N] == 42.0f && got[N + 1] == 42.0f && got[N + 2] == 42.0f,
			"gelu %s wrote past n", isa ? "avx2" : "scalar");
	}
}

/* SwiGLU and GeGLU against silu(g) u and gelu_tanh(g) u in double: expf
 * (scalar) and kt_exp8 (AVX2) over gates through the whole float range exp
 * is defined on, with a tail shorter than a vector; elements past n stay
 * untouched. */
static void test_glu(uint64_t *seed)
{
	enum { N = 1000 + 3 };
	static float g[N + 5], u[N + 5], got[N + 5];
	for (int i = 0; i < N; i++) {
		g[i] = i < 200 ? (float)(i - 100) * 0.25f : t_rand_f(seed) * (i % 3 ? 8.0f : 120.0f);
		u[i] = t_rand_f(seed) * 4.0f;
	}
	for (int kind = 0; kind < 2; kind++)
		for (int isa = 0; isa < 2; isa++) {
			const char *what = kind ? "geglu" : "swiglu", *how = isa ? "avx2" : "scalar";
			memcpy(got, g, sizeof g);
			for (int i = N; i < N + 5; i++)
				got[i] = 42.0f;
			enum kt_isa ki = isa ? KT_ISA_AVX2 : KT_ISA_SCALAR;
			if (kind)
				kt_geglu_isa(ki, got, u, N);
			else
				kt_swiglu_isa(ki, got, u, N);
			double worst = 0;
			for (int i = 0; i < N; i++) {
				double x = g[i];
				/* x/2 (1 + tanh z) = x / (1 + exp(-2z)), which keeps
				 * its digits where tanh z rounds to -1 */
				double z = kind ? sqrt(2 / M_PI) * (x + 0.044715 * x * x * x) : x / 2;
				double want = x / (1.0 + exp(-2 * z)) * u[i];
				/* GeGLU's z is rounded to float before exp, whose
				 * relative error then grows as |2z| */
				double amp = kind ? 1 + fabs(2 * z) : 1;
				double e = fabs(got[i] - want) / (1e-30 + 1.2e-7 * fabs(want) * amp);
				if (e > worst)
					worst = e;
			}
			T_CHECK(worst <= 4.0, "%s %s: error %g x 1.2e-7 |want| (x (1 + |2z|) for geglu)",
				what, how, worst);
			for (int i = N; i < N + 5; i++)
				T_CHECK(got[i] == 42.0f, "%s %s wrote past n", what, how);
		}
}

static void test_layernorm(uint64_t *seed)
{
	static const int ns[] = {384, 37, 5};
	for (size_t k = 0; k < 3; k++) {
		int n = ns[k];
		float x[384], w[384], b[384], out[384];
		double want[384];
		for (int i = 0; i < n; i++)
			x[i] = t_rand_f(seed) * 4 + 3, w[i] = t_rand_f(seed), b[i] = t_rand_f(seed);
		double mean = 0, var = 0;
		for (int i = 0; i < n; i++)
			mean += x[i];
		mean /= n;
		for (int i = 0; i < n; i++)
			var += (x[i] - mean) * (x[i] - mean);
		for (int i = 0; i < n; i++)
			want[i] = (x[i] - mean) / sqrt(var / n + 1e-12) * w[i] + b[i];
		for (int isa = 0; isa < 2; isa++) {
			kt_layernorm_isa(isa ? KT_ISA_AVX2 : KT_ISA_SCALAR, out, x, w, b, n, 1e-12f);
			double e = norm_err(out, want, n);
			T_CHECK(e < 1e-6, "layernorm %s n=%d: error %g", isa ? "avx2" : "scalar", n, e);
			memcpy(out, x, sizeof x);
			kt_layernorm_isa(isa ? KT_ISA_AVX2 : KT_ISA_SCALAR, out, out, w, b, n, 1e-12f);
			e = norm_err(out, want, n);
			T_CHECK(e < 1e-6, "layernorm %s n=%d in place: error %g", isa ? "avx2" : "scalar",
				n, e);
		}
	}
}

/* Attention of whole sequences (kt_attn_seq) against double precision, per
 * head of rows holding several heads; lengths around the tile sizes (6
 * queries, 16 keys) and a head size the AVX2 path declines (40). The other
 * heads' slices of out stay untouched. */
static void test_attn_seq(uint64_t *seed)
{
	static const int ns[] = {1, 5, 6, 7, 16, 17, 64, 130};
	static const int hds[] = {32, 64, 8, 40};
	for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
		for (size_t b = 0; b < sizeof hds / sizeof hds[0]; b++) {
			const int n = ns[a], hd = hds[b], stride = 3 * hd + 8, h0 = hd + 4;
			const size_t sz = (size_t)n * stride;
			float *q = malloc(sz * 4), *k = malloc(sz * 4), *v = malloc(sz * 4);
			float *out = malloc(sz * 4), *scratch = malloc(kt_attn_seq_scratch(n, hd) * 4);
			double *want = malloc((size_t)n * hd * 8), *p = malloc((size_t)n * 8);
			T_REQUIRE(q && k && v && out && scratch && want && p, "out of memory");
			for (size_t i = 0; i < sz; i++)
				q[i] = t_rand_f(seed) * 2, k[i] = t_rand_f(seed) * 2, v[i] = t_rand_f(seed);
			const float scale = 1.0f / sqrtf((float)hd);
			for (int i = 0; i < n; i++) {
				double mx = -1e300, sum = 0;
				for (int j = 0; j < n; j++) {
					double d = 0;
					for (int e = 0; e < hd; e++)
						d += (double)q[(size_t)i * stride + h0 + e] *
						     k[(size_t)j * stride + h0 + e];
					p[j] = d * scale;
					mx = fmax(mx, p[j]);
				}
				for (int j = 0; j < n; j++)
					sum += (p[j] = exp(p[j] - mx));
				for (int e = 0; e < hd; e++) {
					double o = 0;
					for (int j = 0; j < n; j++)
						o += p[j] / sum * v[(size_t)j * stride + h0 + e];
					want[(size_t)i * hd + e] = o;
				}
			}
			for (int isa = 0; isa < 2; isa++) {
				if (isa && kt_cpu_isa() == KT_ISA_SCALAR)
					break;
				for (size_t i = 0; i < sz; i++)
					out[i] = -7.0f;
				kt_attn_seq_isa(isa ? KT_ISA_AVX2 : KT_ISA_SCALAR, q + h0, k + h0, v + h0,
						(size_t)stride, n, hd, scale, scratch, out + h0);
				double num = 0, den = 0;
				int outside = 0;
				for (int i = 0; i < n; i++)
					for (int e = 0; e < stride; e++) {
						float o = out[(size_t)i * stride + e];
						if (e < h0 || e >= h0 + hd) {
							outside += o != -7.0f;
							continue;
						}
						double w = want[(size_t)i * hd + e - h0];
						num = fmax(num, fabs(o - w));
						den = fmax(den, fabs(w));
					}
				T_CHECK(num / den < 1e-5, "attn_seq %s n=%d hd=%d: error %g",
					isa ? "avx2" : "scalar", n, hd, num / den);
				T_CHECK(!outside, "attn_seq %s n=%d hd=%d: %d values written outside the head",
					isa ? "avx2" : "scalar", n, hd, outside);
			}
			free(q), free(k), free(v), free(out), free(scratch), free(want), free(p);
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
	test_attn_group(&seed);
	test_gelu(&seed);
	test_glu(&seed);
	test_layernorm(&seed);
	test_attn_seq(&seed);
	return t_done("test_ops");
}
