/*
 * docs: keeping the index in step with STORE/docs.
 *
 * Changes arrive from the FUSE layer (a file closed after writing, a
 * rename, an unlink) and from inotify on STORE/docs (changes made behind
 * the mount; changes through the mount show up there too, and are merged).
 * Each change is queued by path; a path changed again before its quiet
 * time (debounce) has passed is reindexed once. Renames are applied in
 * order, before the reindexing they may precede. At start the index is
 * reconciled with the folder: new and changed files are indexed, files
 * that are gone are removed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/cli_util.h"
#include "fs/daemon_internal.h"

int docs_ignored(const char *rel)
{
	const char *b = strrchr(rel, '/');
	return store_name_hidden(b ? b + 1 : rel);
}

/* Queue a change (rel NULL: only wake the index thread). Called from FUSE
 * threads and the watcher: no waiting here. */
void docs_queue(struct daemon *d, enum docop op, const char *rel, const char *to)
{
	pthread_mutex_lock(&d->mu);
	if (rel) {
		double due = daemon_now() + d->o.debounce_s;
		struct docjob *j = NULL;
		if (op != DOC_RENAMED) {
			/* a change to a path already waiting: one job, later */
			for (struct docjob *x = d->jobs; x; x = x->next)
				if (x->op != DOC_RENAMED && !strcmp(x->rel, rel))
					j = x;
		}
		if (j) {
			j->op = op;
			j->due = due;
		} else if ((j = calloc(1, sizeof *j)) && (j->rel = strdup(rel)) &&
			   (!to || (j->to = strdup(to)))) {
			j->op = op;
			j->due = op == DOC_RENAMED ? 0 : due;
			*d->jobs_tail = j;
			d->jobs_tail = &j->next;
			d->n_jobs++;
		} else if (j) {
			free(j->rel);
			free(j);
		}
	}
	pthread_cond_broadcast(&d->cv_doc);
	pthread_mutex_unlock(&d->mu);
}

void daemon_doc_changed(struct daemon *d, const char *rel)
{
	if (!docs_ignored(rel))
		docs_queue(d, DOC_CHANGED, rel, NULL);
}

void daemon_doc_removed(struct daemon *d, const char *rel)
{
	docs_queue(d, DOC_REMOVED, rel, NULL);
}

void daemon_doc_renamed(struct daemon *d, const char *from, const char *to)
{
	docs_queue(d, DOC_RENAMED, from, to);
}

/* ---- the index thread ---------------------------------------------------- */

struct keys {
	char **v;
	size_t n, cap;
};

static int keys_push(struct keys *k, const char *s)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 64;
		char **p = realloc(k->v, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		k->v = p;
		k->cap = cap;
	}
	if (!(k->v[k->n] = strdup(s)))
		return -ENOMEM;
	k->n++;
	return 0;
}

static void keys_free(struct keys *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->v[i]);
	free(k->v);
	memset(k, 0, sizeof *k);
}

struct prefix_ctx {
	const char *prefix;
	struct keys *out;
};

static int collect_prefix(void *ctx, const struct index_doc *doc)
{
	struct prefix_ctx *c = ctx;
	size_t l = strlen(c->prefix);
	if (!strncmp(doc->key, c->prefix, l) && doc->key[l] == '/')
		keys_push(c->out, doc->key);
	return 0;
}

static int collect_all(void *ctx, const struct index_doc *doc)
{
	if (doc->key[0] != '/')
		keys_push(ctx, doc->key);
	return 0;
}

