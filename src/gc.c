/* gc.c - stored data no record refers to any more: the blob files,
 * database pieces and S3 objects on the gc queue are released under the
 * write lock, S3 deletions through the cleanup queue (gc.h).
 */
#include "core.h"
#include "gc.h"
#include "log.h"
#include "util.h"

#include <string.h>

void gl_gc_run(gl_engine *e)
{
	json_t *list = NULL, *it;
	size_t i;
	gl_err err = { 0 };
	int s3 = 0;

	if (gl_meta_gc_list(e->meta, 256, &list, &err) < 0 ||
	    json_array_size(list) == 0) {
		json_decref(list);
		return;
	}
	/* the reference check and the removal happen under the write lock,
	 * so no concurrent upload can commit a new reference in between;
	 * and the commits that dropped the last references are made durable
	 * first (group commit: gl_meta_sync), so none can come back */
	if (gl_meta_begin(e->meta, &err) < 0) {
		json_decref(list);
		return;
	}
	if (gl_meta_sync(e->meta, &err) < 0) {
		gl_warn("gc: %s", err.msg);
		gl_meta_rollback(e->meta);
		json_decref(list);
		return;
	}
	json_array_foreach(list, i, it) {
		const char *store = gl_json_str(it, "store"),
			   *loc = gl_json_str(it, "location");
		int64_t refs = 0;
		if (gl_meta_blob_refs(e->meta, store, loc, &refs, &err) < 0)
			break;
		if (refs == 0) {
			if (gl_streq(store, "file"))
				gl_store_remove(e->store, loc, &err);
			else if (gl_streq(store, "database"))
				gl_meta_data_delete(e->meta, loc, &err);
			else if (gl_streq(store, "s3")) {
				/* the network call is the cleanup queue's
				 * (maint.c): S3 keys are never reused, so the
				 * delete may wait for it */
				if (gl_gc_cleanup_queue(e, "s3_delete", loc,
							"", 0, &err) < 0)
					break;
				s3 = 1;
			}
		}
		gl_meta_gc_pop(e->meta, store, loc, &err);
	}
	if (gl_meta_commit(e->meta, &err) < 0) {
		gl_warn("gc: %s", err.msg);
		gl_meta_rollback(e->meta);
		s3 = 0;
	}
	json_decref(list);
	if (s3)
		gl_gc_cleanup_kick(e);
}

/* ---- handing data over ------------------------------------------------------ */

int gl_gc_release(gl_engine *e, const json_t *blob, gl_err *err)
{
	const char *store = gl_json_str(blob, "store"),
		   *loc = gl_json_str(blob, "location");

	/* external data is never ours to delete: the record just goes */
	if (json_is_true(json_object_get(blob, "external")) || !store ||
	    !loc || !strcmp(store, "external"))
		return 0;
	return gl_meta_gc_push(e->meta, store, loc, err);
}

int gl_gc_cleanup_queue(gl_engine *e, const char *kind, const char *target,
			const char *arg, int64_t delay_us, gl_err *err)
{
	return gl_meta_cleanup_put(e->meta, kind, target, arg ? arg : "", 0,
				   gl_now_us() + delay_us, NULL, err);
}

void gl_gc_cleanup_kick(gl_engine *e)
{
	if (e->kick && e->s3)
		event_active(e->kick, EV_TIMEOUT, 1);
}
