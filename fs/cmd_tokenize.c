/*
 * seekfs tokenize: the token ids of a file's exact bytes, separated by
 * spaces, with no BOS or other token added. Needs only the vocabulary, so
 * vocabulary-only GGUF files work too.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "fs/cli.h"
#include "fs/cli_util.h"

int cmd_tokenize(int argc, char **argv)
{
	const char *model_path = NULL, *file = NULL;
	int special = 0, c;
	static const struct option opts[] = {
		{"special", no_argument, 0, 'S'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	optind = 1;
	while ((c = getopt_long(argc, argv, "m:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model_path = optarg; break;
		case 'f': file = optarg; break;
		case 'S': special = 1; break;
		case 'h':
		default:
			fprintf(c == 'h' ? stdout : stderr,
				"usage: seekfs tokenize -m MODEL.gguf -f FILE [--special]\n"
				"  prints the token ids of FILE's bytes; --special also turns the text of\n"
				"  control tokens (e.g. <|im_start|>) into those tokens\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (!model_path || !file || optind != argc) {
		fprintf(stderr, "usage: seekfs tokenize -m MODEL.gguf -f FILE [--special]\n");
		return 2;
	}
	char err[512], *text;
	size_t len;
	int rc = cli_read_file(file, &text, &len);
	if (rc) {
		fprintf(stderr, "seekfs tokenize: %s: %s\n", file, strerror(-rc));
		return 1;
	}
	struct gguf *g;
	if (gguf_open(model_path, &g, err, sizeof err)) {
		fprintf(stderr, "seekfs tokenize: %s\n", err);
		free(text);
		return 1;
	}
	struct tok *t;
	rc = tok_load(g, &t, err, sizeof err);
	gguf_close(g);
	if (rc) {
		fprintf(stderr, "seekfs tokenize: %s\n", err);
		free(text);
		return 1;
	}
	int32_t *ids;
	int64_t n = tok_encode_alloc(t, text, len, special, 0, &ids);
	if (n < 0) {
		fprintf(stderr, "seekfs tokenize: %s: cannot tokenize: %s\n", file, strerror((int)-n));
		rc = 1;
	} else {
		for (int64_t i = 0; i < n; i++)
			printf(i ? " %d" : "%d", ids[i]);
		printf("\n");
	}
	free(ids);
	free(text);
	tok_free(t);
	return rc ? 1 : 0;
}
