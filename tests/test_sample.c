/*
 * Sampling: greedy, determinism per seed, each filter of the chain (top-k,
 * top-p, min-p) keeping exactly what it should with the kept tokens drawn at
 * their renormalised probabilities, the repetition penalty's llama.cpp
 * semantics, temperature, and the time per sample at a 152k vocabulary
 * (printed, not asserted).
 */
#include <math.h>
#include <time.h>

#include "engine/engine.h"
#include "testutil.h"

#define BIG_VOCAB 152064 /* Qwen2 */

static struct sampler_params plain(void)
{
	struct sampler_params p;
	sampler_defaults(&p);
	p.temp = 1.0f;
	p.top_k = 0;
	p.top_p = 1.0f;
	p.min_p = 0.0f;
	p.repeat_penalty = 1.0f;
	return p;
}

/* Draw n tokens from fresh copies of logits; counts[id]++ for each. */
static void draw(const struct sampler_params *p, const float *logits,
		 int32_t nv, int n, int *counts)
{
	struct sampler *s = sampler_new(p, nv);
	float *l = malloc((size_t)nv * sizeof *l);
	T_REQUIRE(s && l, "out of memory");
	memset(counts, 0, (size_t)nv * sizeof *counts);
	for (int i = 0; i < n; i++) {
		memcpy(l, logits, (size_t)nv * sizeof *l);
		int32_t id = sampler_sample(s, l);
		T_REQUIRE(id >= 0 && id < nv, "id %d out of range", (int)id);
		counts[id]++;
	}
	free(l);
	sampler_free(s);
}

/*
 * A vocabulary of nv tokens where the tokens at ids[] have probabilities
 * probs[] (summing to 1 up to a negligible remainder) and every other token
 * a logit 40 below the smallest: e^-40 each, nothing measurable.
 */
static float *peaked(int32_t nv, const int32_t *ids, const double *probs,
		     int k)
{
	float *l = malloc((size_t)nv * sizeof *l);
	double lo = 0.0;
	T_REQUIRE(l, "out of memory");
	for (int i = 0; i < k; i++)
		if (log(probs[i]) < lo)
			lo = log(probs[i]);
	for (int32_t i = 0; i < nv; i++)
		l[i] = (float)(lo - 40.0);
	for (int i = 0; i < k; i++)
		l[ids[i]] = (float)log(probs[i]);
	return l;
}

/* Check that exactly the tokens with keep[i] were drawn, at frequencies
 * within tol of probs renormalised over the kept ones. */
static void check_freqs(const char *what, const int *counts, int32_t nv,
			const int32_t *ids, const double *probs,
			const int *keep, int k, int n, double tol)
{
	double z = 0.0;
	int in_set = 0;
	for (int i = 0; i < k; i++)
		if (keep[i])
			z += probs[i];
	for (int i = 0; i < k; i++) {
		double want = keep[i] ? probs[i] / z : 0.0;
		double got = (double)counts[ids[i]] / n;
		in_set += counts[ids[i]];
		if (!keep[i])
			T_CHECK(counts[ids[i]] == 0, "%s: excluded token %d drawn %d times",
				what, (int)ids[i], counts[ids[i]]);
		else
			T_CHECK(fabs(got - want) < tol, "%s: token %d frequency %.4f, want %.4f",
				what, (int)ids[i], got, want);
	}
	T_CHECK(in_set == n, "%s: %d of %d draws outside the peaks", what,
		n - in_set, n);
	(void)nv;
}

static void test_greedy(void)
{
	uint64_t r = 1;
	int32_t nv = 5000;
	float *l = malloc((size_t)nv * sizeof *l);
	struct sampler_params p;
	sampler_defaults(&p);
	p.temp = 0.0f;
	struct sampler *s = sampler_new(&p, nv);
	T_REQUIRE(l && s, "out of memory");

	for (int round = 0; round < 20; round++) {
		int32_t best = 0;
		for (int32_t i = 0; i < nv; i++) {
			l[i] = 10.0f * t_rand_f(&r);
			if (l[i] > l[best])
				best = i;
		}
		T_CHECK(sampler_sample(s, l) == best, "round %d: argmax %d", round,
			(int)best);
	}
	/* Ties go to the lowest id. */
	for (int32_t i = 0; i < nv; i++)
		l[i] = 0.0f;
	l[4000] = l[1234] = l[4999] = 3.0f;
	T_CHECK(sampler_sample(s, l) == 1234, "tie");
	sampler_free(s);

	/* Negative temperature is greedy too; so is top-k 1 at any temperature. */
	struct sampler_params q = plain();
	q.temp = -1.0f;
	int counts[8];
	const float few[8] = { 0.1f, 0.5f, 2.0f, 1.9f, 2.0f, -1.0f, 0.0f, 1.0f };
	draw(&q, few, 8, 200, counts);
	T_CHECK(counts[2] == 200, "negative temperature: argmax drawn %d/200", counts[2]);
	q = plain();
	q.temp = 1.5f;
	q.top_k = 1;
	draw(&q, few, 8, 200, counts);
	T_CHECK(counts[2] == 200, "top-k 1: argmax drawn %d/200", counts[2]);
	free(l);
}

