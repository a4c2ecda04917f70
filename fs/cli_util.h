/*
 * Small helpers shared by the subcommands: option value parsing with
 * messages naming the option, a monotonic clock, prompt tokenization.
 */
#ifndef SEEKFS_CLI_UTIL_H
#define SEEKFS_CLI_UTIL_H

#include <stdint.h>

struct tok;

/* Parse optarg into *out within [lo, hi]; on error print "seekfs: OPT ..."
 * and return -1. */
int cli_int(const char *arg, const char *opt, int lo, int hi, int *out);
int cli_float(const char *arg, const char *opt, float lo, float hi, float *out);
int cli_u64(const char *arg, const char *opt, uint64_t *out);
/* Seconds on a monotonic clock. */
double cli_now(void);
/* Tokenize a prompt the way generation wants it: BOS first when the model
 * asks for one and the text does not already begin with it. *ids is
 * malloc'ed; returns 0 or a negative errno. */
int cli_tokenize(const struct tok *t, const char *text, int parse_special,
		 int32_t **ids, int *n);
/* Read a whole file into a malloc'ed buffer (NUL-terminated); 0 or -errno. */
int cli_read_file(const char *path, char **buf, size_t *len);

#endif
