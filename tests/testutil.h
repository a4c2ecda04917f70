/*
 * Helpers shared by the C tests: assertions that print where and what, the
 * shared data folder, and the skip convention (exit 77 = skipped in ctest).
 */
#ifndef SEEKFS_TESTUTIL_H
#define SEEKFS_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define T_SKIP 77

static int t_failures;

#define T_CHECK(cond, ...)                                                     \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, \
				__LINE__, #cond);                              \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			t_failures++;                                          \
		}                                                              \
	} while (0)

#define T_REQUIRE(cond, ...)                                                   \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: fatal: %s: ", __FILE__,        \
				__LINE__, #cond);                              \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			exit(1);                                               \
		}                                                              \
	} while (0)

/* Exit code for main: 0 when every check passed. */
static inline int t_done(const char *name)
{
	if (t_failures)
		fprintf(stderr, "%s: %d check(s) failed\n", name, t_failures);
	else
		fprintf(stderr, "%s: ok\n", name);
	return t_failures ? 1 : 0;
}

/* The folder tools/setup.sh installs models into: $SEEKFS_MODELS, else
 * ~/.local/share/seekfs/models. With name, the path of that file in it. */
static inline void t_models(const char *name, char *buf, size_t n)
{
	const char *dir = getenv("SEEKFS_MODELS");
	if (dir && *dir)
		snprintf(buf, n, "%s%s%s", dir, name ? "/" : "", name ? name : "");
	else
		snprintf(buf, n, "%s/.local/share/seekfs/models%s%s",
			 getenv("HOME") ? getenv("HOME") : ".", name ? "/" : "", name ? name : "");
}

/* Path of a file in the shared data folder ($SEEKFS_DATA/rel). A missing
 * file fails the test naming the path: shared data is never optional. */
static inline const char *t_data(const char *rel)
{
	static char buf[8][4096];
	static int slot;
	const char *root = getenv("SEEKFS_DATA");
	char *p = buf[slot++ % 8];
	snprintf(p, 4096, "%s/%s", root ? root : "../shared/data", rel);
	FILE *f = fopen(p, "rb");
	if (!f) {
		fprintf(stderr, "missing shared test data: %s\n", p);
		exit(1);
	}
	fclose(f);
	return p;
}

/* Read a whole file; NULL on failure. *len gets its size. Caller frees. */
static inline char *t_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	if (b) {
		b[n] = 0;
		if (len)
			*len = (size_t)n;
	}
	return b;
}

/* Deterministic random numbers for tests (xorshift64*). */
static inline uint64_t t_rand_u64(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}
static inline float t_rand_f(uint64_t *s) /* uniform in [-1, 1) */
{
	return (float)((t_rand_u64(s) >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

/* Seconds on a monotonic clock. */
static inline double t_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* For tests that include <ftw.h> (with _GNU_SOURCE or _XOPEN_SOURCE) first. */
#ifdef FTW_PHYS
static inline int t_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Remove a folder and everything in it (symbolic links are not followed). */
static inline void t_rm_tree(const char *path)
{
	nftw(path, t_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
#endif

#endif
