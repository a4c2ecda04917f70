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
		   "  llama2c: a llama2.c checkpoint (legacy format) and its tokenizer.bin\n");
}

int cmd_convert(int argc, char **argv)
{
	const char *out = NULL;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "o:h")) != -1) {
		if (c == 'o') {
			out = optarg;
		} else {
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
	fprintf(stderr, "seekfs convert: unknown source format '%s' (known: llama2c)\n", kind);
	return 2;
}