static void walk_files(const char *root, const char *rel, struct keys *out, int depth)
{
	char p[3 * PATH_MAX];
	snprintf(p, sizeof p, "%s%s%s", root, rel[0] ? "/" : "", rel);
	DIR *dir = opendir(p);
	struct dirent *e;
	while (dir && depth < 64 && (e = readdir(dir))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char r[PATH_MAX];
		snprintf(r, sizeof r, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
		if (docs_ignored(r))
			continue;
		struct stat st;
		char full[3 * PATH_MAX];
		snprintf(full, sizeof full, "%s/%s", root, r);
		if (lstat(full, &st))
			continue;
		if (S_ISDIR(st.st_mode))
			walk_files(root, r, out, depth + 1);
		else if (S_ISREG(st.st_mode))
			keys_push(out, r);
	}
	if (dir)
		closedir(dir);
}

static void apply_rename(struct daemon *d, const char *from, const char *to)
{
	char err[600];
	struct stat st;
	char p[3 * PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", d->sp.docs, to);
	if (!lstat(p, &st) && S_ISDIR(st.st_mode)) {
		/* a folder: everything under it */
		struct keys ks = {0};
		struct prefix_ctx c = {from, &ks};
		index_list(d->ix, collect_prefix, &c, err, sizeof err);
		for (size_t i = 0; i < ks.n; i++) {
			char nk[PATH_MAX];
			snprintf(nk, sizeof nk, "%s%s", to, ks.v[i] + strlen(from));
			if (docs_ignored(nk))
				index_remove(d->ix, ks.v[i], err, sizeof err);
			else
				index_rename(d->ix, ks.v[i], nk, err, sizeof err);
		}
		keys_free(&ks);
		/* and whatever was not indexed yet */
		struct keys files = {0};
		walk_files(d->sp.docs, to, &files, 0);
		for (size_t i = 0; i < files.n; i++)
			docs_queue(d, DOC_CHANGED, files.v[i], NULL);
		keys_free(&files);
		return;
	}
	if (docs_ignored(to)) {
		index_remove(d->ix, from, err, sizeof err);
		return;
	}
	if (index_rename(d->ix, from, to, err, sizeof err))
		docs_queue(d, DOC_CHANGED, to, NULL); /* from was not indexed: index to */
}

static void reconcile(struct daemon *d)
{
	struct keys files = {0}, known = {0};
	char err[600];
	walk_files(d->sp.docs, "", &files, 0);
	index_list(d->ix, collect_all, &known, err, sizeof err);
	for (size_t i = 0; i < known.n; i++) {
		char p[3 * PATH_MAX];
		struct stat st;
		snprintf(p, sizeof p, "%s/%s", d->sp.docs, known.v[i]);
		if (lstat(p, &st) || !S_ISREG(st.st_mode) || docs_ignored(known.v[i]))
			index_remove(d->ix, known.v[i], err, sizeof err);
	}
	for (size_t i = 0; i < files.n; i++)
		docs_queue(d, DOC_CHANGED, files.v[i], NULL);
	keys_free(&files);
	keys_free(&known);
}

/* status/ reads these numbers without touching the index */
void docs_refresh_info(struct daemon *d)
{
	struct index_info in = {0};
	pthread_rwlock_rdlock(&d->ix_lock);
	if (d->ix)
		index_info(d->ix, &in);
	pthread_rwlock_unlock(&d->ix_lock);
	pthread_mutex_lock(&d->mu);
	d->info = in;
	pthread_mutex_unlock(&d->mu);
}

/* The embedder changed (models/embedder, or a bert GGUF copied in):
 * reopen the index with it; the vectors are re-embedded in the background
 * while BM25 keeps answering. */
static void switch_embedder(struct daemon *d, const char *path)
{
	char err[600];
	struct index_opts io = {.n_threads = d->o.n_threads, .embedder = path, .bm25_memory = 1};
	pthread_rwlock_wrlock(&d->ix_lock);
	index_close(d->ix);
	d->ix = NULL;
	int rc = index_open(d->sp.index, &io, &d->ix, err, sizeof err);
	if (rc) {
		daemon_error(d, "embedder not changed: %s", err);
		io.embedder = NULL;
		index_open(d->sp.index, &io, &d->ix, err, sizeof err);
	}
	pthread_rwlock_unlock(&d->ix_lock);
}

void *docs_indexer(void *arg)
{
	struct daemon *d = arg;
	char err[600], cur_emb[8192];
	pthread_mutex_lock(&d->mu);
	snprintf(cur_emb, sizeof cur_emb, "%s", d->emb_path);
	pthread_mutex_unlock(&d->mu);
	reconcile(d);
	for (;;) {
		pthread_mutex_lock(&d->mu);
		struct keys changed = {0}, removed = {0};
		struct docjob *renames = NULL, **rt = &renames;
		double now = daemon_now(), next = 0;
		int emb_changed = strcmp(cur_emb, d->emb_path) != 0;
		if (emb_changed)
			snprintf(cur_emb, sizeof cur_emb, "%s", d->emb_path);
		/* renames in order; changes whose quiet time is over */
		for (struct docjob **pp = &d->jobs; *pp;) {
			struct docjob *j = *pp;
			if (j->op == DOC_RENAMED || j->due <= now || d->stopping) {
				*pp = j->next;
				d->n_jobs--;
				if (j->op == DOC_RENAMED) {
					j->next = NULL;
					*rt = j;
					rt = &j->next;
					continue;
				}
				keys_push(j->op == DOC_CHANGED ? &changed : &removed, j->rel);
				free(j->rel);
				free(j->to);
				free(j);
				continue;
			}
			if (!next || j->due < next)
				next = j->due;
			pp = &(*pp)->next;
		}
		d->jobs_tail = &d->jobs;
		while (*d->jobs_tail)
			d->jobs_tail = &(*d->jobs_tail)->next;
		int stopping = d->stopping;
		d->n_inflight = (int)(changed.n + removed.n);
		for (struct docjob *j = renames; j; j = j->next)
			d->n_inflight++;
		int idle = !renames && !changed.n && !removed.n && !emb_changed;
		if (idle && !stopping) {
			if (next) {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				double w = next - now + 0.001;
				ts.tv_sec += (time_t)w;
				ts.tv_nsec += (long)((w - (time_t)w) * 1e9);
				if (ts.tv_nsec >= 1000000000) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000;
				}
				pthread_cond_timedwait(&d->cv_doc, &d->mu, &ts);
			} else {
				pthread_mutex_unlock(&d->mu);
				/* quiet: vectors still missing are embedded a batch at a time */
				int64_t done = 0;
				pthread_rwlock_rdlock(&d->ix_lock);
				index_embed_pending(d->ix, 64, &done, err, sizeof err);
				if (!done)
					index_persist(d->ix, err, sizeof err);
				pthread_rwlock_unlock(&d->ix_lock);
				if (done)
					docs_refresh_info(d);
				pthread_mutex_lock(&d->mu);
				if (!done && !d->jobs && !d->stopping && !strcmp(cur_emb, d->emb_path))
					pthread_cond_wait(&d->cv_doc, &d->mu);
			}
			pthread_mutex_unlock(&d->mu);
			continue;
		}
		pthread_mutex_unlock(&d->mu);
		if (emb_changed)
			switch_embedder(d, cur_emb);
		pthread_rwlock_rdlock(&d->ix_lock);
		while (renames) {
			struct docjob *j = renames;
			renames = j->next;
			apply_rename(d, j->rel, j->to);
			free(j->rel);
			free(j->to);
			free(j);
		}
		for (size_t i = 0; i < removed.n; i++) {
			/* a folder removed: everything under it */
			struct keys under = {0};
			struct prefix_ctx c = {removed.v[i], &under};
			index_list(d->ix, collect_prefix, &c, err, sizeof err);
			for (size_t k = 0; k < under.n; k++)
				index_remove(d->ix, under.v[k], err, sizeof err);
			keys_free(&under);
			index_remove(d->ix, removed.v[i], err, sizeof err);
		}
		if (changed.n) {
			/* paths that are gone by now are removals */
			struct keys files = {0}, keys = {0};
			for (size_t i = 0; i < changed.n; i++) {
				char p[3 * PATH_MAX];
				struct stat st;
				snprintf(p, sizeof p, "%s/%s", d->sp.docs, changed.v[i]);
				if (lstat(p, &st))
					index_remove(d->ix, changed.v[i], err, sizeof err);
				else if (S_ISREG(st.st_mode)) {
					keys_push(&keys, changed.v[i]);
					keys_push(&files, p);
				}
			}
			if (keys.n && index_add(d->ix, (const char *const *)keys.v,
						(const char *const *)files.v, keys.n, NULL, NULL, err,
						sizeof err))
				daemon_error(d, "indexing: %s", err);
			pthread_mutex_lock(&d->mu);
			d->n_reindexed += keys.n;
			pthread_mutex_unlock(&d->mu);
			keys_free(&keys);
			keys_free(&files);
		}
		index_persist(d->ix, err, sizeof err);
		pthread_rwlock_unlock(&d->ix_lock);
		keys_free(&changed);
		keys_free(&removed);
		docs_refresh_info(d);
		pthread_mutex_lock(&d->mu);
		d->n_inflight = 0;
		pthread_mutex_unlock(&d->mu);
		if (stopping)
			break;
	}
	return NULL;
}

/* ---- inotify on STORE/docs ---------------------------------------------------- */

struct watch {
	int wd;
	char *rel; /* "" for the root */
};

struct watches {
	struct watch *v;
	size_t n, cap;
};

static const char *wd_rel(struct watches *w, int wd)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->v[i].wd == wd)
			return w->v[i].rel;
	return NULL;
}