static void test_seeds(void)
{
	uint64_t r = 7;
	int32_t nv = 32000;
	float *l = malloc((size_t)nv * sizeof *l), *w = malloc((size_t)nv * sizeof *w);
	int32_t seq[3][200];
	T_REQUIRE(l && w, "out of memory");
	for (int32_t i = 0; i < nv; i++)
		l[i] = 4.0f * t_rand_f(&r);

	const uint64_t seeds[3] = { 42, 42, 43 };
	for (int k = 0; k < 3; k++) {
		struct sampler_params p;
		sampler_defaults(&p);
		p.top_k = 0; /* the nucleus path over the whole vocabulary */
		p.min_p = 0.0f;
		p.repeat_penalty = 1.1f;
		p.seed = seeds[k];
		struct sampler *s = sampler_new(&p, nv);
		T_REQUIRE(s, "out of memory");
		for (int i = 0; i < 200; i++) {
			memcpy(w, l, (size_t)nv * sizeof *w);
			seq[k][i] = sampler_sample(s, w);
			sampler_accept(s, seq[k][i]);
		}
		sampler_free(s);
	}
	T_CHECK(!memcmp(seq[0], seq[1], sizeof seq[0]), "same seed, different tokens");
	int same = 0;
	for (int i = 0; i < 200; i++)
		same += seq[0][i] == seq[2][i];
	T_CHECK(same < 20, "seeds 42 and 43 agree on %d of 200 tokens", same);
	free(l);
	free(w);
}

static void test_top_k(void)
{
	const int32_t ids[] = { 17, 3, 290, 211, 64, 7 };
	const double probs[] = { 0.35, 0.25, 0.15, 0.12, 0.08, 0.05 };
	const int keep3[] = { 1, 1, 1, 0, 0, 0 };
	const int all[] = { 1, 1, 1, 1, 1, 1 };
	int32_t nv = 300;
	int n = 20000;
	float *l = peaked(nv, ids, probs, 6);
	int *counts = malloc((size_t)nv * sizeof *counts);
	struct sampler_params p = plain();

	p.top_k = 3;
	draw(&p, l, nv, n, counts);
	check_freqs("top-k 3", counts, nv, ids, probs, keep3, 6, n, 0.015);
	p.top_k = nv + 5; /* larger than the vocabulary: off */
	draw(&p, l, nv, n, counts);
	check_freqs("top-k > vocab", counts, nv, ids, probs, all, 6, n, 0.015);
	free(l);
	free(counts);
}

static void test_top_p(void)
{
	/* Cumulative: 0.35 0.60 0.75 0.87 0.95 1.00. top-p 0.7 keeps the
	 * first three (the third crosses 0.7), 0.6 keeps two (0.60 reaches
	 * it), 0.2 keeps one. */
	const int32_t ids[] = { 17, 3, 290, 211, 64, 7 };
	const double probs[] = { 0.35, 0.25, 0.15, 0.12, 0.08, 0.05 };
	const struct {
		float top_p;
		int keep[6];
	} cases[] = {
		{ 0.7f, { 1, 1, 1, 0, 0, 0 } },
		{ 0.59f, { 1, 1, 0, 0, 0, 0 } },
		{ 0.2f, { 1, 0, 0, 0, 0, 0 } },
		{ 0.9f, { 1, 1, 1, 1, 1, 0 } },
	};
	int32_t nv = 300;
	int n = 20000;
	float *l = peaked(nv, ids, probs, 6);
	int *counts = malloc((size_t)nv * sizeof *counts);

	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		char what[64];
		struct sampler_params p = plain();
		p.top_p = cases[c].top_p;
		/* Both paths: the whole vocabulary (bucketed nucleus) and after
		 * top-k (sorted candidates). */
		for (int k = 0; k <= 50; k += 50) {
			p.top_k = k;
			snprintf(what, sizeof what, "top-p %.2f top-k %d", cases[c].top_p, k);
			draw(&p, l, nv, n, counts);
			check_freqs(what, counts, nv, ids, probs, cases[c].keep, 6, n, 0.015);
		}
	}
	free(l);
	free(counts);
}

