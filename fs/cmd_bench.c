/*
 * seekfs bench: prefill and decode speed of a model on this machine, next to
 * the physical limit measured in the same run. Decode reads every weight
 * once per token, so its ceiling is memory bandwidth / bytes of weights.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "fs/cli.h"
#include "fs/cli_util.h"

struct bw_job {
	const uint64_t *buf;
	size_t n;      /* uint64 words */
	uint64_t sum[64];
};

static void bw_task(void *ctx, int ith, int nth)
{
	struct bw_job *j = ctx;
	size_t per = j->n / (size_t)nth, lo = per * (size_t)ith, hi = lo + per;
	uint64_t a = 0, b = 0, c = 0, d = 0;
	for (size_t i = lo; i + 4 <= hi; i += 4) {
		a += j->buf[i];
		b += j->buf[i + 1];
		c += j->buf[i + 2];
		d += j->buf[i + 3];
	}
	j->sum[ith & 63] = a + b + c + d; /* kept so the reads are not optimised away */
}

/* Read bandwidth in bytes/s of the pool's threads over a buffer much larger
 * than the caches; best of several passes. */
static double measure_bandwidth(struct kt_pool *pool, size_t bytes)
{
	struct bw_job j = {0};
	uint64_t *buf = malloc(bytes);
	if (!buf)
		return 0;
	memset(buf, 1, bytes);
	j.buf = buf;
	j.n = bytes / 8;
	double best = 0;
	for (int pass = 0; pass < 5; pass++) {
		double t0 = cli_now();
		kt_pool_run(pool, bw_task, &j);
		double bw = bytes / (cli_now() - t0);
		if (bw > best)
			best = bw;
	}
	free(buf);
	return best;
}

int cmd_bench(int argc, char **argv)
{
	const char *model_path = NULL;
	int n_threads = 0, n_prompt = 128, n_gen = 64, c;
	optind = 1;
	while ((c = getopt(argc, argv, "m:t:p:n:h")) != -1) {
		switch (c) {
		case 'm': model_path = optarg; break;
		case 't': if (cli_int(optarg, "-t", 1, 1024, &n_threads)) return 2; break;
		case 'p': if (cli_int(optarg, "-p", 1, 1 << 20, &n_prompt)) return 2; break;
		case 'n': if (cli_int(optarg, "-n", 1, 1 << 20, &n_gen)) return 2; break;
		default:
			fprintf(c == 'h' ? stdout : stderr,
				"usage: seekfs bench -m MODEL.gguf [-t THREADS] [-p PROMPT_TOKENS] [-n DECODE_TOKENS]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (!model_path) {
		fprintf(stderr, "usage: seekfs bench -m MODEL.gguf [-t THREADS] [-p PROMPT_TOKENS] [-n DECODE_TOKENS]\n");
		return 2;
	}
	char err[512];
	struct model *m;
	if (model_load(model_path, &m, err, sizeof err)) {
		fprintf(stderr, "seekfs bench: %s\n", err);
		return 1;
	}
	const struct model_hparams *hp = model_hparams(m);
	struct kt_pool *pool = kt_pool_create(n_threads);
	struct session *s = NULL;
	int32_t *toks = malloc((size_t)(n_prompt + n_gen) * sizeof *toks);
	float *logits = malloc((size_t)hp->n_vocab * sizeof(float));
	int rc = 1;
	if (!pool || !toks || !logits) {
		fprintf(stderr, "seekfs bench: out of memory\n");
		goto out;
	}
	if (session_new(m, n_prompt + n_gen, KT_F16, pool, &s, err, sizeof err)) {
		fprintf(stderr, "seekfs bench: %s\n", err);
		goto out;
	}
	int32_t nv = tok_n_vocab(model_tok(m));
	uint64_t x = 88172645463325252ULL;
	for (int i = 0; i < n_prompt + n_gen; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		toks[i] = (int32_t)(x % (uint64_t)nv);
	}
	double bw = measure_bandwidth(pool, (size_t)1 << 30);
	size_t wbytes = model_weight_bytes(m);

	/* warm the page cache and the threads with one token, then start over */
	session_forward(s, toks, 1, 0, logits);
	session_reset(s);
	double t0 = cli_now();
	if (session_forward(s, toks, n_prompt, 0, logits))
		goto out;
	double t1 = cli_now();
	for (int i = 0; i < n_gen; i++)
		if (session_forward(s, &toks[n_prompt + i], 1, 0, logits))
			goto out;
	double t2 = cli_now();

	double pp = n_prompt / (t1 - t0), tg = n_gen / (t2 - t1);
	/* 2 FLOPs per weight per token: the matrix products dominate prefill */
	double gflops = 2.0 * (double)model_matmul_params(m) * pp / 1e9;
	printf("model      %s (%s, %d layers, n_embd %d, vocab %d)\n", model_name(m),
	       hp->arch_name, hp->n_layer, hp->n_embd, hp->n_vocab);
	printf("threads    %d (%s)\n", kt_pool_threads(pool), kt_isa_name(kt_cpu_isa()));
	printf("weights    %.1f MiB read per decoded token\n", wbytes / 1048576.0);
	printf("bandwidth  %.2f GB/s measured (read, %d threads)\n", bw / 1e9, kt_pool_threads(pool));
	printf("prefill    %d tokens: %.1f tok/s = %.1f GFLOP/s in matrix products\n", n_prompt, pp, gflops);
	printf("decode     %d tokens: %.2f tok/s = %.2f GB/s of weights, %.0f%% of the bandwidth limit (%.2f tok/s)\n",
	       n_gen, tg, tg * wbytes / 1e9, 100.0 * tg * wbytes / bw, bw / wbytes);
	rc = 0;
out:
	free(toks);
	free(logits);
	session_free(s);
	kt_pool_destroy(pool);
	model_free(m);
	return rc;
}
