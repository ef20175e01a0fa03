/* store.h - the local blob store: content-addressed files.
 *
 * Blob bytes stream into a temporary file (datadir/tmp) while they are
 * hashed; on commit the file is renamed to datadir/objects/<ab>/<sha256>,
 * so identical bytes are stored once and a crash never leaves a partial
 * object under its final name. Reference counting is derived from the
 * blob records (meta.h, gl_meta_blob_refs): an object is removed when the
 * last record naming it goes. Dirty pages are pushed to disk while the
 * upload runs (sync_file_range), so the final fdatasync before commit is
 * short and a big upload cannot fill the page cache with dirty data.
 *
 * A temp file is locked (flock) by the process writing it for as long as
 * it exists under its name, so a sweep can tell a live upload's file
 * (another worker's, another glared's sharing the directory) from one
 * whose process died: the kernel drops the lock with the process.
 *
 * Used by the engine (upload.c, download.c, gc.c). Uses libc only.
 */
#ifndef GL_STORE_H
#define GL_STORE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct gl_store gl_store;

typedef struct gl_store_tmp {
	int fd;
	char path[PATH_MAX];
	int64_t size;    /* bytes given to gl_store_tmp_write */
	int64_t written; /* bytes in the file (the rest is in buf) */
	int64_t flushed; /* bytes handed to writeback so far */
	char *buf;       /* coalesces small pieces into large writes */
	size_t fill;
} gl_store_tmp;

gl_store *gl_store_open(const char *datadir, gl_err *err);
void gl_store_close(gl_store *s);

int gl_store_tmp_create(gl_store *s, gl_store_tmp *t, gl_err *err);
int gl_store_tmp_write(gl_store_tmp *t, const void *data, size_t len,
		       gl_err *err);
/* Everything given so far into the file (readers of the path see it). */
int gl_store_tmp_flush(gl_store_tmp *t, gl_err *err);
/* Bytes on stable storage (flush + fdatasync). */
int gl_store_tmp_sync(gl_store_tmp *t, gl_err *err);
/* Read back (hooks inspect uploaded bytes). */
int64_t gl_store_tmp_pread(gl_store_tmp *t, void *buf, int64_t len,
			   int64_t off);
void gl_store_tmp_discard(gl_store_tmp *t);

/* Move the temp file to its content address (or drop it if that object
 * exists already). The temp is closed either way. */
int gl_store_commit(gl_store *s, gl_store_tmp *t, const char *sha256,
		    gl_err *err);
/* Open an object for reading; size from fstat. */
int gl_store_open_object(gl_store *s, const char *sha256, int *fd,
			 int64_t *size, gl_err *err);
int gl_store_exists(gl_store *s, const char *sha256);
/* Remove an object (missing is fine). */
int gl_store_remove(gl_store *s, const char *sha256, gl_err *err);
/* Remove the temp files no process holds and nobody wrote to for
 * min_age_s seconds (left by a crash). Returns the number removed. */
int gl_store_clean_tmp(gl_store *s, int min_age_s);
/* Remove one temp file named by a saving record that was taken over,
 * unless a process still holds it. Only names of the form .../tmp/X.part
 * are touched. 1 removed, 0 not (held, gone, not a temp file). */
int gl_store_tmp_remove(const char *path);
const char *gl_store_dir(const gl_store *s);
/* 1 if name is an object name: 64 lower-case hex digits (a SHA-256). */
int gl_store_valid_name(const char *name);

#endif
