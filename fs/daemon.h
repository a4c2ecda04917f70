/*
 * The mounted filesystem's two halves and what they call of each other.
 *
 * fs/mount.c is the FUSE layer (libfuse3 low-level API, multi-threaded):
 * the tree of DESIGN.md over the store, docs/, queries/ and models/ passed
 * through to STORE/docs, STORE/queries and STORE/models, plus the virtual
 * files models/generator, models/embedder and status/. FUSE threads only
 * copy, queue and reply: the daemon_* calls below return at once.
 *
 * fs/daemon.c is the daemon: the index worker (debounced reindexing, inotify
 * on STORE/docs for changes made behind the mount), the query pipeline
 * (retrieve, prompt, generate, write results), the models in use and the
 * status values. It writes result files straight into STORE/queries and
 * tells the FUSE layer through mount_* so that the kernel sees them.
 */
#ifndef SEEKFS_DAEMON_H
#define SEEKFS_DAEMON_H

#include <stddef.h>
#include <sys/types.h>

struct daemon;
struct mount;

/* ---- the store --------------------------------------------------------- */

struct store_paths {
	char root[4096];
	char docs[4200], queries[4200], models[4200], index[4200];
};
/* Fill p for store root (made absolute) and create the folders that are
 * missing. 0, or -errno with err saying which folder. */
int store_prepare(const char *root, struct store_paths *p, char *err, size_t errsz);

/* Names DESIGN.md keeps apart: dot files and editor temp files (.*, *~,
 * *.swp, *.tmp). In docs/ they are stored, never indexed; in queries/ they
 * are requests being written, never submitted. name is one component. */
int store_name_hidden(const char *name);

/* ---- the daemon, as the FUSE layer calls it ------------------------------ */

struct daemon_opts {
	const struct store_paths *store;
	int n_threads;      /* compute threads (0: all cores) */
	int n_workers;      /* queries served at once (0: 32) */
	double debounce_s;  /* quiet time before a changed document is reindexed (0: 0.3) */
};

/* Start the daemon's threads (after the process daemonised). m receives
 * the notifications below; it may be NULL (no mount: tests). */
int daemon_start(const struct daemon_opts *o, struct mount *m, struct daemon **out,
		 char *err, size_t errsz);
/* Stop: queued and running queries are marked interrupted (they resume on
 * the next start), pending reindexing is finished, everything is closed. */
void daemon_stop(struct daemon *d);

/* docs/: rel is the path under STORE/docs. Called after a file written
 * through the mount is closed (flush/release), after create+close, after a
 * truncate, and for a rename's two sides. A directory rename gives the
 * directory paths; the daemon renames everything under it. */
void daemon_doc_changed(struct daemon *d, const char *rel);
void daemon_doc_removed(struct daemon *d, const char *rel);
void daemon_doc_renamed(struct daemon *d, const char *from, const char *to);

/* queries/: the kinds of name in STORE/queries. */
enum qname {
	QN_REQUEST,  /* NAME: a request (no dot-suffix of ours, not hidden) */
	QN_RESULT,   /* NAME.status, .stream, .hits, .answer, .json, .error, .done */
	QN_HIDDEN,   /* .NAME, *.tmp, *~, *.swp: a request being written, never submitted */
};
enum qname daemon_query_kind(const char *name);
/* The suffixes of a request's result files, NAME.done first (the order
 * results are removed in, so that no poller sees .done without the rest). */
#define N_RESULT_SUFFIXES 7
extern const char *const daemon_result_suffixes[N_RESULT_SUFFIXES];
/* A request file was closed after being written, or renamed in: queue it.
 * 0, or -errno (the write is then refused with it: e.g. -EBUSY while the
 * request of that name is still running). */
int daemon_query_submit(struct daemon *d, const char *name);
/* The request NAME was unlinked (or renamed out): cancel it and remove its
 * result files. */
void daemon_query_removed(struct daemon *d, const char *name);
/* Whether NAME.stream may still grow (its query is queued or running): a
 * read at its end then waits for mount_stream_wake. */
int daemon_stream_open(struct daemon *d, const char *request_name);

/* models/: a *.gguf was closed after a write, or renamed in. */
void daemon_model_changed(struct daemon *d, const char *name);
/* models/generator and models/embedder. which: "generator" or "embedder".
 * get: the file in use, one line with '\n' (malloc'ed). set: switch to the
 * model file named by text (a name in models/, trailing white space
 * ignored); 0 when the switch is queued, -ENOENT/-EINVAL with err. */
int daemon_model_get(struct daemon *d, const char *which, char **text, size_t *len);
int daemon_model_set(struct daemon *d, const char *which, const char *text, size_t len,
		     char *err, size_t errsz);

/* status/: the names of its files (NULL-terminated, static), and a
 * snapshot of one (malloc'ed; -ENOENT for an unknown name). */
const char *const *daemon_status_names(void);
int daemon_status_read(struct daemon *d, const char *name, char **text, size_t *len);

/* ---- the FUSE layer, as the daemon calls it ------------------------------ */

/* A file in queries/ appeared, changed or went away behind the mount:
 * drop the kernel's cached entry and attributes for it. */
void mount_notify_query(struct mount *m, const char *name);
/* NAME.stream grew or its query ended: answer the reads waiting at its end. */
void mount_stream_wake(struct mount *m, const char *request_name);

#endif
