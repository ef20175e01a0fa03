/* upload.c - streaming blob uploads into the file, database and S3 stores.
 *
 * An upload is a small state machine around one "saving" blob record:
 *
 *   begin   every check that needs no body; reserve space; placeholder
 *           {status: saving, reserved, prev: the record it replaces,
 *            node: host:pid, incarnation, heartbeat (owner.h)}
 *   write   bytes -> md5/sha1/sha256 + a local temp file; limits enforced
 *           as the bytes come. S3: every full part of the temp file goes
 *           out as a multipart part while the body still arrives, and its
 *           disk space is given back (hole punched) once S3 has it, so a
 *           1000 GiB blob never sits on the node's disk whole. The body is
 *           paused when S3 falls two parts behind.
 *   finish  the type's pre_upload hook (bounded reads of the bytes), then
 *           file:     fdatasync, note the sha256 the object will have (a
 *                     crash leaves a trace), rename into the
 *                     content-addressed store and record, in one write tx
 *           database: copy into the metadata DB and record, in one tx
 *           S3:       last part, complete, then record (asynchronously)
 *   abort   temp file removed, previous record restored and, in the same
 *           transaction, the S3 upload queued for abort (the cleanup
 *           queue, maint.c: the S3 client's own abort right after usually
 *           takes it off again; if that fails, or the process dies first,
 *           any node retries it)
 *
 * While an upload runs its record's heartbeat is refreshed, so other
 * processes can tell a live upload from one whose owner died (owner.h has
 * the rule, maint.c takes over).
 */
#include "blob.h"
#include "core.h"
#include "coro.h"
#include "gc.h"
#include "upload.h"
#include "digest.h"
#include "log.h"
#include "owner.h"
#include "s3.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOOK_READ_MAX (1 << 20) /* bytes a hook may read from an upload */

typedef struct part {
	struct gl_upload *u;
	int64_t off, len;
	int used;
} part;

struct gl_upload {
	struct gl_upload *next; /* e->uploads */
	gl_engine *e;
	const gl_ctx *ctx;
	gl_target tg;
	char *id, *field, *key;
	char content_type[256];
	int64_t limit, declared;
	char why[256];
	const char *store;
	gl_store_tmp tmp;
	gl_digest *dg;
	gl_digest_hex h;
	json_t *prev;
	int placeholder;
	/* S3 */
	gl_s3_upload *s3u;
	char *s3key;
	char *s3id;              /* the multipart upload's id, once known */
	int s3_ready;            /* upload id known */
	int64_t part_size, sent; /* bytes handed to parts so far */
	int part_no, inflight;
	part parts[GL_S3_MAX_INFLIGHT];
	gl_err s3err;
	int s3_failed, finishing, completing;
	/* body backpressure and the asynchronous end */
	void (*resume)(void *);
	void *resume_arg;
	int paused;
	gl_upload_done_fn done;
	void *done_arg;
	const char *event; /* the event the commit emits */
	/* coroutines that use the upload across a wait for the database
	 * (heartbeat, S3 callbacks) hold it: freeing it meanwhile only ends
	 * it (unlinked, stores released, `gone`), its memory goes with the
	 * last hold */
	int holds, gone;
	int ending; /* end or abort under way (it may wait) */
};

static void upload_unlink(gl_upload *u)
{
	for (gl_upload **p = &u->e->uploads; *p; p = &(*p)->next)
		if (*p == u) {
			*p = u->next;
			break;
		}
}

static void upload_mem_free(gl_upload *u)
{
	json_decref(u->prev);
	gl_target_clear(&u->tg);
	free(u->id);
	free(u->field);
	free(u->key);
	free(u->s3key);
	free(u->s3id);
	free(u);
}

static void upload_free(gl_upload *u)
{
	if (u->gone)
		return;
	upload_unlink(u);
	if (u->s3u)
		gl_s3_upload_abort(u->s3u);
	u->s3u = NULL;
	gl_store_tmp_discard(&u->tmp);
	gl_digest_free(u->dg);
	u->dg = NULL;
	u->gone = 1;
	u->done = NULL;
	u->resume = NULL;
	if (!u->holds)
		upload_mem_free(u);
}

static void up_hold(gl_upload *u)
{
	u->holds++;
}

