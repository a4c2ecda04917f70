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
/* tok_encode_prompt of a NUL-terminated text, its count as an int. *ids
 * is malloc'ed; returns 0 or a negative errno. */
int cli_tokenize(const struct tok *t, const char *text, int parse_special,
		 int32_t **ids, int *n);
/* Read a whole file into a malloc'ed buffer (NUL-terminated); 0 or -errno. */
int cli_read_file(const char *path, char **buf, size_t *len);

/* The embedding model a new index uses unless told otherwise. */
#define CLI_DEFAULT_EMBEDDER "all-MiniLM-L6-v2.gguf"

/* The store: opt (--store), else $SEEKFS_STORE, else ~/.local/share/seekfs. */
const char *cli_store_dir(const char *opt, char *buf, size_t n);
/* Where setup puts models: $SEEKFS_MODELS, else ~/.local/share/seekfs/models. */
const char *cli_models_dir(char *buf, size_t n);
/* STORE/models/all-MiniLM-L6-v2.gguf, else the models folder's; NULL if neither. */
const char *cli_default_embedder(const char *store, char *buf, size_t n);
/* path made absolute (against the working directory) and normalised
 * lexically ("." and ".." resolved, no symlink followed). */
int cli_abspath(const char *path, char *buf, size_t n);
/* A document's key in the index: its path relative to STORE/docs when it
 * lies there, else its absolute path. */
int cli_doc_key(const char *store, const char *path, char *key, size_t n);
/* s with backslash, tab, CR and newline escaped C-style (one line, one field). */
void cli_escape(const char *s, char *buf, size_t n);

#endif