static void add_watch(struct daemon *d, struct watches *w, const char *rel, int depth)
{
	char p[3 * PATH_MAX];
	snprintf(p, sizeof p, "%s%s%s", d->sp.docs, rel[0] ? "/" : "", rel);
	int wd = inotify_add_watch(d->inotify_fd, p,
				   IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE |
				   IN_CREATE | IN_ATTRIB | IN_ONLYDIR | IN_DONT_FOLLOW);
	if (wd < 0)
		return;
	int found = 0;
	for (size_t i = 0; i < w->n; i++)
		if (w->v[i].wd == wd) {
			free(w->v[i].rel);
			w->v[i].rel = strdup(rel);
			found = 1;
		}
	if (!found) {
		if (w->n == w->cap) {
			size_t cap = w->cap ? w->cap * 2 : 64;
			struct watch *v = realloc(w->v, cap * sizeof *v);
			if (!v)
				return;
			w->v = v;
			w->cap = cap;
		}
		w->v[w->n].wd = wd;
		w->v[w->n++].rel = strdup(rel);
	}
	DIR *dir = opendir(p);
	struct dirent *e;
	while (dir && depth < 64 && (e = readdir(dir))) {
		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char r[PATH_MAX];
		snprintf(r, sizeof r, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
		add_watch(d, w, r, depth + 1);
	}
	if (dir)
		closedir(dir);
}

/* A folder renamed: the watches under it now have new paths. */
static void rename_watches(struct watches *w, const char *from, const char *to)
{
	size_t l = strlen(from);
	for (size_t i = 0; i < w->n; i++) {
		const char *r = w->v[i].rel;
		if (!strncmp(r, from, l) && (r[l] == 0 || r[l] == '/')) {
			char *n;
			if (asprintf(&n, "%s%s", to, r + l) >= 0) {
				free(w->v[i].rel);
				w->v[i].rel = n;
			}
		}
	}
}

void *docs_watcher(void *arg)
{
	struct daemon *d = arg;
	struct watches w = {0};
	d->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (d->inotify_fd < 0) {
		daemon_error(d, "inotify: %s: changes made behind the mount are not seen",
			     strerror(errno));
		return NULL;
	}
	add_watch(d, &w, "", 0);
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	/* a MOVED_FROM waits for its MOVED_TO (same cookie) */
	char moved_from[PATH_MAX] = "";
	uint32_t cookie = 0;
	int from_dir = 0;
	for (;;) {
		struct pollfd p[2] = {{d->inotify_fd, POLLIN, 0}, {d->stop_pipe[0], POLLIN, 0}};
		int r = poll(p, 2, moved_from[0] ? 50 : -1);
		pthread_mutex_lock(&d->mu);
		int stopping = d->stopping;
		pthread_mutex_unlock(&d->mu);
		if (stopping || (r > 0 && p[1].revents))
			break;
		if (r == 0 && moved_from[0]) {
			/* moved out of docs/: removed */
			docs_queue(d, DOC_REMOVED, moved_from, NULL);
			moved_from[0] = 0;
			continue;
		}
		ssize_t n = read(d->inotify_fd, buf, sizeof buf);
		if (n <= 0)
			continue;
		for (char *ptr = buf; ptr < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)ptr;
			ptr += sizeof *ev + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				/* events were lost: compare the whole folder */
				struct keys files = {0};
				walk_files(d->sp.docs, "", &files, 0);
				for (size_t i = 0; i < files.n; i++)
					docs_queue(d, DOC_CHANGED, files.v[i], NULL);
				keys_free(&files);
				continue;
			}
			const char *dir = wd_rel(&w, ev->wd);
			if (!dir || !ev->len)
				continue;
			char rel[PATH_MAX];
			snprintf(rel, sizeof rel, "%s%s%s", dir, dir[0] ? "/" : "", ev->name);
			int isdir = (ev->mask & IN_ISDIR) != 0;
			if (moved_from[0] && !((ev->mask & IN_MOVED_TO) && ev->cookie == cookie)) {
				docs_queue(d, DOC_REMOVED, moved_from, NULL);
				moved_from[0] = 0;
			}
			if (ev->mask & IN_MOVED_FROM) {
				snprintf(moved_from, sizeof moved_from, "%s", rel);
				cookie = ev->cookie;
				from_dir = isdir;
			} else if (ev->mask & IN_MOVED_TO) {
				if (moved_from[0]) {
					if (from_dir)
						rename_watches(&w, moved_from, rel);
					docs_queue(d, DOC_RENAMED, moved_from, rel);
					moved_from[0] = 0;
				} else if (isdir) {
					add_watch(d, &w, rel, 0);
					struct keys files = {0};
					walk_files(d->sp.docs, rel, &files, 0);
					for (size_t i = 0; i < files.n; i++)
						docs_queue(d, DOC_CHANGED, files.v[i], NULL);
					keys_free(&files);
				} else {
					daemon_doc_changed(d, rel);
				}
			} else if (ev->mask & IN_CREATE) {
				if (isdir) {
					add_watch(d, &w, rel, 0);
					struct keys files = {0};
					walk_files(d->sp.docs, rel, &files, 0);
					for (size_t i = 0; i < files.n; i++)
						docs_queue(d, DOC_CHANGED, files.v[i], NULL);
					keys_free(&files);
				}
			} else if (ev->mask & (IN_CLOSE_WRITE | IN_ATTRIB)) {
				if (!isdir)
					daemon_doc_changed(d, rel);
			} else if (ev->mask & IN_DELETE) {
				docs_queue(d, DOC_REMOVED, rel, NULL);
			}
		}
	}
	for (size_t i = 0; i < w.n; i++)
		free(w.v[i].rel);
	free(w.v);
	close(d->inotify_fd);
	return NULL;
}
