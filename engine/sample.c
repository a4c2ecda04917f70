/*
 * Sampling: choosing the next token from a row of logits.
 *
 * The chain and its semantics follow llama.cpp's default sampler: repetition
 * penalty over the last repeat_last_n accepted tokens, top-k, top-p
 * (nucleus), min-p, temperature, softmax, and a draw. Greedy decoding
 * (temp <= 0) applies the penalty and takes the argmax.
 *
 * Speed matters at 152k-token vocabularies, so no step sorts the whole
 * vocabulary: top-k keeps a k-entry heap; top-p without top-k finds the
 * nucleus by bucketing the logits and sorting only the bucket where the
 * cumulative probability crosses p (refining that bucket while it is large);
 * min-p is a threshold on the logits. Exponentials use a polynomial expf
 * (relative error below 1e-7) that the compiler keeps inline. Ties are broken
 * towards the lower token id everywhere, so results depend only on seed,
 * logits and history.
 *
 * Every buffer is allocated by sampler_new; sampler_sample allocates nothing.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

struct cand {
	float logit;
	float p;    /* exp(logit - max), filled where a step needs it */
	int32_t id;
};

#define NBUCKET 256

struct sampler {
	struct sampler_params p;
	int32_t n_vocab;
	uint64_t rng;        /* splitmix64 state */

	int32_t *hist;       /* ring of the last repeat_last_n accepted ids */
	int hist_cap, hist_n, hist_pos;
	uint32_t *stamp;     /* (n_vocab) penalty applied at this call number */
	uint32_t call;

	struct cand *cand;   /* (n_vocab) candidates */
	float *prob;         /* (n_vocab) unnormalised probabilities */
	uint8_t *bucket;     /* (n_vocab) nucleus(): first-level bucket */
	double mass[NBUCKET]; /* nucleus(): probability mass per bucket */
};

void sampler_defaults(struct sampler_params *p)
{
	p->temp = 0.8f;
	p->top_k = 40;
	p->top_p = 0.95f;
	p->min_p = 0.05f;
	p->repeat_penalty = 1.0f;
	p->repeat_last_n = 64;
	p->seed = 0xdeadbeefULL;
}

struct sampler *sampler_new(const struct sampler_params *p, int32_t n_vocab)
{
	struct sampler *s;

	if (n_vocab < 1)
		return NULL;
	s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	if (p)
		s->p = *p;
	else
		sampler_defaults(&s->p);
	s->n_vocab = n_vocab;
	s->rng = s->p.seed;
	s->hist_cap = s->p.repeat_last_n > 0 ? s->p.repeat_last_n : 0;
	s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
	s->prob = malloc((size_t)n_vocab * sizeof *s->prob);
	s->bucket = malloc((size_t)n_vocab);
	s->stamp = calloc((size_t)n_vocab, sizeof *s->stamp);
	s->hist = malloc((size_t)(s->hist_cap ? s->hist_cap : 1) * sizeof *s->hist);
	if (!s->cand || !s->prob || !s->bucket || !s->stamp || !s->hist) {
		sampler_free(s);
		return NULL;
	}
	return s;
}

void sampler_free(struct sampler *s)
{
	if (!s)
		return;
	free(s->cand);
	free(s->prob);
	free(s->bucket);
	free(s->stamp);
	free(s->hist);
	free(s);
}

void sampler_accept(struct sampler *s, int32_t id)
{
	if (!s || s->hist_cap == 0 || id < 0 || id >= s->n_vocab)
		return;
	s->hist[s->hist_pos] = id;
	s->hist_pos = (s->hist_pos + 1) % s->hist_cap;
	if (s->hist_n < s->hist_cap)
		s->hist_n++;
}

/* splitmix64 (Steele, Lea, Flood 2014): one 64-bit state, full period,
 * passes BigCrush; plenty for drawing tokens. */
static uint64_t rng_next(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t *x)
{
	return (double)(rng_next(x) >> 11) * (1.0 / 9007199254740992.0);
}