/* 1 if the upload is still going on */
static int up_drop(gl_upload *u)
{
	int gone = u->gone;

	if (--u->holds == 0 && gone)
		upload_mem_free(u);
	return !gone;
}

/* Change the saving record in a transaction of its own; only while it is
 * still this upload's (same temp file). */
static int touch_record(gl_upload *u, const char *k1, json_t *v1,
			const char *k2, json_t *v2, gl_err *err)
{
	gl_engine *e = u->e;
	json_t *doc = NULL, *cur, *rec;
	int rc = -1;

	if (gl_meta_begin(e->meta, err) < 0)
		goto out;
	if (gl_core_reread(e, u->tg.af.type, u->id, "was deleted", &doc, err) <
	    0)
		goto rollback;
	cur = gl_blob_record(doc, u->tg.f, u->key);
	if (!cur || !gl_streq(gl_json_str(cur, "temp"), u->tmp.path)) {
		gl_fail(err, 409, "Conflict",
			"The upload of %s was cancelled meanwhile", u->field);
		u->placeholder = 0;
		goto rollback;
	}
	rec = json_deep_copy(cur);
	json_object_set(rec, k1, v1);
	if (k2)
		json_object_set(rec, k2, v2);
	rc = gl_meta_blob_set(e->meta, u->id, u->field, u->key ? u->key : "",
			      rec, err);
	json_decref(rec);
	if (rc == 0 && gl_meta_commit(e->meta, err) == 0)
		goto out;
	rc = -1;
rollback:
	gl_meta_rollback(e->meta);
out:
	json_decref(doc);
	json_decref(v1);
	json_decref(v2);
	return rc;
}

static int same_key(const char *a, const char *b)
{
	return gl_streq(a ? a : "", b ? b : "");
}

int gl_upload_owns(gl_engine *e, const char *id, const char *field,
		   const char *key)
{
	for (gl_upload *u = e->uploads; u; u = u->next)
		if (u->placeholder && gl_streq(u->id, id) &&
		    gl_streq(u->field, field) && same_key(u->key, key))
			return 1;
	return 0;
}

void gl_upload_heartbeat_all(gl_engine *e)
{
	gl_upload **all;
	size_t n = 0, k = 0;

	/* the list changes while the records are written: hold a copy */
	for (gl_upload *u = e->uploads; u; u = u->next)
		n++;
	if (!n)
		return;
	all = gl_xcalloc(n, sizeof *all);
	for (gl_upload *u = e->uploads; u; u = u->next) {
		up_hold(u);
		all[k++] = u;
	}
	for (size_t i = 0; i < n; i++) {
		gl_upload *u = all[i];
		gl_err err = { 0 };

		if (!u->gone && u->placeholder &&
		    touch_record(u, "heartbeat", json_integer(gl_now_us()),
				 NULL, NULL, &err) < 0 &&
		    !u->gone && u->placeholder)
			gl_warn("upload %s/%s: heartbeat: %s", u->id, u->field,
				err.msg);
		up_drop(u);
	}
	free(all);
}

/* ---- S3 parts ---------------------------------------------------------------- */

static void s3_pump(gl_upload *u);
static void s3_continue(gl_upload *u);

static void s3_fail(gl_upload *u, const gl_err *err)
{
	if (!u->s3_failed) {
		u->s3_failed = 1;
		u->s3err = *err;
	}
}

/* The S3 client's callbacks end in database work (a record, a commit, a
 * restore): each runs in a coroutine of its own (coro.h), holding the
 * upload. */
typedef struct s3_event {
	gl_upload *u;
	const char *upload_id;
	gl_err err;
} s3_event;

static void part_done_run(void *arg, const gl_err *err)
{
	part *p = arg;
	gl_upload *u = p->u;

	p->used = 0;
	u->inflight--;
	if (u->ending)
		return; /* it ends without these parts */
	if (err) {
		s3_fail(u, err);
	} else if (p->off > 0) {
		/* S3 has these bytes: give the disk space back (the first
		 * part stays for the type's pre_upload hook) */
		if (fallocate(u->tmp.fd,
			      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      p->off, p->len) < 0 &&
		    errno != EOPNOTSUPP)
			gl_debug("upload: punching a hole: %s",
				 strerror(errno));
	}
	up_hold(u);
	if (u->finishing)
		s3_continue(u);
	else
		s3_pump(u);
	up_drop(u);
}

