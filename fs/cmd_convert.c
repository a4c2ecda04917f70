/*
 * seekfs convert: other model formats into GGUF.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "engine/engine.h"
#include "fs/cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: seekfs convert llama2c CHECKPOINT.bin TOKENIZER.bin -o OUT.gguf\n"
		   "       seekfs convert hf DIR -o OUT.gguf [-t f32|f16]\n"
		   "  llama2c: a llama2.c checkpoint (legacy format) and its tokenizer.bin\n"
		   "  hf:      a Hugging Face BERT model folder (config.json, tokenizer.json or\n"
		   "           vocab.txt, model.safetensors), e.g. a sentence-transformers embedder\n"
		   "  -t TYPE  hf: type of the weight matrices, f32 (default) or f16\n");
}

int cmd_convert(int argc, char **argv)
{
	const char *out = NULL;
	enum kt_type wtype = KT_F32;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "o:t:h")) != -1) {
		if (c == 'o') {
			out = optarg;
		} else if (c == 't' && (!strcmp(optarg, "f32") || !strcmp(optarg, "f16"))) {
			wtype = optarg[1] == '1' ? KT_F16 : KT_F32;
		} else {
			if (c == 't')
				fprintf(stderr, "seekfs convert: -t takes f32 or f16, not '%s'\n", optarg);
			usage(c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	if (!out || argc - optind < 1) {
		usage(stderr);
		return 2;
	}
	const char *kind = argv[optind];
	char err[512];
	if (!strcmp(kind, "llama2c")) {
		if (argc - optind != 3) {
			usage(stderr);
			return 2;
		}
		if (convert_llama2c(argv[optind + 1], argv[optind + 2], out, err, sizeof err)) {
			fprintf(stderr, "seekfs convert: %s\n", err);
			return 1;
		}
		fprintf(stderr, "seekfs convert: wrote %s\n", out);
		return 0;
	}
	if (!strcmp(kind, "hf")) {
		if (argc - optind != 2) {
			usage(stderr);
			return 2;
		}
		if (convert_hf_ex(argv[optind + 1], out, wtype, err, sizeof err)) {
			fprintf(stderr, "seekfs convert: %s\n", err);
			return 1;
		}
		fprintf(stderr, "seekfs convert: wrote %s\n", out);
		return 0;
	}
	fprintf(stderr, "seekfs convert: unknown source format '%s' (known: llama2c, hf)\n", kind);
	return 2;
}
