/*
 * mount: the FUSE layer (libfuse3 low-level API, multi-threaded) that
 * shows DESIGN.md's tree over the store:
 *
 *   /            virtual, read-only: exactly docs/, queries/, models/, status/
 *   docs/        passthrough to STORE/docs; changes are told to the daemon
 *   queries/     passthrough to STORE/queries (flat); results are read-only,
 *                requests are submitted when a write is flushed or renamed in,
 *                reads at the end of NAME.stream wait for more text
 *   models/      passthrough to STORE/models, plus the virtual files
 *                generator and embedder (they shadow real files of the name)
 *   status/      virtual, read-only: daemon_status_read snapshots
 *
 * Inodes. Every inode is a struct node and its FUSE inode number is the
 * node's address (FUSE_ROOT_ID for the root), so finding a node is free.
 * Virtual nodes (root, status/ and its files, models/generator and
 * models/embedder) and the three top directories live as long as the
 * mount and ignore lookup counts. Every other node is a passthrough inode:
 * an O_PATH descriptor of the backing file, found in a hash table by
 * (tree, st_dev, st_ino), freed when the kernel forgets its last lookup.
 * A directory holds an O_PATH descriptor of the backing folder; any other
 * file only its folder's node and its name there, and node_fd opens it for
 * the length of a call, checking that it is still the same file: the
 * kernel keeps a node for every name it has seen (ls -l, find), and 10,000
 * requests with their results are 70,000 names, a large docs/ tree more,
 * beyond the descriptors a process may hold. Such a node holds a
 * descriptor too while the file is open (fstat of an open file whose name
 * was removed or reused still reaches it), and for good once it has more
 * than one name through the mount (a link, or an unlink of one of its
 * names): those are few. A node's generation is a counter, so a reused
 * address never repeats a (nodeid, generation) pair. Users see the backing st_ino; virtual files
 * show numbers from VIRT_INO, far above any a real file system hands out.
 *
 * Callbacks never wait on the daemon: daemon_* return at once. What the
 * daemon tells back (mount_notify_query) goes through a notifier thread,
 * because daemon_query_submit and daemon_query_removed notify from inside
 * our rename/unlink callbacks, while the kernel holds queries/'s lock that
 * fuse_lowlevel_notify_inval_entry needs.
 *
 * Paths handed to the daemon (docs/ and models/ relative paths, queries/
 * names) are read from /proc/self/fd of the open or O_PATH descriptor at
 * the moment they are needed, so they follow renames; a file that has been
 * unlinked has no path, and no hook is called for it.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fs/daemon.h"
#include "fs/mount.h"

_Static_assert(sizeof(fuse_ino_t) >= sizeof(uintptr_t), "node addresses must fit a fuse_ino_t");

/* Seconds the kernel may cache entries and attributes of docs/ and models/
 * (changes made behind the mount show after at most this). queries/,
 * status/ and the virtual model files are never cached. */
#define TTL_PASS 1.0
/* st_ino of virtual files: above what ext4, xfs, btrfs or tmpfs hand out. */
#define VIRT_INO(i) (UINT64_C(0xfffffffff0000000) + (i))
/* Text written to models/generator or models/embedder, at most. */
#define MODEL_NAME_MAX 4096

enum tree { T_NONE, T_DOCS, T_QUERIES, T_MODELS };
enum nkind { N_ROOT, N_PASS, N_STATUS_DIR, N_STATUS_FILE, N_MODEL };

struct node {
	struct node *hnext;  /* hash chain (passthrough nodes) */
	enum nkind kind;
	enum tree tree;      /* the passthrough tree it lies in (T_NONE: virtual) */
	int is_static;       /* lives as long as the mount; lookup counts ignored */
	int fd;              /* O_PATH descriptor of a backing folder (N_PASS), or -1 */
	struct node *parent; /* any other passthrough file: its folder's node */
	char *bname;         /* and its name there (both under mount.mu) */
	int refs;            /* nodes and calls holding this one as their folder */
	mode_t type;         /* st_mode & S_IFMT */
	int opens;           /* named file: open files holding fd */
	int pinned;          /* named file: fd held for good */
	int unhashed;        /* forgotten by the kernel: freed when refs are 0 */
	dev_t dev;
	ino_t ino;
	uint64_t nlookup;    /* under mount.mu */
	uint64_t gen;
	const char *name;    /* virtual files: their name */
	uint64_t vino;       /* virtual nodes: the st_ino shown */
};

/* A read at the end of a NAME.stream, waiting for text or the end. */
struct park {
	struct park *next;
	fuse_req_t req;
	int fd;       /* the open file's descriptor: valid while the read is */
	off_t off;
	size_t size;
	char name[];  /* the request NAME */
};

struct notice {
	struct notice *next;
	char name[];
};

/* The first member of an open file or directory (fi->fh). */
struct handle {
	struct handle *prev, *next;
	int is_dir;
};

struct mount {
	struct fuse_session *se;
	struct daemon *d;
	struct store_paths sp;
	char real[4][PATH_MAX];  /* by tree: the backing root as /proc/self/fd shows it */
	mode_t umask;            /* this process's, restored on created files */
	int as_root;             /* switch fsuid/fsgid to the caller's when creating */
	uid_t uid;
	gid_t gid;
	gid_t *groups;           /* this process's supplementary groups, restored after */
	int n_groups;
	struct timespec t0;
	int mounted, signals;
	atomic_int down;         /* unmounted: mount_* calls do nothing */
	int max_idle_threads, max_threads;

	pthread_mutex_t mu;      /* the node table, nlookup, next_gen, t_model */
	struct node **buckets;
	size_t n_buckets, n_nodes;
	struct node *stale;      /* named files taken out of the table while the
				    kernel still knows them (pass_lookup) */
	uint64_t next_gen;
	struct timespec t_model[2];

	struct node root, docs, queries, models, status, model[2];
	struct node *status_files;
	size_t n_status;

	pthread_mutex_t handles_mu; /* handles */
	struct handle *handles;  /* open files and directories, freed at the end
				  * when the kernel went without releasing them */

	pthread_mutex_t park_mu; /* parked */
	struct park *parked;

	pthread_mutex_t note_mu; /* notes, note_stop */
	pthread_cond_t note_cv;
	struct notice *notes;
	int note_stop, note_started;
	pthread_t note_thread;
};

static const char *const MODEL_FILE[2] = {"generator", "embedder"};

static void handle_add(struct mount *m, struct handle *h, int is_dir)
{
	h->is_dir = is_dir;
	h->prev = NULL;
	pthread_mutex_lock(&m->handles_mu);
	h->next = m->handles;
	if (h->next)
		h->next->prev = h;
	m->handles = h;
	pthread_mutex_unlock(&m->handles_mu);
}

static void handle_del(struct mount *m, struct handle *h)
{
	pthread_mutex_lock(&m->handles_mu);
	if (h->prev)
		h->prev->next = h->next;
	else
		m->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&m->handles_mu);
}

/* ---- helpers -------------------------------------------------------------- */

