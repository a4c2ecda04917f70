/*
 * The FUSE layer's life cycle, as `seekfs mount` drives it (fs/mount.c).
 * What the daemon calls of the FUSE layer, and the FUSE layer of the
 * daemon, is in fs/daemon.h.
 *
 * Order: mount_open (mounts; starts no thread, so the process may fork
 * after it), daemon_start, mount_set_daemon, mount_loop (until unmounted
 * or a signal), mount_unmount (the mount point is free at once), then
 * daemon_stop (which may take a while), then mount_close.
 */
#ifndef SEEKFS_MOUNT_H
#define SEEKFS_MOUNT_H

#include <stddef.h>

#include "fs/daemon.h"

struct mount_opts {
	const struct store_paths *store;
	const char *mountpoint;  /* absolute */
	const char *options;     /* extra mount options, "a,b=c" (may be NULL) */
	int debug;               /* libfuse's request log on stderr */
	int max_idle_threads;    /* FUSE threads kept waiting (0: 10) */
	int max_threads;         /* FUSE threads at most (0: libfuse's default) */
};

/* Create the FUSE session over o->store, install the SIGINT/SIGTERM/SIGHUP
 * handlers that end mount_loop, and mount it at o->mountpoint. 0, or a
 * negative errno with err saying what failed; *out is then NULL. */
int mount_open(const struct mount_opts *o, struct mount **out, char *err, size_t errsz);
/* The daemon the callbacks hand work to; set before mount_loop. Until it
 * is set, files behave as with no daemon (no query is ever running). */
void mount_set_daemon(struct mount *m, struct daemon *d);
/* Serve requests on this thread and a pool of FUSE threads until the file
 * system is unmounted (fusermount3 -u) or a signal ends it. 0, a negative
 * errno, or the number of the signal that ended it. Call it on the thread
 * that is to receive SIGINT/SIGTERM: threads the daemon starts should
 * have those signals blocked. */
int mount_loop(struct mount *m);
/* After mount_loop: answer the reads still waiting at the end of a
 * NAME.stream (EIO) and unmount, unless already unmounted. From here on
 * the daemon's mount_* calls do nothing. */
void mount_unmount(struct mount *m);
/* After daemon_stop: unmount if still mounted, and free m. */
void mount_close(struct mount *m);

#endif