static void part_done(void *arg, const gl_err *err)
{
	gl_coro_go_err(part_done_run, arg, err);
}

static int send_part(gl_upload *u, int64_t len)
{
	gl_err err = { 0 };
	part *p = NULL;

	for (int i = 0; i < GL_S3_MAX_INFLIGHT; i++)
		if (!u->parts[i].used) {
			p = &u->parts[i];
			break;
		}
	if (!p)
		return 0;
	*p = (part){ .u = u, .off = u->sent, .len = len, .used = 1 };
	if (gl_s3_upload_part_fd(u->s3u, u->part_no + 1, u->tmp.fd, u->sent,
				 len, part_done, p, &err) < 0) {
		p->used = 0;
		s3_fail(u, &err);
		return -1;
	}
	u->part_no++;
	u->inflight++;
	u->sent += len;
	return 1;
}

/* Hand every full part of the temp file to S3, and let the body flow again
 * once S3 keeps up. */
static void s3_pump(gl_upload *u)
{
	while (u->s3_ready && !u->s3_failed &&
	       u->inflight < GL_S3_MAX_INFLIGHT &&
	       u->tmp.written - u->sent >= u->part_size)
		if (send_part(u, u->part_size) <= 0)
			break;
	if (u->paused &&
	    (u->s3_failed || u->tmp.size - u->sent < 2 * u->part_size)) {
		u->paused = 0;
		if (u->resume)
			u->resume(u->resume_arg);
	}
}

static void s3_ready_run(void *arg)
{
	s3_event ev = *(s3_event *)arg;
	gl_upload *u = ev.u;
	gl_err e2 = { 0 };

	if (u->ending)
		return;
	up_hold(u);
	if (!ev.upload_id) {
		s3_fail(u, &ev.err);
	} else {
		u->s3id = strdup(ev.upload_id);
		/* the id is what recovery needs to abort the parts: recorded
		 * before the first part goes out */
		if (touch_record(u, "s3_upload_id", gl_json_text(ev.upload_id),
				 "location", gl_json_text(u->s3key), &e2) < 0)
			s3_fail(u, &e2);
		u->s3_ready = 1;
	}
	if (up_drop(u) && !u->ending) {
		if (u->finishing)
			s3_continue(u);
		else
			s3_pump(u);
	}
}

static void s3_ready(void *arg, const char *upload_id, const gl_err *err)
{
	s3_event ev = { .u = arg, .upload_id = upload_id };
	char id[512];

	if (err)
		ev.err = *err;
	if (upload_id) { /* the client's string lives for this call only */
		snprintf(id, sizeof id, "%s", upload_id);
		ev.upload_id = id;
	}
	gl_coro_go(s3_ready_run, &ev);
}

/* ---- begin / write / abort ------------------------------------------------------ */

