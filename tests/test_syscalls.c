/*
 * test_syscalls: POSIX behaviour of a mounted seekfs docs/ folder, one
 * system call at a time, in the spirit of libfuse's test/test_syscalls.c.
 *
 *   test_syscalls MNT/docs STORE/docs
 *
 * MNT/docs is the mounted passthrough folder, STORE/docs the folder behind
 * it: what is done through the mount is checked there too, and the other
 * way round. tests/test_syscalls.sh mounts a fresh store (with -o
 * allow_other, for the checks run as another user) and runs this.
 *
 * Every check prints its name and "ok" or "FAILED"; a failure prints the
 * line, the call, what was expected and what came. Exit 0: all passed,
 * 1: a check failed, 2: bad arguments.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- reporting ---------------------------------------------------------- */

static const char *mnt_root, *back_root; /* MNT/docs, STORE/docs */
static char cur_dir[64];                 /* the running check's folder under both */
static int cur_failed, n_failed, n_run;

static void fail_at(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_at(int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("    FAIL test_syscalls.c:%d: ", line);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	cur_failed = 1;
}

/* call succeeds (returns >= 0); its result */
static long ok_(long r, int line, const char *what)
{
	int e = errno;
	if (r < 0)
		fail_at(line, "%s: expected success, got %ld (%s)", what, r, strerror(e));
	errno = e;
	return r;
}
#define OK(call) ok_((long)(call), __LINE__, #call)

/* call fails with errno want */
static void err_(long r, int want, int line, const char *what, const char *wname)
{
	int e = errno;
	if (r != -1)
		fail_at(line, "%s: expected -1 with %s, got %ld", what, wname, r);
	else if (e != want)
		fail_at(line, "%s: expected %s, got %s", what, wname, strerror(e));
}
#define ERR(call, E) (errno = 0, err_((long)(call), E, __LINE__, #call, #E))

static void eq_(long long got, long long want, int line, const char *what)
{
	if (got != want)
		fail_at(line, "%s: expected %lld (%#llo), got %lld (%#llo)", what, want, want, got, got);
}
#define EQ(got, want) eq_((long long)(got), (long long)(want), __LINE__, #got)

/* a condition, with a message; CHECKF: with a format and arguments */
#define CHECK(cond, msg)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			fail_at(__LINE__, "%s: %s", #cond, msg);               \
	} while (0)
#define CHECKF(cond, fmt, ...)                                                 \
	do {                                                                   \
		if (!(cond))                                                   \
			fail_at(__LINE__, "%s: " fmt, #cond, __VA_ARGS__);     \
	} while (0)

/* ---- paths and files ---------------------------------------------------- */

/* MNT/docs/<check>/rel and STORE/docs/<check>/rel (rel "" : the folder);
 * eight rotating buffers each. */
static const char *path_in(const char *root, const char *rel)
{
	static char buf[8][PATH_MAX];
	static int k;
	char *p = buf[k++ & 7];
	snprintf(p, PATH_MAX, "%s/%s%s%s", root, cur_dir, *rel ? "/" : "", rel);
	return p;
}
static const char *M(const char *rel) { return path_in(mnt_root, rel); }
static const char *B(const char *rel) { return path_in(back_root, rel); }

static int put(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	ssize_t n = len ? write(fd, data, len) : 0;
	int e = errno;
	if (close(fd) || n != (ssize_t)len) {
		errno = n < 0 ? e : EIO;
		return -1;
	}
	return 0;
}
#define PUT(path, str) OK(put(path, str, strlen(str)))

/* The whole file (malloc'ed, NUL-terminated) and its length, or NULL. */
static char *get(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *b = malloc(cap + 1);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			b = realloc(b, cap + 1);
		}
		ssize_t r = read(fd, b + n, cap - n);
		if (r < 0) {
			free(b);
			close(fd);
			return NULL;
		}
		if (!r)
			break;
		n += (size_t)r;
	}
	close(fd);
	b[n] = 0;
	if (len)
		*len = n;
	return b;
}

/* the file's content is exactly str */
static void content_(const char *path, const char *str, int line)
{
	size_t n;
	char *b = get(path, &n);
	if (!b)
		fail_at(line, "read %s: %s", path, strerror(errno));
	else if (n != strlen(str) || memcmp(b, str, n))
		fail_at(line, "%s: expected \"%s\", got \"%.*s\"", path, str, (int)(n > 200 ? 200 : n), b);
	free(b);
}
#define CONTENT(path, str) content_(path, str, __LINE__)

/* both files hold the same bytes */
static void same_(const char *a, const char *b, int line)
{
	size_t na, nb;
	char *x = get(a, &na), *y = get(b, &nb);
	if (!x || !y)
		fail_at(line, "read %s or %s: %s", a, b, strerror(errno));
	else if (na != nb || memcmp(x, y, na))
		fail_at(line, "%s (%zu bytes) and %s (%zu bytes) differ", a, na, b, nb);
	free(x);
	free(y);
}
#define SAME(a, b) same_(a, b, __LINE__)

static struct stat st_of(const char *path, int follow)
{
	struct stat st;
	memset(&st, 0xff, sizeof st);
	if (follow ? stat(path, &st) : lstat(path, &st))
		memset(&st, 0, sizeof st);
	return st;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void fill(unsigned char *b, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (unsigned char)x;
	}
}

/* ---- the checks ---------------------------------------------------------- */

