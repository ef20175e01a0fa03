/* maint.c - what a process does besides serving requests: the maintenance
 * timer of each worker, every upload_heartbeat seconds, and the start-up
 * recovery of the master.
 *
 *   heartbeats     of this process's uploads and location registrations;
 *   takeover       every upload_takeover_after / 2 seconds (and once when a
 *                  worker starts): the saving records whose owner may be
 *                  taken over (owner.h states the rule) are rolled back -
 *                  the previous record restored, the S3 multipart upload
 *                  queued for abort, the object an interrupted commit may
 *                  have renamed in released, the temp file removed (same
 *                  host, and only if no process holds it);
 *   sweeps         with the takeover pass: temp files no process holds,
 *                  untouched for upload_heartbeat seconds; S3 multipart
 *                  uploads under the prefix initiated more than twice
 *                  upload_takeover_after ago that no saving record names
 *                  (a process died between initiating one and recording
 *                  its id) are queued for abort;
 *   gc             released file and database objects removed, released
 *                  S3 objects queued for deletion (gl_gc_run);
 *   cleanup queue  S3 aborts and deletes that must happen (the metadata
 *                  store's cleanup_queue, shared by all nodes): each due
 *                  entry is claimed with a test-and-set of its next_at (a
 *                  lease of s3_store_timeout + upload_heartbeat, after
 *                  which another node may try), sent asynchronously, and
 *                  removed on success or 404; a failure is retried after
 *                  upload_heartbeat * 2^(attempts-1) seconds, at most
 *                  upload_takeover_after, until it succeeds.
 *
 * Nothing here waits on the network on the event loop: S3 calls go through
 * the S3 client's asynchronous requests (curlev), and everything that
 * reaches the metadata store (the timer, the kick, the S3 callbacks) runs
 * in a coroutine (coro.h), so waits for PostgreSQL yield. Any node may run any
 * entry; running one twice is harmless (a second abort or delete finds
 * nothing: 404).
 */
#include "blob.h"
#include "core.h"
#include "coro.h"
#include "gc.h"
#include "location.h"
#include "maint.h"
#include "upload.h"
#include "log.h"
#include "owner.h"
#include "s3.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLEANUP_BATCH 16 /* cleanups in flight per process */
#define SWEEP_MAX 1000   /* stale uploads queued per sweep */

typedef struct gl_cleanup_op {
	struct gl_cleanup_op *next;
	gl_engine *e;
	char *kind, *target, *arg;
	int attempts; /* failed tries before this one */
} cleanup_op;

typedef struct gl_sweep {
	gl_engine *e;
	int64_t cutoff; /* initiated before: stale (s since epoch) */
	json_t *found;  /* [[key, upload id], ...] */
} gl_sweep;

static int64_t secs(int s)
{
	return (int64_t)s * 1000000;
}

/* ---- the cleanup queue -------------------------------------------------------- */

static int64_t backoff_us(const gl_engine *e, int attempts)
{
	int64_t d = secs(e->conf->upload_heartbeat);
	int64_t cap = secs(e->conf->upload_takeover_after);

	for (int i = 1; i < attempts && d < cap; i++)
		d *= 2;
	return d < cap ? d : cap;
}

static void cleanup_failed(gl_engine *e, const char *kind, const char *target,
			   const char *arg, int attempts, const gl_err *why)
{
	int64_t wait = backoff_us(e, attempts);
	gl_err err = { 0 };

	gl_warn("cleanup: %s %s%s%s failed (attempt %d, again in %lld s): %s",
		kind, target, *arg ? " " : "", arg, attempts,
		(long long)(wait / 1000000), why->msg);
	if (gl_meta_cleanup_put(e->meta, kind, target, arg, attempts,
				gl_now_us() + wait, why->msg, &err) < 0)
		gl_error("cleanup: cannot record the failed %s %s: %s", kind,
			 target, err.msg);
}

static void cleanup_succeeded(gl_engine *e, const char *kind,
			      const char *target, const char *arg)
{
	gl_err err = { 0 };

	if (gl_meta_cleanup_del(e->meta, kind, target, arg, &err) < 0)
		gl_warn("cleanup: %s %s is done but stays queued (it will be "
			"tried again, harmlessly): %s",
			kind, target, err.msg);
}

/* Done, or there is nothing left to clean up. */
static int finished(const gl_err *err)
{
	return !err || err->status == 404;
}

static void op_free(cleanup_op *op)
{
	free(op->kind);
	free(op->target);
	free(op->arg);
	free(op);
}