gl_upload *gl_upload_begin(gl_engine *e, const gl_ctx *ctx, const char *type,
			   const char *id, const char *field, const char *key,
			   int has_key, const char *content_type,
			   int64_t content_length, gl_err *err)
{
	gl_upload *u = calloc(1, sizeof *u);
	json_t *fresh = NULL, *cur, *rec;
	int in_tx = 0;
	char uuid[37];

	if (!u) {
		gl_fail(err, 500, NULL, "out of memory");
		return NULL;
	}
	u->e = e;
	u->ctx = ctx;
	u->event = "upload";
	u->tmp.fd = -1;
	u->declared = content_length;
	u->id = strdup(id);
	u->field = strdup(field);
	u->key = key ? strdup(key) : NULL;
	u->next = e->uploads;
	e->uploads = u;
	gl_media_type(content_type, u->content_type, sizeof u->content_type);
	if (!u->content_type[0])
		snprintf(u->content_type, sizeof u->content_type,
			 "application/octet-stream");

	if (gl_core_load(e, ctx, type, id, 1, &u->tg.af, err) < 0)
		goto fail;
	if (gl_core_policy(e, ctx, "artifact:upload", u->tg.af.doc, err) < 0)
		goto fail;
	if (gl_blob_resolve(&u->tg, u->field, u->key, has_key, 1, err) < 0)
		goto fail;
	if (gl_core_change_allowed(u->tg.af.type, u->tg.af.doc, field, err) <
	    0)
		goto fail;
	if (u->tg.f->kind == GK_FOLDER && !u->tg.cur &&
	    (int)json_object_size(json_object_get(u->tg.af.doc, field)) >=
		    u->tg.f->max_keys) {
		gl_fail(err, 400, "BadRequest",
			"Blob dict '%s' already holds the maximum of %d blobs",
			field, u->tg.f->max_keys);
		goto fail;
	}
	u->store = gl_blob_store_of(e, u->tg.af.type);

	if (gl_meta_begin(e->meta, err) < 0)
		goto fail;
	in_tx = 1;
	if (gl_core_reread(e, u->tg.af.type, id, "not found", &fresh, err) < 0)
		goto fail;
	if (gl_core_change_allowed(u->tg.af.type, fresh, field, err) < 0)
		goto fail;
	cur = gl_blob_record(fresh, u->tg.f, u->tg.key);
	if (cur && gl_streq(gl_json_str(cur, "status"), "saving")) {
		gl_fail(err, 409, "Conflict",
			"Blob '%s%s%s' is being uploaded by another request",
			field, u->key ? "/" : "", u->key ? u->key : "");
		goto fail;
	}
	if (gl_blob_allowed(e, &u->tg, fresh, &u->limit, u->why, sizeof u->why,
			    err) < 0)
		goto fail;
	if (content_length >= 0 ? content_length > u->limit : u->limit < 0) {
		gl_fail(err, 413, "RequestEntityTooLarge",
			"Blob of %lld bytes exceeds %s",
			(long long)(content_length >= 0 ? content_length : 0),
			u->why);
		goto fail;
	}
	if (content_length >= 0)
		u->limit = content_length;
	if (gl_store_tmp_create(e->store, &u->tmp, err) < 0)
		goto fail;
	u->prev = cur ? json_deep_copy(cur) : NULL;
	rec = json_pack("{s:s, s:I, s:I, s:b, s:s, s:s, s:s}", "status",
			"saving", "reserved", (json_int_t)u->limit, "size",
			(json_int_t)u->limit, "external", 0, "temp",
			u->tmp.path, "content_type", u->content_type, "store",
			u->store);
	gl_owner_stamp(rec);
	if (!strcmp(u->store, "s3")) {
		/* not content-addressed: the sha256 is unknown while the
		 * parts stream out */
		gl_uuid4(uuid);
		if (asprintf(&u->s3key, "objects/%s", uuid) < 0)
			u->s3key = NULL;
		json_object_set_new(rec, "location", gl_json_text(u->s3key));
	}
	if (u->prev)
		json_object_set(rec, "prev", u->prev);
	if (gl_meta_blob_set(e->meta, id, field, u->key ? u->key : "", rec,
			     err) < 0) {
		json_decref(rec);
		goto fail;
	}
	json_decref(rec);
	if (gl_meta_commit(e->meta, err) < 0)
		goto fail;
	in_tx = 0;
	u->placeholder = 1;
	u->dg = gl_digest_new();
	if (u->s3key) {
		u->part_size = gl_s3_part_size(content_length, u->limit);
		u->s3u = gl_s3_upload_start(e->s3, u->s3key, u->content_type,
					    s3_ready, u, err);
		if (!u->s3u) {
			json_decref(fresh);
			gl_upload_abort(u);
			return NULL;
		}
	}
	json_decref(fresh);
	return u;
fail:
	if (in_tx)
		gl_meta_rollback(e->meta);
	json_decref(fresh);
	upload_free(u);
	return NULL;
}

void gl_upload_set_content_type(gl_upload *u, const char *content_type)
{
	gl_media_type(content_type, u->content_type, sizeof u->content_type);
	if (!u->content_type[0])
		snprintf(u->content_type, sizeof u->content_type,
			 "application/octet-stream");
}

void gl_upload_set_event(gl_upload *u, const char *action)
{
	u->event = action;
}

void gl_upload_on_resume(gl_upload *u, void (*fn)(void *), void *arg)
{
	u->resume = fn;
	u->resume_arg = arg;
}

