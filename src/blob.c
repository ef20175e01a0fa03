/* blob.c - the data half of the engine: downloads, external and internal
 * locations, deletion of external blobs, the blob stores' set-up and
 * re-verification of external blobs. Uploads are upload.c's; heartbeats,
 * takeover of dead owners' work and the cleanups are maint.c's.
 *
 * Registering an external location is a "saving" record like an upload's
 * (upload.c), with a fetch (fetch.c) in place of the request body: nothing
 * is recorded unless the bytes were received in full and match every
 * checksum the client supplied.
 */
#include "engine_priv.h"
#include "coro.h"
#include "digest.h"
#include "owner.h"
#include "s3.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define HOOK_READ_MAX (1 << 20) /* bytes a hook may read from an upload */

static const char *sget(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* ---- shared checks ------------------------------------------------------- */

void gl_target_clear(gl_target *tg)
{
	gl_af_clear(&tg->af);
	memset(tg, 0, sizeof *tg);
}

json_t *gl_blob_record(const json_t *doc, const gl_field *f,
		       const char *key)
{
	json_t *v = json_object_get(doc, f->name);
	if (!json_is_object(v))
		return NULL;
	if (f->kind == GK_FOLDER)
		return json_object_get(v, key);
	return v;
}

/* Resolve field/key on a loaded artifact (the 400s of E8/E11 in
 * docs/glare-contract.md "Status codes by endpoint"). */
int gl_blob_resolve(gl_target *tg, const char *field, const char *key,
		    int has_key, int need_key, gl_err *err)
{
	const gl_type *t = tg->af.type;

	tg->field = field;
	tg->f = gl_type_field(t, field);
	if (!tg->f)
		return gl_fail(err, 400, "BadRequest",
			       "Unknown field '%s' for artifact type %s", field,
			       t->name);
	if (tg->f->kind != GK_BLOB && tg->f->kind != GK_FOLDER)
		return gl_fail(err, 400, "BadRequest",
			       "Field '%s' is not a blob field", field);
	if (tg->f->kind == GK_BLOB && has_key)
		return gl_fail(err, 400, "BadRequest",
			       "Field '%s' is a blob, not a blob dict: no key "
			       "expected", field);
	if (tg->f->kind == GK_FOLDER) {
		if (!has_key || !key || !*key) {
			if (need_key)
				return gl_fail(err, 400, "BadRequest",
					       "Field '%s' is a blob dict: a key "
					       "is required", field);
		} else {
			size_t n = strlen(key);
			if (n < 1 || (int)n > tg->f->max_key_length)
				return gl_fail(err, 400, "BadRequest",
					       "Key of '%s' must have 1 to %d "
					       "characters", field,
					       tg->f->max_key_length);
			if (!gl_utf8_valid(key, n, 0))
				return gl_fail(err, 400, "BadRequest",
					       "Key of '%s' is not valid UTF-8 "
					       "(4-byte characters are not "
					       "allowed)", field);
			tg->key = key;
		}
	}
	tg->cur = tg->key || tg->f->kind == GK_BLOB
			  ? gl_blob_record(tg->af.doc, tg->f, tg->key)
			  : NULL;
	return 0;
}

/* Bytes this blob may hold: field limit, folder space, quotas. Inside the
 * write transaction so concurrent uploads cannot both take the last
 * bytes. */
int gl_blob_allowed(gl_engine *e, const gl_target *tg, const json_t *doc,
		    int64_t *limit, char *why, size_t whylen, gl_err *err)
{
	const gl_field *f = tg->f;
	const char *owner = sget(doc, "owner");
	const char *scopes[2] = { NULL, tg->af.type->name };
	int64_t cur_size = 0;
	json_t *cur = gl_blob_record(doc, f, tg->key);

	if (cur)
		cur_size = json_integer_value(json_object_get(
			cur, gl_streq(sget(cur, "status"), "saving") ? "reserved"
								     : "size"));
	*limit = f->max_blob_size;
	snprintf(why, whylen, "the maximum blob size of field '%s' (%lld bytes)",
		 f->name, (long long)f->max_blob_size);
	if (f->kind == GK_FOLDER) {
		int64_t used = 0;
		json_t *folder = json_object_get(doc, f->name), *b;
		const char *k;
		json_object_foreach(folder, k, b) {
			if (tg->key && !strcmp(k, tg->key))
				continue;
			used += json_integer_value(json_object_get(
				b, gl_streq(sget(b, "status"), "saving")
					   ? "reserved" : "size"));
		}
		if (f->max_folder_size - used < *limit) {
			*limit = f->max_folder_size - used;
			snprintf(why, whylen,
				 "the space left in blob dict '%s' (%lld of %lld "
				 "bytes)", f->name, (long long)*limit,
				 (long long)f->max_folder_size);
		}
	}
	for (int i = 0; i < 2; i++) {
		int64_t q, used;
		if (gl_engine_quota(e, owner, "max_uploaded_data", scopes[i], &q,
				    err) < 0)
			return -1;
		if (q < 0)
			continue;
		if (gl_meta_used_bytes(e->meta, owner, scopes[i], &used, err) < 0)
			return -1;
		used -= cur_size; /* the data being replaced is released */
		if (q - used < *limit) {
			*limit = q - used;
			snprintf(why, whylen,
				 "the uploaded data quota%s%s of project %s "
				 "(%lld bytes left)",
				 scopes[i] ? " for type " : "",
				 scopes[i] ? scopes[i] : "", owner,
				 (long long)(*limit < 0 ? 0 : *limit));
		}
	}
	return 0;
}

const char *gl_blob_store_of(gl_engine *e, const gl_type *t)
{
	const gl_type_conf *tc = gl_conf_type(e->conf, t->name);
	const char *s = tc->default_store ? tc->default_store
					  : e->conf->default_store;
	if (!strcasecmp(s, "database") || !strcasecmp(s, "sql"))
		return "database";
	if (!strcasecmp(s, "s3"))
		return "s3";
	return "file";
}

/* The folder demands one sha256 for all its blobs (mirrors). */
int gl_blob_same_sha_ok(const gl_target *tg, const json_t *doc,
			const char *sha, gl_err *err)
{
	json_t *folder, *b;
	const char *k;

	if (tg->f->kind != GK_FOLDER || !tg->f->same_sha256)
		return 0;
	folder = json_object_get(doc, tg->f->name);
	json_object_foreach(folder, k, b) {
		const char *s = sget(b, "sha256");
		if (tg->key && !strcmp(k, tg->key))
			continue;
		if (!gl_streq(sget(b, "status"), "active") || !s)
			continue;
		if (strcmp(s, sha) != 0)
			return gl_fail(err, 409, "Conflict",
				       "Blob dict '%s' holds copies of one blob: "
				       "key '%s' has sha256 %s, this one %s",
				       tg->f->name, k, s, sha);
	}
	return 0;
}

int gl_blob_release(gl_engine *e, const json_t *blob, gl_err *err)
{
	const char *store = sget(blob, "store"), *loc = sget(blob, "location");

	/* external data is never ours to delete: the record just goes */
	if (json_is_true(json_object_get(blob, "external")) || !store || !loc ||
	    !strcmp(store, "external"))
		return 0;
	return gl_meta_gc_push(e->meta, store, loc, err);
}

/* Put back the record an upload or fetch replaced (or drop the new key). */
int gl_blob_restore_prev(gl_engine *e, const char *id, const char *field,
			 const char *key, const json_t *prev, gl_err *err)
{
	if (json_is_object(prev))
		return gl_meta_blob_set(e->meta, id, field, key ? key : "", prev,
					err);
	return gl_meta_blob_delete(e->meta, id, field, key ? key : "", err);
}

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

/* Checksum lengths in hex digits: md5, sha1, sha256. */
static const char *const sum_names[] = { "md5", "sha1", "sha256" };
static const size_t sum_len[] = { 32, 40, 64 };

/* A recorded checksum, only if it is one: these go out in headers, and a
 * record may predate the checks (trust mode once took any string). */
static void copy_sum(char *dst, int which, const char *src)
{
	dst[0] = '\0';
	if (src && gl_hex_valid(src, strlen(src), sum_len[which]))
		memcpy(dst, src, sum_len[which] + 1);
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
	char why[128];

	if (!url)
		url = "";
	if (gl_url_check(url, strlen(url), why, sizeof why) < 0)
		return gl_fail(err, 409, "Conflict",
			       "The recorded URL of blob '%s' is not usable "
			       "(%s); set the location again", field, why);
	if (!(dl->url = strdup(url)))
		return gl_fail(err, 500, NULL, "out of memory");
	return 0;
}

int gl_external_verdict(const gl_download *dl, int complete, int64_t got,
			const gl_digest_hex *h, char *why, size_t whylen)
{
	const char *rec[] = { dl->md5, dl->sha1, dl->sha256 };
	const char *have[] = { h->md5, h->sha1, h->sha256 };

	if (dl->trusted) /* taken on trust: nothing to hold the bytes to */
		return complete ? 0 : -1;
	if (dl->size >= 0 && got > dl->size) {
		snprintf(why, whylen, "more bytes than the recorded %lld "
			 "(%lld read)", (long long)dl->size, (long long)got);
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
				 sum_names[i], have[i], rec[i]);
			return 1;
		}
	return 0;
}

