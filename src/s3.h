/* s3.h - an S3 client for blob data, driven by the worker's event loop.
 *
 * libcurl (multi interface on libevent, like fetch.c) with SigV4 signing
 * (CURLOPT_AWS_SIGV4) and `x-amz-content-sha256: UNSIGNED-PAYLOAD` (Swift's
 * s3api requires the header). No SDK. Works against AWS S3, Ceph RGW and
 * OpenStack Swift with s3api (path-style requests: endpoint/bucket/key).
 *
 * Uploads are multipart and streamed: the caller hands over parts as the
 * client's bytes arrive (never the whole blob in memory); part size is
 * chosen from the expected size so that 1000 GiB fits in S3's 10,000 parts
 * (at least 5 MiB). A failed or abandoned upload is aborted so no parts
 * are left behind, and gl_s3_abort_stale lists and aborts multipart uploads
 * older than a given age (recovery after a node died mid-upload).
 *
 * Downloads stream with optional Range passed through.
 *
 * Used by blob.c (the "s3" blob store). Uses libcurl, libevent, conf.c.
 */
#ifndef GL_S3_H
#define GL_S3_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "err.h"

typedef struct gl_s3 gl_s3;
typedef struct gl_s3_upload gl_s3_upload;
typedef struct gl_s3_get gl_s3_get;

typedef struct gl_s3_conf {
	const char *endpoint;   /* http(s)://host:port */
	const char *region;     /* e.g. "us-east-1" */
	const char *bucket;
	const char *access_key; /* may contain ':' (Swift) */
	const char *secret_key;
	const char *prefix;     /* key prefix, e.g. "glared/" */
	int connect_timeout;    /* s */
	int timeout;            /* s, per request */
} gl_s3_conf;

gl_s3 *gl_s3_new(struct event_base *base, const gl_s3_conf *c, gl_err *err);
void gl_s3_free(gl_s3 *s);   /* cancels everything in flight, no callbacks */

/* Part size for an object of about `size` bytes (-1: unknown, assume the
 * largest allowed blob, max_size). */
int64_t gl_s3_part_size(int64_t size, int64_t max_size);

/* ---- multipart upload ----------------------------------------------------
 * start: initiates the upload (async); ready(arg, upload_id, err) fires once
 * S3 answered. put_part: sends one part (data copied or read from fd at
 * off..off+len; the caller keeps the fd open until done); at most
 * `max_inflight` parts in flight, the caller waits for part_done. complete:
 * finishes the object; done(arg, etag, err). abort: aborts the upload
 * (async, best effort) and frees the handle. */
typedef void (*gl_s3_ready_fn)(void *arg, const char *upload_id,
			       const gl_err *err);
typedef void (*gl_s3_done_fn)(void *arg, const gl_err *err);

gl_s3_upload *gl_s3_upload_start(gl_s3 *s, const char *key,
				 const char *content_type,
				 gl_s3_ready_fn ready, void *arg, gl_err *err);
int gl_s3_upload_part_fd(gl_s3_upload *u, int part_no, int fd, int64_t off,
			 int64_t len, gl_s3_done_fn part_done, void *arg,
			 gl_err *err);
int gl_s3_upload_complete(gl_s3_upload *u, gl_s3_done_fn done, void *arg,
			  gl_err *err);
void gl_s3_upload_abort(gl_s3_upload *u);
const char *gl_s3_upload_id(const gl_s3_upload *u);
/* Abort an upload known only by key + id (recovery). Blocking. */
int gl_s3_abort_by_id(gl_s3 *s, const char *key, const char *upload_id,
		      gl_err *err);
/* Abort every multipart upload under the prefix started more than
 * older_than_s seconds ago. Blocking. Returns the number aborted. */
int gl_s3_abort_stale(gl_s3 *s, int older_than_s, gl_err *err);

/* ---- objects ------------------------------------------------------------- */
/* Stream an object (range "a-b" or NULL): on_data gets pieces (return 0
 * go on, 1 pause until gl_s3_get_resume, -1 stop); done fires once with
 * the HTTP status and total length (Content-Length / Content-Range). */
typedef int (*gl_s3_data_fn)(void *arg, const char *data, size_t len);
typedef void (*gl_s3_get_done_fn)(void *arg, int status, int64_t total,
				  const gl_err *err);
gl_s3_get *gl_s3_get_start(gl_s3 *s, const char *key, const char *range,
			   gl_s3_data_fn on_data, gl_s3_get_done_fn done,
			   void *arg, gl_err *err);
void gl_s3_get_resume(gl_s3_get *g);
void gl_s3_get_cancel(gl_s3_get *g);

/* Blocking helpers for tools and tests. */
int gl_s3_delete(gl_s3 *s, const char *key, gl_err *err);
int gl_s3_head(gl_s3 *s, const char *key, int64_t *size, gl_err *err);
int gl_s3_put_small(gl_s3 *s, const char *key, const void *data, size_t len,
		    gl_err *err);

#endif
