/* store.c - content-addressed local blob files (see store.h). */
#include "store.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Writeback is started every WB_CHUNK bytes and waited for one chunk
 * behind, so at most ~2 chunks of an upload are dirty in the page cache. */
#define WB_CHUNK (8 << 20)
/* Body pieces arrive in a few KiB; one write per MiB instead of one per
 * piece took a third off an upload's system time. */
#define WBUF (1 << 20)

struct gl_store {
	char dir[PATH_MAX - 128];
};

static int mkdirs(const char *path)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	}
	if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

gl_store *gl_store_open(const char *datadir, gl_err *err)
{
	gl_store *s = calloc(1, sizeof *s);
	char p[PATH_MAX];

	if (!s) {
		gl_fail(err, 500, NULL, "out of memory");
		return NULL;
	}
	if (strlen(datadir) >= sizeof s->dir) {
		gl_fail(err, 500, NULL, "filesystem_store_datadir too long");
		free(s);
		return NULL;
	}
	snprintf(s->dir, sizeof s->dir, "%s", datadir);
	snprintf(p, sizeof p, "%s/tmp", s->dir);
	if (mkdirs(p) < 0) {
		gl_fail(err, 500, "StoreError", "cannot create %s: %s", p,
			strerror(errno));
		free(s);
		return NULL;
	}
	snprintf(p, sizeof p, "%s/objects", s->dir);
	if (mkdirs(p) < 0) {
		gl_fail(err, 500, "StoreError", "cannot create %s: %s", p,
			strerror(errno));
		free(s);
		return NULL;
	}
	return s;
}

void gl_store_close(gl_store *s)
{
	free(s);
}
const char *gl_store_dir(const gl_store *s)
{
	return s->dir;
}

static void object_path(const gl_store *s, const char *sha, char *out,
			size_t len)
{
	snprintf(out, len, "%s/objects/%.2s/%s", s->dir, sha, sha);
}

int gl_store_valid_name(const char *sha)
{
	if (!sha || strlen(sha) != 64)
		return 0;
	for (int i = 0; i < 64; i++)
		if (!((sha[i] >= '0' && sha[i] <= '9') ||
		      (sha[i] >= 'a' && sha[i] <= 'f')))
			return 0;
	return 1;
}

