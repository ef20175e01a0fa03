/* engine_priv.h - engine internals shared by engine.c (artifacts),
 * list.c (listing) and blob.c (blobs and locations). Not for other units.
 */
#ifndef GL_ENGINE_PRIV_H
#define GL_ENGINE_PRIV_H

#include "core.h"
#include "engine.h"
#include "fetch.h"
#include "gc.h"

/* ---- blob.c: shared by uploads, downloads and locations ----------------- */

/* A blob (field[/key]) of a loaded artifact. */
typedef struct gl_target {
	gl_af af;
	const gl_field *f;
	const char *field;
	const char *key;     /* NULL for a plain blob */
	json_t *cur;         /* current record (borrowed from af.doc) or NULL */
} gl_target;

void gl_target_clear(gl_target *tg);
json_t *gl_blob_record(const json_t *doc, const gl_field *f,
		       const char *key);
/* Resolve field/key on a loaded artifact (the 400s of spec §1.6 E8/E11). */
int gl_blob_resolve(gl_target *tg, const char *field, const char *key,
		    int has_key, int need_key, gl_err *err);
/* Bytes the blob may hold: field limit, folder space, quotas (inside the
 * write transaction so concurrent uploads cannot take the same bytes). */
int gl_blob_allowed(gl_engine *e, const gl_target *tg, const json_t *doc,
		    int64_t *limit, char *why, size_t whylen, gl_err *err);
/* "file", "database" or "s3" for a type. */
const char *gl_blob_store_of(gl_engine *e, const gl_type *t);
/* A same_sha256 folder takes only copies of one blob. */
int gl_blob_same_sha_ok(const gl_target *tg, const json_t *doc,
			const char *sha, gl_err *err);
/* Put back the record an upload or fetch replaced (or drop the new key). */
int gl_blob_restore_prev(gl_engine *e, const char *id, const char *field,
			 const char *key, const json_t *prev, gl_err *err);

int gl_blob_engine_init(gl_engine *e, gl_err *err);
void gl_blob_engine_free(gl_engine *e);
/* Refresh the heartbeat of this process's location registrations. */
void gl_blob_jobs_heartbeat(gl_engine *e);
/* Is this process registering a location for the blob (key "" or NULL
 * for a plain blob)? */
int gl_blob_jobs_own(gl_engine *e, const char *id, const char *field,
		     const char *key);

/* ---- maint.c: heartbeats, takeover, the cleanup queue, sweeps -------------- */

/* Arm the maintenance timer (every upload_heartbeat seconds; the first
 * pass runs at once) and hook the S3 client's failed cleanups. */
int gl_maint_init(gl_engine *e, gl_err *err);
/* Stop: cleanups in flight stay queued for any node to run. */
void gl_maint_free(gl_engine *e);
/* Start-up: take over the work of dead owners, remove unused temp files,
 * release unreferenced data. */
int gl_maint_recover(gl_engine *e, gl_err *err);

/* ---- upload.c ------------------------------------------------------------- */
/* The event the upload's commit emits: "upload", or "set_location" for
 * an internal location imported through it. */
void gl_upload_set_event(gl_upload *u, const char *action);
/* Refresh the heartbeat of this process's uploads in progress. */
void gl_upload_heartbeat_all(gl_engine *e);
/* Is this process uploading the blob (its saving record still stands)? */
int gl_upload_owns(gl_engine *e, const char *id, const char *field,
		   const char *key);
void gl_upload_abort_all(gl_engine *e);

#endif