int gl_upload_write(gl_upload *u, const void *data, size_t len, gl_err *err)
{
	if (u->tmp.size + (int64_t)len > u->limit) {
		if (u->declared >= 0)
			return gl_fail(err, 413, "RequestEntityTooLarge",
				       "More data than the declared "
				       "Content-Length of %lld bytes",
				       (long long)u->declared);
		return gl_fail(err, 413, "RequestEntityTooLarge",
			       "Blob exceeds %s", u->why);
	}
	if (u->s3_failed) {
		*err = u->s3err;
		return -1;
	}
	gl_digest_update(u->dg, data, len);
	if (gl_store_tmp_write(&u->tmp, data, len, err) < 0)
		return -1;
	if (!u->s3key)
		return 0;
	/* parts are read from the file: a full one must be in it */
	if (u->tmp.size - u->sent >= u->part_size &&
	    u->tmp.written - u->sent < u->part_size &&
	    gl_store_tmp_flush(&u->tmp, err) < 0)
		return -1;
	s3_pump(u);
	if (u->tmp.size - u->sent >= 2 * u->part_size) {
		u->paused = 1;
		return 1;
	}
	return 0;
}

/* What S3 may hold of an abandoned upload, queued for cleanup (inside the
 * restore's transaction): the multipart upload, and the object if its
 * completion was under way. The S3 client tries at once (upload_free);
 * the queue keeps it for a retry until that is known to have worked. */
static int queue_s3_cleanup(gl_upload *u, gl_err *err)
{
	int64_t later = (int64_t)u->e->conf->upload_takeover_after * 1000000;

	if (u->s3id && gl_gc_cleanup_queue(u->e, "s3_abort", u->s3key, u->s3id,
					   later, err) < 0)
		return -1;
	if (u->completing && u->s3u &&
	    gl_gc_cleanup_queue(u->e, "s3_delete", u->s3key, "", later, err) <
		    0)
		return -1;
	return 0;
}

/* Drop the placeholder: the blob is back to what it was. */
static void upload_restore(gl_upload *u)
{
	gl_err err = { 0 };

	if (!u->placeholder)
		return;
	if (gl_meta_begin(u->e->meta, &err) == 0) {
		if (gl_blob_restore_prev(u->e, u->id, u->field, u->key,
					 u->prev, &err) == 0 &&
		    queue_s3_cleanup(u, &err) == 0 &&
		    gl_meta_commit(u->e->meta, &err) == 0) {
			u->placeholder = 0;
			return;
		}
		gl_meta_rollback(u->e->meta);
	}
	/* the recovery pass will restore it */
	gl_error("upload of %s/%s: cannot restore the previous blob: %s",
		 u->id, u->field, err.msg);
}

static void upload_abort_run(void *arg)
{
	gl_upload *u = arg;

	u->ending = 1;
	gl_store_tmp_discard(&u->tmp);
	upload_restore(u);
	upload_free(u);
}

void gl_upload_abort(gl_upload *u)
{
	if (!u || u->gone || u->ending)
		return;
	/* from a closing connection too: the restore is database work */
	u->done = NULL;
	u->resume = NULL;
	gl_coro_go(upload_abort_run, u);
}

void gl_upload_detach(gl_upload *u)
{
	u->done = NULL;
	gl_upload_orphan(u);
}

void gl_upload_orphan(gl_upload *u)
{
	u->resume = NULL;
	u->ctx = NULL; /* the caller's context goes with the caller */
}

void gl_upload_abort_all(gl_engine *e)
{
	while (e->uploads) {
		gl_upload *u = e->uploads;
		u->done = NULL;
		if (u->ending)
			upload_free(u); /* its end stopped half way */
		else
			gl_upload_abort(u);
	}
}

/* ---- finish ------------------------------------------------------------------------ */

/* The end of the upload, either way: report and free. */
static void end(gl_upload *u, json_t *af, const gl_err *err)
{
	gl_upload_done_fn done;
	void *arg;

	if (u->ending) {
		json_decref(af);
		return; /* ended already (S3 callbacks may race to here) */
	}
	u->ending = 1;
	if (!af) {
		gl_store_tmp_discard(&u->tmp);
		upload_restore(u);
	}
	/* the done callback is read now: a detach may have come meanwhile */
	done = u->done;
	arg = u->done_arg;
	upload_free(u);
	if (done)
		done(arg, af, err);
	json_decref(af);
}

