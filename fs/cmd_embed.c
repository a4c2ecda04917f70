/*
 * seekfs embed: the embedding of a file's text by a bert-family GGUF model,
 * one number per line.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "fs/cli.h"
#include "fs/cli_util.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: seekfs embed -m MODEL.gguf -f FILE [-t THREADS]\n"
		   "  prints the embedding of FILE's text (a bert-family model), one number per line;\n"
		   "  text beyond the model's input length is cut off (the count goes to stderr)\n");
}

int cmd_embed(int argc, char **argv)
{
	const char *model_path = NULL, *file = NULL;
	int n_threads = 0, c;
	optind = 1;
	while ((c = getopt(argc, argv, "m:f:t:h")) != -1) {
		switch (c) {
		case 'm': model_path = optarg; break;
		case 'f': file = optarg; break;
		case 't': if (cli_int(optarg, "-t", 1, 1024, &n_threads)) return 2; break;
		default: usage(c == 'h' ? stdout : stderr); return c == 'h' ? 0 : 2;
		}
	}
	if (!model_path || !file || optind != argc) {
		usage(stderr);
		return 2;
	}
	char err[512], *text;
	size_t len;
	int rc = cli_read_file(file, &text, &len);
	if (rc) {
		fprintf(stderr, "seekfs embed: %s: %s\n", file, strerror(-rc));
		return 1;
	}
	struct model *m;
	if (model_load(model_path, &m, err, sizeof err)) {
		fprintf(stderr, "seekfs embed: %s\n", err);
		free(text);
		return 1;
	}
	const struct model_hparams *hp = model_hparams(m);
	const struct tok *tk = model_tok(m);
	struct kt_pool *pool = NULL;
	struct session *s = NULL;
	int32_t *ids = NULL;
	float *vec = NULL;
	rc = 1;
	if (hp->arch != ARCH_BERT) {
		fprintf(stderr, "seekfs embed: %s is a %s model, not an embedding (bert) model\n",
			model_path, hp->arch_name);
		goto out;
	}
	int max = model_embed_max_tokens(m);
	int64_t cap = (int64_t)len + 2;
	ids = malloc((size_t)cap * sizeof *ids);
	vec = malloc((size_t)hp->n_embd * sizeof *vec);
	if (!ids || !vec) {
		fprintf(stderr, "seekfs embed: out of memory\n");
		goto out;
	}
	int64_t n = tok_encode(tk, text, len, 0, ids + 1, cap - 2);
	if (n < 0) {
		fprintf(stderr, "seekfs embed: %s: cannot tokenize\n", file);
		goto out;
	}
	if (n > max - 2) {
		fprintf(stderr, "seekfs embed: %s: %lld tokens, the model reads %d: the rest is cut off\n",
			file, (long long)n, max - 2);
		n = max - 2;
	}
	ids[0] = tok_bos(tk); /* [CLS] */
	ids[n + 1] = tok_eos(tk); /* [SEP] */
	int total = (int)n + 2;
	if (!(pool = kt_pool_create(n_threads)) ||
	    session_new(m, total, KT_F32, pool, &s, err, sizeof err)) {
		fprintf(stderr, "seekfs embed: %s\n", pool ? err : "cannot start threads");
		goto out;
	}
	if (session_embed(s, ids, &total, 1, vec)) {
		fprintf(stderr, "seekfs embed: the forward pass failed\n");
		goto out;
	}
	for (int i = 0; i < hp->n_embd; i++)
		printf("%.9g\n", vec[i]);
	rc = 0;
out:
	free(ids);
	free(vec);
	free(text);
	session_free(s);
	kt_pool_destroy(pool);
	model_free(m);
	return rc;
}
