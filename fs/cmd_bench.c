/*
 * seekfs bench: prefill and decode speed of a model on this machine, next to
 * the physical limit measured in the same run. Decode reads every weight
 * once per token, so its ceiling is memory bandwidth / bytes of weights.
 *
 * For an embedding (bert) model it measures session_embed over batches of
 * sequences instead: tokens/s and GFLOP/s, next to the arithmetic peak of
 * the machine measured in the same run (an FMA loop on the pool's
 * threads), because embedding a batch is bound by arithmetic, not memory.
 *
 * --synthetic NAME benchmarks a model that is not here: it writes a GGUF
 * with the shapes and tensor types of a named real model and random weights
 * (engine/synthetic.c), to -o FILE or to a temporary file that is unlinked
 * as soon as the model is mapped (and on SIGINT/SIGTERM/SIGHUP before), then
 * benchmarks it like any other.
 */
#include <errno.h>
#include <getopt.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Read bandwidth in bytes/s of the pool's threads over buf (bytes, much
 * larger than the caches, already written); best of passes. */
static double measure_bandwidth(struct kt_pool *pool, const uint64_t *buf, size_t bytes,
				int passes)
{
	struct bw_job j = {.buf = buf, .n = bytes / 8};
	double best = 0;
	for (int pass = 0; pass < passes; pass++) {
		double t0 = cli_now();
		kt_pool_run(pool, bw_task, &j);
		double bw = bytes / (cli_now() - t0);
		if (bw > best)
			best = bw;
	}
	return best;
}

/* ---- arithmetic peak ------------------------------------------------------ */

struct peak_job {
	long iters;
	float sink[64];
};

#if defined(__x86_64__) || defined(__i386__)
/* 12 independent chains of 8-float FMAs: enough in flight to cover the FMA
 * latency on both FMA pipes of current x86 cores, so the loop runs at the
 * core's FMA throughput. 192 FLOPs per iteration. */
__attribute__((target("avx2,fma")))
static void peak_task(void *ctx, int ith, int nth)
{
	struct peak_job *j = ctx;
	(void)nth;
	const __m256 mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-6f);
	/* named variables, not an array, so that they live in registers; all
	 * different, so that the compiler cannot merge the chains */
	const __m256 one = _mm256_set1_ps(1.0f);
	__m256 a0 = _mm256_set1_ps((float)ith), a1 = _mm256_add_ps(a0, one);
	__m256 a2 = _mm256_add_ps(a1, one), a3 = _mm256_add_ps(a2, one);
	__m256 a4 = _mm256_add_ps(a3, one), a5 = _mm256_add_ps(a4, one);
	__m256 a6 = _mm256_add_ps(a5, one), a7 = _mm256_add_ps(a6, one);
	__m256 a8 = _mm256_add_ps(a7, one), a9 = _mm256_add_ps(a8, one);
	__m256 a10 = _mm256_add_ps(a9, one), a11 = _mm256_add_ps(a10, one);
	for (long i = 0; i < j->iters; i++) {
		a0 = _mm256_fmadd_ps(a0, mul, add);
		a1 = _mm256_fmadd_ps(a1, mul, add);
		a2 = _mm256_fmadd_ps(a2, mul, add);
		a3 = _mm256_fmadd_ps(a3, mul, add);
		a4 = _mm256_fmadd_ps(a4, mul, add);
		a5 = _mm256_fmadd_ps(a5, mul, add);
		a6 = _mm256_fmadd_ps(a6, mul, add);
		a7 = _mm256_fmadd_ps(a7, mul, add);
		a8 = _mm256_fmadd_ps(a8, mul, add);
		a9 = _mm256_fmadd_ps(a9, mul, add);
		a10 = _mm256_fmadd_ps(a10, mul, add);
		a11 = _mm256_fmadd_ps(a11, mul, add);
	}
	__m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
				 _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
	s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
	float f[8];
	_mm256_storeu_ps(f, s);
	j->sink[ith & 63] = f[0]; /* kept so the loop is not optimised away */
}