/* Record the stored object as the blob, release what it replaces. */
static void commit(gl_upload *u, const char *location)
{
	gl_engine *e = u->e;
	const gl_type *t = u->tg.af.type;
	json_t *fresh = NULL, *cur, *rec = NULL, *af = NULL, *args;
	gl_err err = { 0 };
	int in_tx = 0;

	if (gl_meta_begin(e->meta, &err) < 0)
		goto fail;
	in_tx = 1;
	if (gl_core_reread(e, t, u->id, "was deleted", &fresh, &err) < 0)
		goto fail;
	cur = gl_blob_record(fresh, u->tg.f, u->key);
	if (!cur || !gl_streq(gl_json_str(cur, "temp"), u->tmp.path)) {
		gl_fail(&err, 409, "Conflict",
			"The upload of %s was cancelled meanwhile", u->field);
		u->placeholder = 0;
		goto fail;
	}
	/* again under the lock: another key may have been set meanwhile */
	if (gl_blob_same_sha_ok(&u->tg, fresh, u->h.sha256, &err) < 0)
		goto fail;
	if (!strcmp(u->store, "file")) {
		if (gl_store_commit(e->store, &u->tmp, u->h.sha256, &err) < 0)
			goto fail;
	} else if (!strcmp(u->store, "database")) {
		if (gl_meta_data_exists(e->meta, u->h.sha256, &err) == 0 &&
		    gl_meta_data_put_file(e->meta, u->h.sha256, u->tmp.fd,
					  u->tmp.size, &err) < 0)
			goto fail;
	}
	rec = json_pack("{s:s, s:I, s:s, s:s, s:s, s:b, s:s, s:s, s:s}",
			"status", "active", "size", (json_int_t)u->tmp.size,
			"md5", u->h.md5, "sha1", u->h.sha1, "sha256",
			u->h.sha256, "external", 0, "content_type",
			u->content_type, "store", u->store, "location",
			location);
	if (gl_meta_blob_set(e->meta, u->id, u->field, u->key ? u->key : "",
			     rec, &err) < 0)
		goto fail;
	if (u->prev && gl_gc_release(e, u->prev, &err) < 0)
		goto fail;
	if (gl_events_emit(e->events, u->event, t->name, fresh, NULL, &err) <
		    0 ||
	    gl_meta_commit(e->meta, &err) < 0)
		goto fail;
	in_tx = 0;
	u->placeholder = 0;
	gl_gc_run(e);
	gl_info("blob %s/%s%s%s stored (%s): %lld bytes sha256 %s", u->id,
		u->field, u->key ? "/" : "", u->key ? u->key : "", u->store,
		(long long)u->tmp.size, u->h.sha256);

	json_decref(fresh);
	fresh = NULL;
	if (!u->ctx) {
		/* detached: nobody waits for the answer (nor its hook) */
	} else if (gl_core_reread(e, t, u->id, "was deleted", &fresh, &err) ==
		   0) {
		args = gl_core_blob_args(u->field, u->key, NULL);
		if (gl_core_hook(e, u->tg.af.ts, t, GL_HOOK_POST_UPLOAD,
				 u->ctx, fresh, args, NULL, &err) == 0)
			af = gl_core_output(e, u->ctx, u->tg.af.ts, t, fresh,
					    &err);
		json_decref(args);
	}
	json_decref(rec);
	json_decref(fresh);
	u->placeholder = 0;
	end(u, af, af ? NULL : &err);
	return;
fail:
	if (in_tx)
		gl_meta_rollback(e->meta);
	if (!strcmp(u->store, "s3") && location) {
		/* stored but not recorded: queue it for removal */
		gl_err e2 = { 0 };
		if (gl_meta_begin(e->meta, &e2) == 0 &&
		    (gl_meta_gc_push(e->meta, "s3", location, &e2) < 0 ||
		     gl_meta_commit(e->meta, &e2) < 0))
			gl_meta_rollback(e->meta);
	}
	json_decref(rec);
	json_decref(fresh);
	end(u, NULL, &err);
}

static void s3_completed_run(void *arg, const gl_err *err)
{
	gl_upload *u = arg;

	if (err) {
		end(u, NULL, err);
		return;
	}
	/* completed: there is no multipart upload left to abort */
	free(u->s3id);
	u->s3id = NULL;
	commit(u, u->s3key);
}

static void s3_completed(void *arg, const gl_err *err)
{
	gl_upload *u = arg;

	u->s3u = NULL; /* freed by the client after this callback */
	gl_coro_go_err(s3_completed_run, u, err);
}