/*
 * e^x for x <= 0 (a logit minus the maximum), 0 below -87 where expf would
 * be subnormal, so masked (-inf) tokens get exactly 0. Cephes' expf: x =
 * n ln2 + r with |r| <= ln2/2, a polynomial for e^r, 2^n from the exponent
 * bits; relative error below 1e-7. Written once for 4 lanes (GCC/Clang vector
 * extensions: SSE2 on any x86-64, NEON on arm64) and once per scalar, the
 * same operations in the same order.
 */
#define EXP_LO -87.0f
#define EXP_MAGIC 12582912.0f /* 1.5 * 2^23: adding it rounds to an integer */
#define EXP_LOG2E 1.44269504088896341f
#define EXP_LN2_HI 0.693359375f
#define EXP_LN2_LO -2.12194440e-4f

static inline float fast_expf(float x)
{
	float xc = x < EXP_LO ? EXP_LO : x > 0.0f ? 0.0f : x;
	float t = xc * EXP_LOG2E + EXP_MAGIC;
	float nf = t - EXP_MAGIC;
	uint32_t tb, sb;
	float r, p, scale;

	memcpy(&tb, &t, sizeof tb);
	sb = (tb - 0x4b400000u + 127u) << 23;
	memcpy(&scale, &sb, sizeof scale);
	r = xc - nf * EXP_LN2_HI;
	r = r - nf * EXP_LN2_LO;
	p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * r * r + r + 1.0f;
	return x < EXP_LO ? 0.0f : p * scale;
}

#if defined(__GNUC__)
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
typedef uint32_t v4u __attribute__((vector_size(16)));

static inline v4f fast_expf4(v4f x)
{
	const v4f lo = { EXP_LO, EXP_LO, EXP_LO, EXP_LO };
	v4i below = x < lo, above = x > 0.0f;
	v4f xc = (v4f)(((v4i)x & ~below & ~above) | ((v4i)lo & below));
	v4f t = xc * EXP_LOG2E + EXP_MAGIC;
	v4f nf = t - EXP_MAGIC;
	v4f scale = (v4f)(((v4u)t - 0x4b400000u + 127u) << 23);
	v4f r = xc - nf * EXP_LN2_HI, p;

	r = r - nf * EXP_LN2_LO;
	p = r * 1.9875691500e-4f + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * r * r + r + 1.0f;
	return (v4f)((v4i)(p * scale) & ~below);
}
#endif

/* out[i] = e^((l[i] - m) * inv) for i < n. */
static void exp_block(const float *l, float *out, int32_t n, float m, float inv)
{
	int32_t i = 0;
#if defined(__GNUC__)
	for (; i + 4 <= n; i += 4) {
		v4f x;
		memcpy(&x, l + i, sizeof x);
		x = fast_expf4((x - m) * inv);
		memcpy(out + i, &x, sizeof x);
	}
#endif
	for (; i < n; i++)
		out[i] = fast_expf((l[i] - m) * inv);
}

/* llama.cpp's repetition penalty: once per distinct token in the window,
 * logit / penalty when positive, logit * penalty otherwise. */
static void apply_penalty(struct sampler *s, float *logits)
{
	float pen = s->p.repeat_penalty;

	if (pen == 1.0f || s->hist_n == 0)
		return;
	if (++s->call == 0) { /* wrapped: old stamps could collide */
		memset(s->stamp, 0, (size_t)s->n_vocab * sizeof *s->stamp);
		s->call = 1;
	}
	for (int i = 0; i < s->hist_n; i++) {
		int32_t id = s->hist[i];
		if (s->stamp[id] == s->call)
			continue;
		s->stamp[id] = s->call;
		if (logits[id] <= 0.0f)
			logits[id] *= pen;
		else
			logits[id] /= pen;
	}
}

/* Bucket of a logit at distance hi - logit, with scale buckets per unit;
 * -inf and anything past the range land in the last bucket. */
static int bucket_of(float hi, float logit, double scale)
{
	double d = ((double)hi - (double)logit) * scale;
	if (!(d < NBUCKET - 1))
		return NBUCKET - 1;
	return d < 0.0 ? 0 : (int)d;
}

