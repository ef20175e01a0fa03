/* download.c - downloads: what a GET of a blob serves, and the one reader
 * of blob bytes that come from another system (download.h states its
 * rule: a whole read is compared with every recorded digest; bytes on
 * trust and byte ranges are not judged).
 */
#include "core.h"
#include "digest.h"
#include "download.h"
#include "fetch.h"
#include "log.h"
#include "s3.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

/* ---- the reader ------------------------------------------------------------- */

struct gl_download_read {
	gl_engine *e;
	const gl_download *dl;
	int judge;                /* compare with the record at the end */
	int64_t want;             /* bytes the range holds, -1 unknown */
	gl_fetch_job *fj;
	gl_s3_get *s3g;
	gl_digest *dg;
	int64_t got;
	int stopped;              /* the consumer said stop */
	struct evbuffer *hold;    /* the tail, until judged */
	gl_download_data_fn data;
	gl_download_end_fn done;
	void *arg;
};

static void rd_free(gl_download_read *r)
{
	gl_digest_free(r->dg);
	if (r->hold)
		evbuffer_free(r->hold);
	free(r);
}

/* The end: done, then the read is gone. */
static void rd_end(gl_download_read *r, const gl_err *err)
{
	gl_download_end_fn done = r->done;
	void *arg = r->arg;
	gl_err copy;

	if (err)
		copy = *err;
	rd_free(r);
	done(arg, err ? &copy : NULL);
}

/* Bytes as they arrive (both sources): digested and, when judged, held
 * back by GL_DOWNLOAD_HOLD; more than recorded stops the transfer (the
 * end decides). */
static int rd_bytes(gl_download_read *r, const char *d, size_t n)
{
	size_t len;
	int rc = 0;

	r->got += (int64_t)n;
	if (!r->judge)
		goto pass;
	gl_digest_update(r->dg, d, n);
	if (r->dl->size >= 0 && r->got > r->dl->size)
		return -1;
	evbuffer_add(r->hold, d, n);
	len = evbuffer_get_length(r->hold);
	if (len <= GL_DOWNLOAD_HOLD)
		return 0;
	n = len - GL_DOWNLOAD_HOLD;
	d = (const char *)evbuffer_pullup(r->hold, (ev_ssize_t)n);
	rc = r->data(r->arg, d, n);
	evbuffer_drain(r->hold, n);
	goto out;
pass:
	rc = r->data(r->arg, d, n);
out:
	if (rc < 0)
		r->stopped = 1;
	return rc;
}

/* The held tail, once the bytes are judged to be the recorded ones. */
static int rd_release(gl_download_read *r)
{
	size_t len = r->hold ? evbuffer_get_length(r->hold) : 0;
	int rc = 0;

	if (len)
		rc = r->data(r->arg, (const char *)evbuffer_pullup(r->hold, -1),
			     len);
	return rc < 0 ? -1 : 0;
}

static int rd_stopped(gl_download_read *r)
{
	gl_err err;

	gl_fail(&err, 499, NULL, "the consumer stopped the download");
	rd_end(r, &err);
	return 1;
}

static int fetch_bytes(void *arg, const char *d, size_t n)
{
	return rd_bytes(arg, d, n);
}

static void fetch_end(void *arg, const gl_fetch_result *res)
{
	gl_download_read *r = arg;
	const gl_download *dl = r->dl;
	gl_digest_hex h;
	char why[1200] = "";
	gl_err err = { 0 };

	r->fj = NULL;
	if (r->stopped && !(dl->size >= 0 && r->got > dl->size)) {
		rd_stopped(r);
		return;
	}
	if (!r->judge) {
		if (!res->ok)
			gl_warn("download of %s: %s", dl->url, res->err.msg);
		rd_end(r, res->ok ? NULL : &res->err);
		return;
	}
	gl_digest_final(r->dg, &h);
	switch (gl_external_verdict(dl, res->ok, r->got, &h, why,
				    sizeof why)) {
	case 0:
		if (rd_release(r) < 0) {
			rd_stopped(r);
			return;
		}
		rd_end(r, NULL);
		return;
	case 1:
		gl_engine_flag_blob(r->e, dl->artifact_id, dl->field, dl->key,
				    why);
		gl_fail(&err, 502, "BadGateway",
			"the data at %s changed (%s); the blob is flagged",
			dl->url, why);
		rd_end(r, &err);
		return;
	default:
		/* a transfer that failed or was refused says nothing about
		 * the bytes: the download fails, the blob stays */
		gl_warn("download of %s: fetch failed: %s", dl->url,
			res->err.msg);
		rd_end(r, &res->err);
	}
}