/* Send what is left and complete, once S3 has the id and room. */
static void s3_continue(gl_upload *u)
{
	gl_err err = { 0 };

	if (u->completing)
		return;
	if (u->s3_failed) {
		gl_err e2 = u->s3err;
		end(u, NULL, &e2);
		return;
	}
	if (!u->s3_ready)
		return; /* s3_ready continues */
	if (gl_store_tmp_flush(&u->tmp, &err) < 0) {
		end(u, NULL, &err);
		return;
	}
	s3_pump(u);
	if (u->s3_failed) {
		gl_err e2 = u->s3err;
		end(u, NULL, &e2);
		return;
	}
	if (u->tmp.size > u->sent) {
		if (send_part(u, u->tmp.size - u->sent) < 0) {
			gl_err e2 = u->s3err;
			end(u, NULL, &e2);
		}
		return; /* part_done continues */
	}
	if (u->inflight)
		return;
	u->completing = 1;
	if (gl_s3_upload_complete(u->s3u, s3_completed, u, &err) < 0)
		end(u, NULL, &err);
}

/* The Lua hook's bounded view of the uploaded bytes. */
static json_t *blob_info(const char *ct, int64_t size, const gl_digest_hex *h)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:s}", "size", (json_int_t)size,
			 "md5", h->md5, "sha1", h->sha1, "sha256", h->sha256,
			 "content_type", ct);
}

int gl_upload_finish(gl_upload *u, gl_upload_done_fn done, void *arg,
		     gl_err *err)
{
	gl_engine *e = u->e;
	const gl_type *t = u->tg.af.type;

	u->done = done;
	u->done_arg = arg;
	gl_digest_final(u->dg, &u->h);
	/* a copy that differs from the folder's others is refused before
	 * anything is stored (commit checks again under the lock) */
	if (u->tg.f->same_sha256) {
		json_t *fresh = NULL;
		int rc = gl_core_reread(e, t, u->id, "was deleted", &fresh,
					err);
		if (rc == 0)
			rc = gl_blob_same_sha_ok(&u->tg, fresh, u->h.sha256,
						 err);
		json_decref(fresh);
		if (rc < 0)
			goto fail;
	}
	/* everything into the file: the hook, S3 and the stores read it */
	if (gl_store_tmp_flush(&u->tmp, err) < 0)
		goto fail;
	if (!u->ctx && (t->hooks & (1u << GL_HOOK_PRE_UPLOAD))) {
		/* the caller left during the wait above (an import's client,
		 * gl_upload_orphan): no context to judge the data in */
		gl_fail(err, 499, NULL, "the client went away");
		goto fail;
	}
	if (t->hooks & (1u << GL_HOOK_PRE_UPLOAD)) {
		json_t *af = gl_core_output(e, u->ctx, u->tg.af.ts, t,
					    u->tg.af.doc, err);
		json_t *cj, *info;
		/* S3 uploads keep only their first part on disk */
		int64_t readable = u->s3key && u->tmp.size > u->part_size
					   ? u->part_size
					   : u->tmp.size;
		int rc;

		if (!af)
			goto fail;
		cj = gl_core_ctx_json(u->ctx);
		info = blob_info(u->content_type, u->tmp.size, &u->h);
		rc = gl_types_hook_upload(u->tg.af.ts, gl_ctx_lua(u->ctx), t,
					  cj, af, u->field, u->key, info,
					  u->tmp.path, HOOK_READ_MAX, readable,
					  err);
		json_decref(cj);
		json_decref(af);
		json_decref(info);
		if (rc < 0)
			goto fail;
	}
	if (u->s3key) {
		u->finishing = 1;
		s3_continue(u);
		return 0;
	}
	if (!strcmp(u->store, "file")) {
		json_t *sha;
		if (gl_store_tmp_sync(&u->tmp, err) < 0)
			goto fail;
		/* note which object this upload becomes, so a crash between
		 * the rename and the commit leaves a trace to clean up */
		sha = gl_json_text(u->h.sha256);
		if (touch_record(u, "pending", sha, NULL, NULL, err) < 0)
			goto fail;
	}
	commit(u, u->h.sha256);
	return 0;
fail:
	u->done = NULL;
	u->ending = 1;
	gl_store_tmp_discard(&u->tmp);
	upload_restore(u);
	upload_free(u);
	return -1;
}