/* FLOP/s of 8-float (AVX2) FMAs on all of the pool's threads, best of
 * several passes; 0 when the CPU has no AVX2/FMA. */
static double measure_peak(struct kt_pool *pool)
{
	if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
		return 0;
	struct peak_job j = {.iters = 4000000};
	double best = 0;
	for (int pass = 0; pass < 5; pass++) {
		double t0 = cli_now();
		kt_pool_run(pool, peak_task, &j);
		double f = 192.0 * (double)j.iters * kt_pool_threads(pool) / (cli_now() - t0);
		if (f > best)
			best = f;
	}
	return best;
}
#else
static double measure_peak(struct kt_pool *pool)
{
	(void)pool;
	return 0;
}
#endif

/* ---- embedding models ------------------------------------------------------ */

/* session_embed over n_seq sequences of n_tok tokens each ([CLS], random
 * ids, [SEP]), runs timed calls after one warm-up call. */
static int bench_embed(struct model *m, struct kt_pool *pool, int n_seq, int n_tok, int runs)
{
	const struct model_hparams *hp = model_hparams(m);
	const struct tok *tk = model_tok(m);
	const int max = model_embed_max_tokens(m);
	if (n_tok < 3 || n_tok > max) {
		fprintf(stderr, "seekfs bench: -p %d: %s reads 3 to %d tokens per sequence\n", n_tok,
			model_name(m), max);
		return 2;
	}
	if ((long)n_seq * n_tok > 1 << 24) {
		fprintf(stderr, "seekfs bench: %d x %d tokens is too many for one batch\n", n_seq, n_tok);
		return 2;
	}
	const int total = n_seq * n_tok;
	int32_t *toks = malloc((size_t)total * sizeof *toks);
	int *lens = malloc((size_t)n_seq * sizeof *lens);
	float *out = malloc((size_t)n_seq * (size_t)hp->n_embd * sizeof *out);
	struct session *s = NULL;
	char err[512];
	int rc = 1;
	if (!toks || !lens || !out) {
		fprintf(stderr, "seekfs bench: out of memory\n");
		goto out;
	}
	if (session_new(m, total, KT_F32, pool, &s, err, sizeof err)) {
		fprintf(stderr, "seekfs bench: %s\n", err);
		goto out;
	}
	const int32_t nv = tok_n_vocab(tk);
	uint64_t x = 88172645463325252ULL;
	for (int i = 0; i < n_seq; i++) {
		int32_t *t = toks + (size_t)i * n_tok;
		lens[i] = n_tok;
		for (int p = 1; p < n_tok - 1; p++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			t[p] = (int32_t)(x % (uint64_t)nv);
		}
		t[0] = tok_bos(tk) >= 0 ? tok_bos(tk) : 0;
		t[n_tok - 1] = tok_eos(tk) >= 0 ? tok_eos(tk) : 0;
	}
	/* the peak before and after the runs: on a shared machine a drop
	 * between the two says the runs were slowed by someone else */
	const double peak0 = measure_peak(pool);

	/* the first call faults the weights in and wakes the threads */
	if (session_embed(s, toks, lens, n_seq, out)) {
		fprintf(stderr, "seekfs bench: session_embed failed\n");
		goto out;
	}
	double best = 1e300, sum = 0;
	for (int r = 0; r < runs; r++) {
		double t0 = cli_now();
		if (session_embed(s, toks, lens, n_seq, out)) {
			fprintf(stderr, "seekfs bench: session_embed failed\n");
			goto out;
		}
		double dt = cli_now() - t0;
		sum += dt;
		if (dt < best)
			best = dt;
	}
	const double peak1 = measure_peak(pool), peak = peak0 > peak1 ? peak0 : peak1;
	/* 2 FLOPs per weight per token in the matrix products; attention of a
	 * sequence of L tokens is two L x L x (n_head * head_dim) products
	 * (scores, weighted values) per layer. Norms, GELU and softmax are not
	 * counted. */
	const double mm = 2.0 * (double)model_matmul_params(m) * total;
	const double attn = 4.0 * n_seq * (double)n_tok * n_tok *
			    ((double)hp->n_head * hp->head_dim) * hp->n_layer;
	const double mean = sum / runs;
	printf("model      %s (%s, %d layers, n_embd %d, n_ff %d, vocab %d)\n", model_name(m),
	       hp->arch_name, hp->n_layer, hp->n_embd, hp->n_ff, hp->n_vocab);
	printf("threads    %d (%s)\n", kt_pool_threads(pool), kt_isa_name(kt_cpu_isa()));
	if (peak > 0)
		printf("peak       %.1f GFLOP/s measured: 8-float FMAs on %d threads (%.1f before "
		       "the runs, %.1f after)\n", peak / 1e9, kt_pool_threads(pool), peak0 / 1e9,
		       peak1 / 1e9);
	else
		printf("peak       not measured (no AVX2/FMA)\n");
	printf("work       %.1f MFLOP per token: %.1f in matrix products, %.1f in attention\n",
	       (mm + attn) / total / 1e6, mm / total / 1e6, attn / total / 1e6);
	printf("embed      %d x %d tokens, best of %d: %.3f s = %.0f tok/s = %.1f GFLOP/s",
	       n_seq, n_tok, runs, best, total / best, (mm + attn) / best / 1e9);
	if (peak > 0)
		printf(", %.0f%% of peak", 100.0 * (mm + attn) / best / peak);
	printf("\n");
	printf("           mean %.3f s = %.0f tok/s = %.1f GFLOP/s\n", mean, total / mean,
	       (mm + attn) / mean / 1e9);
	rc = 0;
out:
	free(toks);
	free(lens);
	free(out);
	session_free(s);
	return rc;
}

