/*
 * Helpers shared by the subcommands (see cli_util.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"
#include "fs/cli_util.h"

int cli_int(const char *arg, const char *opt, int lo, int hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < lo || v > hi) {
		fprintf(stderr, "seekfs: %s wants an integer from %d to %d, not '%s'\n", opt, lo, hi, arg);
		return -1;
	}
	*out = (int)v;
	return 0;
}

int cli_float(const char *arg, const char *opt, float lo, float hi, float *out)
{
	char *end;
	errno = 0;
	float v = strtof(arg, &end);
	if (errno || end == arg || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "seekfs: %s wants a number from %g to %g, not '%s'\n", opt, lo, hi, arg);
		return -1;
	}
	*out = v;
	return 0;
}

int cli_u64(const char *arg, const char *opt, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || arg[0] == '-') {
		fprintf(stderr, "seekfs: %s wants a non-negative integer, not '%s'\n", opt, arg);
		return -1;
	}
	*out = v;
	return 0;
}

double cli_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int cli_tokenize(const struct tok *t, const char *text, int parse_special,
		 int32_t **ids, int *n)
{
	size_t len = strlen(text);
	int64_t cap = (int64_t)len + 2;
	int32_t *v = malloc((size_t)cap * sizeof *v);
	if (!v)
		return -ENOMEM;
	int off = tok_add_bos(t) && tok_bos(t) >= 0;
	int64_t got = tok_encode(t, text, len, parse_special, v + off, cap - off);
	if (got < 0) { /* ids never outnumber bytes + 1, so only memory can fail */
		free(v);
		return -ENOMEM;
	}
	if (off && got > 0 && v[1] == tok_bos(t))
		memmove(v, v + 1, (size_t)got * sizeof *v), off = 0;
	else if (off)
		v[0] = tok_bos(t);
	*ids = v;
	*n = (int)(got + off);
	return 0;
}

int cli_read_file(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap);
	while (b) {
		size_t r = fread(b + n, 1, cap - n - 1, f);
		n += r;
		if (n < cap - 1) {
			if (ferror(f)) {
				int e = errno ? errno : EIO;
				free(b);
				fclose(f);
				return -e;
			}
			break;
		}
		char *nb = realloc(b, cap * 2);
		if (!nb)
			free(b);
		b = nb;
		cap *= 2;
	}
	fclose(f);
	if (!b)
		return -ENOMEM;
	b[n] = 0;
	*buf = b;
	*len = n;
	return 0;
}