static struct mount *mnt(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct node *node_of(struct mount *m, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? &m->root : (struct node *)(uintptr_t)ino;
}

static fuse_ino_t ino_of(struct mount *m, struct node *n)
{
	return n == &m->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

static int model_which(const char *name)
{
	for (int i = 0; i < 2; i++)
		if (!strcmp(name, MODEL_FILE[i]))
			return i;
	return -1;
}

/* models/generator or models/embedder: name in the models/ top directory. */
static int is_model_virtual(struct mount *m, struct node *dir, const char *name)
{
	return dir == &m->models && model_which(name) >= 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t l = strlen(s), k = strlen(suffix);
	return l >= k && !strcmp(s + l - k, suffix);
}

/* The attribute timeout of n. Results in queries/ change behind the
 * mount and are never cached, nor are status/ files or the model files.
 * The root and status/ never change, and the queries/ folder's own
 * attributes change as docs/'s do: they are cached like docs/, which
 * spares a GETATTR of each folder on every path walk through it
 * (default_permissions checks them). Listings are never cached, so names
 * still show at once. A request in queries/ (qname_ttl) changes only as
 * a docs/ file does: through the mount, where the kernel sees it, or
 * behind it. */
static double ttl(const struct node *n)
{
	if (n->kind == N_ROOT || n->kind == N_STATUS_DIR || (n->is_static && n->kind == N_PASS))
		return TTL_PASS;
	return n->kind == N_PASS && n->tree != T_QUERIES ? TTL_PASS : 0.0;
}

/* The timeout of the name and attributes of name in queries/: a request
 * is cached like a docs/ file (ls -l of a queue of requests then asks
 * nothing per name); its results and hidden files never are. */
static double qname_ttl(const char *name)
{
	return daemon_query_kind(name) == QN_REQUEST ? TTL_PASS : 0.0;
}

static void proc_path(int fd, char *buf, size_t n)
{
	snprintf(buf, n, "/proc/self/fd/%d", fd);
}

/* The path, relative to its tree's root, of what fd (open or O_PATH)
 * refers to now: "" for the root itself. -ENOENT when it has been removed
 * or lies outside the tree (moved behind the mount). */
static int fd_rel(struct mount *m, enum tree t, int fd, char *out, size_t n)
{
	char proc[64], p[PATH_MAX];
	struct stat st;
	proc_path(fd, proc, sizeof proc);
	ssize_t l = readlink(proc, p, sizeof p - 1);
	if (l < 0)
		return -errno;
	p[l] = 0;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
		return -errno;
	/* unlinked; or one of several hard links went, and the path shown is
	 * no longer this file's */
	struct stat at;
	if (!st.st_nlink || lstat(p, &at) || at.st_dev != st.st_dev || at.st_ino != st.st_ino)
		return -ENOENT;
	const char *root = m->real[t];
	size_t rl = strlen(root);
	if (strncmp(p, root, rl) || (p[rl] && p[rl] != '/'))
		return -ENOENT;
	if (snprintf(out, n, "%s", p[rl] ? p + rl + 1 : "") >= (int)n)
		return -ENAMETOOLONG;
	return 0;
}

/* The path, relative to its tree's root, of name in directory dir. */
static int child_rel(struct mount *m, struct node *dir, const char *name, char *out, size_t n)
{
	char d[PATH_MAX];
	int rc = fd_rel(m, dir->tree, dir->fd, d, sizeof d);
	if (rc)
		return rc;
	if (snprintf(out, n, "%s%s%s", d, *d ? "/" : "", name) >= (int)n)
		return -ENAMETOOLONG;
	return 0;
}

/* The name in queries/ that fd refers to now (the last path component). */
static int fd_qname(struct mount *m, int fd, char *out, size_t n)
{
	char rel[PATH_MAX];
	int rc = fd_rel(m, T_QUERIES, fd, rel, sizeof rel);
	if (rc)
		return rc;
	if (!*rel)
		return -EISDIR;
	const char *slash = strrchr(rel, '/'), *base = slash ? slash + 1 : rel;
	if (strlen(base) >= n)
		return -ENAMETOOLONG;
	memcpy(out, base, strlen(base) + 1);
	return 0;
}

/* Whether the request NAME is queued or running: writing it then is
 * refused with EBUSY, as daemon_query_submit would refuse it. */
static int query_busy(struct mount *m, const char *name)
{
	return m->d && daemon_query_kind(name) == QN_REQUEST && daemon_stream_open(m->d, name);
}

/* Run as the caller while creating files, so that they belong to the
 * caller and the backing folder's permissions are checked with the
 * caller's fsuid, fsgid and supplementary groups (a member of a folder's
 * group may create in it). All three are per thread: the groups are set
 * with the raw system call, as glibc's setgroups changes every thread.
 * Only root can and needs to. */
struct creds {
	struct mount *m;
	int on;
	uid_t uid;
	gid_t gid;
};

static void creds_enter(struct mount *m, fuse_req_t req, struct creds *c)
{
	c->m = m;
	c->on = m->as_root;
	if (!c->on)
		return;
	const struct fuse_ctx *x = fuse_req_ctx(req);
	gid_t small[64], *list = small;
	int cap = 64, n = fuse_req_getgroups(req, cap, small);
	if (n > cap && (list = malloc((size_t)n * sizeof *list)))
		n = fuse_req_getgroups(req, cap = n, list);
	if (!list) {
		list = small;
		n = cap;
	}
	/* unknown (the caller is gone): no supplementary groups at all */
	n = n < 0 ? 0 : n > cap ? cap : n;
	syscall(SYS_setgroups, (size_t)n, list);
	if (list != small)
		free(list);
	c->gid = (gid_t)setfsgid(x->gid);
	c->uid = (uid_t)setfsuid(x->uid);
}

static void creds_leave(struct creds *c)
{
	int e = errno;
	if (c->on) {
		setfsuid(c->uid);
		setfsgid(c->gid);
		syscall(SYS_setgroups, (size_t)c->m->n_groups, c->m->groups);
	}
	errno = e;
}

/* The kernel applied the caller's umask to mode already; ours must not
 * take more bits away. at/name, or fd when name is NULL. Called as root
 * (not as the caller), which keeps an inherited setgid bit. */
static void fix_mode(struct mount *m, int fd, const char *name, mode_t mode)
{
	struct stat st;
	if (!(mode & 0777 & m->umask))
		return;
	if (name ? fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) : fstat(fd, &st))
		return;
	if (S_ISLNK(st.st_mode) || (st.st_mode & 0777) == (mode & 0777))
		return;
	mode_t want = (st.st_mode & 07000) | (mode & 0777);
	if (name)
		fchmodat(fd, name, want, 0);
	else
		fchmod(fd, want);
}

/* ---- the node table --------------------------------------------------------- */

static size_t node_hash(enum tree t, dev_t dev, ino_t ino, size_t n_buckets)
{
	uint64_t h = (uint64_t)ino * UINT64_C(0x9e3779b97f4a7c15) ^
		     (uint64_t)dev * UINT64_C(0xc2b2ae3d27d4eb4f) ^ (uint64_t)t;
	h ^= h >> 29;
	return (size_t)(h & (n_buckets - 1));
}

/* Under m->mu. A failed resize keeps the old table (longer chains). */
static void table_grow(struct mount *m)
{
	size_t nb = m->n_buckets * 2;
	struct node **b = calloc(nb, sizeof *b);
	if (!b)
		return;
	for (size_t i = 0; i < m->n_buckets; i++)
		for (struct node *n = m->buckets[i], *next; n; n = next) {
			next = n->hnext;
			size_t h = node_hash(n->tree, n->dev, n->ino, nb);
			n->hnext = b[h];
			b[h] = n;
		}
	free(m->buckets);
	m->buckets = b;
	m->n_buckets = nb;
}

static void node_free(struct node *n)
{
	if (n->fd >= 0)
		close(n->fd);
	free(n->bname);
	free(n);
}

/* Frees n once the kernel has forgotten it and nothing holds it as a
 * folder, then its folder the same way. Under mount.mu. */
static void node_put_locked(struct node *n)
{
	while (n && !n->is_static && n->unhashed && !n->nlookup && !n->refs) {
		struct node *parent = n->parent;
		node_free(n);
		if (parent)
			parent->refs--;
		n = parent;
	}
}

/* n's folder becomes dir, its name there name (taken). Under mount.mu. */
static void node_place_locked(struct node *n, struct node *dir, char *name)
{
	struct node *old = n->parent;
	dir->refs++;
	n->parent = dir;
	free(n->bname);
	n->bname = name;
	if (old) {
		old->refs--;
		node_put_locked(old);
	}
}

/* Drop n lookups of node; the last closes and frees it. */
static void node_forget(struct mount *m, struct node *node, uint64_t n)
{
	if (node->is_static)
		return;
	pthread_mutex_lock(&m->mu);
	node->nlookup = node->nlookup > n ? node->nlookup - n : 0;
	if (node->nlookup) {
		pthread_mutex_unlock(&m->mu);
		return;
	}
	struct node **pp = node->unhashed ? &m->stale
		: &m->buckets[node_hash(node->tree, node->dev, node->ino, m->n_buckets)];
	while (*pp && *pp != node)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = node->hnext;
	if (!node->unhashed)
		m->n_nodes--;
	node->unhashed = 1;
	node_put_locked(node);
	pthread_mutex_unlock(&m->mu);
}

static void attr_virtual(struct mount *m, struct node *n, struct stat *st);

/* The link in the node table that holds (or would hold) the node of file
 * (dev, ino) of tree: *slot is that node, or NULL. Under mount.mu. */
static struct node **node_slot_locked(struct mount *m, enum tree tree, dev_t dev, ino_t ino)
{
	struct node **pp = &m->buckets[node_hash(tree, dev, ino, m->n_buckets)];
	while (*pp && ((*pp)->tree != tree || (*pp)->dev != dev || (*pp)->ino != ino))
		pp = &(*pp)->hnext;
	return pp;
}

/* A name in dir found to be (dev, ino) by a rename through the mount:
 * the node of that file, if the kernel has one, takes it. */
static void node_renamed(struct mount *m, struct node *dir, dev_t dev, ino_t ino, const char *name)
{
	pthread_mutex_lock(&m->mu);
	struct node *p = *node_slot_locked(m, dir->tree, dev, ino);
	if (p && p->bname && (p->parent != dir || strcmp(p->bname, name))) {
		char *c = strdup(name);
		if (c)
			node_place_locked(p, dir, c);
	}
	pthread_mutex_unlock(&m->mu);
}

/* Named file n's folder, held until node_dir_put, and its name there,
 * copied. NULL when n holds a descriptor (see node_fd): *own is then a
 * copy of it (it may go at a release), or -errno. */
static struct node *node_dir_get(struct mount *m, struct node *n, char name[NAME_MAX + 1],
				 int *own)
{
	pthread_mutex_lock(&m->mu);
	if (n->fd >= 0) {
		*own = fcntl(n->fd, F_DUPFD_CLOEXEC, 0);
		if (*own < 0)
			*own = -errno;
		pthread_mutex_unlock(&m->mu);
		return NULL;
	}
	struct node *dir = n->parent;
	dir->refs++;
	snprintf(name, NAME_MAX + 1, "%s", n->bname);
	pthread_mutex_unlock(&m->mu);
	return dir;
}

static void node_dir_put(struct mount *m, struct node *dir)
{
	pthread_mutex_lock(&m->mu);
	dir->refs--;
	node_put_locked(dir);
	pthread_mutex_unlock(&m->mu);
}

/* Whether st is still the file of node n: -ESTALE when its name now
 * holds another one (the kernel then looks the name up again). */
static int same_file(const struct node *n, const struct stat *st)
{
	return st->st_dev == n->dev && st->st_ino == n->ino ? 0 : -ESTALE;
}

/* An O_PATH descriptor of passthrough node n for the length of one call:
 * a folder's own, or one opened by name in the file's folder and checked
 * to be the node's file (-ENOENT when the name is gone, -ESTALE when it
 * names another file). Give it back with node_fd_put. */
static int node_fd(struct mount *m, struct node *n)
{
	if (!n->bname)
		return n->fd; /* a folder's, or a virtual node's -1: set for good */
	char name[NAME_MAX + 1];
	int fd;
	struct node *dir = node_dir_get(m, n, name, &fd);
	if (!dir)
		return fd;
	struct stat st;
	fd = openat(dir->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	node_dir_put(m, dir);
	if (fd < 0)
		return -errno;
	int rc = fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) ? -errno : same_file(n, &st);
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

/* Named file n holds an O_PATH descriptor of the file fd is open on: while
 * it is open (forever 0; node_unpin at its release) or for good. */
static void node_pin(struct mount *m, struct node *n, int fd, int forever)
{
	if (!n->bname)
		return;
	char proc[64];
	proc_path(fd, proc, sizeof proc);
	int pfd = open(proc, O_PATH | O_CLOEXEC); /* the magic link followed */
	pthread_mutex_lock(&m->mu);
	if (n->fd < 0 && pfd >= 0) {
		n->fd = pfd;
		pfd = -1;
	}
	if (forever)
		n->pinned = 1;
	else
		n->opens++;
	pthread_mutex_unlock(&m->mu);
	if (pfd >= 0)
		close(pfd);
}

static void node_unpin(struct mount *m, struct node *n)
{
	int fd = -1;
	pthread_mutex_lock(&m->mu);
	if (!--n->opens && !n->pinned) {
		fd = n->fd;
		n->fd = -1;
	}
	pthread_mutex_unlock(&m->mu);
	if (fd >= 0)
		close(fd);
}

/* Before dir/name goes (unlink, or a rename over it): if the file has other
 * names, its node (if the kernel has one) keeps a descriptor for good, as
 * the name it knows it by may be this one. */
static void pin_other_names(struct mount *m, struct node *dir, const char *name)
{
	struct stat st;
	if (fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) || S_ISDIR(st.st_mode) ||
	    st.st_nlink < 2)
		return;
	int fd = openat(dir->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	pthread_mutex_lock(&m->mu);
	struct node *p = *node_slot_locked(m, dir->tree, st.st_dev, st.st_ino);
	if (p && p->bname) {
		p->pinned = 1;
		if (p->fd < 0) {
			p->fd = fd;
			fd = -1;
		}
	}
	pthread_mutex_unlock(&m->mu);
	if (fd >= 0)
		close(fd);
}

static void node_fd_put(struct node *n, int fd)
{
	if (n->bname && fd >= 0)
		close(fd);
}

/* Fill st (and its st_ino) for node n. 0 or -errno. */
static int node_attr(struct mount *m, struct node *n, struct stat *st)
{
	if (n->kind != N_PASS) {
		attr_virtual(m, n, st);
		return 0;
	}
	if (n->bname) {
		char name[NAME_MAX + 1];
		int fd, rc;
		struct node *dir = node_dir_get(m, n, name, &fd);
		if (dir) { /* by its name: one call */
			rc = fstatat(dir->fd, name, st, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
			node_dir_put(m, dir);
			return rc ? rc : same_file(n, st);
		}
		if (fd < 0)
			return fd;
		rc = fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) ? -errno : 0;
		close(fd);
		return rc;
	}
	if (fstatat(n->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
		return -errno;
	return 0;
}

static int entry_of(struct mount *m, struct node *n, double entry_ttl, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	int rc = node_attr(m, n, &e->attr);
	if (rc)
		return rc;
	e->ino = ino_of(m, n);
	e->generation = n->gen;
	e->attr_timeout = ttl(n);
	e->entry_timeout = entry_ttl;
	return 0;
}

/* Look name up in the passthrough directory dir: the node, its lookup
 * count raised by one, in e. 0 or -errno. */
static int pass_lookup(struct mount *m, struct node *dir, const char *name,
		       struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	/* every file but a folder is kept by name (see the top) */
	int by_name = 1, fd = -1;
	if (fstatat(dir->fd, name, &e->attr, AT_SYMLINK_NOFOLLOW))
		return -errno;
	if (S_ISDIR(e->attr.st_mode)) {
		by_name = 0;
		fd = openat(dir->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) {
			int rc = -errno;
			close(fd);
			return rc;
		}
	}
	char *bname = by_name ? strdup(name) : NULL;
	struct node *n = by_name && !bname ? NULL : calloc(1, sizeof *n), *found = NULL;
	pthread_mutex_lock(&m->mu);
	struct node **pp = node_slot_locked(m, dir->tree, e->attr.st_dev, e->attr.st_ino), *p = *pp;
	if (p && p->bname && p->fd < 0 && p->type != (e->attr.st_mode & S_IFMT)) {
		/* a named file held by nothing was removed and its inode
		 * number reused for a file of another type: another file,
		 * another node */
		*pp = p->hnext;
		m->n_nodes--;
		p->unhashed = 1;
		p->hnext = m->stale;
		m->stale = p;
	} else {
		found = p;
	}
	if (found) {
		found->nlookup++;
		if (found->bname && bname && (found->parent != dir || strcmp(found->bname, bname))) {
			/* another name of it, or renamed behind the mount */
			node_place_locked(found, dir, bname);
			bname = NULL;
		}
	} else if (n) {
		n->kind = N_PASS;
		n->tree = dir->tree;
		n->type = e->attr.st_mode & S_IFMT;
		n->fd = fd;
		if (bname) {
			node_place_locked(n, dir, bname);
			bname = NULL;
		}
		n->dev = e->attr.st_dev;
		n->ino = e->attr.st_ino;
		n->nlookup = 1;
		n->gen = ++m->next_gen;
		n->hnext = *pp;
		*pp = n;
		if (++m->n_nodes > m->n_buckets)
			table_grow(m);
	}
	pthread_mutex_unlock(&m->mu);
	free(bname);
	if (found) {
		free(n);
		if (fd >= 0)
			close(fd);
		n = found;
	} else if (!n) {
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	e->ino = ino_of(m, n);
	e->generation = n->gen;
	e->attr_timeout = e->entry_timeout = dir->tree == T_QUERIES ? qname_ttl(name) : ttl(n);
	return 0;
}

/* ---- virtual files ------------------------------------------------------------- */

static struct timespec now_ts(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return t;
}

static void attr_virtual(struct mount *m, struct node *n, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = n->vino;
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = m->t0;
	char *text = NULL;
	size_t len = 0;
	switch (n->kind) {
	case N_ROOT:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 6;
		break;
	case N_STATUS_DIR:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		break;
	case N_STATUS_FILE:
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		if (m->d && !daemon_status_read(m->d, n->name, &text, &len))
			st->st_size = (off_t)len;
		st->st_atim = st->st_mtim = st->st_ctim = now_ts();
		break;
	case N_MODEL: {
		int w = model_which(n->name);
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
		if (m->d && !daemon_model_get(m->d, n->name, &text, &len))
			st->st_size = (off_t)len;
		pthread_mutex_lock(&m->mu);
		st->st_mtim = st->st_ctim = m->t_model[w];
		pthread_mutex_unlock(&m->mu);
		break;
	}
	case N_PASS:
		break;
	}
	st->st_blocks = (st->st_size + 511) / 512;
	free(text);
}

/* ---- open files ---------------------------------------------------------------- */

enum ofkind { OF_PASS, OF_SNAP, OF_MODEL };

struct ofile {
	struct handle h;      /* first */
	enum ofkind kind;
	enum tree tree;
	int fd;               /* OF_PASS */
	int created;
	int append;           /* opened O_APPEND (OF_MODEL) */
	atomic_int written;   /* written, truncated or allocated since open */
	atomic_int dirty;     /* written since the last submit (queries/) or set (models) */
	char *stream_req;     /* NAME when this is NAME.stream: reads at its end wait */
	struct node *node;    /* OF_PASS: a named file's node it pins (node_pin) */
	int which;            /* OF_MODEL: index into MODEL_FILE */
	char *snap;           /* OF_SNAP, OF_MODEL: the text as it was at open */
	size_t snap_len;
	pthread_mutex_t mu;   /* OF_MODEL: wbuf */
	char *wbuf;           /* OF_MODEL: the text written */
	size_t wlen;
};

static struct ofile *ofile_new(struct mount *m, enum ofkind kind, enum tree tree, int fd)
{
	struct ofile *of = calloc(1, sizeof *of);
	if (!of)
		return NULL;
	of->kind = kind;
	of->tree = tree;
	of->fd = fd;
	pthread_mutex_init(&of->mu, NULL);
	handle_add(m, &of->h, 0);
	return of;
}

static void ofile_destroy(struct ofile *of)
{
	if (of->fd >= 0 && of->kind == OF_PASS)
		close(of->fd);
	pthread_mutex_destroy(&of->mu);
	free(of->stream_req);
	free(of->snap);
	free(of->wbuf);
	free(of);
}

/* A passthrough file open on named file n: n holds a descriptor of it
 * until of is freed (node_pin). */
static void ofile_pin(struct mount *m, struct ofile *of, struct node *n)
{
	if (n->bname) {
		node_pin(m, n, of->fd, 0);
		of->node = n;
	}
}

static void ofile_free(struct mount *m, struct ofile *of)
{
	if (of->node)
		node_unpin(m, of->node);
	handle_del(m, &of->h);
	ofile_destroy(of);
}

static struct ofile *OF(struct fuse_file_info *fi)
{
	return (struct ofile *)(uintptr_t)fi->fh;
}

/* models/generator or models/embedder: hand what was written to the
 * daemon. 0 or -errno (what the switch was refused with). */
static int model_commit(struct mount *m, struct ofile *of)
{
	if (!atomic_exchange(&of->dirty, 0) || !m->d)
		return 0;
	char err[512] = "";
	pthread_mutex_lock(&of->mu);
	int rc = daemon_model_set(m->d, MODEL_FILE[of->which], of->wbuf ? of->wbuf : "",
				  of->wlen, err, sizeof err);
	pthread_mutex_unlock(&of->mu);
	if (!rc) {
		pthread_mutex_lock(&m->mu);
		m->t_model[of->which] = now_ts();
		pthread_mutex_unlock(&m->mu);
	} else {
		/* close(2) carries only the errno; the sentence goes to the log */
		fprintf(stderr, "seekfs: models/%s not switched: %s\n", MODEL_FILE[of->which], err);
	}
	return rc;
}

/* queries/: the request of that name was written; submit it. 0 or -errno. */
static int query_commit(struct mount *m, struct ofile *of)
{
	char name[NAME_MAX + 1];
	if (!atomic_exchange(&of->dirty, 0) || !m->d || fd_qname(m, of->fd, name, sizeof name))
		return 0;
	if (daemon_query_kind(name) != QN_REQUEST)
		return 0;
	return daemon_query_submit(m->d, name);
}

static void reply_open(fuse_req_t req, struct fuse_file_info *fi, struct ofile *of)
{
	fi->fh = (uintptr_t)of;
	if (fuse_reply_open(req, fi) == -ENOENT)
		ofile_free(fuse_req_userdata(req), of); /* interrupted: no release will come */
}

/* ---- the mount's tree: lookup, attributes --------------------------------------- */

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Let the kernel clear setuid bits on write and chown: we write as root. */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	/* Replies to reads of passthrough files move the data from the backing
	 * file to /dev/fuse with splice, without copying it through a buffer
	 * here (fs_read hands libfuse the descriptor): 1.3-1.5 times the read
	 * throughput of a copy, for a file read from the disk (bench/bench_fs.sh
	 * a: 744-835 against 557-576 MB/s). */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mount *m = mnt(req);
	struct node *dir = node_of(m, parent);
	struct fuse_entry_param e;
	int rc = -ENOENT;
	switch (dir->kind) {
	case N_ROOT: {
		struct node *top[] = {&m->docs, &m->queries, &m->models, &m->status};
		for (int i = 0; i < 4; i++)
			if (!strcmp(name, top[i]->name))
				rc = entry_of(m, top[i], TTL_PASS, &e);
		break;
	}
	case N_STATUS_DIR:
		for (size_t i = 0; i < m->n_status; i++)
			if (!strcmp(name, m->status_files[i].name))
				rc = entry_of(m, &m->status_files[i], 0, &e);
		break;
	case N_PASS:
		if (is_model_virtual(m, dir, name))
			rc = entry_of(m, &m->model[model_which(name)], 0, &e);
		else
			rc = pass_lookup(m, dir, name, &e);
		break;
	default:
		rc = -ENOTDIR;
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (fuse_reply_entry(req, &e) == -ENOENT)
		node_forget(m, node_of(m, e.ino), 1);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(mnt(req), node_of(mnt(req), ino), nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct mount *m = mnt(req);
	for (size_t i = 0; i < count; i++)
		node_forget(m, node_of(m, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mount *m = mnt(req);
	struct node *n = node_of(m, ino);
	struct stat st;
	int rc;
	if (fi && n->kind == N_PASS && OF(fi)->kind == OF_PASS)
		rc = fstat(OF(fi)->fd, &st) ? -errno : 0;
	else
		rc = node_attr(m, n, &st);
	double t = ttl(n);
	if (!rc && n->tree == T_QUERIES && n->bname) {
		pthread_mutex_lock(&m->mu);
		t = qname_ttl(n->bname);
		pthread_mutex_unlock(&m->mu);
	}
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, t);
}

/* The hooks for a change of a file's content that is not a write. */
static void content_changed(struct mount *m, struct node *n)
{
	char rel[PATH_MAX];
	if (!m->d || (n->tree != T_DOCS && n->tree != T_MODELS))
		return;
	int fd = node_fd(m, n);
	if (fd < 0)
		return;
	int rc = fd_rel(m, n->tree, fd, rel, sizeof rel);
	node_fd_put(n, fd);
	if (rc || !*rel)
		return;
	if (n->tree == T_DOCS)
		daemon_doc_changed(m->d, rel);
	else if (ends_with(rel, ".gguf"))
		daemon_model_changed(m->d, rel);
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
		       struct fuse_file_info *fi)
{
	struct mount *m = mnt(req);
	struct node *n = node_of(m, ino);
	char proc[64];
	int rc = 0, nfd = -1;
	if (n->kind == N_MODEL) {
		/* truncation (echo x > models/generator) and times are accepted
		 * and mean nothing; owner and mode are fixed */
		if (valid & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
			rc = -EPERM;
		goto out;
	}
	if (n->kind != N_PASS) {
		rc = n->kind == N_STATUS_FILE ? -EACCES : -EPERM;
		goto out;
	}
	int ofd = fi && OF(fi)->kind == OF_PASS ? OF(fi)->fd : -1;
	if ((nfd = node_fd(m, n)) < 0) {
		rc = nfd;
		goto out;
	}
	if ((valid & FUSE_SET_ATTR_SIZE) && n->tree == T_QUERIES) {
		char name[NAME_MAX + 1];
		if (!fd_qname(m, nfd, name, sizeof name)) {
			if (daemon_query_kind(name) == QN_RESULT)
				rc = -EACCES;
			else if (query_busy(m, name))
				rc = -EBUSY;
			if (rc)
				goto out;
		}
	}
	proc_path(nfd, proc, sizeof proc);
	if (valid & FUSE_SET_ATTR_MODE) {
		if (ofd >= 0 ? fchmod(ofd, attr->st_mode) : chmod(proc, attr->st_mode))
			goto fail;
	}
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid = valid & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1;
		gid_t gid = valid & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1;
		if (fchownat(nfd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))
			goto fail;
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		if (ofd >= 0 ? ftruncate(ofd, attr->st_size) : truncate(proc, attr->st_size))
			goto fail;
		if (fi)
			atomic_store(&OF(fi)->written, 1);
		content_changed(m, n);
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec tv[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		if (ofd >= 0 ? futimens(ofd, tv) : utimensat(AT_FDCWD, proc, tv, 0))
			goto fail;
	}
	goto out;
fail:
	rc = -errno;
out:
	node_fd_put(n, nfd);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fs_getattr(req, ino, fi);
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct node *n = node_of(mnt(req), ino);
	char buf[PATH_MAX + 1];
	if (n->kind != N_PASS) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	int fd = node_fd(mnt(req), n);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	ssize_t l = readlinkat(fd, "", buf, sizeof buf);
	int e = errno;
	node_fd_put(n, fd);
	if (l < 0)
		fuse_reply_err(req, e);
	else if (l == (ssize_t)sizeof buf)
		fuse_reply_err(req, ENAMETOOLONG);
	else {
		buf[l] = 0;
		fuse_reply_readlink(req, buf);
	}
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct mount *m = mnt(req);
	struct node *n = node_of(m, ino);
	struct statvfs sv;
	int fd = n->kind == N_PASS ? node_fd(m, n) : m->docs.fd;
	if (fd < 0)
		return (void)fuse_reply_err(req, -fd);
	int rc = fstatvfs(fd, &sv) ? errno : 0;
	if (n->kind == N_PASS)
		node_fd_put(n, fd);
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_statfs(req, &sv);
}

/* ---- making and removing names ---------------------------------------------------- */

/* Why a name can't be made in dir: 0 when it can. */
static int check_new(struct mount *m, struct node *dir, const char *name, int regular)
{
	switch (dir->kind) {
	case N_ROOT:
		return -EPERM;
	case N_STATUS_DIR:
		return -EACCES;
	case N_PASS:
		break;
	default:
		return -ENOTDIR;
	}
	if (is_model_virtual(m, dir, name))
		return -EEXIST;
	if (dir->tree == T_QUERIES) {
		if (!regular)
			return -EPERM; /* queries/ is flat and holds plain files */
		if (daemon_query_kind(name) == QN_RESULT)
			return -EACCES;
		if (query_busy(m, name))
			return -EBUSY;
	}
	return 0;
}

/* After a name was made in dir: look it up and reply with its entry. */
static void reply_made(fuse_req_t req, struct node *dir, const char *name)
{
	struct mount *m = mnt(req);
	struct fuse_entry_param e;
	int rc = pass_lookup(m, dir, name, &e);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (fuse_reply_entry(req, &e) == -ENOENT)
		node_forget(m, node_of(m, e.ino), 1);
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	struct mount *m = mnt(req);
	struct node *dir = node_of(m, parent);
	struct creds c;
	int rc = check_new(m, dir, name, S_ISREG(mode));
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	creds_enter(m, req, &c);
	rc = mknodat(dir->fd, name, mode, rdev) ? -errno : 0;
	creds_leave(&c);
	if (!rc)
		fix_mode(m, dir->fd, name, mode);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (dir->tree == T_DOCS && S_ISREG(mode) && m->d) {
		char rel[PATH_MAX];
		if (!child_rel(m, dir, name, rel, sizeof rel))
			daemon_doc_changed(m->d, rel);
	}
	reply_made(req, dir, name);
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct mount *m = mnt(req);
	struct node *dir = node_of(m, parent);
	struct creds c;
	int rc = check_new(m, dir, name, 0);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	creds_enter(m, req, &c);
	rc = mkdirat(dir->fd, name, mode) ? -errno : 0;
	creds_leave(&c);
	if (!rc)
		fix_mode(m, dir->fd, name, mode);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_made(req, dir, name);
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct mount *m = mnt(req);
	struct node *dir = node_of(m, parent);
	struct creds c;
	int rc = check_new(m, dir, name, 0);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	creds_enter(m, req, &c);
	rc = symlinkat(link, dir->fd, name) ? -errno : 0;
	creds_leave(&c);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_made(req, dir, name);
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	struct mount *m = mnt(req);
	struct node *n = node_of(m, ino), *dir = node_of(m, parent);
	struct creds c;
	char proc[64];
	int rc = check_new(m, dir, name, 0);
	if (!rc && n->kind != N_PASS)
		rc = -EPERM;
	else if (!rc && n->tree != dir->tree)
		rc = -EXDEV;
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	int nfd = node_fd(m, n);
	if (nfd < 0) {
		fuse_reply_err(req, -nfd);
		return;
	}
	proc_path(nfd, proc, sizeof proc);
	creds_enter(m, req, &c);
	rc = linkat(AT_FDCWD, proc, dir->fd, name, AT_SYMLINK_FOLLOW) ? -errno : 0;
	creds_leave(&c);
	if (!rc)
		node_pin(m, n, nfd, 1); /* two names now: the node holds its file */
	node_fd_put(n, nfd);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (dir->tree == T_DOCS && m->d) {
		char rel[PATH_MAX];
		if (!child_rel(m, dir, name, rel, sizeof rel))
			daemon_doc_changed(m->d, rel);
	}
	reply_made(req, dir, name);
}

static int is_top_name(const char *name)
{
	return !strcmp(name, "docs") || !strcmp(name, "queries") || !strcmp(name, "models") ||
	       !strcmp(name, "status");
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mount *m = mnt(req);
	struct node *dir = node_of(m, parent);
	char rel[PATH_MAX] = "";
	int rc = 0, kind = QN_HIDDEN;
	if (dir->kind == N_ROOT)
		rc = is_top_name(name) ? -EISDIR : -ENOENT;
	else if (dir->kind == N_STATUS_DIR)
		rc = -EACCES;
	else if (dir->kind != N_PASS)
		rc = -ENOTDIR;
	else if (is_model_virtual(m, dir, name))
		rc = -EPERM;
	else if (dir->tree == T_QUERIES && (kind = daemon_query_kind(name)) == QN_RESULT)
		rc = -EACCES;
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	int have_rel = dir->tree == T_DOCS && !child_rel(m, dir, name, rel, sizeof rel);
	pin_other_names(m, dir, name);
	if (unlinkat(dir->fd, name, 0)) {
		fuse_reply_err(req, errno);
		return;
	}
	if (m->d && have_rel)
		daemon_doc_removed(m->d, rel);
	if (m->d && dir->tree == T_QUERIES && kind == QN_REQUEST)
		daemon_query_removed(m->d, name);
	fuse_reply_err(req, 0);
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mount *m = mnt(req);
	struct node *dir = node_of(m, parent);
	int rc;
	if (dir->kind == N_ROOT)
		rc = is_top_name(name) ? -EBUSY : -ENOENT;
	else if (dir->kind == N_STATUS_DIR)
		rc = -EACCES;
	else if (dir->kind != N_PASS)
		rc = -ENOTDIR;
	else if (is_model_virtual(m, dir, name))
		rc = -ENOTDIR;
	else
		rc = unlinkat(dir->fd, name, AT_REMOVEDIR) ? -errno : 0;
	fuse_reply_err(req, -rc);
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct mount *m = mnt(req);
	struct node *a = node_of(m, parent), *b = node_of(m, newparent);
	int rc = 0, exchange = flags & RENAME_EXCHANGE;
	int ka = QN_HIDDEN, kb = QN_HIDDEN;
	char from[PATH_MAX] = "", to[PATH_MAX] = "";
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		rc = -EINVAL;
	else if (a->kind == N_ROOT)
		rc = is_top_name(name) ? -EBUSY : -ENOENT;
	else if (b->kind == N_ROOT)
		rc = -EPERM;
	else if (a->kind == N_STATUS_DIR || b->kind == N_STATUS_DIR)
		rc = -EACCES;
	else if (a->kind != N_PASS || b->kind != N_PASS)
		rc = -ENOTDIR;
	else if (a->tree != b->tree)
		rc = -EXDEV;
	else if (is_model_virtual(m, a, name) || is_model_virtual(m, b, newname))
		rc = -EPERM;
	else if (a->tree == T_QUERIES) {
		ka = daemon_query_kind(name);
		kb = daemon_query_kind(newname);
		if (ka == QN_RESULT || kb == QN_RESULT)
			rc = -EACCES;
		else if (query_busy(m, newname) || (exchange && query_busy(m, name)))
			rc = -EBUSY;
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	int same = a == b && !strcmp(name, newname);
	int have_paths = a->tree != T_QUERIES && !child_rel(m, a, name, from, sizeof from) &&
			 !child_rel(m, b, newname, to, sizeof to);
	if (!exchange)
		pin_other_names(m, b, newname);
	if (flags ? renameat2(a->fd, name, b->fd, newname, flags)
		  : renameat(a->fd, name, b->fd, newname)) {
		fuse_reply_err(req, errno);
		return;
	}
	/* the moved files' nodes follow them */
	struct stat st;
	if (!fstatat(b->fd, newname, &st, AT_SYMLINK_NOFOLLOW) && !S_ISDIR(st.st_mode))
		node_renamed(m, b, st.st_dev, st.st_ino, newname);
	if (exchange && !fstatat(a->fd, name, &st, AT_SYMLINK_NOFOLLOW) && !S_ISDIR(st.st_mode))
		node_renamed(m, a, st.st_dev, st.st_ino, name);
	if (!m->d || same) {
		fuse_reply_err(req, 0);
		return;
	}
	if (a->tree == T_DOCS && have_paths) {
		if (exchange) {
			daemon_doc_changed(m->d, from);
			daemon_doc_changed(m->d, to);
		} else {
			daemon_doc_renamed(m->d, from, to);
		}
	} else if (a->tree == T_MODELS && have_paths) {
		if (ends_with(to, ".gguf"))
			daemon_model_changed(m->d, to);
		if (exchange && ends_with(from, ".gguf"))
			daemon_model_changed(m->d, from);
	} else if (a->tree == T_QUERIES) {
		/* The rename stands; a refused submission is still reported. */
		if (exchange) {
			if (ka == QN_REQUEST)
				rc = daemon_query_submit(m->d, name);
		} else if (ka == QN_REQUEST) {
			daemon_query_removed(m->d, name);
		}
		if (kb == QN_REQUEST) {
			int r = daemon_query_submit(m->d, newname);
			rc = rc ? rc : r;
		}
	}
	fuse_reply_err(req, -rc);
}

/* ---- files -------------------------------------------------------------------------- */

/* Which passthrough opens bypass the kernel's page cache of the mount.
 * queries/: always, so that results' sizes and contents, which change
 * behind the mount, are always fresh. docs/ and models/: write-only opens
 * (cp, shell redirections, dd), whose data the kernel then hands over from
 * the writer's own pages, not through a copy in the mount's page cache:
 * two to three times the throughput of a 1 MiB dd (bench/bench_fs.sh a).
 * A write-only descriptor cannot be mmap'ed, and the kernel drops the
 * pages that others have cached or mapped of the range written. Not for
 * set-user-ID or set-group-ID files (FD's mode, looked at only for such
 * opens): the kernel clears those bits on a write only on the cached path. */
static void pass_direct(enum tree tree, int fd, struct fuse_file_info *fi)
{
	struct stat st;
	if (tree == T_QUERIES)
		fi->direct_io = 1;
	else if ((fi->flags & O_ACCMODE) == O_WRONLY && !fstat(fd, &st) &&
		 !(st.st_mode & (S_ISUID | S_ISGID)))
		fi->direct_io = 1;
}

static void open_pass(fuse_req_t req, struct node *n, struct fuse_file_info *fi, int fd,
		      int created)
{
	struct mount *m = mnt(req);
	struct ofile *of = ofile_new(m, OF_PASS, n->tree, fd);
	int writable = (fi->flags & O_ACCMODE) != O_RDONLY;
	if (!of) {
		close(fd);
		return (void)fuse_reply_err(req, ENOMEM);
	}
	ofile_pin(m, of, n);
	of->created = created;
	if (n->tree != T_QUERIES && (created || (writable && (fi->flags & O_TRUNC))))
		atomic_store(&of->written, 1);
	pass_direct(n->tree, fd, fi);
	if (n->tree == T_QUERIES) {
		char name[NAME_MAX + 1];
		if (!fd_qname(m, fd, name, sizeof name) && ends_with(name, ".stream") &&
		    daemon_query_kind(name) == QN_RESULT)
			of->stream_req = strndup(name, strlen(name) - strlen(".stream"));
	}
	fi->keep_cache = 0;
	reply_open(req, fi, of);
}

static int open_flags(int flags)
{
	/* O_DIRECT would need aligned buffers that libfuse does not give */
	return (flags & ~(O_NOFOLLOW | O_DIRECT | O_CREAT | O_EXCL | O_NOCTTY)) | O_CLOEXEC;
}

static int snapshot_status(struct mount *m, const char *name, char **text, size_t *len)
{
	if (!m->d) {
		*text = NULL;
		*len = 0;
		return 0;
	}
	return daemon_status_read(m->d, name, text, len);
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mount *m = mnt(req);
	struct node *n = node_of(m, ino);
	int acc = fi->flags & O_ACCMODE;
	int writes = acc != O_RDONLY || (fi->flags & O_TRUNC);
	struct ofile *of;
	int rc;
	switch (n->kind) {
	case N_STATUS_FILE:
		if (writes)
			return (void)fuse_reply_err(req, EACCES);
		if (!(of = ofile_new(m, OF_SNAP, T_NONE, -1)))
			return (void)fuse_reply_err(req, ENOMEM);
		if ((rc = snapshot_status(m, n->name, &of->snap, &of->snap_len))) {
			ofile_free(m, of);
			return (void)fuse_reply_err(req, -rc);
		}
		fi->direct_io = 1;
		reply_open(req, fi, of);
		return;
	case N_MODEL:
		if (!(of = ofile_new(m, OF_MODEL, T_NONE, -1)))
			return (void)fuse_reply_err(req, ENOMEM);
		of->which = model_which(n->name);
		of->append = !!(fi->flags & O_APPEND);
		if (acc != O_WRONLY && m->d &&
		    (rc = daemon_model_get(m->d, n->name, &of->snap, &of->snap_len))) {
			ofile_free(m, of);
			return (void)fuse_reply_err(req, -rc);
		}
		fi->direct_io = 1;
		reply_open(req, fi, of);
		return;
	case N_PASS:
		break;
	default:
		return (void)fuse_reply_err(req, EISDIR);
	}
	int nfd = node_fd(m, n);
	if (nfd < 0)
		return (void)fuse_reply_err(req, -nfd);
	if (n->tree == T_QUERIES && writes) {
		char name[NAME_MAX + 1];
		if (!fd_qname(m, nfd, name, sizeof name)) {
			rc = daemon_query_kind(name) == QN_RESULT ? EACCES : query_busy(m, name) ? EBUSY : 0;
			if (rc) {
				node_fd_put(n, nfd);
				return (void)fuse_reply_err(req, rc);
			}
		}
	}
	char proc[64];
	proc_path(nfd, proc, sizeof proc);
	int fd = open(proc, open_flags(fi->flags));
	int e = errno;
	node_fd_put(n, nfd);
	if (fd < 0)
		return (void)fuse_reply_err(req, e);
	open_pass(req, n, fi, fd, 0);
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct mount *m = mnt(req);
	struct node *dir = node_of(m, parent);
	struct creds c;
	struct fuse_entry_param e;
	int rc = check_new(m, dir, name, 1);
	if (rc)
		return (void)fuse_reply_err(req, -rc);
	creds_enter(m, req, &c);
	int fd = openat(dir->fd, name, open_flags(fi->flags) | O_CREAT | (fi->flags & O_EXCL), mode);
	creds_leave(&c);
	if (fd >= 0)
		fix_mode(m, fd, NULL, mode);
	if (fd < 0)
		return (void)fuse_reply_err(req, errno);
	if ((rc = pass_lookup(m, dir, name, &e))) {
		close(fd);
		return (void)fuse_reply_err(req, -rc);
	}
	struct ofile *of = ofile_new(m, OF_PASS, dir->tree, fd);
	if (!of) {
		close(fd);
		node_forget(m, node_of(m, e.ino), 1);
		return (void)fuse_reply_err(req, ENOMEM);
	}
	ofile_pin(m, of, node_of(m, e.ino));
	of->created = 1;
	if (dir->tree != T_QUERIES)
		atomic_store(&of->written, 1);
	pass_direct(dir->tree, fd, fi);
	fi->fh = (uintptr_t)of;
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		ofile_free(m, of);
		node_forget(m, node_of(m, e.ino), 1);
	}
}

/* ---- reads at the end of NAME.stream -------------------------------------------------- */

/* Answer the parked reads of the request name that can be answered now:
 * with the text at their offset, or with the end of the file when the
 * stream can't grow any more. Whether it can grow is asked before looking
 * at the files: every change of that answer is followed by a wake. */
static void stream_retry(struct mount *m, const char *name)
{
	int open = m->d && daemon_stream_open(m->d, name);
	struct park *done = NULL;
	pthread_mutex_lock(&m->park_mu);
	for (struct park **pp = &m->parked; *pp;) {
		struct park *p = *pp;
		struct stat st;
		if (strcmp(p->name, name) ||
		    (open && !fstat(p->fd, &st) && st.st_size <= p->off)) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->next = done;
		done = p;
	}
	pthread_mutex_unlock(&m->park_mu);
	while (done) {
		struct park *p = done;
		done = p->next;
		char *buf = malloc(p->size ? p->size : 1);
		ssize_t n = buf ? pread(p->fd, buf, p->size, p->off) : -1;
		if (n < 0)
			fuse_reply_err(p->req, buf ? errno : ENOMEM);
		else
			fuse_reply_buf(p->req, buf, (size_t)n);
		free(buf);
		free(p);
	}
}

/* Called by libfuse (holding the request's lock) when the reader was
 * interrupted by a signal. The parked read is answered EINTR unless a wake
 * took it first. */
static void park_interrupted(fuse_req_t req, void *data)
{
	struct mount *m = data;
	struct park *p = NULL;
	pthread_mutex_lock(&m->park_mu);
	for (struct park **pp = &m->parked; *pp; pp = &(*pp)->next)
		if ((*pp)->req == req) {
			p = *pp;
			*pp = p->next;
			break;
		}
	pthread_mutex_unlock(&m->park_mu);
	if (p) {
		fuse_reply_err(req, EINTR);
		free(p);
	}
}

static void stream_read(fuse_req_t req, struct ofile *of, size_t size, off_t off)
{
	struct mount *m = mnt(req);
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	ssize_t n = pread(of->fd, buf, size, off);
	if (n < 0 || n > 0 || !size || !m->d || !daemon_stream_open(m->d, of->stream_req)) {
		if (n < 0)
			fuse_reply_err(req, errno);
		else
			fuse_reply_buf(req, buf, (size_t)n);
		free(buf);
		return;
	}
	free(buf);
	/* once parked, the read may be answered, the file closed and of freed
	 * at any moment: nothing of of or p is used after the list has p */
	char name[NAME_MAX + 1];
	snprintf(name, sizeof name, "%s", of->stream_req);
	struct park *p = malloc(sizeof *p + strlen(name) + 1);
	if (!p)
		return (void)fuse_reply_err(req, ENOMEM);
	p->req = req;
	p->fd = of->fd;
	p->off = off;
	p->size = size;
	strcpy(p->name, name);
	/* The interrupt callback is registered before the read can be found in
	 * the list (a wake could answer and free the request before); an
	 * interrupt that came before the list had it is seen under the lock. */
	fuse_req_interrupt_func(req, park_interrupted, m);
	pthread_mutex_lock(&m->park_mu);
	if (fuse_req_interrupted(req)) {
		pthread_mutex_unlock(&m->park_mu);
		free(p);
		return (void)fuse_reply_err(req, EINTR);
	}
	p->next = m->parked;
	m->parked = p;
	pthread_mutex_unlock(&m->park_mu);
	/* text or the end may have come between the read above and now */
	stream_retry(m, name);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct ofile *of = OF(fi);
	(void)ino;
	if (of->kind != OF_PASS) {
		size_t len = of->snap_len;
		size_t o = off < 0 || (size_t)off > len ? len : (size_t)off;
		fuse_reply_buf(req, of->snap ? of->snap + o : NULL, size < len - o ? size : len - o);
		return;
	}
	if (of->stream_req)
		return stream_read(req, of, size, off);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = of->fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void model_write(fuse_req_t req, struct ofile *of, struct fuse_bufvec *in, off_t off)
{
	size_t size = fuse_buf_size(in);
	pthread_mutex_lock(&of->mu);
	size_t at = of->append ? of->wlen : (size_t)off;
	if (off < 0 || at + size > MODEL_NAME_MAX) {
		pthread_mutex_unlock(&of->mu);
		return (void)fuse_reply_err(req, EFBIG);
	}
	if (!of->wbuf && !(of->wbuf = calloc(1, MODEL_NAME_MAX + 1))) {
		pthread_mutex_unlock(&of->mu);
		return (void)fuse_reply_err(req, ENOMEM);
	}
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
	dst.buf[0].mem = of->wbuf + at;
	ssize_t n = fuse_buf_copy(&dst, in, 0);
	if (n > 0 && at + (size_t)n > of->wlen)
		of->wlen = at + (size_t)n;
	int line = of->wlen && of->wbuf[of->wlen - 1] == '\n';
	pthread_mutex_unlock(&of->mu);
	if (n < 0)
		return (void)fuse_reply_err(req, (int)-n);
	atomic_store(&of->dirty, 1);
	/* a whole line is a switch: refused at once, so that the write itself
	 * fails (shells do not report errors of close) */
	int rc = line ? model_commit(fuse_req_userdata(req), of) : 0;
	if (rc)
		return (void)fuse_reply_err(req, -rc);
	fuse_reply_write(req, (size_t)n);
}

static void fs_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
			 struct fuse_file_info *fi)
{
	struct ofile *of = OF(fi);
	(void)ino;
	if (of->kind == OF_MODEL)
		return model_write(req, of, in, off);
	if (of->kind != OF_PASS)
		return (void)fuse_reply_err(req, EBADF);
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = of->fd;
	out.buf[0].pos = off;
	ssize_t n = fuse_buf_copy(&out, in, 0);
	if (n < 0)
		return (void)fuse_reply_err(req, (int)-n);
	atomic_store(&of->written, 1);
	atomic_store(&of->dirty, 1);
	fuse_reply_write(req, (size_t)n);
}

/* close(2) of one descriptor: a written request is submitted and a written
 * model file switched here, so that close reports why it was refused. */
static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mount *m = mnt(req);
	struct ofile *of = OF(fi);
	int rc = 0;
	(void)ino;
	if (of->kind == OF_MODEL) {
		rc = model_commit(m, of);
	} else if (of->kind == OF_PASS) {
		int fd = dup(of->fd);
		rc = fd < 0 || close(fd) ? -errno : 0;
		/* what close() acknowledges is on disk (DESIGN.md): written
		 * documents, requests and models reach it before the reply */
		if (!rc && atomic_load(&of->written) && fdatasync(of->fd))
			rc = -errno;
		if (of->tree == T_QUERIES) {
			int r = query_commit(m, of);
			rc = rc ? rc : r;
		}
	}
	fuse_reply_err(req, -rc);
}

/* The last close: the hooks that a closed file triggers. */
static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mount *m = mnt(req);
	struct ofile *of = OF(fi);
	char rel[PATH_MAX];
	(void)ino;
	if (of->kind == OF_MODEL) {
		model_commit(m, of);
	} else if (of->kind == OF_PASS && m->d) {
		if (of->tree == T_QUERIES) {
			query_commit(m, of);
		} else if (atomic_load(&of->written) && !fd_rel(m, of->tree, of->fd, rel, sizeof rel)) {
			close(of->fd);
			of->fd = -1;
			if (of->tree == T_DOCS)
				daemon_doc_changed(m->d, rel);
			else if (of->tree == T_MODELS && ends_with(rel, ".gguf"))
				daemon_model_changed(m->d, rel);
		}
	}
	ofile_free(m, of);
	fuse_reply_err(req, 0);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct ofile *of = OF(fi);
	(void)ino;
	int rc = 0;
	if (of->kind == OF_PASS)
		rc = (datasync ? fdatasync(of->fd) : fsync(of->fd)) ? errno : 0;
	fuse_reply_err(req, rc);
}

static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct ofile *of = OF(fi);
	(void)ino;
	if (of->kind != OF_PASS)
		return (void)fuse_reply_err(req, EOPNOTSUPP);
	if (fallocate(of->fd, mode, off, len))
		return (void)fuse_reply_err(req, errno);
	atomic_store(&of->written, 1);
	fuse_reply_err(req, 0);
}

static void fs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct ofile *in = OF(fi_in), *out = OF(fi_out);
	(void)ino_in;
	(void)ino_out;
	/* the kernel falls back to reads and writes: virtual files go that way */
	if (in->kind != OF_PASS || out->kind != OF_PASS)
		return (void)fuse_reply_err(req, EOPNOTSUPP);
	ssize_t n = copy_file_range(in->fd, &off_in, out->fd, &off_out, len, (unsigned)flags);
	if (n < 0)
		return (void)fuse_reply_err(req, errno);
	atomic_store(&out->written, 1);
	atomic_store(&out->dirty, 1);
	fuse_reply_write(req, (size_t)n);
}

static void fs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct ofile *of = OF(fi);
	(void)ino;
	if (of->kind == OF_PASS) {
		off_t r = lseek(of->fd, off, whence);
		if (r < 0)
			fuse_reply_err(req, errno);
		else
			fuse_reply_lseek(req, r);
		return;
	}
	/* a snapshot is all data (only SEEK_DATA and SEEK_HOLE come here) */
	off_t len = (off_t)of->snap_len;
	if (off < 0 || off >= len)
		fuse_reply_err(req, off < 0 ? EINVAL : ENXIO);
	else
		fuse_reply_lseek(req, whence == SEEK_HOLE ? len : off);
}

/* ---- directories ---------------------------------------------------------------------- */

struct dirh {
	struct handle h;       /* first */
	DIR *dp;               /* passthrough */
	struct dirent *entry;  /* read but not yet sent */
	off_t offset;
	char **names;          /* models/: the real names, read at once */
	size_t n_names;
	int listed;            /* models/: names were sent (offset 0 reads anew) */
};

static void dirh_free_names(struct dirh *h)
{
	for (size_t i = 0; i < h->n_names; i++)
		free(h->names[i]);
	free(h->names);
	h->names = NULL;
	h->n_names = 0;
}

static void dirh_destroy(struct dirh *h)
{
	dirh_free_names(h);
	if (h->dp)
		closedir(h->dp);
	free(h);
}

static void dirh_free(struct mount *m, struct dirh *h)
{
	handle_del(m, &h->h);
	dirh_destroy(h);
}

/* models/: read the real names, leaving out what the virtual files shadow. */
static int models_list(struct dirh *h)
{
	dirh_free_names(h);
	rewinddir(h->dp);
	size_t cap = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(h->dp))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    model_which(de->d_name) >= 0)
			continue;
		if (h->n_names == cap) {
			size_t c = cap ? cap * 2 : 16;
			char **v = realloc(h->names, c * sizeof *v);
			if (!v)
				return -ENOMEM;
			h->names = v;
			cap = c;
		}
		if (!(h->names[h->n_names] = strdup(de->d_name)))
			return -ENOMEM;
		h->n_names++;
	}
	return errno ? -errno : 0;
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mount *m = mnt(req);
	struct node *n = node_of(m, ino);
	struct dirh *h = calloc(1, sizeof *h);
	if (!h)
		return (void)fuse_reply_err(req, ENOMEM);
	int rc = 0;
	if (n->kind == N_PASS) {
		int fd = openat(n->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || !(h->dp = fdopendir(fd))) {
			rc = -errno;
			if (fd >= 0)
				close(fd);
		} else if (n == &m->models) {
			rc = models_list(h);
		}
	} else if (n->kind != N_ROOT && n->kind != N_STATUS_DIR) {
		rc = -ENOTDIR;
	}
	if (rc) {
		dirh_destroy(h);
		return (void)fuse_reply_err(req, -rc);
	}
	handle_add(m, &h->h, 1);
	fi->fh = (uintptr_t)h;
	if (fuse_reply_open(req, fi) == -ENOENT)
		dirh_free(m, h);
}

