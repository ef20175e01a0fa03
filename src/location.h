/* location.h - blobs at a URL (location.c): registering an external or
 * internal location, cancelling it, deleting an external blob.
 *
 * Uses ctx.h, err.h, upload.h (imports are uploads; the done callback).
 */
#ifndef GL_LOCATION_H
#define GL_LOCATION_H

#include <jansson.h>

#include "ctx.h"
#include "err.h"
#include "upload.h"

typedef struct gl_engine gl_engine;

/* Register an external (fetched and verified) or internal location. The
 * result arrives through done (maybe before this returns). Returns -1 with
 * err if the request fails its pre-checks (done is then not called). */
int gl_location_add(gl_engine *e, const gl_ctx *ctx, const char *type,
		    const char *id, const char *field, const char *key,
		    int has_key, const json_t *body, gl_upload_done_fn done,
		    void *arg, gl_err *err);
/* Cancel a pending registration (client went away): nothing is kept. */
void gl_location_cancel(gl_engine *e, void *arg);
int gl_location_delete_blob(gl_engine *e, const gl_ctx *ctx, const char *type,
			    const char *id, const char *field, const char *key,
			    int has_key, json_t **out, gl_err *err);

/* ---- for the engine's units (maint.c, engine.c) -------------------------- */
/* Refresh the heartbeat of this process's location registrations. */
void gl_location_heartbeat_all(gl_engine *e);
/* Is this process registering a location for the blob (key "" or NULL
 * for a plain blob)? */
int gl_location_owns(gl_engine *e, const char *id, const char *field,
		     const char *key);
/* Stop: registrations in flight are dropped, their placeholders put back. */
void gl_location_free_all(gl_engine *e);

#endif