static int cmp_desc(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x > y ? -1 : x < y ? 1 : 0;
}

/* The nucleus over a 152k vocabulary against a brute-force sort: no draw
 * may fall outside it, for a realistic spread of logits and for a nearly
 * flat one (where the crossing bucket is huge and must be refined). */
static void test_top_p_big(void)
{
	int32_t nv = BIG_VOCAB;
	float *l = malloc((size_t)nv * sizeof *l), *sorted = malloc((size_t)nv * sizeof *l);
	int *counts = malloc((size_t)nv * sizeof *counts);
	uint64_t r = 99;
	T_REQUIRE(l && sorted && counts, "out of memory");

	for (int shape = 0; shape < 2; shape++) {
		for (int32_t i = 0; i < nv; i++) {
			float g = t_rand_f(&r) + t_rand_f(&r) + t_rand_f(&r);
			l[i] = shape == 0 ? 3.0f * g : 0.01f * g;
		}
		if (shape == 0)
			l[77] = 14.0f, l[150000] = 13.0f;
		const float top_p = shape == 0 ? 0.9f : 0.5f;
		double z = 0.0, cum = 0.0;
		float mx = -INFINITY;
		for (int32_t i = 0; i < nv; i++)
			mx = l[i] > mx ? l[i] : mx;
		memcpy(sorted, l, (size_t)nv * sizeof *l);
		qsort(sorted, (size_t)nv, sizeof *sorted, cmp_desc);
		for (int32_t i = 0; i < nv; i++)
			z += exp((double)sorted[i] - mx);
		int32_t m = 0;
		while (m < nv) {
			cum += exp((double)sorted[m++] - mx);
			if (cum >= top_p * z)
				break;
		}
		float cut = sorted[m - 1];

		struct sampler_params p = plain();
		p.top_p = top_p;
		int n = 600;
		draw(&p, l, nv, n, counts);
		int outside = 0, distinct = 0;
		for (int32_t i = 0; i < nv; i++) {
			if (counts[i] && l[i] < cut)
				outside += counts[i];
			distinct += counts[i] > 0;
		}
		T_CHECK(outside == 0, "shape %d: %d draws below the nucleus cut %g "
			"(nucleus %d tokens)", shape, outside, cut, (int)m);
		if (shape == 0) {
			/* The two peaks hold most of the mass. */
			double want = exp(14.0 - mx) / cum, got = (double)counts[77] / n;
			T_CHECK(fabs(got - want) < 0.03, "peak frequency %.3f, want %.3f",
				got, want);
		} else {
			/* Nearly equal probabilities: the lowest fifth of the
			 * nucleus (just above the cut) gets about a fifth of
			 * the draws; a nucleus cut short would starve it. */
			float r80 = sorted[(int32_t)(0.8 * m)];
			int low = 0;
			for (int32_t i = 0; i < nv; i++)
				if (counts[i] && l[i] <= r80)
					low += counts[i];
			T_CHECK(low > n / 10 && low < 3 * n / 10,
				"flat: %d of %d draws in the lowest fifth of the nucleus",
				low, n);
			T_CHECK(distinct > n / 2, "flat: only %d distinct tokens in %d draws",
				distinct, n);
		}
	}
	free(l);
	free(sorted);
	free(counts);
}

static void test_min_p(void)
{
	/* min-p 0.1 of the top 0.5 is 0.05: 0.04 goes, 0.06 stays. */
	const int32_t ids[] = { 5, 6, 7, 8, 9 };
	const double probs[] = { 0.5, 0.3, 0.1, 0.06, 0.04 };
	const int keep[] = { 1, 1, 1, 1, 0 };
	const int keep_top[] = { 1, 0, 0, 0, 0 };
	int32_t nv = 500;
	int n = 20000;
	float *l = peaked(nv, ids, probs, 5);
	int *counts = malloc((size_t)nv * sizeof *counts);
	struct sampler_params p = plain();

	p.min_p = 0.1f;
	for (int k = 0; k <= 20; k += 20) {
		p.top_k = k;
		draw(&p, l, nv, n, counts);
		check_freqs(k ? "min-p after top-k" : "min-p", counts, nv, ids, probs,
			    keep, 5, n, 0.015);
	}
	p.min_p = 1.0f;
	draw(&p, l, nv, 2000, counts);
	check_freqs("min-p 1", counts, nv, ids, probs, keep_top, 5, 2000, 1e-9);
	/* top-p then min-p: top-p 0.85 keeps 0.5 0.3 0.1 (renormalised to 0.9),
	 * min-p 0.25 then drops 0.1 (< 0.125). */
	const int keep_both[] = { 1, 1, 0, 0, 0 };
	p.top_k = 0;
	p.top_p = 0.85f;
	p.min_p = 0.25f;
	draw(&p, l, nv, n, counts);
	check_freqs("top-p + min-p", counts, nv, ids, probs, keep_both, 5, n, 0.015);
	free(l);
	free(counts);
}

