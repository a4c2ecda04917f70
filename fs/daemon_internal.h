/*
 * Private to the daemon (fs/daemon.c, fs/query.c, fs/docs.c): its state.
 */
#ifndef SEEKFS_DAEMON_INTERNAL_H
#define SEEKFS_DAEMON_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "engine/engine.h"
#include "fs/daemon.h"
#include "index/index.h"

enum qstate { Q_QUEUED, Q_RUNNING, Q_DONE, Q_ERROR, Q_CANCELLED };

struct query {
	char name[256];
	enum qstate state;
	int cancel;           /* rm NAME while running */
	double t_submit;
	struct query *next;   /* the active list (queued and running) */
};

/* A generator model in use; queries hold a reference while they run. */
struct genmodel {
	struct model *m;
	char path[8192];
	char name[256];       /* as shown in models/generator */
	int refs;
};

/* A pending change to docs/ (index thread). */
enum docop { DOC_CHANGED, DOC_REMOVED, DOC_RENAMED };
struct docjob {
	enum docop op;
	char *rel, *to;
	double due;
	struct docjob *next;
};

#define N_HIST 12

struct hist {
	double sum;
	uint64_t count;
	uint64_t le[N_HIST]; /* cumulative buckets */
};

struct daemon {
	struct daemon_opts o;
	struct store_paths sp;
	struct mount *m;
	pthread_mutex_t mu;   /* everything below */
	pthread_cond_t cv_q, cv_doc, cv_model;
	int stopping;

	/* queries */
	struct query *active;
	pthread_t *workers;
	int n_workers;
	/* continuous batching (query.c): workers hand prepared generations to
	 * one loop that decodes all running ones together */
	struct gen *gen_pending, *gen_active;
	pthread_cond_t cv_gen, cv_gen_done;
	pthread_t gen_thread;
	struct kt_pool *pool;
	uint64_t n_queries, n_done, n_failed, n_cancelled;
	uint64_t tokens_generated, tokens_prompt;
	double decode_s;
	struct hist h_queue, h_retrieve, h_prefill, h_decode;

	/* models */
	struct genmodel *gen;
	char gen_want[8192];  /* a path to load (loader thread), "" none */
	char emb_want[8192];
	char emb_path[8192];
	int loading;
	pthread_t loader;

	/* index */
	struct index *ix;
	/* ix is shared (the index locks inside); ix_lock is held for reading
	 * while it is used and for writing to swap it (embedder change) */
	pthread_rwlock_t ix_lock;
	struct index_info info; /* as of the last change, for status/ (under mu) */
	struct docjob *jobs, **jobs_tail;
	int n_jobs, n_inflight; /* waiting; taken by the index thread */
	pthread_t indexer, watcher;
	int inotify_fd, stop_pipe[2];
	char last_error[512];
	uint64_t n_reindexed;
	int reconciled;
};

double daemon_now(void);
void daemon_error(struct daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* daemon.c: a reference to the generator in use, for one query (NULL:
 * none loaded yet); released after the query. */
struct genmodel *daemon_gen_acquire(struct daemon *d);
void daemon_gen_release(struct daemon *d, struct genmodel *g);

/* query.c */
void *query_worker(void *arg);
void *gen_loop(void *arg);
int query_write_result(struct daemon *d, const char *name, const char *suffix,
		       const char *data, size_t len);
void query_remove_results(struct daemon *d, const char *name);
void hist_add(struct hist *h, double v);
extern const double hist_bounds[N_HIST];

/* docs.c */
void docs_refresh_info(struct daemon *d);
void *docs_indexer(void *arg);
void *docs_watcher(void *arg);
int docs_ignored(const char *rel);
void docs_queue(struct daemon *d, enum docop op, const char *rel, const char *to);

#endif