/* ---- synthetic models ------------------------------------------------------ */

/* The temporary file (and the writer's NAME.tmp) while it exists, for the
 * signal handler; empty when there is none. */
static char tmp_path[4096], tmp_path_w[4100];
static volatile sig_atomic_t tmp_live;

static void tmp_remove(void)
{
	if (tmp_live) {
		tmp_live = 0;
		unlink(tmp_path);
		unlink(tmp_path_w);
	}
}

static void on_signal(int sig)
{
	tmp_remove();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* bytes as "4.68 GB" or "396.0 MB" (10^9, 10^6: as model files are listed) */
static const char *fmt_size(int64_t bytes, char *buf, size_t n)
{
	if (bytes < 0)
		snprintf(buf, n, "?");
	else if (bytes >= 1000000000)
		snprintf(buf, n, "%.2f GB", bytes / 1e9);
	else
		snprintf(buf, n, "%.1f MB", bytes / 1e6);
	return buf;
}

static void list_synthetic(void)
{
	printf("%-20s %9s %6s %6s %6s %5s %3s %4s %7s  %s\n", "NAME", "SIZE", "LAYERS", "EMBD",
	       "FF", "HEADS", "KV", "HDIM", "VOCAB", "SHAPES OF");
	for (int i = 0; synth_model(i); i++) {
		const struct synth_model *m = synth_model(i);
		static const enum synth_ftype fts[] = {SYNTH_Q4_K_M, SYNTH_Q8_0};
		for (size_t j = 0; j < sizeof fts / sizeof fts[0]; j++) {
			char name[64], size[32];
			snprintf(name, sizeof name, "%s-%s", m->name, synth_ftype_name(fts[j]));
			fmt_size(synth_file_size(m, fts[j]), size, sizeof size);
			printf("%-20s %9s %6d %6d %6d %5d %3d %4d %7d  %s%s%s\n", name, size,
			       m->n_layer, m->n_embd, m->n_ff, m->n_head, m->n_head_kv, m->head_dim,
			       m->n_vocab, m->like, m->tied ? ", tied output" : "",
			       m->qkv_bias ? ", qkv bias" : "");
		}
	}
}

/* An existing FILE made by --synthetic NAME earlier (its seekfs.synthetic
 * key and its size agree): 1, else 0. */
static int synthetic_reusable(const char *path, const char *name, int64_t want)
{
	struct stat st;
	if (stat(path, &st) || (int64_t)st.st_size != want)
		return 0;
	struct gguf *g;
	char err[512];
	if (gguf_open(path, &g, err, sizeof err))
		return 0;
	size_t len;
	const char *s = gguf_get_str(g, "seekfs.synthetic", &len);
	int same = s && len == strlen(name) && !memcmp(s, name, len);
	gguf_close(g);
	return same;
}

/* Write the synthetic model name to out (or to a new temporary file, whose
 * name goes to path and which tmp_remove deletes). 0, 1 (error, printed)
 * or 2 (bad name, printed). */
static int make_synthetic(const char *name, const char *out, struct kt_pool *pool,
			  char *path, size_t pathsz)
{
	const struct synth_model *m;
	enum synth_ftype f;
	char err[1024];
	if (synth_lookup(name, &m, &f, err, sizeof err)) {
		fprintf(stderr, "seekfs bench: %s (seekfs bench --synthetic list shows them)\n", err);
		return 2;
	}
	const int64_t size = synth_file_size(m, f);
	if (size < 0) {
		fprintf(stderr, "seekfs bench: %s: %s\n", name, strerror((int)-size));
		return 1;
	}
	if (out) {
		snprintf(path, pathsz, "%s", out);
		if (synthetic_reusable(out, name, size)) {
			char sz[32];
			printf("synthetic  %s: %s (%s) was written earlier: reused\n", name, out,
			       fmt_size(size, sz, sizeof sz));
			return 0;
		}
	} else {
		const char *dir = getenv("TMPDIR");
		if (!dir || !*dir)
			dir = "/tmp";
		snprintf(tmp_path, sizeof tmp_path, "%s/seekfs-synthetic-%s-XXXXXX.gguf", dir, name);
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		signal(SIGHUP, on_signal);
		int fd = mkstemps(tmp_path, 5);
		if (fd < 0) {
			fprintf(stderr, "seekfs bench: cannot create a temporary file in %s: %s "
				"(set TMPDIR, or give -o FILE)\n", dir, strerror(errno));
			return 1;
		}
		close(fd);
		snprintf(tmp_path_w, sizeof tmp_path_w, "%s.tmp", tmp_path);
		tmp_live = 1;
		snprintf(path, pathsz, "%s", tmp_path);
	}
	double t0 = cli_now();
	if (synth_write(m, f, 1, pool, path, err, sizeof err)) {
		fprintf(stderr, "seekfs bench: %s\n", err);
		tmp_remove();
		return 1;
	}
	double dt = cli_now() - t0;
	char sz[32];
	printf("synthetic  %s: random weights, shapes and types of %s; %s written in %.1f s "
	       "(%.2f GB/s) to %s%s\n", name, m->like, fmt_size(size, sz, sizeof sz), dt,
	       size / 1e9 / dt, out ? out : "a temporary file", out ? "" : ", removed once mapped");
	fflush(stdout);
	return 0;
}

/* ---- decoders --------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* runs rounds of: the read bandwidth (best of 3 passes over 1 GiB), a
 * prefill of n_prompt tokens, n_gen decoded tokens. On a shared machine
 * the bandwidth a neighbour leaves moves from one second to the next, so
 * each round's decode is set against the bandwidth measured just before
 * it, and the medians over the rounds are reported with every round. */
static int bench_decoder(struct model *m, struct kt_pool *pool, int n_prompt, int n_gen, int runs)
{
	const struct model_hparams *hp = model_hparams(m);
	const size_t bw_bytes = (size_t)1 << 30;
	struct session *s = NULL;
	char err[512];
	int rc = 1;
	int32_t *toks = malloc((size_t)(n_prompt + n_gen) * sizeof *toks);
	float *logits = malloc((size_t)hp->n_vocab * sizeof(float));
	uint64_t *buf = malloc(bw_bytes);
	double *bw = calloc((size_t)runs, sizeof *bw), *pp = calloc((size_t)runs, sizeof *pp);
	double *tg = calloc((size_t)runs, sizeof *tg), *frac = calloc((size_t)runs, sizeof *frac);
	if (!toks || !logits || !buf || !bw || !pp || !tg || !frac) {
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
	memset(buf, 1, bw_bytes);
	const size_t wbytes = model_weight_bytes(m);
	printf("model      %s (%s, %d layers, n_embd %d, vocab %d)\n", model_name(m),
	       hp->arch_name, hp->n_layer, hp->n_embd, hp->n_vocab);
	printf("threads    %d (%s)\n", kt_pool_threads(pool), kt_isa_name(kt_cpu_isa()));
	printf("weights    %.1f MiB read per decoded token (%s)\n", wbytes / 1048576.0,
	       model_packed_bytes(m) ? "matrices packed in groups of 8 rows" : "row-major");

	/* warm the page cache and the threads with one token */
	session_forward(s, toks, 1, 0, logits);
	for (int r = 0; r < runs; r++) {
		bw[r] = measure_bandwidth(pool, buf, bw_bytes, 3);
		session_reset(s);
		double t0 = cli_now();
		if (session_forward(s, toks, n_prompt, 0, logits))
			goto out;
		double t1 = cli_now();
		for (int i = 0; i < n_gen; i++)
			if (session_forward(s, &toks[n_prompt + i], 1, 0, logits))
				goto out;
		double t2 = cli_now();
		pp[r] = n_prompt / (t1 - t0);
		tg[r] = n_gen / (t2 - t1);
		frac[r] = tg[r] * wbytes / bw[r];
		printf("run %-6d bandwidth %.2f GB/s, prefill %.1f tok/s, decode %.2f tok/s = %.0f%% of the limit\n",
		       r + 1, bw[r] / 1e9, pp[r], tg[r], 100.0 * frac[r]);
	}
	double bw_m = median(bw, runs), pp_m = median(pp, runs), tg_m = median(tg, runs);
	double lo = frac[0], hi = frac[0];
	for (int r = 1; r < runs; r++) {
		lo = frac[r] < lo ? frac[r] : lo;
		hi = frac[r] > hi ? frac[r] : hi;
	}
	double frac_m = median(frac, runs);
	/* 2 FLOPs per weight per token (the matrix products dominate prefill);
	 * the output matrix only for the last token */
	const double per_tok = (double)(model_matmul_params(m) - model_output_params(m));
	double gflops = 2.0 * (per_tok + (double)model_output_params(m) / n_prompt) * pp_m / 1e9;
	printf("bandwidth  %.2f GB/s measured (read, %d threads; median of %d runs)\n", bw_m / 1e9,
	       kt_pool_threads(pool), runs);
	printf("prefill    %d tokens: %.1f tok/s = %.1f GFLOP/s in matrix products (median)\n", n_prompt,
	       pp_m, gflops);
	printf("decode     %d tokens: %.2f tok/s = %.2f GB/s of weights (median); %.0f%% of the bandwidth limit (median of the runs' ratios; %.0f-%.0f%%)\n",
	       n_gen, tg_m, tg_m * wbytes / 1e9, 100.0 * frac_m, 100.0 * lo, 100.0 * hi);
	rc = 0;
out:
	free(toks);
	free(logits);
	free(buf);
	free(bw);
	free(pp);
	free(tg);
	free(frac);
	session_free(s);
	return rc;
}

/* ---- the command ----------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: seekfs bench -m MODEL.gguf [-t THREADS] [-p PROMPT_TOKENS] [-n DECODE_TOKENS] [-r RUNS]\n"
		   "       seekfs bench --synthetic NAME [-o FILE] [-t THREADS] [-p PROMPT_TOKENS] [-n DECODE_TOKENS] [-r RUNS]\n"
		   "       seekfs bench --synthetic list\n"
		   "       seekfs bench -m EMBED_MODEL.gguf [-t THREADS] [-b SEQS] [-p TOKENS] [-r RUNS]\n"
		   "  decoders: prefill and decode speed, RUNS times (default -p 128 -n 64 -r 3);\n"
		   "  --synthetic NAME: the same on a GGUF with the shapes and tensor types of a\n"
		   "  named real model and random weights, written to FILE (kept; reused when it\n"
		   "  already holds NAME) or to a temporary file; list shows the names;\n"
		   "  embedding (bert) models: session_embed of SEQS sequences of TOKENS tokens\n"
		   "  each, [CLS] and [SEP] included (default -b 32 -p 128 -r 5)\n");
}

int cmd_bench(int argc, char **argv)
{
	const char *model_path = NULL, *synthetic = NULL, *out_path = NULL;
	int n_threads = 0, n_prompt = 128, n_gen = 64, n_seq = 32, runs = -1, c;
	static const struct option longopts[] = {
		{"synthetic", required_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	optind = 1;
	while ((c = getopt_long(argc, argv, "m:o:t:p:n:b:r:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': model_path = optarg; break;
		case 'S': synthetic = optarg; break;
		case 'o': out_path = optarg; break;
		case 't': if (cli_int(optarg, "-t", 1, 1024, &n_threads)) return 2; break;
		case 'p': if (cli_int(optarg, "-p", 1, 1 << 20, &n_prompt)) return 2; break;
		case 'n': if (cli_int(optarg, "-n", 1, 1 << 20, &n_gen)) return 2; break;
		case 'b': if (cli_int(optarg, "-b", 1, 1 << 16, &n_seq)) return 2; break;
		case 'r': if (cli_int(optarg, "-r", 1, 1000, &runs)) return 2; break;
		default:
			usage(c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	if (optind != argc || !model_path == !synthetic || (out_path && !synthetic)) {
		if (model_path && synthetic)
			fprintf(stderr, "seekfs bench: -m and --synthetic exclude each other\n");
		else if (out_path && !synthetic)
			fprintf(stderr, "seekfs bench: -o goes with --synthetic\n");
		usage(stderr);
		return 2;
	}
	if (synthetic && !strcmp(synthetic, "list")) {
		list_synthetic();
		return 0;
	}
	char err[512];
	char synth_path[4096];
	struct kt_pool *pool = kt_pool_create(n_threads);
	if (!pool) {
		fprintf(stderr, "seekfs bench: cannot start %d threads: %s\n", n_threads,
			strerror(errno));
		return 1;
	}
	if (synthetic) {
		int rc = make_synthetic(synthetic, out_path, pool, synth_path, sizeof synth_path);
		if (rc) {
			kt_pool_destroy(pool);
			return rc;
		}
		model_path = synth_path;
	}
	struct model *m;
	int lrc = model_load(model_path, &m, err, sizeof err);
	tmp_remove(); /* mapped (or refused): the name is no longer needed */
	if (lrc) {
		fprintf(stderr, "seekfs bench: %s\n", err);
		kt_pool_destroy(pool);
		return 1;
	}
	const struct model_hparams *hp = model_hparams(m);
	int rc = hp->arch == ARCH_BERT ? bench_embed(m, pool, n_seq, n_prompt, runs < 0 ? 5 : runs)
					: bench_decoder(m, pool, n_prompt, n_gen, runs < 0 ? 3 : runs);
	kt_pool_destroy(pool);
	model_free(m);
	return rc;
}
