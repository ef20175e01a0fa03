/* upload.h - streaming blob uploads (upload.c) into the file, database
 * and S3 stores.
 *
 * begin: every check that can fail before the body does (visibility,
 * policy, field kind, change rules, saving conflict, size limits from the
 * declared length, quotas) and the "saving" placeholder. write: bytes as
 * they come; 0, 1 = taken but pause the body until the resume callback
 * runs (the store is behind), -1 with 413 once a limit is passed. finish:
 * size checks, type hook, store, commit; done(arg, artifact, err) reports
 * the end (maybe before finish returns); -1 when it failed at once (done is
 * then not called). Either way the upload is gone after finish. detach:
 * the caller went away during finish; no callback. abort: restore the
 * previous state.
 *
 * Uses ctx.h, err.h, jansson.
 */
#ifndef GL_UPLOAD_H
#define GL_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ctx.h"
#include "err.h"

typedef struct gl_engine gl_engine;
typedef struct gl_upload gl_upload;

gl_upload *gl_upload_begin(gl_engine *e, const gl_ctx *ctx, const char *type,
			   const char *id, const char *field, const char *key,
			   int has_key, const char *content_type,
			   int64_t content_length, gl_err *err);
int gl_upload_write(gl_upload *u, const void *data, size_t len, gl_err *err);
void gl_upload_on_resume(gl_upload *u, void (*fn)(void *), void *arg);
/* The Content-Type learnt after begin (a fetched location's). */
void gl_upload_set_content_type(gl_upload *u, const char *content_type);
typedef void (*gl_upload_done_fn)(void *arg, json_t *artifact,
				  const gl_err *err);
int gl_upload_finish(gl_upload *u, gl_upload_done_fn done, void *arg,
		     gl_err *err);
void gl_upload_detach(gl_upload *u);
/* The caller's context went away during finish, but done is still
 * awaited (an import's job ends on it): the hooks that need the context
 * are skipped, or refuse the upload when they judge the data. */
void gl_upload_orphan(gl_upload *u);
void gl_upload_abort(gl_upload *u);

/* ---- for the engine's units (location.c imports, maint.c, engine.c) ---- */
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