static void t_open_flags(void)
{
	int fd = (int)OK(open(M("a"), O_CREAT | O_EXCL | O_WRONLY, 0644));
	EQ(write(fd, "hello world", 11), 11);
	close(fd);
	ERR(open(M("a"), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
	ERR(open(M("a"), O_CREAT | O_EXCL | O_RDONLY, 0644), EEXIST);
	ERR(open(M("missing"), O_RDONLY), ENOENT);
	ERR(open(M("a"), O_RDONLY | O_DIRECTORY), ENOTDIR);
	ERR(open(M("a/x"), O_RDONLY), ENOTDIR);
	OK(mkdir(M("d"), 0755));
	ERR(open(M("d"), O_WRONLY), EISDIR);
	ERR(open(M("d"), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
	/* O_CREAT without O_EXCL opens what is there */
	fd = (int)OK(open(M("a"), O_CREAT | O_RDWR, 0600));
	EQ(lseek(fd, 0, SEEK_END), 11);
	close(fd);
	EQ(st_of(M("a"), 1).st_mode & 07777, 0644);
	/* access modes */
	char c;
	fd = (int)OK(open(M("a"), O_RDONLY));
	ERR(write(fd, "x", 1), EBADF);
	close(fd);
	fd = (int)OK(open(M("a"), O_WRONLY));
	ERR(read(fd, &c, 1), EBADF);
	close(fd);
	/* O_TRUNC empties, through the mount and behind it */
	fd = (int)OK(open(M("a"), O_WRONLY | O_TRUNC));
	struct stat st;
	OK(fstat(fd, &st));
	EQ(st.st_size, 0);
	EQ(st_of(B("a"), 1).st_size, 0);
	EQ(write(fd, "xy", 2), 2);
	close(fd);
	CONTENT(M("a"), "xy");
	/* O_APPEND: every write goes to the end, whatever the offset */
	fd = (int)OK(open(M("a"), O_WRONLY | O_APPEND));
	EQ(write(fd, "abc", 3), 3);
	EQ(lseek(fd, 0, SEEK_CUR), 5);
	EQ(pwrite(fd, "def", 3, 0), 3); /* Linux: pwrite appends on O_APPEND */
	EQ(lseek(fd, 0, SEEK_SET), 0);
	EQ(write(fd, "gh", 2), 2);
	close(fd);
	CONTENT(M("a"), "xyabcdefgh");
	CONTENT(B("a"), "xyabcdefgh");
	/* two descriptors appending in turn */
	int f1 = (int)OK(open(M("log"), O_CREAT | O_WRONLY | O_APPEND, 0644));
	int f2 = (int)OK(open(M("log"), O_WRONLY | O_APPEND));
	for (int i = 0; i < 10; i++) {
		EQ(write(i & 1 ? f2 : f1, i & 1 ? "2" : "1", 1), 1);
	}
	close(f1);
	close(f2);
	CONTENT(M("log"), "1212121212");
	/* O_NOFOLLOW, and O_EXCL on a dangling symlink */
	OK(symlink("nowhere", M("dangling")));
	ERR(open(M("dangling"), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
	ERR(open(M("dangling"), O_RDONLY | O_NOFOLLOW), ELOOP);
	EQ(access(B("nowhere"), F_OK), -1);
	/* O_CREAT through a dangling symlink creates its target */
	fd = (int)OK(open(M("dangling"), O_CREAT | O_WRONLY, 0644));
	close(fd);
	EQ(access(B("nowhere"), F_OK), 0);
}

static void t_read_write(void)
{
	int fd = (int)OK(open(M("f"), O_CREAT | O_RDWR | O_TRUNC, 0644));
	char buf[64];
	EQ(pwrite(fd, "0123456789", 10, 0), 10);
	EQ(pwrite(fd, "AB", 2, 4), 2);
	memset(buf, 0, sizeof buf);
	EQ(pread(fd, buf, sizeof buf, 0), 10);
	CHECKF(!memcmp(buf, "0123AB6789", 10), "got %s", buf);
	/* a write past the end leaves zeros between */
	EQ(pwrite(fd, "Z", 1, 20), 1);
	memset(buf, 1, sizeof buf);
	EQ(pread(fd, buf, sizeof buf, 0), 21);
	int zeros = 1;
	for (int i = 10; i < 20; i++)
		zeros &= buf[i] == 0;
	CHECK(zeros && buf[20] == 'Z', "the gap is not zeros");
	EQ(pread(fd, buf, 8, 100), 0);
	EQ(pread(fd, buf, 8, 18), 3);
	/* read and write move the offset */
	EQ(lseek(fd, 0, SEEK_SET), 0);
	EQ(read(fd, buf, 5), 5);
	CHECK(!memcmp(buf, "0123A", 5), "first read");
	EQ(read(fd, buf, 5), 5);
	CHECK(!memcmp(buf, "B6789", 5), "second read");
	EQ(lseek(fd, 0, SEEK_CUR), 10);
	EQ(lseek(fd, 0, SEEK_END), 21);
	EQ(write(fd, "!", 1), 1);
	EQ(lseek(fd, -2, SEEK_CUR), 20);
	EQ(read(fd, buf, 8), 2);
	CHECK(!memcmp(buf, "Z!", 2), "read after write at the end");
	EQ(read(fd, buf, 8), 0);
	ERR(lseek(fd, -100, SEEK_SET), EINVAL);
	/* writes are in the backing file as soon as write returns */
	struct stat st;
	OK(stat(B("f"), &st));
	EQ(st.st_size, 22);
	close(fd);

	/* 3 MiB in odd pieces at an odd offset: several FUSE requests each */
	size_t n = 3u << 20;
	off_t at = 12345;
	unsigned char *src = malloc(n), *dst = malloc(n);
	fill(src, n, 7);
	fd = (int)OK(open(M("big"), O_CREAT | O_RDWR | O_TRUNC, 0644));
	for (size_t o = 0; o < n;) {
		size_t piece = 100003 + (o % 3) * 70001;
		if (piece > n - o)
			piece = n - o;
		ssize_t w = pwrite(fd, src + o, piece, at + (off_t)o);
		if (w <= 0) {
			fail_at(__LINE__, "pwrite at %lld: %s", (long long)(at + (off_t)o), strerror(errno));
			break;
		}
		o += (size_t)w;
	}
	OK(fstat(fd, &st));
	EQ(st.st_size, at + (off_t)n);
	memset(dst, 0, n);
	EQ(pread(fd, dst, n, at), (long long)n);
	CHECK(!memcmp(src, dst, n), "3 MiB read back differs");
	close(fd);
	int bfd = (int)OK(open(B("big"), O_RDONLY));
	memset(dst, 0, n);
	EQ(pread(bfd, dst, n, at), (long long)n);
	CHECK(!memcmp(src, dst, n), "3 MiB in the backing file differs");
	close(bfd);
	free(src);
	free(dst);

	/* O_DIRECT with an aligned buffer */
	void *al;
	if (posix_memalign(&al, 4096, 65536) == 0) {
		fill(al, 65536, 9);
		fd = (int)OK(open(M("direct"), O_CREAT | O_RDWR | O_DIRECT, 0644));
		EQ(pwrite(fd, al, 65536, 4096), 65536);
		void *rd;
		if (posix_memalign(&rd, 4096, 65536) == 0) {
			EQ(pread(fd, rd, 65536, 4096), 65536);
			CHECK(!memcmp(al, rd, 65536), "O_DIRECT read differs");
			free(rd);
		}
		close(fd);
		size_t bl;
		char *b = get(B("direct"), &bl);
		CHECK(b && bl == 4096 + 65536 && !memcmp(b + 4096, al, 65536),
		      "O_DIRECT write in the backing file");
		free(b);
		free(al);
	}

	/* copy_file_range and fallocate on mounted files */
	int in = (int)OK(open(M("big"), O_RDONLY));
	int out = (int)OK(open(M("copy"), O_CREAT | O_RDWR | O_TRUNC, 0644));
	off_t oi = at, oo = 0;
	size_t left = 1 << 20;
	while (left) {
		ssize_t c = copy_file_range(in, &oi, out, &oo, left, 0);
		if (c <= 0) {
			fail_at(__LINE__, "copy_file_range: %zd (%s)", c, strerror(errno));
			break;
		}
		left -= (size_t)c;
	}
	src = malloc(1 << 20);
	dst = malloc(1 << 20);
	fill(src, 1 << 20, 7);
	EQ(pread(out, dst, 1 << 20, 0), 1 << 20);
	CHECK(!memcmp(src, dst, 1 << 20), "copy_file_range copied other bytes");
	OK(fallocate(out, 0, 0, 2 << 20));
	OK(fstat(out, &st));
	EQ(st.st_size, 2 << 20);
	OK(fallocate(out, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192));
	EQ(pread(out, dst, 8192, 4096), 8192);
	int z = 1;
	for (int i = 0; i < 8192; i++)
		z &= dst[i] == 0;
	CHECK(z, "a punched hole reads as zeros");
	OK(fstat(out, &st));
	EQ(st.st_size, 2 << 20);
	close(in);
	close(out);
	free(src);
	free(dst);
}

static void t_sparse_4g(void)
{
	int fd = (int)OK(open(M("sparse"), O_CREAT | O_RDWR | O_TRUNC, 0644));
	const off_t big = (off_t)5 << 30;
	char buf[1024];
	EQ(pwrite(fd, "end", 3, big), 3);
	struct stat st;
	OK(fstat(fd, &st));
	EQ(st.st_size, big + 3);
	CHECKF(st.st_blocks < 1024, "%lld blocks", (long long)st.st_blocks);
	memset(buf, 1, sizeof buf);
	EQ(pread(fd, buf, 4, big - 1), 4);
	CHECK(buf[0] == 0 && !memcmp(buf + 1, "end", 3), "the bytes at 5 GiB");
	/* a write across the 4 GiB boundary, a read of a hole across it */
	const off_t g4 = (off_t)4 << 30;
	EQ(pwrite(fd, "ABCD", 4, g4 - 2), 4);
	memset(buf, 1, sizeof buf);
	EQ(pread(fd, buf, 6, g4 - 3), 6);
	CHECK(!memcmp(buf, "\0ABCD\0", 6), "the bytes across 4 GiB");
	memset(buf, 1, sizeof buf);
	EQ(pread(fd, buf, sizeof buf, g4 + 4096 - 512), (long long)sizeof buf);
	int z = 1;
	for (size_t i = 0; i < sizeof buf; i++)
		z &= buf[i] == 0;
	CHECK(z, "a hole above 4 GiB reads as zeros");
	EQ(pread(fd, buf, 4, 12345), 4);
	CHECK(!buf[0] && !buf[3], "a hole at the start reads as zeros");
	off_t d = lseek(fd, 0, SEEK_DATA);
	CHECKF(d >= g4 - 4096 && d <= g4 - 2, "SEEK_DATA from 0: %lld", (long long)d);
	EQ(lseek(fd, 0, SEEK_HOLE), 0);
	ERR(lseek(fd, big + 3, SEEK_DATA), ENXIO);
	close(fd);
	/* the backing file: same size, same bytes, still sparse */
	OK(stat(B("sparse"), &st));
	EQ(st.st_size, big + 3);
	CHECKF(st.st_blocks < 1024, "%lld blocks behind the mount", (long long)st.st_blocks);
	int bfd = (int)OK(open(B("sparse"), O_RDONLY));
	EQ(pread(bfd, buf, 3, big), 3);
	CHECK(!memcmp(buf, "end", 3), "the backing file's bytes at 5 GiB");
	EQ(pread(bfd, buf, 4, g4 - 2), 4);
	CHECK(!memcmp(buf, "ABCD", 4), "the backing file's bytes at 4 GiB");
	close(bfd);
	/* shrink it below 4 GiB again */
	OK(truncate(M("sparse"), 10));
	EQ(st_of(M("sparse"), 1).st_size, 10);
	EQ(st_of(B("sparse"), 1).st_size, 10);
	/* grow past 4 GiB with truncate alone */
	OK(truncate(M("sparse"), g4 + 1));
	EQ(st_of(M("sparse"), 1).st_size, g4 + 1);
	fd = (int)OK(open(M("sparse"), O_RDONLY));
	memset(buf, 1, 2);
	EQ(pread(fd, buf, 2, g4 - 1), 2);
	CHECK(!buf[0] && !buf[1], "zeros after growing with truncate");
	close(fd);
}

static void t_truncate(void)
{
	PUT(M("t"), "abcdefghij");
	OK(truncate(M("t"), 4));
	EQ(st_of(M("t"), 1).st_size, 4);
	EQ(st_of(B("t"), 1).st_size, 4);
	CONTENT(M("t"), "abcd");
	OK(truncate(M("t"), 8192));
	EQ(st_of(M("t"), 1).st_size, 8192);
	size_t n;
	char *b = get(M("t"), &n);
	int z = b && n == 8192 && !memcmp(b, "abcd", 4);
	for (size_t i = 4; z && i < n; i++)
		z &= b[i] == 0;
	CHECK(z, "grown by truncate: abcd then zeros");
	free(b);
	int fd = (int)OK(open(M("t"), O_RDWR));
	OK(ftruncate(fd, 2));
	struct stat st;
	OK(fstat(fd, &st));
	EQ(st.st_size, 2);
	EQ(st_of(B("t"), 1).st_size, 2);
	OK(ftruncate(fd, 100000));
	OK(fstat(fd, &st));
	EQ(st.st_size, 100000);
	char c = 1;
	EQ(pread(fd, &c, 1, 99999), 1);
	EQ(c, 0);
	/* write after shrinking below the offset: a hole again */
	OK(ftruncate(fd, 0));
	EQ(pwrite(fd, "q", 1, 3), 1);
	close(fd);
	b = get(M("t"), &n);
	CHECK(b && n == 4 && !memcmp(b, "\0\0\0q", 4), "write after truncate to 0");
	free(b);
	ERR(truncate(M("t"), -1), EINVAL);
	OK(mkdir(M("dir"), 0755));
	ERR(truncate(M("dir"), 0), EISDIR);
	ERR(truncate(M("none"), 0), ENOENT);
	fd = (int)OK(open(M("t"), O_RDONLY));
	long r = ftruncate(fd, 0);
	CHECKF(r == -1 && (errno == EINVAL || errno == EBADF),
	       "ftruncate on a read-only descriptor: %ld (%s)", r, strerror(errno));
	close(fd);
}

static void t_stat(void)
{
	int fd = (int)OK(open(M("s"), O_CREAT | O_WRONLY | O_TRUNC, 0666));
	EQ(write(fd, "12345", 5), 5);
	close(fd);
	struct stat st = st_of(M("s"), 0), bst = st_of(B("s"), 0);
	EQ(st.st_mode, S_IFREG | 0644); /* umask 022 */
	EQ(st.st_nlink, 1);
	EQ(st.st_uid, geteuid());
	EQ(st.st_gid, getegid());
	EQ(st.st_size, 5);
	EQ(st.st_ino, bst.st_ino);
	EQ(bst.st_mode, S_IFREG | 0644);
	EQ(bst.st_uid, geteuid());
	CHECKF(st.st_blksize > 0, "%ld", (long)st.st_blksize);
	EQ(st.st_mtim.tv_sec, bst.st_mtim.tv_sec);
	EQ(st.st_mtim.tv_nsec, bst.st_mtim.tv_nsec);
	/* a folder, and its link count as the backing file system has it */
	OK(mkdir(M("d"), 0777));
	st = st_of(M("d"), 0);
	EQ(st.st_mode, S_IFDIR | 0755);
	OK(mkdir(M("d/sub"), 0777));
	st = st_of(M("d"), 0);
	bst = st_of(B("d"), 0);
	EQ(st.st_nlink, bst.st_nlink);
	EQ(st.st_ino, bst.st_ino);
	/* fstat agrees with stat */
	fd = (int)OK(open(M("s"), O_RDONLY));
	struct stat fst;
	OK(fstat(fd, &fst));
	st = st_of(M("s"), 1);
	EQ(fst.st_ino, st.st_ino);
	EQ(fst.st_size, st.st_size);
	EQ(fst.st_mode, st.st_mode);
	close(fd);
	/* a write updates mtime and ctime (set far back first) */
	struct timespec old[2] = {{1000000, 0}, {1000000, 0}};
	OK(utimensat(AT_FDCWD, M("s"), old, 0));
	st = st_of(M("s"), 1);
	EQ(st.st_mtim.tv_sec, 1000000);
	double t0 = now_s();
	fd = (int)OK(open(M("s"), O_WRONLY));
	EQ(write(fd, "x", 1), 1);
	OK(fstat(fd, &fst));
	close(fd);
	st = st_of(M("s"), 1);
	bst = st_of(B("s"), 1);
	CHECKF(st.st_mtim.tv_sec >= (time_t)t0 - 2, "mtime after a write: %lld, now %.0f",
	       (long long)st.st_mtim.tv_sec, t0);
	CHECKF(fst.st_mtim.tv_sec >= (time_t)t0 - 2, "fstat's mtime after a write: %lld, now %.0f",
	       (long long)fst.st_mtim.tv_sec, t0);
	CHECKF(st.st_ctim.tv_sec >= (time_t)t0 - 2, "ctime after a write: %lld, now %.0f",
	       (long long)st.st_ctim.tv_sec, t0);
	EQ(st.st_mtim.tv_sec, bst.st_mtim.tv_sec);
	EQ(st.st_mtim.tv_nsec, bst.st_mtim.tv_nsec);
	/* ... and so does a truncate */
	OK(utimensat(AT_FDCWD, M("s"), old, 0));
	OK(truncate(M("s"), 2));
	st = st_of(M("s"), 1);
	CHECKF(st.st_mtim.tv_sec >= (time_t)t0 - 2, "mtime after truncate: %lld",
	       (long long)st.st_mtim.tv_sec);
	/* a name made in a folder changes the folder's mtime */
	OK(utimensat(AT_FDCWD, M("d"), old, 0));
	PUT(M("d/new"), "n");
	st = st_of(M("d"), 1);
	CHECKF(st.st_mtim.tv_sec >= (time_t)t0 - 2, "folder mtime after a create: %lld",
	       (long long)st.st_mtim.tv_sec);
}

static void t_utimens(void)
{
	PUT(M("u"), "u");
	struct timespec ts[2] = {{1000000, 5}, {2000000, 7}};
	OK(utimensat(AT_FDCWD, M("u"), ts, 0));
	struct stat st = st_of(M("u"), 1), bst = st_of(B("u"), 1);
	EQ(st.st_atim.tv_sec, 1000000);
	EQ(st.st_atim.tv_nsec, 5);
	EQ(st.st_mtim.tv_sec, 2000000);
	EQ(st.st_mtim.tv_nsec, 7);
	EQ(bst.st_atim.tv_sec, 1000000);
	EQ(bst.st_mtim.tv_sec, 2000000);
	/* UTIME_OMIT keeps, UTIME_NOW sets the time of the call */
	struct timespec t2[2] = {{0, UTIME_OMIT}, {3000000, 0}};
	OK(utimensat(AT_FDCWD, M("u"), t2, 0));
	st = st_of(M("u"), 1);
	EQ(st.st_atim.tv_sec, 1000000);
	EQ(st.st_mtim.tv_sec, 3000000);
	double t0 = now_s();
	struct timespec t3[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
	OK(utimensat(AT_FDCWD, M("u"), t3, 0));
	st = st_of(M("u"), 1);
	CHECKF(st.st_atim.tv_sec >= (time_t)t0 - 2 && st.st_atim.tv_sec <= (time_t)t0 + 2,
	       "atime after UTIME_NOW: %lld, now %.0f", (long long)st.st_atim.tv_sec, t0);
	EQ(st.st_mtim.tv_sec, 3000000);
	struct timespec t4[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
	OK(utimensat(AT_FDCWD, M("u"), t4, 0));
	st = st_of(M("u"), 1);
	CHECKF(st.st_mtim.tv_sec >= (time_t)t0 - 2, "mtime after UTIME_NOW: %lld",
	       (long long)st.st_mtim.tv_sec);
	/* NULL: both now; futimens on a descriptor */
	OK(utimensat(AT_FDCWD, M("u"), ts, 0));
	OK(utimensat(AT_FDCWD, M("u"), NULL, 0));
	st = st_of(M("u"), 1);
	CHECKF(st.st_atim.tv_sec >= (time_t)t0 - 2 && st.st_mtim.tv_sec >= (time_t)t0 - 2,
	       "times after utimensat(NULL): %lld %lld", (long long)st.st_atim.tv_sec,
	       (long long)st.st_mtim.tv_sec);
	int fd = (int)OK(open(M("u"), O_RDONLY));
	OK(futimens(fd, ts));
	close(fd);
	st = st_of(M("u"), 1);
	EQ(st.st_mtim.tv_sec, 2000000);
	/* a symlink's own times, not its target's (AT_SYMLINK_NOFOLLOW) */
	OK(symlink("u", M("link")));
	struct timespec tl[2] = {{4000000, 0}, {5000000, 0}};
	OK(utimensat(AT_FDCWD, M("link"), tl, AT_SYMLINK_NOFOLLOW));
	st = st_of(M("link"), 0);
	EQ(st.st_mtim.tv_sec, 5000000);
	EQ(st_of(B("link"), 0).st_mtim.tv_sec, 5000000);
	EQ(st_of(M("u"), 1).st_mtim.tv_sec, 2000000);
	EQ(st_of(B("u"), 1).st_mtim.tv_sec, 2000000);
	/* times of a folder */
	OK(mkdir(M("d"), 0755));
	OK(utimensat(AT_FDCWD, M("d"), ts, 0));
	EQ(st_of(M("d"), 1).st_mtim.tv_sec, 2000000);
}

static void t_chmod_chown(void)
{
	PUT(M("c"), "c");
	OK(chmod(M("c"), 0600));
	EQ(st_of(M("c"), 1).st_mode & 07777, 0600);
	EQ(st_of(B("c"), 1).st_mode & 07777, 0600);
	int fd = (int)OK(open(M("c"), O_RDWR));
	OK(fchmod(fd, 0640));
	EQ(st_of(M("c"), 1).st_mode & 07777, 0640);
	OK(fchmod(fd, 04755));
	EQ(st_of(B("c"), 1).st_mode & 07777, 04755);
	OK(chmod(M("c"), 0640));
	close(fd);
	if (geteuid() == 0) {
		OK(chown(M("c"), 12, 34));
		struct stat st = st_of(M("c"), 1), bst = st_of(B("c"), 1);
		EQ(st.st_uid, 12);
		EQ(st.st_gid, 34);
		EQ(bst.st_uid, 12);
		EQ(bst.st_gid, 34);
		OK(chown(M("c"), (uid_t)-1, 56));
		st = st_of(M("c"), 1);
		EQ(st.st_uid, 12);
		EQ(st.st_gid, 56);
		fd = (int)OK(open(M("c"), O_RDONLY));
		OK(fchown(fd, 78, (gid_t)-1));
		close(fd);
		EQ(st_of(B("c"), 1).st_uid, 78);
		/* lchown changes the link, not its target */
		OK(symlink("c", M("l")));
		OK(lchown(M("l"), 90, 91));
		EQ(st_of(M("l"), 0).st_uid, 90);
		EQ(st_of(B("l"), 0).st_gid, 91);
		EQ(st_of(M("c"), 1).st_uid, 78);
		/* chown of a setuid file as root keeps it only where Linux does */
		OK(chmod(M("c"), 0755));
	}
	OK(mkdir(M("d"), 0755));
	OK(chmod(M("d"), 0700));
	EQ(st_of(M("d"), 1).st_mode, S_IFDIR | 0700);
	ERR(chmod(M("none"), 0600), ENOENT);
}

static void t_dirs(void)
{
	OK(mkdir(M("d"), 0755));
	ERR(mkdir(M("d"), 0755), EEXIST);
	ERR(rmdir(M("none")), ENOENT);
	PUT(M("f"), "f");
	ERR(mkdir(M("f/x"), 0755), ENOTDIR);
	ERR(rmdir(M("f")), ENOTDIR);
	ERR(unlink(M("d")), EISDIR);
	/* nested */
	OK(mkdir(M("a"), 0755));
	OK(mkdir(M("a/b"), 0755));
	OK(mkdir(M("a/b/c"), 0755));
	OK(mkdir(M("a/b/c/d"), 0755));
	OK(mkdir(M("a/b/c/d/e"), 0755));
	PUT(M("a/b/c/d/e/deep.txt"), "deep");
	CONTENT(B("a/b/c/d/e/deep.txt"), "deep");
	ERR(rmdir(M("a")), ENOTEMPTY);
	ERR(rmdir(M("a/b/c/d/e")), ENOTEMPTY);
	EQ(st_of(M("a/b/c"), 0).st_mode & S_IFMT, S_IFDIR);
	/* a folder moved: what is below it moves with it */
	OK(rename(M("a"), M("z")));
	CONTENT(M("z/b/c/d/e/deep.txt"), "deep");
	CONTENT(B("z/b/c/d/e/deep.txt"), "deep");
	ERR(access(M("a/b"), F_OK), ENOENT);
	EQ(access(B("a"), F_OK), -1);
	/* deeper through the moved folder */
	OK(mkdir(M("z/b/c/d/e/f"), 0755));
	PUT(M("z/b/c/d/e/f/g.txt"), "g");
	CONTENT(B("z/b/c/d/e/f/g.txt"), "g");
	/* a folder made behind the mount is there */
	OK(mkdir(B("behind"), 0755));
	PUT(B("behind/x"), "x");
	CONTENT(M("behind/x"), "x");
	/* empty it bottom-up */
	OK(unlink(M("z/b/c/d/e/f/g.txt")));
	OK(rmdir(M("z/b/c/d/e/f")));
	OK(unlink(M("z/b/c/d/e/deep.txt")));
	const char *lv[] = {"z/b/c/d/e", "z/b/c/d", "z/b/c", "z/b", "z"};
	for (int i = 0; i < 5; i++)
		OK(rmdir(M(lv[i])));
	EQ(access(B("z"), F_OK), -1);
	OK(rmdir(M("d")));
	ERR(rmdir(M("d")), ENOENT);
	/* rmdir of "." */
	OK(mkdir(M("dot"), 0755));
	ERR(rmdir(M("dot/.")), EINVAL);
}

static void t_rename(void)
{
	/* over a file: the target is replaced, the source gone */
	PUT(M("a"), "AAA");
	PUT(M("b"), "B");
	OK(rename(M("a"), M("b")));
	CONTENT(M("b"), "AAA");
	CONTENT(B("b"), "AAA");
	ERR(access(M("a"), F_OK), ENOENT);
	EQ(access(B("a"), F_OK), -1);
	/* into a folder */
	OK(mkdir(M("d1"), 0755));
	OK(rename(M("b"), M("d1/b2")));
	CONTENT(B("d1/b2"), "AAA");
	/* to itself */
	OK(rename(M("d1/b2"), M("d1/b2")));
	CONTENT(M("d1/b2"), "AAA");
	/* folders: over an empty one, not over a full one */
	OK(mkdir(M("d2"), 0755));
	PUT(M("d2/x"), "x");
	OK(mkdir(M("e2"), 0755));
	OK(rename(M("d2"), M("e2")));
	ERR(access(M("d2"), F_OK), ENOENT);
	CONTENT(M("e2/x"), "x");
	OK(rename(M("e2"), M("d2")));
	OK(mkdir(M("d3"), 0755));
	ERR(rename(M("d3"), M("d1")), ENOTEMPTY);
	OK(mkdir(M("empty"), 0755));
	OK(rename(M("d3"), M("empty")));
	EQ(access(B("d3"), F_OK), -1);
	EQ(st_of(B("empty"), 1).st_mode & S_IFMT, S_IFDIR);
	/* a file over a folder, a folder over a file, a folder into itself */
	PUT(M("f"), "f");
	ERR(rename(M("f"), M("empty")), EISDIR);
	ERR(rename(M("empty"), M("f")), ENOTDIR);
	ERR(rename(M("d2"), M("d2/in")), EINVAL);
	ERR(rename(M("none"), M("f2")), ENOENT);
	/* RENAME_NOREPLACE */
	PUT(M("p"), "P");
	PUT(M("q"), "QQ");
	ERR(renameat2(AT_FDCWD, M("p"), AT_FDCWD, M("q"), RENAME_NOREPLACE), EEXIST);
	CONTENT(M("p"), "P");
	CONTENT(M("q"), "QQ");
	OK(renameat2(AT_FDCWD, M("p"), AT_FDCWD, M("p2"), RENAME_NOREPLACE));
	CONTENT(M("p2"), "P");
	CONTENT(B("p2"), "P");
	/* RENAME_EXCHANGE: files, a file and a folder, a missing target */
	OK(renameat2(AT_FDCWD, M("p2"), AT_FDCWD, M("q"), RENAME_EXCHANGE));
	CONTENT(M("p2"), "QQ");
	CONTENT(M("q"), "P");
	CONTENT(B("p2"), "QQ");
	CONTENT(B("q"), "P");
	OK(renameat2(AT_FDCWD, M("q"), AT_FDCWD, M("d2"), RENAME_EXCHANGE));
	CONTENT(M("d2"), "P");
	CONTENT(M("q/x"), "x");
	CONTENT(B("q/x"), "x");
	ERR(renameat2(AT_FDCWD, M("p2"), AT_FDCWD, M("missing"), RENAME_EXCHANGE), ENOENT);
	ERR(renameat2(AT_FDCWD, M("p2"), AT_FDCWD, M("q"), RENAME_EXCHANGE | RENAME_NOREPLACE),
	    EINVAL);
	/* an open file renamed: its descriptor follows it */
	int fd = (int)OK(open(M("p2"), O_RDWR));
	OK(rename(M("p2"), M("d1/moved")));
	EQ(pwrite(fd, "ZZ", 2, 0), 2);
	close(fd);
	CONTENT(M("d1/moved"), "ZZ");
	CONTENT(B("d1/moved"), "ZZ");
	/* a hard link renamed over its other name: nothing happens */
	OK(link(M("d1/moved"), M("hl")));
	OK(rename(M("hl"), M("d1/moved")));
	EQ(access(M("hl"), F_OK), 0);
	EQ(access(M("d1/moved"), F_OK), 0);
	/* a rename made behind the mount is seen */
	OK(rename(B("f"), B("f-behind")));
	CONTENT(M("f-behind"), "f");
}

static void t_link(void)
{
	PUT(M("a"), "one");
	OK(link(M("a"), M("b")));
	struct stat sa = st_of(M("a"), 1), sb = st_of(M("b"), 1);
	EQ(sa.st_nlink, 2);
	EQ(sb.st_nlink, 2);
	EQ(sa.st_ino, sb.st_ino);
	EQ(st_of(B("a"), 1).st_nlink, 2);
	EQ(st_of(B("a"), 1).st_ino, st_of(B("b"), 1).st_ino);
	/* one file: written through one name, read through the other */
	int fd = (int)OK(open(M("b"), O_WRONLY | O_APPEND));
	EQ(write(fd, " two", 4), 4);
	close(fd);
	CONTENT(M("a"), "one two");
	OK(mkdir(M("d"), 0755));
	OK(link(M("a"), M("d/c")));
	EQ(st_of(M("b"), 1).st_nlink, 3);
	OK(unlink(M("a")));
	EQ(st_of(M("b"), 1).st_nlink, 2);
	CONTENT(M("d/c"), "one two");
	OK(unlink(M("d/c")));
	EQ(st_of(M("b"), 1).st_nlink, 1);
	EQ(st_of(B("b"), 1).st_nlink, 1);
	ERR(link(M("none"), M("x")), ENOENT);
	PUT(M("e"), "e");
	ERR(link(M("b"), M("e")), EEXIST);
	ERR(link(M("d"), M("dlink")), EPERM);
	/* unlink */
	OK(unlink(M("e")));
	ERR(unlink(M("e")), ENOENT);
	EQ(access(B("e"), F_OK), -1);
	/* a name made again after an unlink is a new file */
	PUT(M("e"), "new");
	CONTENT(M("e"), "new");
}

static void t_symlink(void)
{
	PUT(M("target"), "through the link");
	OK(symlink("target", M("sym")));
	char buf[PATH_MAX];
	memset(buf, 0, sizeof buf);
	EQ(readlink(M("sym"), buf, sizeof buf), 6);
	CHECKF(!strcmp(buf, "target"), "readlink: %s", buf);
	memset(buf, 0, sizeof buf);
	EQ(readlink(B("sym"), buf, sizeof buf), 6);
	CHECKF(!strcmp(buf, "target"), "backing readlink: %s", buf);
	struct stat st = st_of(M("sym"), 0);
	CHECKF(S_ISLNK(st.st_mode), "lstat mode %o", st.st_mode);
	EQ(st.st_size, 6);
	EQ(st_of(M("sym"), 1).st_size, 16);
	CONTENT(M("sym"), "through the link");
	/* a short buffer truncates */
	EQ(readlink(M("sym"), buf, 3), 3);
	CHECK(!memcmp(buf, "tar", 3), "readlink into 3 bytes");
	ERR(readlink(M("target"), buf, sizeof buf), EINVAL);
	ERR(symlink("x", M("target")), EEXIST);
	/* dangling */
	OK(symlink("no/such/file", M("dangling")));
	ERR(stat(M("dangling"), &st), ENOENT);
	OK(lstat(M("dangling"), &st));
	/* to a folder, absolute, long */
	OK(mkdir(M("dir"), 0755));
	PUT(M("dir/in"), "in");
	OK(symlink("dir", M("dirlink")));
	CONTENT(M("dirlink/in"), "in");
	char abs[PATH_MAX];
	snprintf(abs, sizeof abs, "%s", M("target"));
	OK(symlink(abs, M("abs")));
	CONTENT(M("abs"), "through the link");
	char lng[1001];
	memset(lng, 'x', 1000);
	lng[1000] = 0;
	for (int i = 100; i < 1000; i += 100)
		lng[i] = '/';
	OK(symlink(lng, M("long")));
	memset(buf, 0, sizeof buf);
	EQ(readlink(M("long"), buf, sizeof buf), 1000);
	CHECK(!strcmp(buf, lng), "a 1000-byte target");
	/* a symlink made behind the mount */
	OK(symlink("target", B("behind")));
	memset(buf, 0, sizeof buf);
	EQ(readlink(M("behind"), buf, sizeof buf), 6);
	/* renamed and unlinked like files, the target untouched */
	OK(rename(M("sym"), M("sym2")));
	CONTENT(M("sym2"), "through the link");
	OK(unlink(M("sym2")));
	CONTENT(M("target"), "through the link");
}

static void t_unlink_open(void)
{
	PUT(M("u"), "original");
	int fd = (int)OK(open(M("u"), O_RDWR));
	OK(unlink(M("u")));
	ERR(access(M("u"), F_OK), ENOENT);
	EQ(access(B("u"), F_OK), -1);
	char buf[64];
	memset(buf, 0, sizeof buf);
	EQ(pread(fd, buf, sizeof buf, 0), 8);
	CHECKF(!strcmp(buf, "original"), "read after unlink: %s", buf);
	EQ(pwrite(fd, "hello", 5, 0), 5);
	EQ(pwrite(fd, "-more", 5, 8), 5);
	memset(buf, 0, sizeof buf);
	EQ(pread(fd, buf, sizeof buf, 0), 13);
	CHECKF(!strcmp(buf, "hellonal-more"), "read after writes to an unlinked file: %s", buf);
	struct stat st;
	OK(fstat(fd, &st));
	EQ(st.st_nlink, 0);
	EQ(st.st_size, 13);
	OK(ftruncate(fd, 5));
	OK(fstat(fd, &st));
	EQ(st.st_size, 5);
	OK(fsync(fd));
	/* the name again: another file */
	PUT(M("u"), "second");
	CONTENT(M("u"), "second");
	memset(buf, 0, sizeof buf);
	EQ(pread(fd, buf, sizeof buf, 0), 5);
	CHECKF(!strcmp(buf, "hello"), "the unlinked file after its name was reused: %s", buf);
	close(fd);
	/* unlinked while mapped */
	PUT(M("m"), "mapped data");
	fd = (int)OK(open(M("m"), O_RDONLY));
	char *p = mmap(NULL, 11, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED, "mmap");
	OK(unlink(M("m")));
	if (p != MAP_FAILED) {
		CHECK(!memcmp(p, "mapped data", 11), "a mapping of an unlinked file");
		munmap(p, 11);
	}
	close(fd);
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static void t_readdir(void)
{
	enum { N = 5000 };
	OK(mkdir(M("many"), 0755));
	char rel[64];
	for (int i = 0; i < N; i++) {
		snprintf(rel, sizeof rel, "many/f%05d", i);
		int fd = open(M(rel), O_CREAT | O_WRONLY, 0644);
		if (fd < 0) {
			fail_at(__LINE__, "create %s: %s", rel, strerror(errno));
			return;
		}
		close(fd);
	}
	OK(mkdir(M("many/sub"), 0755));
	OK(symlink("f00000", M("many/lnk")));
	DIR *dp = opendir(M("many"));
	if (!dp) {
		fail_at(__LINE__, "opendir: %s", strerror(errno));
		return;
	}
	char *seen = calloc(N, 1);
	int n = 0, dots = 0, dirs = 0, links = 0, bad_type = 0;
	long pos = -1;
	char after[256] = "";
	struct dirent *de;
	while ((de = readdir(dp))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) {
			dots++;
			continue;
		}
		if (!strcmp(de->d_name, "sub")) {
			dirs += de->d_type == DT_DIR;
			continue;
		}
		if (!strcmp(de->d_name, "lnk")) {
			links += de->d_type == DT_LNK;
			continue;
		}
		int k = atoi(de->d_name + 1);
		if (de->d_name[0] != 'f' || k < 0 || k >= N || seen[k]) {
			fail_at(__LINE__, "unexpected or repeated entry %s", de->d_name);
			continue;
		}
		bad_type += de->d_type != DT_REG && de->d_type != DT_UNKNOWN;
		seen[k] = 1;
		n++;
		if (n == N / 2)
			pos = telldir(dp);
		if (n == N / 2 + 1)
			snprintf(after, sizeof after, "%s", de->d_name);
	}
	EQ(n, N);
	EQ(dots, 2);
	EQ(dirs, 1);
	EQ(links, 1);
	EQ(bad_type, 0);
	/* telldir/seekdir: the entry after the mark comes again */
	seekdir(dp, pos);
	de = readdir(dp);
	CHECKF(de && !strcmp(de->d_name, after), "after seekdir: expected %s, got %s", after,
	       de ? de->d_name : "(end)");
	rewinddir(dp);
	n = 0;
	while ((de = readdir(dp)))
		n++;
	EQ(n, N + 4);
	closedir(dp);
	/* the same entries behind the mount */
	dp = opendir(B("many"));
	int bn = 0;
	while (dp && (de = readdir(dp)))
		bn++;
	if (dp)
		closedir(dp);
	EQ(bn, N + 4);
	/* names removed while a listing is open: each name at most once */
	dp = opendir(M("many"));
	int first = 0;
	int *ks = malloc(2 * N * sizeof *ks);
	while (dp && (de = readdir(dp)) && first < 100)
		if (de->d_name[0] == 'f')
			ks[first++] = atoi(de->d_name + 1);
	for (int i = 0; i < N; i += 2) {
		snprintf(rel, sizeof rel, "many/f%05d", i);
		unlink(M(rel));
	}
	int later = 0;
	while (dp && (de = readdir(dp)) && first + later < 2 * N)
		if (de->d_name[0] == 'f')
			ks[first + later++] = atoi(de->d_name + 1);
	if (dp)
		closedir(dp);
	qsort(ks, (size_t)(first + later), sizeof *ks, cmp_int);
	int dup = 0;
	for (int i = 1; i < first + later; i++)
		dup += ks[i] == ks[i - 1];
	EQ(dup, 0);
	free(ks);
	/* a listing after the removals */
	dp = opendir(M("many"));
	n = 0;
	while (dp && (de = readdir(dp)))
		n += de->d_name[0] == 'f';
	if (dp)
		closedir(dp);
	EQ(n, N / 2);
	free(seen);
	for (int i = 1; i < N; i += 2) {
		snprintf(rel, sizeof rel, "many/f%05d", i);
		unlink(M(rel));
	}
	OK(unlink(M("many/lnk")));
	OK(rmdir(M("many/sub")));
	OK(rmdir(M("many")));
}

static void t_mmap(void)
{
	int fd = (int)OK(open(M("mm"), O_CREAT | O_RDWR | O_TRUNC, 0644));
	OK(ftruncate(fd, 8192));
	char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		fail_at(__LINE__, "mmap MAP_SHARED: %s", strerror(errno));
		close(fd);
		return;
	}
	memcpy(p + 4096, "mapped", 6);
	memcpy(p, "head", 4);
	OK(msync(p, 8192, MS_SYNC));
	char buf[16];
	memset(buf, 0, sizeof buf);
	EQ(pread(fd, buf, 6, 4096), 6);
	CHECKF(!strcmp(buf, "mapped"), "read after a mapped write: %s", buf);
	/* in the backing file */
	int bfd = (int)OK(open(B("mm"), O_RDONLY));
	memset(buf, 0, sizeof buf);
	EQ(pread(bfd, buf, 6, 4096), 6);
	CHECKF(!strcmp(buf, "mapped"), "backing file after msync: %s", buf);
	memset(buf, 0, sizeof buf);
	EQ(pread(bfd, buf, 4, 0), 4);
	CHECKF(!strcmp(buf, "head"), "backing file's first page after msync: %s", buf);
	close(bfd);
	/* a write(2) is seen in the mapping */
	EQ(pwrite(fd, "WRITE", 5, 100), 5);
	CHECK(!memcmp(p + 100, "WRITE", 5), "the mapping after a write");
	/* and so is one through a write-only descriptor (served with direct_io,
	 * past the page cache that holds the mapping's pages), also by read */
	int wfd = (int)OK(open(M("mm"), O_WRONLY));
	EQ(pwrite(wfd, "WRONLY", 6, 200), 6);
	close(wfd);
	CHECK(!memcmp(p + 200, "WRONLY", 6), "the mapping after a write-only descriptor's write");
	memset(buf, 0, sizeof buf);
	EQ(pread(fd, buf, 6, 200), 6);
	CHECKF(!strcmp(buf, "WRONLY"), "read after a write-only descriptor's write: %s", buf);
	munmap(p, 8192);
	/* written through the mapping without msync: there after munmap + close */
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED) {
		memcpy(p + 8000, "tail", 4);
		munmap(p, 8192);
	}
	OK(fsync(fd));
	close(fd);
	bfd = (int)OK(open(B("mm"), O_RDONLY));
	memset(buf, 0, sizeof buf);
	EQ(pread(bfd, buf, 4, 8000), 4);
	CHECKF(!strcmp(buf, "tail"), "backing file after munmap and fsync: %s", buf);
	close(bfd);
	/* MAP_PRIVATE writes stay private */
	fd = (int)OK(open(M("mm"), O_RDONLY));
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p != MAP_FAILED) {
		memcpy(p, "priv", 4);
		munmap(p, 8192);
	}
	close(fd);
	fd = (int)OK(open(M("mm"), O_RDONLY));
	memset(buf, 0, sizeof buf);
	EQ(pread(fd, buf, 4, 0), 4);
	CHECKF(!strcmp(buf, "head"), "after a MAP_PRIVATE write: %s", buf);
	close(fd);
	/* a change behind the mount is seen by a new mapping */
	bfd = (int)OK(open(B("mm"), O_WRONLY));
	EQ(pwrite(bfd, "BACK", 4, 0), 4);
	close(bfd);
	fd = (int)OK(open(M("mm"), O_RDONLY));
	p = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED) {
		CHECKF(!memcmp(p, "BACK", 4), "%.4s", p);
		munmap(p, 8192);
	}
	close(fd);
}

static void t_fsync(void)
{
	int fd = (int)OK(open(M("s"), O_CREAT | O_RDWR | O_TRUNC, 0644));
	EQ(write(fd, "sync me", 7), 7);
	OK(fsync(fd));
	OK(fdatasync(fd));
	OK(syncfs(fd));
	OK(sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER));
	close(fd);
	int dfd = (int)OK(open(M(""), O_RDONLY | O_DIRECTORY));
	OK(fsync(dfd));
	OK(fdatasync(dfd));
	close(dfd);
	fd = (int)OK(open(M("s"), O_RDONLY));
	OK(fsync(fd)); /* allowed on a read-only descriptor */
	close(fd);
	CONTENT(B("s"), "sync me");
}

static void t_statfs(void)
{
	struct statvfs a, b;
	OK(statvfs(M(""), &a));
	OK(statvfs(B(""), &b));
	EQ(a.f_bsize, b.f_bsize);
	EQ(a.f_frsize, b.f_frsize);
	EQ(a.f_blocks, b.f_blocks);
	EQ(a.f_files, b.f_files);
	EQ(a.f_namemax, b.f_namemax);
	CHECKF(a.f_bfree <= a.f_blocks && a.f_bavail <= a.f_bfree, "bfree %llu bavail %llu blocks %llu",
	       (unsigned long long)a.f_bfree, (unsigned long long)a.f_bavail,
	       (unsigned long long)a.f_blocks);
	/* free space moves with the backing file system's (others write too) */
	double d = (double)a.f_bfree - (double)b.f_bfree;
	CHECKF(d < 0.02 * (double)b.f_blocks && -d < 0.02 * (double)b.f_blocks,
	       "free blocks %llu, behind the mount %llu", (unsigned long long)a.f_bfree,
	       (unsigned long long)b.f_bfree);
	PUT(M("f"), "f");
	int fd = (int)OK(open(M("f"), O_RDONLY));
	struct statvfs c;
	OK(fstatvfs(fd, &c));
	EQ(c.f_blocks, b.f_blocks);
	close(fd);
}

static void t_mkfifo(void)
{
	OK(mkfifo(M("fifo"), 0644));
	CHECK(S_ISFIFO(st_of(M("fifo"), 0).st_mode), "not a FIFO");
	CHECK(S_ISFIFO(st_of(B("fifo"), 0).st_mode), "not a FIFO behind the mount");
	EQ(st_of(M("fifo"), 0).st_mode & 0777, 0644);
	ERR(mkfifo(M("fifo"), 0644), EEXIST);
	int fd = (int)OK(open(M("fifo"), O_RDWR | O_NONBLOCK));
	EQ(write(fd, "ping", 4), 4);
	char buf[8] = {0};
	EQ(read(fd, buf, sizeof buf), 4);
	CHECKF(!strcmp(buf, "ping"), "through the FIFO: %s", buf);
	close(fd);
	/* a reader and a writer in two processes */
	pid_t pid = fork();
	if (pid == 0) {
		int w = open(M("fifo"), O_WRONLY);
		_exit(w < 0 || write(w, "pong", 4) != 4);
	}
	fd = (int)OK(open(M("fifo"), O_RDONLY));
	memset(buf, 0, sizeof buf);
	EQ(read(fd, buf, sizeof buf), 4);
	CHECKF(!strcmp(buf, "pong"), "from the other process: %s", buf);
	close(fd);
	int ws;
	waitpid(pid, &ws, 0);
	CHECK(WIFEXITED(ws) && !WEXITSTATUS(ws), "the writer failed");
	OK(unlink(M("fifo")));
	/* mknod of a plain file */
	OK(mknod(M("plain"), S_IFREG | 0600, 0));
	EQ(st_of(M("plain"), 0).st_mode, S_IFREG | 0600);
	EQ(st_of(M("plain"), 0).st_size, 0);
}

static void t_backing(void)
{
	/* through the mount -> behind it: the same bytes */
	size_t n = (1u << 20) + 333;
	unsigned char *data = malloc(n);
	fill(data, n, 3);
	OK(put(M("in.bin"), data, n));
	SAME(M("in.bin"), B("in.bin"));
	size_t bl;
	char *b = get(B("in.bin"), &bl);
	CHECK(b && bl == n && !memcmp(b, data, n), "STORE/docs/in.bin is not what was written");
	free(b);
	/* behind it -> through the mount */
	fill(data, n, 4);
	OK(put(B("out.bin"), data, n));
	b = get(M("out.bin"), &bl);
	CHECK(b && bl == n && !memcmp(b, data, n), "MNT/docs/out.bin is not what was written behind");
	free(b);
	EQ(st_of(M("out.bin"), 1).st_size, n);
	/* changed behind the mount: seen within the attribute timeout (1 s) */
	OK(put(B("out.bin"), "short", 5));
	double t0 = now_s();
	while (st_of(M("out.bin"), 1).st_size != 5 && now_s() - t0 < 3)
		usleep(50000);
	EQ(st_of(M("out.bin"), 1).st_size, 5);
	CONTENT(M("out.bin"), "short");
	/* removed behind it */
	OK(unlink(B("out.bin")));
	t0 = now_s();
	while (!access(M("out.bin"), F_OK) && now_s() - t0 < 3)
		usleep(50000);
	ERR(access(M("out.bin"), F_OK), ENOENT);
	/* a folder of files behind it, listed through the mount */
	OK(mkdir(B("sub"), 0755));
	char rel[64];
	for (int i = 0; i < 20; i++) {
		snprintf(rel, sizeof rel, "sub/%02d.txt", i);
		OK(put(B(rel), rel, strlen(rel)));
	}
	DIR *dp = opendir(M("sub"));
	int c = 0;
	struct dirent *de;
	while (dp && (de = readdir(dp)))
		c += de->d_name[0] != '.';
	if (dp)
		closedir(dp);
	EQ(c, 20);
	CONTENT(M("sub/07.txt"), "sub/07.txt");
	/* written through the mount, read behind it before close */
	int fd = (int)OK(open(M("open.txt"), O_CREAT | O_WRONLY | O_TRUNC, 0644));
	EQ(write(fd, "not closed yet", 14), 14);
	CONTENT(B("open.txt"), "not closed yet");
	close(fd);
	free(data);
}

/* Runs fn in a child as uid/gid 65534 with the given supplementary groups;
 * the child's failures are printed by it and counted here. */
static void as_nobody(void (*fn)(void), const gid_t *groups, size_t n_groups)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		fail_at(__LINE__, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		cur_failed = 0;
		if (setgroups(n_groups, groups) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534)) {
			fail_at(__LINE__, "cannot become uid 65534: %s", strerror(errno));
			_exit(1);
		}
		umask(022);
		fn();
		fflush(stdout);
		_exit(cur_failed);
	}
	int ws;
	waitpid(pid, &ws, 0);
	if (!WIFEXITED(ws) || WEXITSTATUS(ws))
		fail_at(__LINE__, "the check run as uid 65534 failed (status %#x)", ws);
}

static void nobody_creates(void)
{
	PUT(M("shared/nobody.txt"), "from nobody");
	OK(mkdir(M("shared/nd"), 0755));
	OK(symlink("nobody.txt", M("shared/nl")));
	OK(mkfifo(M("shared/nf"), 0600));
	/* root's folder and root's private file are closed to it */
	ERR(open(M("mine"), O_CREAT | O_WRONLY, 0644), EACCES);
	ERR(open(M("private"), O_RDONLY), EACCES);
	ERR(mkdir(M("nodir"), 0755), EACCES);
	ERR(chown(M("shared/nobody.txt"), 0, 0), EPERM);
	ERR(unlink(M("shared/rootfile")), EPERM); /* sticky folder */
	/* writing to a set-user-ID file clears the bit */
	int fd = (int)OK(open(M("shared/suid"), O_WRONLY));
	EQ(write(fd, "w", 1), 1);
	close(fd);
	EQ(st_of(M("shared/suid"), 1).st_mode & (S_ISUID | S_ISGID), 0);
}

static void nobody_in_group(void)
{
	/* a folder writable by the group 4242 it has as a supplementary group */
	PUT(M("grp/g.txt"), "group member");
}

static void t_other_user(void)
{
	if (geteuid() != 0) {
		printf("    (skipped: needs root to switch users)\n");
		return;
	}
	OK(mkdir(M("shared"), 0777));
	OK(chmod(M("shared"), 01777));
	OK(chmod(M(""), 0755));
	PUT(M("private"), "secret");
	OK(chmod(M("private"), 0600));
	PUT(M("shared/rootfile"), "root's");
	PUT(M("shared/suid"), "s");
	OK(chmod(M("shared/suid"), 06777));
	as_nobody(nobody_creates, NULL, 0);
	struct stat st = st_of(B("shared/nobody.txt"), 0);
	EQ(st.st_uid, 65534);
	EQ(st.st_gid, 65534);
	EQ(st.st_mode, S_IFREG | 0644);
	st = st_of(M("shared/nobody.txt"), 0);
	EQ(st.st_uid, 65534);
	EQ(st.st_gid, 65534);
	CONTENT(B("shared/nobody.txt"), "from nobody");
	EQ(st_of(B("shared/nd"), 0).st_uid, 65534);
	EQ(st_of(B("shared/nd"), 0).st_mode, S_IFDIR | 0755);
	EQ(st_of(B("shared/nl"), 0).st_uid, 65534);
	EQ(st_of(B("shared/nf"), 0).st_uid, 65534);
	EQ(access(B("mine"), F_OK), -1);
	CONTENT(B("shared/suid"), "w");
	EQ(st_of(B("shared/suid"), 1).st_mode & (S_ISUID | S_ISGID), 0);
	/* supplementary groups count, as they do on a local file system */
	OK(mkdir(M("grp"), 0770));
	OK(chown(M("grp"), 0, 4242));
	OK(chmod(M("grp"), 0770));
	gid_t g = 4242;
	as_nobody(nobody_in_group, &g, 1);
	st = st_of(B("grp/g.txt"), 0);
	EQ(st.st_uid, 65534);
}

/* ---- main ------------------------------------------------------------------ */

struct check {
	const char *name;
	void (*fn)(void);
};

static const struct check CHECKS[] = {
	{"open_flags", t_open_flags},
	{"read_write", t_read_write},
	{"sparse_above_4g", t_sparse_4g},
	{"truncate", t_truncate},
	{"stat", t_stat},
	{"utimensat", t_utimens},
	{"chmod_chown", t_chmod_chown},
	{"mkdir_rmdir", t_dirs},
	{"rename", t_rename},
	{"link_unlink", t_link},
	{"symlink", t_symlink},
	{"unlink_open_file", t_unlink_open},
	{"readdir", t_readdir},
	{"mmap", t_mmap},
	{"fsync", t_fsync},
	{"statfs", t_statfs},
	{"mkfifo", t_mkfifo},
	{"backing_store", t_backing},
	{"other_user", t_other_user},
};

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: test_syscalls MNT/docs STORE/docs [CHECK...]\n");
		return 2;
	}
	mnt_root = argv[1];
	back_root = argv[2];
	umask(022);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof CHECKS / sizeof *CHECKS; i++) {
		int want = argc == 3;
		for (int a = 3; a < argc; a++)
			want |= !strcmp(argv[a], CHECKS[i].name);
		if (!want)
			continue;
		snprintf(cur_dir, sizeof cur_dir, "sys_%s", CHECKS[i].name);
		cur_failed = 0;
		printf("%s\n", CHECKS[i].name);
		double t0 = now_s();
		if (mkdir(M(""), 0755))
			fail_at(__LINE__, "mkdir %s: %s", M(""), strerror(errno));
		else
			CHECKS[i].fn();
		printf("%s: %s (%.2f s)\n", CHECKS[i].name, cur_failed ? "FAILED" : "ok", now_s() - t0);
		n_failed += cur_failed;
		n_run++;
	}
	printf("%d of %d checks failed\n", n_failed, n_run);
	return n_failed ? 1 : 0;
}
