/*
 * seekfs mount: serve a store as a file system (the FUSE layer of
 * fs/mount.c over the daemon of fs/daemon.c), in the background unless -f.
 * seekfs umount: unmount it and wait until the daemon has let go of the
 * store.
 *
 * Errors are found before the process leaves the terminal where they can
 * be: the store, the mount point, the index lock, the mount itself. The
 * daemon starts in the background process (threads do not survive a
 * fork), and the terminal waits until it has: a failure to start is
 * printed there as well, and logged in STORE/seekfs.log, where the
 * background process's stderr goes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs/cli.h"
#include "fs/cli_util.h"
#include "fs/daemon.h"
#include "fs/mount.h"

/* How long seekfs umount waits for the daemon to finish, in seconds. */
#define UMOUNT_WAIT_S 30

static void usage(FILE *f)
{
	fprintf(f,
		"usage: seekfs mount  [--store DIR] [-f] [-d] [-o OPT[,OPT...]] [-t THREADS]\n"
		"                     [--workers N] MOUNTPOINT\n"
		"       seekfs umount [--store DIR] [-l] MOUNTPOINT\n"
		"  mount serves the store at MOUNTPOINT (an existing folder): docs/ (documents,\n"
		"  indexed when written), queries/ (write a question to queries/NAME, read\n"
		"  NAME.answer), models/ (GGUF files; models/generator and models/embedder name\n"
		"  the ones in use) and status/. It runs in the background; its messages go to\n"
		"  STORE/seekfs.log. SIGINT, SIGTERM or seekfs umount end it.\n"
		"    --store DIR   the store (else $SEEKFS_STORE, else ~/.local/share/seekfs)\n"
		"    -f            stay in the foreground, messages on stderr\n"
		"    -d            also log every FUSE request on stderr (implies -f)\n"
		"    -o OPT,...    mount options, e.g. allow_other (let other users in; a user\n"
		"                  other than root needs user_allow_other in /etc/fuse.conf),\n"
		"                  ro, noatime, max_read=N\n"
		"    -t THREADS    compute threads (default: all cores)\n"
		"    --workers N   queries answered at once (default 4)\n"
		"  umount unmounts (fusermount3 -u) and waits up to %d s until the daemon has\n"
		"  finished its work and let go of the store (found through STORE/seekfs.pid).\n"
		"    -l            lazy: detach now even while files under it are open\n",
		UMOUNT_WAIT_S);
}

enum { O_STORE = 256, O_WORKERS };

/* A line in STORE/seekfs.log, stamped like the daemon's. */
static void store_log(const struct store_paths *sp, const char *fmt, ...)
{
	char path[4300], ts[32];
	snprintf(path, sizeof path, "%s/seekfs.log", sp->root);
	FILE *f = fopen(path, "a");
	if (!f)
		return;
	time_t t = time(NULL);
	struct tm tm;
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", localtime_r(&t, &tm));
	va_list ap;
	va_start(ap, fmt);
	fprintf(f, "%s ", ts);
	vfprintf(f, fmt, ap);
	fputc('\n', f);
	va_end(ap);
	fclose(f);
}

/* ---- /proc/self/mountinfo ---- */

/* Undo the octal escapes (\040 for a space) of a mountinfo field, in place. */
static void unescape(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

/* Whether path is a mount point of a seekfs file system (1), another (2)
 * or none (0). */
static int mount_kind(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return 0;
	char *line = NULL;
	size_t cap = 0;
	int kind = 0;
	while (getline(&line, &cap, f) > 0) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [FIELDS...] - FSTYPE SOURCE SUPER */
		char *save, *tok = strtok_r(line, " \n", &save);
		char *mp = NULL, *fstype = NULL;
		for (int i = 0; tok; i++, tok = strtok_r(NULL, " \n", &save)) {
			if (i == 4)
				mp = tok;
			if (!strcmp(tok, "-")) {
				fstype = strtok_r(NULL, " \n", &save);
				break;
			}
		}
		if (!mp || !fstype)
			continue;
		unescape(mp);
		if (!strcmp(mp, path))
			kind = !strcmp(fstype, "fuse.seekfs") ? 1 : 2; /* the last one is on top */
	}
	free(line);
	fclose(f);
	return kind;
}