int gl_store_tmp_create(gl_store *s, gl_store_tmp *t, gl_err *err)
{
	char uuid[37];

	gl_uuid4(uuid);
	memset(t, 0, sizeof *t);
	snprintf(t->path, sizeof t->path, "%s/tmp/%s.part", s->dir, uuid);
	t->fd = open(t->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (t->fd < 0)
		return gl_fail(err, 500, "StoreError",
			       "cannot create temporary file: %s",
			       strerror(errno));
	/* held until the name goes (see store.h); a new file is free */
	if (flock(t->fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		gl_store_tmp_discard(t);
		return gl_fail(err, 500, "StoreError",
			       "cannot lock temporary file: %s", strerror(e));
	}
	return 0;
}

static int write_out(gl_store_tmp *t, const char *p, size_t len, gl_err *err)
{
	while (len) {
		ssize_t n = write(t->fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return gl_fail(err, errno == ENOSPC ? 507 : 500,
				       "StoreError", "writing blob data: %s",
				       strerror(errno));
		}
		p += n;
		len -= (size_t)n;
		t->written += n;
	}
	if (t->written - t->flushed >= WB_CHUNK) {
		/* start writeback of the new chunk; wait for the previous */
		sync_file_range(t->fd, t->flushed, t->written - t->flushed,
				SYNC_FILE_RANGE_WRITE);
		if (t->flushed >= WB_CHUNK)
			sync_file_range(t->fd, t->flushed - WB_CHUNK, WB_CHUNK,
					SYNC_FILE_RANGE_WAIT_BEFORE |
						SYNC_FILE_RANGE_WRITE |
						SYNC_FILE_RANGE_WAIT_AFTER);
		posix_fadvise(t->fd, 0, t->flushed, POSIX_FADV_DONTNEED);
		t->flushed = t->written;
	}
	return 0;
}

int gl_store_tmp_flush(gl_store_tmp *t, gl_err *err)
{
	size_t n = t->fill;

	t->fill = 0;
	return n ? write_out(t, t->buf, n, err) : 0;
}

int gl_store_tmp_write(gl_store_tmp *t, const void *data, size_t len,
		       gl_err *err)
{
	const char *p = data;

	t->size += (int64_t)len;
	if (!t->buf && !(t->buf = malloc(WBUF)))
		return write_out(t, p, len, err); /* unbuffered, then */
	while (len) {
		size_t n = WBUF - t->fill;
		if (n > len)
			n = len;
		memcpy(t->buf + t->fill, p, n);
		t->fill += n;
		p += n;
		len -= n;
		if (t->fill == WBUF && gl_store_tmp_flush(t, err) < 0)
			return -1;
	}
	return 0;
}

int gl_store_tmp_sync(gl_store_tmp *t, gl_err *err)
{
	if (gl_store_tmp_flush(t, err) < 0)
		return -1;
	if (fdatasync(t->fd) < 0)
		return gl_fail(err, 500, "StoreError", "fdatasync: %s",
			       strerror(errno));
	return 0;
}

int64_t gl_store_tmp_pread(gl_store_tmp *t, void *buf, int64_t len,
			   int64_t off)
{
	ssize_t n;
	do {
		n = pread(t->fd, buf, (size_t)len, off);
	} while (n < 0 && errno == EINTR);
	return n;
}

void gl_store_tmp_discard(gl_store_tmp *t)
{
	free(t->buf);
	t->buf = NULL;
	t->fill = 0;
	/* the name goes while the lock still holds it */
	if (t->path[0]) {
		unlink(t->path);
		t->path[0] = '\0';
	}
	if (t->fd > 0) {
		close(t->fd);
		t->fd = -1;
	}
}

int gl_store_commit(gl_store *s, gl_store_tmp *t, const char *sha256,
		    gl_err *err)
{
	char dst[PATH_MAX], dir[PATH_MAX];
	struct stat st;

	if (!gl_store_valid_name(sha256)) {
		gl_store_tmp_discard(t);
		return gl_fail(err, 500, "StoreError", "bad object name");
	}
	object_path(s, sha256, dst, sizeof dst);
	if (gl_store_tmp_flush(t, err) < 0) {
		gl_store_tmp_discard(t);
		return -1;
	}
	free(t->buf);
	t->buf = NULL;
	if (stat(dst, &st) == 0 && st.st_size == t->size) {
		/* the same bytes are stored already */
		gl_store_tmp_discard(t);
		return 0;
	}
	snprintf(dir, sizeof dir, "%s/objects/%.2s", s->dir, sha256);
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		gl_store_tmp_discard(t);
		return gl_fail(err, 500, "StoreError", "mkdir %s: %s", dir,
			       strerror(errno));
	}
	if (rename(t->path, dst) < 0) {
		int e = errno;
		gl_store_tmp_discard(t);
		return gl_fail(err, 500, "StoreError", "rename into store: %s",
			       strerror(e));
	}
	t->path[0] = '\0';
	/* the lock goes only now that the name is gone (see store.h) */
	close(t->fd);
	t->fd = -1;
	/* make the rename durable before the record that points at it */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

int gl_store_open_object(gl_store *s, const char *sha256, int *fd,
			 int64_t *size, gl_err *err)
{
	char p[PATH_MAX];
	struct stat st;

	if (!gl_store_valid_name(sha256))
		return gl_fail(err, 500, "StoreError", "bad object name");
	object_path(s, sha256, p, sizeof p);
	*fd = open(p, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return gl_fail(err, errno == ENOENT ? 404 : 500, "NotFound",
			       "blob data is missing from the store: %s",
			       strerror(errno));
	if (fstat(*fd, &st) < 0) {
		close(*fd);
		return gl_fail(err, 500, "StoreError", "fstat: %s",
			       strerror(errno));
	}
	*size = st.st_size;
	return 0;
}

int gl_store_exists(gl_store *s, const char *sha256)
{
	char p[PATH_MAX];
	if (!gl_store_valid_name(sha256))
		return 0;
	object_path(s, sha256, p, sizeof p);
	return access(p, F_OK) == 0;
}

int gl_store_remove(gl_store *s, const char *sha256, gl_err *err)
{
	char p[PATH_MAX];

	if (!gl_store_valid_name(sha256))
		return 0;
	object_path(s, sha256, p, sizeof p);
	if (unlink(p) < 0 && errno != ENOENT)
		return gl_fail(err, 500, "StoreError", "unlink %s: %s", p,
			       strerror(errno));
	return 0;
}

/* Remove a temp file unless a process holds its lock or wrote to it in
 * the last min_age_s seconds (a file just created is not locked yet). */
static int remove_unheld(const char *path, int min_age_s)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 &&
	    S_ISREG(st.st_mode) && st.st_mtime + min_age_s <= time(NULL) &&
	    unlink(path) == 0)
		rc = 1;
	close(fd); /* and the lock with it */
	return rc;
}

int gl_store_clean_tmp(gl_store *s, int min_age_s)
{
	char p[PATH_MAX];
	DIR *d;
	struct dirent *de;
	int n = 0;

	snprintf(p, sizeof p, "%s/tmp", s->dir);
	d = opendir(p);
	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char f[PATH_MAX + 300];
		if (de->d_name[0] == '.')
			continue;
		snprintf(f, sizeof f, "%s/%s", p, de->d_name);
		n += remove_unheld(f, min_age_s);
	}
	closedir(d);
	return n;
}

int gl_store_tmp_remove(const char *path)
{
	const char *base = path ? strrchr(path, '/') : NULL;
	size_t n = base ? strlen(base) : 0;

	/* a record's path is data: touch nothing but our own temp files */
	if (!base || base - path < 4 || strncmp(base - 4, "/tmp", 4) ||
	    n < 7 || strcmp(base + n - 5, ".part") || strstr(path, "/../"))
		return 0;
	return remove_unheld(path, 0);
}
