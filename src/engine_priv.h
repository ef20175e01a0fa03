/* engine_priv.h - engine internals shared by engine.c (artifacts),
 * list.c (listing) and blob.c (blobs and locations). Not for other units.
 */
#ifndef GL_ENGINE_PRIV_H
#define GL_ENGINE_PRIV_H

#include "engine.h"
#include "events.h"
#include "fetch.h"
#include "ltype.h"
#include "meta.h"
#include "store.h"

struct gl_location_job;
struct gl_cleanup_op;

struct gl_engine {
	gl_conf *conf;
	gl_policy *policy;
	struct event_base *base;
	gl_types *types;        /* current set; requests take a reference */
	gl_meta *meta;
	gl_store *store;
	gl_fetch *fetch;        /* created on first use */
	struct gl_location_job *jobs; /* pending location registrations */
	struct gl_upload *uploads;    /* uploads in progress */
	struct gl_s3 *s3;             /* the S3 blob store, when configured */
	/* maintenance (maint.c) */
	struct event *maint;          /* heartbeat, takeover, cleanups */
	struct event *kick;           /* runs the cleanup queue soon */
	struct gl_cleanup_op *cleanups; /* cleanups in flight */
	int ncleanups;
	int ticks;                    /* maintenance passes so far */
	struct gl_sweep *sweep;       /* the stale-upload sweep in flight */
	gl_events *events;            /* the outbox (events.h) */
	int maint_busy;               /* its coroutine is still at work */
};

/* A loaded artifact with the type it belongs to. */
typedef struct gl_af {
	gl_types *ts;           /* referenced */
	const gl_type *type;
	json_t *doc;            /* as the meta store returns it */
} gl_af;

void gl_af_clear(gl_af *af);

/* Find a type (404 TypeNotFound). Takes a reference on the set. */
int gl_engine_type(gl_engine *e, const char *name, gl_types **ts,
		   const gl_type **t, gl_err *err);
/* Load an artifact the caller may see (404 otherwise). rw: also require
 * the caller may write it, i.e. own project or admin (others get 404 for
 * private artifacts; policy decides about public ones). */
int gl_engine_load(gl_engine *e, const gl_ctx *ctx, const char *type,
		   const char *id, int rw, gl_af *af, gl_err *err);
/* Policy check against an artifact (403 "Policy check for ..."). */
int gl_engine_policy(gl_engine *e, const gl_ctx *ctx, const char *rule,
		     const json_t *doc, gl_err *err);
/* The policy target of an artifact: owner, visibility, status, ... */
json_t *gl_engine_target(const json_t *doc);
/* The hook view of a context. */
json_t *gl_engine_ctx_json(const gl_ctx *ctx);
/* API shape of an artifact (new ref), after the type's to_dict or
 * format_all; NULL + err (500) when that fails. */
json_t *gl_engine_output(gl_engine *e, const gl_ctx *ctx, gl_types *ts,
			 const gl_type *t, const json_t *doc, gl_err *err);
/* API shape of a blob record. */
json_t *gl_engine_blob_output(const gl_type *t, const char *id,
			      const char *field, const char *key,
			      const json_t *blob);
/* A document from a client (body, patch, location) within the JSON
 * limits of the configuration, no U+0000 in it (400 otherwise). */
int gl_engine_json_ok(gl_engine *e, const json_t *v, const char *what,
		      gl_err *err);
/* The change rules for a field (400 unknown, 403 frozen/system/immutable;
 * docs/glare-contract.md "Change rules"). */
int gl_engine_change_allowed(const gl_type *t, const json_t *doc,
			     const char *field, gl_err *err);
/* The arguments of a blob hook: [field, key or null] plus extra (if not
 * NULL). Never NULL: no hook runs without them (aborts out of memory). */
json_t *gl_engine_blob_args(const char *field, const char *key,
			    const json_t *extra);
/* Run a hook with the standard arguments. */
int gl_engine_hook(gl_engine *e, gl_types *ts, const gl_type *t,
		   enum gl_hook h, const gl_ctx *ctx, const json_t *doc,
		   const json_t *args, json_t **af_out, gl_err *err);
/* Quota limit in effect (-1 unlimited): project override, else config. */
int gl_engine_quota(gl_engine *e, const char *project, const char *name,
		    const char *type, int64_t *limit, gl_err *err);
/* Release stored data no record refers to any more (gc queue). */
void gl_engine_gc(gl_engine *e);
/* Version sort key of a doc's version. */
int gl_engine_vkey(gl_engine *e, const gl_ctx *ctx, gl_types *ts,
		   const char *version, gl_vkey *vk, char **suffix, char **meta,
		   gl_err *err);

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
/* Resolve field/key on a loaded artifact (the 400s of E8/E11 in
 * docs/glare-contract.md "Status codes by endpoint"). */
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
/* Release a blob record's stored data (inside a transaction). */
int gl_blob_release(gl_engine *e, const json_t *blob, gl_err *err);

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
/* Queue a cleanup ("s3_abort" key id, "s3_delete" key "") to be tried
 * after delay_us, unless it is queued already; inside the caller's
 * transaction if one is open, so the intent is as durable as the change
 * that needs it. */
int gl_cleanup_queue(gl_engine *e, const char *kind, const char *target,
		     const char *arg, int64_t delay_us, gl_err *err);
/* Run the due cleanups soon (after the current callback returns). */
void gl_cleanup_kick(gl_engine *e);

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
