/*
 * Helpers shared by the subcommands (see cli_util.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
	int32_t *v;
	int64_t got = tok_encode_prompt(t, text, strlen(text), parse_special, &v);
	if (got < 0)
		return (int)got;
	if (got > INT32_MAX) {
		free(v);
		return -EOVERFLOW;
	}
	*ids = v;
	*n = (int)got;
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

const char *cli_store_dir(const char *opt, char *buf, size_t n)
{
	const char *home = getenv("HOME");
	if (opt)
		snprintf(buf, n, "%s", opt);
	else if (getenv("SEEKFS_STORE"))
		snprintf(buf, n, "%s", getenv("SEEKFS_STORE"));
	else
		snprintf(buf, n, "%s/.local/share/seekfs", home ? home : ".");
	return buf;
}

const char *cli_models_dir(char *buf, size_t n)
{
	const char *home = getenv("HOME");
	if (getenv("SEEKFS_MODELS"))
		snprintf(buf, n, "%s", getenv("SEEKFS_MODELS"));
	else
		snprintf(buf, n, "%s/.local/share/seekfs/models", home ? home : ".");
	return buf;
}

const char *cli_default_embedder(const char *store, char *buf, size_t n)
{
	char dir[4096];
	snprintf(buf, n, "%s/models/%s", store, CLI_DEFAULT_EMBEDDER);
	if (!access(buf, R_OK))
		return buf;
	snprintf(buf, n, "%s/%s", cli_models_dir(dir, sizeof dir), CLI_DEFAULT_EMBEDDER);
	return access(buf, R_OK) ? NULL : buf;
}

int cli_abspath(const char *path, char *buf, size_t n)
{
	char tmp[8192];
	if (path[0] == '/')
		snprintf(tmp, sizeof tmp, "%s", path);
	else {
		char cwd[4096];
		if (!getcwd(cwd, sizeof cwd))
			return -errno;
		snprintf(tmp, sizeof tmp, "%s/%s", cwd, path);
	}
	/* lexically: drop "." and empty components, resolve ".." */
	size_t o = 0;
	char *save, *c = strtok_r(tmp, "/", &save);
	buf[0] = 0;
	for (; c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, ".") || !*c)
			continue;
		if (!strcmp(c, "..")) {
			while (o > 0 && buf[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			buf[o] = 0;
			continue;
		}
		size_t l = strlen(c);
		if (o + l + 2 > n)
			return -ENAMETOOLONG;
		buf[o++] = '/';
		memcpy(buf + o, c, l + 1);
		o += l;
	}
	if (!o) {
		if (n < 2)
			return -ENAMETOOLONG;
		strcpy(buf, "/");
	}
	return 0;
}

int cli_doc_key(const char *store, const char *path, char *key, size_t n)
{
	char abs[4096], docs[4096], docs_abs[4096];
	int rc = cli_abspath(path, abs, sizeof abs);
	if (rc)
		return rc;
	snprintf(docs, sizeof docs, "%s/docs", store);
	if (!cli_abspath(docs, docs_abs, sizeof docs_abs)) {
		size_t l = strlen(docs_abs);
		if (!strncmp(abs, docs_abs, l) && abs[l] == '/') {
			snprintf(key, n, "%s", abs + l + 1);
			return 0;
		}
		char real[4096];
		if (realpath(docs, real) && (l = strlen(real)) && !strncmp(abs, real, l) &&
		    abs[l] == '/') {
			snprintf(key, n, "%s", abs + l + 1);
			return 0;
		}
	}
	if (strlen(abs) >= n)
		return -ENAMETOOLONG;
	snprintf(key, n, "%s", abs);
	return 0;
}

void cli_escape(const char *s, char *buf, size_t n)
{
	size_t o = 0;
	for (; *s && o + 3 < n; s++) {
		if (*s == '\\' || *s == '\t' || *s == '\n' || *s == '\r') {
			buf[o++] = '\\';
			buf[o++] = *s == '\t' ? 't' : *s == '\n' ? 'n' : *s == '\r' ? 'r' : '\\';
		} else {
			buf[o++] = *s;
		}
	}
	buf[o] = 0;
}