/* ---- seekfs mount ---- */

struct mopts {
	const char *store_opt;
	char *options;  /* -o values joined by commas (malloc'ed) */
	int foreground, debug, threads, workers;
	const char *mountpoint;
};

static int add_options(struct mopts *o, const char *arg)
{
	size_t l = o->options ? strlen(o->options) : 0;
	char *s = realloc(o->options, l + strlen(arg) + 2);
	if (!s)
		return -ENOMEM;
	if (l)
		s[l++] = ',';
	strcpy(s + l, arg);
	o->options = s;
	return 0;
}

/* What can be checked before the mount: the mount point, and that no other
 * seekfs process writes the store's index. Prints why not and returns -1. */
static int precheck(const struct store_paths *sp, const char *mnt)
{
	struct stat st;
	if (mount_kind(mnt) == 1) {
		fprintf(stderr, "seekfs mount: %s is already a seekfs mount (seekfs umount %s first)\n",
			mnt, mnt);
		return -1;
	}
	if (stat(mnt, &st)) {
		fprintf(stderr, "seekfs mount: %s: %s%s\n", mnt, strerror(errno),
			errno == ENOENT ? " (make the folder first)" :
			errno == ENOTCONN ? " (a mount whose process has died: fusermount3 -u it)" : "");
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "seekfs mount: %s is not a folder\n", mnt);
		return -1;
	}
	size_t lm = strlen(mnt), ls = strlen(sp->root);
	if ((!strncmp(sp->root, mnt, lm) && (sp->root[lm] == '/' || !sp->root[lm] || lm == 1)) ||
	    (!strncmp(mnt, sp->root, ls) && mnt[ls] == '/')) {
		fprintf(stderr, "seekfs mount: the mount point %s and the store %s lie inside one "
				"another: choose a folder outside the store\n", mnt, sp->root);
		return -1;
	}
	char lock[4300];
	snprintf(lock, sizeof lock, "%s/lock", sp->index);
	int fd = open(lock, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		int busy = flock(fd, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK;
		close(fd); /* drops the lock if we took it */
		if (busy) {
			fprintf(stderr, "seekfs mount: the index in %s is in use by another seekfs process "
					"(a mount of this store, or seekfs index): unmount it or let it finish\n",
				sp->index);
			return -1;
		}
	}
	return 0;
}

/* Leave the terminal: fork, and have the parent wait until the child
 * reports how the start went (one byte: 0 for success) and exit with it.
 * Returns the descriptor to report on, in the child. */
static int background(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		char c = 1;
		ssize_t n;
		while ((n = read(p[0], &c, 1)) < 0 && errno == EINTR)
			;
		_exit(n == 1 && c == 0 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	return p[1];
}

static void report(int fd, char status)
{
	if (fd < 0)
		return;
	while (write(fd, &status, 1) < 0 && errno == EINTR)
		;
	close(fd);
}

/* The background process's standard streams: no terminal; stderr (what the
 * daemon and libfuse print) appended to STORE/seekfs.log. */
static void detach_stdio(const struct store_paths *sp)
{
	char path[4300];
	snprintf(path, sizeof path, "%s/seekfs.log", sp->root);
	int null = open("/dev/null", O_RDWR);
	int log = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(log >= 0 ? log : null, 2);
	}
	if (null > 2)
		close(null);
	if (log > 2)
		close(log);
}

static void pidfile_path(const char *root, char *buf, size_t n)
{
	snprintf(buf, n, "%s/seekfs.pid", root);
}

static void pidfile_write(const struct store_paths *sp, const char *mnt)
{
	char path[4300];
	pidfile_path(sp->root, path, sizeof path);
	FILE *f = fopen(path, "w");
	if (f) {
		fprintf(f, "%ld\t%s\n", (long)getpid(), mnt);
		fclose(f);
	}
}

/* The pid in ROOT/seekfs.pid when it names mount point mnt, else 0. */
static pid_t pidfile_read(const char *root, const char *mnt)
{
	char path[4300], line[4400];
	long pid = 0;
	pidfile_path(root, path, sizeof path);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(line, sizeof line, f)) {
		char *tab = strchr(line, '\t');
		line[strcspn(line, "\n")] = 0;
		if (tab && !strcmp(tab + 1, mnt))
			pid = strtol(line, NULL, 10);
	}
	fclose(f);
	return pid > 0 ? (pid_t)pid : 0;
}