static void op_done_run(void *arg, const gl_err *err)
{
	cleanup_op *op = arg;
	gl_engine *e = op->e;

	for (cleanup_op **p = &e->cleanups; *p; p = &(*p)->next)
		if (*p == op) {
			*p = op->next;
			break;
		}
	e->ncleanups--;
	if (finished(err)) {
		cleanup_succeeded(e, op->kind, op->target, op->arg);
		gl_info("cleanup: %s %s done%s", op->kind, op->target,
			op->attempts ? " after earlier failures" : "");
	} else {
		cleanup_failed(e, op->kind, op->target, op->arg,
			       op->attempts + 1, err);
	}
	op_free(op);
}

static void op_done(void *arg, const gl_err *err)
{
	gl_coro_go_err(op_done_run, arg, err);
}

/* Claim the due entries (as many as there is room for) and send them. */
static void cleanup_run(gl_engine *e)
{
	json_t *list = NULL, *it;
	size_t i;
	gl_err err = { 0 };
	int room = CLEANUP_BATCH - e->ncleanups;
	int64_t now = gl_now_us();
	/* an attempt may take this long; then another node may try */
	int64_t lease = secs(e->conf->s3_store_timeout +
			     e->conf->upload_heartbeat);

	if (!e->s3 || room <= 0)
		return;
	if (gl_meta_cleanup_due(e->meta, now, room, &list, &err) < 0) {
		gl_warn("cleanup: %s", err.msg);
		return;
	}
	json_array_foreach(list, i, it) {
		const char *kind = gl_json_str(it, "kind"),
			   *target = gl_json_str(it, "target");
		const char *arg = gl_json_str(it, "arg");
		cleanup_op *op;
		int rc;

		if (!kind || !target || !arg ||
		    gl_meta_cleanup_claim(e->meta, kind, target, arg,
					  json_integer_value(
						  json_object_get(it,
								  "next_at")),
					  now + lease, &err) != 1)
			continue; /* another node has it (or the db failed) */
		op = calloc(1, sizeof *op);
		if (!op || !(op->kind = strdup(kind)) ||
		    !(op->target = strdup(target)) ||
		    !(op->arg = strdup(arg))) {
			if (op)
				op_free(op);
			continue; /* the lease runs out; tried again then */
		}
		op->e = e;
		op->attempts = (int)json_integer_value(
			json_object_get(it, "attempts"));
		if (!strcmp(kind, "s3_abort"))
			rc = gl_s3_abort_async(e->s3, target, arg, op_done, op,
					       &err);
		else if (!strcmp(kind, "s3_delete"))
			rc = gl_s3_delete_async(e->s3, target, op_done, op,
						&err);
		else
			rc = gl_fail(
				&err, 500, NULL,
				"unknown kind of cleanup (a newer glared's?)");
		if (rc < 0) {
			cleanup_failed(e, kind, target, arg, op->attempts + 1,
				       &err);
			op_free(op);
			continue;
		}
		op->next = e->cleanups;
		e->cleanups = op;
		e->ncleanups++;
	}
	json_decref(list);
}

static void cleanup_run_co(void *arg)
{
	cleanup_run(arg);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	gl_coro_go(cleanup_run_co, arg);
}

/* The S3 client's own cleanup of an abandoned upload ended (or was dropped
 * at exit): done, or kept in the queue to be tried again. */
typedef struct hook_end {
	gl_engine *e;
	char *key, *upload_id;
	gl_err err;
	int failed;
} hook_end;

static void s3_cleanup_hook_run(void *arg)
{
	hook_end *h = arg;
	const char *kind = h->upload_id ? "s3_abort" : "s3_delete";
	const char *a = h->upload_id ? h->upload_id : "";

	if (finished(h->failed ? &h->err : NULL))
		cleanup_succeeded(h->e, kind, h->key, a);
	else
		cleanup_failed(h->e, kind, h->key, a, 1, &h->err);
	free(h->key);
	free(h->upload_id);
	free(h);
}

static void s3_cleanup_hook(void *arg, const char *key, const char *upload_id,
			    const gl_err *err)
{
	hook_end *h = gl_xcalloc(1, sizeof *h);

	/* the client's strings live for this call only */
	h->e = arg;
	h->key = gl_xstrdup(key);
	h->upload_id = upload_id ? gl_xstrdup(upload_id) : NULL;
	h->failed = err != NULL;
	if (err)
		h->err = *err;
	gl_coro_go(s3_cleanup_hook_run, h);
}

/* ---- takeover ------------------------------------------------------------------ */

/* Is the record still the one that was judged? (The list is read outside
 * the transaction: the owner may have finished meanwhile.) */
