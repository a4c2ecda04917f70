/*
 * seekfs index add|rm|mv|list|check: maintain a store's document index;
 * seekfs search: query it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/cli.h"
#include "fs/cli_util.h"
#include "fs/daemon.h"
#include "index/index.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: seekfs index add   [--store DIR] [--embedder FILE.gguf | --no-embedder] [--hnsw]\n"
		"                          [-t THREADS] PATH...\n"
		"       seekfs index rm    [--store DIR] PATH...\n"
		"       seekfs index mv    [--store DIR] OLD NEW\n"
		"       seekfs index list  [--store DIR]\n"
		"       seekfs index check [--store DIR] [--no-repair]\n"
		"  add indexes files and folders (recursively; dot files and editor temp files\n"
		"  in folders are left out), re-indexing only what changed, and prints one line\n"
		"  per document once it is stored: indexed, unchanged, reused (same content as\n"
		"  another document: no embedding) or skipped, with the reason.\n"
		"  rm forgets documents, mv renames one keeping its embeddings, list prints\n"
		"  every document, check verifies SQLite, FTS5 and FAISS and repairs them.\n"
		"  The store is --store, else $SEEKFS_STORE, else ~/.local/share/seekfs; the\n"
		"  index lives in STORE/index. Documents under STORE/docs are named relative to\n"
		"  it, others by their absolute path. A new index embeds with\n"
		"  " CLI_DEFAULT_EMBEDDER " from STORE/models or the models folder when present.\n");
}

struct opts {
	const char *store_opt, *embedder;
	char store[4096];
	int no_embedder, hnsw, threads, no_repair;
};

enum { O_STORE = 256, O_EMBEDDER, O_NO_EMBEDDER, O_HNSW, O_NO_REPAIR, O_MODE, O_MMR };

static const struct option long_opts[] = {
	{"store", required_argument, NULL, O_STORE},
	{"embedder", required_argument, NULL, O_EMBEDDER},
	{"no-embedder", no_argument, NULL, O_NO_EMBEDDER},
	{"hnsw", no_argument, NULL, O_HNSW},
	{"no-repair", no_argument, NULL, O_NO_REPAIR},
	{"mode", required_argument, NULL, O_MODE},
	{"mmr", required_argument, NULL, O_MMR},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static int open_index(const struct opts *o, int read_only, struct index **ix)
{
	char dir[4200], emb[4200], err[600];
	snprintf(dir, sizeof dir, "%s/index", o->store);
	struct index_opts io = {
		.n_threads = o->threads,
		.read_only = read_only,
		.no_embedder = o->no_embedder,
		.vectors = o->hnsw ? IX_VEC_HNSW : IX_VEC_FLAT,
	};
	io.embedder = o->embedder;
	if (!read_only)
		io.default_embedder = cli_default_embedder(o->store, emb, sizeof emb);
	int rc = index_open(dir, &io, ix, err, sizeof err);
	if (rc) {
		fprintf(stderr, "seekfs index: %s\n", err);
		return rc;
	}
	struct index_info in;
	index_info(*ix, &in);
	if (!in.dim && !o->no_embedder)
		fprintf(stderr, "seekfs: no embedding model (give --embedder, or put %s in %s/models "
				"or the models folder): BM25 alone\n", CLI_DEFAULT_EMBEDDER, o->store);
	return 0;
}

/* ---- add ---- */

struct adder {
	char **keys, **files;
	size_t n, cap;
	long n_indexed, n_unchanged, n_reused, n_skipped, n_chunks, n_embedded;
};

