/*
 * daemon: the mounted filesystem's services (see fs/daemon.h): lifecycle,
 * query submission and cancellation, the models in use (with a background
 * loader for hot swaps) and the status/ values. The query pipeline is in
 * fs/query.c, the index worker and the docs/ watcher in fs/docs.c.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "fs/cli_util.h"
#include "fs/daemon_internal.h"

double daemon_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void daemon_error(struct daemon *d, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&d->mu);
	snprintf(d->last_error, sizeof d->last_error, "%s", buf);
	pthread_mutex_unlock(&d->mu);
	/* and the log, for after the fact */
	char p[4300];
	snprintf(p, sizeof p, "%s/seekfs.log", d->sp.root);
	FILE *f = fopen(p, "a");
	if (f) {
		time_t t = time(NULL);
		struct tm tm;
		char ts[32];
		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", localtime_r(&t, &tm));
		fprintf(f, "%s %s\n", ts, buf);
		fclose(f);
	}
}

/* ---- the store ------------------------------------------------------------ */

static int mkdir_p(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		int r = mkdir(path, 0755);
		*p = '/';
		if (r && errno != EEXIST)
			return -errno;
	}
	return mkdir(path, 0755) && errno != EEXIST ? -errno : 0;
}

int store_prepare(const char *root, struct store_paths *p, char *err, size_t errsz)
{
	memset(p, 0, sizeof *p);
	char abs[4096];
	int rc = cli_abspath(root, abs, sizeof abs);
	if (rc) {
		snprintf(err, errsz, "%s: %s", root, strerror(-rc));
		return rc;
	}
	snprintf(p->root, sizeof p->root, "%s", abs);
	snprintf(p->docs, sizeof p->docs, "%s/docs", abs);
	snprintf(p->queries, sizeof p->queries, "%s/queries", abs);
	snprintf(p->models, sizeof p->models, "%s/models", abs);
	snprintf(p->index, sizeof p->index, "%s/index", abs);
	char *dirs[] = {p->root, p->docs, p->queries, p->models};
	for (int i = 0; i < 4; i++) {
		char tmp[4200];
		snprintf(tmp, sizeof tmp, "%s", dirs[i]);
		if ((rc = mkdir_p(tmp))) {
			snprintf(err, errsz, "%s: %s", dirs[i], strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* ---- queries ---------------------------------------------------------------- */

const char *const daemon_result_suffixes[N_RESULT_SUFFIXES] = {
	".done", ".status", ".stream", ".hits", ".answer", ".json", ".error",
};

int store_name_hidden(const char *name)
{
	size_t l = strlen(name);
	return name[0] == '.' || !l || name[l - 1] == '~' ||
	       (l > 4 && (!strcmp(name + l - 4, ".swp") || !strcmp(name + l - 4, ".tmp")));
}

enum qname daemon_query_kind(const char *name)
{
	size_t l = strlen(name);
	if (store_name_hidden(name))
		return QN_HIDDEN;
	for (size_t i = 0; i < N_RESULT_SUFFIXES; i++) {
		size_t s = strlen(daemon_result_suffixes[i]);
		if (l > s && !strcmp(name + l - s, daemon_result_suffixes[i]))
			return QN_RESULT;
	}
	return QN_REQUEST;
}

static struct query *find_active(struct daemon *d, const char *name)
{
	for (struct query *q = d->active; q; q = q->next)
		if (!strcmp(q->name, name))
			return q;
	return NULL;
}

static int enqueue(struct daemon *d, const char *name)
{
	struct query *q = calloc(1, sizeof *q);
	if (!q)
		return -ENOMEM;
	snprintf(q->name, sizeof q->name, "%s", name);
	q->state = Q_QUEUED;
	q->t_submit = daemon_now();
	/* append: the queue is first come, first served */
	struct query **pp = &d->active;
	while (*pp)
		pp = &(*pp)->next;
	*pp = q;
	d->n_queries++;
	pthread_cond_broadcast(&d->cv_q);
	return 0;
}

int daemon_query_submit(struct daemon *d, const char *name)
{
	if (daemon_query_kind(name) != QN_REQUEST || strlen(name) >= 200)
		return -EINVAL;
	pthread_mutex_lock(&d->mu);
	struct query *q = find_active(d, name);
	int busy = q && !q->cancel;
	pthread_mutex_unlock(&d->mu);
	if (busy)
		return -EBUSY; /* still queued or running: rm it first */
	/* results of an earlier request of this name go; then it is queued */
	query_remove_results(d, name);
	/* the stream exists from the start, so that a reader can wait on it */
	int rc = query_write_result(d, name, ".stream", "", 0);
	if (!rc)
		rc = query_write_result(d, name, ".status", "queued\n", 7);
	if (rc)
		return rc;
	pthread_mutex_lock(&d->mu);
	rc = find_active(d, name) ? -EBUSY : enqueue(d, name);
	pthread_mutex_unlock(&d->mu);
	mount_notify_query(d->m, name);
	return rc;
}

void daemon_query_removed(struct daemon *d, const char *name)
{
	if (daemon_query_kind(name) != QN_REQUEST)
		return;
	pthread_mutex_lock(&d->mu);
	struct query *q = find_active(d, name);
	int running = q && q->state == Q_RUNNING;
	if (q && !running) {
		/* queued: out of the queue at once */
		struct query **pp = &d->active;
		while (*pp != q)
			pp = &(*pp)->next;
		*pp = q->next;
		d->n_cancelled++;
		free(q);
	} else if (q) {
		q->cancel = 1; /* the worker stops at its next step and cleans up */
	}
	pthread_mutex_unlock(&d->mu);
	if (!running)
		query_remove_results(d, name);
	mount_stream_wake(d->m, name);
}

int daemon_stream_open(struct daemon *d, const char *request_name)
{
	pthread_mutex_lock(&d->mu);
	struct query *q = find_active(d, request_name);
	int open = q && (q->state == Q_QUEUED || q->state == Q_RUNNING);
	pthread_mutex_unlock(&d->mu);
	return open;
}

/* Requests left without NAME.done by a previous run (a crash, or queries
 * queued at unmount): queued again, from the start. */
static void resume_queries(struct daemon *d)
{
	DIR *dir = opendir(d->sp.queries);
	struct dirent *e;
	while (dir && (e = readdir(dir))) {
		if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
			continue;
		if (daemon_query_kind(e->d_name) != QN_REQUEST || strlen(e->d_name) >= 200)
			continue;
		char p[4500];
		snprintf(p, sizeof p, "%s/%s.done", d->sp.queries, e->d_name);
		if (!access(p, F_OK))
			continue;
		snprintf(p, sizeof p, "%s/%s.status", d->sp.queries, e->d_name);
		if (access(p, F_OK))
			continue; /* never submitted (written but not closed?) */
		query_remove_results(d, e->d_name);
		query_write_result(d, e->d_name, ".stream", "", 0);
		query_write_result(d, e->d_name, ".status", "queued\n", 7);
		pthread_mutex_lock(&d->mu);
		enqueue(d, e->d_name);
		pthread_mutex_unlock(&d->mu);
	}
	if (dir)
		closedir(dir);
}

/* ---- models ------------------------------------------------------------------- */

/* general.architecture of a GGUF, or "" when it is not one. */
static void gguf_arch(const char *path, char *arch, size_t n)
{
	struct gguf *g;
	arch[0] = 0;
	if (gguf_open(path, &g, NULL, 0))
		return;
	size_t len;
	const char *a = gguf_get_str(g, "general.architecture", &len);
	if (a)
		snprintf(arch, n, "%.*s", (int)len, a);
	gguf_close(g);
}

static int is_generator_arch(const char *a)
{
	return !strcmp(a, "llama") || !strcmp(a, "qwen2") || !strcmp(a, "gemma3");
}

/* A model name as written into models/generator: a file in STORE/models,
 * else in the models folder of the setup; absolute paths as they are. */
static int resolve_model(struct daemon *d, const char *name, char *path, size_t n)
{
	if (name[0] == '/') {
		snprintf(path, n, "%s", name);
		return access(path, R_OK) ? -ENOENT : 0;
	}
	if (strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, "."))
		return -EINVAL;
	snprintf(path, n, "%s/%s", d->sp.models, name);
	if (!access(path, R_OK))
		return 0;
	char dir[4096];
	snprintf(path, n, "%s/%s", cli_models_dir(dir, sizeof dir), name);
	return access(path, R_OK) ? -ENOENT : 0;
}

static void conf_path(struct daemon *d, char *buf, size_t n)
{
	snprintf(buf, n, "%s/seekfs.json", d->sp.root);
}

/* Remember the models in use across remounts (written atomically). */
static void conf_save(struct daemon *d)
{
	char p[4300], tmp[4400];
	conf_path(d, p, sizeof p);
	snprintf(tmp, sizeof tmp, "%s.tmp", p);
	pthread_mutex_lock(&d->mu);
	json_t *j = json_pack("{s:s, s:s}", "generator", d->gen ? d->gen->path : "",
			      "embedder", d->emb_path);
	pthread_mutex_unlock(&d->mu);
	if (j && !json_dump_file(j, tmp, JSON_INDENT(2))) {
		int fd = open(tmp, O_RDONLY);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
		rename(tmp, p);
	}
	json_decref(j);
}

static void conf_load(struct daemon *d, char *gen, char *emb, size_t n)
{
	char p[4300];
	conf_path(d, p, sizeof p);
	gen[0] = emb[0] = 0;
	json_t *j = json_load_file(p, 0, NULL);
	if (!j)
		return;
	const char *g = json_string_value(json_object_get(j, "generator"));
	const char *e = json_string_value(json_object_get(j, "embedder"));
	if (g)
		snprintf(gen, n, "%s", g);
	if (e)
		snprintf(emb, n, "%s", e);
	json_decref(j);
}

/* The generator to start with: the one in use before, else the setup's
 * default, else the first llama/qwen2 GGUF in STORE/models. */
static void pick_generator(struct daemon *d, const char *saved, char *out, size_t n)
{
	out[0] = 0;
	if (saved[0] && !access(saved, R_OK)) {
		snprintf(out, n, "%s", saved);
		return;
	}
	static const char *const DEFAULTS[] = {"Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
					       "SmolLM2-135M-Instruct.Q4_1.gguf"};
	for (size_t i = 0; i < sizeof DEFAULTS / sizeof *DEFAULTS; i++)
		if (!resolve_model(d, DEFAULTS[i], out, n))
			return;
	out[0] = 0;
	DIR *dir = opendir(d->sp.models);
	struct dirent *e;
	while (dir && (e = readdir(dir)) && !out[0]) {
		size_t l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".gguf"))
			continue;
		char p[8192], arch[64];
		snprintf(p, sizeof p, "%s/%s", d->sp.models, e->d_name);
		gguf_arch(p, arch, sizeof arch);
		if (is_generator_arch(arch))
			snprintf(out, n, "%s", p);
	}
	if (dir)
		closedir(dir);
}

static void gen_release(struct daemon *d, struct genmodel *g)
{
	pthread_mutex_lock(&d->mu);
	int last = g && --g->refs == 0;
	pthread_mutex_unlock(&d->mu);
	if (last) {
		model_free(g->m);
		free(g);
	}
}

/* The loader thread: loads what gen_want / emb_want name, then swaps it in.
 * A model that fails to load leaves the one in use in place. */
static void *model_loader(void *arg)
{
	struct daemon *d = arg;
	pthread_mutex_lock(&d->mu);
	while (!d->stopping) {
		if (!d->gen_want[0] && !d->emb_want[0]) {
			d->loading = 0;
			pthread_cond_wait(&d->cv_model, &d->mu);
			continue;
		}
		d->loading = 1;
		char path[8192];
		int is_gen = d->gen_want[0] != 0;
		snprintf(path, sizeof path, "%s", is_gen ? d->gen_want : d->emb_want);
		(is_gen ? d->gen_want : d->emb_want)[0] = 0;
		pthread_mutex_unlock(&d->mu);
		if (is_gen) {
			char err[512];
			struct model *m;
			if (model_load(path, &m, err, sizeof err)) {
				daemon_error(d, "generator not changed: %s", err);
			} else if (model_hparams(m)->arch == ARCH_BERT) {
				daemon_error(d, "generator not changed: %s is an embedding model", path);
				model_free(m);
			} else {
				struct genmodel *g = calloc(1, sizeof *g), *old;
				if (!g) {
					model_free(m);
				} else {
					g->m = m;
					g->refs = 1;
					snprintf(g->path, sizeof g->path, "%s", path);
					const char *b = strrchr(path, '/');
					snprintf(g->name, sizeof g->name, "%.255s", b ? b + 1 : path);
					pthread_mutex_lock(&d->mu);
					old = d->gen;
					d->gen = g; /* queries already running keep theirs */
					pthread_mutex_unlock(&d->mu);
					gen_release(d, old);
					conf_save(d);
				}
			}
		} else {
			/* the embedder: the index is reopened with it by the index thread */
			pthread_mutex_lock(&d->mu);
			snprintf(d->emb_path, sizeof d->emb_path, "%s", path);
			pthread_mutex_unlock(&d->mu);
			docs_queue(d, DOC_CHANGED, NULL, NULL); /* wakes the index thread */
			conf_save(d);
		}
		pthread_mutex_lock(&d->mu);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

void daemon_model_changed(struct daemon *d, const char *name)
{
	char path[8192], arch[64];
	snprintf(path, sizeof path, "%s/%s", d->sp.models, name);
	/* only the header is read here: the load itself is the loader's */
	gguf_arch(path, arch, sizeof arch);
	if (!arch[0]) {
		daemon_error(d, "models/%s is not a valid GGUF file (truncated or corrupt): "
				"the models in use stay", name);
		return;
	}
	pthread_mutex_lock(&d->mu);
	if (is_generator_arch(arch))
		snprintf(d->gen_want, sizeof d->gen_want, "%s", path);
	else if (!strcmp(arch, "bert"))
		snprintf(d->emb_want, sizeof d->emb_want, "%s", path);
	pthread_cond_broadcast(&d->cv_model);
	pthread_mutex_unlock(&d->mu);
	if (!is_generator_arch(arch) && strcmp(arch, "bert"))
		daemon_error(d, "models/%s: architecture %s is neither a generator (llama, qwen2, gemma3) "
				"nor an embedder (bert)", name, arch);
}

int daemon_model_get(struct daemon *d, const char *which, char **text, size_t *len)
{
	char buf[8200];
	pthread_mutex_lock(&d->mu);
	const char *p = !strcmp(which, "generator") ? (d->gen ? d->gen->path : "") : d->emb_path;
	const char *b = strrchr(p, '/');
	/* a model in STORE/models is shown by its name, others by path */
	int local = b && (size_t)(b - p) == strlen(d->sp.models) &&
		    !strncmp(p, d->sp.models, (size_t)(b - p));
	snprintf(buf, sizeof buf, "%s\n", local ? b + 1 : p);
	pthread_mutex_unlock(&d->mu);
	if (!(*text = strdup(buf)))
		return -ENOMEM;
	*len = strlen(buf);
	return 0;
}

int daemon_model_set(struct daemon *d, const char *which, const char *text, size_t len,
		     char *err, size_t errsz)
{
	char name[4200];
	while (len && (text[len - 1] == '\n' || text[len - 1] == ' ' || text[len - 1] == '\t' ||
		       text[len - 1] == '\r'))
		len--;
	if (!len || len >= sizeof name) {
		snprintf(err, errsz, "write the name of a GGUF file in models/");
		return -EINVAL;
	}
	memcpy(name, text, len);
	name[len] = 0;
	char path[8192], arch[64];
	int rc = resolve_model(d, name, path, sizeof path);
	if (rc) {
		snprintf(err, errsz, "%s: no such model in models/", name);
		return rc;
	}
	gguf_arch(path, arch, sizeof arch);
	int gen = !strcmp(which, "generator");
	if (!arch[0] || (gen && !is_generator_arch(arch)) || (!gen && strcmp(arch, "bert"))) {
		snprintf(err, errsz, "%s: %s", name,
			 !arch[0] ? "not a valid GGUF file" :
			 gen ? "not a generator model (llama, qwen2 or gemma3)" : "not an embedding model (bert)");
		daemon_error(d, "%s not changed: %s", which, err);
		return -EINVAL;
	}
	pthread_mutex_lock(&d->mu);
	snprintf(gen ? d->gen_want : d->emb_want, sizeof d->gen_want, "%s", path);
	pthread_cond_broadcast(&d->cv_model);
	pthread_mutex_unlock(&d->mu);
	return 0;
}

/* ---- status ------------------------------------------------------------------ */

static const char *const STATUS_NAMES[] = {
	"generator", "embedder", "state", "queue", "running", "documents", "chunks",
	"vectors", "pending_reindex", "queries", "last_error", "pid", "json", "metrics", NULL,
};

const char *const *daemon_status_names(void)
{
	return STATUS_NAMES;
}

const double hist_bounds[N_HIST] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
				    0.5,   1,    2.5,   5,    10,  30};

static json_t *status_json(struct daemon *d)
{
	pthread_mutex_lock(&d->mu);
	struct index_info in = d->info;
	int queued = 0, running = 0;
	for (struct query *q = d->active; q; q = q->next)
		q->state == Q_RUNNING ? running++ : queued++;
	const char *state = d->loading ? "loading" : running ? "busy" : "idle";
	json_t *j = json_pack(
		"{s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:s}",
		"generator", d->gen ? d->gen->name : "",
		"embedder", in.embedder, "state", state, "queue", queued, "running", running,
		"documents", (json_int_t)in.n_docs, "chunks", (json_int_t)in.n_chunks,
		"vectors", (json_int_t)in.n_vectors, "pending_reindex", (json_int_t)(d->n_jobs + d->n_inflight),
		"queries", (json_int_t)d->n_queries, "last_error", d->last_error);
	if (j)
		json_object_set_new(j, "pid", json_integer(getpid()));
	pthread_mutex_unlock(&d->mu);
	return j;
}

static void prom_hist(FILE *f, const char *name, const char *help,
		      const struct hist *h)
{
	fprintf(f, "# HELP seekfs_%s_seconds %s\n# TYPE seekfs_%s_seconds histogram\n", name, help,
		name);
	for (int i = 0; i < N_HIST; i++)
		fprintf(f, "seekfs_%s_seconds_bucket{le=\"%g\"} %llu\n", name, hist_bounds[i],
			(unsigned long long)h->le[i]);
	fprintf(f, "seekfs_%s_seconds_bucket{le=\"+Inf\"} %llu\n", name,
		(unsigned long long)h->count);
	fprintf(f, "seekfs_%s_seconds_sum %g\nseekfs_%s_seconds_count %llu\n", name, h->sum, name,
		(unsigned long long)h->count);
}

static int status_metrics(struct daemon *d, char **text, size_t *len)
{
	pthread_mutex_lock(&d->mu);
	struct index_info in = d->info;
	pthread_mutex_unlock(&d->mu);
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	if (!f)
		return -ENOMEM;
	pthread_mutex_lock(&d->mu);
	int queued = 0, running = 0;
	for (struct query *q = d->active; q; q = q->next)
		q->state == Q_RUNNING ? running++ : queued++;
	fprintf(f, "# HELP seekfs_queries_total Queries submitted.\n# TYPE seekfs_queries_total counter\n"
		   "seekfs_queries_total %llu\n", (unsigned long long)d->n_queries);
	fprintf(f, "# HELP seekfs_queries_finished_total Queries finished, by outcome.\n"
		   "# TYPE seekfs_queries_finished_total counter\n"
		   "seekfs_queries_finished_total{outcome=\"done\"} %llu\n"
		   "seekfs_queries_finished_total{outcome=\"error\"} %llu\n"
		   "seekfs_queries_finished_total{outcome=\"cancelled\"} %llu\n",
		(unsigned long long)d->n_done, (unsigned long long)d->n_failed,
		(unsigned long long)d->n_cancelled);
	fprintf(f, "# HELP seekfs_queue_length Queries waiting.\n# TYPE seekfs_queue_length gauge\n"
		   "seekfs_queue_length %d\n# HELP seekfs_running Queries running.\n"
		   "# TYPE seekfs_running gauge\nseekfs_running %d\n", queued, running);
	fprintf(f, "# HELP seekfs_tokens_total Tokens processed.\n# TYPE seekfs_tokens_total counter\n"
		   "seekfs_tokens_total{kind=\"prompt\"} %llu\nseekfs_tokens_total{kind=\"generated\"} %llu\n",
		(unsigned long long)d->tokens_prompt, (unsigned long long)d->tokens_generated);
	fprintf(f, "# HELP seekfs_decode_tokens_per_second Generated tokens over decode time, since start.\n"
		   "# TYPE seekfs_decode_tokens_per_second gauge\nseekfs_decode_tokens_per_second %g\n",
		d->decode_s > 0 ? d->tokens_generated / d->decode_s : 0.0);
	prom_hist(f, "queue", "Time queries waited in the queue.", &d->h_queue);
	prom_hist(f, "retrieve", "Time spent searching the index.", &d->h_retrieve);
	prom_hist(f, "prefill", "Time spent evaluating prompts.", &d->h_prefill);
	prom_hist(f, "decode", "Time spent generating answers.", &d->h_decode);
	pthread_mutex_unlock(&d->mu);
	fprintf(f, "# HELP seekfs_index_documents Documents indexed.\n# TYPE seekfs_index_documents gauge\n"
		   "seekfs_index_documents %lld\n# HELP seekfs_index_chunks Chunks indexed.\n"
		   "# TYPE seekfs_index_chunks gauge\nseekfs_index_chunks %lld\n"
		   "# HELP seekfs_index_vectors Vectors in the index.\n# TYPE seekfs_index_vectors gauge\n"
		   "seekfs_index_vectors %lld\n",
		(long long)in.n_docs, (long long)in.n_chunks, (long long)in.n_vectors);
	fclose(f);
	*text = buf;
	*len = n;
	return 0;
}

int daemon_status_read(struct daemon *d, const char *name, char **text, size_t *len)
{
	if (!strcmp(name, "metrics"))
		return status_metrics(d, text, len);
	json_t *j = status_json(d);
	if (!j)
		return -ENOMEM;
	char *s = NULL;
	if (!strcmp(name, "json")) {
		s = json_dumps(j, JSON_INDENT(2));
		if (s) {
			char *t = realloc(s, strlen(s) + 2);
			if (t) {
				strcat(t, "\n");
				s = t;
			}
		}
	} else {
		json_t *v = json_object_get(j, name);
		if (!v) {
			json_decref(j);
			return -ENOENT;
		}
		int r = json_is_string(v) ? asprintf(&s, "%s\n", json_string_value(v))
					  : asprintf(&s, "%lld\n", (long long)json_integer_value(v));
		if (r < 0)
			s = NULL;
	}
	json_decref(j);
	if (!s)
		return -ENOMEM;
	*text = s;
	*len = strlen(s);
	return 0;
}

/* ---- start / stop ------------------------------------------------------------- */

int daemon_start(const struct daemon_opts *o, struct mount *m, struct daemon **out,
		 char *err, size_t errsz)
{
	struct daemon *d = calloc(1, sizeof *d);
	if (!d) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	d->o = *o;
	d->sp = *o->store;
	d->o.store = &d->sp;
	d->m = m;
	if (d->o.debounce_s <= 0)
		d->o.debounce_s = 0.3;
	d->n_workers = d->o.n_workers > 0 ? d->o.n_workers : 32;
	d->jobs_tail = &d->jobs;
	d->inotify_fd = -1;
	d->stop_pipe[0] = d->stop_pipe[1] = -1;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv_gen, NULL);
	pthread_cond_init(&d->cv_gen_done, NULL);
	pthread_rwlock_init(&d->ix_lock, NULL);
	pthread_cond_init(&d->cv_q, NULL);
	pthread_cond_init(&d->cv_doc, NULL);
	pthread_cond_init(&d->cv_model, NULL);

	/* the index, with the embedder it had, else the default */
	char gen[4200], emb[4200], def[4200];
	conf_load(d, gen, emb, sizeof gen);
	struct index_opts io = {.n_threads = d->o.n_threads, .bm25_memory = 1};
	io.embedder = emb[0] && !access(emb, R_OK) ? emb : NULL;
	io.default_embedder = cli_default_embedder(d->sp.root, def, sizeof def);
	int rc = index_open(d->sp.index, &io, &d->ix, err, errsz);
	if (rc) {
		free(d);
		return rc;
	}
	struct index_info in;
	index_info(d->ix, &in);
	d->info = in;
	if (in.dim) {
		const char *p = io.embedder ? io.embedder : io.default_embedder;
		snprintf(d->emb_path, sizeof d->emb_path, "%s", p ? p : in.embedder);
	} else {
		daemon_error(d, "no embedding model: search uses BM25 alone until one is copied "
				"into models/");
	}
	if (!(d->pool = kt_pool_create(d->o.n_threads))) {
		snprintf(err, errsz, "cannot start compute threads");
		index_close(d->ix);
		free(d);
		return -ENOMEM;
	}
	pick_generator(d, gen, d->gen_want, sizeof d->gen_want);
	if (!d->gen_want[0])
		daemon_error(d, "no generator model: copy a GGUF (llama, qwen2 or gemma3) into models/");
	resume_queries(d);
	if (pipe2(d->stop_pipe, O_CLOEXEC)) {
		snprintf(err, errsz, "pipe: %s", strerror(errno));
		index_close(d->ix);
		kt_pool_destroy(d->pool);
		free(d);
		return -errno;
	}
	d->workers = calloc((size_t)d->n_workers, sizeof *d->workers);
	pthread_create(&d->loader, NULL, model_loader, d);
	pthread_create(&d->gen_thread, NULL, gen_loop, d);
	pthread_create(&d->indexer, NULL, docs_indexer, d);
	pthread_create(&d->watcher, NULL, docs_watcher, d);
	for (int i = 0; i < d->n_workers; i++)
		pthread_create(&d->workers[i], NULL, query_worker, d);
	*out = d;
	return 0;
}

void daemon_stop(struct daemon *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->stopping = 1;
	for (struct query *q = d->active; q; q = q->next)
		q->cancel = 2; /* interrupted, not cancelled: resumed on the next start */
	pthread_cond_broadcast(&d->cv_q);
	pthread_cond_broadcast(&d->cv_doc);
	pthread_cond_broadcast(&d->cv_model);
	pthread_cond_broadcast(&d->cv_gen);
	pthread_mutex_unlock(&d->mu);
	if (write(d->stop_pipe[1], "x", 1) < 0) {
		/* the watcher also polls stopping */
	}
	for (int i = 0; i < d->n_workers; i++)
		pthread_join(d->workers[i], NULL);
	pthread_join(d->gen_thread, NULL);
	pthread_join(d->loader, NULL);
	pthread_join(d->watcher, NULL);
	pthread_join(d->indexer, NULL);
	while (d->active) {
		struct query *q = d->active;
		d->active = q->next;
		free(q);
	}
	while (d->jobs) {
		struct docjob *j = d->jobs;
		d->jobs = j->next;
		free(j->rel);
		free(j->to);
		free(j);
	}
	if (d->gen)
		gen_release(d, d->gen);
	index_close(d->ix);
	kt_pool_destroy(d->pool);
	close(d->stop_pipe[0]);
	close(d->stop_pipe[1]);
	free(d->workers);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv_gen);
	pthread_cond_destroy(&d->cv_gen_done);
	pthread_rwlock_destroy(&d->ix_lock);
	pthread_cond_destroy(&d->cv_q);
	pthread_cond_destroy(&d->cv_doc);
	pthread_cond_destroy(&d->cv_model);
	free(d);
}

struct genmodel *daemon_gen_acquire(struct daemon *d)
{
	pthread_mutex_lock(&d->mu);
	struct genmodel *g = d->gen;
	if (g)
		g->refs++;
	pthread_mutex_unlock(&d->mu);
	return g;
}

void daemon_gen_release(struct daemon *d, struct genmodel *g)
{
	gen_release(d, g);
}
