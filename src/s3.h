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
 * are left behind; when that abort fails, the cleanup hook tells the owner,
 * which keeps it for a later try (the engine's cleanup queue). The
 * multipart uploads under the prefix can be listed (the stale sweep after
 * a node died mid-upload) and aborted by key and id.
 *
 * Downloads stream with optional Range passed through.
 *
 * Used by the engine (the "s3" blob store: upload.c, download.c, maint.c,
 * engine.c). Uses libcurl, libevent, log.c.
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
	const char *endpoint; /* http(s)://host:port */
	const char *region;   /* e.g. "us-east-1" */
	const char *bucket;
	const char *access_key; /* may contain ':' (Swift) */
	const char *secret_key;
	const char *prefix;  /* key prefix, e.g. "glared/"; the keys
				 * below are relative to it */
	int connect_timeout; /* s */
	int timeout;         /* s, per request */
} gl_s3_conf;

gl_s3 *gl_s3_new(struct event_base *base, const gl_s3_conf *c, gl_err *err);
/* Cancels everything in flight without callbacks, except the cleanup
 * hook's report of each cleanup it leaves unsent (below). */
void gl_s3_free(gl_s3 *s);

/* Part size for an object of about `size` bytes (-1: unknown, assume the
 * largest allowed blob, max_size). */
int64_t gl_s3_part_size(int64_t size, int64_t max_size);

/* ---- multipart upload ----------------------------------------------------
 * start: initiates the upload (async); ready(arg, upload_id, err) fires once
 * S3 answered (upload_id NULL on error). put_part: sends one part, read
 * from fd at off..off+len (never the whole part in memory; the caller keeps
 * the fd open and those bytes unchanged until part_done); at most
 * GL_S3_MAX_INFLIGHT parts in flight (more are refused), the caller waits
 * for part_done.
 * Parts other than the last must be at least 5 MiB (gl_s3_part_size).
 * complete: finishes the object once the parts in flight are done (with
 * no part at all it stores an empty object); done(arg, err). The handle is
 * freed after done returns; on failure the upload is aborted first.
 * complete refuses (-1, nothing called) after a part failed: the first
 * error is returned and the caller aborts. abort: aborts the upload (async,
 * best effort; an upload still being initiated is aborted once S3 gives
 * its id, one being completed is deleted if the completion succeeds) and
 * frees the handle, without further callbacks. Every handle ends with
 * exactly one of complete's done or abort; abort may be called from the
 * ready and part_done callbacks (from done it does nothing: the handle is
 * ending anyway). No callback fires from inside these calls.
 */
#define GL_S3_MAX_INFLIGHT 4

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
/* Told how every cleanup of an abandoned upload ended (err NULL: done),
 * and of each cleanup gl_s3_free drops unsent: upload_id set for an abort
 * of the multipart upload, NULL for a delete of the object (a completion
 * that raced with the abort). A 404 comes as an error of status 404: the
 * thing is gone, which is what the cleanup wanted. Without a hook, failures
 * are logged. */
typedef void (*gl_s3_cleanup_fn)(void *arg, const char *key,
				 const char *upload_id, const gl_err *err);
void gl_s3_set_cleanup_hook(gl_s3 *s, gl_s3_cleanup_fn fn, void *arg);

/* Asynchronous one-shot requests on the loop (the maintenance's): done
 * fires once, never from inside the call, err NULL on success (a 404 is an
 * error of status 404). gl_s3_free drops them without callbacks.
 * list_uploads: each(arg, key relative to the prefix, id, initiated) for
 * every multipart upload under the prefix (non-zero stops), page by page,
 * then done. */
int gl_s3_delete_async(gl_s3 *s, const char *key, gl_s3_done_fn done,
		       void *arg, gl_err *err);
int gl_s3_abort_async(gl_s3 *s, const char *key, const char *upload_id,
		      gl_s3_done_fn done, void *arg, gl_err *err);
typedef int (*gl_s3_upload_fn)(void *arg, const char *key,
			       const char *upload_id, int64_t initiated);
int gl_s3_list_uploads_async(gl_s3 *s, gl_s3_upload_fn each,
			     gl_s3_done_fn done, void *arg, gl_err *err);

/* Abort an upload known only by key + id. Blocking (tools, tests). */
int gl_s3_abort_by_id(gl_s3 *s, const char *key, const char *upload_id,
		      gl_err *err);
/* Abort every multipart upload under the prefix started more than
 * older_than_s seconds ago. Blocking (tools, tests). Returns the number
 * aborted. */
int gl_s3_abort_stale(gl_s3 *s, int older_than_s, gl_err *err);

/* ---- objects ------------------------------------------------------------- */
/* Stream an object (range "a-b", "a-", "-n" or NULL): on_data gets pieces
 * of a 2xx body (return 0 go on, 1 consumed but pause until
 * gl_s3_get_resume, -1 stop); done fires once with the HTTP status (0 if
 * there was no answer) and the object's total length (the Content-Length
 * of a 200, the "/total" of a 206's Content-Range; -1 unknown), then the
 * handle is freed. cancel: no callbacks after it (callable from on_data,
 * not from done). */
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

/* ---- internals, declared for the unit tests ------------------------------ */
/* Percent-encode for a SigV4 canonical URI or query value: RFC 3986
 * unreserved characters stay, '/' too when keep_slash, everything else is
 * %XX with upper-case hex. malloc'd (NULL: out of memory). */
char *gl_s3_encode(const char *s, int keep_slash);
/* Text of the first <tag> element in xml[0..len), entities decoded,
 * malloc'd; NULL if there is none. */
char *gl_s3_xml_text(const char *xml, size_t len, const char *tag);
/* Fill err from an S3 error answer (status, <Error> body or none); `what`
 * names the object in messages. */
void gl_s3_map_error(long status, const char *body, size_t len,
		     const char *what, gl_err *err);
/* Call fn for each <Upload> of a ListMultipartUploads answer (stop when it
 * returns non-zero); *truncated and the next markers (malloc'd, may be
 * NULL) for the next page. Returns the number of uploads seen, -1 if the
 * document is not a ListMultipartUploadsResult. */
int gl_s3_parse_uploads(const char *xml, size_t len, gl_s3_upload_fn fn,
			void *arg, int *truncated, char **next_key,
			char **next_upload_id);
/* "2024-05-01T12:34:56.000Z" -> seconds since the epoch, -1 if invalid. */
int64_t gl_s3_parse_time(const char *iso);

#endif
