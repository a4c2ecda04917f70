/*
 * seekfs generate: text from a GGUF model on the command line. The generated
 * text goes to stdout and nothing else does; timings go to stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "fs/cli.h"
#include "fs/cli_util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: seekfs generate -m MODEL.gguf [-p PROMPT] [--chat] [--system TEXT]\n"
		"                       [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
		"                       [--repeat-penalty R] [--seed S] [-c CTX] [-t THREADS]\n"
		"  -m FILE            the model (GGUF: llama, qwen2 or gemma3 architecture)\n"
		"  -p TEXT            the prompt (default: empty, generation starts from BOS)\n"
		"  --chat             wrap the prompt in the model's chat template\n"
		"  --system TEXT      a system message (with --chat; default: the template's own, if any)\n"
		"  -n N               tokens to generate at most (default 256)\n"
		"  --temp T           temperature; 0 is greedy (default 0.8)\n"
		"  --top-k K, --top-p P, --min-p P, --repeat-penalty R   sampling filters\n"
		"  --seed S           random seed: the same seed gives the same text\n"
		"  -c CTX             context size in tokens (default: prompt + N, at most the model's)\n"
		"  -t THREADS         threads (default: all cores)\n");
}

int cmd_generate(int argc, char **argv)
{
	const char *model_path = NULL, *prompt = "", *system_msg = NULL;
	int chat = 0, n_gen = 256, n_threads = 0, n_ctx = 0;
	struct sampler_params sp;
	sampler_defaults(&sp);
	static const struct option opts[] = {
		{"chat", no_argument, 0, 'C'},        {"system", required_argument, 0, 'S'},
		{"temp", required_argument, 0, 'T'},  {"top-k", required_argument, 0, 'K'},
		{"top-p", required_argument, 0, 'P'}, {"min-p", required_argument, 0, 'M'},
		{"repeat-penalty", required_argument, 0, 'R'},
		{"seed", required_argument, 0, 's'},  {"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "m:p:n:t:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model_path = optarg; break;
		case 'p': prompt = optarg; break;
		case 'C': chat = 1; break;
		case 'S': system_msg = optarg; break;
		case 'n': if (cli_int(optarg, "-n", 0, 1 << 24, &n_gen)) return 2; break;
		case 't': if (cli_int(optarg, "-t", 1, 1024, &n_threads)) return 2; break;
		case 'c': if (cli_int(optarg, "-c", 1, 1 << 24, &n_ctx)) return 2; break;
		case 'T': if (cli_float(optarg, "--temp", 0, 100, &sp.temp)) return 2; break;
		case 'K': if (cli_int(optarg, "--top-k", 0, 1 << 24, &sp.top_k)) return 2; break;
		case 'P': if (cli_float(optarg, "--top-p", 0, 1, &sp.top_p)) return 2; break;
		case 'M': if (cli_float(optarg, "--min-p", 0, 1, &sp.min_p)) return 2; break;
		case 'R': if (cli_float(optarg, "--repeat-penalty", 0, 100, &sp.repeat_penalty)) return 2; break;
		case 's': if (cli_u64(optarg, "--seed", &sp.seed)) return 2; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!model_path || optind != argc) {
		usage(stderr);
		return 2;
	}

	char err[512];
	struct model *m;
	if (model_load(model_path, &m, err, sizeof err)) {
		fprintf(stderr, "seekfs generate: %s\n", err);
		return 1;
	}
	const struct tok *tk = model_tok(m);
	const struct model_hparams *hp = model_hparams(m);
	int rc = 1;
	struct kt_pool *pool = NULL;
	struct session *s = NULL;
	struct sampler *smp = NULL;
	int32_t *toks = NULL;
	float *logits = NULL;
	char *text = NULL;

	if (chat) {
		enum chat_tmpl t = model_chat(m);
		if (t == CHAT_NONE)
			fprintf(stderr, "seekfs generate: %s has no chat template seekfs knows; using the plain prompt\n",
				model_path);
		struct chat_msg msgs[2];
		int nm = 0;
		/* as the model's own template would: its default system message */
		char def_sys[1024];
		if (!system_msg && chat_default_system(model_chat_template(m), def_sys,
						       sizeof def_sys) > 0)
			system_msg = def_sys;
		if (system_msg)
			msgs[nm++] = (struct chat_msg){"system", system_msg};
		msgs[nm++] = (struct chat_msg){"user", prompt};
		int need = chat_apply(t, msgs, nm, 1, NULL, 0);
		if (need < 0 || !(text = malloc((size_t)need + 1))) {
			fprintf(stderr, "seekfs generate: cannot apply the chat template\n");
			goto out;
		}
		chat_apply(t, msgs, nm, 1, text, (size_t)need + 1);
	} else if (!(text = strdup(prompt))) {
		goto out;
	}
	int n_prompt = 0;
	if (cli_tokenize(tk, text, chat, &toks, &n_prompt)) {
		fprintf(stderr, "seekfs generate: cannot tokenize the prompt\n");
		goto out;
	}
	if (n_prompt == 0) {
		fprintf(stderr, "seekfs generate: empty prompt and the model has no BOS token to start from\n");
		goto out;
	}
	if (!n_ctx)
		n_ctx = n_prompt + n_gen < hp->n_ctx_train ? n_prompt + n_gen : hp->n_ctx_train;
	if (n_prompt >= n_ctx) {
		fprintf(stderr, "seekfs generate: the prompt is %d tokens, the context only %d: shorten the prompt or raise -c\n",
			n_prompt, n_ctx);
		goto out;
	}
	if (!(pool = kt_pool_create(n_threads))) {
		fprintf(stderr, "seekfs generate: cannot start threads: %s\n", strerror(errno));
		goto out;
	}
	if (session_new(m, n_ctx, KT_F16, pool, &s, err, sizeof err)) {
		fprintf(stderr, "seekfs generate: %s\n", err);
		goto out;
	}
	if (!(smp = sampler_new(&sp, hp->n_vocab)) ||
	    !(logits = malloc((size_t)hp->n_vocab * sizeof(float)))) {
		fprintf(stderr, "seekfs generate: out of memory\n");
		goto out;
	}
	for (int i = 0; i < n_prompt; i++)
		sampler_accept(smp, toks[i]);

	double t0 = cli_now();
	if (session_forward(s, toks, n_prompt, 0, logits)) {
		fprintf(stderr, "seekfs generate: prompt evaluation failed\n");
		goto out;
	}
	double t1 = cli_now();
	int32_t prev = toks[n_prompt - 1];
	int n_done = 0;
	const char *finish = "length";
	char piece[256];
	while (n_done < n_gen) {
		for (int32_t i = tok_n_vocab(tk); i < hp->n_vocab; i++)
			logits[i] = -INFINITY; /* padding rows of the embedding */
		int32_t next = sampler_sample(smp, logits);
		n_done++;
		if (tok_is_eog(tk, next) || next == tok_bos(tk)) {
			finish = "stop";
			break;
		}
		sampler_accept(smp, next);
		if (!tok_is_control(tk, next)) {
			int len = tok_piece(tk, next, piece, sizeof piece);
			const char *p = piece;
			if (len > (int)sizeof piece)
				len = sizeof piece;
			/* SentencePiece drops the space of the first word of a text */
			if (tok_kind(tk) == TOK_SPM && prev == tok_bos(tk) && len > 0 && p[0] == ' ')
				p++, len--;
			if (len > 0)
				fwrite(p, 1, (size_t)len, stdout);
			fflush(stdout);
		}
		prev = next;
		if (session_pos(s) >= n_ctx) {
			finish = "context";
			break;
		}
		if (n_done < n_gen && session_forward(s, &next, 1, 0, logits)) {
			fprintf(stderr, "seekfs generate: decoding failed\n");
			goto out;
		}
	}
	double t2 = cli_now();
	fputc('\n', stdout);
	fflush(stdout);
	fprintf(stderr, "seekfs generate: %s: %d prompt tokens in %.3f s (%.1f tok/s), %d generated in %.3f s (%.1f tok/s), %d threads, finish: %s\n",
		model_name(m), n_prompt, t1 - t0, n_prompt / (t1 - t0), n_done, t2 - t1,
		n_done > 1 ? (n_done - 1) / (t2 - t1) : 0.0, kt_pool_threads(pool), finish);
	rc = 0;
out:
	free(text);
	free(toks);
	free(logits);
	sampler_free(smp);
	session_free(s);
	kt_pool_destroy(pool);
	model_free(m);
	return rc;
}