static int s3_bytes(void *arg, const char *d, size_t n)
{
	return rd_bytes(arg, d, n);
}

static void s3_end(void *arg, int status, int64_t total, const gl_err *serr)
{
	gl_download_read *r = arg;
	const gl_download *dl = r->dl;
	gl_digest_hex h;
	gl_err err = { 0 };
	char why[1200];

	r->s3g = NULL;
	if (r->stopped && !(dl->size >= 0 && r->got > dl->size)) {
		rd_stopped(r);
		return;
	}
	if (serr || (status != 200 && status != 206)) {
		if (serr)
			gl_fail(&err, 500, "StoreError", "reading from S3: %s",
				serr->msg);
		else
			gl_fail(&err, 500, "StoreError",
				"reading from S3: S3 answered %d", status);
		rd_end(r, &err);
		return;
	}
	if (r->judge) {
		gl_digest_final(r->dg, &h);
		if (gl_external_verdict(dl, 1, r->got, &h, why,
					sizeof why) != 0) {
			gl_fail(&err, 500, "StoreError",
				"the S3 object differs from the record (%s)",
				why);
			rd_end(r, &err);
			return;
		}
		if (rd_release(r) < 0) {
			rd_stopped(r);
			return;
		}
	} else if (r->want >= 0 && r->got != r->want) {
		gl_fail(&err, 500, "StoreError",
			"reading from S3: the object ended after %lld of %lld "
			"bytes", (long long)r->got, (long long)r->want);
		rd_end(r, &err);
		return;
	}
	rd_end(r, NULL);
}

gl_download_read *gl_download_read_start(gl_engine *e, const gl_download *dl,
					 int64_t off, int64_t end,
					 gl_download_data_fn data,
					 gl_download_end_fn done, void *arg,
					 gl_err *err)
{
	gl_download_read *r = gl_xcalloc(1, sizeof *r);
	int fetched = dl->kind == GL_DL_PROXY || dl->kind == GL_DL_REDIRECT;

	r->e = e;
	r->dl = dl;
	r->data = data;
	r->done = done;
	r->arg = arg;
	if (!fetched && dl->kind != GL_DL_S3) {
		gl_fail(err, 500, NULL, "no reader for this kind of blob");
		goto fail;
	}
	r->want = end >= 0 ? end - off : dl->size;
	/* a whole read is judged; bytes on trust and ranges are not */
	r->judge = !dl->trusted && off == 0 && (end < 0 || end == dl->size);
	if (r->judge) {
		r->dg = gl_digest_new();
		r->hold = evbuffer_new();
		if (!r->hold) {
			gl_fail(err, 500, NULL, "out of memory");
			goto fail;
		}
	}
	if (fetched) {
		/* one byte more than recorded shows growth; a size unknown
		 * (trust mode) or bytes taken on trust are read up to the
		 * field's limit, never without end and never capped at
		 * nothing */
		gl_fetch_opts fo = { .max_bytes = !dl->trusted && dl->size >= 0
							  ? dl->size + 1
							  : dl->max_size,
				     .range = NULL };
		gl_fetch *f = gl_engine_fetch(e, err);

		if (!f)
			goto fail;
		r->fj = gl_fetch_start(f, dl->url, &fo, fetch_bytes, fetch_end,
				       r, err);
		if (!r->fj)
			goto fail;
	} else {
		char range[64];

		if (!e->s3) {
			gl_fail(err, 500, "StoreError",
				"no S3 store is configured");
			goto fail;
		}
		if (end >= 0)
			snprintf(range, sizeof range, "%lld-%lld",
				 (long long)off, (long long)end - 1);
		r->s3g = gl_s3_get_start(e->s3, dl->location,
					 end >= 0 ? range : NULL, s3_bytes,
					 s3_end, r, err);
		if (!r->s3g)
			goto fail;
	}
	return r;
fail:
	rd_free(r);
	return NULL;
}

void gl_download_read_resume(gl_download_read *r)
{
	if (r->fj)
		gl_fetch_resume(r->fj);
	else if (r->s3g)
		gl_s3_get_resume(r->s3g);
}

void gl_download_read_cancel(gl_download_read *r)
{
	if (!r)
		return;
	if (r->fj)
		gl_fetch_cancel(r->fj);
	if (r->s3g)
		gl_s3_get_cancel(r->s3g);
	rd_free(r);
}