static void test_penalty(void)
{
	struct sampler_params p = plain();
	p.temp = 0.0f;
	p.repeat_penalty = 2.0f;
	p.repeat_last_n = 3;
	struct sampler *s = sampler_new(&p, 6);
	T_REQUIRE(s, "out of memory");
	float l[6];

	/* No history: nothing changes. */
	const float base[6] = { 3.0f, -1.0f, 2.0f, 0.5f, 0.0f, 1.0f };
	memcpy(l, base, sizeof l);
	T_CHECK(sampler_sample(s, l) == 0 && !memcmp(l, base, sizeof l), "no history");

	/* Token 0 three times and token 1 once: each penalised once,
	 * positive divided, negative multiplied. Window 3 = {0, 0, 1}. */
	sampler_accept(s, 0);
	sampler_accept(s, 0);
	sampler_accept(s, 0);
	sampler_accept(s, 1);
	sampler_accept(s, -5);     /* ignored */
	sampler_accept(s, 6);      /* ignored */
	memcpy(l, base, sizeof l);
	int32_t id = sampler_sample(s, l);
	T_CHECK(l[0] == 1.5f, "positive logit divided once: %g", l[0]);
	T_CHECK(l[1] == -2.0f, "negative logit multiplied: %g", l[1]);
	T_CHECK(l[2] == 2.0f && l[3] == 0.5f && l[5] == 1.0f, "others untouched");
	T_CHECK(id == 2, "greedy after the penalty picks 2, got %d", (int)id);

	/* The window slides: after 4, 5, 4 the zeros are out of it. A zero
	 * logit stays zero (multiplied). */
	sampler_accept(s, 4);
	sampler_accept(s, 5);
	sampler_accept(s, 4);
	memcpy(l, base, sizeof l);
	id = sampler_sample(s, l);
	T_CHECK(l[0] == 3.0f && l[1] == -1.0f, "tokens out of the window untouched");
	T_CHECK(l[5] == 0.5f && l[4] == 0.0f, "window tokens penalised: %g %g", l[5], l[4]);
	T_CHECK(id == 0, "got %d", (int)id);
	sampler_free(s);

	/* Off when repeat_penalty is 1 or repeat_last_n is 0. */
	p.repeat_penalty = 1.0f;
	s = sampler_new(&p, 6);
	sampler_accept(s, 0);
	memcpy(l, base, sizeof l);
	sampler_sample(s, l);
	T_CHECK(!memcmp(l, base, sizeof l), "penalty 1 is off");
	sampler_free(s);
	p.repeat_penalty = 1.3f;
	p.repeat_last_n = 0;
	s = sampler_new(&p, 6);
	sampler_accept(s, 0);
	memcpy(l, base, sizeof l);
	sampler_sample(s, l);
	T_CHECK(!memcmp(l, base, sizeof l), "repeat_last_n 0 is off");
	sampler_free(s);
}

static void test_temperature(void)
{
	/* Two tokens a logit apart: p0 = 1 / (1 + e^(-1/T)). */
	const float l[2] = { 1.0f, 0.0f };
	const float temps[] = { 0.25f, 0.5f, 1.0f, 2.0f, 4.0f };
	int counts[2], n = 20000;
	double prev = 1.0;

	for (size_t i = 0; i < sizeof temps / sizeof temps[0]; i++) {
		struct sampler_params p = plain();
		p.temp = temps[i];
		draw(&p, l, 2, n, counts);
		double got = (double)counts[0] / n;
		double want = 1.0 / (1.0 + exp(-1.0 / temps[i]));
		T_CHECK(fabs(got - want) < 0.015, "T=%.2f: p0 %.4f, want %.4f",
			temps[i], got, want);
		T_CHECK(got < prev, "T=%.2f: higher temperature must flatten", temps[i]);
		prev = got;
	}
}