static int push(struct adder *a, const char *store, const char *file)
{
	char key[4096];
	int rc = cli_doc_key(store, file, key, sizeof key);
	if (rc) {
		fprintf(stderr, "seekfs index: %s: %s\n", file, strerror(-rc));
		return rc;
	}
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		char **k = realloc(a->keys, cap * sizeof *k), **f;
		if (!k)
			return -ENOMEM;
		a->keys = k;
		if (!(f = realloc(a->files, cap * sizeof *f)))
			return -ENOMEM;
		a->files = f;
		a->cap = cap;
	}
	a->keys[a->n] = strdup(key);
	a->files[a->n] = strdup(file);
	if (!a->keys[a->n] || !a->files[a->n])
		return -ENOMEM;
	a->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk(struct adder *a, const char *store, const char *path, int depth)
{
	struct stat st;
	if (stat(path, &st)) {
		fprintf(stderr, "seekfs index: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode))
		return push(a, store, path);
	if (depth > 64) {
		fprintf(stderr, "seekfs index: %s: folders nested too deep\n", path);
		return 0;
	}
	DIR *d = opendir(path);
	if (!d) {
		fprintf(stderr, "seekfs index: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d))) {
		if (store_name_hidden(e->d_name))
			continue;
		if (n == cap) {
			char **p = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *p);
			if (!p) {
				rc = -ENOMEM;
				break;
			}
			names = p;
		}
		if (!(names[n++] = strdup(e->d_name))) {
			rc = -ENOMEM;
			break;
		}
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n; i++) {
		char *p;
		if (!rc && asprintf(&p, "%s/%s", path, names[i]) >= 0) {
			rc = walk(a, store, p, depth + 1) == -ENOMEM ? -ENOMEM : 0;
			free(p);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

static void ack(void *ctx, const char *key, const char *file, const struct index_add_result *r)
{
	struct adder *a = ctx;
	char k[8200];
	(void)file;
	cli_escape(key, k, sizeof k);
	switch (r->outcome) {
	case IX_INDEXED:
		a->n_indexed++;
		printf("indexed\t%s\t%d chunks\n", k, r->n_chunks);
		break;
	case IX_UNCHANGED:
		a->n_unchanged++;
		printf("unchanged\t%s\n", k);
		break;
	case IX_REUSED:
		a->n_reused++;
		printf("reused\t%s\t%d chunks\n", k, r->n_chunks);
		break;
	case IX_SKIPPED:
		a->n_skipped++;
		printf("skipped\t%s\t%s\n", k, r->reason);
		break;
	}
	a->n_chunks += r->n_chunks;
	a->n_embedded += r->n_embedded;
	fflush(stdout); /* the line is the acknowledgement: it leaves now */
}

static int do_add(struct opts *o, int argc, char **argv)
{
	if (!argc) {
		fprintf(stderr, "seekfs index add: no PATH given\n");
		return 2;
	}
	struct adder a = {0};
	int rc = 0, bad = 0;
	for (int i = 0; i < argc && rc != -ENOMEM; i++) {
		rc = walk(&a, o->store, argv[i], 0);
		bad |= rc != 0;
	}
	struct index *ix;
	if (rc == -ENOMEM) {
		fprintf(stderr, "seekfs index: out of memory\n");
		goto out;
	}
	if ((rc = open_index(o, 0, &ix)))
		goto out;
	char err[600];
	double t0 = cli_now();
	rc = index_add(ix, (const char *const *)a.keys, (const char *const *)a.files, a.n, ack, &a,
		       err, sizeof err);
	double t1 = cli_now();
	int64_t more = 0;
	if (!rc)
		rc = index_embed_pending(ix, 0, &more, err, sizeof err);
	if (!rc)
		rc = index_persist(ix, err, sizeof err);
	if (rc)
		fprintf(stderr, "seekfs index: %s\n", err);
	struct index_info in;
	index_info(ix, &in);
	index_close(ix);
	double dt = t1 - t0 > 1e-9 ? t1 - t0 : 1e-9;
	fprintf(stderr,
		"seekfs index: %zu documents (%ld indexed, %ld unchanged, %ld reused, %ld skipped) "
		"in %.2f s: %.1f documents/s, %ld chunks embedded (%.1f chunks/s)%s\n",
		a.n, a.n_indexed, a.n_unchanged, a.n_reused, a.n_skipped, dt, a.n / dt,
		a.n_embedded, a.n_embedded / dt, in.dim ? "" : ", BM25 only");
	if (more)
		fprintf(stderr, "seekfs index: %lld chunks without a vector embedded\n", (long long)more);
	fprintf(stderr, "seekfs index: the index holds %lld documents, %lld chunks, %lld vectors\n",
		(long long)in.n_docs, (long long)in.n_chunks, (long long)in.n_vectors);
out:
	for (size_t i = 0; i < a.n; i++) {
		free(a.keys[i]);
		free(a.files[i]);
	}
	free(a.keys);
	free(a.files);
	return rc ? 1 : bad ? 1 : 0;
}

static int do_rm(struct opts *o, int argc, char **argv)
{
	if (!argc) {
		fprintf(stderr, "seekfs index rm: no PATH given\n");
		return 2;
	}
	struct index *ix;
	if (open_index(o, 0, &ix))
		return 1;
	int bad = 0;
	for (int i = 0; i < argc; i++) {
		char key[4096], err[600];
		int rc = cli_doc_key(o->store, argv[i], key, sizeof key);
		if (!rc)
			rc = index_remove(ix, key, err, sizeof err);
		else
			snprintf(err, sizeof err, "%s: %s", argv[i], strerror(-rc));
		if (rc) {
			fprintf(stderr, "seekfs index rm: %s\n", err);
			bad = 1;
		} else {
			char k[8200];
			cli_escape(key, k, sizeof k);
			printf("removed\t%s\n", k);
			fflush(stdout);
		}
	}
	char err[600];
	if (index_persist(ix, err, sizeof err)) {
		fprintf(stderr, "seekfs index: %s\n", err);
		bad = 1;
	}
	index_close(ix);
	return bad;
}

static int do_mv(struct opts *o, int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "seekfs index mv: wants OLD and NEW\n");
		return 2;
	}
	char from[4096], to[4096], err[600];
	if (cli_doc_key(o->store, argv[0], from, sizeof from) ||
	    cli_doc_key(o->store, argv[1], to, sizeof to)) {
		fprintf(stderr, "seekfs index mv: path too long\n");
		return 2;
	}
	struct index *ix;
	if (open_index(o, 0, &ix))
		return 1;
	int rc = index_rename(ix, from, to, err, sizeof err);
	if (!rc)
		rc = index_persist(ix, err, sizeof err);
	if (rc)
		fprintf(stderr, "seekfs index mv: %s\n", err);
	index_close(ix);
	return rc ? 1 : 0;
}

static int list_one(void *ctx, const struct index_doc *d)
{
	char k[8200];
	(void)ctx;
	cli_escape(d->key, k, sizeof k);
	if (d->skipped)
		printf("%s\tskipped\t0\t%lld\t%s\n", k, (long long)d->size, d->reason ? d->reason : "");
	else
		printf("%s\tindexed\t%d\t%lld\t%s\n", k, d->n_chunks, (long long)d->size,
		       d->type ? d->type : "");
	return 0;
}

static int do_list(struct opts *o)
{
	struct index *ix;
	o->no_embedder = 1; /* listing needs no model */
	if (open_index(o, 1, &ix))
		return 1;
	char err[600];
	int rc = index_list(ix, list_one, NULL, err, sizeof err);
	if (rc)
		fprintf(stderr, "seekfs index list: %s\n", err);
	index_close(ix);
	return rc ? 1 : 0;
}

static int stale_one(void *ctx, const struct index_doc *d)
{
	char k[8200];
	(void)ctx;
	cli_escape(d->key, k, sizeof k);
	printf("stale\t%s\tthe file changed or is gone since it was indexed: "
	       "seekfs index add or rm it\n", k);
	return 0;
}

static int do_check(struct opts *o)
{
	struct index *ix;
	/* read-write even without repair: FTS5 runs its integrity check as a write */
	if (open_index(o, 0, &ix))
		return 1;
	char base[4200], err[600];
	snprintf(base, sizeof base, "%s/docs", o->store);
	struct index_check_report r;
	int rc = index_check(ix, !o->no_repair, base, stale_one, NULL, &r, err, sizeof err);
	index_close(ix);
	if (rc) {
		fprintf(stderr, "seekfs index check: %s\n", err);
		return 1;
	}
	printf("documents\t%lld\nchunks\t%lld\nvectors\t%lld\n", (long long)r.n_docs,
	       (long long)r.n_chunks, (long long)r.n_vectors);
	printf("sqlite\t%s\nfts5\t%s\n", r.sqlite_ok ? "ok" : "CORRUPT",
	       r.fts_ok ? "ok" : o->no_repair ? "inconsistent" : "inconsistent, rebuilt");
	int faiss_bad = r.faiss_missing || r.faiss_extra || r.faiss_wrong;
	printf("faiss\t%s (missing %lld, extra %lld, different %lld)%s\n",
	       faiss_bad ? "inconsistent" : "ok", (long long)r.faiss_missing,
	       (long long)r.faiss_extra, (long long)r.faiss_wrong,
	       r.faiss_rebuilt ? ", rebuilt from SQLite" : "");
	if (r.faiss_dead)
		printf("faiss_dead\t%lld (vectors of removed chunks, skipped by search)\n",
		       (long long)r.faiss_dead);
	printf("stale\t%lld\n", (long long)r.stale_docs);
	int bad = !r.sqlite_ok || (o->no_repair && (!r.fts_ok || faiss_bad));
	return bad ? 1 : 0;
}

static int parse(struct opts *o, int argc, char **argv, const char *shortopts, int search,
		 int *k, enum search_mode *mode, float *mmr)
{
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, shortopts, long_opts, NULL)) != -1) {
		switch (c) {
		case O_STORE: o->store_opt = optarg; break;
		case O_EMBEDDER: o->embedder = optarg; break;
		case O_NO_EMBEDDER: o->no_embedder = 1; break;
		case O_HNSW: o->hnsw = 1; break;
		case O_NO_REPAIR: o->no_repair = 1; break;
		case 't': if (cli_int(optarg, "-t", 1, 1024, &o->threads)) return -1; break;
		case 'k':
			if (!search || cli_int(optarg, "-k", 1, 10000, k))
				return -1;
			break;
		case O_MODE:
			if (!search)
				return -1;
			if (!strcmp(optarg, "hybrid")) *mode = SEARCH_HYBRID;
			else if (!strcmp(optarg, "bm25")) *mode = SEARCH_BM25;
			else if (!strcmp(optarg, "vector")) *mode = SEARCH_VECTOR;
			else {
				fprintf(stderr, "seekfs: --mode is hybrid, bm25 or vector, not '%s'\n", optarg);
				return -1;
			}
			break;
		case O_MMR:
			if (!search || cli_float(optarg, "--mmr", 0, 1, mmr))
				return -1;
			break;
		case 'h': return 1;
		default: return -1;
		}
	}
	cli_store_dir(o->store_opt, o->store, sizeof o->store);
	return 0;
}

