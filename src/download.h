/* download.h - downloads (download.c): what a GET of a blob serves, and
 * the one reader of blob bytes that come from elsewhere, with the rule
 * that decides whether they are the recorded ones.
 *
 * Uses ctx.h, err.h, jansson; the digests of digest.h by name only.
 */
#ifndef GL_DOWNLOAD_H
#define GL_DOWNLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ctx.h"
#include "err.h"

typedef struct gl_engine gl_engine;
struct gl_digest_hex;

typedef struct gl_request_info {
	const char *method, *path, *remote_addr;
	json_t *headers; /* lower-case name -> value */
} gl_request_info;

enum gl_dl_kind {
	GL_DL_FILE,
	GL_DL_DATABASE,
	GL_DL_REDIRECT,
	GL_DL_PROXY,
	GL_DL_S3
};

typedef struct gl_download {
	enum gl_dl_kind kind;
	int fd;           /* GL_DL_FILE: open file, caller closes */
	char *url;        /* GL_DL_REDIRECT / GL_DL_PROXY */
	char *location;   /* GL_DL_DATABASE / GL_DL_S3: object key */
	int64_t size;     /* -1 unknown */
	int64_t max_size; /* the field's limit (bounds a fetch of
				   * unknown size) */
	char content_type[256];
	char md5[33], sha1[41], sha256[65];
	char field[256];
	char *key; /* the folder key served (selected) */
	char *artifact_id;
	int trusted; /* GL_DL_PROXY: nothing to check the bytes
				   * against (internal location, trust mode) */
} gl_download;

int gl_download_open(gl_engine *e, const gl_ctx *ctx, const char *type,
		     const char *id, const char *field, const char *key,
		     int has_key, const gl_request_info *ri, gl_download *dl,
		     gl_err *err);
void gl_download_free(gl_download *dl);
/* Database store reads for GL_DL_DATABASE. */
int64_t gl_download_read_data(gl_engine *e, const char *location, int64_t off,
			      void *buf, int64_t len, gl_err *err);
/* What fetched bytes of an external blob say against dl's record (size,
 * checksums): 1 they differ (why says how), 0 they are the recorded ones,
 * -1 no verdict. Only bytes that were read and differ count: more bytes
 * than recorded, or a complete read of another size or checksum; a
 * fetch that failed or was refused (network, HTTP error, a cap reached
 * on a blob of unknown size) says nothing about them; bytes taken on
 * trust (dl->trusted) are never judged. complete: every byte was read (h
 * is then valid). */
int gl_download_verdict(const gl_download *dl, int complete, int64_t got,
			const struct gl_digest_hex *h, char *why,
			size_t whylen);
/* A proxied external download found different bytes: flag the blob. */
void gl_download_flag(gl_engine *e, const char *artifact_id, const char *field,
		      const char *key, const char *why);

/* ---- reading a blob's bytes ------------------------------------------------
 * The one reader of bytes that come from another system: an external
 * blob's URL (GL_DL_PROXY, and GL_DL_REDIRECT for a consumer that fetches
 * itself, as the console does) and the S3 store (GL_DL_S3). It owns the
 * fetch, the S3 request, the digests, the comparison with the record and
 * the flag; the consumers (the HTTP handlers, the console) only take the
 * bytes. Local files and database pieces are the consumer's to read.
 *
 * The rule: a read of the whole blob is compared with its record - the
 * size and every digest recorded (md5, sha1, sha256) - and until that
 * comparison passes, the last GL_DOWNLOAD_HOLD bytes are withheld, so no
 * consumer ever gets a complete wrong blob. Bytes taken on trust
 * (dl->trusted) are never judged, and a byte range cannot be: both pass as
 * they come. An external blob whose bytes differ (gl_download_verdict:
 * only bytes that were read and differ count) is flagged and the read
 * ends with 502; a stored S3 object that differs ends it with 500
 * StoreError; a transfer that failed says nothing about the bytes.
 *
 * data: 0 go on, 1 pause until gl_download_read_resume, -1 stop (the read
 * then ends with an error and judges nothing). done: err NULL when every
 * byte was delivered (and, when judged, found as recorded); the read is
 * gone once done runs. cancel: no callback after it. */
#define GL_DOWNLOAD_HOLD (64 * 1024)

typedef struct gl_download_read gl_download_read;
typedef int (*gl_download_data_fn)(void *arg, const char *data, size_t len);
typedef void (*gl_download_end_fn)(void *arg, const gl_err *err);

/* off, end: the byte range [off, end) of an S3 object; end -1: all of
 * it (a fetch always reads all). dl must outlive the read. */
gl_download_read *gl_download_read_start(gl_engine *e, const gl_download *dl,
					 int64_t off, int64_t end,
					 gl_download_data_fn data,
					 gl_download_end_fn done, void *arg,
					 gl_err *err);
void gl_download_read_resume(gl_download_read *r);
void gl_download_read_cancel(gl_download_read *r);

/* ---- external re-verification ---------------------------------------------- */
/* Re-fetch up to limit external blobs (least recently verified first, none
 * verified in the last min_age_s seconds) and compare; returns the number
 * checked, or -1. Blocking (tools). */
int gl_download_verify_external(gl_engine *e, int limit, int min_age_s,
				int *changed, gl_err *err);

#endif