static void pidfile_remove(const struct store_paths *sp, const char *mnt)
{
	char path[4300];
	pidfile_path(sp->root, path, sizeof path);
	if (pidfile_read(sp->root, mnt) == getpid())
		unlink(path);
}

int cmd_mount(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{"store", required_argument, NULL, O_STORE},
		{"workers", required_argument, NULL, O_WORKERS},
		{"foreground", no_argument, NULL, 'f'},
		{"debug", no_argument, NULL, 'd'},
		{"threads", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct mopts o = {0};
	int c, rc = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "fdo:t:h", long_opts, NULL)) != -1) {
		switch (c) {
		case O_STORE:
			o.store_opt = optarg;
			break;
		case O_WORKERS:
			if (cli_int(optarg, "--workers", 1, 256, &o.workers))
				goto out;
			break;
		case 'f':
			o.foreground = 1;
			break;
		case 'd':
			o.debug = o.foreground = 1;
			break;
		case 'o':
			if (add_options(&o, optarg)) {
				fprintf(stderr, "seekfs mount: out of memory\n");
				goto out;
			}
			break;
		case 't':
			if (cli_int(optarg, "-t", 1, 4096, &o.threads))
				goto out;
			break;
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		default:
			usage(stderr);
			rc = 2;
			goto out;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		rc = 2;
		goto out;
	}

	char storebuf[4096], mnt[PATH_MAX], err[1024];
	struct store_paths sp;
	if (store_prepare(cli_store_dir(o.store_opt, storebuf, sizeof storebuf), &sp, err, sizeof err)) {
		fprintf(stderr, "seekfs mount: store: %s\n", err);
		goto out;
	}
	int r = cli_abspath(argv[optind], mnt, sizeof mnt);
	if (r) {
		fprintf(stderr, "seekfs mount: %s: %s\n", argv[optind], strerror(-r));
		goto out;
	}
	if (precheck(&sp, mnt))
		goto out;

	struct mount_opts mo = {
		.store = &sp,
		.mountpoint = mnt,
		.options = o.options,
		.debug = o.debug,
	};
	struct mount *m;
	if (mount_open(&mo, &m, err, sizeof err)) {
		fprintf(stderr, "seekfs mount: %s\n", err);
		goto out;
	}

	int rep = -1;
	if (!o.foreground) {
		if ((rep = background()) < 0) {
			fprintf(stderr, "seekfs mount: cannot go to the background: %s\n",
				strerror(-rep));
			mount_close(m);
			goto out;
		}
		if (chdir("/")) {
			/* keeps no folder busy; the paths in use are absolute */
		}
	}

	/* The daemon's threads inherit a mask without the signals that end the
	 * loop, so that those reach this thread (which waits in mount_loop). */
	sigset_t stop, old;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	struct daemon_opts dopt = {.store = &sp, .n_threads = o.threads, .n_workers = o.workers};
	struct daemon *d;
	r = daemon_start(&dopt, m, &d, err, sizeof err);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		fprintf(stderr, "seekfs mount: %s\n", err);
		store_log(&sp, "seekfs mount: %s", err);
		mount_close(m);
		report(rep, 1);
		goto out;
	}
	mount_set_daemon(m, d);
	pidfile_write(&sp, mnt);
	store_log(&sp, "seekfs mount: %s mounted at %s (pid %ld)", sp.root, mnt, (long)getpid());
	if (!o.foreground)
		detach_stdio(&sp);
	report(rep, 0);

	r = mount_loop(m);
	mount_unmount(m);
	daemon_stop(d);
	mount_close(m);
	if (r < 0)
		store_log(&sp, "seekfs mount: %s: the FUSE loop failed: %s", mnt, strerror(-r));
	store_log(&sp, "seekfs mount: %s unmounted%s", mnt,
		  r > 0 ? (r == SIGINT ? " (SIGINT)" : r == SIGTERM ? " (SIGTERM)" : " (signal)") : "");
	pidfile_remove(&sp, mnt);
	rc = r < 0;
