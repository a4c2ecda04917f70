/*
 * seekfs: the command line. One executable with subcommands, like git.
 * Each subcommand lives in its own cmd_*.c file; this file dispatches.
 */
#include <stdio.h>
#include <string.h>

#include "fs/cli.h"

static const struct cli_cmd cmds[] = {
	{"mount", cmd_mount, "serve a store as a file system"},
	{"umount", cmd_umount, "unmount it and wait for its daemon to finish"},
	{"generate", cmd_generate, "generate text with a GGUF model"},
	{"embed", cmd_embed, "print the embedding of a file's text"},
	{"index", cmd_index, "add, remove, list and check indexed documents"},
	{"search", cmd_search, "search the indexed documents"},
	{"tokenize", cmd_tokenize, "print the token ids of a file"},
	{"convert", cmd_convert, "convert a model into GGUF"},
	{"bench", cmd_bench, "measure prefill and decode speed (embedding speed for bert models)"},
	{"info", cmd_info, "print a GGUF file's metadata and tensors"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: seekfs COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "\n'seekfs COMMAND -h' shows a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "seekfs: '%s' is not a command\n", argv[1]);
	usage(stderr);
	return 2;
}
