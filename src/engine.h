/* engine.h - artifact rules: lifecycle, visibility, immutability,
 * uniqueness, quotas, hooks; blob upload/download/location pipelines.
 *
 * The engine is the only place that decides whether a change is allowed.
 * The HTTP API and the console both call it with a request context, so there
 * is no back door around validation or lifecycle. It owns the worker's type
 * runtime (ltype.c), metadata store (meta.h) and blob stores (store.h).
 */
#ifndef GL_ENGINE_H
#define GL_ENGINE_H

#include <event2/event.h>
#include <jansson.h>

#include "auth.h"
#include "conf.h"
#include "err.h"
#include "policy.h"

typedef struct gl_engine gl_engine;

gl_engine *gl_engine_new(gl_conf *conf, gl_policy *pol,
			 struct event_base *base, gl_err *err);
void gl_engine_free(gl_engine *e);
/* SIGHUP / console: load a new type set; the old one keeps serving on
 * failure. */
int gl_engine_reload_types(gl_engine *e, gl_err *err);
/* Start-up recovery: blobs left "saving" by a dead process, temp files,
 * unreferenced data. Run once before serving. */
int gl_engine_recover(gl_engine *e, gl_err *err);

#endif