out:
	free(o.options);
	return rc;
}

/* ---- seekfs umount ---- */

static double now_s(void)
{
	return cli_now();
}

/* fusermount3 -u [-z] -- mnt; as root without fusermount3, umount2. 0 or
 * an exit status (fusermount3 has printed why). */
static int unmount(const char *mnt, int lazy)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		if (lazy)
			execlp("fusermount3", "fusermount3", "-u", "-z", "--", mnt, (char *)NULL);
		else
			execlp("fusermount3", "fusermount3", "-u", "--", mnt, (char *)NULL);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	if (code == 127 && geteuid() == 0) {
		if (!umount2(mnt, lazy ? MNT_DETACH : 0))
			return 0;
		fprintf(stderr, "seekfs umount: %s: %s\n", mnt, strerror(errno));
		return 1;
	}
	if (code == 127)
		fprintf(stderr, "seekfs umount: fusermount3 not found (install the fuse3 package)\n");
	return code;
}

/* Whether process pid is still a seekfs mount process. */
static int daemon_alive(pid_t pid)
{
	char path[64], cmd[256];
	snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(cmd, 1, sizeof cmd - 1, f);
	fclose(f);
	cmd[n] = 0;
	/* argv[0] "...seekfs", argv[1] "mount"; a zombie has an empty cmdline */
	size_t l0 = strlen(cmd);
	return n > l0 + 1 && !strcmp(cmd + l0 + 1, "mount");
}

int cmd_umount(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{"store", required_argument, NULL, O_STORE},
		{"lazy", no_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *store_opt = NULL;
	int c, lazy = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "lh", long_opts, NULL)) != -1) {
		switch (c) {
		case O_STORE:
			store_opt = optarg;
			break;
		case 'l':
			lazy = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	char mnt[PATH_MAX], real[PATH_MAX], storebuf[4096], root[4096];
	int r = cli_abspath(argv[optind], mnt, sizeof mnt);
	if (r) {
		fprintf(stderr, "seekfs umount: %s: %s\n", argv[optind], strerror(-r));
		return 1;
	}
	/* the path as written first: realpath would ask the file system, which
	 * may be the one that hangs */
	if (mount_kind(mnt) != 1 && realpath(mnt, real))
		snprintf(mnt, sizeof mnt, "%s", real);
	if (mount_kind(mnt) != 1) {
		fprintf(stderr, "seekfs umount: %s is not a seekfs mount\n", mnt);
		return 1;
	}
	pid_t pid = 0;
	if (!cli_abspath(cli_store_dir(store_opt, storebuf, sizeof storebuf), root, sizeof root))
		pid = pidfile_read(root, mnt);
	if (!pid) {
		/* another store: the mount itself says which process serves it */
		char p[PATH_MAX + 16], line[32] = "";
		snprintf(p, sizeof p, "%s/status/pid", mnt);
		FILE *f = fopen(p, "r");
		if (f && fgets(line, sizeof line, f))
			pid = (pid_t)strtol(line, NULL, 10);
		if (f)
			fclose(f);
	}
	if ((r = unmount(mnt, lazy))) {
		if (r > 0 && !lazy)
			fprintf(stderr, "seekfs umount: %s could not be unmounted; if it is busy, close "
					"the files open under it, or use -l\n", mnt);
		return 1;
	}
	double t0 = now_s();
	while (mount_kind(mnt) == 1 && now_s() - t0 < UMOUNT_WAIT_S)
		usleep(50 * 1000);
	if (mount_kind(mnt) == 1) {
		fprintf(stderr, "seekfs umount: %s is still mounted after %d s\n", mnt, UMOUNT_WAIT_S);
		return 1;
	}
	while (pid && daemon_alive(pid) && now_s() - t0 < UMOUNT_WAIT_S)
		usleep(50 * 1000);
	if (pid && daemon_alive(pid)) {
		fprintf(stderr, "seekfs umount: %s is unmounted, but its daemon (pid %ld) is still "
				"finishing after %d s (see %s/seekfs.log)\n",
			mnt, (long)pid, UMOUNT_WAIT_S, root);
		return 1;
	}
	return 0;
}