/* Add one entry to the reply buffer; its lookup is dropped again when it
 * does not fit. The bytes taken, or 0 when full. */
static size_t add_entry(fuse_req_t req, char *p, size_t rem, const char *name,
			struct fuse_entry_param *e, off_t next, int plus, int counted)
{
	size_t sz = plus ? fuse_add_direntry_plus(req, p, rem, name, e, next)
			 : fuse_add_direntry(req, p, rem, name, &e->attr, next);
	if (sz > rem) {
		if (plus && counted)
			node_forget(mnt(req), node_of(mnt(req), e->ino), 1);
		return 0;
	}
	return sz;
}

/* root/, status/ and models/: a fixed list of entries, offsets are indices. */
static void list_readdir(fuse_req_t req, struct node *dir, struct dirh *h, char *buf,
			 size_t size, off_t off, int plus)
{
	struct mount *m = mnt(req);
	struct node *top[] = {&m->docs, &m->queries, &m->models, &m->status};
	size_t n_fixed = dir->kind == N_ROOT ? 4 : dir->kind == N_STATUS_DIR ? m->n_status : 2;
	size_t rem = size;
	if (dir == &m->models && off == 0 && h->listed && models_list(h))
		return (void)fuse_reply_err(req, EIO);
	h->listed = 1;
	size_t total = 2 + n_fixed + h->n_names;
	for (size_t i = off < 0 ? 0 : (size_t)off; i < total; i++) {
		struct fuse_entry_param e;
		const char *name;
		int counted = 0, rc = 0;
		memset(&e, 0, sizeof e);
		if (i < 2) {
			/* no node: the kernel knows these two itself */
			name = i ? ".." : ".";
			if (!i && dir->kind == N_PASS)
				node_attr(m, dir, &e.attr);
			else
				e.attr.st_ino = i ? 1 : dir->vino;
			e.attr.st_mode = S_IFDIR;
		} else if (i < 2 + n_fixed) {
			struct node *c = dir->kind == N_ROOT ? top[i - 2]
				       : dir->kind == N_STATUS_DIR ? &m->status_files[i - 2]
								   : &m->model[i - 2];
			name = c->name;
			rc = plus ? entry_of(m, c, c->kind == N_PASS ? TTL_PASS : 0, &e)
				  : node_attr(m, c, &e.attr);
		} else {
			name = h->names[i - 2 - n_fixed];
			if (plus) {
				rc = pass_lookup(m, dir, name, &e);
				counted = !rc;
			} else {
				e.attr.st_mode = S_IFREG; /* only the type bits are sent */
				e.attr.st_ino = 0;
				struct stat st;
				if (!fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW))
					e.attr = st;
			}
		}
		if (rc)
			continue; /* gone since the listing: leave it out */
		size_t sz = add_entry(req, buf + (size - rem), rem, name, &e, (off_t)i + 1, plus,
				      counted);
		if (!sz)
			break;
		rem -= sz;
	}
	fuse_reply_buf(req, buf, size - rem);
}