int cmd_index(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *sub = argv[1];
	struct opts o = {0};
	int r = parse(&o, argc - 1, argv + 1, "t:h", 0, NULL, NULL, NULL);
	if (r) {
		usage(r > 0 ? stdout : stderr);
		return r > 0 ? 0 : 2;
	}
	int rest = argc - 1 - optind;
	char **args = argv + 1 + optind;
	if (!strcmp(sub, "add"))
		return do_add(&o, rest, args);
	if (!strcmp(sub, "rm"))
		return do_rm(&o, rest, args);
	if (!strcmp(sub, "mv"))
		return do_mv(&o, rest, args);
	if (rest) {
		fprintf(stderr, "seekfs index %s: takes no PATH\n", sub);
		return 2;
	}
	if (!strcmp(sub, "list"))
		return do_list(&o);
	if (!strcmp(sub, "check"))
		return do_check(&o);
	fprintf(stderr, "seekfs index: '%s' is not add, rm, mv, list or check\n", sub);
	usage(stderr);
	return 2;
}

int cmd_search(int argc, char **argv)
{
	struct opts o = {0};
	int k = 5;
	enum search_mode mode = SEARCH_HYBRID;
	float mmr = 0;
	int r = parse(&o, argc, argv, "k:t:h", 1, &k, &mode, &mmr);
	if (r || optind >= argc) {
		FILE *f = r > 0 ? stdout : stderr;
		fprintf(f, "usage: seekfs search [--store DIR] [-k K] [--mode hybrid|bm25|vector]\n"
			   "                     [--mmr LAMBDA] [--embedder FILE | --no-embedder] QUERY...\n"
			   "  prints the best K chunks (default 5) as rank<TAB>score<TAB>document<TAB>"
			   "start-end<TAB>snippet\n"
			   "  (byte offsets in the document; BM25 and vectors fused by reciprocal rank\n"
			   "  fusion; --mmr diversifies with maximal marginal relevance)\n");
		return r > 0 ? 0 : 2;
	}
	size_t ql = 0;
	for (int i = optind; i < argc; i++)
		ql += strlen(argv[i]) + 1;
	char *q = malloc(ql + 1);
	if (!q)
		return 1;
	q[0] = 0;
	for (int i = optind; i < argc; i++) {
		strcat(q, argv[i]);
		if (i + 1 < argc)
			strcat(q, " ");
	}
	struct index *ix;
	if (open_index(&o, 1, &ix)) {
		free(q);
		return 1;
	}
	struct search_opts so = {.k = k, .mode = mode, .mmr_lambda = mmr};
	struct search_hit *h;
	int n;
	char err[600];
	double t0 = cli_now();
	int rc = index_search(ix, q, &so, &h, &n, err, sizeof err);
	double t1 = cli_now();
	if (rc) {
		fprintf(stderr, "seekfs search: %s\n", err);
	} else {
		for (int i = 0; i < n; i++) {
			char line[4096 + 8200];
			search_hit_line(&h[i], i + 1, line, sizeof line);
			fputs(line, stdout);
		}
		fprintf(stderr, "seekfs search: %d hits in %.1f ms\n", n, (t1 - t0) * 1e3);
		search_hits_free(h, n);
	}
	index_close(ix);
	free(q);
	return rc ? 1 : 0;
}