static int unchanged(gl_engine *e, gl_types *ts, const json_t *it)
{
	const gl_type *t = gl_types_find(ts, gl_json_str(it, "type_name"));
	const gl_field *f = t ? gl_type_field(t, gl_json_str(it, "field"))
			      : NULL;
	const char *key = gl_json_str(it, "key");
	json_t *doc = NULL;
	gl_err err = { 0 };
	int same;

	if (!f)
		return 1; /* a type not loaded here: trust the list */
	if (gl_meta_get(e->meta, t, gl_json_str(it, "artifact_id"), &doc,
			&err) != 0)
		return 0;
	same = json_equal(gl_blob_record(doc, f, key && *key ? key : NULL),
			  json_object_get(it, "blob"));
	json_decref(doc);
	return same;
}

static const char *verdict_name(gl_owner_verdict v)
{
	return v == GL_OWNER_DEAD ? "is gone" : "stopped its heartbeat";
}

/* Roll back the work whose owner may be taken over (owner.h). Returns the
 * number rolled back; *s3 tells whether aborts were queued. */
static int take_over(gl_engine *e, int *s3, gl_err *err)
{
	const gl_self *me = gl_self_get();
	int64_t now = gl_now_us();
	int64_t after = secs(e->conf->upload_takeover_after);
	gl_types *ts;
	json_t *list = NULL, *it;
	size_t i;
	int n = 0, failed = 0;

	if (gl_meta_saving_blobs(e->meta, &list, err) < 0)
		return -1;
	ts = gl_types_ref(e->types);
	json_array_foreach(list, i, it) {
		const json_t *b = json_object_get(it, "blob");
		const char *pending = gl_json_str(b, "pending");
		const char *s3id = gl_json_str(b, "s3_upload_id");
		const char *loc = gl_json_str(b, "location"),
			   *key = gl_json_str(it, "key");
		const char *node = gl_json_str(b, "node"),
			   *temp = gl_json_str(b, "temp");
		const char *aid = gl_json_str(it, "artifact_id"),
			   *f = gl_json_str(it, "field");
		gl_owner_verdict v =
			gl_owner_judge(me, b,
				       gl_upload_owns(e, aid, f, key) ||
					       gl_location_owns(e, aid, f,
								key),
				       now, after);

		if (!gl_owner_may_take_over(v))
			continue; /* its owner is at it */
		if (gl_meta_begin(e->meta, err) < 0) {
			failed = 1;
			break;
		}
		if (!unchanged(e, ts, it)) {
			gl_meta_rollback(e->meta);
			continue;
		}
		/* the object an interrupted commit may have renamed in */
		if (pending &&
		    gl_meta_gc_push(e->meta,
				    gl_json_str(b, "store")
					    ? gl_json_str(b, "store")
					    : "file",
				    pending, err) < 0)
			goto fail;
		/* no part may outlive the upload */
		if (s3id && loc &&
		    gl_gc_cleanup_queue(e, "s3_abort", loc, s3id, 0, err) < 0)
			goto fail;
		if (gl_blob_restore_prev(e, aid, f, key && *key ? key : NULL,
					 json_object_get(b, "prev"),
					 err) < 0 ||
		    gl_meta_commit(e->meta, err) < 0)
			goto fail;
		if (temp && *temp && gl_owner_same_host(me, node))
			gl_store_tmp_remove(temp);
		if (s3id)
			*s3 = 1;
		gl_warn("takeover: upload of %s/%s%s%s by %s rolled back (its "
			"owner %s)",
			aid, f, key && *key ? "/" : "", key ? key : "",
			node ? node : "?", verdict_name(v));
		n++;
		continue;
fail:
		gl_meta_rollback(e->meta);
		failed = 1;
		break;
	}
	gl_types_unref(ts);
	json_decref(list);
	return failed ? -1 : n;
}

/* ---- the stale-upload sweep ------------------------------------------------------ */

static int sweep_each(void *arg, const char *key, const char *id,
		      int64_t initiated)
{
	gl_sweep *sw = arg;

	if (initiated >= 0 && initiated < sw->cutoff)
		json_array_append_new(sw->found, json_pack("[s, s]", key, id));
	return json_array_size(sw->found) >= SWEEP_MAX;
}

static void sweep_free(gl_sweep *sw)
{
	json_decref(sw->found);
	free(sw);
}