static int is_dot(const char *name)
{
	return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}

/* passthrough directories: the backing directory's own offsets */
static void pass_readdir(fuse_req_t req, struct node *dir, struct dirh *h, char *buf,
			 size_t size, off_t off, int plus)
{
	struct mount *m = mnt(req);
	size_t rem = size;
	int err = 0;
	if (off != h->offset) {
		seekdir(h->dp, off);
		h->entry = NULL;
		h->offset = off;
	}
	for (;;) {
		if (!h->entry) {
			errno = 0;
			if (!(h->entry = readdir(h->dp))) {
				err = errno;
				break;
			}
		}
		struct dirent *de = h->entry;
		struct fuse_entry_param e;
		int counted = 0;
		memset(&e, 0, sizeof e);
		e.attr.st_ino = de->d_ino;
		e.attr.st_mode = (mode_t)de->d_type << 12;
		if (plus && !is_dot(de->d_name)) {
			int rc = pass_lookup(m, dir, de->d_name, &e);
			if (rc == -ENOENT) { /* removed since: leave it out */
				h->entry = NULL;
				h->offset = de->d_off;
				continue;
			}
			if (rc) {
				err = -rc;
				break;
			}
			counted = 1;
		}
		size_t sz = add_entry(req, buf + (size - rem), rem, de->d_name, &e, de->d_off,
				      plus, counted);
		if (!sz)
			break;
		rem -= sz;
		h->entry = NULL;
		h->offset = de->d_off;
	}
	/* an error after entries were added would lose their lookup counts */
	if (err && rem == size)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, size - rem);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, int plus)
{
	struct mount *m = mnt(req);
	struct node *dir = node_of(m, ino);
	struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	if (dir->kind != N_PASS || dir == &m->models)
		list_readdir(req, dir, h, buf, size, off, plus);
	else
		pass_readdir(req, dir, h, buf, size, off, plus);
	free(buf);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

static void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	dirh_free(mnt(req), (struct dirh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void fs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;
	(void)ino;
	int rc = 0;
	if (h->dp)
		rc = (datasync ? fdatasync(dirfd(h->dp)) : fsync(dirfd(h->dp))) ? errno : 0;
	fuse_reply_err(req, rc);
}

static const struct fuse_lowlevel_ops ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.readlink = fs_readlink,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.symlink = fs_symlink,
	.link = fs_link,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.rename = fs_rename,
	.open = fs_open,
	.create = fs_create,
	.read = fs_read,
	.write_buf = fs_write_buf,
	.flush = fs_flush,
	.release = fs_release,
	.fsync = fs_fsync,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.readdirplus = fs_readdirplus,
	.releasedir = fs_releasedir,
	.fsyncdir = fs_fsyncdir,
	.statfs = fs_statfs,
	.fallocate = fs_fallocate,
	.copy_file_range = fs_copy_file_range,
	.lseek = fs_lseek,
};

/* ---- what the daemon calls --------------------------------------------------------------- */

static void *notifier(void *arg)
{
	struct mount *m = arg;
	pthread_mutex_lock(&m->note_mu);
	for (;;) {
		while (!m->notes && !m->note_stop)
			pthread_cond_wait(&m->note_cv, &m->note_mu);
		if (!m->notes)
			break;
		struct notice *list = m->notes;
		m->notes = NULL;
		pthread_mutex_unlock(&m->note_mu);
		while (list) {
			struct notice *n = list;
			list = n->next;
			/* -ENOENT (the kernel has no such entry) is the usual answer */
			fuse_lowlevel_notify_inval_entry(m->se, ino_of(m, &m->queries), n->name,
							 strlen(n->name));
			free(n);
		}
		pthread_mutex_lock(&m->note_mu);
	}
	pthread_mutex_unlock(&m->note_mu);
	return NULL;
}

/* Under note_mu. */
static void note_add(struct mount *m, const char *name, const char *suffix)
{
	size_t l = strlen(name) + strlen(suffix);
	struct notice **pp = &m->notes;
	for (; *pp; pp = &(*pp)->next)
		if (strlen((*pp)->name) == l && !strncmp((*pp)->name, name, strlen(name)) &&
		    !strcmp((*pp)->name + strlen(name), suffix))
			return; /* already pending */
	struct notice *n = malloc(sizeof *n + l + 1);
	if (!n)
		return;
	n->next = NULL;
	snprintf(n->name, l + 1, "%s%s", name, suffix);
	*pp = n;
}

void mount_notify_query(struct mount *m, const char *name)
{
	if (!m || atomic_load(&m->down) || !*name || strchr(name, '/'))
		return;
	pthread_mutex_lock(&m->note_mu);
	if (!m->note_stop) {
		note_add(m, name, "");
		/* the daemon names the request when any of its files changed */
		if (daemon_query_kind(name) == QN_REQUEST)
			for (size_t i = 0; i < N_RESULT_SUFFIXES; i++)
				note_add(m, name, daemon_result_suffixes[i]);
		pthread_cond_signal(&m->note_cv);
	}
	pthread_mutex_unlock(&m->note_mu);
}

void mount_stream_wake(struct mount *m, const char *request_name)
{
	if (m && !atomic_load(&m->down))
		stream_retry(m, request_name);
}

/* ---- life cycle ---------------------------------------------------------------------------- */

static void static_node(struct node *n, enum nkind kind, enum tree tree, const char *name,
			uint64_t vino)
{
	memset(n, 0, sizeof *n);
	n->kind = kind;
	n->tree = tree;
	n->is_static = 1;
	n->fd = -1;
	n->name = name;
	n->vino = vino;
}

static void mount_free(struct mount *m)
{
	if (!m)
		return;
	/* folders the kernel forgot before their files are reached only from
	 * those: listed once (refs -1), freed after */
	struct node *zombies = NULL;
	for (size_t i = 0; i <= m->n_buckets; i++)
		for (struct node *n = i < m->n_buckets ? m->buckets[i] : m->stale; n; n = n->hnext)
			for (struct node *p = n->parent; p && p->unhashed && p->refs >= 0; p = p->parent) {
				p->refs = -1;
				p->hnext = zombies;
				zombies = p;
			}
	for (size_t i = 0; i < m->n_buckets; i++)
		for (struct node *n = m->buckets[i], *next; n; n = next) {
			next = n->hnext;
			node_free(n);
		}
	struct node *lists[] = {zombies, m->stale};
	for (int i = 0; i < 2; i++)
		for (struct node *n = lists[i], *next; n; n = next) {
			next = n->hnext;
			node_free(n);
		}
	free(m->buckets);
	free(m->groups);
	struct node *top[] = {&m->docs, &m->queries, &m->models};
	for (int i = 0; i < 3; i++)
		if (top[i]->fd >= 0)
			close(top[i]->fd);
	free(m->status_files);
	while (m->handles) {
		struct handle *h = m->handles;
		m->handles = h->next;
		if (h->is_dir)
			dirh_destroy((struct dirh *)h);
		else
			ofile_destroy((struct ofile *)h);
	}
	while (m->notes) {
		struct notice *n = m->notes;
		m->notes = n->next;
		free(n);
	}
	pthread_mutex_destroy(&m->mu);
	pthread_mutex_destroy(&m->park_mu);
	pthread_mutex_destroy(&m->handles_mu);
	pthread_mutex_destroy(&m->note_mu);
	pthread_cond_destroy(&m->note_cv);
	free(m);
}

/* Every inode the kernel has looked up holds an O_PATH descriptor here
 * until it is forgotten, so `ls -l` of a folder of 60,000 names needs
 * 60,000 of them: take as many as this process may have (root: up to
 * fs.nr_open), or EMFILE fails lookups and, worse, the daemon's own work. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	FILE *f = geteuid() == 0 ? fopen("/proc/sys/fs/nr_open", "r") : NULL;
	unsigned long nr_open = 0;
	if (f) {
		if (fscanf(f, "%lu", &nr_open) != 1)
			nr_open = 0;
		fclose(f);
	}
	if (nr_open > rl.rlim_max) {
		struct rlimit all = {(rlim_t)nr_open, (rlim_t)nr_open};
		if (!setrlimit(RLIMIT_NOFILE, &all))
			return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int mount_open(const struct mount_opts *o, struct mount **out, char *err, size_t errsz)
{
	*out = NULL;
	raise_nofile();
	struct mount *m = calloc(1, sizeof *m);
	if (!m) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&m->mu, NULL);
	pthread_mutex_init(&m->park_mu, NULL);
	pthread_mutex_init(&m->handles_mu, NULL);
	pthread_mutex_init(&m->note_mu, NULL);
	pthread_cond_init(&m->note_cv, NULL);
	m->sp = *o->store;
	m->uid = geteuid();
	m->gid = getegid();
	m->as_root = m->uid == 0;
	int ng = getgroups(0, NULL);
	if (ng > 0 && (m->groups = malloc((size_t)ng * sizeof *m->groups)))
		m->n_groups = getgroups(ng, m->groups);
	if (m->n_groups < 0)
		m->n_groups = 0;
	m->umask = umask(022);
	umask(m->umask);
	m->t0 = now_ts();
	m->t_model[0] = m->t_model[1] = m->t0;
	m->max_idle_threads = o->max_idle_threads > 0 ? o->max_idle_threads : 10;
	m->max_threads = o->max_threads;
	int rc = 0;

	static_node(&m->root, N_ROOT, T_NONE, "", 1);
	static_node(&m->status, N_STATUS_DIR, T_NONE, "status", VIRT_INO(1));
	static_node(&m->model[0], N_MODEL, T_NONE, MODEL_FILE[0], VIRT_INO(2));
	static_node(&m->model[1], N_MODEL, T_NONE, MODEL_FILE[1], VIRT_INO(3));
	static_node(&m->docs, N_PASS, T_DOCS, "docs", 0);
	static_node(&m->queries, N_PASS, T_QUERIES, "queries", 0);
	static_node(&m->models, N_PASS, T_MODELS, "models", 0);
	const char *const *names = daemon_status_names();
	while (names && names[m->n_status])
		m->n_status++;
	m->status_files = calloc(m->n_status ? m->n_status : 1, sizeof *m->status_files);
	m->n_buckets = 1024;
	m->buckets = calloc(m->n_buckets, sizeof *m->buckets);
	if (!m->status_files || !m->buckets) {
		snprintf(err, errsz, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < m->n_status; i++)
		static_node(&m->status_files[i], N_STATUS_FILE, T_NONE, names[i], VIRT_INO(16 + i));

	struct node *top[] = {NULL, &m->docs, &m->queries, &m->models};
	const char *dir[] = {NULL, m->sp.docs, m->sp.queries, m->sp.models};
	for (int t = T_DOCS; t <= T_MODELS; t++) {
		char proc[64];
		top[t]->fd = open(dir[t], O_PATH | O_DIRECTORY | O_CLOEXEC);
		proc_path(top[t]->fd, proc, sizeof proc);
		ssize_t l;
		if (top[t]->fd < 0 || (l = readlink(proc, m->real[t], sizeof m->real[t] - 1)) < 0) {
			rc = -errno;
			snprintf(err, errsz, "%s: %s", dir[t], strerror(errno));
			goto fail;
		}
		m->real[t][l] = 0;
	}

	/* fsname and subtype name the mount in mount(8) and /proc/self/mountinfo
	 * (seekfs umount looks for fuse.seekfs there); default_permissions has
	 * the kernel check modes, as for any local file system. */
	char *argv[6];
	int argc = 0;
	argv[argc++] = "seekfs";
	argv[argc++] = "-o";
	argv[argc++] = "fsname=seekfs,subtype=seekfs,default_permissions";
	if (o->options && *o->options) {
		argv[argc++] = "-o";
		argv[argc++] = (char *)o->options;
	}
	if (o->debug)
		argv[argc++] = "-d";
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	m->se = fuse_session_new(&args, &ops, sizeof ops, m);
	fuse_opt_free_args(&args);
	if (!m->se) {
		rc = -EINVAL;
		snprintf(err, errsz, "bad mount options (see above): %s", o->options ? o->options : "");
		goto fail;
	}
	if (fuse_set_signal_handlers(m->se)) {
		rc = -EIO;
		snprintf(err, errsz, "cannot install signal handlers");
		goto fail;
	}
	m->signals = 1;
	if (fuse_session_mount(m->se, o->mountpoint)) {
		rc = -EIO;
		snprintf(err, errsz, "cannot mount at %s (see above)", o->mountpoint);
		goto fail;
	}
	m->mounted = 1;
	*out = m;
	return 0;
fail:
	if (m->signals)
		fuse_remove_signal_handlers(m->se);
	if (m->se)
		fuse_session_destroy(m->se);
	mount_free(m);
	return rc;
}

