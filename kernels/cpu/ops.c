/*
 * The small per-token ops of a transformer, in float on the CPU. They are
 * O(n) per token, so they are written plainly; the compiler vectorises the
 * loops. These are also the reference the CUDA versions are tested against.
 * GELU and LayerNorm, which an encoder runs on every token of a batch, have
 * AVX2 versions too (ops_avx2.c), chosen at run time.
 */
#include <math.h>

#include "kernels/kernels.h"
#include "kernels/cpu/quant.h"

void kt_rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
	double ss = 0.0; /* double: long rows of large activations lose bits in float */
	for (int i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	float scale = (float)(1.0 / sqrt(ss / n + eps));
	if (w)
		for (int i = 0; i < n; i++)
			out[i] = x[i] * scale * w[i];
	else
		for (int i = 0; i < n; i++)
			out[i] = x[i] * scale;
}

static void layernorm_scalar(float *out, const float *x, const float *w, const float *b,
			     int n, float eps)
{
	double mean = 0.0, var = 0.0;
	for (int i = 0; i < n; i++)
		mean += x[i];
	mean /= n;
	for (int i = 0; i < n; i++) {
		double d = x[i] - mean;
		var += d * d;
	}
	float scale = (float)(1.0 / sqrt(var / n + eps));
	for (int i = 0; i < n; i++) {
		float v = (float)(x[i] - mean) * scale;
		out[i] = v * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f);
	}
}

void kt_layernorm_isa(enum kt_isa isa, float *out, const float *x, const float *w,
		      const float *b, int n, float eps)
{
	if (isa != KT_ISA_SCALAR && kt_cpu_has_avx2())
		kt_layernorm_avx2(out, x, w, b, n, eps);
	else
		layernorm_scalar(out, x, w, b, n, eps);
}

void kt_layernorm(float *out, const float *x, const float *w, const float *b,
		  int n, float eps)
{
	kt_layernorm_isa(kt_cpu_isa(), out, x, w, b, n, eps);
}

void kt_softmax(float *x, int n)
{
	float max = -INFINITY;
	for (int i = 0; i < n; i++)
		if (x[i] > max)
			max = x[i];
	double sum = 0.0;
	for (int i = 0; i < n; i++) {
		x[i] = expf(x[i] - max);
		sum += x[i];
	}
	float inv = (float)(1.0 / sum);
	for (int i = 0; i < n; i++)
		x[i] *= inv;
}

/* Both gates are g / (1 + exp(-a)) u: SiLU with a = g, GELU's tanh form
 * (g/2 (1 + tanh z), z = sqrt(2/pi) (g + 0.044715 g^3)) with a = 2z. */
static void glu_scalar(float *gate, const float *up, int n, int gelu)
{
	for (int i = 0; i < n; i++) {
		float g = gate[i];
		float a = gelu ? 2.0f * (0.7978845608f * (g + 0.044715f * g * g * g)) : g;
		gate[i] = g / (1.0f + expf(-a)) * up[i];
	}
}

static void glu_isa(enum kt_isa isa, float *gate, const float *up, int n, int gelu)
{
	if (isa != KT_ISA_SCALAR && kt_cpu_has_avx2())
		kt_glu_avx2(gate, up, n, gelu);
	else
		glu_scalar(gate, up, n, gelu);
}

void kt_swiglu_isa(enum kt_isa isa, float *gate, const float *up, int n)
{
	glu_isa(isa, gate, up, n, 0);
}

void kt_swiglu(float *gate, const float *up, int n)
{
	glu_isa(kt_cpu_isa(), gate, up, n, 0);
}

void kt_geglu_isa(enum kt_isa isa, float *gate, const float *up, int n)
{
	glu_isa(isa, gate, up, n, 1);
}

void kt_geglu(float *gate, const float *up, int n)
{
	glu_isa(kt_cpu_isa(), gate, up, n, 1);
}

void kt_rope(float *x, int n_heads, int head_dim, int n_rot, int pos,
	     float base, enum kt_rope_mode mode, const float *freq_factors)
{
	/* theta_i = pos * base^(-2i/n_rot), computed by repeated multiplication
	 * as ggml does so that both agree to the last bit for long contexts;
	 * the rotations are the same for every head, computed once. */
	float cs[2 * 512];
	float theta_scale = powf(base, -2.0f / (float)n_rot);
	float theta = (float)pos;
	for (int i0 = 0; i0 < n_rot / 2; i0 += 512) {
		int n = n_rot / 2 - i0 < 512 ? n_rot / 2 - i0 : 512;
		for (int i = 0; i < n; i++) {
			float t = freq_factors ? theta / freq_factors[i0 + i] : theta;
			cs[2 * i] = cosf(t);
			cs[2 * i + 1] = sinf(t);
			theta *= theta_scale;
		}
		for (int h = 0; h < n_heads; h++) {
			float *v = x + (size_t)h * head_dim;
			for (int i = 0; i < n; i++) {
				const float c = cs[2 * i], s = cs[2 * i + 1];
				int a, b;
				if (mode == KT_ROPE_NEOX) {
					a = i0 + i;
					b = i0 + i + n_rot / 2;
				} else {
					a = 2 * (i0 + i);
					b = a + 1;
				}
				float x0 = v[a], x1 = v[b];
				v[a] = x0 * c - x1 * s;
				v[b] = x0 * s + x1 * c;
			}
		}
	}
}

static void gelu_scalar(float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void kt_gelu_isa(enum kt_isa isa, float *x, int64_t n)
{
	if (isa != KT_ISA_SCALAR && kt_cpu_has_avx2())
		kt_gelu_avx2(x, n);
	else
		gelu_scalar(x, n);
}

void kt_gelu(float *x, int64_t n)
{
	kt_gelu_isa(kt_cpu_isa(), x, n);
}