static void test_odd_inputs(void)
{
	T_CHECK(sampler_new(NULL, 0) == NULL, "empty vocabulary");
	struct sampler *s = sampler_new(NULL, 4); /* the defaults */
	T_REQUIRE(s, "out of memory");
	float l[4] = { -INFINITY, -INFINITY, -INFINITY, -INFINITY };
	int32_t id = sampler_sample(s, l);
	T_CHECK(id >= 0 && id < 4, "all -inf: %d", (int)id);
	float q[4] = { NAN, 1.0f, NAN, 0.5f };
	id = sampler_sample(s, q);
	T_CHECK(id == 1 || id == 3, "NaN logits: %d", (int)id);
	T_CHECK(isinf(q[0]) && q[0] < 0, "NaN becomes -inf");
	float r[4] = { 0.0f, -INFINITY, 5.0f, -INFINITY };
	for (int i = 0; i < 100; i++) {
		float w[4];
		memcpy(w, r, sizeof w);
		id = sampler_sample(s, w);
		T_CHECK(id == 0 || id == 2, "masked token drawn: %d", (int)id);
	}
	sampler_free(s);
	sampler_free(NULL);
	sampler_accept(NULL, 3);

	struct sampler_params d;
	sampler_defaults(&d);
	T_CHECK(d.temp == 0.8f && d.top_k == 40 && d.top_p == 0.95f &&
			d.min_p == 0.05f && d.repeat_penalty == 1.0f &&
			d.repeat_last_n == 64,
		"defaults");
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void time_big_vocab(void)
{
	int32_t nv = BIG_VOCAB;
	float *l = malloc((size_t)nv * sizeof *l), *w = malloc((size_t)nv * sizeof *w);
	uint64_t r = 5;
	T_REQUIRE(l && w, "out of memory");
	/* Roughly the shape of real logits: a bell around 0, a few peaks. */
	for (int32_t i = 0; i < nv; i++)
		l[i] = 2.0f * (t_rand_f(&r) + t_rand_f(&r) + t_rand_f(&r) + t_rand_f(&r));
	for (int i = 0; i < 20; i++)
		l[t_rand_u64(&r) % (uint64_t)nv] = 12.0f + (float)i * 0.2f;

	static const struct {
		const char *name;
		int top_k;
		float top_p, min_p, penalty;
	} cfg[] = {
		{ "defaults (top-k 40, top-p 0.95, min-p 0.05)", 40, 0.95f, 0.05f, 1.0f },
		{ "defaults + repeat penalty 1.1", 40, 0.95f, 0.05f, 1.1f },
		{ "top-p 0.95 alone (no top-k)", 0, 0.95f, 0.0f, 1.0f },
		{ "min-p 0.05 alone", 0, 1.0f, 0.05f, 1.0f },
		{ "no filter (full softmax)", 0, 1.0f, 0.0f, 1.0f },
		{ "greedy", -1, 1.0f, 0.0f, 1.0f },
	};
	for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
		struct sampler_params p;
		sampler_defaults(&p);
		p.top_k = cfg[c].top_k;
		p.top_p = cfg[c].top_p;
		p.min_p = cfg[c].min_p;
		p.repeat_penalty = cfg[c].penalty;
		if (cfg[c].top_k < 0)
			p.temp = 0.0f;
		struct sampler *s = sampler_new(&p, nv);
		T_REQUIRE(s, "out of memory");
		for (int i = 0; i < 64; i++)
			sampler_accept(s, (int32_t)(t_rand_u64(&r) % (uint64_t)nv));
		/* Best of 7 rounds: the machine may be shared. The copy that
		 * restores the logits is timed alone and taken off. */
		int iters = 30;
		double best = 1e30, copy = 1e30, t0;
		for (int round = 0; round < 7; round++) {
			t0 = now_s();
			for (int i = 0; i < iters; i++) {
				memcpy(w, l, (size_t)nv * sizeof *w);
				__asm__ volatile("" ::: "memory");
			}
			double tc = (now_s() - t0) / iters;
			copy = tc < copy ? tc : copy;
			t0 = now_s();
			for (int i = 0; i < iters; i++) {
				memcpy(w, l, (size_t)nv * sizeof *w);
				sampler_sample(s, w);
			}
			double ts = (now_s() - t0) / iters;
			best = ts < best ? ts : best;
		}
		printf("sample, %d-token vocabulary, %-45s %8.1f us\n", (int)nv,
		       cfg[c].name, (best - copy) * 1e6);
		sampler_free(s);
	}
	free(l);
	free(w);
}

int main(void)
{
	test_greedy();
	test_seeds();
	test_top_k();
	test_top_p();
	test_top_p_big();
	test_min_p();
	test_penalty();
	test_temperature();
	test_odd_inputs();
	time_big_vocab();
	return t_done("test_sample");
}