void mount_set_daemon(struct mount *m, struct daemon *d)
{
	m->d = d;
}

int mount_loop(struct mount *m)
{
	/* the notifier must not take the signals that end the loop */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	m->note_started = !pthread_create(&m->note_thread, NULL, notifier, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!m->note_started)
		return -EAGAIN;

	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_idle_threads(cfg, (unsigned)m->max_idle_threads);
	if (m->max_threads > 0)
		fuse_loop_cfg_set_max_threads(cfg, (unsigned)m->max_threads);
	int rc = fuse_session_loop_mt(m->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc;
}

void mount_unmount(struct mount *m)
{
	if (!m || atomic_exchange(&m->down, 1))
		return;
	/* no more notices: the session's descriptor is about to close */
	if (m->note_started) {
		pthread_mutex_lock(&m->note_mu);
		m->note_stop = 1;
		pthread_cond_signal(&m->note_cv);
		pthread_mutex_unlock(&m->note_mu);
		pthread_join(m->note_thread, NULL);
		m->note_started = 0;
	}
	/* the loop has ended: the reads still waiting end with an error, and
	 * no read can be parked any more */
	pthread_mutex_lock(&m->park_mu);
	struct park *p = m->parked;
	m->parked = NULL;
	pthread_mutex_unlock(&m->park_mu);
	while (p) {
		struct park *next = p->next;
		fuse_reply_err(p->req, EIO);
		free(p);
		p = next;
	}
	if (m->mounted)
		fuse_session_unmount(m->se);
	m->mounted = 0;
}

void mount_close(struct mount *m)
{
	if (!m)
		return;
	mount_unmount(m);
	if (m->signals)
		fuse_remove_signal_handlers(m->se);
	fuse_session_destroy(m->se);
	mount_free(m);
}