/* a ranks before b: higher logit, then lower id. */
static int before(const struct cand *a, const struct cand *b)
{
	return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_cand(const void *pa, const void *pb)
{
	const struct cand *a = pa, *b = pb;
	return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

/* Min-heap by rank: the root is the worst of those kept. */
static void heap_down(struct cand *h, int n, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, w = i;
		if (l < n && before(&h[w], &h[l]))
			w = l;
		if (r < n && before(&h[w], &h[r]))
			w = r;
		if (w == i)
			return;
		struct cand t = h[i];
		h[i] = h[w];
		h[w] = t;
		i = w;
	}
}

/* The k best of logits into c[0..k), best first. */
static void select_top_k(struct cand *c, const float *logits, int32_t n, int k)
{
	for (int i = 0; i < k; i++)
		c[i] = (struct cand){ logits[i], 0.0f, i };
	for (int i = k / 2 - 1; i >= 0; i--)
		heap_down(c, k, i);
	for (int32_t i = k; i < n; i++) {
		/* Later ids lose ties, so only a strictly higher logit enters. */
		if (logits[i] > c[0].logit) {
			c[0] = (struct cand){ logits[i], 0.0f, i };
			heap_down(c, k, 0);
		}
	}
	qsort(c, (size_t)k, sizeof *c, cmp_cand);
}

/*
 * Refine a nucleus inside an unsorted candidate list: reorder c[0..n) so
 * that c[0..m) are the highest-ranked candidates whose mass (c[].p, filled)
 * first reaches target, and return m. Candidates are bucketed by logit over [lo, hi]; the
 * buckets above the one where the running mass crosses target are kept
 * whole, and only that bucket is examined further, re-bucketed while it is
 * large and sorted once it is small.
 */
static int32_t nucleus_refine(struct sampler *s, struct cand *c, int32_t n,
			      double target, float hi, float lo)
{
	int32_t kept = 0;

	for (int depth = 0;; depth++) {
		if (n <= 64 || depth >= 8 || !(hi > lo)) {
			qsort(c, (size_t)n, sizeof *c, cmp_cand);
			double cum = 0.0;
			for (int32_t i = 0; i < n; i++) {
				cum += c[i].p;
				if (cum >= target)
					return kept + i + 1;
			}
			return kept + n;
		}
		double scale = NBUCKET / ((double)hi - (double)lo);
		memset(s->mass, 0, sizeof s->mass);
		for (int32_t i = 0; i < n; i++) {
			int b = bucket_of(hi, c[i].logit, scale);
			s->mass[b] += c[i].p;
		}
		double cum = 0.0;
		int B;
		for (B = 0; B < NBUCKET - 1; B++) {
			if (cum + s->mass[B] >= target)
				break;
			cum += s->mass[B];
		}
		if (B == NBUCKET - 1 && cum + s->mass[B] < target) {
			/* Rounding left the target out of reach: keep all. */
			return kept + n;
		}
		/* Three-way partition: buckets < B, bucket B, the rest. */
		int32_t lt = 0, i = 0, gt = n;
		float bhi = -INFINITY, blo = INFINITY;
		while (i < gt) {
			int b = bucket_of(hi, c[i].logit, scale);
			if (b < B) {
				struct cand t = c[lt];
				c[lt++] = c[i];
				c[i++] = t;
			} else if (b > B) {
				struct cand t = c[--gt];
				c[gt] = c[i];
				c[i] = t;
			} else {
				if (c[i].logit > bhi)
					bhi = c[i].logit;
				if (c[i].logit < blo)
					blo = c[i].logit;
				i++;
			}
		}
		kept += lt;
		c += lt;
		n = gt - lt;
		target -= cum;
		hi = bhi;
		lo = blo;
	}
}

/* Logits below max - NUCLEUS_RANGE share the last bucket of the first
 * level: e^-32 each, they matter only when everything else does too. */
#define NUCLEUS_RANGE 32.0f

/*
 * The nucleus of the whole vocabulary: c[0..m) gets the highest-ranked
 * tokens whose probability first reaches top_p of the total; returns m.
 * One pass over the logits computes the total and the mass per bucket;
 * a second gathers the buckets above the crossing one, and the crossing
 * bucket is refined among candidates. Nothing is copied for the tokens
 * that end up outside.
 */
static int32_t nucleus(struct sampler *s, const float *logits, int32_t n,
		       float m, float top_p)
{
	double mass[4][NBUCKET];
	const float scale = NBUCKET / NUCLEUS_RANGE;
	struct cand *c = s->cand;
	double z = 0.0, target, cum = 0.0;
	int B;

	memset(mass, 0, sizeof mass);
	/* Four interleaved tables: neighbours usually share a bucket, and one
	 * table would make each add wait for the previous one. */
	for (int32_t i0 = 0; i0 < n; i0 += 256) {
		int32_t len = n - i0 < 256 ? n - i0 : 256;
		const float *l = logits + i0;
		float *pr = s->prob + i0;
		uint8_t *bk = s->bucket + i0;
		exp_block(l, pr, len, m, 1.0f);
		for (int32_t j = 0; j < len; j++) {
			float d = (m - l[j]) * scale;
			int b = d < NBUCKET - 1 ? (int)d : NBUCKET - 1;
			bk[j] = (uint8_t)b;
			mass[j & 3][b] += pr[j];
		}
	}
	for (int b = 0; b < NBUCKET; b++) {
		s->mass[b] = mass[0][b] + mass[1][b] + mass[2][b] + mass[3][b];
		z += s->mass[b];
	}
	target = (double)top_p * z;
	for (B = 0; B < NBUCKET - 1; B++) {
		if (cum + s->mass[B] >= target)
			break;
		cum += s->mass[B];
	}

	/* Buckets above B from the front, bucket B from the back. */
	int32_t kept = 0, nb = 0;
	float bhi = -INFINITY, blo = INFINITY;
	for (int32_t i = 0; i < n; i++) {
		int b = s->bucket[i];
		if (b > B)
			continue;
		float l = logits[i];
		if (b < B) {
			c[kept++] = (struct cand){ l, s->prob[i], i };
		} else {
			c[n - 1 - nb++] = (struct cand){ l, s->prob[i], i };
			bhi = l > bhi ? l : bhi;
			blo = l < blo ? l : blo;
		}
	}
	memmove(c + kept, c + n - nb, (size_t)nb * sizeof *c);
	if (B == NBUCKET - 1 && blo == -INFINITY) {
		/* Refine over the finite logits of the last bucket; the -inf
		 * ones carry no mass and rank last anyway. */
		blo = bhi;
		for (int32_t k = kept; k < kept + nb; k++)
			if (c[k].logit != -INFINITY && c[k].logit < blo)
				blo = c[k].logit;
	}
	return kept + nucleus_refine(s, c + kept, nb, target - cum, bhi, blo);
}

/* Index of the first maximum of logits; NaNs become -inf on the way. */
static int32_t scan_max(float *logits, int32_t n)
{
	float mx[8];
	int nan = 0;
	int32_t i = 0;

	for (int j = 0; j < 8; j++)
		mx[j] = -INFINITY;
	for (; i + 8 <= n; i += 8) {
		for (int j = 0; j < 8; j++) {
			float x = logits[i + j];
			nan |= x != x;
			mx[j] = x > mx[j] ? x : mx[j];
		}
	}
	for (; i < n; i++) {
		nan |= logits[i] != logits[i];
		mx[0] = logits[i] > mx[0] ? logits[i] : mx[0];
	}
	if (nan)
		for (i = 0; i < n; i++)
			if (logits[i] != logits[i])
				logits[i] = -INFINITY;
	float m = mx[0];
	for (int j = 1; j < 8; j++)
		m = mx[j] > m ? mx[j] : m;
	for (i = 0; i < n; i++)
		if (logits[i] == m)
			return i;
	return 0; /* all NaN: now all -inf */
}

/* Softmax of c[0..nc) at temperature 1 / inv_t and one draw from it. */
static int32_t draw_cands(struct sampler *s, struct cand *c, int32_t nc,
			  float m, float inv_t)
{
	double z = 0.0, u, cum = 0.0;

	for (int32_t i = 0; i < nc; i++) {
		c[i].p = fast_expf((c[i].logit - m) * inv_t);
		z += c[i].p;
	}
	u = rng_uniform(&s->rng) * z;
	for (int32_t i = 0; i < nc; i++) {
		cum += c[i].p;
		if (u < cum)
			return c[i].id;
	}
	/* u fell past the rounded total: the last candidate with mass. */
	for (int32_t i = nc - 1; i >= 0; i--)
		if (c[i].p > 0.0f)
			return c[i].id;
	return c[0].id;
}

/* Softmax over the whole vocabulary and one draw. */
static int32_t draw_all(struct sampler *s, const float *logits, int32_t n,
			float m, float inv_t, int32_t best)
{
	double z[4] = { 0.0, 0.0, 0.0, 0.0 }, u, cum = 0.0;
	float *p = s->prob;
	int32_t i;

	exp_block(logits, p, n, m, inv_t);
	/* Four partial sums: one would serialise on the add latency. */
	for (i = 0; i + 4 <= n; i += 4)
		for (int j = 0; j < 4; j++)
			z[j] += p[i + j];
	for (; i < n; i++)
		z[0] += p[i];
	u = rng_uniform(&s->rng) * (z[0] + z[1] + z[2] + z[3]);
	for (i = 0; i < n; i++) {
		cum += p[i];
		if (u < cum)
			return i;
	}
	for (i = n - 1; i >= 0; i--)
		if (p[i] > 0.0f)
			return i;
	return best;
}

int32_t sampler_sample(struct sampler *s, float *logits)
{
	const int32_t n = s->n_vocab;
	const struct sampler_params *p = &s->p;
	struct cand *c = s->cand;
	int32_t nc, best;
	float m, inv_t;

	if (s->hist_cap > 0)
		apply_penalty(s, logits);
	best = scan_max(logits, n);
	m = logits[best];
	inv_t = 1.0f / p->temp;
	/* A temperature so small that 1 / temp overflows is greedy too. */
	if (p->temp <= 0.0f || !isfinite(inv_t) || p->top_k == 1 || !isfinite(m))
		return best;

	if (p->top_k > 0 && p->top_k < n) {
		/* Sorted candidates: top-p is a prefix. */
		nc = p->top_k;
		select_top_k(c, logits, n, nc);
		if (p->top_p < 1.0f) {
			double z = 0.0, cum = 0.0;
			for (int32_t i = 0; i < nc; i++) {
				c[i].p = fast_expf(c[i].logit - m);
				z += c[i].p;
			}
			int32_t i;
			for (i = 0; i < nc; i++) {
				cum += c[i].p;
				if (cum >= (double)p->top_p * z)
					break;
			}
			nc = i < nc ? i + 1 : nc;
		}
	} else if (p->top_p < 1.0f) {
		nc = nucleus(s, logits, n, m, p->top_p);
	} else if (p->min_p > 0.0f) {
		/* min-p alone: only the survivors become candidates. */
		float thr = p->min_p >= 1.0f ? m : m + logf(p->min_p);
		nc = 0;
		for (int32_t i = 0; i < n; i++)
			if (logits[i] >= thr)
				c[nc++] = (struct cand){ logits[i], 0.0f, i };
		return draw_cands(s, c, nc, m, inv_t);
	} else {
		return draw_all(s, logits, n, m, inv_t, best);
	}

	if (p->min_p > 0.0f) {
		/* p_i >= min_p * p_max  <=>  logit_i >= max + log(min_p). */
		float thr = p->min_p >= 1.0f ? m : m + logf(p->min_p);
		int32_t k = 0;
		for (int32_t i = 0; i < nc; i++)
			if (c[i].logit >= thr)
				c[k++] = c[i];
		nc = k;
	}
	/* The best token survives every filter, so nc >= 1. */
	return draw_cands(s, c, nc, m, inv_t);
}
