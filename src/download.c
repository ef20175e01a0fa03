/* download.c - downloads: what a GET of a blob serves, and the one reader
 * of blob bytes that come from another system (download.h states its
 * rule: a whole read is compared with every recorded digest; bytes on
 * trust and byte ranges are not judged).
 */
#include "blob.h"
#include "core.h"
#include "coro.h"
#include "digest.h"
#include "download.h"
#include "fetch.h"
#include "log.h"
#include "metrics.h"
#include "s3.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>

/* ---- what a GET serves ------------------------------------------------------ */

/* ---- downloads -------------------------------------------------------------- */

void gl_download_free(gl_download *dl)
{
	if (dl->fd > 0)
		close(dl->fd);
	free(dl->url);
	free(dl->location);
	free(dl->key);
	free(dl->artifact_id);
	memset(dl, 0, sizeof *dl);
	dl->fd = -1;
}

static void copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

/* A recorded checksum, only if it is one: these go out in headers, and a
 * record may predate the checks (trust mode once took any string). */
static void copy_sum(char *dst, int which, const char *src)
{
	dst[0] = '\0';
	if (src && gl_hex_valid(src, strlen(src), gl_blob_sum_len[which]))
		memcpy(dst, src, gl_blob_sum_len[which] + 1);
}

/* Printable ASCII only (a header value), else NULL. */
static const char *header_safe(const char *s)
{
	for (const char *p = s; p && *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			return NULL;
	return s;
}

/* dl->url from a record, which may predate the URL checks: never
 * redirect to or fetch what would not be accepted today. */
static int usable_url(gl_download *dl, const char *url, const char *field,
		      gl_err *err)
{
	gl_err why;

	if (!url)
		url = "";
	if (gl_url_check(url, strlen(url), &why) < 0)
		return gl_fail(err, 409, "Conflict",
			       "The recorded URL of blob '%s' is not usable "
			       "(%s); set the location again",
			       field, why.msg);
	if (!(dl->url = strdup(url)))
		return gl_fail(err, 500, NULL, "out of memory");
	return 0;
}

int gl_download_verdict(const gl_download *dl, int complete, int64_t got,
			const gl_digest_hex *h, char *why, size_t whylen)
{
	const char *rec[] = { dl->md5, dl->sha1, dl->sha256 };
	const char *have[] = { h->md5, h->sha1, h->sha256 };

	if (dl->trusted) /* taken on trust: nothing to hold the bytes to */
		return complete ? 0 : -1;
	if (dl->size >= 0 && got > dl->size) {
		snprintf(why, whylen,
			 "more bytes than the recorded %lld "
			 "(%lld read)",
			 (long long)dl->size, (long long)got);
		return 1;
	}
	if (!complete)
		return -1;
	if (dl->size >= 0 && got != dl->size) {
		snprintf(why, whylen, "size %lld, recorded %lld",
			 (long long)got, (long long)dl->size);
		return 1;
	}
	for (int i = 0; i < 3; i++)
		if (rec[i][0] && strcasecmp(rec[i], have[i]) != 0) {
			snprintf(why, whylen, "%s %s, recorded %s",
				 gl_blob_sum_names[i], have[i], rec[i]);
			return 1;
		}
	return 0;
}

int gl_download_open(gl_engine *e, const gl_ctx *ctx, const char *type,
		     const char *id, const char *field, const char *key,
		     int has_key, const gl_request_info *ri, gl_download *dl,
		     gl_err *err)
{
	gl_target tg;
	json_t *b, *args = NULL;
	char *selected = NULL;
	int rc = -1, any;
	json_t *tgt;
	gl_creds cr;

	memset(&tg, 0, sizeof tg);
	memset(dl, 0, sizeof *dl);
	dl->fd = -1;
	if (gl_core_load(e, ctx, type, id, 0, &tg.af, err) < 0)
		return -1;
	tgt = gl_core_target(tg.af.doc);
	gl_ctx_creds(ctx, &cr);
	any = gl_policy_check(e->policy, "artifact:download_from_any_artifact",
			      &cr, tgt);
	json_decref(tgt);
	if (!any &&
	    gl_core_policy(e, ctx, "artifact:download", tg.af.doc, err) < 0)
		goto out;
	if (gl_streq(gl_json_str(tg.af.doc, "status"), "deleted")) {
		gl_fail(err, 403, "Forbidden",
			"Artifact %s is deleted: its blobs cannot be downloaded",
			id);
		goto out;
	}
	if (gl_blob_resolve(&tg, field, key, has_key, 0, err) < 0)
		goto out;
	if (tg.f->kind == GK_FOLDER && !tg.key) {
		/* no key: the type's location-selection hook picks one */
		json_t *cj, *af, *rq;
		if (!tg.f->select_location) {
			gl_fail(err, 400, "BadRequest",
				"Field '%s' is a blob dict: a key is required",
				field);
			goto out;
		}
		af = gl_core_output(e, ctx, tg.af.ts, tg.af.type, tg.af.doc,
				    err);
		if (!af)
			goto out;
		cj = gl_core_ctx_json(ctx);
		rq = json_pack("{s:s, s:s, s:s, s:O}", "method",
			       ri && ri->method ? ri->method : "GET", "path",
			       ri && ri->path ? ri->path : "", "remote_addr",
			       ri && ri->remote_addr ? ri->remote_addr : "",
			       "headers",
			       ri && ri->headers ? ri->headers
						 : json_object());
		rc = gl_types_select_location(tg.af.ts, gl_ctx_lua(ctx),
					      tg.af.type, field, cj, af, rq,
					      &selected, err);
		json_decref(cj);
		json_decref(af);
		json_decref(rq);
		if (rc < 0)
			goto out;
		rc = -1;
		if (!selected) {
			gl_fail(err, 404, "NotFound",
				"No location of '%s' suits this request",
				field);
			goto out;
		}
		tg.key = selected;
		tg.cur = gl_blob_record(tg.af.doc, tg.f, tg.key);
	}
	b = tg.cur;
	if (!b) {
		gl_fail(err, 404, "NotFound", "Blob '%s%s%s' is not set",
			field, tg.key ? "/" : "", tg.key ? tg.key : "");
		goto out;
	}
	if (gl_streq(gl_json_str(b, "status"), "saving")) {
		gl_fail(err, 409, "Conflict",
			"Blob '%s' is being uploaded; try again later", field);
		goto out;
	}
	args = gl_core_blob_args(field, tg.key, NULL);
	if (gl_core_hook(e, tg.af.ts, tg.af.type, GL_HOOK_PRE_DOWNLOAD, ctx,
			 tg.af.doc, args, NULL, err) < 0)
		goto out;

	dl->size = json_is_integer(json_object_get(b, "size"))
			   ? json_integer_value(json_object_get(b, "size"))
			   : -1;
	dl->max_size = tg.f->max_blob_size;
	copy_str(dl->content_type, sizeof dl->content_type,
		 header_safe(gl_json_str(b, "content_type"))
			 ? gl_json_str(b, "content_type")
			 : "application/octet-stream");
	copy_sum(dl->md5, 0, gl_json_str(b, "md5"));
	copy_sum(dl->sha1, 1, gl_json_str(b, "sha1"));
	copy_sum(dl->sha256, 2, gl_json_str(b, "sha256"));
	copy_str(dl->field, sizeof dl->field, field);
	dl->key = tg.key ? strdup(tg.key) : NULL;
	dl->artifact_id = strdup(id);
	if (json_is_true(json_object_get(b, "external"))) {
		const char *vs = gl_json_str(b, "verify_status");
		const gl_type_conf *tc = gl_conf_type(e->conf,
						      tg.af.type->name);
		if (gl_streq(vs, "changed")) {
			gl_fail(err, 409, "Conflict",
				"External blob '%s' changed since it was "
				"registered (%s); it is not served until it "
				"verifies again",
				field,
				gl_json_str(b, "verify_error")
					? gl_json_str(b, "verify_error")
					: "checksum mismatch");
			goto out;
		}
		if (gl_streq(vs, "gone")) {
			gl_fail(err, 410, "Gone",
				"External blob '%s' is no longer available at "
				"its URL (%s)",
				field,
				gl_json_str(b, "verify_error")
					? gl_json_str(b, "verify_error")
					: "not found");
			goto out;
		}
		if (usable_url(dl, gl_json_str(b, "url"), field, err) < 0)
			goto out;
		dl->kind = gl_streq(tc->external_download, "proxy") &&
					   dl->sha256[0]
				   ? GL_DL_PROXY
				   : GL_DL_REDIRECT;
	} else if (gl_streq(gl_json_str(b, "store"), "external")) {
		/* an internal location taken on trust: its URL is not shown,
		 * the bytes pass through us as they are */
		if (usable_url(dl, gl_json_str(b, "location"), field, err) < 0)
			goto out;
		dl->kind = GL_DL_PROXY;
		dl->trusted = 1;
	} else if (gl_streq(gl_json_str(b, "store"), "database")) {
		dl->kind = GL_DL_DATABASE;
		dl->location = strdup(gl_json_str(b, "location"));
	} else if (gl_streq(gl_json_str(b, "store"), "s3")) {
		dl->kind = GL_DL_S3;
		dl->location = strdup(gl_json_str(b, "location"));
	} else {
		int64_t sz;
		dl->kind = GL_DL_FILE;
		if (gl_store_open_object(e->store, gl_json_str(b, "location"),
					 &dl->fd, &sz, err) < 0)
			goto out;
		if (dl->size >= 0 && sz != dl->size) {
			gl_fail(err, 500, "StoreError",
				"Stored object of %s/%s has %lld bytes, the "
				"record says %lld",
				id, field, (long long)sz, (long long)dl->size);
			goto out;
		}
	}
	if (gl_core_hook(e, tg.af.ts, tg.af.type, GL_HOOK_POST_DOWNLOAD, ctx,
			 tg.af.doc, args, NULL, err) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		gl_download_free(dl);
	json_decref(args);
	free(selected);
	gl_target_clear(&tg);
	return rc;
}

int64_t gl_download_read_data(gl_engine *e, const char *location, int64_t off,
			      void *buf, int64_t len, gl_err *err)
{
	return gl_meta_data_read(e->meta, location, off, buf, len, err);
}

/* What one verification of an external blob saw. */
typedef struct verify_seen {
	const char *status; /* ok | changed | gone | error */
	const char *why;    /* NULL when ok */
	int64_t size;       /* bytes received, -1 unknown */
	const char *sha256; /* of those bytes, NULL unknown */
	int rehashed;       /* the bytes were hashed (not a 304) */
	const char *etag, *last_modified; /* for the next conditional check */
} verify_seen;

static json_t *int_or_null(const json_t *v)
{
	return json_is_integer(v) ? json_incref((json_t *)v) : json_null();
}

/* The one place a verification outcome is recorded: the blob's
 * verification state (verify_status, verified_at, verify_error) and, when
 * that state changes, its event (verify_changed, verify_gone,
 * verify_restored), in one transaction. A check that could not be made
 * ("error") judges nothing: a changed/gone flag stands. */
static int record_verify(gl_engine *e, const char *artifact_id,
			 const char *field, const char *key,
			 const verify_seen *vs)
{
	json_t *doc = NULL, *b, *rec, *extra = NULL;
	const gl_type *t = NULL;
	gl_types *ts = gl_types_ref(e->types);
	gl_err err = { 0 };
	const char *prev, *event = NULL;
	int rc = -1, now_flag, was_flag;

	if (gl_meta_begin(e->meta, &err) < 0)
		goto out;
	if (gl_meta_get(e->meta, NULL, artifact_id, &doc, &err) != 0)
		goto rollback;
	t = gl_types_find(ts, gl_json_str(doc, "type_name"));
	json_decref(doc);
	doc = NULL;
	if (!t || gl_meta_get(e->meta, t, artifact_id, &doc, &err) != 0)
		goto rollback;
	b = json_object_get(doc, field);
	if (key && *key)
		b = json_object_get(b, key);
	if (!json_is_object(b))
		goto rollback;
	prev = gl_json_str(b, "verify_status");
	was_flag = gl_streq(prev, "changed") || gl_streq(prev, "gone");
	rec = json_deep_copy(b);
	json_object_set_new(rec, "verified_at", json_integer(gl_now_us()));
	if (strcmp(vs->status, "error") != 0 || !was_flag) {
		json_object_set_new(rec, "verify_status",
				    gl_json_text(vs->status));
		if (vs->why)
			json_object_set_new(rec, "verify_error",
					    gl_json_text(vs->why));
		else
			json_object_del(rec, "verify_error");
	}
	if (vs->rehashed) {
		/* what the next conditional check asks about */
		json_object_set_new(rec, "rehashed_at",
				    json_integer(gl_now_us()));
		json_object_del(rec, "etag");
		json_object_del(rec, "last_modified");
		if (vs->etag && *vs->etag)
			json_object_set_new(rec, "etag",
					    gl_json_text(vs->etag));
		if (vs->last_modified && *vs->last_modified)
			json_object_set_new(rec, "last_modified",
					    gl_json_text(vs->last_modified));
	}
	now_flag = !strcmp(vs->status, "changed") ||
		   !strcmp(vs->status, "gone");
	if (now_flag && !gl_streq(prev, vs->status))
		event = !strcmp(vs->status, "changed") ? "verify_changed"
						       : "verify_gone";
	else if (!strcmp(vs->status, "ok") && was_flag)
		event = "verify_restored";
	if (event) {
		extra = json_pack("{s:s, s:s?, s:s?, s:o, s:s?, s:o, s:s?, s:s?}",
				  "blob", field, "key",
				  key && *key ? key : NULL, "url",
				  gl_json_str(b, "url"), "expected_size",
				  int_or_null(json_object_get(b, "size")),
				  "expected_sha256", gl_json_str(b, "sha256"),
				  "observed_size",
				  vs->size >= 0 ? json_integer(vs->size)
						: json_null(),
				  "observed_sha256", vs->sha256, "reason",
				  vs->why);
	}
	rc = gl_meta_blob_set(e->meta, artifact_id, field, key ? key : "", rec,
			      &err);
	json_decref(rec);
	if (rc == 0 && event &&
	    gl_events_emit(e->events, event, t->name, doc, extra, &err) < 0)
		rc = -1;
	if (rc == 0 && gl_meta_commit(e->meta, &err) == 0)
		goto out;
rollback:
	gl_meta_rollback(e->meta);
	rc = -1;
out:
	json_decref(extra);
	json_decref(doc);
	gl_types_unref(ts);
	if (rc < 0 && err.msg[0])
		gl_warn("verify %s/%s: cannot record status: %s", artifact_id,
			field, err.msg);
	return rc;
}

static int set_verify(gl_engine *e, const char *artifact_id, const char *field,
		      const char *key, const char *status, const char *why)
{
	verify_seen vs = { .status = status, .why = why, .size = -1 };

	return record_verify(e, artifact_id, field, key, &vs);
}

void gl_download_flag(gl_engine *e, const char *artifact_id, const char *field,
		      const char *key, const char *why)
{
	gl_error("external blob %s/%s%s%s flagged: %s", artifact_id, field,
		 key ? "/" : "", key ? key : "", why);
	set_verify(e, artifact_id, field, key, "changed", why);
}

/* ---- the reader ------------------------------------------------------------- */

struct gl_download_read {
	gl_engine *e;
	const gl_download *dl;
	int judge;    /* compare with the record at the end */
	int64_t want; /* bytes the range holds, -1 unknown */
	gl_fetch_job *fj;
	gl_s3_get *s3g;
	gl_digest *dg;
	int64_t got;
	int stopped;           /* the consumer said stop */
	struct evbuffer *hold; /* the tail, until judged */
	gl_download_data_fn data;
	gl_download_end_fn done;
	void *arg;
	/* flagging: the flag's coroutine ends the read (flag_end); a cancel
	 * meanwhile only marks it cancelled */
	int flagging, cancelled;
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
		rc = r->data(r->arg,
			     (const char *)evbuffer_pullup(r->hold, -1), len);
	return rc < 0 ? -1 : 0;
}

static int rd_stopped(gl_download_read *r)
{
	gl_err err;

	gl_fail(&err, 499, NULL, "the consumer stopped the download");
	rd_end(r, &err);
	return 1;
}

/* The bytes differ from the record: flag the blob (database work, so in
 * a coroutine), then end the read with 502, so the consumer's broken
 * answer never comes before the flag. dl is the consumer's, which may go
 * (a cancel) while the flag waits: what the flag needs is copied first. */
typedef struct flag_end {
	gl_download_read *r;
	char *id, *field, *key, *url, *why;
} flag_end;

static void flag_end_run(void *arg)
{
	flag_end *fe = arg;
	gl_download_read *r = fe->r;
	gl_err err = { 0 };

	gl_download_flag(r->e, fe->id, fe->field, fe->key, fe->why);
	if (r->cancelled) {
		rd_free(r);
	} else {
		gl_fail(&err, 502, "BadGateway",
			"the data at %s changed (%s); the blob is flagged",
			fe->url, fe->why);
		rd_end(r, &err);
	}
	free(fe->id);
	free(fe->field);
	free(fe->key);
	free(fe->url);
	free(fe->why);
	free(fe);
}

static void flag_end_start(gl_download_read *r, const char *why)
{
	const gl_download *dl = r->dl;
	flag_end *fe = gl_xcalloc(1, sizeof *fe);

	fe->r = r;
	fe->id = gl_xstrdup(dl->artifact_id);
	fe->field = gl_xstrdup(dl->field);
	fe->key = dl->key ? gl_xstrdup(dl->key) : NULL;
	fe->url = gl_xstrdup(dl->url);
	fe->why = gl_xstrdup(why);
	r->flagging = 1;
	gl_coro_go(flag_end_run, fe);
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
	switch (gl_download_verdict(dl, res->ok, r->got, &h, why,
				    sizeof why)) {
	case 0:
		if (rd_release(r) < 0) {
			rd_stopped(r);
			return;
		}
		rd_end(r, NULL);
		return;
	case 1:
		flag_end_start(r, why);
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
		if (gl_download_verdict(dl, 1, r->got, &h, why, sizeof why) !=
		    0) {
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
			"bytes",
			(long long)r->got, (long long)r->want);
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
		gl_fetch *f = gl_core_fetch(e, err);

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
	if (r->flagging) {
		r->cancelled = 1; /* flag_end_run frees it */
		return;
	}
	if (r->fj)
		gl_fetch_cancel(r->fj);
	if (r->s3g)
		gl_s3_get_cancel(r->s3g);
	rd_free(r);
}

/* ---- re-verification ----------------------------------------------------------- */

/* Take a blob for verification: move its verified_at to now, unless it
 * moved since it was listed (another verifier, maybe on another node, has
 * it). The write transaction makes the test-and-set atomic. */
static int claim(gl_engine *e, const char *aid, const char *field,
		 const char *key, const json_t *seen)
{
	json_t *doc = NULL, *b, *rec;
	gl_types *ts = gl_types_ref(e->types);
	const gl_type *t;
	gl_err err = { 0 };
	int ok = 0;

	if (gl_meta_begin(e->meta, &err) < 0)
		goto out;
	if (gl_meta_get(e->meta, NULL, aid, &doc, &err) != 0 ||
	    !(t = gl_types_find(ts, gl_json_str(doc, "type_name"))))
		goto rollback;
	json_decref(doc);
	doc = NULL;
	if (gl_meta_get(e->meta, t, aid, &doc, &err) != 0)
		goto rollback;
	b = json_object_get(doc, field);
	if (key)
		b = json_object_get(b, key);
	if (!json_is_object(b) ||
	    !json_equal(json_object_get(b, "verified_at")
				? json_object_get(b, "verified_at")
				: json_null(),
			seen ? seen : json_null()))
		goto rollback;
	rec = json_deep_copy(b);
	json_object_set_new(rec, "verified_at", json_integer(gl_now_us()));
	ok = gl_meta_blob_set(e->meta, aid, field, key ? key : "", rec,
			      &err) == 0;
	json_decref(rec);
	if (ok && gl_meta_commit(e->meta, &err) == 0)
		goto out;
	ok = 0;
rollback:
	gl_meta_rollback(e->meta);
out:
	json_decref(doc);
	gl_types_unref(ts);
	return ok;
}

/* The conditional request a check may make instead of a full re-hash:
 * the type has a re-hash interval, the last full check is recent enough,
 * it left a validator, and the blob is not flagged (only a full re-hash
 * can clear a flag). */
static int conditional_ok(const gl_type_conf *tc, const json_t *b, int64_t now)
{
	json_t *at = json_object_get(b, "rehashed_at");
	const char *vs = gl_json_str(b, "verify_status");

	if (tc->external_location_rehash_interval <= 0 || !json_is_integer(at))
		return 0;
	if (vs && strcmp(vs, "ok") != 0)
		return 0;
	if (!gl_json_str(b, "etag") && !gl_json_str(b, "last_modified"))
		return 0;
	return now - json_integer_value(at) <
	       (int64_t)tc->external_location_rehash_interval * 1000000;
}

/* The most bytes a blob of type_name's field may hold (a default when the
 * type is gone). */
static int64_t field_cap(gl_types *ts, const char *type_name,
			 const char *field)
{
	const gl_type *t = type_name ? gl_types_find(ts, type_name) : NULL;
	const gl_field *f = t && field ? gl_type_field(t, field) : NULL;

	return f ? f->max_blob_size : 10485760;
}

int gl_download_verify_external(gl_engine *e, int limit, int min_age_s,
				int *changed, gl_err *err)
{
	int64_t now = gl_now_us();
	json_t *list = NULL, *it;
	size_t i;
	int n = 0;
	gl_types *ts;

	*changed = 0;
	if (gl_meta_external_blobs(e->meta, limit, &list, err) < 0)
		return -1;
	ts = gl_types_ref(e->types);
	json_array_foreach(list, i, it) {
		const json_t *b = json_object_get(it, "blob");
		const char *aid = gl_json_str(it, "artifact_id"),
			   *f = gl_json_str(it, "field");
		const char *key = gl_json_str(it, "key");
		const char *url = gl_json_str(b, "url");
		const gl_type_conf *tc =
			gl_conf_type(e->conf, gl_json_str(it, "type_name"));
		int64_t age_us =
			(int64_t)(tc->external_location_check_interval > 0
					  ? tc->external_location_check_interval
					  : min_age_s) *
			1000000;
		gl_fetch_result res;
		gl_fetch_opts fo;
		gl_download rec;
		json_t *sz = json_object_get(b, "size");
		char why[1200];
		gl_err uerr;
		verify_seen vs = { .status = "ok", .size = -1 };

		if (!url || !gl_streq(gl_json_str(b, "status"), "active"))
			continue;
		if (key && !*key)
			key = NULL;
		/* the type's schedule, or the caller's minimum age */
		if (age_us > 0 &&
		    json_integer_value(json_object_get(b, "verified_at")) >
			    now - age_us)
			continue; /* checked recently (maybe by another node) */
		if (!claim(e, aid, f, key, json_object_get(b, "verified_at")))
			continue; /* another verifier took it meanwhile */
		memset(&fo, 0, sizeof fo);
		memset(&rec, 0, sizeof rec);
		rec.size = json_is_integer(sz) ? json_integer_value(sz) : -1;
		for (int k = 0; k < 3; k++)
			copy_sum(k == 0   ? rec.md5
				 : k == 1 ? rec.sha1
					  : rec.sha256,
				 k, gl_json_str(b, gl_blob_sum_names[k]));
		/* read up to the field's limit (a size unknown in trust mode
		 * is no reason to read without end), at least one byte more
		 * than recorded to see growth */
		fo.max_bytes = field_cap(ts, gl_json_str(it, "type_name"), f);
		if (rec.size >= 0 && rec.size + 1 > fo.max_bytes)
			fo.max_bytes = rec.size + 1;
		if (conditional_ok(tc, b, now)) {
			/* cheap first: unchanged since the last full check? */
			fo.if_none_match = gl_json_str(b, "etag");
			fo.if_modified_since = gl_json_str(b, "last_modified");
		}
		why[0] = '\0';
		if (gl_url_check(url, strlen(url), &uerr) < 0) {
			snprintf(why, sizeof why, "%s", uerr.msg);
			memset(&res, 0, sizeof res); /* a record from before */
		} else {
			gl_fetch_sync(e->conf, url, &fo, &res);
			snprintf(why, sizeof why, "%s", res.err.msg);
		}
		vs.rehashed = res.ok && res.http_status != 304;
		vs.etag = res.etag;
		vs.last_modified = res.last_modified;
		if (!res.ok && res.http_status == 304 &&
		    (fo.if_none_match || fo.if_modified_since)) {
			vs.status = "ok";
			why[0] = '\0';
		} else {
			if (res.ok) {
				vs.size = res.size;
				vs.sha256 = res.digest.sha256;
			}
			/* only bytes that were read and differ make a change;
			 * a failed or refused fetch is an error (or the URL is
			 * gone) */
			switch (gl_download_verdict(&rec, res.ok, res.size,
						    &res.digest, why,
						    sizeof why)) {
			case 1:
				vs.status = "changed";
				break;
			case 0:
				why[0] = '\0';
				break;
			default:
				vs.status = res.http_status == 404 ||
							    res.http_status ==
								    410
						    ? "gone"
						    : "error";
			}
		}
		if (!strcmp(vs.status, "changed") ||
		    !strcmp(vs.status, "gone")) {
			(*changed)++;
			gl_error("verify: external blob %s/%s%s%s at %s %s: %s",
				 aid, f, key ? "/" : "", key ? key : "", url,
				 vs.status, why);
		} else if (!strcmp(vs.status, "ok") &&
			   (gl_streq(gl_json_str(b, "verify_status"),
				     "changed") ||
			    gl_streq(gl_json_str(b, "verify_status"),
				     "gone"))) {
			gl_info("verify: external blob %s/%s at %s verifies "
				"again; flag cleared",
				aid, f, url);
		}
		vs.why = why[0] ? why : NULL;
		record_verify(e, aid, f, key, &vs);
		gl_metrics_verify(vs.status);
		n++;
	}
	json_decref(list);
	gl_types_unref(ts);
	return n;
}