int gl_engine_download(gl_engine *e, const gl_ctx *ctx, const char *type,
		       const char *id, const char *field, const char *key,
		       int has_key, const gl_request_info *ri,
		       gl_download *dl, gl_err *err)
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
	if (gl_engine_load(e, ctx, type, id, 0, &tg.af, err) < 0)
		return -1;
	tgt = gl_engine_target(tg.af.doc);
	gl_ctx_creds(ctx, &cr);
	any = gl_policy_check(e->policy, "artifact:download_from_any_artifact",
			      &cr, tgt);
	json_decref(tgt);
	if (!any && gl_engine_policy(e, ctx, "artifact:download", tg.af.doc,
				     err) < 0)
		goto out;
	if (gl_streq(sget(tg.af.doc, "status"), "deleted")) {
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
		af = gl_engine_output(e, ctx, tg.af.ts, tg.af.type, tg.af.doc,
				      err);
		if (!af)
			goto out;
		cj = gl_engine_ctx_json(ctx);
		rq = json_pack("{s:s, s:s, s:s, s:O}", "method",
			       ri && ri->method ? ri->method : "GET", "path",
			       ri && ri->path ? ri->path : "", "remote_addr",
			       ri && ri->remote_addr ? ri->remote_addr : "",
			       "headers",
			       ri && ri->headers ? ri->headers : json_object());
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
				"No location of '%s' suits this request", field);
			goto out;
		}
		tg.key = selected;
		tg.cur = gl_blob_record(tg.af.doc, tg.f, tg.key);
	}
	b = tg.cur;
	if (!b) {
		gl_fail(err, 404, "NotFound", "Blob '%s%s%s' is not set", field,
			tg.key ? "/" : "", tg.key ? tg.key : "");
		goto out;
	}
	if (gl_streq(sget(b, "status"), "saving")) {
		gl_fail(err, 409, "Conflict",
			"Blob '%s' is being uploaded; try again later", field);
		goto out;
	}
	args = gl_engine_blob_args(field, tg.key, NULL);
	if (gl_engine_hook(e, tg.af.ts, tg.af.type, GL_HOOK_PRE_DOWNLOAD, ctx,
			   tg.af.doc, args, NULL, err) < 0)
		goto out;

	dl->size = json_is_integer(json_object_get(b, "size"))
			   ? json_integer_value(json_object_get(b, "size"))
			   : -1;
	dl->max_size = tg.f->max_blob_size;
	copy_str(dl->content_type, sizeof dl->content_type,
		 header_safe(sget(b, "content_type"))
			 ? sget(b, "content_type")
			 : "application/octet-stream");
	copy_sum(dl->md5, 0, sget(b, "md5"));
	copy_sum(dl->sha1, 1, sget(b, "sha1"));
	copy_sum(dl->sha256, 2, sget(b, "sha256"));
	copy_str(dl->field, sizeof dl->field, field);
	dl->key = tg.key ? strdup(tg.key) : NULL;
	dl->artifact_id = strdup(id);
	if (json_is_true(json_object_get(b, "external"))) {
		const char *vs = sget(b, "verify_status");
		const gl_type_conf *tc = gl_conf_type(e->conf, tg.af.type->name);
		if (gl_streq(vs, "changed")) {
			gl_fail(err, 409, "Conflict",
				"External blob '%s' changed since it was "
				"registered (%s); it is not served until it "
				"verifies again", field,
				sget(b, "verify_error") ? sget(b, "verify_error")
							: "checksum mismatch");
			goto out;
		}
		if (gl_streq(vs, "gone")) {
			gl_fail(err, 410, "Gone",
				"External blob '%s' is no longer available at "
				"its URL (%s)", field,
				sget(b, "verify_error") ? sget(b, "verify_error")
							: "not found");
			goto out;
		}
		if (usable_url(dl, sget(b, "url"), field, err) < 0)
			goto out;
		dl->kind = gl_streq(tc->external_download, "proxy") &&
					   dl->sha256[0]
				   ? GL_DL_PROXY
				   : GL_DL_REDIRECT;
	} else if (gl_streq(sget(b, "store"), "external")) {
		/* an internal location taken on trust: its URL is not shown,
		 * the bytes pass through us as they are */
		if (usable_url(dl, sget(b, "location"), field, err) < 0)
			goto out;
		dl->kind = GL_DL_PROXY;
		dl->trusted = 1;
	} else if (gl_streq(sget(b, "store"), "database")) {
		dl->kind = GL_DL_DATABASE;
		dl->location = strdup(sget(b, "location"));
	} else if (gl_streq(sget(b, "store"), "s3")) {
		dl->kind = GL_DL_S3;
		dl->location = strdup(sget(b, "location"));
	} else {
		int64_t sz;
		dl->kind = GL_DL_FILE;
		if (gl_store_open_object(e->store, sget(b, "location"), &dl->fd,
					 &sz, err) < 0)
			goto out;
		if (dl->size >= 0 && sz != dl->size) {
			gl_fail(err, 500, "StoreError",
				"Stored object of %s/%s has %lld bytes, the "
				"record says %lld", id, field, (long long)sz,
				(long long)dl->size);
			goto out;
		}
	}
	if (gl_engine_hook(e, tg.af.ts, tg.af.type, GL_HOOK_POST_DOWNLOAD, ctx,
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

int64_t gl_engine_read_data(gl_engine *e, const char *location, int64_t off,
			    void *buf, int64_t len, gl_err *err)
{
	return gl_meta_data_read(e->meta, location, off, buf, len, err);
}

/* What one verification of an external blob saw. */
typedef struct verify_seen {
	const char *status;     /* ok | changed | gone | error */
	const char *why;        /* NULL when ok */
	int64_t size;           /* bytes received, -1 unknown */
	const char *sha256;     /* of those bytes, NULL unknown */
	int rehashed;           /* the bytes were hashed (not a 304) */
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
	t = gl_types_find(ts, sget(doc, "type_name"));
	json_decref(doc);
	doc = NULL;
	if (!t || gl_meta_get(e->meta, t, artifact_id, &doc, &err) != 0)
		goto rollback;
	b = json_object_get(doc, field);
	if (key && *key)
		b = json_object_get(b, key);
	if (!json_is_object(b))
		goto rollback;
	prev = sget(b, "verify_status");
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
			json_object_set_new(rec, "etag", gl_json_text(vs->etag));
		if (vs->last_modified && *vs->last_modified)
			json_object_set_new(rec, "last_modified",
					    gl_json_text(vs->last_modified));
	}
	now_flag = !strcmp(vs->status, "changed") || !strcmp(vs->status, "gone");
	if (now_flag && !gl_streq(prev, vs->status))
		event = !strcmp(vs->status, "changed") ? "verify_changed"
						       : "verify_gone";
	else if (!strcmp(vs->status, "ok") && was_flag)
		event = "verify_restored";
	if (event) {
		extra = json_pack("{s:s, s:s?, s:s?, s:o, s:s?, s:o, s:s?, s:s?}",
				  "blob", field, "key", key && *key ? key : NULL,
				  "url", sget(b, "url"), "expected_size",
				  int_or_null(json_object_get(b, "size")),
				  "expected_sha256", sget(b, "sha256"),
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

typedef struct flag_args {
	gl_engine *e;
	const char *artifact_id, *field, *key, *why;
} flag_args;

static void flag_run(void *arg)
{
	flag_args a = *(flag_args *)arg;
	char *id = gl_xstrdup(a.artifact_id), *f = gl_xstrdup(a.field);
	char *k = a.key ? gl_xstrdup(a.key) : NULL, *w = gl_xstrdup(a.why);

	/* the caller's strings are gone after the first wait */
	set_verify(a.e, id, f, k, "changed", w);
	free(id);
	free(f);
	free(k);
	free(w);
}

void gl_engine_flag_blob(gl_engine *e, const char *artifact_id,
			 const char *field, const char *key, const char *why)
{
	flag_args a = { e, artifact_id, field, key, why };

	gl_error("external blob %s/%s%s%s flagged: %s", artifact_id, field,
		 key ? "/" : "", key ? key : "", why);
	gl_coro_go(flag_run, &a); /* from a download's end: database work */
}

/* ---- locations ------------------------------------------------------------------ */

typedef struct gl_location_job {
	struct gl_location_job *next;
	gl_engine *e;
	const gl_ctx *ctx;
	gl_target tg;
	char *id, *field, *key, *url;
	char md5[33], sha1[41], sha256[65]; /* supplied, "" if none */
	int internal;            /* import into our store, as an upload */
	gl_upload *u;            /* internal: the upload the bytes feed */
	gl_upload *finishing;    /* internal: the upload being finished */
	gl_err werr;             /* internal: why the upload refused bytes */
	json_t *prev;
	gl_fetch_job *fj;
	gl_engine_done_fn done;
	void *arg;
	/* fetch_done's coroutine is at work: a cancel only detaches */
	int completing;
	/* the heartbeat holds jobs across its waits: job_free then leaves
	 * the memory to the last hold */
	int holds, gone;
} gl_location_job;

static void job_unlink(gl_engine *e, gl_location_job *j)
{
	for (gl_location_job **p = &e->jobs; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
}

static void job_mem_free(gl_location_job *j);

static void job_free(gl_location_job *j)
{
	if (j->u)
		gl_upload_abort(j->u);
	j->u = NULL;
	if (j->finishing)
		gl_upload_detach(j->finishing); /* it ends without us */
	j->finishing = NULL;
	j->gone = 1;
	if (!j->holds)
		job_mem_free(j);
}

static void job_mem_free(gl_location_job *j)
{
	json_decref(j->prev);
	gl_target_clear(&j->tg);
	free(j->id);
	free(j->field);
	free(j->key);
	free(j->url);
	free(j);
}

static void job_restore(gl_location_job *j)
{
	gl_err err = { 0 };
	gl_engine *e = j->e;
	if (j->internal)
		return; /* the upload restores its own record */
	if (gl_meta_begin(e->meta, &err) == 0) {
		if (gl_blob_restore_prev(e, j->id, j->field, j->key, j->prev, &err) == 0 &&
		    gl_meta_commit(e->meta, &err) == 0)
			return;
		gl_meta_rollback(e->meta);
	}
	gl_error("location %s/%s: cannot drop the placeholder: %s", j->id,
		 j->field, err.msg);
}

static void job_finish(gl_location_job *j, json_t *af, const gl_err *err)
{
	gl_engine_done_fn done = j->done;
	void *arg = j->arg;

	job_unlink(j->e, j);
	job_free(j);
	if (done) /* NULL: the caller left (gl_engine_cancel_location) */
		done(arg, af, err);
	json_decref(af);
}

static void job_fail(gl_location_job *j, const gl_err *err)
{
	job_restore(j);
	job_finish(j, NULL, err);
}

static int fetch_data(void *arg, const char *data, size_t len)
{
	gl_location_job *j = arg;
	int rc;

	if (!j->internal)
		return 0;
	/* the bytes of an internal location go into the store as an
	 * upload's would: same limits, same stores, same records */
	rc = gl_upload_write(j->u, data, len, &j->werr);
	return rc < 0 ? -1 : rc; /* 1: the store is behind, pause */
}

static void import_resume(void *arg)
{
	gl_location_job *j = arg;
	if (j->fj)
		gl_fetch_resume(j->fj);
}

static void import_done(void *arg, json_t *af, const gl_err *err)
{
	gl_location_job *j = arg;
	json_t *fresh = NULL, *args, *out = NULL;
	gl_err e2 = { 0 };

	j->u = NULL;
	j->finishing = NULL;
	if (!af) {
		job_finish(j, NULL, err);
		return;
	}
	if (!j->ctx) {
		/* detached: nobody waits for the answer (nor its hook) */
	} else if (gl_meta_get(j->e->meta, j->tg.af.type, j->id, &fresh,
			       &e2) == 0) {
		args = gl_engine_blob_args(j->field, j->key, NULL);
		if (gl_engine_hook(j->e, j->tg.af.ts, j->tg.af.type,
				   GL_HOOK_POST_ADD_LOCATION, j->ctx, fresh, args,
				   NULL, &e2) == 0)
			out = json_incref(af);
		json_decref(args);
	}
	json_decref(fresh);
	job_finish(j, out, out ? NULL : &e2);
}

static void fetch_done_run(void *arg);
static void fetch_done_steps(gl_location_job *j, const gl_fetch_result *res);

/* The fetch ended: the rest is database work, in a coroutine. */
typedef struct fetch_end {
	gl_location_job *j;
	gl_fetch_result res;
} fetch_end;

static void fetch_done(void *arg, const gl_fetch_result *res)
{
	fetch_end *fe = gl_xmalloc(sizeof *fe);

	fe->j = arg;
	fe->res = *res;
	fe->j->completing = 1;
	gl_coro_go(fetch_done_run, fe);
}

static void fetch_done_run(void *arg)
{
	fetch_end *fe = arg;

	fetch_done_steps(fe->j, &fe->res);
	free(fe);
}

static void fetch_done_steps(gl_location_job *j, const gl_fetch_result *res)
{
	gl_engine *e = j->e;
	gl_err err = { 0 };
	json_t *rec = NULL, *fresh = NULL, *cur, *af = NULL, *args;
	const gl_type *t = j->tg.af.type;
	char ct[256];
	int in_tx = 0;
	const char *given[] = { j->md5, j->sha1, j->sha256 };
	const char *got[] = { res->digest.md5, res->digest.sha1,
			      res->digest.sha256 };

	j->fj = NULL;
	if (j->internal && j->werr.status) {
		job_fail(j, &j->werr); /* the upload's own refusal (413, ...) */
		return;
	}
	if (!res->ok) {
		err = res->err;
		if (!err.status)
			gl_fail(&err, 400, "BadRequest", "fetching %s failed",
				j->url);
		job_fail(j, &err);
		return;
	}
	for (int i = 0; i < 3; i++) {
		if (given[i][0] && strcasecmp(given[i], got[i]) != 0) {
			gl_fail(&err, 400, "BadRequest",
				"%s mismatch for %s: supplied %s, computed %s",
				sum_names[i], j->url, given[i], got[i]);
			job_fail(j, &err);
			return;
		}
	}
	if (j->internal) {
		gl_upload *u = j->u;
		gl_upload_set_content_type(u, res->content_type);
		j->u = NULL;
		j->finishing = u; /* import_done may run before finish returns */
		if (gl_upload_finish(u, import_done, j, &err) < 0) {
			j->finishing = NULL;
			job_finish(j, NULL, &err);
		}
		return;
	}
	gl_media_type(res->content_type, ct, sizeof ct);
	if (gl_meta_begin(e->meta, &err) < 0)
		goto fail;
	in_tx = 1;
	if (gl_meta_get(e->meta, t, j->id, &fresh, &err) != 0) {
		if (!fresh)
			gl_fail(&err, 404, "ArtifactNotFound",
				"Artifact with id=%s was deleted", j->id);
		goto fail;
	}
	cur = gl_blob_record(fresh, j->tg.f, j->key);
	if (!cur || !gl_streq(sget(cur, "status"), "saving") ||
	    !gl_streq(sget(cur, "url"), j->url)) {
		gl_fail(&err, 409, "Conflict",
			"The location of %s was changed meanwhile", j->field);
		goto fail_noprev;
	}
	if (gl_blob_same_sha_ok(&j->tg, fresh, res->digest.sha256, &err) < 0)
		goto fail;
	rec = json_pack("{s:s, s:I, s:s, s:s, s:s, s:b, s:s?, s:s, s:s, s:s, "
			"s:I, s:s}",
			"status", "active", "size", (json_int_t)res->size, "md5",
			got[0], "sha1", got[1], "sha256", got[2], "external", 1,
			"content_type", ct[0] ? ct : NULL, "url", j->url,
			"store", "external", "location", j->url, "verified_at",
			(json_int_t)gl_now_us(), "verify_status", "ok");
	if (gl_meta_blob_set(e->meta, j->id, j->field, j->key ? j->key : "", rec,
			     &err) < 0 ||
	    gl_events_emit(e->events, "set_location", t->name, fresh, NULL,
			   &err) < 0 ||
	    gl_meta_commit(e->meta, &err) < 0)
		goto fail;
	in_tx = 0;
	gl_info("location %s registered for %s/%s%s%s: %lld bytes sha256 %s",
		j->url, j->id, j->field, j->key ? "/" : "",
		j->key ? j->key : "", (long long)res->size, got[2]);
	json_decref(fresh);
	fresh = NULL;
	if (!j->ctx) {
		/* detached: nobody waits for the answer (nor its hook) */
	} else if (gl_meta_get(e->meta, t, j->id, &fresh, &err) == 0) {
		args = gl_engine_blob_args(j->field, j->key, NULL);
		if (gl_engine_hook(e, j->tg.af.ts, t, GL_HOOK_POST_ADD_LOCATION,
				   j->ctx, fresh, args, NULL, &err) == 0)
			af = gl_engine_output(e, j->ctx, j->tg.af.ts, t, fresh,
					      &err);
		json_decref(args);
	}
	json_decref(rec);
	json_decref(fresh);
	job_finish(j, af, af ? NULL : &err);
	return;
fail:
	if (in_tx) {
		gl_meta_rollback(e->meta);
		in_tx = 0;
	}
	json_decref(rec);
	json_decref(fresh);
	job_fail(j, &err);
	return;
fail_noprev:
	if (in_tx)
		gl_meta_rollback(e->meta);
	json_decref(rec);
	json_decref(fresh);
	job_finish(j, NULL, &err);
}

static const char *const restricted_schemes[] = { "file", "filesystem",
						  "swift+config", "sql", NULL };
static const char *const other_schemes[] = {
	"swift", "swift+http", "swift+https", "rbd", "sheepdog", "cinder",
	"vsphere", NULL
};

static int scheme_in(const char *url, const char *const *list)
{
	for (int i = 0; list[i]; i++) {
		size_t n = strlen(list[i]);
		if (!strncasecmp(url, list[i], n) && !strncmp(url + n, "://", 3))
			return 1;
	}
	return 0;
}

static int is_http_url(const char *url)
{
	return !strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8);
}

int gl_engine_add_location(gl_engine *e, const gl_ctx *ctx, const char *type,
			   const char *id, const char *field, const char *key,
			   int has_key, const json_t *body,
			   gl_engine_done_fn done, void *arg, gl_err *err)
{
	gl_location_job *j = calloc(1, sizeof *j);
	const char *url, *lt, *k;
	json_t *v, *fresh = NULL, *cur, *rec = NULL, *args;
	const gl_type_conf *tc;
	const char *verification;
	int64_t limit;
	char why[256];
	int in_tx = 0;

	if (!j)
		return gl_fail(err, 500, NULL, "out of memory");
	j->e = e;
	j->ctx = ctx;
	j->done = done;
	j->arg = arg;
	if (!json_is_object(body)) {
		gl_fail(err, 400, "BadRequest",
			"A location must be a JSON object with a 'url'");
		goto fail;
	}
	if (gl_engine_json_ok(e, body, "The location", err) < 0)
		goto fail;
	json_object_foreach((json_t *)body, k, v)
		if (strcmp(k, "url") && strcmp(k, "md5") && strcmp(k, "sha1") &&
		    strcmp(k, "sha256") && strcmp(k, "location_type")) {
			gl_fail(err, 400, "BadRequest",
				"Unexpected key '%s' in the location", k);
			goto fail;
		}
	url = sget(body, "url");
	if (!url || !*url) {
		gl_fail(err, 400, "BadRequest", "The location needs a 'url'");
		goto fail;
	}
	if (strlen(url) > GL_URL_MAX) {
		gl_fail(err, 400, "BadRequest",
			"The location URL is longer than %d characters",
			GL_URL_MAX);
		goto fail;
	}
	lt = json_object_get(body, "location_type") ? sget(body, "location_type")
						    : "external";
	if (!lt || (strcmp(lt, "external") && strcmp(lt, "internal"))) {
		gl_fail(err, 400, "BadRequest",
			"location_type must be 'external' or 'internal'");
		goto fail;
	}
	j->internal = !strcmp(lt, "internal");
	if (gl_engine_load(e, ctx, type, id, 1, &j->tg.af, err) < 0)
		goto fail;
	if (gl_engine_policy(e, ctx,
			     j->internal ? "artifact:set_internal_location"
					 : "artifact:set_location",
			     j->tg.af.doc, err) < 0)
		goto fail;
	if (j->internal) {
		if (scheme_in(url, restricted_schemes)) {
			gl_fail(err, 403, "Forbidden",
				"Internal locations with this scheme are not "
				"allowed: %s", url);
			goto fail;
		}
		if (!is_http_url(url)) {
			gl_fail(err, 400, "BadRequest",
				scheme_in(url, other_schemes)
					? "No store of glared serves the scheme "
					  "of %s"
					: "Unknown scheme in %s",
				url);
			goto fail;
		}
	} else if (!is_http_url(url)) {
		gl_fail(err, 400, "BadRequest",
			"External locations must be http or https URLs: %.200s",
			url);
		goto fail;
	}
	/* whatever the mode: the URL is stored, redirected to, fetched */
	if (gl_url_check(url, strlen(url), why, sizeof why) < 0) {
		gl_fail(err, 400, "BadRequest", "Invalid location URL: %s", why);
		goto fail;
	}
	j->id = strdup(id);
	j->field = strdup(field);
	j->key = key ? strdup(key) : NULL;
	j->url = strdup(url);
	if (gl_blob_resolve(&j->tg, j->field, j->key, has_key, 1, err) < 0)
		goto fail;
	if (gl_engine_change_allowed(j->tg.af.type, j->tg.af.doc, field, err) < 0)
		goto fail;
	tc = gl_conf_type(e->conf, j->tg.af.type->name);
	verification = tc->external_location_verification
			       ? tc->external_location_verification
			       : e->conf->external_location_verification;
	/* trust mode too: a checksum is stored, compared and sent in
	 * headers, so it must be one */
	for (int i = 0; i < 3; i++) {
		const char *s;
		v = json_object_get(body, sum_names[i]);
		if (!v || json_is_null(v))
			continue;
		s = json_string_value(v);
		if (!s) {
			gl_fail(err, 400, "BadRequest", "%s must be a string",
				sum_names[i]);
			goto fail;
		}
		if (!gl_hex_valid(s, json_string_length(v), sum_len[i])) {
			gl_fail(err, 400, "BadRequest",
				"%s must be %zu hexadecimal digits", sum_names[i],
				sum_len[i]);
			goto fail;
		}
		snprintf(i == 0 ? j->md5 : i == 1 ? j->sha1 : j->sha256,
			 sum_len[i] + 1, "%s", s);
	}
	if (!j->internal && !strcmp(verification, "trust") && !j->md5[0]) {
		gl_fail(err, 400, "BadRequest",
			"An md5 checksum is required for external locations "
			"(trust mode)");
		goto fail;
	}
	args = gl_engine_blob_args(field, j->key, body);
	if (gl_engine_hook(e, j->tg.af.ts, j->tg.af.type,
			   GL_HOOK_PRE_ADD_LOCATION, ctx, j->tg.af.doc, args,
			   NULL, err) < 0) {
		json_decref(args);
		goto fail;
	}
	json_decref(args);

	if (gl_meta_begin(e->meta, err) < 0)
		goto fail;
	in_tx = 1;
	if (gl_meta_get(e->meta, j->tg.af.type, id, &fresh, err) != 0) {
		if (!fresh)
			gl_fail(err, 404, "ArtifactNotFound",
				"Artifact with id=%s not found", id);
		goto fail;
	}
	cur = gl_blob_record(fresh, j->tg.f, j->key);
	if (cur) {
		gl_fail(err, 409, "Conflict",
			"Blob '%s%s%s' already has a value", field,
			j->key ? "/" : "", j->key ? j->key : "");
		goto fail;
	}
	if (!strcmp(verification, "trust")) {
		/* Glare's behaviour, for clients that need it: record what
		 * was said, fetch nothing. An internal location is then
		 * served from its URL through us (gl_engine_download). */
		rec = json_pack("{s:s, s:n, s:s?, s:s?, s:s?, s:b, s:n, s:s, "
				"s:s, s:s}", "status", "active", "size", "md5",
				j->md5[0] ? j->md5 : NULL, "sha1",
				j->sha1[0] ? j->sha1 : NULL, "sha256",
				j->sha256[0] ? j->sha256 : NULL, "external",
				!j->internal, "content_type", "url", url,
				"store", "external", "location", url);
		if (gl_meta_blob_set(e->meta, id, field, j->key ? j->key : "",
				     rec, err) < 0 ||
		    gl_events_emit(e->events, "set_location",
				   j->tg.af.type->name, fresh, NULL, err) < 0 ||
		    gl_meta_commit(e->meta, err) < 0)
			goto fail;
		in_tx = 0;
		json_decref(rec);
		rec = NULL;
		json_decref(fresh);
		fresh = NULL;
		if (gl_meta_get(e->meta, j->tg.af.type, id, &fresh, err) != 0)
			goto fail;
		json_t *af = NULL;
		args = gl_engine_blob_args(field, j->key, NULL);
		if (gl_engine_hook(e, j->tg.af.ts, j->tg.af.type,
				   GL_HOOK_POST_ADD_LOCATION, ctx, fresh, args,
				   NULL, err) == 0)
			af = gl_engine_output(e, ctx, j->tg.af.ts,
					      j->tg.af.type, fresh, err);
		json_decref(args);
		json_decref(fresh);
		j->next = e->jobs;
		e->jobs = j;
		job_finish(j, af, af ? NULL : err);
		return 0;
	}
	if (j->internal) {
		/* an import is an upload whose body comes from the URL */
		gl_meta_rollback(e->meta);
		in_tx = 0;
		j->u = gl_engine_upload_begin(e, ctx, type, id, field, j->key,
					      has_key, "application/octet-stream",
					      -1, err);
		if (!j->u)
			goto fail;
		gl_upload_set_event(j->u, "set_location");
		gl_upload_on_resume(j->u, import_resume, j);
		limit = -1; /* the upload enforces its own limits */
	} else {
		if (gl_blob_allowed(e, &j->tg, fresh, &limit, why, sizeof why,
				    err) < 0)
			goto fail;
		if (limit < 0) {
			gl_fail(err, 413, "RequestEntityTooLarge",
				"No space left: %s", why);
			goto fail;
		}
		rec = json_pack("{s:s, s:I, s:I, s:b, s:s, s:s, s:s}",
				"status", "saving", "reserved",
				(json_int_t)limit, "size", (json_int_t)limit,
				"external", 1, "url", url, "store", "external",
				"temp", "");
		gl_owner_stamp(rec);
		if (gl_meta_blob_set(e->meta, id, field, j->key ? j->key : "",
				     rec, err) < 0 ||
		    gl_meta_commit(e->meta, err) < 0)
			goto fail;
		in_tx = 0;
	}
	json_decref(rec);
	rec = NULL;
	json_decref(fresh);
	fresh = NULL;
	if (!gl_engine_fetch(e, err)) {
		job_restore(j);
		goto fail;
	}
	{
		gl_fetch_opts fo = { .max_bytes = limit, .range = NULL };
		j->fj = gl_fetch_start(e->fetch, url, &fo, fetch_data, fetch_done,
				       j, err);
	}
	if (!j->fj) {
		job_restore(j);
		goto fail;
	}
	j->next = e->jobs;
	e->jobs = j;
	return 0;
fail:
	if (in_tx)
		gl_meta_rollback(e->meta);
	json_decref(rec);
	json_decref(fresh);
	job_free(j);
	return -1;
}

static void cancel_run(void *arg)
{
	gl_location_job *j = arg;

	job_restore(j);
	job_free(j);
}

void gl_engine_cancel_location(gl_engine *e, void *arg)
{
	for (gl_location_job *j = e->jobs; j; j = j->next) {
		if (j->arg != arg)
			continue;
		if (j->completing) {
			/* its coroutine finishes it; the caller is gone */
			j->done = NULL;
			j->ctx = NULL;
			if (j->finishing)
				gl_upload_detach(j->finishing);
			return;
		}
		if (j->fj)
			gl_fetch_cancel(j->fj);
		j->fj = NULL;
		j->ctx = NULL;
		job_unlink(e, j);
		gl_coro_go(cancel_run, j); /* the restore is database work */
		return;
	}
}

int gl_engine_delete_blob(gl_engine *e, const gl_ctx *ctx, const char *type,
			  const char *id, const char *field, const char *key,
			  int has_key, json_t **out, gl_err *err)
{
	gl_target tg;
	json_t *fresh = NULL;
	int rc = -1, in_tx = 0;

	memset(&tg, 0, sizeof tg);
	if (gl_engine_load(e, ctx, type, id, 1, &tg.af, err) < 0)
		return -1;
	if (gl_engine_policy(e, ctx, "artifact:delete_blob", tg.af.doc, err) < 0)
		goto out;
	if (gl_blob_resolve(&tg, field, key, has_key, 1, err) < 0)
		goto out;
	if (!tg.cur) {
		gl_fail(err, 404, "NotFound", "Blob '%s%s%s' is not set", field,
			tg.key ? "/" : "", tg.key ? tg.key : "");
		goto out;
	}
	if (!json_is_true(json_object_get(tg.cur, "external"))) {
		gl_fail(err, 403, "Forbidden",
			"Only blobs with an external location can be deleted; "
			"'%s' holds uploaded data", field);
		goto out;
	}
	if (gl_streq(sget(tg.cur, "status"), "saving")) {
		gl_fail(err, 409, "Conflict",
			"The location of '%s' is being registered", field);
		goto out;
	}
	if (gl_meta_begin(e->meta, err) < 0)
		goto out;
	in_tx = 1;
	if (gl_meta_blob_delete(e->meta, id, field, tg.key ? tg.key : "", err) < 0 ||
	    gl_events_emit(e->events, "delete_blob", tg.af.type->name,
			   tg.af.doc, NULL, err) < 0 ||
	    gl_meta_commit(e->meta, err) < 0)
		goto out;
	in_tx = 0;
	if (gl_meta_get(e->meta, tg.af.type, id, &fresh, err) != 0)
		goto out;
	*out = gl_engine_output(e, ctx, tg.af.ts, tg.af.type, fresh, err);
	rc = *out ? 0 : -1;
out:
	if (in_tx)
		gl_meta_rollback(e->meta);
	json_decref(fresh);
	gl_target_clear(&tg);
	return rc;
}

gl_fetch *gl_engine_fetch(gl_engine *e, gl_err *err)
{
	if (!e->fetch)
		e->fetch = gl_fetch_new(e->base, e->conf, err);
	return e->fetch;
}

/* ---- heartbeats ---------------------------------------------------------------- */

int gl_blob_jobs_own(gl_engine *e, const char *id, const char *field,
		     const char *key)
{
	for (gl_location_job *j = e->jobs; j; j = j->next)
		if (j->fj && gl_streq(j->id, id) && gl_streq(j->field, field) &&
		    gl_streq(j->key ? j->key : "", key ? key : ""))
			return 1;
	return 0;
}

static void job_beat(gl_engine *e, gl_location_job *j);

void gl_blob_jobs_heartbeat(gl_engine *e)
{
	gl_location_job **all;
	size_t n = 0, k = 0;

	/* the list changes while the records are written: hold a copy */
	for (gl_location_job *j = e->jobs; j; j = j->next)
		n++;
	if (!n)
		return;
	all = gl_xcalloc(n, sizeof *all);
	for (gl_location_job *j = e->jobs; j; j = j->next) {
		j->holds++;
		all[k++] = j;
	}
	for (size_t i = 0; i < n; i++) {
		gl_location_job *j = all[i];

		if (!j->gone && j->fj)
			job_beat(e, j);
		if (--j->holds == 0 && j->gone)
			job_mem_free(j);
	}
	free(all);
}

static void job_beat(gl_engine *e, gl_location_job *j)
{
	json_t *doc = NULL, *cur, *rec;
	gl_err err = { 0 };

	if (gl_meta_begin(e->meta, &err) < 0)
		return;
	if (gl_meta_get(e->meta, j->tg.af.type, j->id, &doc, &err) == 0 &&
	    (cur = gl_blob_record(doc, j->tg.f, j->key)) != NULL &&
	    gl_streq(sget(cur, "status"), "saving") &&
	    gl_streq(sget(cur, "url"), j->url)) {
		rec = json_deep_copy(cur);
		json_object_set_new(rec, "heartbeat", json_integer(gl_now_us()));
		if (gl_meta_blob_set(e->meta, j->id, j->field,
				     j->key ? j->key : "", rec, &err) == 0 &&
		    gl_meta_commit(e->meta, &err) == 0) {
			json_decref(rec);
			json_decref(doc);
			return;
		}
		json_decref(rec);
	}
	gl_meta_rollback(e->meta);
	json_decref(doc);
}

static int store_name_ok(const char *s)
{
	static const char *const ok[] = { "file", "filesystem", "database",
					   "sql", "s3", NULL };
	for (int i = 0; ok[i]; i++)
		if (!strcasecmp(s, ok[i]))
			return 1;
	return 0;
}

int gl_blob_engine_init(gl_engine *e, gl_err *err)
{
	const gl_conf *c = e->conf;
	int want_s3 = !strcasecmp(c->default_store, "s3");

	if (!store_name_ok(c->default_store))
		return gl_fail(err, 500, "ConfigError",
			       "[glance_store] default_store = %s: glared serves "
			       "file, database and s3", c->default_store);
	for (int i = 0; i < c->ntypes; i++) {
		const char *s = c->types[i].default_store;
		if (!s)
			continue;
		if (!store_name_ok(s))
			return gl_fail(err, 500, "ConfigError",
				       "[artifact_type:%s] default_store = %s: "
				       "glared serves file, database and s3",
				       c->types[i].name, s);
		want_s3 |= !strcasecmp(s, "s3");
	}
	if (want_s3) {
		gl_s3_conf sc = {
			.endpoint = c->s3_store_host, .region = c->s3_store_region,
			.bucket = c->s3_store_bucket,
			.access_key = c->s3_store_access_key,
			.secret_key = c->s3_store_secret_key,
			.prefix = c->s3_store_prefix,
			.connect_timeout = c->fetch_connect_timeout,
			.timeout = c->s3_store_timeout,
		};
		if (!sc.endpoint || !sc.bucket || !sc.access_key || !sc.secret_key)
			return gl_fail(err, 500, "ConfigError",
				       "the s3 store needs [glance_store] "
				       "s3_store_host, s3_store_bucket, "
				       "s3_store_access_key and "
				       "s3_store_secret_key");
		e->s3 = gl_s3_new(e->base, &sc, err);
		if (!e->s3)
			return -1;
	}
	return gl_maint_init(e, err);
}

struct gl_s3 *gl_engine_s3(gl_engine *e) { return e->s3; }

void gl_blob_engine_free(gl_engine *e)
{
	gl_upload_abort_all(e);
	while (e->jobs) {
		gl_location_job *j = e->jobs;
		if (j->fj)
			gl_fetch_cancel(j->fj);
		j->fj = NULL;
		job_restore(j);
		job_unlink(e, j);
		job_free(j);
	}
	if (e->fetch) {
		gl_fetch_free(e->fetch);
		e->fetch = NULL;
	}
	/* requests in flight are dropped; cleanups it could not send go to
	 * the cleanup queue (its hook) */
	if (e->s3)
		gl_s3_free(e->s3);
	e->s3 = NULL;
	gl_maint_free(e);
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
	    !(t = gl_types_find(ts, sget(doc, "type_name"))))
		goto rollback;
	json_decref(doc);
	doc = NULL;
	if (gl_meta_get(e->meta, t, aid, &doc, &err) != 0)
		goto rollback;
	b = json_object_get(doc, field);
	if (key)
		b = json_object_get(b, key);
	if (!json_is_object(b) ||
	    !json_equal(json_object_get(b, "verified_at") ?
				json_object_get(b, "verified_at") : json_null(),
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
static int conditional_ok(const gl_type_conf *tc, const json_t *b,
			  int64_t now)
{
	json_t *at = json_object_get(b, "rehashed_at");
	const char *vs = sget(b, "verify_status");

	if (tc->external_location_rehash_interval <= 0 || !json_is_integer(at))
		return 0;
	if (vs && strcmp(vs, "ok") != 0)
		return 0;
	if (!sget(b, "etag") && !sget(b, "last_modified"))
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

int gl_engine_verify_external(gl_engine *e, int limit, int min_age_s,
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
		const char *aid = sget(it, "artifact_id"), *f = sget(it, "field");
		const char *key = sget(it, "key");
		const char *url = sget(b, "url");
		const gl_type_conf *tc = gl_conf_type(e->conf,
						      sget(it, "type_name"));
		int64_t age_us = (int64_t)(tc->external_location_check_interval > 0
						   ? tc->external_location_check_interval
						   : min_age_s) * 1000000;
		gl_fetch_result res;
		gl_fetch_opts fo;
		gl_download rec;
		json_t *sz = json_object_get(b, "size");
		char why[1200];
		verify_seen vs = { .status = "ok", .size = -1 };

		if (!url || !gl_streq(sget(b, "status"), "active"))
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
			copy_sum(k == 0 ? rec.md5 : k == 1 ? rec.sha1 : rec.sha256,
				 k, sget(b, sum_names[k]));
		/* read up to the field's limit (a size unknown in trust mode
		 * is no reason to read without end), at least one byte more
		 * than recorded to see growth */
		fo.max_bytes = field_cap(ts, sget(it, "type_name"), f);
		if (rec.size >= 0 && rec.size + 1 > fo.max_bytes)
			fo.max_bytes = rec.size + 1;
		if (conditional_ok(tc, b, now)) {
			/* cheap first: unchanged since the last full check? */
			fo.if_none_match = sget(b, "etag");
			fo.if_modified_since = sget(b, "last_modified");
		}
		why[0] = '\0';
		if (gl_url_check(url, strlen(url), why, sizeof why) < 0) {
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
			switch (gl_external_verdict(&rec, res.ok, res.size,
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
						    res.http_status == 410
						    ? "gone" : "error";
			}
		}
		if (!strcmp(vs.status, "changed") || !strcmp(vs.status, "gone")) {
			(*changed)++;
			gl_error("verify: external blob %s/%s%s%s at %s %s: %s",
				 aid, f, key ? "/" : "", key ? key : "", url,
				 vs.status, why);
		} else if (!strcmp(vs.status, "ok") &&
			   (gl_streq(sget(b, "verify_status"), "changed") ||
			    gl_streq(sget(b, "verify_status"), "gone"))) {
			gl_info("verify: external blob %s/%s at %s verifies "
				"again; flag cleared", aid, f, url);
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