static void sweep_done_run(void *arg, const gl_err *lerr)
{
	gl_sweep *sw = arg;
	gl_engine *e = sw->e;
	json_t *saving = NULL, *ids = json_object(), *it;
	gl_err err = { 0 };
	size_t i;
	int n = 0;

	e->sweep = NULL;
	if (lerr) {
		gl_warn("sweep: cannot list the S3 multipart uploads: %s",
			lerr->msg);
		goto out;
	}
	if (!json_array_size(sw->found))
		goto out;
	/* read after the listing: an id recorded meanwhile is seen */
	if (gl_meta_saving_blobs(e->meta, &saving, &err) < 0) {
		gl_warn("sweep: %s", err.msg);
		goto out;
	}
	json_array_foreach(saving, i, it) {
		const char *id = gl_json_str(json_object_get(it, "blob"),
					     "s3_upload_id");
		if (id)
			json_object_set_new(ids, id, json_true());
	}
	json_array_foreach(sw->found, i, it) {
		const char *key = json_string_value(json_array_get(it, 0));
		const char *id = json_string_value(json_array_get(it, 1));
		if (!key || !id || json_object_get(ids, id))
			continue; /* a live upload's */
		if (gl_gc_cleanup_queue(e, "s3_abort", key, id, 0, &err) < 0) {
			gl_warn("sweep: %s", err.msg);
			break;
		}
		gl_info("sweep: S3 multipart upload of %s that no record names "
			"queued for abort",
			key);
		n++;
	}
	if (n)
		gl_gc_cleanup_kick(e);
out:
	json_decref(saving);
	json_decref(ids);
	sweep_free(sw);
}

static void sweep_done(void *arg, const gl_err *lerr)
{
	gl_coro_go_err(sweep_done_run, arg, lerr);
}

static void sweep_start(gl_engine *e)
{
	gl_sweep *sw;
	gl_err err = { 0 };

	if (!e->s3 || e->sweep || !(sw = calloc(1, sizeof *sw)))
		return;
	sw->e = e;
	/* the takeover time, and as much again for the moment between
	 * initiating an upload and recording its id and for clock skew
	 * between S3 and the nodes */
	sw->cutoff = (int64_t)time(NULL) -
		     2 * (int64_t)e->conf->upload_takeover_after;
	sw->found = json_array();
	if (gl_s3_list_uploads_async(e->s3, sweep_each, sweep_done, sw, &err) <
	    0) {
		gl_warn("sweep: %s", err.msg);
		sweep_free(sw);
		return;
	}
	e->sweep = sw;
}

/* ---- the timer ----------------------------------------------------------------- */

static void takeover_pass(gl_engine *e)
{
	gl_err err = { 0 };
	int s3 = 0;

	if (take_over(e, &s3, &err) < 0)
		gl_warn("takeover: %s", err.msg);
	gl_store_clean_tmp(e->store, e->conf->upload_heartbeat);
	sweep_start(e);
	if (s3)
		gl_gc_cleanup_kick(e);
}

static void maint_run(void *arg)
{
	gl_engine *e = arg;
	int every = e->conf->upload_takeover_after /
		    e->conf->upload_heartbeat / 2;

	e->maint_busy = 1;
	gl_upload_heartbeat_all(e);
	gl_location_heartbeat_all(e);
	if (every < 1 || e->ticks++ % every == 0)
		takeover_pass(e);
	gl_gc_run(e);
	cleanup_run(e);
	e->maint_busy = 0;
}

/* In a coroutine, one pass at a time (a tick that comes while the last
 * pass still waits for the database is skipped). */
static void maint_cb(evutil_socket_t fd, short what, void *arg)
{
	gl_engine *e = arg;

	if (!e->maint_busy)
		gl_coro_go(maint_run, e);
}

int gl_maint_init(gl_engine *e, gl_err *err)
{
	struct timeval tv = { e->conf->upload_heartbeat, 0 };

	if (e->s3)
		gl_s3_set_cleanup_hook(e->s3, s3_cleanup_hook, e);
	e->maint = event_new(e->base, -1, EV_PERSIST, maint_cb, e);
	e->kick = event_new(e->base, -1, 0, kick_cb, e);
	if (!e->maint || !e->kick || event_add(e->maint, &tv) < 0)
		return gl_fail(err, 500, NULL,
			       "cannot arm the maintenance timer");
	return 0;
}

void gl_maint_soon(gl_engine *e)
{
	if (e->maint)
		event_active(e->maint, EV_TIMEOUT, 1);
}

void gl_maint_free(gl_engine *e)
{
	if (e->maint)
		event_free(e->maint);
	if (e->kick)
		event_free(e->kick);
	e->maint = e->kick = NULL;
	/* their requests are gone with the S3 client: no callback comes */
	while (e->cleanups) {
		cleanup_op *op = e->cleanups;
		e->cleanups = op->next;
		op_free(op);
	}
	e->ncleanups = 0;
	if (e->sweep)
		sweep_free(e->sweep);
	e->sweep = NULL;
}

int gl_maint_recover(gl_engine *e, gl_err *err)
{
	int s3 = 0, n, removed;

	n = take_over(e, &s3, err);
	if (n < 0)
		return -1;
	removed = gl_store_clean_tmp(e->store, e->conf->upload_heartbeat);
	gl_gc_run(e);
	/* S3 aborts and deletes queued here are the workers' first job */
	if (n || removed)
		gl_info("recovery: %d interrupted upload(s) rolled back, %d "
			"temporary file(s) removed",
			n, removed);
	return 0;
}
